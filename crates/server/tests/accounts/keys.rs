//! API keys: shown once, stored hashed, scoped.

use super::*;

both_backends!(api_keys_are_shown_once_hashed_and_scoped, |pg| {
    let e = Env::start(pg, |_| {}).await;
    let addr = email("key");
    let who = e.register(&addr).await;
    let make = |scopes: Value| {
        e.call(
            Method::POST,
            "/api/v1/me/api-keys",
            &who,
            Some(json!({"name": "uji", "scopes": scopes})),
        )
    };
    let r = make(json!(["captions"])).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let cap_key = r.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let read_key = make(json!(["read"])).await.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        make(json!(["admin"])).await.status(),
        StatusCode::FORBIDDEN,
        "admin scope for admins only"
    );
    // Stored hashed: the key is nowhere in the database.
    let listed: Value = e.get_json("/api/v1/me/api-keys", &who).await;
    assert_eq!(listed["api_keys"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(&cap_key));
    let hashes: i64 = e
        .scalar(&format!(
            "SELECT COUNT(*) FROM api_keys WHERE key_hash = '{}'",
            takarir_store::token_hash(&cap_key)
        ))
        .await;
    assert_eq!(hashes, 1);
    let plain: i64 = e
        .scalar(&format!(
            "SELECT COUNT(*) FROM api_keys WHERE key_hash = '{cap_key}' OR prefix = '{cap_key}'"
        ))
        .await;
    assert_eq!(plain, 0);

    let cap = Who::Key(cap_key);
    let read = Who::Key(read_key);
    assert_eq!(
        e.call(Method::GET, "/api/v1/me", &cap, None).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(e.caption(&cap).await.status(), StatusCode::OK);
    assert_eq!(
        e.call(Method::GET, "/api/v1/me", &read, None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(e.caption(&read).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        e.call(
            Method::PATCH,
            "/api/v1/me/preferences",
            &read,
            Some(json!({"history_enabled": true}))
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    // Keys cannot make keys or delete the account; an unknown key is 401, not anonymous.
    assert_eq!(
        e.call(
            Method::POST,
            "/api/v1/me/api-keys",
            &read,
            Some(json!({"name": "x", "scopes": ["read"]}))
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        e.call(
            Method::DELETE,
            "/api/v1/me",
            &read,
            Some(json!({"password": PASSWORD}))
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        e.caption(&Who::Key("tkr_tidak_ada".into())).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The usage of the captions key counts for the account.
    let me: Value = e.get_json("/api/v1/me", &read).await;
    assert_eq!(me["usage"][0]["count"], 1);
    e.finish().await;
});

//! Erasure: nothing of the user is left.

use super::*;

both_backends!(erasure_leaves_nothing_of_the_user, |pg| {
    let e = Env::start(pg, |_| {}).await;
    let a = email("hapus");
    let b = email("tetap");
    // An admin, made the way the command line does (never by sign-up).
    let admin_addr = email("admin");
    let hash = takarir_server::service::accounts::auth::hash_password(PASSWORD)
        .await
        .unwrap();
    e.db()
        .users()
        .create(NewUser {
            email: &admin_addr,
            password_hash: &hash,
            role: Role::Admin,
        })
        .await
        .unwrap();
    let admin = Who::from_login(e.login(&admin_addr, PASSWORD, None).await).await;

    let who = active_user(&e, &a).await;
    let other = active_user(&e, &b).await;
    let uid = e.user_id(&a).await;
    let other_id = e.user_id(&b).await;
    // A second session, API keys, an export, a correction, audit entries about the user.
    let second = Who::from_login(e.login(&a, PASSWORD, None).await).await;
    for who in [&who, &other] {
        let r = e
            .call(
                Method::POST,
                "/api/v1/me/api-keys",
                who,
                Some(json!({"name": "k", "scopes": ["captions", "read"]})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        export_zip(&e, who).await;
    }
    for (id, reason) in [
        (uid, "tiket dukungan #12"),
        (other_id, "tiket dukungan #13"),
    ] {
        let r = e
            .call(
                Method::POST,
                &format!("/api/v1/admin/users/{}/access", id.0),
                &admin,
                Some(json!({"reason": reason})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Without a reason staff get nothing; a non-admin gets nothing.
    let r = e
        .call(
            Method::POST,
            &format!("/api/v1/admin/users/{}/access", uid.0),
            &admin,
            Some(json!({"reason": " "})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        e.call(Method::GET, "/api/v1/admin/stats", &other, None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let stats: Value = e.get_json("/api/v1/admin/stats", &admin).await;
    assert_eq!(stats["accounts"], 3);
    assert!(
        !stats.to_string().contains("@"),
        "no addresses in the aggregates"
    );
    // The user sees the staff access on their access page.
    let me: Value = e.get_json("/api/v1/me", &who).await;
    assert_eq!(me["audit"][0]["reason"], "tiket dukungan #12");

    let tables = e.user_tables().await;
    for t in [
        "history",
        "consents",
        "preferences",
        "sessions",
        "api_keys",
        "training_items",
        "exports",
        "audit_log",
        "user_usage_daily",
        "email_tokens",
    ] {
        assert!(tables.contains(&t.to_string()), "{t} has user_id");
        if t != "email_tokens" {
            assert!(
                e.rows_of(t, uid).await > 0,
                "the user has rows in {t} before erasure"
            );
        }
    }
    assert!(!e
        .storage
        .blobs
        .list(&format!("users/{}", uid.0))
        .await
        .unwrap()
        .is_empty());
    let mut other_before = Vec::new();
    for t in &tables {
        other_before.push(e.rows_of(t, other_id).await);
    }
    let other_objects = e
        .storage
        .blobs
        .list(&format!("users/{}", other_id.0))
        .await
        .unwrap();

    // The password is asked again; a wrong one erases nothing.
    let r = e
        .call(
            Method::DELETE,
            "/api/v1/me",
            &who,
            Some(json!({"password": "bukan-kata-sandinya"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let subject = e
        .db()
        .users()
        .get(uid)
        .await
        .unwrap()
        .unwrap()
        .subject_hash();
    let r = e
        .call(
            Method::DELETE,
            "/api/v1/me",
            &who,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    for t in &tables {
        assert_eq!(
            e.rows_of(t, uid).await,
            0,
            "{t} keeps rows of the erased user"
        );
    }
    assert_eq!(
        e.scalar(&format!("SELECT COUNT(*) FROM users WHERE id = {}", uid.0))
            .await,
        0
    );
    assert!(
        e.storage
            .blobs
            .list(&format!("users/{}", uid.0))
            .await
            .unwrap()
            .is_empty(),
        "objects left"
    );
    assert!(e.db().erasure_log().contains(&subject).await.unwrap());
    assert_eq!(
        e.call(Method::GET, "/api/v1/me", &second, None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // The other user is untouched.
    let mut other_after = Vec::new();
    for t in &tables {
        other_after.push(e.rows_of(t, other_id).await);
    }
    assert_eq!(other_before, other_after);
    assert_eq!(
        e.storage
            .blobs
            .list(&format!("users/{}", other_id.0))
            .await
            .unwrap(),
        other_objects
    );
    assert_eq!(
        e.call(Method::GET, "/api/v1/me", &other, None)
            .await
            .status(),
        StatusCode::OK
    );
    e.finish().await;
});

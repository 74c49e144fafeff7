//! Privacy-policy notices and the admin page.

use super::*;

both_backends!(
    significant_policy_version_is_noticed_and_emailed_once,
    |pg| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("versions.toml");
        let v1 = "[[version]]\nversion = \"1.0\"\ndate = \"2026-11-29\"\nsignificant = true\nsummary_id = \"a\"\nsummary_en = \"a\"\n";
        std::fs::write(&file, v1).unwrap();
        let f = file.clone();
        let e = Env::start(pg, move |c| c.policy_file = Some(f)).await;
        let addr = email("pol");
        let who = e.register(&addr).await;
        let me: Value = e.get_json("/api/v1/me", &who).await;
        assert_eq!(
            me["policy_notice"],
            Value::Null,
            "sign-up acknowledges the current version"
        );
        // The same database under a new significant version.
        let mut config = e.state.config().clone();
        std::fs::write(&file, format!("{v1}[[version]]\nversion = \"2.0\"\ndate = \"2027-01-01\"\nsignificant = true\nsummary_id = \"baru\"\nsummary_en = \"new\"\n")).unwrap();
        let storage = Storage::open(&config).await.unwrap();
        let state = AppState::new(config.clone(), common::captioner(), storage);
        assert_eq!(
            takarir_server::service::privacy::policy::notify_all(&state)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            takarir_server::service::privacy::policy::notify_all(&state)
                .await
                .unwrap(),
            0,
            "once"
        );
        let mail = mail_to(&addr, "2.0").await;
        assert!(mail.contains("/account"));
        assert_eq!(mails_count(&addr, "versi 2.0"), 1);
        config.listen = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind(config, state).await.unwrap();
        let base = format!("http://{}", server.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        let get_me = || who.apply(e.client.get(format!("{base}/api/v1/me"))).send();
        let me: Value = get_me().await.unwrap().json().await.unwrap();
        assert_eq!(me["policy_notice"]["version"], "2.0");
        let page = who
            .apply(e.client.get(format!("{base}/")))
            .fetch_text()
            .await;
        assert!(page.contains("id=\"policy-notice\""));
        let r = who
            .apply(e.client.post(format!("{base}/api/v1/me/policy/ack")))
            .json(&json!({"version": "2.0"}))
            .go()
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let me: Value = get_me().await.unwrap().json().await.unwrap();
        assert_eq!(me["policy_notice"], Value::Null);
        assert!(me["consents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["purpose"] == "policy" && c["policy_version"] == "2.0"));
        let _ = tx.send(());
        let _ = task.await;
        e.finish().await;
    }
);

both_backends!(admin_page_shows_aggregates_and_audits_access, |pg| {
    let e = Env::start(pg, |_| {}).await;
    let admin_addr = email("adm");
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
    let addr = email("subjek");
    let user = e.register(&addr).await;
    let uid = e.user_id(&addr).await;
    // Not for users, not for anyone signed out.
    for who in [&user, &Who::Nobody] {
        let r = who.apply(e.client.get(e.url("/admin"))).go().await;
        assert!(
            r.status() == StatusCode::FORBIDDEN || r.status() == StatusCode::UNAUTHORIZED,
            "{}",
            r.status()
        );
    }
    let html = e
        .call(Method::GET, "/admin?lang=en", &admin, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"stat-accounts\">2<"));
    assert!(!html.contains(&addr), "no address in the overview");
    let csrf = page_csrf(&html);
    let open = |reason: &'static str| {
        admin
            .apply(
                e.client
                    .post(e.url(&format!("/admin/users/{}/access", uid.0))),
            )
            .form(&[("csrf", csrf.as_str()), ("reason", reason)])
            .send()
    };
    assert_eq!(open("").await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert!(e.db().audit().list(uid).await.unwrap().is_empty());
    let r = open("permintaan pengguna lewat email").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains(&addr));
    let page = e
        .call(Method::GET, "/account", &user, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("permintaan pengguna lewat email"),
        "the user sees the access"
    );
    e.finish().await;
});

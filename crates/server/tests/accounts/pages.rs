//! The pages: every right without JavaScript, privacy-policy notices, and the admin page.

use super::*;

both_backends!(web_forms_cover_every_right_without_javascript, |pg| {
    let e = Env::start(pg, |_| {}).await;
    // Signed out: caption defaults in a cookie, applied to the next caption.
    let t = signed_out_token(&e, "/account").await;
    let res = e
        .client
        .post(e.url("/account/preferences"))
        .header("cookie", format!("takarir_csrf={t}"))
        .form(&[
            ("csrf", t.as_str()),
            ("lang", "en"),
            ("style", "short"),
            ("alternatives", "2"),
        ])
        .go()
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let prefs = set_cookie(&res, "takarir_prefs").expect("prefs cookie");
    assert!(
        prefs.starts_with("takarir_prefs=lang.en~style.short~alt.2;"),
        "{prefs}"
    );
    let form = Form::new().part("image", common::jpeg_part("coffee.jpg", "c.jpg"));
    let upload = e.client.post(e.url("/api/v1/captions")).multipart(form);
    let prefs = "takarir_prefs=lang.en~style.short~alt.2";
    let v: Value = upload.header("cookie", prefs).fetch_json().await;
    assert_eq!(
        v["captions"].as_array().unwrap().len(),
        2,
        "alternatives from the cookie"
    );
    assert!(e
        .table_counts()
        .await
        .iter()
        .all(|(t, n)| t == "usage_daily" || *n == 0));

    // Sign up with the form (double-submit token), in English.
    let addr = email("web");
    let t = signed_out_token(&e, "/account/signup?lang=en").await;
    let res = e
        .client
        .post(e.url("/account/signup"))
        .header("cookie", format!("takarir_csrf={t}"))
        .form(&[
            ("csrf", t.as_str()),
            ("email", addr.as_str()),
            ("password", PASSWORD),
        ])
        .go()
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let session = session_cookie(&res).unwrap();
    let get_page = |q: &'static str| {
        e.client
            .get(e.url(&format!("/account{q}")))
            .header("cookie", format!("takarir_session={session}"))
            .send()
    };
    let html = get_page("?lang=en").await.unwrap().text().await.unwrap();
    assert!(
        html.contains("<html lang=\"en\">")
            && html.contains(&addr)
            && html.contains("not verified yet")
    );
    let csrf = page_csrf(&html);
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let mut fields = fields;
        fields.push(("csrf", csrf.clone()));
        e.client
            .post(e.url(&path))
            .header("cookie", format!("takarir_session={session}"))
            .form(&fields)
            .send()
    };
    // History and training on; a caption through the plain form (with the token) is kept.
    let r = post(
        "/account/preferences".into(),
        vec![
            ("history_enabled", "on".into()),
            ("training_consent", "on".into()),
            ("style", "sentence".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let form = Form::new()
        .text("csrf", csrf.clone())
        .part("image", common::jpeg_part("coffee.jpg", "c.jpg"));
    let r = e
        .client
        .post(e.url("/"))
        .header("cookie", format!("takarir_session={session}"))
        .multipart(form)
        .go()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let uid = e.user_id(&addr).await;
    let entries = e
        .db()
        .history()
        .list(uid, Default::default())
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(e.db().training().list(uid).await.unwrap().len(), 1);
    // Correct it, find it, delete it.
    let id = entries[0].id.0;
    let r = post(
        format!("/account/history/{id}/edit"),
        vec![("corrected_caption", "secangkir kopi".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = get_page("?q=kopi").await.unwrap().text().await.unwrap();
    assert!(html.contains("secangkir kopi"));
    assert_eq!(
        e.db().training().list(uid).await.unwrap()[0].caption,
        "secangkir kopi"
    );
    // Withdraw with one click: training items gone.
    let r = post("/account/consent".into(), vec![("granted", "false".into())])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(e.db().training().list(uid).await.unwrap().is_empty());
    // Turning history off while it has entries: the form's choice decides.
    let r = post(
        "/account/preferences".into(),
        vec![("history_existing", "delete".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(e.db().history().count(uid).await.unwrap(), 0);
    // Correct the email address: unverified again until the new link is opened.
    let new_addr = email("webbaru");
    let r = post("/account/email".into(), vec![("email", new_addr.clone())])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mail = mail_to(&new_addr, "/account/verify?token=").await;
    let r = e
        .client
        .get(e.url(&format!(
            "/account/verify?token={}",
            link_token(&mail, "/account/verify")
        )))
        .go()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let user = e.db().users().get(uid).await.unwrap().unwrap();
    assert_eq!(user.email, new_addr);
    assert!(user.email_verified_at.is_some());
    // Change the password with the form: the current one is checked, this session stays.
    let new_pw = "merpati-putih-terbang-3";
    let r = post(
        "/account/password".into(),
        vec![
            ("current_password", "bukan-ini-sandinya".into()),
            ("new_password", new_pw.into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // (the form posts carry no language: the answer is in Indonesian, the default)
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Email atau kata sandi salah."));
    let r = post(
        "/account/password".into(),
        vec![
            ("current_password", PASSWORD.into()),
            ("new_password", new_pw.into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account?msg=password_changed");
    let html = get_page("?lang=en&msg=password_changed")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Password changed. Your sessions on other devices have been signed out."));
    assert_eq!(
        e.login(&new_addr, PASSWORD, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        e.login(&new_addr, new_pw, None).await.status(),
        StatusCode::OK
    );
    // An API key through the form is shown once, in the answer (never in a URL).
    let r = post(
        "/account/keys".into(),
        vec![("name", "skrip".into()), ("scope_read", "on".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let at = html.find("<code id=\"new-key\">").unwrap() + "<code id=\"new-key\">".len();
    let key = html[at..].split('<').next().unwrap().to_string();
    assert!(key.starts_with("tkr_"));
    assert_eq!(
        e.call(Method::GET, "/api/v1/me", &Who::Key(key.clone()), None)
            .await
            .status(),
        StatusCode::OK
    );
    let html = get_page("").await.unwrap().text().await.unwrap();
    assert!(!html.contains(&key), "the key is not shown again");
    // Erasure: wrong password refused, right one erases.
    let r = post(
        "/account/delete".into(),
        vec![("password", "bukan-ini-sandinya".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(e.db().users().get(uid).await.unwrap().is_some());
    let r = post("/account/delete".into(), vec![("password", new_pw.into())])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(e.db().users().get(uid).await.unwrap().is_none());
    for t in e.user_tables().await {
        assert_eq!(e.rows_of(&t, uid).await, 0, "{t}");
    }
    e.finish().await;
});

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
        // The notice emailed is part of the access document.
        let notices = me["policy_notices"].as_array().unwrap();
        assert_eq!(notices.len(), 1, "{me}");
        assert_eq!(notices[0]["policy_version"], "2.0");
        assert!(notices[0]["emailed_at"].is_string());
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
    let admin = e.admin(&admin_addr).await;
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

/// `signups_allowed = false`: no account can be made on the API or the page, in either
/// language, and nothing is stored; staff accounts (made on the command line) still sign in.
/// The same pages on an open server offer the form, so the closed ones are not blank by chance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_sign_up_refuses_on_the_api_and_the_page() {
    let open = Env::start(false, |_| {}).await;
    let html = open.get("/account/login").await.text().await.unwrap();
    assert!(html.contains("id=\"signup-link\""), "open: link offered");
    let html = open.get("/account/signup").await.text().await.unwrap();
    assert!(html.contains("id=\"signup-form\""), "open: form offered");
    open.finish().await;

    let e = Env::start(false, |c| c.signups_allowed = false).await;
    let register = |lang: &'static str| {
        e.client
            .post(e.url(&format!("/api/v1/auth/register?lang={lang}")))
            .json(&json!({"email": email("closed"), "password": PASSWORD}))
            .go()
    };
    for (lang, detail) in [
        ("id", "tidak menerima pendaftaran"),
        ("en", "does not accept new accounts"),
    ] {
        let r = register(lang).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{lang}");
        assert_eq!(r.headers()["content-language"], lang);
        assert!(set_cookie(&r, "takarir_session").is_none());
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["code"], "signups_closed", "{p}");
        assert!(p["detail"].as_str().unwrap().contains(detail), "{p}");
    }

    // The page: no link, no form, and the reason in the visitor's language.
    let html = e.get("/account/login").await.text().await.unwrap();
    assert!(html.contains("id=\"login-form\"") && !html.contains("/account/signup"));
    for (lang, title) in [("id", "Pendaftaran ditutup"), ("en", "Sign-up closed")] {
        let r = e.get(&format!("/account/signup?lang={lang}")).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let html = r.text().await.unwrap();
        assert!(html.contains("data-code=\"signups_closed\"") && html.contains(title));
        assert!(!html.contains("id=\"signup-form\""), "{lang}: no form");
    }
    // A form posted anyway (with a valid double-submit token) is refused the same way.
    let t = signed_out_token(&e, "/account/login?lang=en").await;
    let addr = email("closed-form");
    let r = e
        .client
        .post(e.url("/account/signup?lang=en"))
        .header("cookie", format!("takarir_csrf={t}"))
        .form(&[
            ("csrf", t.as_str()),
            ("email", addr.as_str()),
            ("password", PASSWORD),
        ])
        .go()
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&r, "takarir_session").is_none());
    let html = r.text().await.unwrap();
    assert!(html.contains("data-code=\"signups_closed\"") && html.contains("Sign-up closed"));
    assert_eq!(e.scalar("SELECT COUNT(*) FROM users").await, 0);

    // Staff made on the command line still sign in and use the service.
    let admin = e.admin(&email("staff")).await;
    let me = e.get_json("/api/v1/me", &admin).await;
    assert_eq!(me["profile"]["role"], "admin", "{me}");
    e.finish().await;
}

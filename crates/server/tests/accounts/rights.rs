//! What captions leave behind: anonymous counters, history, training consent and its withdrawal, and a signed-in user's batch jobs.

use super::*;

both_backends!(anonymous_use_leaves_no_rows_but_counters, |pg| {
    let e = Env::start(pg, |_| {}).await;
    assert_eq!(e.caption(&Who::Nobody).await.status(), StatusCode::OK);
    let form = Form::new().part(
        "image",
        Part::bytes(sample("coffee.jpg"))
            .file_name("b.png")
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let res = e.client.post(e.url("/")).multipart(form).go().await;
    assert_eq!(res.status(), StatusCode::OK);
    // Pages and the signed-out preference cookie write nothing either.
    assert_eq!(
        e.client.get(e.url("/account")).go().await.status(),
        StatusCode::OK
    );
    // The account routes are in the OpenAPI document.
    let doc: Value = e
        .client
        .get(e.url("/api/v1/openapi.json"))
        .fetch_json()
        .await;
    for (path, method) in [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/me", "delete"),
        ("/api/v1/me/exports", "post"),
        ("/api/v1/admin/users/{id}/access", "post"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(doc["components"]["schemas"]["PreferencesPatch"].is_object());
    for (table, n) in e.table_counts().await {
        if table == "usage_daily" {
            assert!(n >= 1, "the aggregate counter counts anonymous captions");
        } else if table == "retention_runs" {
            // The sweeper's own counts (jobs, objects deleted): nothing about anyone.
        } else {
            assert_eq!(n, 0, "anonymous use wrote to {table}");
        }
    }
    assert!(
        e.storage.blobs.list("").await.unwrap().is_empty(),
        "no object stored"
    );
    e.finish().await;
});

both_backends!(history_training_and_withdrawal, |pg| {
    let e = Env::start(pg, |_| {}).await;
    let addr = email("hist");
    let who = e.register(&addr).await;
    // Off by default: a caption leaves no history and no training item.
    assert_eq!(e.caption(&who).await.status(), StatusCode::OK);
    let me: Value = e.get_json("/api/v1/me", &who).await;
    assert_eq!(me["preferences"]["history_enabled"], false);
    assert_eq!(me["preferences"]["training_consent"], false);
    assert_eq!(me["history"].as_array().unwrap().len(), 0);
    assert_eq!(me["usage"][0]["count"], 1);

    let r = e
        .call(
            Method::PATCH,
            "/api/v1/me/preferences",
            &who,
            Some(json!({"history_enabled": true, "training_consent": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // A photo with EXIF metadata (orientation): the training copy keeps none of it.
    let exif = sample("chelsea-exif-rotated.jpg");
    assert!(exif.windows(4).any(|w| w == b"Exif"));
    assert_eq!(
        e.caption_file(&who, "chelsea-exif-rotated.jpg")
            .await
            .status(),
        StatusCode::OK
    );
    let uid = e.user_id(&addr).await;
    let me: Value = e.get_json("/api/v1/me", &who).await;
    let h = &me["history"][0];
    assert_eq!(h["format"], "jpeg");
    assert!(h["width"].as_u64().unwrap() > 0);
    let items = e.db().training().list(uid).await.unwrap();
    assert_eq!(items.len(), 1);
    // The pixels only: a PNG of the upright image, nothing of the original file's metadata.
    let stored = e.storage.blobs.get(&items[0].object_path).await.unwrap();
    assert!(stored.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(!stored.windows(4).any(|w| w == b"Exif"));
    let img = image::load_from_memory(&stored).unwrap();
    assert_eq!(
        (img.width() as u64, img.height() as u64),
        (h["width"].as_u64().unwrap(), h["height"].as_u64().unwrap())
    );
    assert_eq!(items[0].format, "png");
    assert!(
        e.storage
            .blobs
            .get_with_info(&items[0].object_path)
            .await
            .unwrap()
            .1
            .key_id
            .is_some(),
        "encrypted"
    );
    // A correction is kept beside the original and becomes the training caption.
    let id = h["id"].as_i64().unwrap();
    let r = e
        .call(
            Method::PATCH,
            &format!("/api/v1/me/history/{id}"),
            &who,
            Some(json!({"corrected_caption": "anjing menangkap piringan"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let list: Value = e
        .call(
            Method::GET,
            "/api/v1/me/history?search=piringan",
            &who,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["history"][0]["caption"], h["caption"]);
    assert_eq!(
        list["history"][0]["corrected_caption"],
        "anjing menangkap piringan"
    );
    assert_eq!(
        e.db().training().list(uid).await.unwrap()[0].caption,
        "anjing menangkap piringan"
    );
    // Turning history off asks what to do with the entries.
    let r = e
        .call(
            Method::PATCH,
            "/api/v1/me/preferences",
            &who,
            Some(json!({"history_enabled": false})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Withdrawal: training items and their images gone at once; a later export has none.
    let r = e
        .call(
            Method::POST,
            "/api/v1/me/consents/training",
            &who,
            Some(json!({"granted": false})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(e.db().training().list(uid).await.unwrap().is_empty());
    assert!(e
        .storage
        .blobs
        .list(&format!("users/{}/training", uid.0))
        .await
        .unwrap()
        .is_empty());
    let ledger = e.db().consents().list(uid).await.unwrap();
    let training: Vec<bool> = ledger
        .iter()
        .filter(|c| c.purpose == "training")
        .map(|c| c.granted)
        .collect();
    assert_eq!(training, vec![true, false]);
    assert_eq!(e.caption(&who).await.status(), StatusCode::OK);
    assert!(
        e.db().training().list(uid).await.unwrap().is_empty(),
        "no new item after withdrawal"
    );
    let zip = export_zip(&e, &who).await;
    assert_eq!(zip_names(&zip), vec!["data.json"]);
    // Delete one entry.
    let list: Value = e.get_json("/api/v1/me/history", &who).await;
    let entries = list["history"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2);
    let one = entries[0]["id"].as_i64().unwrap();
    let r = e
        .call(
            Method::DELETE,
            &format!("/api/v1/me/history/{one}"),
            &who,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = e
        .call(
            Method::DELETE,
            &format!("/api/v1/me/history/{one}"),
            &who,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(e.db().history().count(uid).await.unwrap(), 1);
    // History off, deleting the entries.
    let r = e
        .call(
            Method::PATCH,
            "/api/v1/me/preferences",
            &who,
            Some(json!({"history_enabled": false, "delete_history": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(e.db().history().count(uid).await.unwrap(), 0);
    e.finish().await;
});

both_backends!(
    a_signed_in_users_batch_job_counts_like_their_captions,
    |pg| {
        let e = Env::start(pg, |_| {}).await;
        let addr = email("tugas");
        let who = e.register(&addr).await;
        let uid = e.user_id(&addr).await;
        let r = e
            .call(
                Method::PATCH,
                "/api/v1/me/preferences",
                &who,
                Some(json!({"history_enabled": true, "training_consent": true, "lang": "en"})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let usage_before = e
            .scalar("SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM usage_daily")
            .await;

        // Two photos and one bad file, with the session's CSRF token: the job is the user's.
        let id = create_job(&e, &who, &[Some("coffee.jpg"), None, Some("rocket.jpg")]).await;
        let s = wait_done(&e.client, &e.base, &id).await;
        assert_eq!(
            (s["done"].as_i64(), s["failed"].as_i64()),
            (Some(2), Some(1))
        );
        let me: Value = e.get_json("/api/v1/me", &who).await;
        // The preference (English only) was the job's default; history and training as for
        // single captions; the bad file leaves nothing.
        let history = me["history"].as_array().unwrap();
        assert_eq!(history.len(), 2, "{me}");
        assert!(history
            .iter()
            .all(|h| h["lang"] == "en" && h["format"] == "jpeg"));
        let results = e
            .call(
                Method::GET,
                &format!("/api/v1/jobs/{id}/results"),
                &Who::Nobody,
                None,
            )
            .await
            .text()
            .await
            .unwrap();
        let texts: Vec<Value> = results
            .lines()
            .flat_map(|l| {
                let row: Value = serde_json::from_str(l).unwrap();
                row["captions"]
                    .as_array()
                    .map(|c| c.iter().map(|c| c["text"].clone()).collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(texts.len(), 2, "{results}");
        for h in history {
            assert!(texts.contains(&h["caption"]), "{results}");
        }
        assert_eq!(me["usage"][0]["count"], 2);
        assert_eq!(me["training_items"].as_array().unwrap().len(), 2);
        let jobs = me["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0]["id"], id.as_str());
        assert_eq!(
            (jobs[0]["done"].as_i64(), jobs[0]["failed"].as_i64()),
            (Some(2), Some(1))
        );
        assert!(jobs[0]["finished_at"].is_string());
        assert_eq!(
            e.scalar("SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM usage_daily")
                .await,
            usage_before + 2
        );
        validate_against_schema(&zip_file(&export_zip(&e, &who).await, "data.json"));

        // The cookie without its CSRF token (a forged cross-site upload): an anonymous job that
        // writes nothing of the user's, only the aggregate counter.
        let anon = create_job(
            &e,
            &Who::CookieOnly(who.cookie().to_string()),
            &[Some("coffee.jpg")],
        )
        .await;
        wait_done(&e.client, &e.base, &anon).await;
        let me: Value = e.get_json("/api/v1/me", &who).await;
        assert_eq!(me["history"].as_array().unwrap().len(), 2);
        assert_eq!(me["jobs"].as_array().unwrap().len(), 1);
        assert_eq!(me["usage"][0]["count"], 2);
        assert_eq!(
            e.scalar("SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM usage_daily")
                .await,
            usage_before + 3
        );

        // Erasure takes the user's jobs, their results and any input still stored.
        let leftover = format!("jobs/{id}/in/000099");
        e.storage
            .blobs
            .put(
                &leftover,
                b"not yet captioned",
                takarir_store::Sensitivity::Personal,
            )
            .await
            .unwrap();
        let r = e
            .call(
                Method::DELETE,
                "/api/v1/me",
                &who,
                Some(json!({"password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(e.rows_of("jobs", uid).await, 0);
        assert!(e
            .storage
            .blobs
            .list(&format!("jobs/{id}/"))
            .await
            .unwrap()
            .is_empty());
        let gone = e
            .call(
                Method::GET,
                &format!("/api/v1/jobs/{id}"),
                &Who::Nobody,
                None,
            )
            .await;
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
        // The anonymous job is nobody's: it stays until it expires or its holder deletes it.
        let kept = e
            .call(
                Method::GET,
                &format!("/api/v1/jobs/{anon}"),
                &Who::Nobody,
                None,
            )
            .await;
        assert_eq!(kept.status(), StatusCode::OK);
        e.finish().await;
    }
);

//! The user's data: what captions leave behind (anonymous counters, history, training consent and its withdrawal, a signed-in user's batch jobs), exports (exactly the documented files, streamed, made in the background) and erasure (nothing of the user is left).

use super::*;

both_backends!(anonymous_use_leaves_no_rows_but_counters, |pg| {
    let e = Env::start(pg, |_| {}).await;
    assert_eq!(e.caption(&Who::Nobody).await.status(), StatusCode::OK);
    let form = Form::new().part("image", common::jpeg_part("coffee.jpg", "b.png"));
    let res = e.client.post(e.url("/")).multipart(form).go().await;
    assert_eq!(res.status(), StatusCode::OK);
    // Pages and the signed-out preference cookie write nothing either.
    assert_eq!(
        e.client.get(e.url("/account")).go().await.status(),
        StatusCode::OK
    );
    // The account routes are in the OpenAPI document.
    let routes = "post /api/v1/auth/register, delete /api/v1/me, post /api/v1/me/exports, post /api/v1/admin/users/{id}/access";
    common::assert_documented(&e, routes, "PreferencesPatch").await;
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

    let body = json!({"history_enabled": true, "training_consent": true});
    let r = e
        .call(Method::PATCH, "/api/v1/me/preferences", &who, Some(body))
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
    let body = json!({"corrected_caption": "anjing menangkap piringan"});
    let r = e
        .call(
            Method::PATCH,
            &format!("/api/v1/me/history/{id}"),
            &who,
            Some(body),
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
    let body = json!({"history_enabled": false});
    let r = e
        .call(Method::PATCH, "/api/v1/me/preferences", &who, Some(body))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Withdrawal: training items and their images gone at once; a later export has none.
    let body = json!({"granted": false});
    let r = e
        .call(
            Method::POST,
            "/api/v1/me/consents/training",
            &who,
            Some(body),
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
    let body = json!({"history_enabled": false, "delete_history": true});
    let r = e
        .call(Method::PATCH, "/api/v1/me/preferences", &who, Some(body))
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
        let body = json!({"history_enabled": true, "training_consent": true, "lang": "en"});
        let r = e
            .call(Method::PATCH, "/api/v1/me/preferences", &who, Some(body))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let usage_before = e
            .scalar("SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM usage_daily")
            .await;

        // Two photos and one bad file, with the session's CSRF token: the job is the user's.
        let id = create_job(&e, &who, &[Some("coffee.jpg"), None, Some("rocket.jpg")]).await;
        let s = wait_done_as(&e, &who, &id).await;
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
        // The job is the user's alone (row 12 of the hardening issue): to anyone else, with
        // or without an account, it does not exist.
        let stranger = e.register(&email("orang")).await;
        for path in [
            format!("/api/v1/jobs/{id}"),
            format!("/api/v1/jobs/{id}/results"),
        ] {
            for other in [&Who::Nobody, &stranger] {
                let r = e.call(Method::GET, &path, other, None).await;
                assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
            }
        }
        for other in [&Who::Nobody, &stranger] {
            let r = e
                .call(Method::DELETE, &format!("/api/v1/jobs/{id}"), other, None)
                .await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
        }
        let results = e
            .call(
                Method::GET,
                &format!("/api/v1/jobs/{id}/results"),
                &who,
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
        // The job's results are in the access document: base names, captions, the problem.
        let results = jobs[0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 3, "{me}");
        assert_eq!(results[0]["file"], "0.jpg");
        assert!(results[0]["captions"][0]["text"].is_string());
        assert!(results[1]["error"]["code"].is_string());
        // No personal answer may be cached: the access document, history, exports, the job and
        // its results (errors too); the static assets may.
        for path in [
            "/api/v1/me".to_string(),
            "/api/v1/me/history".to_string(),
            "/api/v1/me/exports".to_string(),
            "/api/v1/me/preferences".to_string(),
            format!("/api/v1/jobs/{id}"),
            format!("/api/v1/jobs/{id}/results"),
            format!("/api/v1/jobs/{id}/results?format=zip"),
            "/api/v1/me/history/999999".to_string(),
            "/account".to_string(),
        ] {
            let r = e.call(Method::GET, &path, &who, None).await;
            assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
        }
        let css = e
            .call(Method::GET, "/static/app.css", &Who::Nobody, None)
            .await;
        assert_ne!(css.headers()["cache-control"], "no-store");
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
        let body = json!({"password": PASSWORD});
        let r = e.call(Method::DELETE, "/api/v1/me", &who, Some(body)).await;
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

both_backends!(
    export_holds_exactly_the_documented_files_of_one_user,
    |pg| {
        let e = Env::start(pg, |_| {}).await;
        let a = email("exa");
        let b = email("exb");
        let who = active_user(&e, &a).await;
        let other = active_user(&e, &b).await;
        let body = json!({"name": "kunci-milik-budi", "scopes": ["read"]});
        let other_key = e
            .call(Method::POST, "/api/v1/me/api-keys", &other, Some(body))
            .await;
        assert_eq!(other_key.status(), StatusCode::CREATED);
        let zip = export_zip(&e, &who).await;
        let uid = e.user_id(&a).await;
        let item = &e.db().training().list(uid).await.unwrap()[0];
        assert_eq!(
            zip_names(&zip),
            vec![
                "data.json".to_string(),
                format!("training/{}.png", item.id.0)
            ]
        );
        let data = zip_file(&zip, "data.json");
        validate_against_schema(&data);
        let doc: Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(doc["schema_version"], 1);
        assert_eq!(doc["profile"]["email"], a);
        assert_eq!(doc["history"].as_array().unwrap().len(), 1);
        assert!(doc["consents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["purpose"] == "training" && c["granted"] == true));
        let stored = e.storage.blobs.get(&item.object_path).await.unwrap();
        assert_eq!(
            zip_file(&zip, &format!("training/{}.png", item.id.0)),
            stored.to_vec()
        );
        // Nothing of the other user.
        let text = String::from_utf8_lossy(&data);
        assert!(!text.contains(&b) && !text.contains("kunci-milik-budi"));
        let other_id = e.user_id(&b).await;
        assert!(!text.contains(&format!("\"id\": {},\n    \"email\"", other_id.0)));
        // The access document (GET /api/v1/me) validates too.
        let me: Value = e.get_json("/api/v1/me", &who).await;
        let mut me = me;
        me.as_object_mut().unwrap().remove("policy_notice");
        validate_against_schema(&serde_json::to_vec(&me).unwrap());
        // Revoking the link: it stops working and the ZIP is gone.
        let list: Value = e.get_json("/api/v1/me/exports", &who).await;
        let id = list["exports"][0]["id"].as_i64().unwrap();
        let r = e.call(Method::POST, "/api/v1/me/exports", &who, None).await;
        let url = r.json::<Value>().await.unwrap()["url"]
            .as_str()
            .unwrap()
            .to_string();
        let path = url[url.find("/exports/").unwrap()..].to_string();
        let list: Value = e.get_json("/api/v1/me/exports", &who).await;
        let id2 = list["exports"][1]["id"].as_i64().unwrap();
        assert_ne!(id, id2);
        assert_eq!(
            e.call(
                Method::DELETE,
                &format!("/api/v1/me/exports/{id2}"),
                &who,
                None
            )
            .await
            .status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            e.client.get(e.url(&path)).go().await.status(),
            StatusCode::GONE
        );
        assert_eq!(
            e.storage
                .blobs
                .list(&format!("users/{}/exports", uid.0))
                .await
                .unwrap()
                .len(),
            1
        );
        e.finish().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_streamed_and_never_passes_damaged_as_whole() {
    let e = Env::start(false, |_| {}).await;
    let a = email("exs");
    let who = active_user(&e, &a).await;
    assert_eq!(e.caption(&who).await.status(), StatusCode::OK);
    let uid = e.user_id(&a).await;
    let items = e.db().training().list(uid).await.unwrap();
    assert_eq!(items.len(), 2);

    // Stored encrypted in chunks (format 2), sent with the length the listing gives.
    let r = e.call(Method::POST, "/api/v1/me/exports", &who, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let size = v["size_bytes"].as_u64().unwrap();
    let url = v["url"].as_str().unwrap();
    let link = url[url.find("/exports/").unwrap()..].to_string();
    let r = e.client.get(e.url(&link)).go().await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], size.to_string().as_str());
    let zip = r.bytes().await.unwrap().to_vec();
    assert_eq!(zip.len() as u64, size);
    let mut names = vec!["data.json".to_string()];
    for item in &items {
        let name = format!("training/{}.png", item.id.0);
        let stored = e.storage.blobs.get(&item.object_path).await.unwrap();
        assert_eq!(zip_file(&zip, &name), stored.to_vec());
        names.push(name);
    }
    names.sort();
    let mut got = zip_names(&zip);
    got.sort();
    assert_eq!(got, names);
    let prefix = format!("users/{}/exports", uid.0);
    let exports = e.storage.blobs.list(&prefix).await.unwrap();
    assert_eq!(exports.len(), 1);
    let raw = stored_bytes(&e.storage.blobs, &exports[0]).await;
    assert!(raw.starts_with(b"TKRB\x02"));
    assert!(size > 2 * 64 * 1024, "several chunks: {size} bytes");

    // A chunk damaged at rest: the download breaks off, it never arrives whole with wrong bytes.
    let mut bad = raw.clone();
    let at = bad.len() - 100;
    bad[at] ^= 1;
    put_stored_bytes(&e.storage.blobs, &exports[0], bad).await;
    let r = e.client.get(e.url(&link)).go().await;
    assert!(
        r.bytes().await.is_err(),
        "a damaged export must not download in full"
    );
    put_stored_bytes(&e.storage.blobs, &exports[0], raw).await;
    let r = e.client.get(e.url(&link)).go().await;
    assert_eq!(r.bytes().await.unwrap().to_vec(), zip);

    // A training image that cannot be read: no export, and no partial ZIP left behind.
    put_stored_bytes(
        &e.storage.blobs,
        &items[1].object_path,
        b"not one of ours".to_vec(),
    )
    .await;
    let r = e.call(Method::POST, "/api/v1/me/exports", &who, None).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(e.storage.blobs.list(&prefix).await.unwrap(), exports);
    // Listed as failed (so the user knows), with nothing stored.
    let list: Value = e.get_json("/api/v1/me/exports", &who).await;
    let statuses: Vec<&str> = list["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ready", "failed"]);
    e.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_is_made_in_the_background_and_its_link_waits_for_it() {
    // No waiting in the request: every export answers 202 at once and is made afterwards.
    let e = Env::start(false, |c| c.export_wait_seconds = 0).await;
    let a = email("exbg");
    let who = active_user(&e, &a).await;
    assert_eq!(e.caption(&who).await.status(), StatusCode::OK);
    let uid = e.user_id(&a).await;
    let r = e.call(Method::POST, "/api/v1/me/exports", &who, None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "pending");
    let url = v["url"].as_str().unwrap();
    let link = url[url.find("/exports/").unwrap()..].to_string();
    // Listed pending until its ZIP is stored, then ready with its size.
    let mut ready = Value::Null;
    for _ in 0..300 {
        let list: Value = e.get_json("/api/v1/me/exports", &who).await;
        let x = list["exports"][0].clone();
        assert_eq!(x["id"], v["id"]);
        match x["status"].as_str().unwrap() {
            "pending" => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => {
                ready = x;
                break;
            }
        }
    }
    assert_eq!(ready["status"], "ready", "made within 30 s: {ready}");
    let r = e.client.get(e.url(&link)).go().await;
    assert_eq!(r.status(), StatusCode::OK);
    let zip = r.bytes().await.unwrap().to_vec();
    assert_eq!(zip.len() as u64, ready["size_bytes"].as_u64().unwrap());
    let data: Value = serde_json::from_slice(&zip_file(&zip, "data.json")).unwrap();
    assert_eq!(data["profile"]["email"], a.as_str());
    assert_eq!(
        zip_names(&zip).len(),
        3,
        "data.json and the two training images"
    );

    // A link whose export is still being made answers 409 with Retry-After, in the user's
    // language; one that could not be made answers 410. (Rows made directly, so the state is
    // certain when the link is asked for.)
    let expires = time::OffsetDateTime::now_utc() + time::Duration::days(7);
    let pending = e
        .db()
        .exports()
        .create(uid, "tok-pending", "users/none/exports/none.zip", expires)
        .await
        .unwrap();
    let link = e.client.get(e.url("/exports/tok-pending"));
    let r = link.header("accept-language", "id").go().await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(r.headers()["retry-after"], "5");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "export_pending");
    assert_eq!(p["title"], "Ekspor sedang disiapkan");
    e.db().exports().fail(pending.id).await.unwrap();
    let r = e.client.get(e.url("/exports/tok-pending")).go().await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "export_failed");

    // Revoked while being made: once made, its ZIP is deleted rather than kept.
    let prefix = format!("users/{}/exports", uid.0);
    let before = e.storage.blobs.list(&prefix).await.unwrap();
    assert_eq!(before.len(), 1);
    let r = e.call(Method::POST, "/api/v1/me/exports", &who, None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let r = e
        .call(
            Method::DELETE,
            &format!("/api/v1/me/exports/{id}"),
            &who,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The background task may still be uploading: the listing must settle back to the first
    // export alone and stay so.
    let mut settled = 0;
    for _ in 0..100 {
        if e.storage.blobs.list(&prefix).await.unwrap() == before {
            settled += 1;
            if settled == 20 {
                break;
            }
        } else {
            settled = 0;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(settled, 20, "the revoked export's ZIP is not left behind");
    e.finish().await;
}

both_backends!(erasure_leaves_nothing_of_the_user, |pg| {
    let e = Env::start(pg, |_| {}).await;
    let a = email("hapus");
    let b = email("tetap");
    // An admin, made the way the command line does (never by sign-up).
    let admin_addr = email("admin");
    let admin = e.admin(&admin_addr).await;

    let who = active_user(&e, &a).await;
    let other = active_user(&e, &b).await;
    let uid = e.user_id(&a).await;
    let other_id = e.user_id(&b).await;
    // A second session, API keys, an export, a correction, audit entries about the user.
    let second = Who::from_login(e.login(&a, PASSWORD, None).await).await;
    for who in [&who, &other] {
        let body = json!({"name": "k", "scopes": ["captions", "read"]});
        let r = e
            .call(Method::POST, "/api/v1/me/api-keys", who, Some(body))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        export_zip(&e, who).await;
    }
    for (id, reason) in [
        (uid, "tiket dukungan #12"),
        (other_id, "tiket dukungan #13"),
    ] {
        let body = json!({"reason": reason});
        let r = e
            .call(
                Method::POST,
                &format!("/api/v1/admin/users/{}/access", id.0),
                &admin,
                Some(body),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Without a reason staff get nothing; a non-admin gets nothing.
    let body = json!({"reason": " "});
    let r = e
        .call(
            Method::POST,
            &format!("/api/v1/admin/users/{}/access", uid.0),
            &admin,
            Some(body),
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
    // ... and which staff member looked, with their role.
    let admin_id = e.user_id(&admin_addr).await;
    assert_eq!(me["audit"][0]["actor_id"], admin_id.0);
    assert_eq!(me["audit"][0]["actor_role"], "admin");
    // The unused verification link is held too: where it was sent, never its token.
    let tokens = me["email_tokens"].as_array().unwrap();
    assert!(
        tokens
            .iter()
            .any(|t| t["purpose"] == "verify" && t["email"] == a.as_str()),
        "{me}"
    );
    assert!(tokens
        .iter()
        .all(|t| t.get("token").is_none() && t.get("token_hash").is_none()));
    // The export's data.json (the same document) validates against the committed schema.
    validate_against_schema(&zip_file(&export_zip(&e, &who).await, "data.json"));

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
    let body = json!({"password": "bukan-kata-sandinya"});
    let r = e.call(Method::DELETE, "/api/v1/me", &who, Some(body)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let subject = e
        .db()
        .users()
        .get(uid)
        .await
        .unwrap()
        .unwrap()
        .subject_hash();
    let body = json!({"password": PASSWORD});
    let r = e.call(Method::DELETE, "/api/v1/me", &who, Some(body)).await;
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

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Row 7 of the hardening issue: after an erasure (204) the address and a corrected caption
/// were still readable in the SQLite WAL and in free pages of `takarir.db`. With
/// `secure_delete` and a WAL checkpoint, none of their bytes is in any file of the data
/// directory once the request returns. Also row 12: that directory and everything in it is
/// the service user's only (0700 / 0600).
#[tokio::test]
async fn erasure_leaves_no_bytes_in_the_data_directory() {
    use std::os::unix::fs::PermissionsExt;
    let e = Env::start(false, |_| {}).await;
    let addr = email("jejak");
    let who = active_user(&e, &addr).await;
    let me: Value = e.get_json("/api/v1/me", &who).await;
    let id = me["history"][0]["id"].as_i64().unwrap();
    let correction = format!("kucing-belang-{}-tidur", std::process::id());
    let body = json!({ "corrected_caption": correction });
    let r = e
        .call(
            Method::PATCH,
            &format!("/api/v1/me/history/{id}"),
            &who,
            Some(body),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Another account, so that the pages are shared and the database stays in use.
    active_user(&e, &email("tetangga")).await;
    let contains = |needle: &[u8]| -> Vec<PathBuf> {
        files_under(e.data_dir())
            .into_iter()
            .filter(|f| {
                let bytes = std::fs::read(f).unwrap();
                bytes.windows(needle.len()).any(|w| w == needle)
            })
            .collect()
    };
    // Before: the test can see them (it would pass for nothing otherwise).
    assert!(
        !contains(addr.as_bytes()).is_empty(),
        "the address is stored"
    );
    assert!(
        !contains(correction.as_bytes()).is_empty(),
        "the correction is stored"
    );

    let body = json!({ "password": PASSWORD });
    let r = e.call(Method::DELETE, "/api/v1/me", &who, Some(body)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        contains(addr.as_bytes()),
        Vec::<PathBuf>::new(),
        "address left"
    );
    assert_eq!(
        contains(correction.as_bytes()),
        Vec::<PathBuf>::new(),
        "correction left"
    );

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(e.data_dir()), 0o700);
    let files = files_under(e.data_dir());
    assert!(files.iter().any(|f| f.ends_with("takarir.db")));
    assert!(files
        .iter()
        .any(|f| f.starts_with(e.data_dir().join("objects"))));
    for f in &files {
        assert_eq!(mode(f) & 0o077, 0, "{} is {:o}", f.display(), mode(f));
        let mut dir = f.parent().unwrap();
        while dir != e.data_dir() {
            assert_eq!(mode(dir) & 0o077, 0, "{} is {:o}", dir.display(), mode(dir));
            dir = dir.parent().unwrap();
        }
    }
    e.finish().await;
}

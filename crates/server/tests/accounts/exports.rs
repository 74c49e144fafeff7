//! Data exports: exactly the documented files of one user, streamed and never passed damaged as whole, made in the background.

use super::*;

both_backends!(
    export_holds_exactly_the_documented_files_of_one_user,
    |pg| {
        let e = Env::start(pg, |_| {}).await;
        let a = email("exa");
        let b = email("exb");
        let who = active_user(&e, &a).await;
        let other = active_user(&e, &b).await;
        let other_key = e
            .call(
                Method::POST,
                "/api/v1/me/api-keys",
                &other,
                Some(json!({"name": "kunci-milik-budi", "scopes": ["read"]})),
            )
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
    let r = e
        .client
        .get(e.url("/exports/tok-pending"))
        .header("accept-language", "id")
        .go()
        .await;
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

//! Every database test runs twice: on SQLite (a temp file) and on PostgreSQL (a fresh database
//! in the server named by TAKARIR_TEST_POSTGRES_URL, which `scripts/test-services` starts).
//! Without that variable the PostgreSQL half fails; it is never skipped.

use takarir_store::consents::{PURPOSE_POLICY, PURPOSE_TRAINING};
use takarir_store::email_tokens::TokenPurpose;
use takarir_store::exports;
use takarir_store::history::{HistoryId, HistoryQuery, NewHistoryEntry};
use takarir_store::preferences::Preferences;
use takarir_store::training::NewTrainingItem;
use takarir_store::users::{NewUser, Role, User, UserId};
use takarir_store::{Backend, Db, Error};
use time::macros::date;
use time::{Duration, OffsetDateTime};

/// A database for one test, and what is needed to reopen it and clean it up.
struct TestDb {
    db: Db,
    url: String,
    /// SQLite: the directory holding the file.
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the server URL and the name of the database this test created.
    pg: Option<(String, String)>,
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/takarir.db", dir.path().display());
        let db = Db::connect(&url).await.unwrap();
        TestDb {
            db,
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    async fn postgres() -> TestDb {
        let (server, url, name) =
            takarir_store::test_support::fresh_postgres_database("takarir_test").await;
        let db = Db::connect(&url).await.unwrap();
        TestDb {
            db,
            url,
            _dir: None,
            pg: Some((server, name)),
        }
    }

    /// Drops the test's PostgreSQL database (after a passing test; a failed one leaves it to look at).
    async fn finish(self) {
        self.db.close().await;
        if let Some((server, name)) = self.pg {
            takarir_store::test_support::drop_postgres_database(&server, &name).await;
        }
    }
}

/// `both_backends!(name, |db, url| { body })` defines `name::sqlite` and `name::postgres`,
/// which run the same body with `db: &Db` and `url: &str`.
macro_rules! both_backends {
    ($name:ident, |$db:ident, $url:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let t = TestDb::sqlite().await;
                {
                    #[allow(unused_variables)]
                    let ($db, $url): (&Db, &str) = (&t.db, &t.url);
                    assert_eq!($db.backend(), Backend::Sqlite);
                    $body
                }
                t.finish().await;
            }

            #[tokio::test]
            async fn postgres() {
                let t = TestDb::postgres().await;
                {
                    #[allow(unused_variables)]
                    let ($db, $url): (&Db, &str) = (&t.db, &t.url);
                    assert_eq!($db.backend(), Backend::Postgres);
                    $body
                }
                t.finish().await;
            }
        }
    };
}

async fn user(db: &Db, email: &str) -> User {
    db.users()
        .create(NewUser {
            email,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            role: Role::User,
        })
        .await
        .unwrap()
}

fn entry(caption: &str) -> NewHistoryEntry<'_> {
    NewHistoryEntry {
        caption,
        lang: "id",
        style: "alt",
        width: 640,
        height: 480,
        format: "jpeg",
    }
}

async fn rows_of(db: &Db, table: &str, column: &str, id: UserId) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1");
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(&sql).bind(id.0).fetch_one(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar(&sql).bind(id.0).fetch_one(pool).await,
    }
    .unwrap()
}

both_backends!(migrations_run_once_and_reopen_keeps_data, |db, url| {
    let alice = user(db, "alice@example.org").await;
    // A second connect runs the migrations again: a no-op that keeps the data.
    let again = Db::connect(url).await.unwrap();
    assert_eq!(
        again.users().get(alice.id).await.unwrap().unwrap().email,
        "alice@example.org"
    );
    again.close().await;
});

both_backends!(users_create_get_list_update, |db, url| {
    let alice = user(db, "  Alice@Example.ORG ").await;
    assert_eq!(alice.email, "alice@example.org");
    assert_eq!(alice.role, Role::User);
    assert!(alice.email_verified_at.is_none());
    assert!(OffsetDateTime::now_utc() - alice.created_at < Duration::minutes(1));
    let bob = user(db, "bob@example.org").await;
    assert!(bob.id > alice.id);

    let users = db.users();
    assert_eq!(users.get(alice.id).await.unwrap().as_ref(), Some(&alice));
    assert_eq!(users.get(UserId(999_999)).await.unwrap(), None);
    assert_eq!(
        users
            .get_by_email("ALICE@example.org")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(alice.id)
    );
    assert_eq!(
        users.get_by_email("nobody@example.org").await.unwrap(),
        None
    );
    assert_eq!(users.count().await.unwrap(), 2);
    let all = users.list(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|u| u.id).collect::<Vec<_>>(),
        [alice.id, bob.id]
    );
    let page = users.list(Some(alice.id), 10).await.unwrap();
    assert_eq!(page.iter().map(|u| u.id).collect::<Vec<_>>(), [bob.id]);
    assert_eq!(users.list(None, 1).await.unwrap().len(), 1);

    let verified_at = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    users
        .mark_email_verified(alice.id, verified_at)
        .await
        .unwrap();
    assert_eq!(
        users
            .get(alice.id)
            .await
            .unwrap()
            .unwrap()
            .email_verified_at,
        Some(verified_at)
    );
    // A new address is unverified again.
    users
        .set_email(alice.id, "alice@new.example")
        .await
        .unwrap();
    let changed = users.get(alice.id).await.unwrap().unwrap();
    assert_eq!(changed.email, "alice@new.example");
    assert_eq!(changed.email_verified_at, None);
    users
        .set_password_hash(alice.id, "$argon2id$new")
        .await
        .unwrap();
    users.set_role(alice.id, Role::Admin).await.unwrap();
    let changed = users.get(alice.id).await.unwrap().unwrap();
    assert_eq!(changed.password_hash, "$argon2id$new");
    assert_eq!(changed.role, Role::Admin);
    // The salt behind the erasure hash never changes.
    assert_eq!(changed.subject_hash(), alice.subject_hash());
    // Debug output does not show the password hash.
    assert!(!format!("{changed:?}").contains("argon2id"));

    assert!(matches!(
        users.set_role(UserId(999_999), Role::Admin).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        users
            .mark_email_verified(UserId(999_999), verified_at)
            .await,
        Err(Error::NotFound)
    ));
});

both_backends!(users_email_is_unique_case_insensitively, |db, url| {
    let alice = user(db, "alice@example.org").await;
    let bob = user(db, "bob@example.org").await;
    let again = db
        .users()
        .create(NewUser {
            email: "ALICE@example.org",
            password_hash: "x",
            role: Role::User,
        })
        .await;
    assert!(matches!(again, Err(Error::Conflict("email"))), "{again:?}");
    let taken = db.users().set_email(bob.id, "Alice@Example.org").await;
    assert!(matches!(taken, Err(Error::Conflict("email"))), "{taken:?}");
    let invalid = db
        .users()
        .create(NewUser {
            email: "not-an-address",
            password_hash: "x",
            role: Role::User,
        })
        .await;
    assert!(matches!(invalid, Err(Error::Invalid("email", _))));
    assert_eq!(db.users().count().await.unwrap(), 2);
    assert_eq!(
        db.users().get(alice.id).await.unwrap().unwrap().email,
        "alice@example.org"
    );
});

both_backends!(preferences_default_off_set_get_delete, |db, url| {
    let alice = user(db, "alice@example.org").await;
    let prefs = db.preferences();
    assert_eq!(prefs.get(alice.id).await.unwrap(), None);
    let defaults = prefs.get_or_default(alice.id).await.unwrap();
    assert!(!defaults.history_enabled, "history must be off by default");
    assert!(
        !defaults.training_consent,
        "training consent must be off by default"
    );

    let mine = Preferences {
        lang: Some("id".into()),
        style: Some("alt".into()),
        alternatives: Some(3),
        history_enabled: true,
        training_consent: false,
    };
    let stored = prefs.set(alice.id, &mine).await.unwrap();
    assert_eq!(stored.user_id, alice.id);
    assert_eq!(stored.preferences, mine);
    assert_eq!(prefs.get(alice.id).await.unwrap(), Some(stored.clone()));

    // Setting again replaces (one row per user).
    let changed = Preferences {
        lang: None,
        training_consent: true,
        ..mine.clone()
    };
    prefs.set(alice.id, &changed).await.unwrap();
    assert_eq!(prefs.get_or_default(alice.id).await.unwrap(), changed);
    assert_eq!(
        prefs.list_training_consenters(None, 10).await.unwrap(),
        [alice.id]
    );

    let bad = Preferences {
        alternatives: Some(0),
        ..Preferences::default()
    };
    assert!(matches!(
        prefs.set(alice.id, &bad).await,
        Err(Error::Invalid("alternatives", _))
    ));
    // The foreign key holds: no preferences for a user who does not exist.
    assert!(matches!(
        prefs.set(UserId(999_999), &mine).await,
        Err(Error::NotFound)
    ));

    assert!(prefs.delete(alice.id).await.unwrap());
    assert!(!prefs.delete(alice.id).await.unwrap());
    assert_eq!(prefs.get(alice.id).await.unwrap(), None);
    assert!(prefs
        .list_training_consenters(None, 10)
        .await
        .unwrap()
        .is_empty());
});

both_backends!(
    history_create_get_correct_delete_scoped_to_user,
    |db, url| {
        let alice = user(db, "alice@example.org").await;
        let bob = user(db, "bob@example.org").await;
        let history = db.history();
        let first = history
            .create(alice.id, entry("Seekor kucing di atas meja"))
            .await
            .unwrap();
        assert_eq!(first.user_id, alice.id);
        assert_eq!((first.width, first.height), (640, 480));
        assert_eq!(first.format, "jpeg");
        assert_eq!(first.corrected_caption, None);
        assert_eq!(
            history.get(alice.id, first.id).await.unwrap(),
            Some(first.clone())
        );
        // Bob cannot see, correct or delete Alice's entry.
        assert_eq!(history.get(bob.id, first.id).await.unwrap(), None);
        assert!(matches!(
            history.correct(bob.id, first.id, Some("mine now")).await,
            Err(Error::NotFound)
        ));
        assert!(matches!(
            history.delete(bob.id, first.id).await,
            Err(Error::NotFound)
        ));

        // The correction is kept beside the model's caption.
        history
            .correct(
                alice.id,
                first.id,
                Some("Seekor kucing oranye di atas meja"),
            )
            .await
            .unwrap();
        let corrected = history.get(alice.id, first.id).await.unwrap().unwrap();
        assert_eq!(corrected.caption, "Seekor kucing di atas meja");
        assert_eq!(
            corrected.final_caption(),
            "Seekor kucing oranye di atas meja"
        );
        history.correct(alice.id, first.id, None).await.unwrap();
        assert_eq!(
            history
                .get(alice.id, first.id)
                .await
                .unwrap()
                .unwrap()
                .corrected_caption,
            None
        );

        let second = history.create(alice.id, entry("A dog")).await.unwrap();
        history.create(bob.id, entry("Bob's cat")).await.unwrap();
        assert_eq!(history.count(alice.id).await.unwrap(), 2);
        history.delete(alice.id, first.id).await.unwrap();
        assert_eq!(history.get(alice.id, first.id).await.unwrap(), None);
        assert!(matches!(
            history.delete(alice.id, first.id).await,
            Err(Error::NotFound)
        ));
        assert_eq!(history.delete_all(alice.id).await.unwrap(), 1);
        assert_eq!(history.get(alice.id, second.id).await.unwrap(), None);
        assert_eq!(history.count(alice.id).await.unwrap(), 0);
        assert_eq!(history.count(bob.id).await.unwrap(), 1);

        assert!(matches!(
            history.create(UserId(999_999), entry("x")).await,
            Err(Error::NotFound)
        ));
    }
);

both_backends!(history_list_pages_newest_first_and_searches, |db, url| {
    let alice = user(db, "alice@example.org").await;
    let bob = user(db, "bob@example.org").await;
    let history = db.history();
    let mut ids: Vec<HistoryId> = Vec::new();
    for caption in [
        "A red BICYCLE",
        "100% cotton shirt",
        "a cat",
        "snake_case sign",
        "Kucing",
    ] {
        ids.push(history.create(alice.id, entry(caption)).await.unwrap().id);
    }
    history.create(bob.id, entry("a cat of Bob")).await.unwrap();
    let cat = ids[2];
    history
        .correct(alice.id, ids[4], Some("An orange cat"))
        .await
        .unwrap();

    let captions = |list: &[takarir_store::history::HistoryEntry]| {
        list.iter().map(|e| e.id).collect::<Vec<_>>()
    };
    let all = history
        .list(alice.id, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(
        captions(&all),
        ids.iter().rev().copied().collect::<Vec<_>>()
    );
    let page1 = history
        .list(
            alice.id,
            HistoryQuery {
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(captions(&page1), [ids[4], ids[3]]);
    let page2 = history
        .list(
            alice.id,
            HistoryQuery {
                limit: 2,
                before: Some(ids[3]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(captions(&page2), [ids[2], ids[1]]);

    let alice_id = alice.id;
    let search = |needle: &'static str| {
        let history = db.history();
        async move {
            let found = history
                .list(
                    alice_id,
                    HistoryQuery {
                        search: Some(needle),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            found.iter().map(|e| e.id).collect::<Vec<_>>()
        }
    };
    // Case-insensitive on both backends; the correction is searched too; Bob's is not.
    assert_eq!(search("CAT").await, [ids[4], cat]);
    assert_eq!(search("bicycle").await, [ids[0]]);
    // LIKE wildcards in the needle are literal.
    assert_eq!(search("100%").await, [ids[1]]);
    assert_eq!(search("%").await, [ids[1]]);
    assert_eq!(search("e_c").await, [ids[3]]);
    assert!(search("nothing like this").await.is_empty());

    // Retention: nothing is older than an hour ago; everything is older than a minute ahead.
    let hour_ago = OffsetDateTime::now_utc() - Duration::hours(1);
    assert_eq!(
        history.delete_older_than(alice.id, hour_ago).await.unwrap(),
        0
    );
    let ahead = OffsetDateTime::now_utc() + Duration::minutes(1);
    assert_eq!(history.delete_older_than(alice.id, ahead).await.unwrap(), 5);
    assert_eq!(history.count(bob.id).await.unwrap(), 1);
});

both_backends!(consents_ledger_is_append_only, |db, url| {
    let alice = user(db, "alice@example.org").await;
    let bob = user(db, "bob@example.org").await;
    let consents = db.consents();
    assert!(!consents
        .is_granted(alice.id, PURPOSE_TRAINING)
        .await
        .unwrap());
    assert_eq!(
        consents.latest(alice.id, PURPOSE_TRAINING).await.unwrap(),
        None
    );

    let grant = consents
        .record(alice.id, PURPOSE_TRAINING, true, "2026-11-01")
        .await
        .unwrap();
    assert!(grant.granted);
    assert_eq!(grant.policy_version, "2026-11-01");
    assert!(consents
        .is_granted(alice.id, PURPOSE_TRAINING)
        .await
        .unwrap());
    consents
        .record(alice.id, PURPOSE_POLICY, true, "2026-11-01")
        .await
        .unwrap();
    let withdrawal = consents
        .record(alice.id, PURPOSE_TRAINING, false, "2026-11-01")
        .await
        .unwrap();
    assert!(!consents
        .is_granted(alice.id, PURPOSE_TRAINING)
        .await
        .unwrap());
    assert!(consents.is_granted(alice.id, PURPOSE_POLICY).await.unwrap());
    assert_eq!(
        consents.latest(alice.id, PURPOSE_TRAINING).await.unwrap(),
        Some(withdrawal.clone())
    );
    consents
        .record(bob.id, PURPOSE_TRAINING, true, "2026-11-01")
        .await
        .unwrap();

    // The whole history stays, oldest first.
    let ledger = consents.list(alice.id).await.unwrap();
    assert_eq!(ledger.len(), 3);
    assert_eq!(ledger[0], grant);
    assert_eq!(ledger[2], withdrawal);
    assert_eq!(
        consents.get(alice.id, grant.id).await.unwrap(),
        Some(grant.clone())
    );
    assert_eq!(consents.get(bob.id, grant.id).await.unwrap(), None);

    // The database itself refuses to rewrite the ledger.
    let rewrite = "UPDATE consents SET granted = TRUE WHERE id = $1";
    let refused = match db {
        Db::Sqlite(pool) => sqlx::query(rewrite)
            .bind(withdrawal.id)
            .execute(pool)
            .await
            .err(),
        Db::Postgres(pool) => sqlx::query(rewrite)
            .bind(withdrawal.id)
            .execute(pool)
            .await
            .err(),
    };
    let refused = refused.expect("an UPDATE of consents must fail");
    assert!(refused.to_string().contains("append-only"), "{refused}");
    assert!(!consents
        .is_granted(alice.id, PURPOSE_TRAINING)
        .await
        .unwrap());

    assert!(matches!(
        consents
            .record(UserId(999_999), PURPOSE_TRAINING, true, "v1")
            .await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        consents.record(alice.id, "", true, "v1").await,
        Err(Error::Invalid(..))
    ));
});

both_backends!(usage_daily_counts_aggregate, |db, url| {
    let usage = db.usage();
    let day1 = date!(2026 - 11 - 28);
    let day2 = date!(2026 - 11 - 29);
    usage.add(day1, "id", "alt", 1).await.unwrap();
    usage.add(day1, "id", "alt", 2).await.unwrap();
    usage.add(day1, "en", "alt", 1).await.unwrap();
    usage.add(day2, "id", "detailed", 5).await.unwrap();
    let one = usage.get(day1, "id", "alt").await.unwrap().unwrap();
    assert_eq!(one.count, 3);
    assert_eq!(one.day, day1);
    assert_eq!(usage.get(day2, "en", "alt").await.unwrap(), None);

    let rows = usage.list(day1, day2).await.unwrap();
    let flat: Vec<_> = rows
        .iter()
        .map(|r| (r.day, r.lang.as_str(), r.style.as_str(), r.count))
        .collect();
    assert_eq!(
        flat,
        [
            (day1, "en", "alt", 1),
            (day1, "id", "alt", 3),
            (day2, "id", "detailed", 5)
        ]
    );
    assert_eq!(usage.list(day2, day2).await.unwrap().len(), 1);
    assert!(matches!(
        usage.add(day1, "", "alt", 1).await,
        Err(Error::Invalid(..))
    ));
    assert_eq!(usage.delete_before(day2).await.unwrap(), 2);
    assert_eq!(usage.list(day1, day2).await.unwrap().len(), 1);
});

both_backends!(
    delete_user_everywhere_leaves_nothing_of_the_user,
    |db, url| {
        let alice = user(db, "alice@example.org").await;
        let bob = user(db, "bob@example.org").await;
        for u in [&alice, &bob] {
            db.preferences()
                .set(
                    u.id,
                    &Preferences {
                        history_enabled: true,
                        training_consent: true,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            db.history().create(u.id, entry("one")).await.unwrap();
            db.history().create(u.id, entry("two")).await.unwrap();
            db.consents()
                .record(u.id, PURPOSE_TRAINING, true, "v1")
                .await
                .unwrap();
            // One row in each account table.
            let tag = u.id.0.to_string();
            let later = OffsetDateTime::now_utc() + Duration::days(1);
            db.sessions()
                .create(u.id, &format!("session-{tag}"), "csrf", later)
                .await
                .unwrap();
            db.email_tokens()
                .create(
                    u.id,
                    TokenPurpose::Verify,
                    &format!("verify-{tag}"),
                    &u.email,
                    later,
                )
                .await
                .unwrap();
            db.api_keys()
                .create(u.id, "k", &format!("key-{tag}"), &["read"])
                .await
                .unwrap();
            db.user_usage()
                .add(u.id, date!(2026 - 11 - 29), "id", "alt", 1)
                .await
                .unwrap();
            db.training()
                .create(
                    u.id,
                    NewTrainingItem {
                        object_path: &format!("users/{tag}/training/x"),
                        history_id: None,
                        caption: "c",
                        lang: "id",
                        format: "jpeg",
                    },
                )
                .await
                .unwrap();
            db.exports()
                .create(u.id, &format!("export-{tag}"), "p", later)
                .await
                .unwrap();
            assert!(db.policy_notices().claim(u.id, "1.0").await.unwrap());
        }
        // Audit entries about each, each written by the other (as if both were admins).
        db.audit()
            .record(alice.id, bob.id, "view", "ticket 1")
            .await
            .unwrap();
        db.audit()
            .record(bob.id, alice.id, "view", "ticket 2")
            .await
            .unwrap();
        db.usage()
            .add(date!(2026 - 11 - 29), "id", "alt", 4)
            .await
            .unwrap();
        for (u, id) in [(&alice, "job-alice"), (&bob, "job-bob")] {
            db.jobs()
                .create(&takarir_store::jobs::NewJob {
                    id,
                    user_id: Some(u.id),
                    options: "{}",
                    webhook_url: None,
                    webhook_secret: None,
                    expires_ms: takarir_store::jobs::now_ms() + 60_000,
                })
                .await
                .unwrap();
            db.jobs().add_pending(id, 0, "a.jpg").await.unwrap();
        }
        let hash = alice.subject_hash();

        let report = db.delete_user_everywhere(alice.id).await.unwrap();
        assert_eq!(
            (report.history, report.consents, report.preferences),
            (2, 1, 1)
        );
        assert_eq!(report.account_rows, 9);
        // Bob keeps the entry about him, without the erased admin.
        let bob_audit = db.audit().list(bob.id).await.unwrap();
        assert_eq!(bob_audit.len(), 1);
        assert_eq!(bob_audit[0].actor_id, None);
        assert_eq!(bob_audit[0].reason, "ticket 2");
        assert_eq!(report.entry.subject_hash, hash);

        // Every table with a user_id column, as the schema stands, holds nothing of Alice.
        let tables = takarir_store::test_support::tables_with_user_id(db).await;
        for expected in [
            "consents",
            "history",
            "preferences",
            "sessions",
            "email_tokens",
            "api_keys",
            "user_usage_daily",
            "training_items",
            "exports",
            "audit_log",
            "policy_notices",
            "jobs",
        ] {
            assert!(tables.iter().any(|t| t == expected), "{tables:?}");
        }
        for table in &tables {
            assert_eq!(rows_of(db, table, "user_id", alice.id).await, 0, "{table}");
            assert!(rows_of(db, table, "user_id", bob.id).await > 0, "{table}");
        }
        assert_eq!(rows_of(db, "users", "id", alice.id).await, 0);
        // A job's items go with it.
        assert_eq!(db.jobs().items("job-alice").await.unwrap().len(), 0);
        assert_eq!(db.jobs().items("job-bob").await.unwrap().len(), 1);
        assert_eq!(db.users().get(alice.id).await.unwrap(), None);
        assert_eq!(
            db.users().get_by_email("alice@example.org").await.unwrap(),
            None
        );
        // Bob's data is untouched; aggregate counters stay.
        assert_eq!(db.history().count(bob.id).await.unwrap(), 2);
        assert_eq!(db.consents().list(bob.id).await.unwrap().len(), 1);
        assert!(db.preferences().get(bob.id).await.unwrap().is_some());
        assert_eq!(
            db.usage()
                .get(date!(2026 - 11 - 29), "id", "alt")
                .await
                .unwrap()
                .unwrap()
                .count,
            4
        );

        // The log names the erasure without personal data: not the id, not the email.
        let log = db.erasure_log().list(None, 0).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0], report.entry);
        assert_eq!(
            db.erasure_log().get(report.entry.id).await.unwrap(),
            Some(report.entry.clone())
        );
        assert!(db.erasure_log().contains(&hash).await.unwrap());
        assert!(!db
            .erasure_log()
            .contains(&bob.subject_hash())
            .await
            .unwrap());
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("alice"));
        assert_ne!(hash, bob.subject_hash());
        // Same id, other salt: another hash (the id alone cannot be enumerated into it).
        assert_ne!(
            hash,
            takarir_store::erasure::subject_hash(alice.id, &[0; 32])
        );

        // Erasing twice finds nothing and logs nothing.
        assert!(matches!(
            db.delete_user_everywhere(alice.id).await,
            Err(Error::NotFound)
        ));
        assert_eq!(db.erasure_log().list(None, 0).await.unwrap().len(), 1);
        // Ids are not reused: a new account never inherits an erased one's id.
        let carol = user(db, "alice@example.org").await;
        assert!(carol.id > bob.id);
        assert_ne!(carol.subject_hash(), hash);
    }
);

both_backends!(concurrent_writers_all_succeed, |db, url| {
    // Many writers at once (the service's request handlers): WAL and the busy timeout on
    // SQLite, row locks on PostgreSQL; no write may fail or be lost.
    let users: Vec<User> = futures_util::future::join_all(
        (0..8).map(|i| async move { user(db, &format!("user{i}@example.org")).await }),
    )
    .await;
    let writes = users.iter().flat_map(|u| {
        (0..10).map(move |i| async move {
            db.history()
                .create(u.id, entry("concurrent"))
                .await
                .unwrap();
            db.usage()
                .add(date!(2026 - 11 - 29), "id", "alt", 1)
                .await
                .unwrap();
            if i == 9 {
                db.consents()
                    .record(u.id, PURPOSE_TRAINING, true, "v1")
                    .await
                    .unwrap();
            }
        })
    });
    futures_util::future::join_all(writes).await;
    for u in &users {
        assert_eq!(db.history().count(u.id).await.unwrap(), 10);
    }
    let counter = db.usage().get(date!(2026 - 11 - 29), "id", "alt").await;
    assert_eq!(counter.unwrap().unwrap().count, 80);
    // Erasures racing each other: each user erased exactly once.
    let erasures = futures_util::future::join_all(
        users
            .iter()
            .flat_map(|u| [u.id, u.id])
            .map(|id| async move { db.delete_user_everywhere(id).await }),
    )
    .await;
    assert_eq!(erasures.iter().filter(|r| r.is_ok()).count(), 8);
    assert!(erasures
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, Error::NotFound)));
    assert_eq!(db.users().count().await.unwrap(), 0);
    assert_eq!(db.erasure_log().list(None, 0).await.unwrap().len(), 8);
});

#[tokio::test]
async fn sqlite_is_created_on_first_run_with_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested/dir/takarir.db");
    assert!(!file.exists());
    let db = Db::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    assert!(file.exists());
    let Db::Sqlite(pool) = &db else {
        panic!("expected SQLite")
    };
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(fk, 1);
    db.close().await;
}

#[tokio::test]
async fn sqlite_in_memory_works() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    let alice = user(&db, "alice@example.org").await;
    assert_eq!(
        db.users().get(alice.id).await.unwrap().unwrap().id,
        alice.id
    );
}

#[tokio::test]
async fn unsupported_database_url_is_refused_without_echoing_it() {
    let err = Db::connect("mysql://root:secret@localhost/db")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnsupportedDatabaseUrl(_)));
    assert!(!err.to_string().contains("secret"));
}

both_backends!(jobs_lease_and_exactly_once, |db, _url| {
    use takarir_store::jobs::NewJob;
    let jobs = db.jobs();
    let far = takarir_store::jobs::now_ms() + 3_600_000;
    jobs.create(&NewJob {
        id: "j1",
        user_id: None,
        options: "{}",
        webhook_url: None,
        webhook_secret: None,
        expires_ms: far,
    })
    .await
    .unwrap();
    for i in 0..5 {
        jobs.add_pending("j1", i, &format!("f{i}.jpg"))
            .await
            .unwrap();
    }
    jobs.add_failed("j1", 5, "../evil", "{\"error\":1}")
        .await
        .unwrap();
    // Not sealed yet: nothing is handed out.
    assert!(jobs.claim("node-a", 3, 60_000).await.unwrap().is_empty());
    assert!(jobs
        .seal("j1", 6, "{\"lang\":\"en\"}")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        jobs.get("j1").await.unwrap().unwrap().options,
        "{\"lang\":\"en\"}"
    );
    let a = jobs.claim("node-a", 3, 60_000).await.unwrap();
    assert_eq!(a.iter().map(|i| i.idx).collect::<Vec<_>>(), [0, 1, 2]);
    // Leased items are not handed out twice.
    let b = jobs.claim("node-b", 10, 60_000).await.unwrap();
    assert_eq!(b.iter().map(|i| i.idx).collect::<Vec<_>>(), [3, 4]);
    assert!(jobs.claim("node-c", 10, 60_000).await.unwrap().is_empty());
    for it in &b {
        assert!(jobs.complete(it.id, "node-b", true, "{}").await.unwrap());
    }
    // Only the holder records a result, and only once.
    assert!(!jobs.complete(a[0].id, "node-b", true, "{}").await.unwrap());
    assert!(!jobs.complete(b[0].id, "node-b", true, "{}").await.unwrap());
    // node-a "dies": its leases expire and node-c takes the items over.
    sqlx_expire_leases(db).await;
    let c = jobs.claim("node-c", 10, 60_000).await.unwrap();
    assert_eq!(c.iter().map(|i| i.idx).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(c.iter().all(|i| i.attempts == 2));
    // The old holder's late result is refused.
    assert!(!jobs.complete(a[1].id, "node-a", true, "{}").await.unwrap());
    for it in &c[..2] {
        assert!(jobs.complete(it.id, "node-c", true, "{}").await.unwrap());
        assert!(jobs.try_finish("j1").await.unwrap().is_none());
    }
    assert!(jobs
        .complete(c[2].id, "node-c", false, "{\"error\":2}")
        .await
        .unwrap());
    let finished = jobs
        .try_finish("j1")
        .await
        .unwrap()
        .expect("last result finishes the job");
    assert_eq!(
        (finished.status.as_str(), finished.done, finished.failed),
        ("done", 4, 2)
    );
    assert!(
        jobs.try_finish("j1").await.unwrap().is_none(),
        "finished once"
    );
    let items = jobs.items("j1").await.unwrap();
    assert_eq!(items.len(), 6);
    assert_eq!(items.iter().filter(|i| i.state == "done").count(), 4);
    assert_eq!(jobs.pending_count().await.unwrap(), 0);
    // Expiry: the job and its items go.
    assert!(jobs
        .expired(far - 1, 1_000_000_000)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(jobs.expired(far, 1_000_000_000).await.unwrap(), ["j1"]);
    assert!(jobs.delete("j1").await.unwrap());
    assert!(jobs.items("j1").await.unwrap().is_empty());
});

/// Moves every lease into the past, as if its holder had stopped renewing it.
async fn sqlx_expire_leases(db: &Db) {
    let sql = "UPDATE job_items SET lease_until_ms = 0 WHERE lease_until_ms IS NOT NULL";
    match db {
        Db::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
    }
    .unwrap();
}

/// Eight claimers race on PostgreSQL's SKIP LOCKED (SQLite serialises them): every item is
/// claimed by exactly one of them.
#[tokio::test]
async fn concurrent_claims_never_overlap() {
    use takarir_store::jobs::NewJob;
    for t in [TestDb::sqlite().await, TestDb::postgres().await] {
        let db = t.db.clone();
        db.jobs()
            .create(&NewJob {
                id: "race",
                user_id: None,
                options: "{}",
                webhook_url: None,
                webhook_secret: None,
                expires_ms: takarir_store::jobs::now_ms() + 60_000,
            })
            .await
            .unwrap();
        for i in 0..200 {
            db.jobs().add_pending("race", i, "x").await.unwrap();
        }
        db.jobs().seal("race", 200, "{}").await.unwrap();
        let mut tasks = Vec::new();
        for w in 0..8 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = db.jobs().claim(&format!("w{w}"), 3, 60_000).await.unwrap();
                    if got.is_empty() {
                        break mine;
                    }
                    for it in got {
                        assert!(db
                            .jobs()
                            .complete(it.id, &format!("w{w}"), true, "{}")
                            .await
                            .unwrap());
                        mine.push(it.idx);
                    }
                }
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        assert_eq!(all, (0..200).collect::<Vec<_>>());
        let job = db.jobs().get("race").await.unwrap().unwrap();
        assert_eq!(job.done, 200);
        t.finish().await;
    }
}
both_backends!(account_tokens_expire_and_work_once, |db, url| {
    let alice = user(db, "alice@example.org").await;
    let now = OffsetDateTime::now_utc();
    // Sessions: found by token (stored hashed), gone once expired or deleted.
    let s = db
        .sessions()
        .create(alice.id, "tok-live", "csrf-1", now + Duration::days(1))
        .await
        .unwrap();
    db.sessions()
        .create(alice.id, "tok-old", "csrf-2", now - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        db.sessions()
            .get_by_token("tok-live", None)
            .await
            .unwrap()
            .unwrap()
            .id,
        s.id
    );
    assert_eq!(
        db.sessions().get_by_token("tok-old", None).await.unwrap(),
        None
    );
    assert_eq!(
        db.sessions().get_by_token("csrf-1", None).await.unwrap(),
        None
    );
    assert_eq!(db.sessions().list(alice.id).await.unwrap().len(), 1);
    assert!(db.sessions().delete_by_token("tok-live").await.unwrap());
    assert_eq!(
        db.sessions().get_by_token("tok-live", None).await.unwrap(),
        None
    );
    assert!(matches!(
        db.sessions().create(UserId(9999), "x", "y", now).await,
        Err(Error::NotFound)
    ));
    // Idle limit: use records the time (so a used session outlives the limit), and one left
    // unused for longer ends and its row goes.
    let idle = Some(Duration::seconds(1));
    let s = db
        .sessions()
        .create(alice.id, "tok-idle", "csrf-3", now + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(s.last_seen_at, Some(s.created_at));
    let pause = std::time::Duration::from_millis(600);
    tokio::time::sleep(pause).await;
    let seen = db.sessions().get_by_token("tok-idle", idle).await.unwrap();
    assert!(seen.unwrap().last_seen() > s.created_at, "use is recorded");
    tokio::time::sleep(pause).await;
    assert!(
        db.sessions()
            .get_by_token("tok-idle", idle)
            .await
            .unwrap()
            .is_some(),
        "1.2 s after sign-in, 0.6 s after its last use"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        db.sessions().get_by_token("tok-idle", idle).await.unwrap(),
        None
    );
    assert_eq!(
        db.sessions().get_by_token("tok-idle", None).await.unwrap(),
        None,
        "row deleted"
    );
    // The sweep: expired and idle rows go, a live one stays.
    db.sessions()
        .create(alice.id, "tok-sweep-live", "c4", now + Duration::days(1))
        .await
        .unwrap();
    db.sessions()
        .create(alice.id, "tok-sweep-old", "c5", now - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(db.sessions().delete_stale(None).await.unwrap(), 1);
    assert_eq!(
        db.sessions()
            .delete_stale(Some(Duration::hours(1)))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        db.sessions()
            .delete_stale(Some(Duration::milliseconds(10)))
            .await
            .unwrap(),
        1
    );
    assert!(db.sessions().list(alice.id).await.unwrap().is_empty());
    // Email tokens: once, for their purpose, until they expire; a new one replaces the old.
    let later = now + Duration::hours(1);
    db.email_tokens()
        .create(alice.id, TokenPurpose::Verify, "v1", &alice.email, later)
        .await
        .unwrap();
    db.email_tokens()
        .create(alice.id, TokenPurpose::Verify, "v2", &alice.email, later)
        .await
        .unwrap();
    assert_eq!(
        db.email_tokens()
            .consume(TokenPurpose::Verify, "v1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.email_tokens()
            .consume(TokenPurpose::Reset, "v2")
            .await
            .unwrap(),
        None
    );
    let used = db
        .email_tokens()
        .consume(TokenPurpose::Verify, "v2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (used.user_id, used.email.as_str()),
        (alice.id, alice.email.as_str())
    );
    assert_eq!(
        db.email_tokens()
            .consume(TokenPurpose::Verify, "v2")
            .await
            .unwrap(),
        None
    );
    db.email_tokens()
        .create(
            alice.id,
            TokenPurpose::Reset,
            "r1",
            &alice.email,
            now - Duration::seconds(1),
        )
        .await
        .unwrap();
    assert_eq!(
        db.email_tokens()
            .consume(TokenPurpose::Reset, "r1")
            .await
            .unwrap(),
        None
    );
    // API keys: authenticated by the key, scoped, revocable.
    let k = db
        .api_keys()
        .create(alice.id, "k", "tkr_secret", &["read", "captions"])
        .await
        .unwrap();
    assert!(k.has_scope("read") && !k.has_scope("write"));
    assert_eq!(k.prefix, "tkr_secret");
    let found = db
        .api_keys()
        .authenticate("tkr_secret")
        .await
        .unwrap()
        .unwrap();
    assert!(found.last_used_at.is_some());
    db.api_keys().delete(alice.id, k.id).await.unwrap();
    assert_eq!(
        db.api_keys().authenticate("tkr_secret").await.unwrap(),
        None
    );
    // Exports: pending until finished (once), by token until expiry; the sweeper deletes expired
    // ones, and fails those left pending by a node that stopped.
    let live = db
        .exports()
        .create(alice.id, "e-live", "p/live", now + Duration::days(7))
        .await
        .unwrap();
    assert_eq!(
        (live.status.as_str(), live.size_bytes),
        (exports::PENDING, 0)
    );
    assert!(db.exports().finish(live.id, 10).await.unwrap());
    assert!(
        !db.exports().finish(live.id, 11).await.unwrap(),
        "finished once"
    );
    db.exports().fail(live.id).await.unwrap();
    let got = db.exports().get_by_token("e-live").await.unwrap().unwrap();
    assert_eq!((got.status.as_str(), got.size_bytes), (exports::READY, 10));
    let old = db
        .exports()
        .create(alice.id, "e-old", "p/old", now - Duration::seconds(1))
        .await
        .unwrap();
    db.exports().fail(old.id).await.unwrap();
    let stuck = db
        .exports()
        .create(alice.id, "e-stuck", "p/stuck", now + Duration::days(7))
        .await
        .unwrap();
    assert_eq!(
        db.exports()
            .fail_stale(now - Duration::hours(1))
            .await
            .unwrap(),
        Vec::<String>::new(),
        "made just now: not stale"
    );
    assert_eq!(
        db.exports()
            .fail_stale(now + Duration::seconds(5))
            .await
            .unwrap(),
        vec!["p/stuck".to_string()]
    );
    let got = db.exports().get_by_token("e-stuck").await.unwrap().unwrap();
    assert_eq!(got.status, exports::FAILED);
    assert!(
        !db.exports().finish(stuck.id, 10).await.unwrap(),
        "failed stays failed"
    );
    db.exports().delete(alice.id, stuck.id).await.unwrap();
    // Revoked (or erased) while being made: finishing reports it, so the ZIP can be deleted.
    let gone = db
        .exports()
        .create(alice.id, "e-gone", "p/gone", now + Duration::days(7))
        .await
        .unwrap();
    db.exports().delete(alice.id, gone.id).await.unwrap();
    assert!(!db.exports().finish(gone.id, 10).await.unwrap());
    assert_eq!(db.exports().get_by_token("e-old").await.unwrap(), None);
    assert_eq!(
        db.exports().delete_expired().await.unwrap(),
        vec!["p/old".to_string()]
    );
    assert_eq!(db.exports().list(alice.id).await.unwrap().len(), 1);
    // Policy notices: claimed once.
    assert!(db.policy_notices().claim(alice.id, "2.0").await.unwrap());
    assert!(!db.policy_notices().claim(alice.id, "2.0").await.unwrap());
    assert_eq!(
        db.policy_notices().list(alice.id).await.unwrap(),
        vec!["2.0".to_string()]
    );
    // Audit entries need a reason.
    assert!(matches!(
        db.audit().record(alice.id, alice.id, "view", "  ").await,
        Err(Error::Invalid("reason", _))
    ));
});

both_backends!(login_failures_count_per_window_and_hash_keys, |db, _url| {
    let lf = db.login_failures();
    let t0 = 1_000_000;
    let window = 900_000;
    assert_eq!(lf.get("a:x@example.org", t0, window).await.unwrap(), None);
    lf.add("a:x@example.org", t0, window).await.unwrap();
    lf.add("a:x@example.org", t0 + 10, window).await.unwrap();
    assert_eq!(
        lf.get("a:x@example.org", t0 + 20, window).await.unwrap(),
        Some((2, t0))
    );
    // Another handle on the same database (another node) sees the same count.
    let other = Db::connect(_url).await.unwrap();
    assert_eq!(
        other
            .login_failures()
            .get("a:x@example.org", t0 + 20, window)
            .await
            .unwrap(),
        Some((2, t0))
    );
    other.close().await;
    // After the window the count starts again.
    assert_eq!(
        lf.get("a:x@example.org", t0 + window, window)
            .await
            .unwrap(),
        None
    );
    lf.add("a:x@example.org", t0 + window + 5, window)
        .await
        .unwrap();
    assert_eq!(
        lf.get("a:x@example.org", t0 + window + 6, window)
            .await
            .unwrap(),
        Some((1, t0 + window + 5))
    );
    lf.add("c:10.1.2.3", t0, window).await.unwrap();
    assert_eq!(
        lf.delete_expired(t0 + 1).await.unwrap(),
        1,
        "only the old client window"
    );
    lf.clear("a:x@example.org").await.unwrap();
    assert_eq!(
        lf.get("a:x@example.org", t0 + window + 6, window)
            .await
            .unwrap(),
        None
    );
});

both_backends!(login_attempts_are_counted_atomically, |db, _url| {
    // 40 attempts at once, as 40 concurrent sign-ins would: each gets its own count, so
    // exactly 5 see a count within a limit of 5.
    let now = takarir_store::jobs::now_ms();
    let window = 900_000;
    let counts = futures_util::future::join_all(
        (0..40).map(|_| async { db.login_failures().take("c:10.9.9.9", now, window).await }),
    )
    .await;
    let mut counts: Vec<i64> = counts.into_iter().map(|c| c.unwrap()).collect();
    counts.sort();
    assert_eq!(counts, (1..=40).collect::<Vec<i64>>());
    assert_eq!(counts.iter().filter(|c| **c <= 5).count(), 5);
    let lf = db.login_failures();
    lf.give_back("c:10.9.9.9").await.unwrap();
    assert_eq!(
        lf.get("c:10.9.9.9", now, window)
            .await
            .unwrap()
            .map(|g| g.0),
        Some(39)
    );
    // A passed window starts again at one.
    assert_eq!(
        lf.take("c:10.9.9.9", now + window, window).await.unwrap(),
        1
    );
    // Giving back never goes below zero.
    lf.give_back("c:10.9.9.9").await.unwrap();
    lf.give_back("c:10.9.9.9").await.unwrap();
    assert_eq!(
        lf.get("c:10.9.9.9", now + window, window).await.unwrap(),
        Some((0, now + window))
    );
});

// Withdrawal records: only those made since the backup began are replayed, a row is deleted
// again only if it still belongs to the user named, and a replayed consent withdrawal is
// appended once and never turns into a grant.
both_backends!(withdrawal_replay_window_owner_and_consent, |db, url| {
    let dir = tempfile::tempdir().unwrap();
    let blobs = takarir_store::Blobs::open(
        &format!("file://{}", dir.path().display()),
        takarir_store::KeyRing::parse(&format!(
            "k1:{}",
            takarir_store::KeyRing::generate_key_hex()
        ))
        .unwrap(),
    )
    .unwrap();
    use takarir_store::withdrawals::{record, replay, Withdrawal};
    let ani = user(db, "ani.w@contoh.id").await;
    let budi = user(db, "budi.w@contoh.id").await;
    db.consents()
        .record(ani.id, PURPOSE_TRAINING, true, "2.1")
        .await
        .unwrap();
    let ani_entry = db.history().create(ani.id, entry("kucing")).await.unwrap();
    let budi_entry = db.history().create(budi.id, entry("anjing")).await.unwrap();
    let before = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    // A record naming Ani with Budi's entry id must not touch Budi's entry.
    for w in [
        Withdrawal::HistoryEntry {
            subject_hash: ani.subject_hash(),
            id: ani_entry.id.0,
        },
        Withdrawal::HistoryEntry {
            subject_hash: ani.subject_hash(),
            id: budi_entry.id.0,
        },
        Withdrawal::TrainingConsent {
            subject_hash: ani.subject_hash(),
            policy_version: "2.1".into(),
        },
    ] {
        record(&blobs, w).await.unwrap();
    }
    // A backup that began after the records: nothing to replay.
    assert_eq!(replay(db, &blobs, before as i64 + 60_000).await.unwrap(), 0);
    assert!(db
        .consents()
        .is_granted(ani.id, PURPOSE_TRAINING)
        .await
        .unwrap());
    // One that began before: all three applied, within their owner only.
    assert_eq!(replay(db, &blobs, before as i64).await.unwrap(), 3);
    assert!(db
        .history()
        .get(ani.id, ani_entry.id)
        .await
        .unwrap()
        .is_none());
    assert!(db
        .history()
        .get(budi.id, budi_entry.id)
        .await
        .unwrap()
        .is_some());
    assert!(!db
        .consents()
        .is_granted(ani.id, PURPOSE_TRAINING)
        .await
        .unwrap());
    // Replaying again appends no second withdrawal.
    replay(db, &blobs, before as i64).await.unwrap();
    let ledger = db.consents().list(ani.id).await.unwrap();
    let training: Vec<bool> = ledger
        .iter()
        .filter(|c| c.purpose == PURPOSE_TRAINING)
        .map(|c| c.granted)
        .collect();
    assert_eq!(training, vec![true, false]);
});

//! For the workspace's test suites, not the product: a fresh PostgreSQL database per test in
//! the server that `scripts/test-services` starts.

use std::sync::atomic::{AtomicU32, Ordering};

/// The variable naming the PostgreSQL server of the test suites (a `postgres://` URL).
pub const POSTGRES_ENV: &str = "TAKARIR_TEST_POSTGRES_URL";

/// A new, empty database in the server named by [`POSTGRES_ENV`]: `(server URL, database
/// URL, database name)`. The name starts with `prefix` and is unique per process and call.
/// Panics with a hint when no server is configured or reachable.
pub async fn fresh_postgres_database(prefix: &str) -> (String, String, String) {
    let server = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_ENV} is not set: the PostgreSQL tests need a server. Run them through \
             scripts/test, or `source scripts/test-services` first"
        )
    });
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let admin = sqlx::PgPool::connect(&server).await.unwrap_or_else(|e| {
        panic!("cannot reach PostgreSQL at {POSTGRES_ENV}: {e}; is scripts/test-services running?")
    });
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
    admin.close().await;
    let mut url = url::Url::parse(&server).expect("POSTGRES_ENV is a URL");
    url.set_path(&format!("/{name}"));
    (server, url.to_string(), name)
}

/// Drops a database [`fresh_postgres_database`] made: `server` is its server's URL.
pub async fn drop_postgres_database(server: &str, name: &str) {
    let admin = sqlx::PgPool::connect(server).await.unwrap();
    let drop = format!("DROP DATABASE {name} WITH (FORCE)");
    sqlx::query(&drop).execute(&admin).await.unwrap();
    admin.close().await;
}

/// Tables with a `user_id` column, read from the live schema (so a table added later is covered).
pub async fn tables_with_user_id(db: &crate::Db) -> Vec<String> {
    let mut tables: Vec<String> = match db {
        crate::Db::Sqlite(pool) => {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                 AND name NOT LIKE '_sqlx%'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            let mut with = Vec::new();
            for name in names {
                let n: i64 = sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM pragma_table_info('{name}') WHERE name = 'user_id'"
                ))
                .fetch_one(pool)
                .await
                .unwrap();
                if n > 0 {
                    with.push(name);
                }
            }
            with
        }
        crate::Db::Postgres(pool) => sqlx::query_scalar(
            "SELECT table_name::TEXT FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_name = 'user_id'",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    };
    tables.sort();
    tables
}

/// An object's bytes as stored (still encrypted), past the encryption layer: what a test
/// inspects, or damages and puts back with [`put_stored_bytes`].
pub async fn stored_bytes(blobs: &crate::Blobs, path: &str) -> Vec<u8> {
    let location = blobs.location(path).expect("valid path");
    let got = blobs
        .object_store()
        .get(&location)
        .await
        .expect("object exists");
    got.bytes().await.expect("object reads").to_vec()
}

/// Replaces an object's stored bytes as they are (no encryption).
pub async fn put_stored_bytes(blobs: &crate::Blobs, path: &str, bytes: Vec<u8>) {
    let location = blobs.location(path).expect("valid path");
    blobs
        .object_store()
        .put(&location, bytes.into())
        .await
        .expect("object stored");
}

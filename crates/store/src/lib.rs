//! Takarir's storage: the database and the object store. Every query the service runs lives here.
//!
//! # Database
//! [`Db::connect`] takes a URL: `sqlite://PATH` (the default; the file and its directory are
//! created on first run, WAL journal, `foreign_keys=ON`) or `postgres://...` for deployments with
//! several nodes. The embedded migrations for that backend run before `connect` returns.
//!
//! [`Db`] is an enum over the two concrete pools rather than `sqlx::Any`, for three reasons:
//! each backend keeps its full type support (`TIMESTAMPTZ`, `BYTEA`, `DATE`, `BOOLEAN` in
//! PostgreSQL; text dates and integer booleans in SQLite), which `Any` reduces to a common
//! subset; a query whose dialects differ (`ILIKE` here; `FOR UPDATE SKIP LOCKED` for the job
//! queue to come) is written once per backend in the one place that needs it, visibly; and each
//! backend gets its own migration folder (`migrations/sqlite`, `migrations/postgres`), checked
//! at build time by `sqlx::migrate!`. Queries that are the same in both dialects (most of them;
//! both accept `$1` placeholders and `RETURNING`) are written once and run on either pool by a
//! small macro.
//!
//! One module per table, each a handle borrowed from [`Db`] with typed ids:
//! [`Db::users`], [`Db::preferences`], [`Db::history`], [`Db::consents`],
//! [`Db::erasure_log`], [`Db::usage`]; the account tables [`Db::sessions`],
//! [`Db::email_tokens`], [`Db::api_keys`], [`Db::user_usage`], [`Db::training`],
//! [`Db::exports`], [`Db::audit`], [`Db::policy_notices`]; and [`Db::delete_user_everywhere`], which removes every
//! row a user owns in one transaction and records the erasure with an irreversible hash.
//!
//! # Object storage
//! [`Blobs`] wraps the `object_store` crate: a local directory (`file:///path`, the default),
//! S3 (`s3://bucket/prefix?endpoint=...`) or GCS (`gs://bucket/prefix`). Objects marked
//! [`Sensitivity::Personal`] are encrypted at rest with envelope encryption: a fresh AES-256-GCM
//! data key per object, wrapped by the newest key-encryption key of a [`KeyRing`]; older keys
//! in the ring still decrypt, so a rotated key keeps old objects readable.

/// Makes every file and directory this process creates from now on readable by its owner only
/// (umask 077): the database and its WAL, objects, backups and exports hold personal data.
/// Called before the storage is opened; a no-op off Unix.
pub fn owner_only_files() {
    #[cfg(unix)]
    // SAFETY: umask only swaps the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Runs the same body on whichever pool `db` holds: `on_db!(db, pool => body)`. The body is
/// compiled once per backend, so it may only use SQL that both dialects accept.
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}

/// A row id type: an `i64` newtype stored transparently, shown as the number.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
        #[sqlx(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

/// A table's handle, borrowed from the [`Db`] (`db.users()`, ...).
macro_rules! table {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<'a>(pub(crate) &'a $crate::Db);
    };
}

/// Runs a statement on either backend with its binds in order; the rows it affected.
macro_rules! exec {
    ($db:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        on_db!($db, pool => sqlx::query($sql)
            $(.bind($bind))*
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
    };
}

/// Runs a query (`sqlx::$query`) on either backend with its binds in order, reading with
/// `$method` (`fetch_one`, `fetch_optional` or `fetch_all`) as `$ty`.
macro_rules! read {
    ($query:ident, $method:ident, $ty:ty, $db:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        on_db!($db, pool => sqlx::$query::<_, $ty>($sql)
            $(.bind($bind))*
            .$method(pool)
            .await)
    };
}

/// [`read!`] of rows (`sqlx::query_as`).
macro_rules! fetch {
    ($($args:tt)*) => {
        read!(query_as, $($args)*)
    };
}

/// [`read!`] of a single column (`sqlx::query_scalar`).
macro_rules! scalar {
    ($($args:tt)*) => {
        read!(query_scalar, $($args)*)
    };
}

pub mod api_keys;
pub mod audit;
pub mod backup;
mod blobs;
pub mod consents;
mod db;
pub mod email_tokens;
pub mod erasure;
mod error;
pub mod exports;
pub mod history;
pub mod jobs;
pub mod policy;
pub mod preferences;
pub mod sessions;
#[doc(hidden)]
pub mod test_support;
pub mod throttle;
pub mod training;
pub mod usage;
pub mod user_usage;
pub mod users;
pub mod withdrawals;

pub use blobs::{BlobInfo, Blobs, KeyRing, Sensitivity};
pub use db::{Backend, Db};
pub use error::{Error, Result};
pub use object_store;

/// The current time, truncated to the microsecond: PostgreSQL keeps microseconds, so a value
/// read back compares equal to the value written on either backend.
pub(crate) fn now() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// The stored form of a secret token (session cookie, API key, email link, export link):
/// lower-case hex SHA-256. Tokens are 256-bit random, so a fast hash cannot be reversed by
/// guessing, and a copy of the database holds no usable token.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

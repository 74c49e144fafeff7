use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::api_keys::ApiKeys;
use crate::audit::Audit;
use crate::consents::Consents;
use crate::email_tokens::EmailTokens;
use crate::erasure::ErasureLog;
use crate::exports::Exports;
use crate::history::History;
use crate::jobs::Jobs;
use crate::policy::PolicyNotices;
use crate::preferences::PreferencesTable;
use crate::sessions::Sessions;
use crate::throttle::LoginFailures;
use crate::training::Training;
use crate::usage::Usage;
use crate::user_usage::UserUsage;
use crate::users::Users;
use crate::{Error, Result};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The database: SQLite (one node) or PostgreSQL (any number of nodes).
///
/// Cloning is cheap (pools are reference-counted). The variants are public so that tests and
/// tools can inspect the schema; the service itself should go through the table handles.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which backend a [`Db`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Db {
    /// Opens the database named by `url` and brings its schema up to date.
    ///
    /// - `sqlite://PATH` (or `sqlite:PATH`): the file and its parent directories are created if
    ///   missing; WAL journal, `synchronous=NORMAL`, `foreign_keys=ON`, 10 s busy timeout, and
    ///   `secure_delete=ON`, so that deleted rows are overwritten with zeros rather than left
    ///   in free pages (see [`Db::flush_erased`]).
    ///   `sqlite::memory:` gives a private in-memory database on a single connection (tests).
    /// - `postgres://...` / `postgresql://...`: any PostgreSQL 13 or newer.
    pub async fn connect(url: &str) -> Result<Db> {
        let db = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .pragma("secure_delete", "ON")
                .busy_timeout(Duration::from_secs(10));
            let file = options.get_filename().to_owned();
            let in_memory = file.as_os_str() == ":memory:" || url.contains(":memory:");
            if !in_memory {
                if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)?;
                }
            }
            let mut pool = SqlitePoolOptions::new();
            pool = if in_memory {
                // Every connection to `:memory:` would be a database of its own.
                pool.max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
            } else {
                pool.max_connections(8)
            };
            Db::Sqlite(pool.connect_with(options).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Db::Postgres(
                PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await?,
            )
        } else {
            // Only the scheme: the rest of a URL may hold a password.
            let scheme = url.split(':').next().unwrap_or_default().to_owned();
            return Err(Error::UnsupportedDatabaseUrl(scheme));
        };
        db.migrate().await?;
        Ok(db)
    }

    /// Applies the embedded migrations that have not run yet (`connect` already does).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// After an erasure: makes sure the deleted rows are gone from every file of the database,
    /// not only from its tables. On SQLite, `secure_delete` has zeroed them in the pages, but
    /// the WAL still holds earlier copies of those pages: a `wal_checkpoint(TRUNCATE)` writes
    /// the zeroed pages back and empties the WAL (retried while readers hold it, up to ~2 s).
    /// On PostgreSQL deleted tuples stay in heap pages until `VACUUM` (autovacuum) and in WAL
    /// segments until they are recycled; docs/operations.md says how operators shorten that.
    pub async fn flush_erased(&self) -> Result<()> {
        if let Db::Sqlite(pool) = self {
            for _ in 0..40 {
                let (busy, _, _): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                        .fetch_one(pool)
                        .await?;
                if busy == 0 {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return Err(Error::Invalid(
                "checkpoint",
                "the WAL stayed busy after an erasure".into(),
            ));
        }
        Ok(())
    }

    /// Closes every connection; waits for those in use to be returned.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }

    pub fn users(&self) -> Users<'_> {
        Users(self)
    }

    pub fn preferences(&self) -> PreferencesTable<'_> {
        PreferencesTable(self)
    }

    pub fn history(&self) -> History<'_> {
        History(self)
    }

    pub fn consents(&self) -> Consents<'_> {
        Consents(self)
    }

    pub fn erasure_log(&self) -> ErasureLog<'_> {
        ErasureLog(self)
    }

    pub fn usage(&self) -> Usage<'_> {
        Usage(self)
    }

    pub fn jobs(&self) -> Jobs<'_> {
        Jobs(self)
    }

    pub fn login_failures(&self) -> LoginFailures<'_> {
        LoginFailures(self)
    }

    pub fn sessions(&self) -> Sessions<'_> {
        Sessions(self)
    }

    pub fn email_tokens(&self) -> EmailTokens<'_> {
        EmailTokens(self)
    }

    pub fn api_keys(&self) -> ApiKeys<'_> {
        ApiKeys(self)
    }

    pub fn user_usage(&self) -> UserUsage<'_> {
        UserUsage(self)
    }

    pub fn training(&self) -> Training<'_> {
        Training(self)
    }

    pub fn exports(&self) -> Exports<'_> {
        Exports(self)
    }

    pub fn audit(&self) -> Audit<'_> {
        Audit(self)
    }

    pub fn policy_notices(&self) -> PolicyNotices<'_> {
        PolicyNotices(self)
    }
}

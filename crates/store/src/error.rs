/// Everything that can go wrong in the storage crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL names no supported backend.
    #[error("unsupported database URL (scheme {0:?}): expected sqlite://PATH or postgres://...")]
    UnsupportedDatabaseUrl(String),
    /// The object-store URL is not usable.
    #[error("object store URL: {0}")]
    ObjectStoreUrl(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A unique value (named) is already taken, e.g. an email address.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The row or object does not exist (or belongs to someone else).
    #[error("not found")]
    NotFound,
    /// A value does not fit the schema (named field, reason).
    #[error("invalid {0}: {1}")]
    Invalid(&'static str, String),
    /// A key ring entry is malformed, or a personal object was written without any key.
    #[error("key ring: {0}")]
    Key(String),
    /// The object was encrypted with a key id the ring does not hold.
    #[error("object encrypted with unknown key id {0:?}")]
    UnknownKey(String),
    /// The stored object failed authentication: it was modified, truncated or moved.
    #[error("object {0:?} failed authentication (tampered, truncated or moved)")]
    Tampered(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps a unique-constraint violation to [`Error::Conflict`], anything else to [`Error::Database`].
pub(crate) fn unique_as_conflict(err: sqlx::Error, what: &'static str) -> Error {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict(what),
        _ => Error::Database(err),
    }
}

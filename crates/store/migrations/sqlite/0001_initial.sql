-- Takarir's first schema, SQLite dialect (migrations/postgres holds the same schema for PostgreSQL).
-- Timestamps are RFC 3339 text in UTC, days are YYYY-MM-DD text: what sqlx writes for `time` types.
-- AUTOINCREMENT keeps ids from being reused after an erasure.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    email_verified_at TEXT,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    -- Random bytes, never shown: the erasure log stores a hash of (salt, id), so an erasure can be
    -- replayed on a restored backup without the log holding anything that identifies the person.
    subject_salt BLOB NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE preferences (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    lang TEXT,
    style TEXT,
    alternatives INTEGER CHECK (alternatives >= 1),
    history_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    training_consent BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TEXT NOT NULL
);

-- Caption history, only while the user has it enabled: never the image, never EXIF values.
CREATE TABLE history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    caption TEXT NOT NULL,
    corrected_caption TEXT,
    lang TEXT NOT NULL,
    style TEXT NOT NULL,
    width INTEGER NOT NULL CHECK (width >= 0),
    height INTEGER NOT NULL CHECK (height >= 0),
    format TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX history_user_id ON history (user_id, id);

-- Consent ledger: append-only (rows go only with the whole account, on erasure).
CREATE TABLE consents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    granted BOOLEAN NOT NULL,
    policy_version TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX consents_user_purpose ON consents (user_id, purpose, id);
CREATE TRIGGER consents_append_only BEFORE UPDATE ON consents
BEGIN
    SELECT RAISE(ABORT, 'consents are append-only');
END;

-- One row per erased account; no personal data, only an irreversible hash.
CREATE TABLE erasure_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_hash TEXT NOT NULL,
    erased_at TEXT NOT NULL
);
CREATE INDEX erasure_log_subject_hash ON erasure_log (subject_hash);

-- Aggregate counters, nothing that identifies a person.
CREATE TABLE usage_daily (
    day TEXT NOT NULL,
    lang TEXT NOT NULL,
    style TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
    PRIMARY KEY (day, lang, style)
);

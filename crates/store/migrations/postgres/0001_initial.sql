-- Takarir's first schema, PostgreSQL dialect (migrations/sqlite holds the same schema for SQLite).
-- Identity columns never reuse an id after an erasure.

CREATE TABLE users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    email_verified_at TIMESTAMPTZ,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    -- Random bytes, never shown: the erasure log stores a hash of (salt, id), so an erasure can be
    -- replayed on a restored backup without the log holding anything that identifies the person.
    subject_salt BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE preferences (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    lang TEXT,
    style TEXT,
    alternatives INTEGER CHECK (alternatives >= 1),
    history_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    training_consent BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Caption history, only while the user has it enabled: never the image, never EXIF values.
CREATE TABLE history (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    caption TEXT NOT NULL,
    corrected_caption TEXT,
    lang TEXT NOT NULL,
    style TEXT NOT NULL,
    width INTEGER NOT NULL CHECK (width >= 0),
    height INTEGER NOT NULL CHECK (height >= 0),
    format TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX history_user_id ON history (user_id, id);

-- Consent ledger: append-only (rows go only with the whole account, on erasure).
CREATE TABLE consents (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    granted BOOLEAN NOT NULL,
    policy_version TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX consents_user_purpose ON consents (user_id, purpose, id);
CREATE FUNCTION consents_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consents are append-only';
END
$$;
CREATE TRIGGER consents_append_only BEFORE UPDATE ON consents
    FOR EACH ROW EXECUTE FUNCTION consents_append_only();

-- One row per erased account; no personal data, only an irreversible hash.
CREATE TABLE erasure_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_hash TEXT NOT NULL,
    erased_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX erasure_log_subject_hash ON erasure_log (subject_hash);

-- Aggregate counters, nothing that identifies a person.
CREATE TABLE usage_daily (
    day DATE NOT NULL,
    lang TEXT NOT NULL,
    style TEXT NOT NULL,
    count BIGINT NOT NULL DEFAULT 0 CHECK (count >= 0),
    PRIMARY KEY (day, lang, style)
);

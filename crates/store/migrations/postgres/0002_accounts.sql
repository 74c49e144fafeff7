-- Accounts, sessions, API keys, exports, training items, audit log: PostgreSQL dialect
-- (migrations/sqlite holds the same schema). Every table holding a user's data has a
-- `user_id` column and is emptied of that user by `Db::delete_user_everywhere`.

-- Signed-in browsers. The cookie holds a random token; only its SHA-256 is stored, so a copy
-- of the database cannot be used to sign in. The CSRF token is bound to the session.
CREATE TABLE sessions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);

-- One-time links sent by email (address verification, password reset); hashed like sessions.
CREATE TABLE email_tokens (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify', 'reset')),
    token_hash TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX email_tokens_user_id ON email_tokens (user_id);

-- API keys: shown once at creation, stored as SHA-256 (they are 256-bit random, so a fast
-- hash is enough), with space-separated scopes.
CREATE TABLE api_keys (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);

-- Per-account usage (shown to the user only); usage_daily keeps the anonymous aggregates.
CREATE TABLE user_usage_daily (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day DATE NOT NULL,
    lang TEXT NOT NULL,
    style TEXT NOT NULL,
    count BIGINT NOT NULL DEFAULT 0 CHECK (count >= 0),
    PRIMARY KEY (user_id, day, lang, style)
);

-- Images given for training (with consent): the image is an encrypted object at object_path.
CREATE TABLE training_items (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    object_path TEXT NOT NULL,
    -- The history entry of the same caption, if history was on: its correction becomes the
    -- training caption.
    history_id BIGINT REFERENCES history (id) ON DELETE SET NULL,
    caption TEXT NOT NULL,
    lang TEXT NOT NULL,
    format TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX training_items_user_id ON training_items (user_id, id);

-- Data exports: a ZIP in the object store, downloadable by a secret link until expires_at.
-- Revoking deletes the row and the object.
CREATE TABLE exports (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    object_path TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX exports_user_id ON exports (user_id);

-- Staff access to one user's data: who (actor_id; NULL once that admin is erased), why, when.
-- The user (user_id) sees these on their access page.
CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    actor_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_log_user_id ON audit_log (user_id, id);
CREATE INDEX audit_log_actor_id ON audit_log (actor_id);

-- Which significant policy versions a user has been emailed about (once each).
CREATE TABLE policy_notices (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    policy_version TEXT NOT NULL,
    emailed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, policy_version)
);

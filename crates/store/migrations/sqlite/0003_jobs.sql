-- Batch captioning jobs and their work items (SQLite dialect). Times are Unix milliseconds so
-- that lease comparisons are plain integer comparisons on both backends.

CREATE TABLE jobs (
    -- 128 random bits in hex: the id is the capability to read the job.
    id TEXT PRIMARY KEY,
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('receiving', 'queued', 'done')),
    options TEXT NOT NULL,
    total BIGINT NOT NULL DEFAULT 0,
    done BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    webhook_url TEXT,
    webhook_secret TEXT,
    webhook_status TEXT,
    created_ms BIGINT NOT NULL,
    finished_ms BIGINT,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX jobs_expires ON jobs (expires_ms);

CREATE TABLE job_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx BIGINT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    lease_owner TEXT,
    lease_until_ms BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    -- JSON: captions, or this file's error. Never the image.
    result TEXT,
    UNIQUE (job_id, idx)
);
CREATE INDEX job_items_pending ON job_items (state, id);

-- What each retention sweep deleted, in counts only.
CREATE TABLE retention_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ran_ms BIGINT NOT NULL,
    jobs_deleted BIGINT NOT NULL,
    objects_deleted BIGINT NOT NULL,
    history_deleted BIGINT NOT NULL,
    temp_files_deleted BIGINT NOT NULL
);

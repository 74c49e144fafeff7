-- When each session was last used, so that one left unused for `session_idle_seconds` ends
-- before its absolute expiry. Rows from before this migration count from their creation.
ALTER TABLE sessions ADD COLUMN last_seen_at TEXT;
UPDATE sessions SET last_seen_at = created_at;

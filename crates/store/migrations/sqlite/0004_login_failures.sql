-- Failed sign-ins per account and per client over a window, shared by every node so that the
-- limits hold behind a load balancer. Keys ("a:<email>", "c:<ip>") are stored only as SHA-256
-- hashes, and rows go once their window has passed (the retention sweeper) or on success.
CREATE TABLE login_failures (
    key_hash TEXT PRIMARY KEY,
    count BIGINT NOT NULL,
    window_start_ms BIGINT NOT NULL
);

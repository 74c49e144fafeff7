-- Batch jobs of signed-in users are listed in their access document and erased with the account.
CREATE INDEX jobs_user ON jobs (user_id);

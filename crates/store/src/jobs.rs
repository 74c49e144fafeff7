//! `jobs` and `job_items`: the batch captioning queue shared by every node.
//!
//! A job is created in state `receiving`, gets one item per uploaded file (its input object
//! is stored first, so a pending item always has an input), then is sealed (`queued`) with its
//! total. Any node claims pending items with a lease: PostgreSQL uses `FOR UPDATE SKIP LOCKED`
//! so concurrent claimers never wait for or take each other's rows; SQLite (one node) gets the
//! same atomicity from its single writer. A result is recorded only by the lease holder, so a
//! node that lost its lease (it stalled or was killed and another node took the item over)
//! cannot record a second result: every item ends with exactly one. The node that records the
//! last result of a sealed job finishes it, exactly once.

use time::OffsetDateTime;

use crate::users::UserId;
use crate::{Db, Result};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Job {
    pub id: String,
    pub user_id: Option<i64>,
    /// `receiving`, `queued` or `done`.
    pub status: String,
    /// The caption options, as the server serialised them.
    pub options: String,
    pub total: i64,
    pub done: i64,
    pub failed: i64,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub webhook_status: Option<String>,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    pub expires_ms: i64,
}

/// What a new job starts with.
#[derive(Clone, Debug)]
pub struct NewJob<'a> {
    pub id: &'a str,
    pub user_id: Option<UserId>,
    pub options: &'a str,
    pub webhook_url: Option<&'a str>,
    pub webhook_secret: Option<&'a str>,
    pub expires_ms: i64,
}

/// An item claimed by a node, to caption and then [`Jobs::complete`].
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimedItem {
    pub id: i64,
    pub job_id: String,
    pub idx: i64,
    pub name: String,
    /// How many times the item has been claimed, this claim included.
    pub attempts: i64,
}

/// One item's outcome, in upload order.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ItemRow {
    pub idx: i64,
    pub name: String,
    pub state: String,
    pub attempts: i64,
    pub result: Option<String>,
}

/// Counts of what one retention sweep deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepCounts {
    pub jobs_deleted: i64,
    pub objects_deleted: i64,
    pub history_deleted: i64,
    pub temp_files_deleted: i64,
}

/// The job tables, borrowed from [`Db::jobs`].
pub struct Jobs<'a>(pub(crate) &'a Db);

const JOB_COLUMNS: &str = "id, user_id, status, options, total, done, failed, webhook_url, \
     webhook_secret, webhook_status, created_ms, finished_ms, expires_ms";

impl Jobs<'_> {
    /// Creates a job in state `receiving`.
    pub async fn create(&self, new: &NewJob<'_>) -> Result<Job> {
        let sql = format!(
            "INSERT INTO jobs (id, user_id, status, options, webhook_url, webhook_secret, \
             created_ms, expires_ms) VALUES ($1, $2, 'receiving', $3, $4, $5, $6, $7) \
             RETURNING {JOB_COLUMNS}"
        );
        Ok(fetch!(
            fetch_one,
            Job,
            self.0,
            &sql,
            new.id,
            new.user_id.map(|u| u.0),
            new.options,
            new.webhook_url,
            new.webhook_secret,
            now_ms(),
            new.expires_ms
        )?)
    }

    /// The job, if it exists.
    pub async fn get(&self, id: &str) -> Result<Option<Job>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        Ok(fetch!(fetch_optional, Job, self.0, &sql, id)?)
    }

    /// Adds a pending item (its input object must already be stored).
    pub async fn add_pending(&self, job: &str, idx: i64, name: &str) -> Result<()> {
        exec!(
            self.0,
            "INSERT INTO job_items (job_id, idx, name, state) VALUES ($1, $2, $3, 'pending')",
            job,
            idx,
            name
        )
        .map(|_| ())?;
        Ok(())
    }

    /// Adds an item that failed before it could be queued (an unsafe or oversized ZIP entry,
    /// say), with its error as the result, and counts it.
    pub async fn add_failed(&self, job: &str, idx: i64, name: &str, result: &str) -> Result<()> {
        macro_rules! body {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                sqlx::query(
                    "INSERT INTO job_items (job_id, idx, name, state, result) \
                     VALUES ($1, $2, $3, 'failed', $4)",
                )
                .bind(job)
                .bind(idx)
                .bind(name)
                .bind(result)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE jobs SET failed = failed + 1 WHERE id = $1")
                    .bind(job)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }};
        }
        match self.0 {
            Db::Sqlite(pool) => body!(pool),
            Db::Postgres(pool) => body!(pool),
        }
        Ok(())
    }

    /// Ends the upload: the job holds `total` items, captioned with `options` (fields may
    /// follow the files in a form, so they are final only now); its pending items may now be
    /// claimed. Returns the job if this call also finished it (no item was pending).
    pub async fn seal(&self, job: &str, total: i64, options: &str) -> Result<Option<Job>> {
        exec!(
            self.0,
            "UPDATE jobs SET status = 'queued', total = $2, options = $3 \
             WHERE id = $1 AND status = 'receiving'",
            job,
            total,
            options
        )
        .map(|_| ())?;
        self.try_finish(job).await
    }

    /// Claims up to `n` pending items whose lease is free or expired, for `lease_ms`.
    pub async fn claim(&self, owner: &str, n: u32, lease_ms: i64) -> Result<Vec<ClaimedItem>> {
        let now = now_ms();
        // Oldest first; SKIP LOCKED lets PostgreSQL claimers pass rows another claimer holds.
        // Only items of sealed jobs: their options are final.
        let pick = "SELECT id FROM job_items WHERE state = 'pending' \
                    AND (lease_until_ms IS NULL OR lease_until_ms < $3) \
                    AND job_id IN (SELECT id FROM jobs WHERE status = 'queued') \
                    ORDER BY id LIMIT $4";
        let returning = "RETURNING id, job_id, idx, name, attempts";
        let set = "UPDATE job_items SET lease_owner = $1, lease_until_ms = $2, \
                   attempts = attempts + 1";
        let mut items = match self.0 {
            Db::Postgres(pool) => {
                sqlx::query_as::<_, ClaimedItem>(&format!(
                    "{set} WHERE id IN ({pick} FOR UPDATE SKIP LOCKED) {returning}"
                ))
                .bind(owner)
                .bind(now + lease_ms)
                .bind(now)
                .bind(i64::from(n))
                .fetch_all(pool)
                .await?
            }
            Db::Sqlite(pool) => {
                sqlx::query_as::<_, ClaimedItem>(&format!("{set} WHERE id IN ({pick}) {returning}"))
                    .bind(owner)
                    .bind(now + lease_ms)
                    .bind(now)
                    .bind(i64::from(n))
                    .fetch_all(pool)
                    .await?
            }
        };
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    /// Extends the lease of items this owner still holds.
    pub async fn renew(&self, owner: &str, ids: &[i64], lease_ms: i64) -> Result<()> {
        for id in ids {
            exec!(
                self.0,
                "UPDATE job_items SET lease_until_ms = $3 \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'pending'",
                id,
                owner,
                now_ms() + lease_ms
            )
            .map(|_| ())?;
        }
        Ok(())
    }

    /// Records an item's outcome if `owner` still holds it; returns whether it was recorded
    /// (false: the lease was lost and another node owns the item now).
    pub async fn complete(&self, item: i64, owner: &str, ok: bool, result: &str) -> Result<bool> {
        let state = if ok { "done" } else { "failed" };
        let counter = if ok {
            "UPDATE jobs SET done = done + 1 WHERE id = $1"
        } else {
            "UPDATE jobs SET failed = failed + 1 WHERE id = $1"
        };
        macro_rules! body {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                let job: Option<(String,)> = sqlx::query_as(
                    "UPDATE job_items SET state = $1, result = $2, lease_owner = NULL, \
                     lease_until_ms = NULL \
                     WHERE id = $3 AND lease_owner = $4 AND state = 'pending' RETURNING job_id",
                )
                .bind(state)
                .bind(result)
                .bind(item)
                .bind(owner)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((job,)) = &job {
                    sqlx::query(counter).bind(job).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                job.is_some()
            }};
        }
        Ok(match self.0 {
            Db::Sqlite(pool) => body!(pool),
            Db::Postgres(pool) => body!(pool),
        })
    }

    /// Marks a sealed job whose items are all finished as `done`. Returns it only to the one
    /// caller that made the change (who then sends the webhook).
    pub async fn try_finish(&self, job: &str) -> Result<Option<Job>> {
        let sql = format!(
            "UPDATE jobs SET status = 'done', finished_ms = $2 \
             WHERE id = $1 AND status = 'queued' AND done + failed >= total \
             RETURNING {JOB_COLUMNS}"
        );
        Ok(fetch!(fetch_optional, Job, self.0, &sql, job, now_ms())?)
    }

    /// Items in upload order.
    pub async fn items(&self, job: &str) -> Result<Vec<ItemRow>> {
        Ok(
            fetch!(fetch_all, ItemRow, self.0, "SELECT idx, name, state, attempts, result FROM job_items WHERE job_id = $1 ORDER BY idx", job)?,
        )
    }

    /// Whether the item `idx` of `job` still waits to be captioned.
    pub async fn is_pending(&self, job: &str, idx: i64) -> Result<bool> {
        let row: Option<(i64,)> = on_db!(self.0, pool => sqlx::query_as(
            "SELECT 1 FROM job_items WHERE job_id = $1 AND idx = $2 AND state = 'pending'",
        )
        .bind(job)
        .bind(idx)
        .fetch_optional(pool)
        .await)?;
        Ok(row.is_some())
    }

    /// Sets the job's webhook (before it is sealed).
    pub async fn set_webhook(&self, job: &str, url: &str, secret: &str) -> Result<()> {
        exec!(
            self.0,
            "UPDATE jobs SET webhook_url = $2, webhook_secret = $3 WHERE id = $1",
            job,
            url,
            secret
        )
        .map(|_| ())?;
        Ok(())
    }

    /// Records the webhook delivery outcome (`delivered` or `failed: ...`).
    pub async fn set_webhook_status(&self, job: &str, status: &str) -> Result<()> {
        exec!(
            self.0,
            "UPDATE jobs SET webhook_status = $2 WHERE id = $1",
            job,
            status
        )
        .map(|_| ())?;
        Ok(())
    }

    /// Ids of jobs whose results expired by `now_ms`, and of jobs stuck in `receiving` (an
    /// upload cut off by a crash) for more than `stale_ms`.
    pub async fn expired(&self, now_ms: i64, stale_ms: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = on_db!(self.0, pool => sqlx::query_as(
            "SELECT id FROM jobs WHERE expires_ms <= $1 \
             OR (status = 'receiving' AND created_ms <= $2) ORDER BY id",
        )
        .bind(now_ms)
        .bind(now_ms - stale_ms)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// A user's batch jobs, oldest first (for their access document, and to delete the jobs'
    /// objects when the account is erased).
    pub async fn list_for_user(&self, user: UserId) -> Result<Vec<Job>> {
        let sql =
            format!("SELECT {JOB_COLUMNS} FROM jobs WHERE user_id = $1 ORDER BY created_ms, id");
        Ok(fetch!(fetch_all, Job, self.0, &sql, user.0)?)
    }

    /// Deletes a job and its items (the caller deletes its objects).
    pub async fn delete(&self, job: &str) -> Result<bool> {
        let n = exec!(self.0, "DELETE FROM jobs WHERE id = $1", job)?;
        Ok(n > 0)
    }

    /// How many items are pending, over all jobs (a gauge for metrics and tests).
    pub async fn pending_count(&self) -> Result<i64> {
        let (n,): (i64,) = on_db!(self.0, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM job_items WHERE state = 'pending'",
        )
        .fetch_one(pool)
        .await)?;
        Ok(n)
    }

    /// Records what a retention sweep deleted (counts only).
    pub async fn record_sweep(&self, c: &SweepCounts) -> Result<()> {
        exec!(
            self.0,
            "INSERT INTO retention_runs (ran_ms, jobs_deleted, objects_deleted, history_deleted, \
             temp_files_deleted) VALUES ($1, $2, $3, $4, $5)",
            now_ms(),
            c.jobs_deleted,
            c.objects_deleted,
            c.history_deleted,
            c.temp_files_deleted
        )
        .map(|_| ())?;
        Ok(())
    }

    /// The most recent sweeps, newest first: (ran_ms, counts).
    pub async fn sweeps(&self, limit: u32) -> Result<Vec<(i64, SweepCounts)>> {
        let rows: Vec<(i64, i64, i64, i64, i64)> = on_db!(self.0, pool => sqlx::query_as(
            "SELECT ran_ms, jobs_deleted, objects_deleted, history_deleted, temp_files_deleted \
             FROM retention_runs ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(t, j, o, h, f)| {
                (
                    t,
                    SweepCounts {
                        jobs_deleted: j,
                        objects_deleted: o,
                        history_deleted: h,
                        temp_files_deleted: f,
                    },
                )
            })
            .collect())
    }
}

//! Timed upkeep, one scheduler for all of it: forgetting refilled rate-limit buckets and
//! failed sign-in counters past their 15 minutes (every 10 seconds), the retention sweep (every `sweep_interval_seconds`, first shortly after start),
//! and, every hour from start, announcing a significant new policy version (once per user) and
//! deleting exports past their 7 days. Jobs run one after another in one task, so no two runs
//! of the same job overlap.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use takarir_store::jobs::SweepCounts;
use tokio::time::Instant;

use crate::state::AppState;

type Run = for<'a> fn(&'a AppState) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

struct Job {
    every: Duration,
    next: Instant,
    run: Run,
}

/// Runs every upkeep job on its schedule until the returned handle is aborted.
pub fn spawn(state: &AppState) -> tokio::task::JoinHandle<()> {
    let state = state.clone();
    let now = Instant::now();
    let sweep_every = Duration::from_secs(state.config().sweep_interval_seconds.max(1));
    let mut jobs = [
        Job {
            every: Duration::from_secs(10),
            next: now,
            run: |s| Box::pin(async move { s.prune_rate_limits() }),
        },
        Job {
            every: Duration::from_secs(10),
            next: now,
            run: |s| Box::pin(sign_in_counters(s)),
        },
        Job {
            every: sweep_every,
            next: now + Duration::from_secs(5).min(sweep_every),
            run: |s| Box::pin(retention(s)),
        },
        Job {
            every: Duration::from_secs(3600),
            next: now,
            run: |s| Box::pin(accounts(s)),
        },
    ];
    tokio::spawn(async move {
        loop {
            let due = jobs.iter().map(|j| j.next).min().expect("jobs");
            tokio::time::sleep_until(due).await;
            for job in jobs.iter_mut().filter(|j| j.next <= Instant::now()) {
                (job.run)(&state).await;
                job.next = Instant::now() + job.every;
            }
        }
    })
}

async fn retention(state: &AppState) {
    match sweep(state).await {
        Ok(c) => tracing::info!(
            jobs = c.jobs_deleted,
            objects = c.objects_deleted,
            history = c.history_deleted,
            temp_files = c.temp_files_deleted,
            "retention sweep"
        ),
        Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
    }
}

/// Failed sign-in counters whose 15 minutes have passed: deleted within seconds, not at the
/// next retention sweep (which may be an hour away).
async fn sign_in_counters(state: &AppState) {
    if let Err(e) = state.login_throttle().sweep(state.db()).await {
        tracing::warn!(error = %e, "sweeping sign-in counters failed");
    }
}

async fn accounts(state: &AppState) {
    if let Err(e) = crate::service::privacy::policy::notify_all(state).await {
        tracing::error!(error = ?e, "policy notices failed");
    }
    crate::service::privacy::exports::sweep(state).await;
}

/// One retention sweep: expired jobs (rows and objects), inputs whose item is no longer
/// pending (a node died between recording a result and deleting the input), stray files in
/// `data_dir/tmp`, history past `history_retention_days`, stale sessions.
/// Records the counts.
pub async fn sweep(state: &AppState) -> anyhow::Result<SweepCounts> {
    let s = state.storage();
    let mut c = SweepCounts::default();
    let now = takarir_store::jobs::now_ms();
    // A job still `receiving` after a day lost its upload to a crash.
    for id in s.db.jobs().expired(now, 86_400_000).await? {
        c.objects_deleted += s.blobs.delete_prefix(&format!("jobs/{id}/")).await? as i64;
        if s.db.jobs().delete(&id).await? {
            c.jobs_deleted += 1;
        }
    }
    for key in s.blobs.list("jobs/").await? {
        let mut parts = key.split('/');
        let (Some("jobs"), Some(job), Some("in"), Some(idx)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(idx) = idx.parse::<i64>() else {
            continue;
        };
        let keep = match s.db.jobs().get(job).await? {
            // An upload in progress stores inputs before their rows.
            Some(j) if j.status == "receiving" => true,
            Some(_) => s.db.jobs().is_pending(job, idx).await?,
            None => false,
        };
        if !keep {
            s.blobs.delete(&key).await?;
            c.objects_deleted += 1;
        }
    }
    let tmp = state.config().data_dir.join("tmp");
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(3600))
                .unwrap_or(false);
            if old && std::fs::remove_file(e.path()).is_ok() {
                c.temp_files_deleted += 1;
            }
        }
    }
    // Sessions past their expiry or idle limit (not counted either).
    s.db.sessions()
        .delete_stale(state.config().session_idle())
        .await?;
    let days = state.config().history_retention_days;
    if days > 0 {
        let before = time::OffsetDateTime::now_utc() - time::Duration::days(days as i64);
        c.history_deleted = s.db.history().delete_all_older_than(before).await? as i64;
    }
    s.db.jobs().record_sweep(&c).await?;
    Ok(c)
}

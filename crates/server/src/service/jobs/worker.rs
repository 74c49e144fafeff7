//! The workers that caption job items, on every node: each claims one item at a time through
//! a database lease, captions it, records its result (only the lease holder does), and deletes
//! its input.

use std::time::Duration;

use takarir_store::jobs::{ClaimedItem, Job};
use takarir_store::users::UserId;

use crate::error::ApiError;
use crate::options::CaptionOptions;
use crate::service::captioning::{
    caption_images, count_outcome, record_captions, BatchItem, CaptionedImage, Upload,
};
use crate::service::jobs::records::ItemRecord;
use crate::service::jobs::{input_key, internal, webhook, JobOptions};
use crate::state::AppState;

/// A claim is retried this many times (the node died mid-item each time) before the item is
/// failed: an image that crashes nodes must not take the whole fleet down in turn.
const MAX_ATTEMPTS: i64 = 3;

/// Runs `config.job_workers` workers until the returned handles are aborted.
pub fn spawn_workers(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    (0..state.config().job_workers)
        .map(|_| tokio::spawn(worker(state.clone())))
        .collect()
}

async fn worker(state: AppState) {
    let lease_ms = state.config().job_lease_seconds as i64 * 1000;
    let mut idle = Duration::from_millis(50);
    loop {
        match state.db().jobs().claim(state.node_id(), 1, lease_ms).await {
            Ok(items) if !items.is_empty() => {
                idle = Duration::from_millis(50);
                for item in items {
                    process(&state, item).await;
                }
            }
            Ok(_) => {
                // Nothing to do: wait for a local submission or poll other nodes' work.
                let _ = tokio::time::timeout(idle, state.jobs_notified()).await;
                idle = (idle * 2).min(Duration::from_millis(1000));
            }
            Err(e) => {
                tracing::warn!(error = %e, "claiming job items failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Captions one claimed item and records its result.
async fn process(state: &AppState, item: ClaimedItem) {
    let s = state.storage();
    let job = match s.db.jobs().get(&item.job_id).await {
        Ok(Some(j)) => j,
        Ok(None) => return, // deleted meanwhile: its items went with it
        Err(e) => {
            tracing::warn!(error = %e, "reading a job failed");
            return;
        }
    };
    let stored = JobOptions::parse(&job.options);
    let lang = stored.as_ref().map(JobOptions::lang).unwrap_or_default();
    let opts = stored.map(|s| s.options);
    let key = input_key(&job.id, item.idx);
    let mut input = None;
    let outcome: Result<CaptionedImage, ApiError> = if item.attempts > MAX_ATTEMPTS {
        Err(ApiError::Internal)
    } else {
        match s.blobs.get(&key).await {
            Ok(bytes) => match &opts {
                Ok(o) => {
                    input = Some(bytes.clone());
                    caption_one(state, bytes, o.clone()).await
                }
                Err(e) => Err(e.clone()),
            },
            Err(takarir_store::Error::ObjectStore(
                takarir_store::object_store::Error::NotFound { .. },
            )) => Err(ApiError::JobInputLost),
            Err(e) => {
                // Storage unavailable: leave the item leased; it is retried after the lease.
                tracing::warn!(error = %e, "reading a job input failed");
                return;
            }
        }
    };
    let ok = outcome.is_ok();
    count_outcome(state.metrics(), &outcome);
    let captioned = outcome.as_ref().ok().cloned();
    let mut result = BatchItem::of(None, outcome, lang, &job.id);
    // Stored results keep no EXIF value unless this job asked for it (data minimisation).
    let wants_metadata = opts
        .as_ref()
        .is_ok_and(|o| o.features.contains(crate::options::Feature::Metadata));
    if !wants_metadata {
        result.metadata = None;
    }
    let json = ItemRecord::new(item.idx, &item.name, result).to_line();
    match s
        .db
        .jobs()
        .complete(item.id, state.node_id(), ok, &json)
        .await
    {
        Ok(true) => {
            // Only the lease holder records, so a taken-over item never counts twice.
            if let (Some(c), Some(bytes), Ok(opts)) = (captioned, input, &opts) {
                record(state, &job, bytes, c, opts).await;
            }
            if let Err(e) = s.blobs.delete(&key).await {
                tracing::warn!(error = %e, "deleting a captioned input failed; the sweeper will");
            }
            match s.db.jobs().try_finish(&job.id).await {
                Ok(Some(done)) => on_finished(state.clone(), done).await,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "finishing a job failed"),
            }
        }
        Ok(false) => tracing::info!("job item taken over by another node; result dropped"),
        Err(e) => tracing::warn!(error = %e, "recording a job result failed"),
    }
}

/// What a captioned item leaves behind, as a caption request does: the aggregate counters
/// and, for a signed-in user's job, their counters, their history while it is on, and a
/// training item while consent stands (all read now, so a change made meanwhile applies).
async fn record(
    state: &AppState,
    job: &Job,
    bytes: bytes::Bytes,
    captioned: CaptionedImage,
    opts: &CaptionOptions,
) {
    let user = match job.user_id {
        None => None,
        Some(id) => match state.db().users().get(UserId(id)).await {
            Ok(Some(u)) => Some(u),
            // Erased meanwhile: nothing more of theirs is kept.
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "reading a job's user failed");
                return;
            }
        },
    };
    let uploads = [Upload {
        filename: None,
        bytes,
    }];
    record_captions(state, user.as_ref(), &uploads, &[Ok(captioned)], opts).await;
}

async fn caption_one(
    state: &AppState,
    bytes: bytes::Bytes,
    opts: CaptionOptions,
) -> Result<CaptionedImage, ApiError> {
    let captioner = state.captioner().clone();
    let text = state.text_reader().clone();
    let langs = opts.languages(&captioner.info().languages, captioner.default_language())?;
    let metrics = state.metrics().clone();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let out = caption_images(&captioner, &text, &[&bytes[..]], &opts, &langs, |_| {})
            .pop()
            .unwrap_or(Err(ApiError::Internal));
        metrics
            .inference_seconds
            .observe(started.elapsed().as_secs_f64());
        out
    })
    .await
    .map_err(internal)?
}

/// A job just finished (on this node, exactly once): delete any input left, send the webhook.
pub(crate) async fn on_finished(state: AppState, job: Job) {
    let s = state.storage();
    if let Err(e) = s.blobs.delete_prefix(&format!("jobs/{}/in/", job.id)).await {
        tracing::warn!(error = %e, "deleting a finished job's inputs failed; the sweeper will");
    }
    webhook::spawn(state, job);
}

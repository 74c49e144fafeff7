//! Receiving a job: each file becomes an item (stored encrypted until it is captioned), each
//! entry of a ZIP archive too; unsafe ZIP names, nested archives, oversized or empty files
//! become items that failed at upload, with their reason. The HTTP layer streams the files in
//! ([`Intake::add_file`]) and then seals the job with its options ([`Intake::seal`]); a
//! request that fails on the way leaves nothing ([`Intake::abandon`]).

use std::io::{Cursor, Read};

use takarir_store::jobs::NewJob;
use takarir_store::users::User;
use takarir_store::Sensitivity;

use crate::error::ApiError;
use crate::i18n::Lang;
use crate::options::CaptionOptions;
use crate::service::jobs::webhook::names_private_address;
use crate::service::jobs::{
    discard, failed_record, input_key, internal, random_hex, JobCreated, JobOptions,
};
use crate::state::AppState;

/// A job being received: what is stored so far, to clean up if the request fails.
pub struct Intake<'a> {
    state: &'a AppState,
    id: String,
    lang: Lang,
    next: i64,
    failed: i64,
    unpacked: u64,
}

impl<'a> Intake<'a> {
    /// Starts a job for `user` (whose history and counters its captions go to), with error
    /// messages in `lang`.
    pub async fn begin(
        state: &'a AppState,
        user: Option<&User>,
        lang: Lang,
    ) -> Result<Intake<'a>, ApiError> {
        let id = random_hex(16);
        let expires_ms = takarir_store::jobs::now_ms()
            + (state.config().job_result_days as i64).max(1) * 86_400_000;
        state
            .db()
            .jobs()
            .create(&NewJob {
                id: &id,
                user_id: user.map(|u| u.id),
                options: "{}",
                webhook_url: None,
                webhook_secret: None,
                expires_ms,
            })
            .await
            .map_err(internal)?;
        Ok(Intake {
            state,
            id,
            lang,
            next: 0,
            failed: 0,
            unpacked: 0,
        })
    }

    /// Adds one uploaded file: an image, or a ZIP archive whose entries are added one by one.
    pub async fn add_file(&mut self, name: &str, bytes: &[u8]) -> Result<(), ApiError> {
        let display = name.chars().take(300).collect::<String>();
        let limit = self.state.config().max_upload_bytes;
        if is_zip(bytes) {
            self.add_zip(bytes, &display).await
        } else if bytes.len() as u64 > limit {
            self.fail(&display, ApiError::PayloadTooLarge { limit })
                .await
        } else {
            self.add(&display, bytes).await
        }
    }

    /// Checks the options and the webhook, stores them, and hands the job to the workers.
    /// `options`: the submitter's defaults with the request's own options applied.
    pub async fn seal(
        self,
        options: Result<CaptionOptions, ApiError>,
        webhook: Option<String>,
    ) -> Result<JobCreated, ApiError> {
        let state = self.state;
        let checked = (|| {
            if self.next == 0 {
                return Err(ApiError::NoImage);
            }
            // Validated now, so a bad option is the request's error, not every item's.
            let options = options?;
            let captioner = state.captioner();
            options.languages(&captioner.info().languages, captioner.default_language())?;
            if let Some(url) = &webhook {
                let ok = url::Url::parse(url)
                    .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .unwrap_or(false);
                if !ok {
                    return Err(ApiError::InvalidWebhook);
                }
                // An address written in the URL is refused now; a host name is checked when it
                // is resolved, at delivery (it may resolve differently by then).
                if !state.config().webhook_private_networks && names_private_address(url) {
                    return Err(ApiError::WebhookNotPublic);
                }
            }
            Ok(options)
        })();
        let options = match checked {
            Ok(o) => o,
            Err(e) => {
                self.abandon().await;
                return Err(e);
            }
        };
        let id = self.id.clone();
        let db = state.db();
        let stored = JobOptions {
            options,
            ui: self.lang.code().to_string(),
        };
        let secret = webhook.as_ref().map(|_| random_hex(32));
        if let (Some(url), Some(secret)) = (&webhook, &secret) {
            db.jobs()
                .set_webhook(&id, url, secret)
                .await
                .map_err(internal)?;
        }
        let stored = serde_json::to_string(&stored).map_err(internal)?;
        let finished = db
            .jobs()
            .seal(&id, self.next, &stored)
            .await
            .map_err(internal)?;
        if let Some(job) = finished {
            crate::service::jobs::worker::on_finished(state.clone(), job).await;
        }
        state.notify_jobs();
        Ok(JobCreated {
            status: if self.failed == self.next {
                "done"
            } else {
                "queued"
            }
            .into(),
            total: self.next,
            failed: self.failed,
            status_url: format!("/api/v1/jobs/{id}"),
            results_url: format!("/api/v1/jobs/{id}/results"),
            webhook_secret: secret,
            id,
        })
    }

    /// Deletes the job and whatever it stored: the request failed.
    pub async fn abandon(self) {
        discard(self.state, &self.id).await;
    }

    fn check_count(&self) -> Result<(), ApiError> {
        if self.next as usize >= self.state.config().job_max_files {
            return Err(ApiError::TooManyFiles {
                max: self.state.config().job_max_files,
            });
        }
        Ok(())
    }

    async fn fail(&mut self, name: &str, e: ApiError) -> Result<(), ApiError> {
        let name = base_name(name);
        self.check_count()?;
        let idx = self.next;
        self.next += 1;
        self.failed += 1;
        let json = failed_record(idx, name, &e, self.lang, &self.id);
        self.state
            .db()
            .jobs()
            .add_failed(&self.id, idx, name, &json)
            .await
            .map_err(internal)
    }

    async fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), ApiError> {
        let name = base_name(name);
        self.check_count()?;
        if bytes.is_empty() {
            return self.fail(name, ApiError::EmptyImage).await;
        }
        if is_zip(bytes) {
            return self.fail(name, ApiError::NestedArchive).await;
        }
        let idx = self.next;
        self.next += 1;
        let s = self.state.storage();
        s.blobs
            .put(&input_key(&self.id, idx), bytes, Sensitivity::Personal)
            .await
            .map_err(internal)?;
        s.db.jobs()
            .add_pending(&self.id, idx, name)
            .await
            .map_err(internal)
    }

    /// Opens a ZIP part: safe entries become items; unsafe, nested or oversized ones become
    /// failed items with their reason. Entries are unpacked one at a time, each read through
    /// a limit, so a bomb costs at most the per-file limit.
    async fn add_zip(&mut self, archive: &[u8], archive_name: &str) -> Result<(), ApiError> {
        let per_file = self.state.config().max_upload_bytes;
        let total_limit = self.state.config().job_max_bytes;
        let mut zip = match zip::ZipArchive::new(Cursor::new(archive)) {
            Ok(z) => z,
            Err(_) => return self.fail(archive_name, ApiError::CorruptImage).await,
        };
        // The ZIP reader keeps one entry per name, silently: a name the central directory
        // lists more than once is refused, every time it occurs.
        let duplicated = duplicated_names(archive);
        for (name, times) in &duplicated {
            for _ in 0..*times {
                self.fail(name, ApiError::DuplicateArchiveName).await?;
            }
        }
        for i in 0..zip.len() {
            if zip
                .name_for_index(i)
                .is_some_and(|n| duplicated.iter().any(|(d, _)| d == n))
            {
                continue;
            }
            let limit = total_limit.saturating_sub(self.unpacked);
            let Some((name, outcome)) = read_entry(&mut zip, i, archive_name, per_file, limit)
            else {
                continue;
            };
            if let Ok(bytes) = &outcome {
                self.unpacked += bytes.len() as u64;
            }
            match outcome {
                Ok(bytes) => self.add(&name, &bytes).await?,
                Err(e) => self.fail(&name, e).await?,
            }
        }
        Ok(())
    }
}

/// Reads entry `i` (None for a directory): its display name and bytes, or why it is refused.
/// `remaining` is what the archive may still unpack to in total.
fn read_entry(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    i: usize,
    archive_name: &str,
    per_file: u64,
    remaining: u64,
) -> Option<(String, Result<Vec<u8>, ApiError>)> {
    let mut entry = match zip.by_index(i) {
        Ok(e) => e,
        Err(_) => return Some((format!("{archive_name}#{i}"), Err(ApiError::CorruptImage))),
    };
    if entry.is_dir() {
        return None;
    }
    let raw = entry.name().to_string();
    let name: String = raw.chars().take(300).collect();
    let outcome = if entry.enclosed_name().is_none() || raw.split(['/', '\\']).any(|c| c == "..") {
        Err(ApiError::UnsafeArchivePath)
    } else if raw.to_ascii_lowercase().ends_with(".zip") {
        Err(ApiError::NestedArchive)
    } else if entry.size() > per_file {
        Err(ApiError::PayloadTooLarge { limit: per_file })
    } else if entry.size() > remaining {
        Err(ApiError::PayloadTooLarge { limit: remaining })
    } else {
        // The header's size may lie: the limit holds for what actually comes out.
        let mut buf = Vec::new();
        match (&mut entry).take(per_file + 1).read_to_end(&mut buf) {
            Err(_) => Err(ApiError::CorruptImage),
            Ok(_) if buf.len() as u64 > per_file.min(remaining) => {
                Err(ApiError::PayloadTooLarge { limit: per_file })
            }
            Ok(_) => Ok(buf),
        }
    };
    Some((name, outcome))
}

/// The file names (directories left out) that a ZIP's central directory lists more than once,
/// with how many times each occurs, in the order first seen. Read from the end-of-central-
/// directory record; a ZIP64 or unreadable directory gives none (the reader then decides).
fn duplicated_names(zip: &[u8]) -> Vec<(String, usize)> {
    let u16_at = |p: usize| {
        zip.get(p..p + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |p: usize| {
        zip.get(p..p + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let tail_start = zip.len().saturating_sub(22 + 65_535);
    let Some(eocd) = zip[tail_start..]
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .map(|p| tail_start + p)
    else {
        return Vec::new();
    };
    let (Some(mut pos), Some(size)) = (u32_at(eocd + 16), u32_at(eocd + 12)) else {
        return Vec::new();
    };
    let end = pos.saturating_add(size).min(zip.len());
    let mut counts: Vec<(String, usize)> = Vec::new();
    while pos + 46 <= end && zip.get(pos..pos + 4) == Some(b"PK\x01\x02".as_slice()) {
        let (Some(n), Some(x), Some(c)) = (u16_at(pos + 28), u16_at(pos + 30), u16_at(pos + 32))
        else {
            break;
        };
        let Some(raw) = zip.get(pos + 46..pos + 46 + n) else {
            break;
        };
        let name = String::from_utf8_lossy(raw).into_owned();
        if !name.ends_with('/') {
            match counts.iter_mut().find(|(m, _)| *m == name) {
                Some((_, k)) => *k += 1,
                None => counts.push((name, 1)),
            }
        }
        pos += 46 + n + x + c;
    }
    counts.retain(|(_, k)| *k > 1);
    counts
}

/// The last component of a file name as the client sent it: a job keeps only that (and the
/// file's index), never the client's folders (`C:\Users\ani\...`, `holiday/2025/...`),
/// which can name a person. Empty (a name that ends in a separator) becomes `file`.
pub fn base_name(name: &str) -> &str {
    match name.rsplit(['/', '\\']).next() {
        Some(b) if !b.is_empty() => b,
        _ => "file",
    }
}

fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

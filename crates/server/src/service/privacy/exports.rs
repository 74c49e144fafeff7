//! Data exports: the user's access document (`data.json`) and training images as a ZIP,
//! made in the background, encrypted in the object store, downloadable for 7 days through a
//! link shown once; revocation; and the sweep of expired and abandoned ones.

use std::time::Duration;

use async_zip::tokio::write::ZipFileWriter;
use async_zip::{Compression, ZipEntryBuilder};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::TryStreamExt;
use takarir_store::erasure::user_prefix;
use takarir_store::exports::{self, Export, ExportId};
use takarir_store::users::User;
use takarir_store::withdrawals::Withdrawal;
use takarir_store::Sensitivity;
use time::OffsetDateTime;
use tokio_util::io::ReaderStream;

use crate::error::ApiError;
use crate::service::accounts::auth::random_token;
use crate::service::privacy::access_document;
use crate::state::AppState;
use crate::views::training_file;

/// Days an export link works.
pub const EXPORT_DAYS: i64 = 7;

/// Starts the user's export: a pending row and its link at once, the ZIP (`data.json` and the
/// training images) made in the background. Waits up to `export_wait_seconds` for the ZIP, so a
/// small export answers ready (or its error) in the same request; a larger one answers pending
/// and its link works once it is ready.
pub async fn create(state: &AppState, user: &User) -> Result<(Export, String), ApiError> {
    let st = state.storage();
    let path = format!("{}/exports/{}.zip", user_prefix(user.id), random_token());
    let token = random_token();
    let expires = OffsetDateTime::now_utc() + time::Duration::days(EXPORT_DAYS);
    let export = st
        .db
        .exports()
        .create(user.id, &token, &path, expires)
        .await?;
    let made = tokio::spawn(make_export(state.clone(), user.clone(), export.clone()));
    let wait = Duration::from_secs(state.config().export_wait_seconds);
    if wait.is_zero() {
        return Ok((export, token));
    }
    match tokio::time::timeout(wait, made).await {
        Err(_) => Ok((export, token)), // still being made
        Ok(Err(_)) => Err(ApiError::Internal),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Ok(Ok(size))) => Ok((
            Export {
                status: exports::READY.into(),
                size_bytes: size as i64,
                ..export
            },
            token,
        )),
    }
}

/// Writes the export's ZIP into the object store and marks the row ready (or failed); returns
/// its size. The ZIP is never whole in memory: it is written into one end of a pipe and
/// streamed from the other into the store, encrypted.
async fn make_export(state: AppState, user: User, export: Export) -> Result<u64, ApiError> {
    let st = state.storage();
    let path = &export.object_path;
    let made = async {
        let doc = access_document(&state, &user).await?;
        let data_json = serde_json::to_vec_pretty(&doc).map_err(|_| ApiError::Internal)?;
        let items = st.db.training().list(user.id).await?;
        let (zip_end, upload_end) = tokio::io::duplex(64 * 1024);
        let write = async {
            // Stored, not deflated: the images are compressed already and data.json is small.
            let entry = |name: String| ZipEntryBuilder::new(name.into(), Compression::Stored);
            let mut zip = ZipFileWriter::with_tokio(zip_end);
            zip.write_entry_whole(entry("data.json".into()), &data_json)
                .await
                .map_err(zip_failed)?;
            for item in &items {
                let bytes = st.blobs.get(&item.object_path).await?;
                zip.write_entry_whole(entry(training_file(item.id.0, &item.format)), &bytes)
                    .await
                    .map_err(zip_failed)?;
            }
            // Closing writes the central directory; the pipe's end is then dropped, which ends
            // the upload's input.
            zip.close().await.map_err(zip_failed)?;
            Ok::<_, ApiError>(())
        };
        let upload = st.blobs.put_stream(
            path,
            ReaderStream::new(upload_end).map_err(takarir_store::Error::from),
            Sensitivity::Personal,
        );
        match tokio::join!(write, upload) {
            (Ok(()), Ok((_, size))) => Ok(size),
            (written, uploaded) => Err(match uploaded {
                Err(e) => e.into(),
                Ok(_) => written.err().unwrap_or(ApiError::Internal),
            }),
        }
    };
    match made.await {
        Ok(size) => {
            if st.db.exports().finish(export.id, size).await? {
                return Ok(size);
            }
            // Revoked, or the account erased, while the ZIP was made: it must not outlive them.
            st.blobs.delete(path).await?;
            Err(ApiError::NotFound)
        }
        Err(e) => {
            // A failed write ends the pipe early, so the upload may have stored a partial ZIP.
            if let Err(e) = st.blobs.delete(path).await {
                tracing::error!(error = %e, "deleting a failed export failed");
            }
            if let Err(e) = st.db.exports().fail(export.id).await {
                tracing::error!(error = %e, "marking an export failed failed");
            }
            Err(e)
        }
    }
}

fn zip_failed(e: async_zip::error::ZipError) -> ApiError {
    tracing::error!(error = %e, "writing an export ZIP failed");
    ApiError::Internal
}

/// The ZIP a download token names, if the link is live: its length and its content as it is
/// read and decrypted.
pub async fn by_token(
    state: &AppState,
    token: &str,
) -> Result<(u64, BoxStream<'static, takarir_store::Result<Bytes>>), ApiError> {
    let st = state.storage();
    let export = st
        .db
        .exports()
        .get_by_token(token)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    match export.status.as_str() {
        exports::PENDING => return Err(ApiError::ExportPending),
        exports::FAILED => return Err(ApiError::ExportFailed),
        _ => {}
    }
    let (_, content) = st.blobs.get_stream(&export.object_path).await?;
    Ok((export.size_bytes.max(0) as u64, content))
}

/// Revokes one of the user's exports: the link stops working and the ZIP is deleted.
pub async fn revoke(state: &AppState, user: &User, id: ExportId) -> Result<(), ApiError> {
    let st = state.storage();
    if !st
        .db
        .exports()
        .list(user.id)
        .await?
        .iter()
        .any(|e| e.id == id)
    {
        return Err(ApiError::NotFound);
    }
    let subject_hash = user.subject_hash();
    super::remember(
        state,
        Withdrawal::Export {
            subject_hash,
            id: id.0,
        },
    )
    .await?;
    let path = st
        .db
        .exports()
        .delete(user.id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    st.blobs.delete(&path).await?;
    Ok(())
}

/// How long an export may stay pending before the sweeper takes its node to have stopped while
/// making it.
const EXPORT_STALE: time::Duration = time::Duration::hours(1);

/// Deletes exports past their 7 days, and fails those a stopped node left pending; either way
/// their ZIPs go.
pub async fn sweep(state: &AppState) {
    let st = state.storage();
    let exports = st.db.exports();
    let swept = [
        (
            "stale",
            exports
                .fail_stale(OffsetDateTime::now_utc() - EXPORT_STALE)
                .await,
        ),
        ("expired", exports.delete_expired().await),
    ];
    for (which, paths) in swept {
        match paths {
            Ok(paths) => {
                for p in paths {
                    if let Err(e) = st.blobs.delete(&p).await {
                        tracing::error!(error = %e, which, "deleting an export's ZIP failed");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, which, "sweeping exports failed"),
        }
    }
}

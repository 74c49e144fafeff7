//! The service's shared state: configuration, the model, storage, the bounded inference and
//! upload queues, the rate limiter, metrics, the mailer, sign-in counters and the policy
//! versions. Nothing here knows about HTTP; the routes in [`crate::http`] and the use cases in
//! [`crate::service`] both work through it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use takarir_engine::text::{CLASSIFIER_FILE, DETECTOR_FILE, RECOGNISER_FILE};
use takarir_engine::{Captioner, CaptionerOptions, LazyTextReader, TextReaderOptions};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::admission::{ClientSlot, PerClient};
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::models::ModelCard;
use crate::policy::Policy;
use crate::ratelimit::RateLimiter;
use crate::service::accounts::throttle::LoginThrottle;
use crate::storage::Storage;

/// Shared state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServerConfig,
    captioner: Arc<Captioner>,
    text: Arc<LazyTextReader>,
    text_dir: PathBuf,
    storage: Storage,
    node_id: String,
    job_signal: Notify,
    queue: Arc<Semaphore>,
    uploads: Arc<Semaphore>,
    client_uploads: Arc<PerClient>,
    limiter: RateLimiter,
    metrics: Metrics,
    started: Instant,
    mailer: Mailer,
    login_throttle: LoginThrottle,
    policy: Policy,
    card: Option<ModelCard>,
}

impl AppState {
    /// State around an already loaded model and opened storage.
    ///
    /// Panics on an invalid `smtp_url`, `mail_from` or `policy_file`; [`AppState::load`]
    /// reports those as errors first.
    pub fn new(config: ServerConfig, captioner: Arc<Captioner>, storage: Storage) -> Self {
        let metrics = Metrics::new();
        metrics.queue_capacity.set(config.queue_capacity as i64);
        metrics
            .model_load_seconds
            .set(captioner.info().load_ms / 1000.0);
        AppState {
            inner: Arc::new(Inner {
                queue: Arc::new(Semaphore::new(config.queue_capacity)),
                uploads: Arc::new(Semaphore::new(config.max_concurrent_uploads)),
                client_uploads: PerClient::new(config.max_uploads_per_client),
                limiter: RateLimiter::new(config.rate_limit_per_minute),
                started: Instant::now(),
                mailer: Mailer::new(&config).expect("valid smtp_url and mail_from"),
                login_throttle: LoginThrottle::new(
                    config.login_failures_per_account,
                    config.login_failures_per_client,
                    throttle_salt(&config).expect("readable throttle salt"),
                ),
                policy: load_policy(&config).expect("valid policy_file"),
                card: ModelCard::of(&config.model).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "the model's card.json cannot be read");
                    None
                }),
                metrics,
                text: Arc::new(LazyTextReader::new(text_options(&config, &captioner))),
                text_dir: text_options(&config, &captioner).dir,
                captioner,
                storage,
                node_id: node_id(),
                job_signal: Notify::new(),
                config,
            }),
        }
    }

    /// Opens the storage, loads the configured model (on a blocking thread) and builds the state.
    pub async fn load(mut config: ServerConfig) -> anyhow::Result<Self> {
        Mailer::new(&config)?;
        load_policy(&config)?;
        throttle_salt(&config)?;
        // The version `takarir models promote` chose, if any.
        config.model = crate::models::model_to_load(&config)?;
        let storage = Storage::open(&config).await?;
        let mut opts = CaptionerOptions::new(config.model.clone());
        if let Some(t) = config.threads {
            opts.threads = t;
        }
        opts.limits = config.image_limits();
        let model = config.model.clone();
        let captioner = tokio::task::spawn_blocking(move || Captioner::load(&opts))
            .await?
            .with_context(|| format!("loading model {model}"))?;
        tracing::info!(
            model = %captioner.info().name,
            load_ms = captioner.info().load_ms,
            "model loaded"
        );
        Ok(AppState::new(config, Arc::new(captioner), storage))
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The model.
    pub fn captioner(&self) -> &Arc<Captioner> {
        &self.inner.captioner
    }

    /// The model's `card.json`, when it has one.
    pub fn model_card(&self) -> Option<&ModelCard> {
        self.inner.card.as_ref()
    }

    /// The text reader, loaded on the first request for `text`.
    pub fn text_reader(&self) -> &Arc<LazyTextReader> {
        &self.inner.text
    }

    /// Whether text can be read: the text model's files are there (and, once loaded, it
    /// loaded). The web page asks for text only then.
    pub fn text_available(&self) -> bool {
        if self.inner.text.is_loaded() {
            return self.inner.text.get().is_ok();
        }
        [DETECTOR_FILE, CLASSIFIER_FILE, RECOGNISER_FILE]
            .iter()
            .all(|f| self.inner.text_dir.join(f).is_file())
    }

    /// The database and object store.
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// The database.
    pub fn db(&self) -> &takarir_store::Db {
        &self.inner.storage.db
    }

    /// This process's name in job leases: unique per start.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Wakes this node's idle job workers.
    pub fn notify_jobs(&self) {
        self.inner.job_signal.notify_waiters();
    }

    /// Resolves when this node receives a job.
    pub async fn jobs_notified(&self) {
        self.inner.job_signal.notified().await
    }

    /// The account mailer.
    pub fn mailer(&self) -> &Mailer {
        &self.inner.mailer
    }

    /// Failed sign-in counters.
    pub fn login_throttle(&self) -> &LoginThrottle {
        &self.inner.login_throttle
    }

    /// Privacy-policy versions.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Seconds since start.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Places in the queue in use.
    pub fn queue_in_use(&self) -> usize {
        self.inner.config.queue_capacity - self.inner.queue.available_permits()
    }

    /// A place in the inference queue, or 503 at once when it is full.
    pub fn queue_permit(&self) -> Result<QueuePermit, ApiError> {
        match self.inner.queue.clone().try_acquire_owned() {
            Ok(permit) => {
                let depth = self.inner.metrics.queue_depth.clone();
                depth.inc();
                Ok(QueuePermit {
                    _permit: permit,
                    depth,
                })
            }
            Err(_) => Err(self.busy()),
        }
    }

    /// Forgets rate-limit buckets that have refilled.
    pub fn prune_rate_limits(&self) {
        self.inner.limiter.prune();
    }

    /// A place among the requests receiving their body, or 503 at once when all are taken
    /// or the client at `ip` already has `max_uploads_per_client` of them.
    pub fn upload_permit(&self, ip: std::net::IpAddr) -> Result<UploadPermit, ApiError> {
        let slot = self
            .inner
            .client_uploads
            .enter(ip)
            .ok_or_else(|| self.busy())?;
        let permit = self
            .inner
            .uploads
            .clone()
            .try_acquire_owned()
            .map_err(|_| self.busy())?;
        Ok(UploadPermit {
            _permit: permit,
            _slot: slot,
        })
    }

    fn busy(&self) -> ApiError {
        self.inner.metrics.busy.inc();
        ApiError::Busy { retry_after: 5 }
    }

    /// Gives back the token [`AppState::rate_limit`] took, for a request refused as busy
    /// (503): the client was not served, so it should not pay.
    pub fn refund_rate_limit(&self, ip: std::net::IpAddr) {
        self.inner.limiter.refund(ip);
    }

    /// Takes a rate-limit token for the client, or 429.
    pub fn rate_limit(&self, ip: std::net::IpAddr) -> Result<(), ApiError> {
        self.inner.limiter.check(ip).map_err(|retry_after| {
            self.inner.metrics.rate_limited.inc();
            ApiError::RateLimited { retry_after }
        })
    }
}

/// A lease owner name unique to this process start: process id plus random bits.
fn node_id() -> String {
    let mut b = [0u8; 6];
    rand::fill(&mut b);
    format!("node-{}-{}", std::process::id(), hex::encode(b))
}

/// The text reader's options: `text_model`, else `text/` beside the model's directory
/// (`models/text` beside `models/default`), with the server's threads and image limits.
fn text_options(config: &ServerConfig, captioner: &Captioner) -> TextReaderOptions {
    let beside = || {
        captioner
            .model_dir()
            .parent()
            .map(|p| p.join("text"))
            .unwrap_or_else(|| "text".into())
    };
    let dir = config.text_model.clone().unwrap_or_else(beside);
    let mut opts = TextReaderOptions::new(dir);
    if let Some(t) = config.threads {
        opts.threads = t;
    }
    opts.limits = config.image_limits();
    opts
}

fn load_policy(config: &ServerConfig) -> anyhow::Result<Policy> {
    match &config.policy_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Policy::parse(&text).with_context(|| format!("parsing {}", path.display()))
        }
        None => Ok(Policy::built_in()),
    }
}

/// A place among the uploads in progress (and one of its client's); freed on drop.
pub struct UploadPermit {
    _permit: OwnedSemaphorePermit,
    _slot: ClientSlot,
}

/// A place in the inference queue; freed on drop.
pub struct QueuePermit {
    _permit: OwnedSemaphorePermit,
    depth: prometheus::IntGauge,
}

impl Drop for QueuePermit {
    fn drop(&mut self) {
        self.depth.dec();
    }
}

/// The deployment's secret for sign-in counter keys: `throttle_salt`, else
/// `data_dir/throttle.salt`, created (owner-only) with 256 random bits on first start.
fn throttle_salt(config: &ServerConfig) -> anyhow::Result<String> {
    use anyhow::Context;
    if let Some(s) = config
        .throttle_salt
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        return Ok(s.trim().to_owned());
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let path = config.data_dir.join("throttle.salt");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let salt = hex::encode(rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut f, salt.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(salt)
}

//! Takarir's caption service: the HTTP API v1 (`/api/v1/...`), the server-rendered web page
//! (Indonesian first, works without JavaScript), and `/metrics`.
//!
//! Privacy by construction: uploads are read into memory, decoded from memory by the engine,
//! and dropped with the request; nothing is written to disk. Logs carry request ids, routes,
//! statuses and timings only: never image bytes, captions, file names or client addresses.
//!
//! Use [`ServerConfig::load`] and [`serve`]; tests and embedders can use [`AppState`],
//! [`router`] and [`Server`] to bind a chosen listener.

pub mod accounts;
pub mod admin;
pub mod api;
pub mod auth;
pub mod caption;
pub mod config;
pub mod error;
pub mod i18n;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod middleware;
pub mod policy;
pub mod ratelimit;
pub mod rights;
pub mod storage;
pub mod web;
pub mod web_account;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use takarir_engine::{Captioner, CaptionerOptions, ImageLimits};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use config::ServerConfig;
pub use error::ApiError;
pub use storage::Storage;

/// Shared state: the model, the queue, the limiter, metrics, templates.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServerConfig,
    captioner: Arc<Captioner>,
    storage: Storage,
    node_id: String,
    job_signal: jobs::SharedSignal,
    queue: Arc<Semaphore>,
    uploads: Arc<Semaphore>,
    limiter: ratelimit::RateLimiter,
    metrics: metrics::Metrics,
    templates: minijinja::Environment<'static>,
    started: Instant,
    mailer: mail::Mailer,
    login_throttle: auth::LoginThrottle,
    policy: policy::Policy,
}

impl AppState {
    /// State around an already loaded model and opened storage.
    ///
    /// Panics on an invalid `smtp_url`, `mail_from` or `policy_file`; [`AppState::load`]
    /// reports those as errors first.
    pub fn new(config: ServerConfig, captioner: Arc<Captioner>, storage: Storage) -> Self {
        let metrics = metrics::Metrics::new();
        metrics.queue_capacity.set(config.queue_capacity as i64);
        metrics
            .model_load_seconds
            .set(captioner.info().load_ms / 1000.0);
        AppState {
            inner: Arc::new(Inner {
                queue: Arc::new(Semaphore::new(config.queue_capacity)),
                uploads: Arc::new(Semaphore::new(config.max_concurrent_uploads)),
                limiter: ratelimit::RateLimiter::new(config.rate_limit_per_minute),
                templates: web::templates(),
                started: Instant::now(),
                mailer: mail::Mailer::new(&config).expect("valid smtp_url and mail_from"),
                login_throttle: auth::LoginThrottle::new(
                    config.login_failures_per_account,
                    config.login_failures_per_client,
                ),
                policy: load_policy(&config).expect("valid policy_file"),
                metrics,
                captioner,
                storage,
                node_id: node_id(),
                job_signal: Default::default(),
                config,
            }),
        }
    }

    /// Opens the storage, loads the configured model (on a blocking thread) and builds the state.
    pub async fn load(config: ServerConfig) -> anyhow::Result<Self> {
        mail::Mailer::new(&config)?;
        load_policy(&config)?;
        let storage = Storage::open(&config).await?;
        let mut opts = CaptionerOptions::new(config.model.clone());
        if let Some(t) = config.threads {
            opts.threads = t;
        }
        opts.limits = ImageLimits {
            max_bytes: config.max_upload_bytes,
            max_pixels: config.max_megapixels * 1_000_000,
        };
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

    /// The database and object store.
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// This process's name in job leases: unique per start.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Wakes this node's idle job workers.
    pub fn notify_jobs(&self) {
        self.inner.job_signal.notify();
    }

    /// Resolves when this node receives a job.
    pub async fn jobs_notified(&self) {
        self.inner.job_signal.notified().await
    }

    /// The account mailer.
    pub fn mailer(&self) -> &mail::Mailer {
        &self.inner.mailer
    }

    /// Failed sign-in counters.
    pub fn login_throttle(&self) -> &auth::LoginThrottle {
        &self.inner.login_throttle
    }

    /// Privacy-policy versions.
    pub fn policy(&self) -> &policy::Policy {
        &self.inner.policy
    }

    /// Metrics.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// Templates.
    pub fn templates(&self) -> &minijinja::Environment<'static> {
        &self.inner.templates
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
            Err(_) => {
                self.inner.metrics.busy.inc();
                Err(ApiError::Busy { retry_after: 5 })
            }
        }
    }

    /// Forgets rate-limit buckets that have refilled.
    pub fn prune_rate_limits(&self) {
        self.inner.limiter.prune();
    }

    /// A place among the requests receiving their body, or 503 at once when all are taken.
    pub fn upload_permit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.inner.uploads.clone().try_acquire_owned().map_err(|_| {
            self.inner.metrics.busy.inc();
            ApiError::Busy { retry_after: 5 }
        })
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

fn load_policy(config: &ServerConfig) -> anyhow::Result<policy::Policy> {
    match &config.policy_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            policy::Policy::parse(&text).with_context(|| format!("parsing {}", path.display()))
        }
        None => Ok(policy::Policy::built_in()),
    }
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

/// The request body limit for a file limit: room for multipart framing and option fields.
pub fn body_limit(max_upload_bytes: u64) -> usize {
    (max_upload_bytes as usize).saturating_add(64 * 1024)
}

/// Every route.
pub fn router(state: AppState) -> Router {
    let limit = body_limit(state.config().max_upload_bytes);
    Router::new()
        .route("/api/v1/captions", post(api::captions))
        .route(
            "/api/v1/jobs",
            post(jobs::create).layer(DefaultBodyLimit::max(
                (state.config().job_max_bytes as usize).saturating_add(1 << 20),
            )),
        )
        .route("/api/v1/jobs/{id}", get(jobs::get).delete(jobs::delete))
        .route("/api/v1/jobs/{id}/results", get(jobs::results))
        .route("/api/v1/health", get(api::health))
        .route("/api/v1/models", get(api::models))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/", get(web::index).post(web::submit))
        .route("/privacy", get(web::privacy))
        .route("/contact", get(web::contact))
        .route("/lang/{code}", get(web::set_lang))
        .route("/static/app.js", get(web::app_js))
        .route("/static/app.css", get(web::app_css))
        .route("/metrics", get(api::metrics))
        .merge(accounts::router())
        .merge(web_account::router())
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::outer,
        ))
        .with_state(state)
}

/// A bound server, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    app: Router,
    state: AppState,
    config: ServerConfig,
}

impl Server {
    /// Binds `config.listen` (port 0 picks a free port).
    pub async fn bind(config: ServerConfig, state: AppState) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Ok(Server {
            listener,
            app: router(state.clone()),
            state,
            config,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish for up to
    /// `shutdown_grace_seconds`.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let grace = Duration::from_secs(self.config.shutdown_grace_seconds);
        let state = self.state.clone();
        let pruner = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                state.prune_rate_limits();
            }
        });
        let _abort = AbortOnDrop(pruner);
        let _workers: Vec<AbortOnDrop> = jobs::spawn_workers(&self.state)
            .into_iter()
            .chain([jobs::spawn_sweeper(&self.state)])
            .map(AbortOnDrop)
            .collect();
        // Account upkeep: announce a significant new policy version (once per user), and
        // delete exports past their 7 days, now and every hour.
        let state = self.state.clone();
        let upkeep = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                if let Err(e) = policy::notify_all(&state).await {
                    tracing::error!(error = ?e, "policy notices failed");
                }
                rights::delete_expired_exports(&state).await;
            }
        });
        let _abort_upkeep = AbortOnDrop(upkeep);
        let addr = self.local_addr()?;
        let make = self.app.into_make_service_with_connect_info::<SocketAddr>();
        if let (Some(cert), Some(key)) = (&self.config.tls_cert, &self.config.tls_key) {
            let tls = tls_config(cert, key)?;
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                tracing::info!("shutting down");
                h.graceful_shutdown(Some(grace));
            });
            tracing::info!(%addr, "listening (https)");
            let std_listener = self.listener.into_std()?;
            axum_server::from_tcp_rustls(std_listener, tls)
                .handle(handle)
                .serve(make)
                .await?;
            return Ok(());
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(self.listener, make).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = tx.send(());
        });
        tracing::info!(%addr, "listening (http)");
        let deadline = async move {
            if rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            r = server => r.context("server failed")?,
            _ = deadline => tracing::warn!("grace period over; dropping requests in flight"),
        }
        Ok(())
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<axum_server::tls_rustls::RustlsConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(axum_server::tls_rustls::RustlsConfig::from_config(
        Arc::new(cfg),
    ))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Loads the model, binds, and serves until Ctrl-C or SIGTERM. The caller sets up `tracing`.
pub async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let state = AppState::load(config.clone()).await?;
    Server::bind(config, state)
        .await?
        .run(shutdown_signal())
        .await
}

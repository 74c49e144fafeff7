//! Binding, serving (HTTP or HTTPS), graceful shutdown, and the background tasks that live
//! as long as the server: the job workers and the upkeep scheduler.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;

use crate::admission::PerClient;

use crate::config::ServerConfig;
use crate::service::jobs::worker;
use crate::service::upkeep;
use crate::state::AppState;

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
            app: crate::http::router(state.clone()),
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
        // The job workers and the upkeep scheduler live as long as the server.
        let _background: Vec<AbortOnDrop> = worker::spawn_workers(&self.state)
            .into_iter()
            .chain([upkeep::spawn(&self.state)])
            .map(AbortOnDrop)
            .collect();
        let addr = self.local_addr()?;
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
            let make = self.app.into_make_service_with_connect_info::<SocketAddr>();
            let mut server = axum_server::from_tcp_rustls(std_listener, tls).handle(handle);
            server
                .http_builder()
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(self.config.header_read_timeout_seconds));
            server.serve(make).await?;
            return Ok(());
        }
        tracing::info!(%addr, "listening (http)");
        serve_plain(self.listener, self.app, &self.config, shutdown, grace).await;
        Ok(())
    }
}

/// The plain-HTTP accept loop. Unlike `axum::serve` it gives each connection a header-read
/// timeout (a client that never finishes its headers is closed, instead of holding a file
/// descriptor for ever) and counts connections per client address, closing new ones past
/// `max_connections_per_client`. On `shutdown` it stops accepting, lets requests in flight
/// finish for up to `grace`, then returns.
async fn serve_plain(
    listener: tokio::net::TcpListener,
    app: Router,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    let header_timeout = Duration::from_secs(config.header_read_timeout_seconds);
    // Behind a proxy every connection comes from the proxy: no per-client count then.
    let per_client = if config.trust_forwarded_for {
        0
    } else {
        config.max_connections_per_client
    };
    let conns = PerClient::new(per_client);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Every connection task holds a receiver; `closed()` resolves when all have ended.
    let (done_tx, done_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(slot) = conns.enter(peer.ip()) else {
            continue; // dropping the stream closes it
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req.map(Body::new))
        });
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let _held = (slot, done);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.wait_for(|s| *s) => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(listener);
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    drop(done_rx);
    tokio::select! {
        _ = done_tx.closed() => {}
        _ = tokio::time::sleep(grace) => tracing::warn!("grace period over; dropping requests in flight"),
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

//! Binding, serving (HTTP or HTTPS), graceful shutdown, and the background tasks that live
//! as long as the server: the job workers and the upkeep scheduler.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;

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

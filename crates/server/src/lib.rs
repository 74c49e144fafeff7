//! Takarir's caption service: the HTTP API v1 (`/api/v1/...`), the server-rendered web page
//! (Indonesian first, works without JavaScript), and `/metrics`.
//!
//! Two layers: [`http`] (routes, extractors, handlers, OpenAPI, web pages) over [`service`]
//! (the use cases: captioning, accounts, privacy, jobs, upkeep), which never sees an HTTP type.
//! Below both: [`options`] (the one caption-options model), [`views`] (typed answers),
//! [`state`], [`error`], [`config`], [`logging`], [`storage`], [`models`] (model versions and
//! their cards) and the small helpers.
//!
//! Privacy by construction: uploads are read into memory, decoded from memory by the engine,
//! and dropped with the request; nothing is written to disk. Logs carry request ids, routes,
//! statuses and timings only: never image bytes, captions, file names or client addresses.
//!
//! Use [`ServerConfig::load`] and [`serve`]; tests and embedders can use [`AppState`],
//! [`http::router`] and [`Server`] to bind a chosen listener.

pub mod admission;
pub mod config;
pub mod error;
pub mod http;
pub mod i18n;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod models;
pub mod options;
pub mod policy;
pub mod ratelimit;
pub mod server;
pub mod service;
pub mod state;
pub mod storage;
pub mod views;

pub use config::{LogFormat, ServerConfig};
pub use error::ApiError;
pub use http::router;
pub use server::{serve, shutdown_signal, Server};
pub use service::accounts::{create_admin, AdminOutcome};
pub use state::{AppState, QueuePermit};
pub use storage::Storage;

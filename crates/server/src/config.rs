//! Server configuration: built-in defaults, overridden by a TOML file, overridden by
//! environment variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// Everything the server can be told. Each key is read, in increasing priority, from
/// the default below, the TOML file given to [`ServerConfig::load`] (same key names, top
/// level, unknown keys are an error), and the environment variable `TAKARIR_<KEY>` in upper
/// case (for example `TAKARIR_LISTEN=0.0.0.0:8080`, `TAKARIR_RATE_LIMIT_PER_MINUTE=0`).
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `listen` | `127.0.0.1:8080` | address and port to listen on |
/// | `model` | `models/default` | model directory or `hf:ORG/NAME[@REV]` |
/// | `text_model` | `text/` beside the model directory (`models/text`) | the text reader's directory (`features=text`); loaded on the first request for text, and a missing one answers `text_unavailable` (503) |
/// | `threads` | all cores | ONNX Runtime intra-op threads per graph |
/// | `max_upload_bytes` | `20000000` | largest request body (all images together) and largest image file |
/// | `max_files` | `10` | most images in one request |
/// | `max_megapixels` | `40` | largest image, in megapixels (checked on the header, before decoding) |
/// | `max_image_memory_mb` | `256` | most memory (MiB) decoding and preparing one image may take, estimated from its header before decoding (a 1×39,999,999 PNG is refused by this, not by its pixel count); past it: 413 `image_too_large` |
/// | `queue_capacity` | `4` | most caption requests in inference at once (waiting or running); a place is taken only once the upload has been read; past it: 503 |
/// | `max_concurrent_uploads` | `16` | caption requests whose bodies are being received at once (bounds upload memory to this × `max_upload_bytes`); past it: 503 |
/// | `max_uploads_per_client` | `4` | of those, most from one client address; past it: 503 (`0`: no limit) |
/// | `upload_timeout_seconds` | `60` | time allowed to receive one request body; past it: 408 |
/// | `min_upload_bytes_per_second` | `1024` | after `upload_grace_seconds`, a request body must have arrived at this average rate; past it: 408 (`0`: no minimum) |
/// | `upload_grace_seconds` | `10` | time a body may take before the minimum rate applies |
/// | `header_read_timeout_seconds` | `10` | time a connection has to send a request's headers (also how long an idle kept-alive connection stays open); past it the connection is closed |
/// | `max_connections_per_client` | `64` | open connections per client address (plain HTTP, not behind `trust_forwarded_for`); past it new ones are closed at once (`0`: no limit) |
/// | `rate_limit_per_minute` | `30` | caption requests per client IP per minute (token bucket, burst of the same size); `0` turns it off |
/// | `trust_forwarded_for` | `false` | behind a reverse proxy: rate-limit by the last `X-Forwarded-For` address instead of the peer (turn on only when a proxy always sets it) |
/// | `data_dir` | `$XDG_DATA_HOME/takarir` (else `~/.local/share/takarir`, else `data`) | directory for the server's own state (created at start). Uploads are never written anywhere, this directory included |
/// | `tls_cert` | none | PEM certificate chain; with `tls_key`, serves HTTPS (and sends HSTS) |
/// | `tls_key` | none | PEM private key |
/// | `contact_email` | none | operator's contact address shown on the contact and privacy pages |
/// | `shutdown_grace_seconds` | `30` | how long a graceful shutdown waits for requests in flight |
/// | `database_url` | `sqlite://<data_dir>/takarir.db` | `sqlite://PATH` (one node) or `postgres://...` (any number of nodes) |
/// | `object_store_url` | `file://<data_dir>/objects` | `file:///DIR`, `s3://BUCKET/PREFIX?endpoint=...&region=...`, `gs://BUCKET/PREFIX` |
/// | `job_max_bytes` | `200000000` | largest batch job upload, and most bytes its ZIP archives may unpack to |
/// | `job_max_files` | `1000` | most images in one batch job |
/// | `job_result_days` | `7` | days a finished job's results are kept |
/// | `job_lease_seconds` | `60` | how long a node holds a claimed job item before another node may take it over |
/// | `job_workers` | `1` | job items this node captions at once (`0`: this node only receives jobs) |
/// | `sweep_interval_seconds` | `3600` | how often the retention sweeper runs |
/// | `webhook_private_networks` | `false` | let job webhooks reach loopback, private and link-local addresses (an internal receiver; otherwise refused, so a webhook cannot probe the server's own network) |
/// | `session_idle_seconds` | `604800` (7 days) | a sign-in session unused this long ends (sessions end after 30 days in any case; `0`: only then) |
/// | `history_retention_days` | `0` | delete caption history older than this (`0`: keep until the user deletes it) |
/// | `encryption_keys` | a key generated into `<data_dir>/encryption.keys` on first start | `ID:HEX,ID:HEX` (oldest first; the last encrypts, all decrypt) for objects holding personal data |
/// | `public_url` | `http://<listen>` | the address users reach the service at; links in emails start with it. `https://...` also marks session cookies `Secure` |
/// | `smtp_url` | none (no email is sent; sign-up still works, addresses stay unverified) | `smtp://HOST:PORT` (plain, loopback relays only), `smtp://USER:PASS@HOST:587?tls=required` (STARTTLS), `smtps://USER:PASS@HOST:465` |
/// | `mail_from` | `Takarir <takarir@localhost>` | sender of account emails |
/// | `login_failures_per_account` | `5` | failed sign-ins per account per 15 minutes before its sign-ins are slowed down (1 s, doubling per further failure, at most 8 s; never refused, so nobody can lock an owner out) |
/// | `login_failures_per_client` | `20` | failed sign-ins per client IP per 15 minutes before 429 (counted before the password is hashed, atomically in the database) |
/// | `controller` | none | the data controller named on `/privacy`: the operator's legal name and address (required when `production` is on) |
/// | `dpo_email` | none | the data-protection contact on `/privacy` (required when `production` is on) |
/// | `backup_retention_days` | `35` | how long the operator keeps backups (stated on `/privacy`; `takarir backup` does not delete old ones) |
/// | `production` | `false` | a public deployment: the service refuses to start until `controller` and `dpo_email` are set to real values (not empty, not the `example` placeholders) |
/// | `throttle_salt` | a salt generated into `<data_dir>/throttle.salt` on first start | hex; the secret mixed into the hashed sign-in counter keys (accounts and client addresses), so a copy of the database cannot recover them by enumeration. Nodes sharing a database must share it |
/// | `policy_file` | the policy versions compiled in (`crates/server/policy/versions.toml`) | a TOML file of policy versions (to announce a new version without rebuilding) |
/// | `training_export_key` | a key generated into `<data_dir>/training-export.key` on first export | hex key (at least 32 digits) naming exported training items by pseudonym (`takarir training export`); keep it to compare exports |
/// | `model_update_days` | `0` | the operator's schedule for new model versions, stated on the privacy page (a new version, trained without withdrawn items, replaces the one in use at least this often; `0`: no fixed schedule) |
/// | `signups_allowed` | `true` | whether anyone may make an account (API and page); `false`: sign-up answers 403 `signups_closed` and the page offers no form (admins are still made with `takarir admin create`; existing accounts are unaffected) |
/// | `log_format` | `text` | `text` (one readable line per event) or `json` (one JSON object per line, for a log collector); `TAKARIR_LOG` still picks the level |
/// | `cors_allowed_origins` | none (no CORS headers) | origins (`https://cms.example.org`, scheme, host and port only) whose pages may call `/api/v1/...` from a browser, with an API key (`Authorization`), never with the session cookie; `*`: any origin. In the environment, separated by commas |
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Model directory or `hf:` spec.
    pub model: String,
    /// The text reader's directory; `None`: `text/` beside the model directory.
    pub text_model: Option<PathBuf>,
    /// ONNX Runtime threads per graph; `None` uses every core.
    pub threads: Option<usize>,
    /// Largest request body and largest image file, in bytes.
    pub max_upload_bytes: u64,
    /// Most images in one request.
    pub max_files: usize,
    /// Largest image, in megapixels.
    pub max_megapixels: u64,
    /// Most memory one image may take to decode and prepare, in MiB.
    pub max_image_memory_mb: u64,
    /// Most caption requests admitted to inference at once (running or waiting).
    pub queue_capacity: usize,
    /// Caption requests receiving their body at once.
    pub max_concurrent_uploads: usize,
    /// Caption requests receiving their body at once from one client address; 0: no limit.
    pub max_uploads_per_client: usize,
    /// Seconds allowed to receive one request body.
    pub upload_timeout_seconds: u64,
    /// Least average rate of a request body once `upload_grace_seconds` have passed; 0: none.
    pub min_upload_bytes_per_second: u64,
    /// Seconds before the minimum upload rate applies.
    pub upload_grace_seconds: u64,
    /// Seconds a connection has to send a request's headers.
    pub header_read_timeout_seconds: u64,
    /// Open connections per client address; 0: no limit.
    pub max_connections_per_client: usize,
    /// Caption requests per client IP per minute; 0 disables rate limiting.
    pub rate_limit_per_minute: u32,
    /// Rate-limit by the last `X-Forwarded-For` address (behind a trusted reverse proxy).
    pub trust_forwarded_for: bool,
    /// The server's own state directory. Never holds uploads.
    pub data_dir: PathBuf,
    /// PEM certificate chain for HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    pub tls_key: Option<PathBuf>,
    /// Operator contact address for the contact and privacy pages.
    pub contact_email: Option<String>,
    /// Seconds a graceful shutdown waits for requests in flight.
    pub shutdown_grace_seconds: u64,
    /// Database URL; `None`: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Object store URL; `None`: a directory in `data_dir`.
    pub object_store_url: Option<String>,
    /// Key-encryption keys, `ID:HEX,...`; `None`: a key file in `data_dir`, created on first start.
    pub encryption_keys: Option<String>,
    /// Largest batch job upload (and most bytes its archives may unpack to).
    pub job_max_bytes: u64,
    /// Most images in one batch job.
    pub job_max_files: usize,
    /// Days a finished job's results are kept.
    pub job_result_days: u64,
    /// Seconds a claimed job item stays leased to this node.
    pub job_lease_seconds: u64,
    /// Job items captioned at once on this node; 0 receives jobs only.
    pub job_workers: usize,
    /// Job webhooks may reach loopback, private and link-local addresses.
    pub webhook_private_networks: bool,
    /// Seconds between retention sweeps.
    pub sweep_interval_seconds: u64,
    /// Seconds a session may go unused before it ends; 0: only the absolute expiry.
    pub session_idle_seconds: u64,
    /// Days of caption history kept; 0 keeps it until the user deletes it.
    pub history_retention_days: u64,
    /// Base URL for links in emails; `None`: `http://<listen>`.
    pub public_url: Option<String>,
    /// SMTP relay for account emails; `None`: no email is sent.
    pub smtp_url: Option<String>,
    /// Sender of account emails.
    pub mail_from: String,
    /// Seconds a data-export request waits for its ZIP before answering that it is being made
    /// (202); 0 always answers at once.
    pub export_wait_seconds: u64,
    /// Failed sign-ins per account per 15 minutes.
    pub login_failures_per_account: u32,
    /// Failed sign-ins per client IP per 15 minutes.
    pub login_failures_per_client: u32,
    /// Policy versions file; `None`: the compiled-in list.
    pub policy_file: Option<PathBuf>,
    /// Secret (hex) salting the sign-in counter keys; `None`: a file in `data_dir`.
    pub throttle_salt: Option<String>,
    /// The data controller (legal name and address) named on the privacy page.
    pub controller: Option<String>,
    /// The data-protection contact named on the privacy page.
    pub dpo_email: Option<String>,
    /// Days the operator keeps backups (stated on the privacy page).
    pub backup_retention_days: u64,
    /// A public deployment: `controller` and `dpo_email` must be real.
    pub production: bool,
    /// Hex key for training-item pseudonyms; `None`: a key file in `data_dir`.
    pub training_export_key: Option<String>,
    /// Days between model versions the operator commits to; 0: no fixed schedule.
    pub model_update_days: u64,
    /// Anyone may make an account; `false` refuses sign-up (403 `signups_closed`).
    pub signups_allowed: bool,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// Origins whose pages may call `/api/v1/...` from a browser (CORS); empty: none.
    pub cors_allowed_origins: Vec<String>,
}

/// How the service writes its log lines (to standard error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON formatter).
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            model: "models/default".into(),
            text_model: None,
            threads: None,
            max_upload_bytes: 20_000_000,
            max_files: 10,
            max_megapixels: 40,
            max_image_memory_mb: 256,
            queue_capacity: 4,
            max_concurrent_uploads: 16,
            max_uploads_per_client: 4,
            upload_timeout_seconds: 60,
            min_upload_bytes_per_second: 1024,
            upload_grace_seconds: 10,
            header_read_timeout_seconds: 10,
            max_connections_per_client: 64,
            rate_limit_per_minute: 30,
            trust_forwarded_for: false,
            data_dir: default_data_dir(),
            tls_cert: None,
            tls_key: None,
            contact_email: None,
            shutdown_grace_seconds: 30,
            database_url: None,
            object_store_url: None,
            encryption_keys: None,
            job_max_bytes: 200_000_000,
            job_max_files: 1000,
            job_result_days: 7,
            job_lease_seconds: 60,
            job_workers: 1,
            sweep_interval_seconds: 3600,
            webhook_private_networks: false,
            session_idle_seconds: 7 * 86_400,
            history_retention_days: 0,
            public_url: None,
            smtp_url: None,
            mail_from: "Takarir <takarir@localhost>".into(),
            export_wait_seconds: 10,
            login_failures_per_account: 5,
            login_failures_per_client: 20,
            policy_file: None,
            throttle_salt: None,
            controller: None,
            dpo_email: None,
            backup_retention_days: 35,
            production: false,
            training_export_key: None,
            model_update_days: 0,
            signups_allowed: true,
            log_format: LogFormat::Text,
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// The user's data directory (XDG base directories), as `takarir` on a laptop expects.
fn default_data_dir() -> PathBuf {
    let xdg = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".local/share"));
    xdg.or(home)
        .map(|d| d.join("takarir"))
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// How an environment value is read.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Number,
    Flag,
    /// Comma-separated values (a TOML array in the file).
    List,
}

/// Keys and how their environment value is read.
const KEYS: &[(&str, Kind)] = &[
    ("listen", Kind::Text),
    ("model", Kind::Text),
    ("text_model", Kind::Text),
    ("threads", Kind::Number),
    ("max_upload_bytes", Kind::Number),
    ("max_files", Kind::Number),
    ("max_megapixels", Kind::Number),
    ("max_image_memory_mb", Kind::Number),
    ("queue_capacity", Kind::Number),
    ("max_concurrent_uploads", Kind::Number),
    ("max_uploads_per_client", Kind::Number),
    ("upload_timeout_seconds", Kind::Number),
    ("min_upload_bytes_per_second", Kind::Number),
    ("upload_grace_seconds", Kind::Number),
    ("header_read_timeout_seconds", Kind::Number),
    ("max_connections_per_client", Kind::Number),
    ("rate_limit_per_minute", Kind::Number),
    ("trust_forwarded_for", Kind::Flag),
    ("data_dir", Kind::Text),
    ("tls_cert", Kind::Text),
    ("tls_key", Kind::Text),
    ("contact_email", Kind::Text),
    ("shutdown_grace_seconds", Kind::Number),
    ("database_url", Kind::Text),
    ("object_store_url", Kind::Text),
    ("encryption_keys", Kind::Text),
    ("job_max_bytes", Kind::Number),
    ("job_max_files", Kind::Number),
    ("job_result_days", Kind::Number),
    ("job_lease_seconds", Kind::Number),
    ("job_workers", Kind::Number),
    ("sweep_interval_seconds", Kind::Number),
    ("webhook_private_networks", Kind::Flag),
    ("session_idle_seconds", Kind::Number),
    ("history_retention_days", Kind::Number),
    ("public_url", Kind::Text),
    ("smtp_url", Kind::Text),
    ("mail_from", Kind::Text),
    ("export_wait_seconds", Kind::Number),
    ("login_failures_per_account", Kind::Number),
    ("login_failures_per_client", Kind::Number),
    ("policy_file", Kind::Text),
    ("throttle_salt", Kind::Text),
    ("controller", Kind::Text),
    ("dpo_email", Kind::Text),
    ("backup_retention_days", Kind::Number),
    ("production", Kind::Flag),
    ("training_export_key", Kind::Text),
    ("model_update_days", Kind::Number),
    ("signups_allowed", Kind::Flag),
    ("log_format", Kind::Text),
    ("cors_allowed_origins", Kind::List),
];

impl ServerConfig {
    /// Defaults, then `file` (TOML) when given, then `TAKARIR_*` environment variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_from(file, |k| std::env::var(k).ok())
    }

    /// [`ServerConfig::load`] with an explicit environment (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => toml::Table::new(),
        };
        for &(key, kind) in KEYS {
            let var = format!("TAKARIR_{}", key.to_ascii_uppercase());
            let Some(value) = env(&var) else { continue };
            let value = match kind {
                Kind::Number => toml::Value::Integer(
                    value
                        .trim()
                        .parse()
                        .with_context(|| format!("{var}={value:?} is not a whole number"))?,
                ),
                Kind::Flag => {
                    toml::Value::Boolean(match value.trim().to_ascii_lowercase().as_str() {
                        "1" | "true" | "yes" | "on" => true,
                        "0" | "false" | "no" | "off" | "" => false,
                        _ => bail!("{var}={value:?} is not true or false"),
                    })
                }
                Kind::Text => toml::Value::String(value),
                Kind::List => toml::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(|v| toml::Value::String(v.to_string()))
                        .collect(),
                ),
            };
            table.insert(key.to_string(), value);
        }
        let config: ServerConfig = table.try_into().context("invalid server configuration")?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.max_upload_bytes == 0 {
            bail!("max_upload_bytes must be positive");
        }
        if self.max_files == 0 {
            bail!("max_files must be at least 1");
        }
        if self.queue_capacity == 0 {
            bail!("queue_capacity must be at least 1");
        }
        if self.max_concurrent_uploads == 0 {
            bail!("max_concurrent_uploads must be at least 1");
        }
        if self.upload_timeout_seconds == 0 {
            bail!("upload_timeout_seconds must be positive");
        }
        if self.header_read_timeout_seconds == 0 {
            bail!("header_read_timeout_seconds must be positive");
        }
        if self.max_image_memory_mb == 0 {
            bail!("max_image_memory_mb must be positive");
        }
        if self.max_megapixels == 0 {
            bail!("max_megapixels must be positive");
        }
        if self.threads == Some(0) {
            bail!("threads must be at least 1");
        }
        if self.job_max_bytes == 0 || self.job_max_files == 0 {
            bail!("job_max_bytes and job_max_files must be positive");
        }
        if self.job_lease_seconds == 0 || self.sweep_interval_seconds == 0 {
            bail!("job_lease_seconds and sweep_interval_seconds must be positive");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("tls_cert and tls_key must be given together");
        }
        if let Some(smtp) = &self.smtp_url {
            check_smtp_tls(smtp)?;
        }
        for origin in &self.cors_allowed_origins {
            check_origin(origin)?;
        }
        if self.production {
            // The privacy page must name who is responsible and how to reach them.
            for (key, value) in [
                ("controller", &self.controller),
                ("dpo_email", &self.dpo_email),
            ] {
                let v = value.as_deref().map(str::trim).unwrap_or("");
                if v.is_empty() || is_placeholder(v) {
                    bail!(
                        "production is on but {key} is {}: set the real value \
                         (it is shown on /privacy as the law requires)",
                        if v.is_empty() {
                            "not set"
                        } else {
                            "a placeholder"
                        }
                    );
                }
            }
        }
        Ok(())
    }

    /// Whether `controller` / `dpo_email` are set to real values (else the privacy page says
    /// they are not set yet).
    pub fn controller_set(&self) -> bool {
        [&self.controller, &self.dpo_email].iter().all(|v| {
            v.as_deref()
                .map(str::trim)
                .is_some_and(|v| !v.is_empty() && !is_placeholder(v))
        })
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("takarir.db").display()))
    }

    /// The object store URL in effect.
    pub fn object_store_url(&self) -> String {
        self.object_store_url.clone().unwrap_or_else(|| {
            let dir = self.data_dir.join("objects");
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            format!("file://{}", dir.display())
        })
    }

    /// The base URL for links, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }

    /// How long a session may go unused, if limited.
    pub fn session_idle(&self) -> Option<time::Duration> {
        (self.session_idle_seconds > 0)
            .then(|| time::Duration::seconds(self.session_idle_seconds.min(i64::MAX as u64) as i64))
    }

    /// Whether cookies must be `Secure` (HTTPS here or in front).
    pub fn secure_cookies(&self) -> bool {
        self.tls() || self.public_url().starts_with("https://")
    }

    /// The image limits uploads are decoded under (bytes and pixels).
    pub fn image_limits(&self) -> takarir_engine::ImageLimits {
        takarir_engine::ImageLimits {
            max_bytes: self.max_upload_bytes,
            max_pixels: self.max_megapixels * 1_000_000,
            max_memory_bytes: self.max_image_memory_mb << 20,
        }
    }

    /// The request body limit of a caption request: the file limit plus room for multipart
    /// framing and option fields.
    pub fn body_limit(&self) -> u64 {
        self.max_upload_bytes.saturating_add(64 * 1024)
    }

    /// Whether HTTPS is configured.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }
}

/// Account emails carry sign-in links: plain SMTP is allowed only to a relay on this machine
/// (loopback); any other relay needs `smtps://` or `smtp://...?tls=required` (STARTTLS).
fn check_smtp_tls(smtp_url: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(smtp_url).context("smtp_url is not a URL")?;
    let tls_required = url.scheme() == "smtps"
        || url
            .query_pairs()
            .any(|(k, v)| k == "tls" && (v == "required" || v == "wrapper"));
    let loopback = match url.host() {
        // `smtp:` is not a special scheme: an address comes back as an opaque host name.
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if !tls_required && !loopback {
        bail!(
            "smtp_url: plain SMTP is allowed only to a relay on loopback; use smtps://HOST:465 \
             or smtp://HOST:587?tls=required"
        );
    }
    Ok(())
}

/// A CORS origin must be exactly what a browser sends in `Origin`: `http(s)://HOST[:PORT]`,
/// nothing after it (a path or a trailing slash would never match), or `*`.
fn check_origin(origin: &str) -> anyhow::Result<()> {
    if origin == "*" {
        return Ok(());
    }
    let url = url::Url::parse(origin)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    match url {
        Some(u) if u.origin().ascii_serialization() == origin => Ok(()),
        Some(u) => bail!(
            "cors_allowed_origins: {origin:?} is not an origin; write {:?} (scheme, host and port only)",
            u.origin().ascii_serialization()
        ),
        None => bail!(
            "cors_allowed_origins: {origin:?} is not an http(s) origin such as https://cms.example.org"
        ),
    }
}

/// The shipped example values (`example.org`, `Example ...`), which a deployment must replace.
fn is_placeholder(v: &str) -> bool {
    let v = v.to_ascii_lowercase();
    v.contains("example") || v.contains("changeme") || v.contains("placeholder")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_needs_tls_unless_on_loopback() {
        let with = |url: &'static str| {
            ServerConfig::load_from(None, move |k| {
                (k == "TAKARIR_SMTP_URL").then(|| url.to_string())
            })
        };
        for ok in [
            "smtp://127.0.0.1:2525",
            "smtp://localhost:25",
            "smtp://[::1]:25",
            "smtps://u:p@mail.example.net:465",
            "smtp://u:p@mail.example.net:587?tls=required",
        ] {
            assert!(with(ok).is_ok(), "{ok}: {:?}", with(ok).err());
        }
        for bad in [
            "smtp://mail.example.net:25",
            "smtp://10.0.0.5:25",
            "smtp://mail.example.net:587?tls=opportunistic",
        ] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains("loopback"), "{bad}: {err}");
        }
    }

    #[test]
    fn production_refuses_the_placeholder_controller() {
        let env = |c: &'static str, d: &'static str| {
            move |k: &str| match k {
                "TAKARIR_PRODUCTION" => Some("true".to_string()),
                "TAKARIR_CONTROLLER" => Some(c.to_string()),
                "TAKARIR_DPO_EMAIL" => Some(d.to_string()),
                _ => None,
            }
        };
        let err = ServerConfig::load_from(None, env("Example Ltd", "dpo@example.org"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("controller") && err.contains("placeholder"),
            "{err}"
        );
        let err = ServerConfig::load_from(None, env("PT Takarir Nusantara", ""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dpo_email") && err.contains("not set"),
            "{err}"
        );
        let ok = ServerConfig::load_from(None, env("PT Takarir Nusantara", "dpo@takarir.id"));
        assert!(ok.unwrap().controller_set());
        // Outside production the page just says the values are not set yet.
        assert!(!ServerConfig::load_from(None, |_| None)
            .unwrap()
            .controller_set());
    }

    #[test]
    fn signups_logs_and_cors_allowed_origins() {
        let d = ServerConfig::load_from(None, |_| None).unwrap();
        assert!(d.signups_allowed);
        assert_eq!(d.log_format, LogFormat::Text);
        assert!(d.cors_allowed_origins.is_empty());
        let c = ServerConfig::load_from(None, |k| match k {
            "TAKARIR_SIGNUPS_ALLOWED" => Some("false".into()),
            "TAKARIR_LOG_FORMAT" => Some("json".into()),
            "TAKARIR_CORS_ALLOWED_ORIGINS" => {
                Some(" https://cms.contoh.id, http://127.0.0.1:3000 ,".into())
            }
            _ => None,
        })
        .unwrap();
        assert!(!c.signups_allowed);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(
            c.cors_allowed_origins,
            ["https://cms.contoh.id", "http://127.0.0.1:3000"]
        );
        let with = |var: &'static str, v: &'static str| {
            ServerConfig::load_from(None, move |k| (k == var).then(|| v.to_string()))
        };
        assert!(with("TAKARIR_LOG_FORMAT", "xml").is_err());
        assert!(with("TAKARIR_CORS_ALLOWED_ORIGINS", "*").is_ok());
        for bad in [
            "https://cms.contoh.id/",
            "https://cms.contoh.id/wp",
            "https://cms.contoh.id:443",
            "cms.contoh.id",
            "ftp://cms.contoh.id",
        ] {
            let err = with("TAKARIR_CORS_ALLOWED_ORIGINS", bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains("cors_allowed_origins"), "{bad}: {err}");
        }
    }

    #[test]
    fn defaults_file_then_env() {
        let dir = std::env::temp_dir().join(format!("takarir-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("server.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\nqueue_capacity = 2\nmodel = \"m\"\n",
        )
        .unwrap();
        let c = ServerConfig::load_from(Some(&file), |k| match k {
            "TAKARIR_QUEUE_CAPACITY" => Some("7".into()),
            "TAKARIR_TRUST_FORWARDED_FOR" => Some("yes".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.queue_capacity, 7);
        assert_eq!(c.model, "m");
        assert!(c.trust_forwarded_for);
        assert_eq!(c.max_upload_bytes, 20_000_000);
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        assert!(ServerConfig::load_from(Some(&file), |_| None).is_err());
        let bad = ServerConfig::load_from(None, |k| {
            (k == "TAKARIR_TLS_CERT").then(|| "cert.pem".to_string())
        });
        assert!(bad.is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}

//! The webhook called once when a job is done: a POST of `{"event": "job.finished", "job":
//! <status>}`, signed with the job's secret, to public addresses only (unless the server is
//! configured to call private networks), three tries.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::json;
use takarir_store::jobs::Job;

use crate::service::jobs::status_of;
use crate::state::AppState;

/// Sends the job's webhook, if it has one, in the background, and records how it went.
pub fn spawn(state: AppState, job: Job) {
    let (Some(url), Some(secret)) = (job.webhook_url.clone(), job.webhook_secret.clone()) else {
        return;
    };
    tokio::spawn(async move {
        let allow_private = state.config().webhook_private_networks;
        let status = match send(&url, &secret, &job, allow_private).await {
            Ok(()) => "delivered".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        if let Err(e) = state.db().jobs().set_webhook_status(&job.id, &status).await {
            tracing::warn!(error = %e, "recording webhook status failed");
        }
    });
}

/// `X-Takarir-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with the job's
/// secret, and `X-Takarir-Timestamp` (Unix seconds), so receivers can refuse replays.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!("sha256={}", hex::encode(tag))
}

/// Whether an address is on the public internet: not loopback, private (RFC 1918, unique
/// local), link-local (cloud metadata services live there), shared (CGNAT), unspecified,
/// broadcast, documentation or multicast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local())
            }
        },
    }
}

/// Whether a URL's host is an IP address written out (not a name) that is not public.
pub fn names_private_address(url: &str) -> bool {
    let ip = match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return false,
    };
    !is_public(ip)
}

/// Resolves webhook hosts to public addresses only, so a host name that points at the
/// server's own network (or is re-pointed there after the job was accepted) is not called.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(NotPublic) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why a webhook was not sent: its host has no public address.
#[derive(Debug)]
struct NotPublic;

impl std::fmt::Display for NotPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a public address")
    }
}

impl std::error::Error for NotPublic {}

async fn send(url: &str, secret: &str, job: &Job, allow_private: bool) -> Result<(), String> {
    if !allow_private && names_private_address(url) {
        return Err(NotPublic.to_string());
    }
    let body = serde_json::to_vec(&json!({
        "event": "job.finished",
        "job": status_of(job),
    }))
    .map_err(|e| e.to_string())?;
    let mut client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
    if !allow_private {
        client = client.dns_resolver(Arc::new(PublicOnly));
    }
    let client = client.build().map_err(|e| e.to_string())?;
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(2u64.pow(attempt))).await;
        }
        let ts = takarir_store::jobs::now_ms() / 1000;
        let r = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Takarir-Timestamp", ts.to_string())
            .header("X-Takarir-Signature", sign(secret, ts, &body))
            .body(body.clone())
            .send()
            .await;
        match r {
            Ok(res) if res.status().is_success() => return Ok(()),
            Ok(res) => last = format!("HTTP {}", res.status().as_u16()),
            Err(e) => {
                last = if e.is_timeout() {
                    "timeout".into()
                } else if is_not_public(&e) {
                    // Resolving again will not make the address public.
                    return Err(NotPublic.to_string());
                } else {
                    "unreachable".into()
                }
            }
        }
    }
    Err(last)
}

/// Whether a request failed because [`PublicOnly`] refused every address.
fn is_not_public(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if s.is::<NotPublic>() {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::is_public;

    #[test]
    fn only_public_addresses_are_public() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}

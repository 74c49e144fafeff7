//! Admission against slow or greedy clients. A client that sends slowly must not hold what
//! others need, so:
//! - request bodies are read at a minimum average rate ([`paced`]): after a grace period, a
//!   body that has not kept up is cut off (408), freeing its upload place;
//! - each client address has at most a few connections and uploads in progress
//!   ([`PerClient`]), so one address cannot take every place.
//!
//! Inference places are taken only after a body has been read (see `http::api`), so no
//! upload, slow or not, ever holds one.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

/// Counts what each client address has in progress, up to `max` each.
pub struct PerClient {
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl PerClient {
    /// At most `max` at once per address; 0: no limit (nothing is counted).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PerClient {
            max,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A place for `ip`, or `None` when it already has `max`.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        if self.max == 0 {
            return Some(ClientSlot { owner: None, ip });
        }
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            owner: Some(self.clone()),
            ip,
        })
    }

    /// Addresses with something in progress.
    pub fn tracked(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// One place of a client; given back on drop.
pub struct ClientSlot {
    owner: Option<Arc<PerClient>>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Some(owner) = &self.owner {
            let mut counts = owner.counts.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = counts.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&self.ip);
                }
            }
        }
    }
}

/// Set when a [`paced`] body was cut off for being too slow.
#[derive(Clone, Default)]
pub struct TooSlow(Arc<AtomicBool>);

impl TooSlow {
    /// Whether the body was cut off.
    pub fn tripped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `req` with a body that must arrive at `bytes_per_second` on average once `grace` has
/// passed: by time `grace + n / bytes_per_second` at least `n` bytes must have come. A body
/// that falls behind ends in an error and the returned flag is set. 0 bytes a second: no
/// minimum.
pub fn paced(req: Request, bytes_per_second: u64, grace: Duration) -> (Request, TooSlow) {
    let flag = TooSlow::default();
    if bytes_per_second == 0 {
        return (req, flag);
    }
    let started = Instant::now();
    let tripped = flag.clone();
    let req = req.map(move |body| {
        Body::from_stream(Paced {
            inner: body.into_data_stream(),
            started,
            received: 0,
            rate: bytes_per_second,
            grace,
            timer: Box::pin(tokio::time::sleep_until(started + grace)),
            tripped,
        })
    });
    (req, flag)
}

struct Paced<S> {
    inner: S,
    started: Instant,
    received: u64,
    rate: u64,
    grace: Duration,
    timer: Pin<Box<Sleep>>,
    tripped: TooSlow,
}

impl<S> Paced<S> {
    /// When the bytes received so far stop being enough.
    fn deadline(&self) -> Instant {
        let allowed = Duration::from_secs_f64(self.received as f64 / self.rate as f64);
        self.started + self.grace + allowed
    }
}

impl<S> Stream for Paced<S>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.received += chunk.len() as u64;
                let next = this.deadline();
                this.timer.as_mut().reset(next);
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(other) => return Poll::Ready(other),
            Poll::Pending => {}
        }
        if this.timer.as_mut().poll(cx).is_ready() {
            this.tripped.0.store(true, Ordering::Relaxed);
            let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "upload too slow");
            return Poll::Ready(Some(Err(axum::Error::new(e))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_counts_and_frees() {
        let p = PerClient::new(2);
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let s1 = p.enter(a).unwrap();
        let _s2 = p.enter(a).unwrap();
        assert!(p.enter(a).is_none());
        assert!(p.enter(b).is_some());
        drop(s1);
        assert!(p.enter(a).is_some());
        assert_eq!(p.tracked(), 1);
        assert!(PerClient::new(0).enter(a).is_some());
    }
}

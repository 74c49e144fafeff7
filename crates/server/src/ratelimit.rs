//! Per-client rate limiting: one token bucket per IP address, in memory. Buckets that have
//! refilled completely are forgotten, so an address is kept only while it is being limited
//! (checked every 10 seconds; a bucket is full again at most a minute after the client's last request).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Token buckets by client address.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `per_minute` requests a minute, in bursts of up to `per_minute`; 0 disables.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `ip`, or says in how many seconds one will be there.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.check_at(ip, Instant::now())
    }

    /// Gives `ip` back one token (a request it was charged for was not served).
    pub fn refund(&self, ip: IpAddr) {
        if self.per_minute == 0 {
            return;
        }
        let capacity = self.per_minute as f64;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = buckets.get_mut(&ip) {
            b.tokens = (b.tokens + 1.0).min(capacity);
        }
    }

    /// Forgets the clients whose bucket has refilled (called every few seconds by the server).
    pub fn prune(&self) {
        self.prune_at(Instant::now());
    }

    fn prune_at(&self, now: Instant) {
        let capacity = self.per_minute as f64;
        let rate = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets.retain(|_, b| {
            b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < capacity
        });
    }

    /// Clients currently remembered.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = self.per_minute as f64;
        let rate = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(ip).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.updated).as_secs_f64() * rate).min(capacity);
        b.updated = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills() {
        let r = RateLimiter::new(2);
        let ip = IpAddr::from([10, 0, 0, 1]);
        let t = Instant::now();
        assert!(r.check_at(ip, t).is_ok());
        assert!(r.check_at(ip, t).is_ok());
        let wait = r.check_at(ip, t).unwrap_err();
        assert_eq!(wait, 30);
        assert!(r.check_at(IpAddr::from([10, 0, 0, 2]), t).is_ok());
        assert!(r.check_at(ip, t + Duration::from_secs(31)).is_ok());
        r.refund(ip);
        assert!(r.check_at(ip, t + Duration::from_secs(31)).is_ok());
        assert!(RateLimiter::new(0).check(ip).is_ok());
        assert_eq!(r.tracked(), 2);
        r.prune_at(t + Duration::from_secs(61));
        assert_eq!(r.tracked(), 1);
        r.prune_at(t + Duration::from_secs(100));
        assert_eq!(r.tracked(), 0);
    }
}

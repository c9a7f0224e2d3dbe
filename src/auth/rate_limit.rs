//! In-memory limits on sign-in attempts, per client address and per username, so that
//! passwords cannot be guessed quickly from one place or against one account.
//!
//! Counsellor `POST /auth` and TinCan `POST /tincan/login` each hold one [`LoginLimits`] with
//! their own numbers.
//!
//! Each key counts attempts in a fixed one-minute window: once a key has spent its N, every
//! attempt is refused until its minute is over. The counts live in this process only: behind
//! several nodes each enforces its own limit, which still bounds guessing.
//!
//! Why not `governor`: its keyed limiters are GCRA. A quota of N a minute with a burst of N
//! gives a key that has spent its N one attempt back every 60/N s, so a client trying no faster
//! than that is never refused once its burst is gone. The promise above (N attempts, then
//! `429 rate_limited` for the rest of the minute), which the README states and the TinCan limit
//! tests check, would then hold only for clients quicker than a few Argon2 verifications: those
//! tests failed on a loaded machine with it. A quota that refills more slowly would lower the
//! rate below N a minute. The counters here, swept when the map grows, need no crate.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Past this many keys, expired windows are swept before counting.
const SWEEP_ABOVE: usize = 10_000;

pub struct LoginLimits {
    per_ip: u32,
    per_user: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl LoginLimits {
    pub fn new(per_ip: u32, per_user: u32) -> Self {
        Self {
            per_ip,
            per_user,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt; `false` when the address or the username is over its limit.
    pub fn allow(&self, ip: Option<IpAddr>, username: &str) -> bool {
        self.allow_at(Instant::now(), ip, username)
    }

    fn allow_at(&self, now: Instant, ip: Option<IpAddr>, username: &str) -> bool {
        let Ok(mut windows) = self.windows.lock() else {
            return true;
        };
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let mut hit = |key: String, limit: u32| {
            let (start, count) = windows.entry(key).or_insert((now, 0));
            if now.duration_since(*start) >= WINDOW {
                *start = now;
                *count = 0;
            }
            *count = count.saturating_add(1);
            *count <= limit
        };
        let ip_ok = ip.is_none_or(|ip| hit(format!("ip:{ip}"), self.per_ip));
        let user_ok = hit(
            format!("user:{}", username.to_ascii_lowercase()),
            self.per_user,
        );
        ip_ok && user_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_and_per_ip_within_a_minute() {
        let limits = LoginLimits::new(4, 2);
        let t0 = Instant::now();
        let ip: Option<IpAddr> = "10.0.0.1".parse().ok();
        assert!(limits.allow_at(t0, ip, "alice"));
        assert!(limits.allow_at(t0, ip, "ALICE"));
        assert!(!limits.allow_at(t0, ip, "alice"), "third try on one name");
        assert!(limits.allow_at(t0, ip, "bob"));
        assert!(
            !limits.allow_at(t0, ip, "carol"),
            "fifth try from one address"
        );
        let other: Option<IpAddr> = "10.0.0.2".parse().ok();
        assert!(limits.allow_at(t0, other, "carol"));
        let later = t0 + WINDOW;
        assert!(limits.allow_at(later, ip, "alice"), "a new minute");
    }
}

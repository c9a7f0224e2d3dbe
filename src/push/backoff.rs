//! When to try a push again: exponential backoff with jitter, never sooner than the provider's
//! `Retry-After`.
use std::time::Duration;

/// Backoff between attempts of one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure (before jitter).
    pub base: Duration,
    /// The longest delay the doubling reaches (before jitter).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(5 * 60),
        }
    }
}

impl Backoff {
    /// The wait after `failures` failed attempts (1 for the first): `base · 2^(failures-1)`,
    /// capped at `max`, then scaled by a jitter factor between ½ and 1 (`jitter` in `0..=1` picks
    /// it) so that many devices failing together do not retry together; at least `retry_after`.
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        let exp = self
            .base
            .saturating_mul(1u32 << doublings)
            .min(self.max.max(self.base));
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let jittered = exp.mul_f64(0.5 + jitter / 2.0);
        jittered.max(retry_after.unwrap_or_default())
    }

    /// [`delay`](Self::delay) with a random jitter.
    pub fn delay_random(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        self.delay(failures, retry_after, rand::random::<f64>())
    }
}

/// A `Retry-After` header: delay-seconds or an HTTP date. `None` when absent or unreadable.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let ms = (at.timestamp_millis() - now.timestamp_millis()).max(0);
    Some(Duration::from_millis(ms as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };

    #[test]
    fn doubles_up_to_the_cap() {
        let full = |n| B.delay(n, None, 1.0);
        assert_eq!(full(1), Duration::from_secs(1));
        assert_eq!(full(2), Duration::from_secs(2));
        assert_eq!(full(3), Duration::from_secs(4));
        assert_eq!(full(7), Duration::from_secs(60));
        assert_eq!(full(1000), Duration::from_secs(60));
        // The first failure counts as 1; 0 is treated the same.
        assert_eq!(full(0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_between_half_and_whole() {
        assert_eq!(B.delay(3, None, 0.0), Duration::from_secs(2));
        assert_eq!(B.delay(3, None, 0.5), Duration::from_secs(3));
        assert_eq!(B.delay(3, None, 7.0), Duration::from_secs(4));
        assert_eq!(B.delay(3, None, f64::NAN), Duration::from_secs(4));
        for _ in 0..100 {
            let d = B.delay_random(4, None);
            assert!(
                d >= Duration::from_secs(4) && d <= Duration::from_secs(8),
                "{d:?}"
            );
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let ra = Some(Duration::from_secs(30));
        assert_eq!(B.delay(1, ra, 1.0), Duration::from_secs(30));
        assert_eq!(
            B.delay(10, Some(Duration::from_secs(2)), 1.0),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn reads_retry_after_seconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 12:00:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Mon, 23 Nov 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}

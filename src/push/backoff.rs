//! When to try a push again: exponential backoff with jitter, never sooner than the provider's
//! `Retry-After`.
//!
//! The delays are `backon`'s ([`ExponentialBuilder`]). The worker does not sleep between the
//! attempts of one push: it stores the next attempt's time in the outbox row, and whichever
//! worker claims the row then (maybe on another node, after a restart) sends it. So nothing
//! keeps a backoff sequence from one attempt to the next; the wait after the n-th failure is
//! the n-th delay of a fresh sequence, walked from the start (at most 31 steps).
//!
//! backon's jitter adds a random part in `[0, d)` to each delay `d`. The sequence starts at half
//! the base and stops doubling at half the cap, so a wait lands between half and the whole of
//! `base · 2^(n-1)` (capped at `max`): many devices failing together do not retry together, and
//! none waits longer than the cap.
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// The doublings walked at most: past these any cap a push would use has been reached.
const MAX_DOUBLINGS: u32 = 30;

/// Backoff between attempts of one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The longest wait after the first failure (jitter takes up to half of it off).
    pub base: Duration,
    /// The longest wait the doubling reaches (jitter takes up to half of it off).
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
    /// The wait after `failures` failed attempts (1 for the first; 0 counts as 1): a random
    /// duration between half and the whole of `base · 2^(failures-1)`, capped at `max` (or at
    /// `base` when `max` is smaller); at least `retry_after`.
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let steps = failures.saturating_sub(1).min(MAX_DOUBLINGS);
        let exp = ExponentialBuilder::new()
            .with_min_delay(self.base / 2)
            .with_max_delay(self.max.max(self.base) / 2)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(steps as usize)
            // Not reached: without a maximum of times the sequence never ends.
            .unwrap_or(self.max.max(self.base));
        exp.max(retry_after.unwrap_or_default())
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

    /// 200 waits after `failures` failures, each checked to lie between half and the whole
    /// of `whole`; `true` when they spread over both halves of that range.
    fn spread(b: Backoff, failures: u32, whole: Duration) -> bool {
        let (mut low, mut high) = (false, false);
        for _ in 0..200 {
            let d = b.delay(failures, None);
            assert!(
                d >= whole / 2 && d <= whole,
                "{failures} failures: {d:?} outside {:?}..={whole:?}",
                whole / 2
            );
            low |= d < whole.mul_f64(0.75);
            high |= d > whole.mul_f64(0.75);
        }
        low && high
    }

    #[test]
    fn doubles_up_to_the_cap_with_jitter_between_half_and_whole() {
        let s = Duration::from_secs;
        assert!(spread(B, 1, s(1)));
        assert!(spread(B, 2, s(2)));
        assert!(spread(B, 3, s(4)));
        assert!(spread(B, 4, s(8)));
        assert!(spread(B, 7, s(60)));
        assert!(spread(B, 1000, s(60)));
        assert!(spread(B, u32::MAX, s(60)));
        // The first failure counts as 1; 0 is treated the same.
        assert!(spread(B, 0, s(1)));
        // A cap below the base is the base.
        let b = Backoff {
            base: s(10),
            max: s(1),
        };
        assert!(spread(b, 5, s(10)));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let ra = Some(Duration::from_secs(30));
        assert_eq!(B.delay(1, ra), Duration::from_secs(30));
        let d = B.delay(10, Some(Duration::from_secs(2)));
        assert!(
            d >= Duration::from_secs(30) && d <= Duration::from_secs(60),
            "{d:?}"
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

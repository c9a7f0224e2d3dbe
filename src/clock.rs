//! Time as the store keeps it (milliseconds since the Unix epoch) and as the wire shows it.
use chrono::{DateTime, SecondsFormat};
use serde::{Serialize, Serializer};

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A stored timestamp, serialized as ISO-8601 UTC with milliseconds (`2026-11-23T08:00:00.123Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iso(pub i64);

impl Serialize for Iso {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match four_digit_year(self.0) {
            Some(text) => s.serialize_str(std::str::from_utf8(&text).unwrap_or_default()),
            None => {
                let at = DateTime::from_timestamp_millis(self.0).unwrap_or_default();
                s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
            }
        }
    }
}

/// `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ` without allocating, for years 0 to 9999 (every message
/// carries two of these); `None` for other years, which need more digits or a sign.
fn four_digit_year(ms: i64) -> Option<[u8; 24]> {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (H. Hinnant, "chrono-Compatible Low-Level Date
    // Algorithms"), in eras of 400 years starting on 0000-03-01.
    let z = days.checked_add(719_468)?;
    let (era, of_era) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let year_of_era = (of_era - of_era / 1460 + of_era / 36_524 - of_era / 146_096) / 365;
    let day_of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut n: i64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day / 60 % 60);
    put(17, 2, of_day % 60);
    put(20, 3, milli);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_has_milliseconds_and_z() {
        let json = serde_json::to_string(&Iso(1_795_420_800_123)).unwrap();
        assert_eq!(json, "\"2026-11-23T08:00:00.123Z\"");
        assert_eq!(
            serde_json::to_string(&Iso(0)).unwrap(),
            "\"1970-01-01T00:00:00.000Z\""
        );
    }

    #[test]
    fn iso_matches_chrono_across_the_calendar() {
        let chrono = |ms: i64| {
            let at = DateTime::from_timestamp_millis(ms).unwrap();
            format!("\"{}\"", at.to_rfc3339_opts(SecondsFormat::Millis, true))
        };
        // Leap days, century rules, the ends of four-digit years, and either side of them.
        let mut samples = vec![
            -62_167_219_200_000, // 0000-01-01
            -62_167_219_200_001, // the millisecond before: year -1
            253_402_300_799_999, // 9999-12-31T23:59:59.999
            253_402_300_800_000, // 10000-01-01
            951_782_400_000,     // 2000-02-29
            4_107_542_400_000,   // 2100-03-01
            -1,
            1,
        ];
        // Every 7 hours and a bit, for 400 years from 1900: every day of the month and year.
        let step = 7 * 3_600_000 + 13_577;
        samples.extend((-2_208_988_800_000..10_413_792_000_000).step_by(step));
        for ms in samples {
            assert_eq!(serde_json::to_string(&Iso(ms)).unwrap(), chrono(ms), "{ms}");
        }
    }
}

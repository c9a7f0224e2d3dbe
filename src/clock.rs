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
        let at = DateTime::from_timestamp_millis(self.0).unwrap_or_default();
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
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
}

//! Lenient decoding of request payloads: a wrong type for one field is that field's error code,
//! never a dropped event.
use serde_json::Value;
use uuid::{Uuid, Variant};

use super::BubbleError;
use crate::socket::payload::Object;

/// The categories a room may have.
pub const CATEGORIES: [&str; 6] = [
    "Rant",
    "Funny",
    "Nostalgia",
    "Relationship",
    "Advice",
    "School",
];
pub const DEFAULT_USER_LIMIT: i32 = 21;

/// A request payload. Anything but a JSON object (nothing, `null`, a string, a number, an array)
/// reads as an empty object; a `null` field reads as absent.
#[derive(Debug, Default)]
pub struct Payload(Object);

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Self(Object::from_value(value).unwrap_or_default())
    }
}

impl Payload {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// `roomId`: `no_room_id` when absent or empty, `invalid_room_id` unless a hyphenated UUID of
    /// version 1 to 5 (any case). Returns its lowercase form, the one the store uses.
    pub fn room_id(&self) -> Result<String, BubbleError> {
        match self.get("roomId") {
            None => Err(BubbleError::NoRoomId),
            Some(Value::String(s)) if s.is_empty() => Err(BubbleError::NoRoomId),
            Some(Value::String(s)) => parse_room_id(s).ok_or(BubbleError::InvalidRoomId),
            Some(_) => Err(BubbleError::InvalidRoomId),
        }
    }

    /// A required text field of at most `max` characters: `missing` when absent or blank,
    /// `invalid` when not a string or too long.
    pub fn text(
        &self,
        key: &str,
        max: usize,
        missing: BubbleError,
        invalid: BubbleError,
    ) -> Result<&str, BubbleError> {
        match self.optional_text(key, max, invalid)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(missing),
        }
    }

    /// An optional text field of at most `max` characters: `invalid` when present but not a
    /// string, or too long.
    pub fn optional_text(
        &self,
        key: &str,
        max: usize,
        invalid: BubbleError,
    ) -> Result<Option<&str>, BubbleError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.chars().nth(max).is_none() => Ok(Some(s)),
            Some(_) => Err(invalid),
        }
    }

    /// `userLimit`: absent, `null` or `""` is the default; otherwise a whole number (or a string
    /// holding one) from 2 to 100.
    pub fn user_limit(&self) -> Result<i32, BubbleError> {
        let limit = match self.get("userLimit") {
            None => return Ok(DEFAULT_USER_LIMIT),
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(DEFAULT_USER_LIMIT),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            Some(_) => None,
        };
        match limit {
            Some(l @ 2..=100) => Ok(l as i32),
            _ => Err(BubbleError::InvalidUserLimit),
        }
    }

    /// `categories`: absent or `null` is none; otherwise an array of allowed category names
    /// (duplicates dropped).
    pub fn categories(&self) -> Result<Vec<String>, BubbleError> {
        let Some(value) = self.get("categories") else {
            return Ok(Vec::new());
        };
        let Value::Array(items) = value else {
            return Err(BubbleError::InvalidCategories);
        };
        let mut categories: Vec<String> = Vec::with_capacity(items.len());
        for item in items {
            match item.as_str() {
                Some(c) if CATEGORIES.contains(&c) => {
                    if !categories.iter().any(|known| known == c) {
                        categories.push(c.to_owned());
                    }
                }
                _ => return Err(BubbleError::InvalidCategories),
            }
        }
        Ok(categories)
    }
}

/// A room id in its stored form, if `s` is a hyphenated UUID of version 1 to 5.
pub fn parse_room_id(s: &str) -> Option<String> {
    if s.len() != 36 {
        return None;
    }
    let id = Uuid::try_parse(s).ok()?;
    let valid = (1..=5).contains(&id.get_version_num()) && id.get_variant() == Variant::RFC4122;
    valid.then(|| id.hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn payload(v: Value) -> Payload {
        Payload::from(v)
    }

    #[test]
    fn non_objects_read_as_empty() {
        for v in [
            json!(null),
            json!("x"),
            json!(3),
            json!([1, 2]),
            json!(true),
        ] {
            assert!(matches!(payload(v).room_id(), Err(BubbleError::NoRoomId)));
        }
    }

    #[test]
    fn room_ids() {
        let v4 = "1B4E28BA-2FA1-41D2-883F-0016D3CCA427";
        assert_eq!(
            payload(json!({ "roomId": v4 })).room_id().unwrap(),
            v4.to_lowercase()
        );
        for bad in [
            json!("nope"),
            json!(42),
            json!({}),
            json!("1b4e28ba2fa141d2883f0016d3cca427"),
            json!("1b4e28ba-2fa1-71d2-883f-0016d3cca427"),
            json!("00000000-0000-0000-0000-000000000000"),
        ] {
            assert!(
                matches!(
                    payload(json!({ "roomId": bad })).room_id(),
                    Err(BubbleError::InvalidRoomId)
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            payload(json!({ "roomId": "" })).room_id(),
            Err(BubbleError::NoRoomId)
        ));
    }

    #[test]
    fn user_limits() {
        for (v, want) in [
            (json!(null), Some(21)),
            (json!(""), Some(21)),
            (json!(2), Some(2)),
            (json!("100"), Some(100)),
            (json!(10.0), Some(10)),
            (json!(1), None),
            (json!(101), None),
            (json!(2.5), None),
            (json!("ten"), None),
            (json!(true), None),
        ] {
            let got = payload(json!({ "userLimit": v })).user_limit().ok();
            assert_eq!(got, want, "{v}");
        }
    }

    #[test]
    fn text_lengths_count_characters() {
        let p = payload(json!({ "m": "😀".repeat(3), "e": " " }));
        let invalid = || BubbleError::InvalidMessage;
        assert_eq!(
            p.text("m", 3, BubbleError::NoMessage, invalid()).unwrap(),
            "😀😀😀"
        );
        assert!(matches!(
            p.text("m", 2, BubbleError::NoMessage, invalid()),
            Err(BubbleError::InvalidMessage)
        ));
        assert!(matches!(
            p.text("e", 2, BubbleError::NoMessage, invalid()),
            Err(BubbleError::NoMessage)
        ));
        assert!(matches!(
            p.text("x", 2, BubbleError::NoMessage, invalid()),
            Err(BubbleError::NoMessage)
        ));
    }

    #[test]
    fn categories() {
        let ok = payload(json!({ "categories": ["Rant", "Funny", "Rant"] }));
        assert_eq!(ok.categories().unwrap(), vec!["Rant", "Funny"]);
        assert!(
            payload(json!({ "categories": "Rant" }))
                .categories()
                .is_err()
        );
        assert!(
            payload(json!({ "categories": ["rant"] }))
                .categories()
                .is_err()
        );
        assert!(payload(json!({})).categories().unwrap().is_empty());
    }
}

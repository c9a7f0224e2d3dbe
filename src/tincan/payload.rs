//! Lenient decoding of TinCan payloads: a missing or ill-typed field is `invalid_payload` naming
//! that field, never a dropped event. Handlers read each field they need from [`Fields`], in
//! the order the protocol checks them.
use serde_json::Value;

use super::TinCanError;
use crate::socket::payload::Object;

/// Default and largest page sizes of `group/list` and `message/list`.
pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 200;
/// Longest id accepted (ours are 36-character UUIDs).
const MAX_ID_LEN: usize = 64;
/// Longest `requestId` echoed back.
const MAX_REQUEST_ID_LEN: usize = 200;

/// The fields of a request. No payload and `null` read as `{}`; any other non-object is refused
/// as `invalid_payload` with `field: "payload"`. A `null` field reads as absent, except where a
/// request gives `null` a meaning of its own ([`Fields::nullable_ids`]).
#[derive(Debug, Default, Clone)]
pub struct Fields(Object);

impl TryFrom<Value> for Fields {
    type Error = TinCanError;

    fn try_from(value: Value) -> Result<Self, TinCanError> {
        match Object::from_value(value) {
            Ok(object) => Ok(Self(object)),
            Err(Value::Null) => Ok(Self::default()),
            Err(_) => Err(TinCanError::invalid(
                "payload",
                "The payload must be a JSON object.",
            )),
        }
    }
}

impl Fields {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// `requestId`: any string, echoed in every answer.
    pub fn request_id(&self) -> Result<Option<String>, TinCanError> {
        match self.get("requestId") {
            None => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= MAX_REQUEST_ID_LEN => {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(TinCanError::invalid(
                "requestId",
                format!("requestId must be a string of at most {MAX_REQUEST_ID_LEN} characters."),
            )),
        }
    }

    /// A required id.
    pub fn id(&self, key: &'static str) -> Result<String, TinCanError> {
        self.optional_id(key)?
            .ok_or_else(|| TinCanError::invalid(key, format!("{key} is required.")))
    }

    pub fn optional_id(&self, key: &'static str) -> Result<Option<String>, TinCanError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID_LEN => Ok(Some(s.clone())),
            Some(_) => Err(TinCanError::invalid(
                key,
                format!("{key} must be an id string."),
            )),
        }
    }

    /// A list of ids, duplicates dropped, in the order given; `None` when absent or `null`.
    pub fn ids(&self, key: &'static str) -> Result<Option<Vec<String>>, TinCanError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => id_list(key, value).map(Some),
        }
    }

    /// A list of ids where `null` means something: `None` when the field is absent,
    /// `Some(None)` when it is `null`, `Some(Some(ids))` for a list.
    pub fn nullable_ids(
        &self,
        key: &'static str,
    ) -> Result<Option<Option<Vec<String>>>, TinCanError> {
        match self.0.get_raw(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(value) => id_list(key, value).map(|ids| Some(Some(ids))),
        }
    }

    /// A required text of `min..=max` characters, surrounding spaces removed; blank counts as
    /// empty.
    pub fn text(&self, key: &'static str, min: usize, max: usize) -> Result<String, TinCanError> {
        self.optional_text(key, min, max)?
            .ok_or_else(|| TinCanError::invalid(key, format!("{key} is required.")))
    }

    /// An optional text of `min..=max` characters, surrounding spaces removed.
    pub fn optional_text(
        &self,
        key: &'static str,
        min: usize,
        max: usize,
    ) -> Result<Option<String>, TinCanError> {
        let wrong = || {
            TinCanError::invalid(
                key,
                format!("{key} must be a string of {min} to {max} characters."),
            )
        };
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let s = s.trim();
                let n = s.chars().count();
                if (min..=max).contains(&n) {
                    Ok(Some(s.to_owned()))
                } else {
                    Err(wrong())
                }
            }
            Some(_) => Err(wrong()),
        }
    }

    /// Message content: `1..=max` characters as sent (spaces kept), not blank.
    pub fn content(&self, key: &'static str, max: usize) -> Result<String, TinCanError> {
        match self.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => {
                Ok(s.clone())
            }
            _ => Err(TinCanError::invalid(
                key,
                format!("{key} must be a non-blank string of at most {max} characters."),
            )),
        }
    }

    /// `visibility`: `public` or `private`.
    pub fn visibility(&self) -> Result<Option<&'static str>, TinCanError> {
        match self.get("visibility").map(Value::as_str) {
            None => Ok(None),
            Some(Some("public")) => Ok(Some("public")),
            Some(Some("private")) => Ok(Some("private")),
            Some(_) => Err(TinCanError::invalid(
                "visibility",
                "visibility must be 'public' or 'private'.",
            )),
        }
    }

    /// `limit`: a whole number from 1 to `MAX_LIMIT`, `DEFAULT_LIMIT` when absent.
    pub fn limit(&self) -> Result<u64, TinCanError> {
        match self.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    TinCanError::invalid(
                        "limit",
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}."),
                    )
                }),
        }
    }

    /// An optional string field of at most `max` characters, kept as sent.
    pub fn optional_string(
        &self,
        key: &'static str,
        max: usize,
    ) -> Result<Option<String>, TinCanError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
            Some(_) => Err(TinCanError::invalid(
                key,
                format!("{key} must be a string of at most {max} characters."),
            )),
        }
    }
}

fn id_list(key: &'static str, value: &Value) -> Result<Vec<String>, TinCanError> {
    let wrong = || TinCanError::invalid(key, format!("{key} must be an array of user ids."));
    let Value::Array(items) = value else {
        return Err(wrong());
    };
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(s) if !s.is_empty() && s.len() <= MAX_ID_LEN => {
                if !ids.contains(s) {
                    ids.push(s.clone());
                }
            }
            _ => return Err(wrong()),
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(v: Value) -> Fields {
        Fields::try_from(v).unwrap()
    }

    fn field_of(e: TinCanError) -> &'static str {
        match e {
            TinCanError::InvalidPayload { field, .. } => field,
            other => panic!("not invalid_payload: {other:?}"),
        }
    }

    #[test]
    fn only_objects_or_nothing() {
        assert!(Fields::try_from(json!(null)).is_ok());
        assert!(Fields::try_from(json!({})).is_ok());
        for bad in [json!("x"), json!([1]), json!(3), json!(true)] {
            assert_eq!(field_of(Fields::try_from(bad).unwrap_err()), "payload");
        }
    }

    #[test]
    fn ids_and_lists() {
        let f = fields(
            json!({ "g": "abc", "n": 3, "e": "", "l": ["a", "b", "a"], "x": [1], "z": null }),
        );
        assert_eq!(f.id("g").unwrap(), "abc");
        assert_eq!(field_of(f.id("n").unwrap_err()), "n");
        assert_eq!(field_of(f.id("e").unwrap_err()), "e");
        assert_eq!(field_of(f.id("missing").unwrap_err()), "missing");
        assert_eq!(f.ids("l").unwrap(), Some(vec!["a".into(), "b".into()]));
        assert_eq!(field_of(f.ids("x").unwrap_err()), "x");
        assert_eq!(field_of(f.ids("g").unwrap_err()), "g");
        assert_eq!(f.ids("z").unwrap(), None);
        assert_eq!(f.nullable_ids("z").unwrap(), Some(None));
        assert_eq!(f.nullable_ids("missing").unwrap(), None);
    }

    #[test]
    fn texts_count_characters_and_trim() {
        let f = fields(json!({ "n": "  😀😀 ", "b": "   ", "num": 1 }));
        assert_eq!(f.text("n", 1, 2).unwrap(), "😀😀");
        assert_eq!(field_of(f.text("n", 1, 1).unwrap_err()), "n");
        assert_eq!(field_of(f.text("b", 1, 10).unwrap_err()), "b");
        assert_eq!(f.optional_text("b", 0, 10).unwrap(), Some(String::new()));
        assert_eq!(field_of(f.text("num", 1, 10).unwrap_err()), "num");
        assert_eq!(f.optional_text("missing", 1, 10).unwrap(), None);
    }

    #[test]
    fn content_keeps_spaces_but_not_blank() {
        let f = fields(json!({ "c": " hi ", "b": " \n", "long": "x".repeat(4001) }));
        assert_eq!(f.content("c", 4000).unwrap(), " hi ");
        assert_eq!(field_of(f.content("b", 4000).unwrap_err()), "b");
        assert_eq!(field_of(f.content("long", 4000).unwrap_err()), "long");
        assert_eq!(field_of(f.content("none", 4000).unwrap_err()), "none");
    }

    #[test]
    fn limits_visibility_request_ids() {
        assert_eq!(fields(json!({})).limit().unwrap(), DEFAULT_LIMIT);
        assert_eq!(fields(json!({ "limit": 200 })).limit().unwrap(), 200);
        for bad in [json!(0), json!(201), json!(2.5), json!("10"), json!(-1)] {
            assert_eq!(
                field_of(fields(json!({ "limit": bad })).limit().unwrap_err()),
                "limit"
            );
        }
        assert_eq!(
            fields(json!({ "visibility": "private" }))
                .visibility()
                .unwrap(),
            Some("private")
        );
        assert_eq!(
            field_of(
                fields(json!({ "visibility": "secret" }))
                    .visibility()
                    .unwrap_err()
            ),
            "visibility"
        );
        assert_eq!(
            fields(json!({ "requestId": "r1" }))
                .request_id()
                .unwrap()
                .as_deref(),
            Some("r1")
        );
        assert_eq!(
            field_of(fields(json!({ "requestId": 7 })).request_id().unwrap_err()),
            "requestId"
        );
    }
}

//! Lenient decoding of TinCan payloads: a missing or ill-typed field is `invalid_payload` naming
//! that field, never a dropped event. Each function reads one field of a payload's
//! [`Object`]; the request types ([`super::request`]) call them in the order the protocol checks
//! the fields, and the HTTP routes of [`super::accounts`] read their bodies with them too.
//!
//! No payload and `null` read as `{}`; any other non-object is refused as `invalid_payload` with
//! `field: "payload"`. A `null` field reads as absent, except where a request gives `null` a
//! meaning of its own ([`nullable_ids`]).
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

/// A payload's fields: an object, or nothing (`null`) read as `{}`.
pub fn object(value: Value) -> Result<Object, TinCanError> {
    match Object::from_value(value) {
        Ok(object) => Ok(object),
        Err(Value::Null) => Ok(Object::default()),
        Err(_) => Err(TinCanError::invalid(
            "payload",
            "The payload must be a JSON object.",
        )),
    }
}

/// `requestId`: any string, echoed in every answer.
pub fn request_id(o: &Object) -> Result<Option<String>, TinCanError> {
    match o.get("requestId") {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_REQUEST_ID_LEN => Ok(Some(s.clone())),
        Some(_) => Err(TinCanError::invalid(
            "requestId",
            format!("requestId must be a string of at most {MAX_REQUEST_ID_LEN} characters."),
        )),
    }
}

/// A required id.
pub fn id(o: &Object, key: &'static str) -> Result<String, TinCanError> {
    optional_id(o, key)?.ok_or_else(|| TinCanError::invalid(key, format!("{key} is required.")))
}

pub fn optional_id(o: &Object, key: &'static str) -> Result<Option<String>, TinCanError> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID_LEN => Ok(Some(s.clone())),
        Some(_) => Err(TinCanError::invalid(
            key,
            format!("{key} must be an id string."),
        )),
    }
}

/// A list of ids, duplicates dropped, in the order given; `None` when absent or `null`.
pub fn ids(o: &Object, key: &'static str) -> Result<Option<Vec<String>>, TinCanError> {
    match o.get(key) {
        None => Ok(None),
        Some(value) => id_list(key, value).map(Some),
    }
}

/// A list of ids where `null` means something: `None` when the field is absent,
/// `Some(None)` when it is `null`, `Some(Some(ids))` for a list.
pub fn nullable_ids(
    o: &Object,
    key: &'static str,
) -> Result<Option<Option<Vec<String>>>, TinCanError> {
    match o.get_raw(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(value) => id_list(key, value).map(|ids| Some(Some(ids))),
    }
}

/// A required text of `min..=max` characters, surrounding spaces removed; blank counts as
/// empty.
pub fn text(o: &Object, key: &'static str, min: usize, max: usize) -> Result<String, TinCanError> {
    optional_text(o, key, min, max)?
        .ok_or_else(|| TinCanError::invalid(key, format!("{key} is required.")))
}

/// An optional text of `min..=max` characters, surrounding spaces removed.
pub fn optional_text(
    o: &Object,
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
    match o.get(key) {
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
pub fn content(o: &Object, key: &'static str, max: usize) -> Result<String, TinCanError> {
    match o.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => Ok(s.clone()),
        _ => Err(TinCanError::invalid(
            key,
            format!("{key} must be a non-blank string of at most {max} characters."),
        )),
    }
}

/// `visibility`: `public` or `private`.
pub fn visibility(o: &Object) -> Result<Option<Visibility>, TinCanError> {
    match o.get("visibility").map(Value::as_str) {
        None => Ok(None),
        Some(Some(v)) if Visibility::of(v).is_some() => Ok(Visibility::of(v)),
        Some(_) => Err(TinCanError::invalid(
            "visibility",
            "visibility must be 'public' or 'private'.",
        )),
    }
}

/// `limit`: a whole number from 1 to `MAX_LIMIT`, `DEFAULT_LIMIT` when absent.
pub fn limit(o: &Object) -> Result<u64, TinCanError> {
    match o.get("limit") {
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
    o: &Object,
    key: &'static str,
    max: usize,
) -> Result<Option<String>, TinCanError> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(_) => Err(TinCanError::invalid(
            key,
            format!("{key} must be a string of at most {max} characters."),
        )),
    }
}

/// A group's visibility, as the wire and the store spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    /// The visibility spelled `s`, if any.
    pub fn of(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "private" => Some(Self::Private),
            _ => None,
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

    fn fields(v: Value) -> Object {
        object(v).unwrap()
    }

    fn field_of(e: TinCanError) -> &'static str {
        match e {
            TinCanError::InvalidPayload { field, .. } => field,
            other => panic!("not invalid_payload: {other:?}"),
        }
    }

    #[test]
    fn only_objects_or_nothing() {
        assert!(object(json!(null)).is_ok());
        assert!(object(json!({})).is_ok());
        for bad in [json!("x"), json!([1]), json!(3), json!(true)] {
            assert_eq!(field_of(object(bad).unwrap_err()), "payload");
        }
    }

    #[test]
    fn ids_and_lists() {
        let f = fields(
            json!({ "g": "abc", "n": 3, "e": "", "l": ["a", "b", "a"], "x": [1], "z": null }),
        );
        assert_eq!(id(&f, "g").unwrap(), "abc");
        assert_eq!(field_of(id(&f, "n").unwrap_err()), "n");
        assert_eq!(field_of(id(&f, "e").unwrap_err()), "e");
        assert_eq!(field_of(id(&f, "missing").unwrap_err()), "missing");
        assert_eq!(ids(&f, "l").unwrap(), Some(vec!["a".into(), "b".into()]));
        assert_eq!(field_of(ids(&f, "x").unwrap_err()), "x");
        assert_eq!(field_of(ids(&f, "g").unwrap_err()), "g");
        assert_eq!(ids(&f, "z").unwrap(), None);
        assert_eq!(nullable_ids(&f, "z").unwrap(), Some(None));
        assert_eq!(nullable_ids(&f, "missing").unwrap(), None);
    }

    #[test]
    fn texts_count_characters_and_trim() {
        let f = fields(json!({ "n": "  😀😀 ", "b": "   ", "num": 1 }));
        assert_eq!(text(&f, "n", 1, 2).unwrap(), "😀😀");
        assert_eq!(field_of(text(&f, "n", 1, 1).unwrap_err()), "n");
        assert_eq!(field_of(text(&f, "b", 1, 10).unwrap_err()), "b");
        assert_eq!(optional_text(&f, "b", 0, 10).unwrap(), Some(String::new()));
        assert_eq!(field_of(text(&f, "num", 1, 10).unwrap_err()), "num");
        assert_eq!(optional_text(&f, "missing", 1, 10).unwrap(), None);
    }

    #[test]
    fn content_keeps_spaces_but_not_blank() {
        let f = fields(json!({ "c": " hi ", "b": " \n", "long": "x".repeat(4001) }));
        assert_eq!(content(&f, "c", 4000).unwrap(), " hi ");
        assert_eq!(field_of(content(&f, "b", 4000).unwrap_err()), "b");
        assert_eq!(field_of(content(&f, "long", 4000).unwrap_err()), "long");
        assert_eq!(field_of(content(&f, "none", 4000).unwrap_err()), "none");
    }

    #[test]
    fn limits_visibility_request_ids() {
        assert_eq!(limit(&fields(json!({}))).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(&fields(json!({ "limit": 200 }))).unwrap(), 200);
        for bad in [json!(0), json!(201), json!(2.5), json!("10"), json!(-1)] {
            assert_eq!(
                field_of(limit(&fields(json!({ "limit": bad }))).unwrap_err()),
                "limit"
            );
        }
        assert_eq!(
            visibility(&fields(json!({ "visibility": "private" })))
                .unwrap()
                .map(Visibility::as_str),
            Some("private")
        );
        assert_eq!(
            field_of(visibility(&fields(json!({ "visibility": "secret" }))).unwrap_err()),
            "visibility"
        );
        assert_eq!(
            request_id(&fields(json!({ "requestId": "r1" })))
                .unwrap()
                .as_deref(),
            Some("r1")
        );
        assert_eq!(
            field_of(request_id(&fields(json!({ "requestId": 7 }))).unwrap_err()),
            "requestId"
        );
    }
}

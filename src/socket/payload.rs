//! Lenient reading of request payloads, shared by the protocols: a request's fields are read one
//! at a time, so that a wrong type for one field is that field's error code (each protocol has
//! its own), never a dropped event.
use serde_json::{Map, Value};

/// The fields of a request payload. A `null` field reads as absent ([`Object::get`]) unless
/// asked for as it is ([`Object::get_raw`]).
#[derive(Debug, Default, Clone)]
pub struct Object(Map<String, Value>);

impl Object {
    /// The payload's fields when it is an object; anything else is handed back, for the protocol
    /// to read as it does (an empty object, or a refusal).
    pub fn from_value(value: Value) -> Result<Self, Value> {
        match value {
            Value::Object(map) => Ok(Self(map)),
            other => Err(other),
        }
    }

    /// A field, `None` when absent or `null`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A field as it was sent, `null` included.
    pub fn get_raw(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// A field moved out of the payload, for a request that keeps it: `None` when absent or
    /// `null`, as by [`Object::get`].
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key).filter(|v| !v.is_null())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn null_fields_read_as_absent_unless_asked_for_raw() {
        let object = Object::from_value(json!({ "a": null, "b": 1 })).unwrap();
        assert_eq!(object.get("a"), None);
        assert_eq!(object.get_raw("a"), Some(&Value::Null));
        assert_eq!(object.get("b"), Some(&json!(1)));
        assert_eq!(object.get("c"), None);
    }

    #[test]
    fn taken_fields_are_gone_and_null_ones_absent() {
        let mut object = Object::from_value(json!({ "a": null, "b": 1 })).unwrap();
        assert_eq!(object.take("a"), None);
        assert_eq!(object.take("b"), Some(json!(1)));
        assert_eq!(object.take("b"), None);
        assert_eq!(object.get_raw("a"), None);
    }

    #[test]
    fn anything_but_an_object_is_handed_back() {
        assert_eq!(Object::from_value(json!([1])).unwrap_err(), json!([1]));
        assert_eq!(Object::from_value(Value::Null).unwrap_err(), Value::Null);
    }
}

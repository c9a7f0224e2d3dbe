//! Text on the wire that every client generation reads the same, on every namespace.
//!
//! socket.io-client 1.x (engine.io-parser 1.x) UTF-8-encodes each packet once more on HTTP
//! long-polling: it sends text as one character per UTF-8 byte and decodes what it receives the
//! same way, while 2.x and later send and expect plain text. Nothing in the handshake tells the
//! two apart, so:
//! - outgoing payloads are JSON with every non-ASCII character escaped (`\u00e9`, surrogate
//!   pairs for emoji): ASCII reads the same under both conventions, and `JSON.parse` restores
//!   the text;
//! - incoming strings from an Engine.IO 3 socket on polling that consist of byte-sized characters
//!   forming valid UTF-8 (what 1.x sends for any non-ASCII text) are decoded once more.
use std::io;
use std::sync::Arc;

use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::ser::Formatter;
use serde_json::value::RawValue;

/// A payload ready to send, already ASCII-only JSON.
#[derive(Debug)]
pub enum Json {
    /// One JSON value.
    Value(Box<RawValue>),
    /// A JSON array of values each made (and kept) on its own: socket.io writes the pieces one
    /// after the other, so a large answer built from kept pieces is never assembled, nor
    /// checked, as one string of ours first.
    Array(Vec<Arc<RawValue>>),
}

impl Json {
    /// The length of the JSON text, in bytes.
    pub fn text_len(&self) -> usize {
        match self {
            Json::Value(raw) => raw.get().len(),
            Json::Array(items) => {
                let commas = items.len().saturating_sub(1);
                2 + commas + items.iter().map(|item| item.get().len()).sum::<usize>()
            }
        }
    }

    /// The JSON text, for tests and logs.
    pub fn text(&self) -> String {
        match self {
            Json::Value(raw) => raw.get().to_owned(),
            Json::Array(items) => {
                let items: Vec<&str> = items.iter().map(|item| item.get()).collect();
                format!("[{}]", items.join(","))
            }
        }
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Value(raw) => raw.serialize(serializer),
            Json::Array(items) => serializer.collect_seq(items.iter().map(|item| &**item)),
        }
    }
}

/// A string that serializes as ASCII-only JSON whatever the formatter: as it is when it is
/// ASCII, escaped otherwise (`\u00e9`, surrogate pairs for emoji). A shape whose every string
/// is one of these can be made into JSON with [`raw`], which skips [`ascii_json`]'s check.
#[derive(Debug, Clone, Copy)]
pub struct AsciiStr<'a>(pub &'a str);

impl Serialize for AsciiStr<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_ascii() {
            serializer.serialize_str(self.0)
        } else {
            ascii_json(self.0).serialize(serializer)
        }
    }
}

/// JSON of a shape whose strings are all [`AsciiStr`] (or known to be ASCII, like ids and
/// timestamps), without reading it back to check it is JSON: it is serde_json's own output.
pub fn raw<T: Serialize + ?Sized>(payload: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(payload).unwrap_or_else(|e| {
        tracing::error!(error = %e, "payload did not serialize");
        RawValue::from_string("null".to_owned()).expect("null is JSON")
    })
}

/// A payload as ASCII-only JSON, ready to send.
pub fn json<T: Serialize + ?Sized>(payload: &T) -> Json {
    Json::Value(ascii_json(payload))
}

/// A payload as ASCII-only JSON text.
pub fn ascii_json<T: Serialize + ?Sized>(payload: &T) -> Box<RawValue> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter);
    let raw = payload
        .serialize(&mut ser)
        .ok()
        .and_then(|()| String::from_utf8(out).ok())
        .and_then(|json| RawValue::from_string(json).ok());
    raw.unwrap_or_else(|| {
        tracing::error!("payload did not serialize");
        RawValue::from_string("null".to_owned()).expect("null is JSON")
    })
}

struct AsciiFormatter;

impl Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.is_ascii() {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Undoes socket.io-client 1.x's extra UTF-8 layer in every string of a decoded payload.
pub fn repair_double_utf8(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Some(repaired) = decode_byte_chars(s) {
                *s = repaired;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(repair_double_utf8),
        Value::Object(map) => map.values_mut().for_each(repair_double_utf8),
        _ => {}
    }
}

/// `s` read as one byte per character, when every character fits a byte, some are not ASCII,
/// and the bytes are valid UTF-8.
fn decode_byte_chars(s: &str) -> Option<String> {
    if s.is_ascii() {
        return None;
    }
    let bytes = s
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// The first argument of an event packet (`["event", arg, …]`) whose JSON did not parse because
/// a string holds half of a surrogate pair (`"\ud83d"`, what JavaScript makes of an emoji cut in
/// two): the half becomes U+FFFD and the rest reads as sent.
pub fn first_arg_lossy(packet: &str) -> Option<Value> {
    let repaired = replace_lone_surrogates(packet)?;
    match serde_json::from_str::<Value>(&repaired).ok()? {
        Value::Array(mut items) if items.len() > 1 => Some(items.swap_remove(1)),
        _ => None,
    }
}

/// `json` with every `\uXXXX` escape of an unpaired surrogate replaced by `\ufffd`; `None` when
/// there was none.
fn replace_lone_surrogates(json: &str) -> Option<String> {
    fn escape_at(b: &[u8], i: usize) -> Option<u16> {
        let hex = b.get(i..i + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    }
    let b = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let (mut i, mut last, mut changed) = (0, 0, false);
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        match escape_at(b, i) {
            Some(0xD800..=0xDBFF) if matches!(escape_at(b, i + 6), Some(0xDC00..=0xDFFF)) => {
                i += 12
            }
            Some(0xD800..=0xDFFF) => {
                out.push_str(&json[last..i]);
                out.push_str("\\ufffd");
                i += 6;
                last = i;
                changed = true;
            }
            Some(_) => i += 6,
            // Any other escape is two characters, `\\` included.
            None => i += 2,
        }
    }
    out.push_str(&json[last.min(json.len())..]);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_len_is_the_length_of_the_text() {
        let piece = |text: &str| Arc::from(RawValue::from_string(text.to_owned()).unwrap());
        for payload in [
            json(&json!({ "roomId": "r", "message": "\u{e9}t\u{e9}" })),
            Json::Array(Vec::new()),
            Json::Array(vec![piece("1")]),
            Json::Array(vec![
                piece(r#"{"a":[1,2]}"#),
                piece("null"),
                piece(r#""x""#),
            ]),
        ] {
            assert_eq!(
                payload.text_len(),
                payload.text().len(),
                "{}",
                payload.text()
            );
        }
    }

    #[test]
    fn half_an_emoji_becomes_a_replacement_character() {
        let packet =
            r#"["add_message",{"roomId":"r","message":"cut \ud83d","ok":"\ud83d\ude00 \\ud83d"}]"#;
        assert!(serde_json::from_str::<Value>(packet).is_err());
        let arg = first_arg_lossy(packet).unwrap();
        assert_eq!(
            arg,
            json!({ "roomId": "r", "message": "cut \u{fffd}", "ok": "😀 \\ud83d" })
        );
        let low_first = r#"["e",{"m":"\ude00\ud83d"}]"#;
        assert_eq!(
            first_arg_lossy(low_first).unwrap(),
            json!({ "m": "\u{fffd}\u{fffd}" })
        );
        assert!(first_arg_lossy(r#"["e",{"m":"fine"}]"#).is_none());
    }

    #[test]
    fn non_ascii_is_escaped_and_round_trips() {
        let payload = json!({ "m": "é 😀 中", "k": "plain \"quoted\"" });
        let raw = ascii_json(&payload);
        assert!(raw.get().is_ascii(), "{}", raw.get());
        assert!(raw.get().contains("\\ud83d\\ude00"));
        let back: Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(back, payload);
    }

    #[test]
    fn ascii_strings_stay_ascii_under_any_formatter() {
        #[derive(Serialize)]
        struct Shape<'a> {
            name: AsciiStr<'a>,
            plain: AsciiStr<'a>,
        }
        let shape = Shape {
            name: AsciiStr("é 😀 \"中\"\n"),
            plain: AsciiStr("quote \" and \\"),
        };
        for text in [
            raw(&shape).get().to_owned(),
            ascii_json(&shape).get().to_owned(),
        ] {
            assert!(text.is_ascii(), "{text}");
            let back: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                back,
                json!({ "name": "é 😀 \"中\"\n", "plain": "quote \" and \\" })
            );
        }
        assert_eq!(raw(&shape).get(), ascii_json(&shape).get());
    }

    #[test]
    fn double_encoded_text_is_repaired_once() {
        // "😀 é" as socket.io-client 1.x sends it on polling: one char per UTF-8 byte.
        let sent: String = "😀 é".bytes().map(char::from).collect();
        let mut value = json!({ "message": sent, "list": [sent.clone()], "n": 1 });
        repair_double_utf8(&mut value);
        assert_eq!(
            value,
            json!({ "message": "😀 é", "list": ["😀 é"], "n": 1 })
        );
        // Plain text from newer clients stays as it is.
        for plain in ["é", "😀", "naïve café", "ascii"] {
            let mut v = json!(plain);
            repair_double_utf8(&mut v);
            assert_eq!(v, json!(plain));
        }
    }
}

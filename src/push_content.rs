//! What a push says: its title, body and data, built once when it is queued.
//!
//! Plain text and JSON, nothing else: the store writes it into the push outbox with the message
//! that causes it, and the push layer ([`crate::push`]) only sends what the outbox holds.
use serde_json::json;

/// Longest body, in characters; apps and lock screens cut long text anyway, and both providers
/// cap the whole payload at about 4 kB.
pub const MAX_BODY_CHARS: usize = 180;

/// Why a push is sent. The data's `type` and the outbox's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Message,
    Reaction,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Reaction => "reaction",
        }
    }

    /// The kind for a stored message type (`MESSAGE` or `REACTION`).
    pub fn of_message_type(message_type: &str) -> Self {
        if message_type == "REACTION" {
            Self::Reaction
        } else {
            Self::Message
        }
    }
}

/// Title, body and data of one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub title: String,
    pub body: String,
    /// A JSON object of string values (`roomId`, `messageId`, `type`): FCM accepts only strings.
    pub data: String,
}

/// The push for a new message or reaction in a room. For a reaction `text` is the reaction
/// (`CHEER`, …) and the body says who reacted: the display name they chose in the app, or
/// "Someone" (people are anonymous until they pick a name).
pub fn for_message(
    kind: Kind,
    room_id: &str,
    room_name: &str,
    message_id: i64,
    text: &str,
    author_name: Option<&str>,
) -> Content {
    let body = match kind {
        Kind::Message => truncate(text, MAX_BODY_CHARS),
        Kind::Reaction => {
            let who = author_name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or("Someone");
            truncate(&format!("{who} reacted with {text}"), MAX_BODY_CHARS)
        }
    };
    let data = json!({
        "roomId": room_id,
        "messageId": message_id.to_string(),
        "type": kind.as_str(),
    });
    Content {
        title: format!("New message in {room_name}"),
        body,
        data: data.to_string(),
    }
}

/// `text` cut to at most `max` characters on a character boundary, the last of them `…` when
/// anything was cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let keep = max.saturating_sub(1);
            let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
            let mut cut = text[..end].to_owned();
            cut.push('…');
            cut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(truncate("hello", 180), "hello");
        let exact = "a".repeat(180);
        assert_eq!(truncate(&exact, 180), exact);
        assert_eq!(truncate("", 180), "");
    }

    #[test]
    fn long_text_is_cut_to_the_limit_with_an_ellipsis() {
        let long = "b".repeat(181);
        let cut = truncate(&long, 180);
        assert_eq!(cut.chars().count(), 180);
        assert!(cut.ends_with('…'));
        assert_eq!(&cut[..179], "b".repeat(179));
    }

    #[test]
    fn cuts_on_character_boundaries() {
        // Multi-byte characters: a byte cut would split them (and panic).
        let long = "é🎉".repeat(200);
        let cut = truncate(&long, 180);
        assert_eq!(cut.chars().count(), 180);
        assert!(cut.ends_with('…'));
        assert!(long.starts_with(cut.trim_end_matches('…')));
    }

    #[test]
    fn message_content() {
        let c = for_message(Kind::Message, "r1", "Study group", 42, "hi there", None);
        assert_eq!(c.title, "New message in Study group");
        assert_eq!(c.body, "hi there");
        let data: serde_json::Value = serde_json::from_str(&c.data).unwrap();
        assert_eq!(
            data,
            json!({ "roomId": "r1", "messageId": "42", "type": "message" })
        );
    }

    #[test]
    fn reaction_content_says_someone_reacted() {
        let c = for_message(Kind::Reaction, "r1", "Room", 7, "CHEER", None);
        assert_eq!(c.body, "Someone reacted with CHEER");
        let named = for_message(Kind::Reaction, "r1", "Room", 7, "THANK", Some("Kim 🌱"));
        assert_eq!(named.body, "Kim 🌱 reacted with THANK");
        let data: serde_json::Value = serde_json::from_str(&c.data).unwrap();
        assert_eq!(data["type"], "reaction");
        assert_eq!(Kind::of_message_type("REACTION"), Kind::Reaction);
        assert_eq!(Kind::of_message_type("MESSAGE"), Kind::Message);
    }
}

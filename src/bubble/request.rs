//! Every client event as a type, decoded once from its payload.
//!
//! Decoding is lenient and never fails as a whole: anything but a JSON object reads as an empty
//! object, a `null` field reads as absent, and each field is decoded on its own into a
//! [`Field`], that field's value or its error code. A wrong type for one field is never a
//! dropped event. The handler takes the fields (`?`) in the spec's order, interleaved with the
//! lookups the spec puts between them (in `add_message`, a room that does not exist is
//! `room_id_not_found` before a missing message is `no_message`); a field it never takes never
//! fails the request.
//!
//! Strings are moved out of the payload, not copied.
use serde_json::Value;
use uuid::{Uuid, Variant};

use super::BubbleError;
use super::kinds::{Platform, RoomType};
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

const MAX_ROOM_NAME_CHARS: usize = 200;
const MAX_ROOM_DESCRIPTION_CHARS: usize = 1000;
const MAX_MESSAGE_CHARS: usize = 3000;
const MAX_REACTION_CHARS: usize = 50;
/// Socket ids and bubbleIds are far shorter; anything longer names nobody.
const MAX_USER_ID_CHARS: usize = 100;
const MAX_REASON_CHARS: usize = 1000;
const MAX_COUNSELLOR_CHARS: usize = 100;
const MAX_NAME_CHARS: usize = 100;
const MAX_PUSH_TOKEN_CHARS: usize = 4096;

/// One decoded field: its value, or the error code the request fails with when the handler
/// takes it.
pub type Field<T> = Result<T, BubbleError>;

/// A client event's request, decoded from its payload's fields.
pub trait Request: Sized {
    fn decode(fields: Object) -> Self;
}

/// The fields of an event's payload: anything but an object reads as no fields.
pub fn fields(data: Value) -> Object {
    Object::from_value(data).unwrap_or_default()
}

/// An event that takes nothing (`list_rooms`, `my_rooms`, `my_id`, `find_counsellor`,
/// `counsellor_offline`): whatever was sent is ignored.
pub struct NoFields;

impl Request for NoFields {
    fn decode(_: Object) -> Self {
        Self
    }
}

/// Events that name a room and nothing else.
macro_rules! room_requests {
    ($($(#[$doc:meta])* $name:ident;)+) => {$(
        $(#[$doc])*
        pub struct $name {
            pub room_id: Field<String>,
        }

        impl Request for $name {
            fn decode(mut p: Object) -> Self {
                Self { room_id: room_id(&mut p) }
            }
        }
    )+};
}

room_requests! {
    /// `join_room { roomId }`.
    JoinRoom;
    /// `exit_room { roomId }`.
    ExitRoom;
    /// `view_room { roomId }`.
    ViewRoom;
    /// `typing { roomId }` and `stop_typing { roomId }`.
    Typing;
    /// `close_room { roomId }`.
    CloseRoom;
}

/// `create_room { roomName, roomDescription?, userLimit?, categories? }`.
pub struct CreateRoom {
    pub room_name: Field<String>,
    /// Empty when absent.
    pub room_description: Field<String>,
    pub user_limit: Field<i32>,
    pub categories: Field<Vec<String>>,
}

impl Request for CreateRoom {
    fn decode(mut p: Object) -> Self {
        let (no_name, invalid) = (BubbleError::NoRoomName, || BubbleError::InvalidRoomName);
        Self {
            room_name: text(&mut p, "roomName", MAX_ROOM_NAME_CHARS, no_name, invalid()),
            room_description: optional_text(
                &mut p,
                "roomDescription",
                MAX_ROOM_DESCRIPTION_CHARS,
                invalid(),
            )
            .map(Option::unwrap_or_default),
            user_limit: user_limit(&mut p),
            categories: categories(&mut p),
        }
    }
}

/// `add_message { roomId, message }`.
pub struct AddMessage {
    pub room_id: Field<String>,
    pub message: Field<String>,
}

impl Request for AddMessage {
    fn decode(mut p: Object) -> Self {
        Self {
            room_id: room_id(&mut p),
            message: text(
                &mut p,
                "message",
                MAX_MESSAGE_CHARS,
                BubbleError::NoMessage,
                BubbleError::InvalidMessage,
            ),
        }
    }
}

/// `add_reaction { roomId, reaction, targetUser, targetUserBubbleId? }`.
pub struct AddReaction {
    pub room_id: Field<String>,
    pub reaction: Field<String>,
    /// A socket id or a bubbleId: the apps send either.
    pub target_user: Field<String>,
    /// `None` when absent or empty.
    pub target_user_bubble_id: Field<Option<String>>,
}

impl Request for AddReaction {
    fn decode(mut p: Object) -> Self {
        let invalid_target = || BubbleError::InvalidTargetUser;
        Self {
            room_id: room_id(&mut p),
            reaction: text(
                &mut p,
                "reaction",
                MAX_REACTION_CHARS,
                BubbleError::NoReaction,
                BubbleError::InvalidReaction,
            ),
            target_user: text(
                &mut p,
                "targetUser",
                MAX_USER_ID_CHARS,
                BubbleError::NoTargetUser,
                invalid_target(),
            ),
            target_user_bubble_id: optional_text(
                &mut p,
                "targetUserBubbleId",
                MAX_USER_ID_CHARS,
                invalid_target(),
            )
            .map(|given| given.filter(|b| !b.is_empty())),
        }
    }
}

/// `report_user { roomId, userToReport, reason? }`.
pub struct ReportUser {
    pub room_id: Field<String>,
    /// The reported socket's id.
    pub user_to_report: Field<String>,
    /// Empty when absent.
    pub reason: Field<String>,
}

impl Request for ReportUser {
    fn decode(mut p: Object) -> Self {
        Self {
            room_id: room_id(&mut p),
            user_to_report: match p.take("userToReport") {
                Some(Value::String(sid)) => Ok(sid),
                _ => Err(BubbleError::NoUserToReport),
            },
            reason: optional_text(
                &mut p,
                "reason",
                MAX_REASON_CHARS,
                BubbleError::InvalidReason,
            )
            .map(Option::unwrap_or_default),
        }
    }
}

/// `counsellor_online`: on `/` (the old apps' way) `{ counsellorId, counsellorName }`, or the
/// seed's `{ userId, newName }`; the first of each pair that is not blank counts. On
/// `/counsellor` the payload is not read.
pub struct CounsellorOnline {
    pub counsellor_id: Field<Option<String>>,
    pub user_id: Field<Option<String>>,
    pub counsellor_name: Field<Option<String>>,
    pub new_name: Field<Option<String>>,
}

impl Request for CounsellorOnline {
    fn decode(mut p: Object) -> Self {
        let mut field = |key: &str| {
            let value = optional_text(&mut p, key, MAX_COUNSELLOR_CHARS, invalid_counsellor());
            value.map(|v| v.filter(|v| !v.trim().is_empty()))
        };
        Self {
            counsellor_id: field("counsellorId"),
            user_id: field("userId"),
            counsellor_name: field("counsellorName"),
            new_name: field("newName"),
        }
    }
}

/// `list_issues { counsellorId? }`; on `/counsellor` the payload is not read.
pub struct ListIssues {
    pub counsellor_id: Field<Option<String>>,
}

impl Request for ListIssues {
    fn decode(mut p: Object) -> Self {
        Self {
            counsellor_id: optional_text(
                &mut p,
                "counsellorId",
                MAX_COUNSELLOR_CHARS,
                invalid_counsellor(),
            ),
        }
    }
}

fn invalid_counsellor() -> BubbleError {
    BubbleError::InvalidCounsellor
}

/// `resolve_issue { issueId }`.
pub struct ResolveIssue {
    pub issue_id: Field<i64>,
}

impl Request for ResolveIssue {
    fn decode(mut p: Object) -> Self {
        let issue_id = match p.take("issueId") {
            None => Err(BubbleError::NoIssueId),
            Some(Value::Number(n)) => n.as_i64().ok_or(BubbleError::InvalidIssueId),
            Some(Value::String(s)) => s.trim().parse().map_err(|_| BubbleError::InvalidIssueId),
            Some(_) => Err(BubbleError::InvalidIssueId),
        };
        Self { issue_id }
    }
}

/// `set_room_type { roomId, roomType }`.
pub struct SetRoomType {
    pub room_id: Field<String>,
    /// `HOT` or `PUBLIC`: a room cannot be made private.
    pub room_type: Field<RoomType>,
}

impl Request for SetRoomType {
    fn decode(mut p: Object) -> Self {
        let room_type = match p.get("roomType").and_then(Value::as_str).map(str::parse) {
            Some(Ok(t @ (RoomType::Hot | RoomType::Public))) => Ok(t),
            _ => Err(BubbleError::InvalidRoomType),
        };
        Self {
            room_id: room_id(&mut p),
            room_type,
        }
    }
}

/// `set_user_name { newName }`.
pub struct SetUserName {
    pub new_name: Field<String>,
}

impl Request for SetUserName {
    fn decode(mut p: Object) -> Self {
        Self {
            new_name: text(
                &mut p,
                "newName",
                MAX_NAME_CHARS,
                BubbleError::NoName,
                BubbleError::InvalidNewName,
            ),
        }
    }
}

/// `register_push { pushToken, platform? }` (also `registerPush`).
pub struct RegisterPush {
    pub push_token: Field<String>,
    /// FCM when absent.
    pub platform: Field<Platform>,
}

impl Request for RegisterPush {
    fn decode(mut p: Object) -> Self {
        let invalid = || BubbleError::InvalidPushToken;
        let platform = match p.get("platform") {
            None => Ok(Platform::Fcm),
            Some(value) => value
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or(BubbleError::InvalidPlatform),
        };
        Self {
            push_token: text(
                &mut p,
                "pushToken",
                MAX_PUSH_TOKEN_CHARS,
                invalid(),
                invalid(),
            ),
            platform,
        }
    }
}

/// `roomId`: `no_room_id` when absent or empty, `invalid_room_id` unless a hyphenated UUID of
/// version 1 to 5 (any case). Its lowercase form, the one the store uses.
fn room_id(p: &mut Object) -> Field<String> {
    match p.get("roomId") {
        None => Err(BubbleError::NoRoomId),
        Some(Value::String(s)) if s.is_empty() => Err(BubbleError::NoRoomId),
        Some(Value::String(s)) => parse_room_id(s).ok_or(BubbleError::InvalidRoomId),
        Some(_) => Err(BubbleError::InvalidRoomId),
    }
}

/// A required text field of at most `max` characters: `missing` when absent or blank,
/// `invalid` when not a string or too long.
fn text(
    p: &mut Object,
    key: &str,
    max: usize,
    missing: BubbleError,
    invalid: BubbleError,
) -> Field<String> {
    match optional_text(p, key, max, invalid)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(missing),
    }
}

/// An optional text field of at most `max` characters: `invalid` when present but not a string,
/// or too long.
fn optional_text(
    p: &mut Object,
    key: &str,
    max: usize,
    invalid: BubbleError,
) -> Field<Option<String>> {
    match p.take(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().nth(max).is_none() => Ok(Some(s)),
        Some(_) => Err(invalid),
    }
}

/// `userLimit`: absent, `null` or `""` is the default; otherwise a whole number (or a string
/// holding one) from 2 to 100.
fn user_limit(p: &mut Object) -> Field<i32> {
    let limit = match p.get("userLimit") {
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
fn categories(p: &mut Object) -> Field<Vec<String>> {
    let Some(value) = p.get("categories") else {
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

    fn payload(v: Value) -> Object {
        fields(v)
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
            assert!(matches!(
                room_id(&mut payload(v)),
                Err(BubbleError::NoRoomId)
            ));
        }
    }

    #[test]
    fn room_ids() {
        let v4 = "1B4E28BA-2FA1-41D2-883F-0016D3CCA427";
        assert_eq!(
            room_id(&mut payload(json!({ "roomId": v4 }))).unwrap(),
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
                    room_id(&mut payload(json!({ "roomId": bad }))),
                    Err(BubbleError::InvalidRoomId)
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            room_id(&mut payload(json!({ "roomId": "" }))),
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
            let got = user_limit(&mut payload(json!({ "userLimit": v }))).ok();
            assert_eq!(got, want, "{v}");
        }
    }

    #[test]
    fn text_lengths_count_characters() {
        let p = || payload(json!({ "m": "😀".repeat(3), "e": " " }));
        let invalid = || BubbleError::InvalidMessage;
        assert_eq!(
            text(&mut p(), "m", 3, BubbleError::NoMessage, invalid()).unwrap(),
            "😀😀😀"
        );
        assert!(matches!(
            text(&mut p(), "m", 2, BubbleError::NoMessage, invalid()),
            Err(BubbleError::InvalidMessage)
        ));
        assert!(matches!(
            text(&mut p(), "e", 2, BubbleError::NoMessage, invalid()),
            Err(BubbleError::NoMessage)
        ));
        assert!(matches!(
            text(&mut p(), "x", 2, BubbleError::NoMessage, invalid()),
            Err(BubbleError::NoMessage)
        ));
    }

    #[test]
    fn categories() {
        let mut ok = payload(json!({ "categories": ["Rant", "Funny", "Rant"] }));
        assert_eq!(super::categories(&mut ok).unwrap(), vec!["Rant", "Funny"]);
        assert!(super::categories(&mut payload(json!({ "categories": "Rant" }))).is_err());
        assert!(super::categories(&mut payload(json!({ "categories": ["rant"] }))).is_err());
        assert!(
            super::categories(&mut payload(json!({})))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_field_never_taken_never_fails_the_request() {
        let request = AddMessage::decode(payload(json!({ "roomId": 5, "message": "hi" })));
        assert!(matches!(request.room_id, Err(BubbleError::InvalidRoomId)));
        assert_eq!(request.message.unwrap(), "hi");
    }

    #[test]
    fn counsellor_fields_skip_blank_ones_but_not_bad_ones() {
        let request = CounsellorOnline::decode(payload(json!({
            "counsellorId": " ", "userId": "u1", "counsellorName": 5
        })));
        assert_eq!(request.counsellor_id.unwrap(), None);
        assert_eq!(request.user_id.unwrap().as_deref(), Some("u1"));
        assert!(matches!(
            request.counsellor_name,
            Err(BubbleError::InvalidCounsellor)
        ));
    }

    #[test]
    fn issue_ids_and_room_types() {
        let id = |v| ResolveIssue::decode(payload(json!({ "issueId": v }))).issue_id;
        assert_eq!(id(json!(" 12 ")).unwrap(), 12);
        assert!(matches!(id(json!(1.5)), Err(BubbleError::InvalidIssueId)));
        assert!(matches!(id(json!(null)), Err(BubbleError::NoIssueId)));
        let t = |v| SetRoomType::decode(payload(json!({ "roomType": v }))).room_type;
        assert_eq!(t(json!("HOT")).unwrap(), RoomType::Hot);
        assert!(matches!(
            t(json!("PRIVATE")),
            Err(BubbleError::InvalidRoomType)
        ));
    }
}

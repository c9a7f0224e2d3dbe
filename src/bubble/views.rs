//! The shapes the apps read: `Room`, `Message`, issues, and the replies built on them.
//!
//! Where a reply was once a JSON object with sorted keys, its struct declares its fields in that
//! order, so that every byte sent stays the same.
use std::sync::Arc;

use entity::{issue, message, room};
use serde::Serialize;

use crate::clock::Iso;
use crate::presence::Snapshot;
use crate::socket::wire::AsciiStr;

/// The `Room` shape. Its strings are [`AsciiStr`], so it can be made into JSON with
/// [`wire::raw`](crate::socket::wire::raw).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomView<'a> {
    pub room_id: AsciiStr<'a>,
    pub room_name: AsciiStr<'a>,
    pub room_description: AsciiStr<'a>,
    pub room_type: AsciiStr<'a>,
    pub user_limit: i32,
    #[serde(serialize_with = "ascii_strings")]
    pub categories: Vec<String>,
    pub num_users: usize,
    pub last_active: Iso,
    pub created_by: AsciiStr<'a>,
    pub created_by_bubble_id: AsciiStr<'a>,
    pub is_open: bool,
    pub created_at: Iso,
    pub updated_at: Iso,
}

impl<'a> RoomView<'a> {
    pub fn new(room: &'a room::Model, num_users: usize) -> Self {
        Self {
            room_id: AsciiStr(&room.id),
            room_name: AsciiStr(&room.name),
            room_description: AsciiStr(&room.description),
            room_type: AsciiStr(&room.room_type),
            user_limit: room.user_limit,
            categories: serde_json::from_str(&room.categories).unwrap_or_default(),
            num_users,
            last_active: Iso(room.last_active),
            created_by: AsciiStr(&room.created_by),
            created_by_bubble_id: AsciiStr(&room.created_by_bubble_id),
            is_open: room.is_open,
            created_at: Iso(room.created_at),
            updated_at: Iso(room.updated_at),
        }
    }
}

fn ascii_strings<S: serde::Serializer>(list: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(list.iter().map(|item| AsciiStr(item)))
}

/// A `Room` with its newest messages and the sockets in it: what joining, viewing and listing
/// show; `X` holds the keys some events add after them (`userId`, `counsellorId`, …).
#[derive(Debug, Serialize)]
pub struct RoomDetail<'a, X = NoExtra> {
    #[serde(flatten)]
    pub room: RoomView<'a>,
    /// Newest first.
    pub messages: Vec<MessageView<'a>>,
    pub participants: &'a [String],
    #[serde(flatten)]
    pub extra: X,
}

/// No keys added.
#[derive(Debug, Serialize)]
pub struct NoExtra {}

/// `{}`: a reply with nothing to say.
#[derive(Debug, Serialize)]
pub struct Empty {}

impl<'a> RoomDetail<'a> {
    /// `messages` newest first.
    pub fn new(
        room: &'a room::Model,
        messages: &'a [Arc<message::Model>],
        here: &'a Snapshot,
    ) -> Self {
        Self {
            room: RoomView::new(room, here.num_users),
            messages: messages.iter().map(|m| MessageView::from(&**m)).collect(),
            participants: &here.participants,
            extra: NoExtra {},
        }
    }
}

impl<'a, X> RoomDetail<'a, X> {
    /// The same room with the keys of `extra` added instead of any it had.
    pub fn with<Y: Serialize>(self, extra: Y) -> RoomDetail<'a, Y> {
        RoomDetail {
            room: self.room,
            messages: self.messages,
            participants: self.participants,
            extra,
        }
    }
}

/// The `Message` shape. Its strings are [`AsciiStr`], so it can be made into JSON with
/// [`wire::raw`](crate::socket::wire::raw).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView<'a> {
    pub id: i64,
    pub user_id: AsciiStr<'a>,
    pub bubble_id: AsciiStr<'a>,
    pub message_type: AsciiStr<'a>,
    pub content: AsciiStr<'a>,
    pub room_room_id: AsciiStr<'a>,
    pub target_user: Option<AsciiStr<'a>>,
    pub target_user_bubble_id: Option<AsciiStr<'a>>,
    pub created_at: Iso,
    pub updated_at: Iso,
}

impl<'a> From<&'a message::Model> for MessageView<'a> {
    fn from(m: &'a message::Model) -> Self {
        Self {
            id: m.id,
            user_id: AsciiStr(&m.user_id),
            bubble_id: AsciiStr(&m.bubble_id),
            message_type: AsciiStr(&m.message_type),
            content: AsciiStr(&m.content),
            room_room_id: AsciiStr(&m.room_id),
            target_user: m.target_user.as_deref().map(AsciiStr),
            target_user_bubble_id: m.target_user_bubble_id.as_deref().map(AsciiStr),
            created_at: Iso(m.created_at),
            updated_at: Iso(m.updated_at),
        }
    }
}

/// An issue as `list_issues` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueView<'a> {
    pub id: i64,
    pub issue_type: &'a str,
    pub user_id: &'a str,
    pub bubble_id: &'a str,
    pub counsellor_id: Option<&'a str>,
    pub room_id: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub resolved_at: Option<Iso>,
    pub created_at: Iso,
    pub updated_at: Iso,
}

impl<'a> From<&'a issue::Model> for IssueView<'a> {
    fn from(i: &'a issue::Model) -> Self {
        Self {
            id: i.id,
            issue_type: &i.issue_type,
            user_id: &i.user_id,
            bubble_id: &i.bubble_id,
            counsellor_id: i.counsellor_id.as_deref(),
            room_id: i.room_id.as_deref(),
            reason: i.reason.as_deref(),
            resolved_at: i.resolved_at.map(Iso),
            created_at: Iso(i.created_at),
            updated_at: Iso(i.updated_at),
        }
    }
}

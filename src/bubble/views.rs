//! The shapes the apps read: `Room`, `Message`, issues.
use entity::{issue, message, room};
use serde::Serialize;
use serde_json::{Map, Value};

use super::recent::MessagesJson;

use crate::clock::Iso;
use crate::presence::Snapshot;

/// The `Room` shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomView<'a> {
    pub room_id: &'a str,
    pub room_name: &'a str,
    pub room_description: &'a str,
    pub room_type: &'a str,
    pub user_limit: i32,
    pub categories: Vec<String>,
    pub num_users: usize,
    pub last_active: Iso,
    pub created_by: &'a str,
    pub created_by_bubble_id: &'a str,
    pub is_open: bool,
    pub created_at: Iso,
    pub updated_at: Iso,
}

impl<'a> RoomView<'a> {
    pub fn new(room: &'a room::Model, num_users: usize) -> Self {
        Self {
            room_id: &room.id,
            room_name: &room.name,
            room_description: &room.description,
            room_type: &room.room_type,
            user_limit: room.user_limit,
            categories: serde_json::from_str(&room.categories).unwrap_or_default(),
            num_users,
            last_active: Iso(room.last_active),
            created_by: &room.created_by,
            created_by_bubble_id: &room.created_by_bubble_id,
            is_open: room.is_open,
            created_at: Iso(room.created_at),
            updated_at: Iso(room.updated_at),
        }
    }
}

/// A `Room` with its newest messages and the sockets in it: what joining, viewing and listing
/// show.
#[derive(Debug, Serialize)]
pub struct RoomDetail<'a> {
    #[serde(flatten)]
    pub room: RoomView<'a>,
    pub messages: MessagesJson,
    pub participants: Vec<String>,
    /// Keys some events add (`userId`, `counsellorId`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl<'a> RoomDetail<'a> {
    pub fn new(room: &'a room::Model, messages: MessagesJson, here: Snapshot) -> Self {
        Self {
            room: RoomView::new(room, here.num_users),
            messages,
            participants: here.participants,
            extra: Map::new(),
        }
    }

    /// The same with `extra` keys added.
    pub fn with<const N: usize>(mut self, extra: [(&str, Value); N]) -> Self {
        for (key, value) in extra {
            self.extra.insert(key.to_owned(), value);
        }
        self
    }
}

/// The `Message` shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView<'a> {
    pub id: i64,
    pub user_id: &'a str,
    pub bubble_id: &'a str,
    pub message_type: &'a str,
    pub content: &'a str,
    pub room_room_id: &'a str,
    pub target_user: Option<&'a str>,
    pub target_user_bubble_id: Option<&'a str>,
    pub created_at: Iso,
    pub updated_at: Iso,
}

impl<'a> From<&'a message::Model> for MessageView<'a> {
    fn from(m: &'a message::Model) -> Self {
        Self {
            id: m.id,
            user_id: &m.user_id,
            bubble_id: &m.bubble_id,
            message_type: &m.message_type,
            content: &m.content,
            room_room_id: &m.room_id,
            target_user: m.target_user.as_deref(),
            target_user_bubble_id: m.target_user_bubble_id.as_deref(),
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

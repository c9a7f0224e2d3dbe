//! `add_message` and `add_reaction`: the hot path. One transaction stores the message, moves
//! the room's `lastActive` and queues pushes for the members who are away; the room's name and
//! who is present come from presence. Pushes are sent later by the push worker, never awaited here.
//!
//! Both are handled in two steps: checked and handed to the store (the handlers), then, once
//! committed, delivered and answered ([`Storing`], [`Stored`]). The socket's next requests may
//! start in between, so one busy socket's messages are committed together (see `Served::overlaps`).
use std::sync::Arc;

use entity::message;
use serde::Serialize;

use super::kinds::MessageKind;
use super::request::{AddMessage, AddReaction};
use super::views::MessageView;
use super::{BubbleError, Ctx, Outcome, Reply};
use crate::AppState;
use crate::socket::wire::{self, AsciiStr, Json};
use crate::store::{Committing, NewMessage, PushFanout};

pub async fn add_message(ctx: &Ctx, r: AddMessage) -> Result<Storing, BubbleError> {
    let room_id = r.room_id?;
    let room_name = ctx.app.presence.name_if_in(&room_id, ctx.conn).await?;
    if room_name.is_none() {
        ctx.room(&room_id).await?;
    }
    let content = r.message?;
    let Some(room_name) = room_name else {
        return Err(BubbleError::UserNotInRoom);
    };
    let committing = store(ctx, room_id, MessageKind::Message, content, None, None).await?;
    Ok(Storing {
        event: "add_message",
        room_name,
        committing,
    })
}

pub async fn add_reaction(ctx: &Ctx, r: AddReaction) -> Result<Storing, BubbleError> {
    let room_id = r.room_id?;
    let Some(room_name) = ctx.app.presence.name_if_in(&room_id, ctx.conn).await? else {
        ctx.room(&room_id).await?;
        return Err(BubbleError::UserNotInRoom);
    };
    let reaction = r.reaction?;
    let target = r.target_user?;
    let target_bubble_id = match r.target_user_bubble_id? {
        Some(b) => Some(b),
        None => target_person(ctx, &room_id, &target).await?,
    };
    let committing = store(
        ctx,
        room_id,
        MessageKind::Reaction,
        reaction,
        Some(target),
        target_bubble_id,
    )
    .await?;
    Ok(Storing {
        event: "add_reaction",
        room_name,
        committing,
    })
}

/// A message or reaction checked and handed to the store, not yet known to be stored: the
/// socket's next requests may start meanwhile (see [`crate::socket::inbox`]).
pub struct Storing {
    event: &'static str,
    room_name: Arc<str>,
    committing: Committing,
}

impl Storing {
    /// Waits for the message's commit.
    pub async fn stored(self, app: &AppState) -> Result<Stored, BubbleError> {
        let added = self
            .committing
            .committed()
            .await?
            .ok_or(BubbleError::RoomIdNotFound)?;
        app.push.queued(added.pushes);
        Ok(Stored {
            event: self.event,
            room_name: self.room_name,
            message: added.message,
        })
    }
}

/// A stored message or reaction, to be delivered.
pub struct Stored {
    event: &'static str,
    room_name: Arc<str>,
    message: message::Model,
}

impl Stored {
    /// Sends the message to the others in the room (`sentByMe: false`) and returns the sender's
    /// copy (`sentByMe: true`).
    pub async fn deliver(self, ctx: &Ctx) -> Outcome {
        let (stored, room_name) = (&self.message, &*self.room_name);
        let payload =
            |sent_by_me| Json::Value(wire::raw(&Delivered::new(stored, room_name, sent_by_me)));
        let rooms = vec![stored.room_id.clone()];
        ctx.to_others_json(rooms, self.event, &payload(false)).await;
        Ok(Some(Reply {
            event: self.event,
            payload: payload(true),
        }))
    }
}

/// The apps put a socket id or a bubbleId in `targetUser`: the person behind that socket, or
/// the member with that bubbleId.
async fn target_person(
    ctx: &Ctx,
    room_id: &str,
    target: &str,
) -> Result<Option<String>, BubbleError> {
    // A socket in the room first: a client multiplexing `/` and `/counsellor` has one id for
    // two sockets, and only one of them may be in the room.
    let presence = &ctx.app.presence;
    if let Some(person) = presence.person_in_room(room_id, target).await? {
        return Ok(Some(person.to_string()));
    }
    if let Some(person) = presence.person_of(target).await? {
        return Ok(Some(person.to_string()));
    }
    let member = ctx.app.store.rooms().is_member(room_id, target).await?;
    Ok(member.then(|| target.to_owned()))
}

/// Hands the message to the store, with the pushes for the members who are away.
async fn store(
    ctx: &Ctx,
    room_id: String,
    kind: MessageKind,
    content: String,
    target_user: Option<String>,
    target_user_bubble_id: Option<String>,
) -> Result<Committing, BubbleError> {
    let new = NewMessage {
        room_id,
        user_id: ctx.sid.to_string(),
        bubble_id: ctx.bubble_id.to_string(),
        message_type: kind.as_str(),
        content,
        target_user,
        target_user_bubble_id,
    };
    let present = ctx.app.presence.people_in(&new.room_id).await?;
    // Only a reaction's push names its author.
    let author_name = (kind == MessageKind::Reaction)
        .then(|| ctx.name())
        .flatten();
    let fanout = PushFanout {
        present: &present,
        author_name: author_name.as_deref(),
        collapse_ms: i64::try_from(ctx.app.config.push.push_collapse_ms).unwrap_or(i64::MAX),
    };
    Ok(ctx.app.store.messages().queue(new, &fanout).await)
}

/// A stored message as delivered: the `Message` shape, where it is, and whose it is. Its strings
/// are [`AsciiStr`], so it is made into JSON without being read back.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Delivered<'a> {
    #[serde(flatten)]
    shape: MessageView<'a>,
    room_id: AsciiStr<'a>,
    room_name: AsciiStr<'a>,
    /// The author's socket id, again.
    user: AsciiStr<'a>,
    sent_by_me: bool,
    /// `add_message` repeats the content as `message`, `add_reaction` as `reaction`.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<AsciiStr<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reaction: Option<AsciiStr<'a>>,
}

impl<'a> Delivered<'a> {
    fn new(stored: &'a message::Model, room_name: &'a str, sent_by_me: bool) -> Self {
        let content = Some(AsciiStr(&stored.content));
        let reaction = MessageKind::Reaction.is(&stored.message_type);
        Self {
            shape: MessageView::from(stored),
            room_id: AsciiStr(&stored.room_id),
            room_name: AsciiStr(room_name),
            user: AsciiStr(&stored.user_id),
            sent_by_me,
            message: content.filter(|_| !reaction),
            reaction: content.filter(|_| reaction),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn a_delivered_message_has_every_key_the_apps_read() {
        let stored = message::Model {
            id: 7,
            room_id: "0b6f6c43-93b0-4a3f-9d0e-6c2b64a1f2d4".into(),
            user_id: "sid-1".into(),
            bubble_id: "bubble-1".into(),
            message_type: "MESSAGE".into(),
            content: "héllo 😀".into(),
            target_user: None,
            target_user_bubble_id: None,
            created_at: 1_795_420_800_123,
            updated_at: 1_795_420_800_123,
        };
        let delivered = Delivered::new(&stored, "Café", true);
        let text = wire::raw(&delivered).get().to_owned();
        assert!(text.is_ascii(), "{text}");
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            got,
            json!({
                "id": 7, "userId": "sid-1", "bubbleId": "bubble-1", "messageType": "MESSAGE",
                "content": "héllo 😀", "roomRoomId": stored.room_id, "targetUser": null,
                "targetUserBubbleId": null, "createdAt": "2026-11-23T08:00:00.123Z",
                "updatedAt": "2026-11-23T08:00:00.123Z", "roomId": stored.room_id,
                "roomName": "Café", "user": "sid-1", "sentByMe": true, "message": "héllo 😀"
            })
        );
    }
}

//! `add_message` and `add_reaction`: the hot path. One transaction stores the message, moves
//! the room's `lastActive` and queues pushes for the members who are away; the room's name and
//! who is present come from presence. Pushes are sent later by the push worker, never awaited here.
use entity::message;
use serde_json::{Value, json};

use super::views::MessageView;
use super::{BubbleError, Ctx, Outcome, Payload, Reply};
use crate::store::{NewMessage, PushFanout};

const MAX_MESSAGE_CHARS: usize = 3000;
const MAX_REACTION_CHARS: usize = 50;
/// Socket ids and bubbleIds are far shorter; anything longer names nobody.
const MAX_USER_ID_CHARS: usize = 100;

pub async fn add_message(ctx: &Ctx, p: Payload) -> Outcome {
    let room_id = p.room_id()?;
    let room_name = ctx.app.presence.name_if_in(&room_id, ctx.conn).await?;
    if room_name.is_none() {
        ctx.room(&room_id).await?;
    }
    let content = p.text(
        "message",
        MAX_MESSAGE_CHARS,
        BubbleError::NoMessage,
        BubbleError::InvalidMessage,
    )?;
    let Some(room_name) = room_name else {
        return Err(BubbleError::UserNotInRoom);
    };
    let stored = store(ctx, room_id, "MESSAGE", content, None, None).await?;
    let extra = [("message", json!(content))];
    deliver(ctx, "add_message", &stored, &room_name, extra).await
}

pub async fn add_reaction(ctx: &Ctx, p: Payload) -> Outcome {
    let room_id = p.room_id()?;
    let Some(room_name) = ctx.app.presence.name_if_in(&room_id, ctx.conn).await? else {
        ctx.room(&room_id).await?;
        return Err(BubbleError::UserNotInRoom);
    };
    let reaction = p.text(
        "reaction",
        MAX_REACTION_CHARS,
        BubbleError::NoReaction,
        BubbleError::InvalidReaction,
    )?;
    let target = p.text(
        "targetUser",
        MAX_USER_ID_CHARS,
        BubbleError::NoTargetUser,
        BubbleError::InvalidTargetUser,
    )?;
    let given = p.optional_text(
        "targetUserBubbleId",
        MAX_USER_ID_CHARS,
        BubbleError::InvalidTargetUser,
    )?;
    let target_bubble_id = match given.filter(|b| !b.is_empty()) {
        Some(b) => Some(b.to_owned()),
        None => target_person(ctx, &room_id, target).await?,
    };
    let stored = store(
        ctx,
        room_id,
        "REACTION",
        reaction,
        Some(target.to_owned()),
        target_bubble_id,
    )
    .await?;
    let extra = [("reaction", json!(reaction))];
    deliver(ctx, "add_reaction", &stored, &room_name, extra).await
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
    let member = ctx.app.store.is_member(room_id, target).await?;
    Ok(member.then(|| target.to_owned()))
}

async fn store(
    ctx: &Ctx,
    room_id: String,
    message_type: &'static str,
    content: &str,
    target_user: Option<String>,
    target_user_bubble_id: Option<String>,
) -> Result<message::Model, BubbleError> {
    let new = NewMessage {
        room_id,
        user_id: ctx.sid.to_string(),
        bubble_id: ctx.bubble_id.to_string(),
        message_type,
        content: content.to_owned(),
        target_user,
        target_user_bubble_id,
    };
    let present = ctx.app.presence.people_in(&new.room_id).await?;
    // Only a reaction's push names its author.
    let author_name = (message_type == "REACTION").then(|| ctx.name()).flatten();
    let fanout = PushFanout {
        present: &present,
        author_name: author_name.as_deref(),
        collapse_ms: i64::try_from(ctx.app.config.push.push_collapse_ms).unwrap_or(i64::MAX),
    };
    let added = ctx
        .app
        .store
        .add_message(new, &fanout)
        .await?
        .ok_or(BubbleError::RoomIdNotFound)?;
    ctx.app.push.queued(added.pushes);
    Ok(added.message)
}

/// Sends the stored message to the others in the room (`sentByMe: false`) and returns the
/// sender's copy (`sentByMe: true`).
async fn deliver<const N: usize>(
    ctx: &Ctx,
    event: &'static str,
    stored: &message::Model,
    room_name: &str,
    extra: [(&str, Value); N],
) -> Outcome {
    let mut payload = serde_json::to_value(MessageView::from(stored)).unwrap_or_default();
    if let Value::Object(map) = &mut payload {
        map.insert("roomId".into(), json!(stored.room_id));
        map.insert("roomName".into(), json!(room_name));
        map.insert("user".into(), json!(stored.user_id));
        map.insert("sentByMe".into(), json!(false));
        for (key, value) in extra {
            map.insert(key.to_owned(), value);
        }
    }
    ctx.to_others(&stored.room_id, event, &payload).await;
    payload["sentByMe"] = json!(true);
    Ok(Some(Reply::new(event, payload)))
}

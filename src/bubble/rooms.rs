//! Room events: create, join, exit, list, view, typing, and a socket's arrival and departure.
use std::collections::HashSet;

use serde::Serialize;
use serde_json::json;
use socketioxide::socket::Sid;

use super::recent;
use super::views::RoomDetail;
use super::{BubbleError, Ctx, Outcome, Payload, Reply, wire};
use crate::clock::now_ms;
use crate::store::{HOT, NewRoom, PRIVATE, PUBLIC};

/// Rooms quiet for longer than this drop out of `list_rooms` (unless HOT or the sender's).
const LIST_WINDOW_MS: i64 = 3 * 24 * 60 * 60 * 1000;

/// `{ roomId, userId, bubbleId, user }`: what others hear of someone joining, leaving or typing.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonEvent<'a> {
    pub room_id: &'a str,
    pub user_id: String,
    pub bubble_id: &'a str,
    pub user: String,
}

impl<'a> PersonEvent<'a> {
    pub fn new(room_id: &'a str, sid: Sid, bubble_id: &'a str) -> Self {
        Self {
            room_id,
            user_id: sid.to_string(),
            bubble_id,
            user: sid.to_string(),
        }
    }

    /// About the socket a handler serves.
    pub fn of(ctx: &'a Ctx, room_id: &'a str) -> Self {
        Self::new(room_id, ctx.sid, &ctx.bubble_id)
    }
}

/// `{ roomId, userId, bubbleId }`: what a socket hears of its own exit from a room.
pub fn i_exit(room_id: &str, sid: Sid, bubble_id: &str) -> serde_json::Value {
    json!({ "roomId": room_id, "userId": sid.to_string(), "bubbleId": bubble_id })
}

pub async fn create_room(ctx: &Ctx, p: Payload) -> Outcome {
    let name = p.text(
        "roomName",
        200,
        BubbleError::NoRoomName,
        BubbleError::InvalidRoomName,
    )?;
    let description = p
        .optional_text("roomDescription", 1000, BubbleError::InvalidRoomName)?
        .unwrap_or_default();
    let user_limit = p.user_limit()?;
    let categories = p.categories()?;
    let new = NewRoom {
        name: name.to_owned(),
        description: description.to_owned(),
        room_type: PUBLIC,
        user_limit,
        categories,
        created_by: ctx.sid.to_string(),
        created_by_bubble_id: ctx.bubble_id.to_string(),
    };
    let room = ctx
        .app
        .store
        .create_room(new, &[&ctx.bubble_id], None)
        .await?;
    let _ = ctx.app.presence.join(&room.id, &room.name, ctx.conn, None);
    ctx.socket.join(room.id.clone());
    let here = ctx.app.presence.snapshot(&room.id);
    Ok(Some(Reply::new(
        "create_room",
        RoomDetail::new(&room, recent::none(), here),
    )))
}

pub async fn join_room(ctx: &Ctx, p: Payload) -> Outcome {
    let room = ctx.room(&p.room_id()?).await?;
    if !room.is_open {
        return Err(BubbleError::RoomClosed);
    }
    let (store, presence) = (&ctx.app.store, &ctx.app.presence);
    if !presence.contains(&room.id, ctx.conn) {
        if room.room_type == PRIVATE && !store.is_member(&room.id, &ctx.bubble_id).await? {
            return Err(BubbleError::RoomFull);
        }
        let limit = usize::try_from(room.user_limit).unwrap_or(0);
        presence
            .join(&room.id, &room.name, ctx.conn, Some(limit))
            .map_err(|_| BubbleError::RoomFull)?;
        match store.add_member(&room.id, &ctx.bubble_id).await {
            Ok(true) => {}
            Ok(false) => {
                presence.leave(&room.id, ctx.conn);
                return Err(BubbleError::RoomClosed);
            }
            Err(e) => {
                presence.leave(&room.id, ctx.conn);
                return Err(e.into());
            }
        }
        ctx.socket.join(room.id.clone());
        ctx.to_others(&room.id, "join_room", &PersonEvent::of(ctx, &room.id))
            .await;
    }
    let messages = ctx.app.recent.of(store, &room).await?;
    let payload = RoomDetail::new(&room, messages, presence.snapshot(&room.id)).with([
        ("userId", json!(ctx.sid.to_string())),
        ("bubbleId", json!(&*ctx.bubble_id)),
    ]);
    Ok(Some(Reply::new("join_room", payload)))
}

pub async fn exit_room(ctx: &Ctx, p: Payload) -> Outcome {
    let room = ctx.room(&p.room_id()?).await?;
    if !ctx.app.presence.contains(&room.id, ctx.conn) {
        return Err(BubbleError::UserNotInRoom);
    }
    ctx.app
        .store
        .remove_member(&room.id, &ctx.bubble_id)
        .await?;
    for conn in ctx.app.presence.leave_person(&room.id, &ctx.bubble_id) {
        if conn == ctx.conn {
            ctx.socket.leave(room.id.clone());
        } else if let Some(socket) = ctx.socket_of(conn) {
            socket.leave(room.id.clone());
            let payload = i_exit(&room.id, conn.sid, &ctx.bubble_id);
            wire::emit(&socket, "i_exit", &payload);
        }
    }
    ctx.to_others(&room.id, "exit_room", &PersonEvent::of(ctx, &room.id))
        .await;
    Ok(Some(Reply::new(
        "i_exit",
        i_exit(&room.id, ctx.sid, &ctx.bubble_id),
    )))
}

pub async fn list_rooms(ctx: &Ctx) -> Outcome {
    let (store, presence) = (&ctx.app.store, &ctx.app.presence);
    let mine = presence.rooms_of(ctx.conn);
    let mut rooms = store
        .listable_rooms(now_ms() - LIST_WINDOW_MS, &mine)
        .await?;
    rooms.sort_by_key(|r| (r.room_type != HOT, r.last_active));
    let mut listed = Vec::with_capacity(rooms.len());
    for room in &rooms {
        let messages = ctx.app.recent.of(store, room).await?;
        listed.push(RoomDetail::new(room, messages, presence.snapshot(&room.id)));
    }
    let reply = Reply::new("list_rooms", &listed);
    // Rooms that dropped out of the list leave the cache, which so stays about the list's size.
    let ids: HashSet<&str> = rooms.iter().map(|r| r.id.as_str()).collect();
    ctx.app.recent.retain(|id| ids.contains(id));
    Ok(Some(reply))
}

pub async fn view_room(ctx: &Ctx, p: Payload) -> Outcome {
    let room = ctx.room(&p.room_id()?).await?;
    let (store, presence) = (&ctx.app.store, &ctx.app.presence);
    if room.room_type == PRIVATE
        && !presence.contains(&room.id, ctx.conn)
        && !store.is_member(&room.id, &ctx.bubble_id).await?
    {
        return Err(BubbleError::UserNotInRoom);
    }
    let messages = ctx.app.recent.of(store, &room).await?;
    let detail = RoomDetail::new(&room, messages, presence.snapshot(&room.id));
    Ok(Some(Reply::new("view_room", detail)))
}

pub fn my_rooms(ctx: &Ctx) -> Outcome {
    Ok(Some(Reply::new(
        "my_rooms",
        ctx.app.presence.rooms_of(ctx.conn),
    )))
}

/// `typing` and `stop_typing`: relayed, never stored. The store is read only to tell a missing
/// room from one the socket is not in.
pub async fn typing(ctx: &Ctx, p: Payload, event: &'static str) -> Outcome {
    let room_id = p.room_id()?;
    if !ctx.app.presence.contains(&room_id, ctx.conn) {
        ctx.room(&room_id).await?;
        return Err(BubbleError::UserNotInRoom);
    }
    ctx.to_others(&room_id, event, &PersonEvent::of(ctx, &room_id))
        .await;
    Ok(None)
}

/// A returning person's new socket goes back into the open rooms they are a member of; others
/// there hear it as a join.
pub async fn rejoin(ctx: &Ctx) -> Result<(), BubbleError> {
    for room in ctx.app.store.open_rooms_of(&ctx.bubble_id).await? {
        if ctx
            .app
            .presence
            .join(&room.id, &room.name, ctx.conn, None)
            .is_ok()
        {
            ctx.socket.join(room.id.clone());
            ctx.to_others(&room.id, "join_room", &PersonEvent::of(ctx, &room.id))
                .await;
        }
    }
    Ok(())
}

/// A socket went away: in each room its person has now left, others hear an exit. Membership
/// stays.
pub async fn disconnected(ctx: &Ctx) {
    for (room_id, person_left) in ctx.app.presence.disconnect(ctx.conn) {
        if person_left {
            ctx.to_others(&room_id, "exit_room", &PersonEvent::of(ctx, &room_id))
                .await;
        }
    }
}

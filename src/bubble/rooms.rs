//! Room events: create, join, exit, list, view, typing, and a socket's arrival and departure.
use serde::Serialize;
use socketioxide::socket::Sid;

use super::kinds::RoomType;
use super::request::{CreateRoom, ExitRoom, JoinRoom, NoFields, Typing, ViewRoom};
use super::views::RoomDetail;
use super::{BubbleError, Ctx, Outcome, Reply};
use crate::AppState;
use crate::clock::now_ms;
use crate::presence::{Joined, RoomLeft};
use crate::store::{Departed, NewRoom};

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

/// `{ bubbleId, roomId, userId }`: what a socket hears of its own exit from a room.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IExit<'a> {
    pub bubble_id: &'a str,
    pub room_id: &'a str,
    pub user_id: String,
}

pub fn i_exit<'a>(room_id: &'a str, sid: Sid, bubble_id: &'a str) -> IExit<'a> {
    IExit {
        bubble_id,
        room_id,
        user_id: sid.to_string(),
    }
}

/// `{ bubbleId, userId }`: who joined, added to the room in the joiner's own reply.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Joiner<'a> {
    bubble_id: &'a str,
    user_id: String,
}

pub async fn create_room(ctx: &Ctx, r: CreateRoom) -> Outcome {
    let new = NewRoom {
        name: r.room_name?,
        description: r.room_description?,
        room_type: RoomType::Public.as_str(),
        user_limit: r.user_limit?,
        categories: r.categories?,
        created_by: ctx.sid.to_string(),
        created_by_bubble_id: ctx.bubble_id.to_string(),
    };
    let room = ctx
        .app
        .store
        .rooms()
        .create(new, &[&ctx.bubble_id], None)
        .await?;
    let _ = ctx
        .app
        .presence
        .join(&room.id, &room.name, ctx.conn, None)
        .await?;
    ctx.socket.join_room(room.id.clone());
    let here = ctx.app.presence.snapshot(&room.id).await?;
    Ok(Some(Reply::new(
        "create_room",
        RoomDetail::new(&room, &[], &here),
    )))
}

pub async fn join_room(ctx: &Ctx, r: JoinRoom) -> Outcome {
    let room = ctx.room(&r.room_id?).await?;
    if !room.is_open {
        return Err(BubbleError::RoomClosed);
    }
    let (store, presence) = (&ctx.app.store, &ctx.app.presence);
    if !presence.contains(&room.id, ctx.conn).await? {
        if RoomType::Private.is(&room.room_type)
            && !store.rooms().is_member(&room.id, &ctx.bubble_id).await?
        {
            return Err(BubbleError::RoomFull);
        }
        let limit = usize::try_from(room.user_limit).unwrap_or(0);
        presence
            .join(&room.id, &room.name, ctx.conn, Some(limit))
            .await?
            .map_err(|_| BubbleError::RoomFull)?;
        match store.rooms().add_member(&room.id, &ctx.bubble_id).await {
            Ok(true) => {}
            Ok(false) => {
                presence.leave(&room.id, ctx.conn).await?;
                return Err(BubbleError::RoomClosed);
            }
            Err(e) => {
                presence.leave(&room.id, ctx.conn).await?;
                return Err(e.into());
            }
        }
        ctx.socket.join_room(room.id.clone());
        ctx.to_others(&room.id, "join_room", &PersonEvent::of(ctx, &room.id))
            .await;
    }
    let recent = store.messages().recent(&[&room]).await?;
    let messages = recent.first().map(|r| &r.messages[..]).unwrap_or_default();
    let here = presence.snapshot(&room.id).await?;
    let payload = RoomDetail::new(&room, messages, &here).with(Joiner {
        bubble_id: &ctx.bubble_id,
        user_id: ctx.sid.to_string(),
    });
    Ok(Some(Reply::new("join_room", payload)))
}

pub async fn exit_room(ctx: &Ctx, r: ExitRoom) -> Outcome {
    let room = ctx.room(&r.room_id?).await?;
    if !ctx.app.presence.contains(&room.id, ctx.conn).await? {
        return Err(BubbleError::UserNotInRoom);
    }
    ctx.app
        .store
        .rooms()
        .remove_member(&room.id, &ctx.bubble_id)
        .await?;
    let presence = &ctx.app.presence;
    let mut told = presence.leave_person(&room.id, &ctx.bubble_id).await?;
    for &conn in &told {
        ctx.leave_socket(conn, &room.id).await;
    }
    // Every tab of the person closes the room, also one that never had it open.
    for conn in presence.sockets_of(&ctx.bubble_id).await? {
        if !told.contains(&conn) {
            told.push(conn);
        }
    }
    for conn in told.into_iter().filter(|&conn| conn != ctx.conn) {
        let payload = i_exit(&room.id, conn.sid, &ctx.bubble_id);
        ctx.emit_to(conn, "i_exit", &payload).await;
    }
    ctx.to_others(&room.id, "exit_room", &PersonEvent::of(ctx, &room.id))
        .await;
    Ok(Some(Reply::new(
        "i_exit",
        i_exit(&room.id, ctx.sid, &ctx.bubble_id),
    )))
}

pub async fn list_rooms(ctx: &Ctx, _: NoFields) -> Outcome {
    let (store, presence) = (&ctx.app.store, &ctx.app.presence);
    let mine = presence.rooms_of(ctx.conn).await?;
    let mut rooms = store
        .rooms()
        .listable(now_ms() - LIST_WINDOW_MS, &mine)
        .await?;
    rooms.sort_by_key(|r| (!RoomType::Hot.is(&r.room_type), r.last_active));
    let ids = rooms.iter().map(|r| r.id.clone()).collect();
    let here = presence.snapshots(ids).await?;
    let payload = ctx.app.listed.answer(store, &rooms, here).await?;
    Ok(Some(Reply {
        event: "list_rooms",
        payload,
    }))
}

pub async fn view_room(ctx: &Ctx, r: ViewRoom) -> Outcome {
    let room = ctx.room(&r.room_id?).await?;
    let (store, presence) = (&ctx.app.store, &ctx.app.presence);
    if RoomType::Private.is(&room.room_type)
        && !presence.contains(&room.id, ctx.conn).await?
        && !store.rooms().is_member(&room.id, &ctx.bubble_id).await?
    {
        return Err(BubbleError::UserNotInRoom);
    }
    let recent = store.messages().recent(&[&room]).await?;
    let messages = recent.first().map(|r| &r.messages[..]).unwrap_or_default();
    let here = presence.snapshot(&room.id).await?;
    Ok(Some(Reply::new(
        "view_room",
        RoomDetail::new(&room, messages, &here),
    )))
}

pub async fn my_rooms(ctx: &Ctx, _: NoFields) -> Outcome {
    let mine = ctx.app.presence.rooms_of(ctx.conn).await?;
    Ok(Some(Reply::new("my_rooms", mine)))
}

pub async fn typing(ctx: &Ctx, r: Typing) -> Outcome {
    relay_typing(ctx, r, "typing").await
}

pub async fn stop_typing(ctx: &Ctx, r: Typing) -> Outcome {
    relay_typing(ctx, r, "stop_typing").await
}

/// `typing` and `stop_typing`: relayed, never stored. The store is read only to tell a missing
/// room from one the socket is not in.
async fn relay_typing(ctx: &Ctx, r: Typing, event: &'static str) -> Outcome {
    let room_id = r.room_id?;
    if !ctx.app.presence.contains(&room_id, ctx.conn).await? {
        ctx.room(&room_id).await?;
        return Err(BubbleError::UserNotInRoom);
    }
    ctx.to_others(&room_id, event, &PersonEvent::of(ctx, &room_id))
        .await;
    Ok(None)
}

/// A returning person's new socket goes back into the open rooms they are a member of. Others
/// there hear it as a join only where the person had no socket left: a second tab, or a
/// reconnect before the old socket timed out, tells nobody.
pub async fn rejoin(ctx: &Ctx) -> Result<(), BubbleError> {
    for room in ctx.app.store.rooms().open_of(&ctx.bubble_id).await? {
        let joined = ctx.app.presence.join(&room.id, &room.name, ctx.conn, None);
        let Ok(joined) = joined.await? else { continue };
        ctx.socket.join_room(room.id.clone());
        if joined == Joined::Arrived {
            ctx.to_others(&room.id, "join_room", &PersonEvent::of(ctx, &room.id))
                .await;
        }
    }
    Ok(())
}

/// A socket went away: in each room its person has now left, others hear an exit. Membership
/// stays.
pub async fn disconnected(ctx: &Ctx) {
    let left = match ctx.app.presence.disconnect(ctx.conn).await {
        Ok(left) => left,
        Err(e) => {
            tracing::error!(sid = %ctx.sid, error = %e, "forgetting a socket failed");
            return;
        }
    };
    for RoomLeft {
        room_id,
        person_gone,
    } in left
    {
        if person_gone {
            ctx.to_others(&room_id, "exit_room", &PersonEvent::of(ctx, &room_id))
                .await;
        }
    }
}

/// The sockets of a node that died are gone: in each room a person has now left, the others
/// hear an exit, as if the sockets had disconnected.
pub async fn announce_departures(app: &AppState, departed: Departed) {
    for socket in departed.sockets {
        if socket.person_gone {
            let exit = PersonEvent::new(&socket.room_id, socket.conn.sid, &socket.bubble_id);
            super::to_room(app, &socket.room_id, "exit_room", &exit).await;
        }
    }
}

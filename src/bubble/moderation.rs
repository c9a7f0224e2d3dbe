//! Moderation by signed-in counsellors: closing rooms and featuring them.
use super::kinds::RoomType;
use super::request::{CloseRoom, SetRoomType};
use super::rooms::{PersonEvent, i_exit};
use super::views::RoomView;
use super::{BubbleError, Ctx, Outcome, Reply};
use crate::presence::RoomSocket;

/// `close_room { roomId }`: the room closes; everyone in it hears everyone else leave, then gets
/// their own `i_exit`. It no longer shows in `list_rooms` and cannot be joined.
pub async fn close_room(ctx: &Ctx, r: CloseRoom) -> Outcome {
    let room_id = r.room_id?;
    let room = ctx
        .app
        .store
        .rooms()
        .close(&room_id)
        .await?
        .ok_or(BubbleError::RoomIdNotFound)?;
    let here = ctx.app.presence.clear_room(&room.id).await?;
    // One exit per person, named by their first socket.
    let mut people: Vec<PersonEvent> = Vec::new();
    for RoomSocket { conn, bubble_id } in &here {
        if !people.iter().any(|p| p.bubble_id == &**bubble_id) {
            people.push(PersonEvent::new(&room.id, conn.sid, bubble_id));
        }
    }
    for RoomSocket { conn, bubble_id } in &here {
        ctx.leave_socket(*conn, &room.id).await;
        for exit in people.iter().filter(|p| p.bubble_id != &**bubble_id) {
            ctx.emit_to(*conn, "exit_room", exit).await;
        }
        let payload = i_exit(&room.id, conn.sid, bubble_id);
        ctx.emit_to(*conn, "i_exit", &payload).await;
    }
    Ok(Some(Reply::new("close_room", RoomView::new(&room, 0))))
}

/// `set_room_type { roomId, roomType }`: `HOT` features a room at the top of `list_rooms`,
/// `PUBLIC` returns it to the rest. Private rooms keep their type.
pub async fn set_room_type(ctx: &Ctx, r: SetRoomType) -> Outcome {
    let room = ctx.room(&r.room_id?).await?;
    let room_type = r.room_type?;
    if RoomType::Private.is(&room.room_type) {
        return Err(BubbleError::InvalidRoomType);
    }
    let room = ctx
        .app
        .store
        .rooms()
        .set_type(&room.id, room_type.as_str())
        .await?
        .ok_or(BubbleError::RoomIdNotFound)?;
    let here = ctx.app.presence.snapshot(&room.id).await?;
    Ok(Some(Reply::new(
        "set_room_type",
        RoomView::new(&room, here.num_users),
    )))
}

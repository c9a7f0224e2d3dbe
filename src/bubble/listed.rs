//! The newest messages of each room, as wire JSON, kept between requests.
//!
//! `list_rooms` is polled every two seconds by every app and shows each room with its 100 newest
//! messages; `join_room` and `view_room` show them too. Rooms are read from the store on every
//! request, and a room's `lastActive` moves forward with every message or reaction stored in it
//! (and messages are never edited or removed), so the cached JSON of a room is current exactly
//! when it was made at the room's present `lastActive`. That holds whichever server process
//! stored the message, so the cache needs no invalidation.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use entity::room;
use sea_orm::DbErr;
use serde_json::value::RawValue;

use super::views::MessageView;
use crate::store::Store;
use crate::wire;

/// A room's newest messages, newest first, as a JSON array.
pub type MessagesJson = Arc<Box<RawValue>>;

#[derive(Default)]
pub struct RecentMessages {
    rooms: Mutex<HashMap<String, (i64, MessagesJson)>>,
}

impl RecentMessages {
    /// The newest messages of `room`, read from the store only when the room has changed.
    pub async fn of(&self, store: &Store, room: &room::Model) -> Result<MessagesJson, DbErr> {
        if let Some(json) = self.cached(room) {
            return Ok(json);
        }
        let messages = store.recent_messages(&room.id).await?;
        let views: Vec<MessageView> = messages.iter().map(MessageView::from).collect();
        let json = Arc::new(wire::ascii_json(&views));
        if let Ok(mut rooms) = self.rooms.lock() {
            rooms.insert(room.id.clone(), (room.last_active, json.clone()));
        }
        Ok(json)
    }

    fn cached(&self, room: &room::Model) -> Option<MessagesJson> {
        let rooms = self.rooms.lock().ok()?;
        let (at, json) = rooms.get(&room.id)?;
        (*at == room.last_active).then(|| json.clone())
    }

    /// Drops the rooms `keep` refuses (rooms no longer listed), so the cache holds about what
    /// `list_rooms` shows.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut rooms) = self.rooms.lock() {
            rooms.retain(|id, _| keep(id));
        }
    }
}

/// The messages of a room that has none yet.
pub fn none() -> MessagesJson {
    Arc::new(wire::ascii_json(&[(); 0]))
}

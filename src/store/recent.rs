//! The newest messages of rooms, kept in memory between reads.
//!
//! `list_rooms` is polled every two seconds by every app and shows every listed room with its
//! newest messages; read from the database each time, that is a hundred rows per room per poll.
//! Instead each room's newest messages are kept here with the room's `lastActive` they are the
//! newest as of ([`Recent::at`]). A room's `lastActive` moves with every message stored in it,
//! and messages are never edited, so an entry is current for a room read at the same or an
//! earlier `lastActive`; otherwise the room is read again.
//!
//! On SQLite the message writer stores every message, so it also keeps the entries exact: it
//! reads rooms into the cache itself, between two batches, and after each commit it adds the
//! batch's messages to the rooms the cache holds, before anyone is told they are stored. An entry
//! then never goes stale. On PostgreSQL messages are stored by each request, on any node, and an
//! entry is only used while the room's `lastActive` has not moved past it.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use entity::{message, room};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use super::push_outbox::Params;

/// How many messages a room shows: the newest ones.
pub const RECENT_MESSAGES: u64 = 100;

/// A room's newest messages.
#[derive(Debug, Clone)]
pub struct Recent {
    /// The room's `lastActive` when these were its newest messages.
    pub at: i64,
    /// Newest first, at most `RECENT_MESSAGES`.
    pub messages: Arc<Vec<Arc<message::Model>>>,
}

/// Rooms read in one statement when entries are missing.
const ROOMS_PER_READ: usize = 100;

#[derive(Debug, Default)]
pub(super) struct RecentCache {
    rooms: Mutex<HashMap<String, Recent>>,
}

impl RecentCache {
    /// The entry of a room read at `last_active`, if it is current for it.
    pub(super) fn get(&self, room_id: &str, last_active: i64) -> Option<Recent> {
        let rooms = self.rooms.lock().ok()?;
        rooms
            .get(room_id)
            .filter(|recent| recent.at >= last_active)
            .cloned()
    }

    /// Keeps `recent` unless the room's entry is newer.
    pub(super) fn put(&self, room_id: &str, recent: Recent) {
        if let Ok(mut rooms) = self.rooms.lock() {
            match rooms.get(room_id) {
                Some(kept) if kept.at >= recent.at => {}
                _ => {
                    rooms.insert(room_id.to_owned(), recent);
                }
            }
        }
    }

    /// A message just stored, after every message its room's entry holds: it becomes the
    /// newest, and the entry is as of its `createdAt` (the room's `lastActive` now). Rooms without
    /// an entry are left to be read when asked for. Only for the one who stores every message
    /// (the writer), in the order they were stored.
    pub(super) fn stored(&self, message: &message::Model) {
        let Ok(mut rooms) = self.rooms.lock() else {
            return;
        };
        let Some(recent) = rooms.get_mut(&message.room_id) else {
            return;
        };
        if recent.messages.first().is_some_and(|m| m.id >= message.id) {
            return;
        }
        let messages = Arc::make_mut(&mut recent.messages);
        messages.insert(0, Arc::new(message.clone()));
        messages.truncate(RECENT_MESSAGES as usize);
        recent.at = recent.at.max(message.created_at);
    }

    /// Drops the room's entry: its messages were stored where the cache does not see them.
    pub(super) fn forget(&self, room_id: &str) {
        if let Ok(mut rooms) = self.rooms.lock() {
            rooms.remove(room_id);
        }
    }

    /// Keeps only the rooms `keep` accepts.
    pub(super) fn retain(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut rooms) = self.rooms.lock() {
            rooms.retain(|id, _| keep(id));
        }
    }

    /// How many rooms are kept, for tests.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.rooms.lock().map(|rooms| rooms.len()).unwrap_or(0)
    }
}

/// Reads the newest messages of rooms, at most [`RECENT_MESSAGES`] each (an index range read per
/// room, never the history), with each room's `lastActive` read before them. Rooms that do not
/// exist are left out.
pub(super) async fn read<C: ConnectionTrait>(
    db: &C,
    room_ids: &[&str],
) -> Result<HashMap<String, Recent>, DbErr> {
    let mut found = HashMap::with_capacity(room_ids.len());
    for chunk in room_ids.chunks(ROOMS_PER_READ) {
        let rooms: Vec<(String, i64)> = room::Entity::find()
            .select_only()
            .column(room::Column::Id)
            .column(room::Column::LastActive)
            .filter(room::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        for (id, at) in rooms {
            let recent = Recent {
                at,
                messages: Arc::new(Vec::new()),
            };
            found.insert(id, recent);
        }
        for m in newest_of(db, chunk).await? {
            if let Some(recent) = found.get_mut(&m.room_id) {
                Arc::make_mut(&mut recent.messages).push(Arc::new(m));
            }
        }
    }
    // A compound SELECT promises no order across its parts.
    for recent in found.values_mut() {
        Arc::make_mut(&mut recent.messages)
            .sort_unstable_by_key(|m| std::cmp::Reverse((m.created_at, m.id)));
    }
    Ok(found)
}

/// The newest messages of each room in one statement: one `LIMIT` read per room, joined.
async fn newest_of<C: ConnectionTrait>(
    db: &C,
    room_ids: &[&str],
) -> Result<Vec<message::Model>, DbErr> {
    if room_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = Params::with_capacity(db.get_database_backend(), room_ids.len());
    let reads: Vec<String> = room_ids
        .iter()
        .enumerate()
        .map(|(i, room_id)| {
            format!(
                "SELECT * FROM (SELECT * FROM message WHERE room_id = {} \
                 ORDER BY created_at DESC, id DESC LIMIT {RECENT_MESSAGES}) AS r{i}",
                p.bind(*room_id)
            )
        })
        .collect();
    message::Entity::find()
        .from_raw_sql(p.statement(reads.join(" UNION ALL ")))
        .all(db)
        .await
}

#[cfg(test)]
mod tests {
    use entity::message;
    use sea_orm::{ConnectionTrait, EntityTrait};

    use super::*;
    use crate::store::{NewMessage, NewRoom, PushFanout, Store, temp_pg_store, temp_store};

    async fn say(store: &Store, room_id: &str, content: &str) {
        let new = NewMessage::by_author(room_id, content);
        let fanout = PushFanout::NOBODY_HERE;
        store.messages().add(new, &fanout).await.unwrap().unwrap();
    }

    async fn room(store: &Store, id: &str) -> room::Model {
        store
            .rooms()
            .get(id)
            .await
            .unwrap()
            .expect("the room exists")
    }

    /// What the database holds: the newest messages of the room, newest first.
    async fn in_database(store: &Store, room_id: &str) -> Vec<String> {
        let mut rows = message::Entity::find()
            .filter(message::Column::RoomId.eq(room_id))
            .all(store.db())
            .await
            .unwrap();
        rows.sort_by_key(|m| std::cmp::Reverse((m.created_at, m.id)));
        rows.truncate(RECENT_MESSAGES as usize);
        rows.into_iter().map(|m| m.content).collect()
    }

    async fn shown(store: &Store, room_id: &str) -> (i64, Vec<String>) {
        let room = room(store, room_id).await;
        let recent = store.messages().recent(&[&room]).await.unwrap();
        let recent = &recent[0];
        assert!(recent.at >= room.last_active);
        let contents = recent.messages.iter().map(|m| m.content.clone()).collect();
        (recent.at, contents)
    }

    /// Runs the checks on SQLite (the writer keeps the cache) and, when `BUBBLE_TEST_PG` is set,
    /// on PostgreSQL (entries are read again once the room's `lastActive` moves).
    async fn on_both<F, Fut>(check: F)
    where
        F: Fn(Store) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let (_dir, store) = temp_store().await;
        check(store).await;
        if let Some((_guard, store)) = temp_pg_store().await {
            check(store).await;
        }
    }

    #[tokio::test]
    async fn the_newest_hundred_follow_every_message_newest_first() {
        on_both(|store| async move {
            let a = store
                .rooms()
                .create(NewRoom::by_author("A", 21), &["author"], None)
                .await
                .unwrap();
            let b = store
                .rooms()
                .create(NewRoom::by_author("B", 21), &["author"], None)
                .await
                .unwrap();
            assert_eq!(shown(&store, &a.id).await.1, Vec::<String>::new());
            for i in 0..130 {
                say(&store, &a.id, &format!("a{i}")).await;
                if i % 10 == 0 {
                    let (_, contents) = shown(&store, &a.id).await;
                    assert_eq!(contents, in_database(&store, &a.id).await, "after a{i}");
                }
            }
            say(&store, &b.id, "b0").await;
            let (at, contents) = shown(&store, &a.id).await;
            assert_eq!(contents.len(), 100);
            assert_eq!(contents[0], "a129");
            assert_eq!(contents[99], "a30");
            assert_eq!(at, room(&store, &a.id).await.last_active);
            assert_eq!(shown(&store, &b.id).await.1, ["b0"]);
        })
        .await;
    }

    #[tokio::test]
    async fn several_rooms_at_once_keep_their_order_and_a_missing_room_has_none() {
        on_both(|store| async move {
            let mut rooms = Vec::new();
            for r in 0..5 {
                let room = store
                    .rooms()
                    .create(NewRoom::by_author(&format!("R{r}"), 21), &["author"], None)
                    .await
                    .unwrap();
                for i in 0..=r {
                    say(&store, &room.id, &format!("{r}.{i}")).await;
                }
                rooms.push(
                    room::Entity::find_by_id(room.id)
                        .one(store.db())
                        .await
                        .unwrap()
                        .unwrap(),
                );
            }
            let mut gone = rooms[0].clone();
            gone.id = uuid::Uuid::new_v4().to_string();
            store.messages().keep_recent_of(|_| false);
            let asked: Vec<&room::Model> = rooms.iter().rev().chain([&gone]).collect();
            let recent = store.messages().recent(&asked).await.unwrap();
            for (room, recent) in asked.iter().zip(&recent) {
                let contents: Vec<String> =
                    recent.messages.iter().map(|m| m.content.clone()).collect();
                assert_eq!(contents, in_database(&store, &room.id).await);
            }
            assert!(recent[5].messages.is_empty());
        })
        .await;
    }

    #[tokio::test]
    async fn on_sqlite_the_rooms_shown_are_kept_in_memory() {
        let (_dir, store) = temp_store().await;
        let a = store
            .rooms()
            .create(NewRoom::by_author("A", 21), &["author"], None)
            .await
            .unwrap();
        say(&store, &a.id, "kept").await;
        assert_eq!(shown(&store, &a.id).await.1, ["kept"]);
        say(&store, &a.id, "added").await;
        // Gone from the table behind the store's back, the messages are still shown: the writer
        // added the second to what it kept, nothing was read again.
        store
            .db()
            .execute_unprepared("DELETE FROM message")
            .await
            .unwrap();
        assert_eq!(shown(&store, &a.id).await.1, ["added", "kept"]);
        assert_eq!(store.recent.len(), 1);
        // Forgotten, it is read again.
        store.messages().keep_recent_of(|id| id != a.id);
        assert_eq!(store.recent.len(), 0);
        assert_eq!(shown(&store, &a.id).await.1, Vec::<String>::new());
    }

    #[tokio::test]
    async fn an_entry_is_not_used_for_a_room_that_moved_past_it() {
        let cache = RecentCache::default();
        let old = Recent {
            at: 10,
            messages: Arc::default(),
        };
        cache.put("r", old);
        assert!(cache.get("r", 10).is_some());
        assert!(cache.get("r", 9).is_some(), "newer than asked is fine");
        assert!(cache.get("r", 11).is_none());
        // An older read does not replace a newer entry.
        cache.put(
            "r",
            Recent {
                at: 12,
                messages: Arc::default(),
            },
        );
        cache.put(
            "r",
            Recent {
                at: 11,
                messages: Arc::default(),
            },
        );
        assert_eq!(cache.get("r", 0).map(|r| r.at), Some(12));
    }
}

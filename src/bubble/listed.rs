//! The rooms `list_rooms` shows, each kept as the JSON it is sent as.
//!
//! `list_rooms` is polled every two seconds by every app and shows every listed room with its
//! newest messages and the sockets in it. Each room's part of the answer is kept here and made
//! again only when what it shows has changed: the room's row (whose `lastActive` moves with every
//! message), or who is in the room. Its messages come from the store, which keeps them in memory
//! (see [`Messages::recent`](crate::store::Messages::recent)). A poll then reads the rooms and the people in them, and
//! sends the kept parts one after the other ([`Json::Array`]): its cost grows with what changed
//! since the last poll, not with what is shown.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use entity::room;
use sea_orm::DbErr;
use serde::Serialize;
use serde_json::value::RawValue;

use super::views::{MessageView, RoomView};
use crate::presence::Snapshot;
use crate::socket::wire::{self, AsciiStr, Json};
use crate::store::{Recent, Store};

#[derive(Default)]
pub struct ListedRooms {
    rooms: Mutex<HashMap<String, Listed>>,
}

/// A room's part of the answer, and what it was made from.
struct Listed {
    room: room::Model,
    here: Snapshot,
    /// The JSON of each of its messages, newest first, with their ids: made once per message.
    messages: Vec<(i64, Box<RawValue>)>,
    json: Arc<RawValue>,
}

/// A room as listed: the `Room` shape with its messages and participants.
#[derive(Serialize)]
struct ListedRoom<'a> {
    #[serde(flatten)]
    room: RoomView<'a>,
    messages: Vec<&'a RawValue>,
    participants: Vec<AsciiStr<'a>>,
}

impl ListedRooms {
    /// `rooms` as `list_rooms` shows them, in that order, with the people in each (`here`, by
    /// room id). Rooms that are no longer listed are forgotten, here and in the store's memory of
    /// their messages, so both stay about the size of the list.
    pub async fn answer(
        &self,
        store: &Store,
        rooms: &[room::Model],
        mut here: HashMap<String, Snapshot>,
    ) -> Result<Json, DbErr> {
        let people: Vec<Snapshot> = rooms
            .iter()
            .map(|room| here.remove(&room.id).unwrap_or_default())
            .collect();
        let mut parts: Vec<Option<Arc<RawValue>>> = {
            let kept = self.lock();
            rooms
                .iter()
                .zip(&people)
                .map(|(room, here)| {
                    kept.get(&room.id)
                        .filter(|k| k.room == *room && k.here == *here)
                        .map(|k| k.json.clone())
                })
                .collect()
        };
        let changed: Vec<&room::Model> = rooms
            .iter()
            .zip(&parts)
            .filter(|(_, part)| part.is_none())
            .map(|(room, _)| room)
            .collect();
        if !changed.is_empty() {
            let recent = store.messages().recent(&changed).await?;
            let mut made: HashMap<&str, &Recent> = HashMap::with_capacity(changed.len());
            for (room, recent) in changed.iter().zip(&recent) {
                made.insert(room.id.as_str(), recent);
            }
            for ((room, here), part) in rooms.iter().zip(&people).zip(&mut parts) {
                let Some(recent) = made.get(room.id.as_str()) else {
                    continue;
                };
                let before = self.lock().remove(&room.id).map(|k| k.messages);
                let listed = Listed::make(room, here, recent, before.unwrap_or_default());
                *part = Some(listed.json.clone());
                self.lock().insert(room.id.clone(), listed);
            }
        }
        let listed: HashSet<&str> = rooms.iter().map(|room| room.id.as_str()).collect();
        self.lock().retain(|id, _| listed.contains(id.as_str()));
        store.messages().keep_recent_of(|id| listed.contains(id));
        Ok(Json::Array(parts.into_iter().flatten().collect()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Listed>> {
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Listed {
    /// The room's part of the answer. The JSON of messages already made (`before`) is reused;
    /// only new messages are serialized, and the part is written from the pieces.
    fn make(
        room: &room::Model,
        here: &Snapshot,
        recent: &Recent,
        before: Vec<(i64, Box<RawValue>)>,
    ) -> Self {
        // Messages stored since come first; those made before follow in the same order, less
        // the ones that dropped off the end.
        let newer = before
            .first()
            .and_then(|(newest, _)| recent.messages.iter().position(|m| m.id == *newest))
            .unwrap_or(recent.messages.len());
        let mut before = before.into_iter();
        let messages: Vec<(i64, Box<RawValue>)> = recent
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let made = if i < newer { None } else { before.next() };
                match made {
                    Some(made) if made.0 == m.id => made,
                    _ => (m.id, wire::raw(&MessageView::from(&**m))),
                }
            })
            .collect();
        let json = wire::raw(&ListedRoom {
            room: RoomView::new(room, here.num_users),
            messages: messages.iter().map(|(_, json)| &**json).collect(),
            participants: here.participants.iter().map(|p| AsciiStr(p)).collect(),
        });
        Self {
            room: room.clone(),
            here: here.clone(),
            messages,
            json: json.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use entity::message;
    use serde_json::{Value, json};

    use super::*;
    use crate::bubble::views::RoomDetail;
    use crate::store::{NewMessage, NewRoom, PushFanout, temp_store};

    fn here(sids: &[&str]) -> Snapshot {
        Snapshot {
            participants: sids.iter().map(|s| s.to_string()).collect(),
            num_users: sids.len(),
        }
    }

    async fn say(store: &Store, room_id: &str, content: &str) {
        let new = NewMessage::by_author(room_id, content);
        let fanout = PushFanout::NOBODY_HERE;
        store.messages().add(new, &fanout).await.unwrap().unwrap();
    }

    async fn rooms(store: &Store, ids: &[&str]) -> Vec<room::Model> {
        let mut rooms = Vec::new();
        for id in ids {
            rooms.push(store.rooms().get(id).await.unwrap().unwrap());
        }
        rooms
    }

    fn people(rooms: &[room::Model], sids: &[&[&str]]) -> HashMap<String, Snapshot> {
        rooms
            .iter()
            .zip(sids)
            .map(|(room, sids)| (room.id.clone(), here(sids)))
            .collect()
    }

    fn parts(answer: &Json) -> Vec<Arc<RawValue>> {
        match answer {
            Json::Array(parts) => parts.clone(),
            Json::Value(_) => panic!("a list is an array of parts"),
        }
    }

    /// The same rooms as `join_room` and `view_room` show them, made the plain way.
    async fn expected(store: &Store, rooms: &[room::Model], sids: &[&[&str]]) -> Value {
        let mut shown = Vec::new();
        for (room, sids) in rooms.iter().zip(sids) {
            let newest: Vec<Arc<message::Model>> = store.messages().recent(&[room]).await.unwrap()
                [0]
            .messages
            .iter()
            .cloned()
            .collect();
            let here = here(sids);
            shown.push(serde_json::to_value(RoomDetail::new(room, &newest, &here)).unwrap());
        }
        Value::Array(shown)
    }

    #[tokio::test]
    async fn an_answer_is_the_rooms_as_shown_elsewhere_and_ascii_only() {
        let (_dir, store) = temp_store().await;
        let mut named = NewRoom::by_author("Café 😀", 21);
        named.description = "naïve \"quoted\"".into();
        let a = store
            .rooms()
            .create(named, &["author"], None)
            .await
            .unwrap();
        let b = store
            .rooms()
            .create(NewRoom::by_author("B", 21), &["author"], None)
            .await
            .unwrap();
        say(&store, &a.id, "hello 中文 🎉").await;
        say(&store, &a.id, "plain").await;
        let rooms = rooms(&store, &[&a.id, &b.id]).await;
        let sids: [&[&str]; 2] = [&["s1", "s2"], &[]];
        let listed = ListedRooms::default();
        let answer = listed
            .answer(&store, &rooms, people(&rooms, &sids))
            .await
            .unwrap();
        let text = answer.text();
        assert!(text.is_ascii(), "{text}");
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(got, expected(&store, &rooms, &sids).await);
        assert_eq!(got[0]["roomName"], json!("Café 😀"));
        assert_eq!(got[0]["messages"][0]["content"], json!("plain"));
        assert_eq!(got[0]["messages"][1]["content"], json!("hello 中文 🎉"));
        assert_eq!(got[0]["participants"], json!(["s1", "s2"]));
        assert_eq!(got[0]["numUsers"], json!(2));
    }

    #[tokio::test]
    async fn a_part_is_made_again_only_when_what_it_shows_changed() {
        let (_dir, store) = temp_store().await;
        let mut ids = Vec::new();
        for name in ["A", "B", "C"] {
            let room = store
                .rooms()
                .create(NewRoom::by_author(name, 21), &["author"], None)
                .await
                .unwrap();
            say(&store, &room.id, &format!("first in {name}")).await;
            ids.push(room.id);
        }
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let listed = ListedRooms::default();
        let sids: [&[&str]; 3] = [&["s1"], &["s2"], &[]];
        let list = rooms(&store, &ids).await;
        let first = parts(
            &listed
                .answer(&store, &list, people(&list, &sids))
                .await
                .unwrap(),
        );

        // Nothing changed: the very same parts.
        let again = parts(
            &listed
                .answer(&store, &list, people(&list, &sids))
                .await
                .unwrap(),
        );
        assert!(first.iter().zip(&again).all(|(a, b)| Arc::ptr_eq(a, b)));

        // A message in A, someone joins B: those two are made again, C is not.
        say(&store, ids[0], "second in A").await;
        let sids: [&[&str]; 3] = [&["s1"], &["s2", "s3"], &[]];
        let list = rooms(&store, &ids).await;
        let answer = listed
            .answer(&store, &list, people(&list, &sids))
            .await
            .unwrap();
        let after = parts(&answer);
        assert!(!Arc::ptr_eq(&first[0], &after[0]));
        assert!(!Arc::ptr_eq(&first[1], &after[1]));
        assert!(Arc::ptr_eq(&first[2], &after[2]));
        let got: Value = serde_json::from_str(&answer.text()).unwrap();
        assert_eq!(got, expected(&store, &list, &sids).await);

        // A room that is no longer listed is forgotten.
        let list = rooms(&store, &ids[1..]).await;
        listed
            .answer(&store, &list, people(&list, &sids[1..]))
            .await
            .unwrap();
        assert_eq!(listed.lock().len(), 2);
        assert!(!listed.lock().contains_key(ids[0]));
    }

    /// What making a room's part costs, the first time and again after a message: run with
    /// `cargo test --release --lib render_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn render_cost() {
        let room = room::Model {
            id: uuid::Uuid::new_v4().to_string(),
            name: "list 1".into(),
            description: String::new(),
            room_type: "PUBLIC".into(),
            user_limit: 21,
            categories: "[]".into(),
            is_open: true,
            created_by: "abcdefghijklmnopqrst".into(),
            created_by_bubble_id: uuid::Uuid::new_v4().to_string(),
            last_active: 1_795_420_800_123,
            created_at: 1_795_420_800_123,
            updated_at: 1_795_420_800_123,
        };
        let message = |i: i64| {
            Arc::new(message::Model {
                id: i,
                room_id: room.id.clone(),
                user_id: "abcdefghijklmnopqrst".into(),
                bubble_id: uuid::Uuid::new_v4().to_string(),
                message_type: "MESSAGE".into(),
                content: "x".repeat(64),
                target_user: None,
                target_user_bubble_id: None,
                created_at: 1_795_420_800_123 + i,
                updated_at: 1_795_420_800_123 + i,
            })
        };
        let before = Recent {
            at: room.last_active,
            messages: Arc::new((0..100).rev().map(message).collect()),
        };
        let mut after = before.clone();
        let newest = Arc::make_mut(&mut after.messages);
        newest.insert(0, message(100));
        newest.truncate(100);
        let here = Snapshot::default();
        const ROOMS: u32 = 1000;
        let started = std::time::Instant::now();
        let made: Vec<Listed> = (0..ROOMS)
            .map(|_| Listed::make(&room, &here, &before, Vec::new()))
            .collect();
        let cold = started.elapsed() / ROOMS;
        let started = std::time::Instant::now();
        for listed in made {
            Listed::make(&room, &here, &after, listed.messages);
        }
        let warm = started.elapsed() / ROOMS;
        eprintln!("a room of 100 messages: {cold:?} the first time, {warm:?} after one more");
    }
}

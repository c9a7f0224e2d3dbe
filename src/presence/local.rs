//! Presence in memory, for a single node: which socket is in which room for which person, and
//! which counsellors are online. It dies with the connections it describes; everything that must
//! survive lives in the store.
//!
//! One mutex guards it all, held only for map updates, never across an `.await`, so each method
//! is atomic: a capacity check and the join it allows cannot be split by another join.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_trait::async_trait;
use sea_orm::DbErr;

use super::{Claim, Full, Joined, PresenceBackend, RoomLeft, RoomSocket, num_users};
use crate::ids::{BubbleId, Conn};

#[derive(Default)]
pub struct Local {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    sockets: HashMap<Conn, SocketEntry>,
    rooms: HashMap<String, RoomEntry>,
    counsellors: HashMap<Conn, Counsellor>,
}

struct SocketEntry {
    bubble_id: BubbleId,
    /// Rooms in the order the socket joined them.
    rooms: Vec<String>,
}

struct RoomEntry {
    name: Arc<str>,
    /// Sockets in the order they joined.
    sockets: Vec<RoomSocket>,
}

impl RoomEntry {
    fn has(&self, conn: Conn) -> bool {
        self.sockets.iter().any(|s| s.conn == conn)
    }

    fn has_person(&self, bubble_id: &str) -> bool {
        self.sockets.iter().any(|s| &*s.bubble_id == bubble_id)
    }
}

struct Counsellor {
    id: String,
    name: String,
    /// Open counsellor rooms this socket is in, plus matches being set up.
    rooms: Vec<String>,
    pending: usize,
    idle_since: Instant,
}

impl Local {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The maps stay consistent even if a holder panicked: every method updates them in
        // an order that leaves them usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl PresenceBackend for Local {
    async fn connect(&self, conn: Conn, bubble_id: BubbleId) -> Result<(), DbErr> {
        self.lock().sockets.insert(
            conn,
            SocketEntry {
                bubble_id,
                rooms: Vec::new(),
            },
        );
        Ok(())
    }

    async fn join(
        &self,
        room_id: &str,
        room_name: &str,
        conn: Conn,
        limit: Option<usize>,
    ) -> Result<Result<Joined, Full>, DbErr> {
        let mut inner = self.lock();
        let Some(bubble_id) = inner.sockets.get(&conn).map(|s| s.bubble_id.clone()) else {
            return Ok(Err(Full));
        };
        let room = inner
            .rooms
            .entry(room_id.to_owned())
            .or_insert_with(|| RoomEntry {
                name: room_name.into(),
                sockets: Vec::new(),
            });
        if room.has(conn) {
            return Ok(Ok(Joined::Already));
        }
        let here = room.has_person(&bubble_id);
        if let Some(limit) = limit
            && !here
            && num_users(&room.sockets) >= limit
        {
            if room.sockets.is_empty() {
                inner.rooms.remove(room_id);
            }
            return Ok(Err(Full));
        }
        room.sockets.push(RoomSocket { conn, bubble_id });
        if let Some(socket) = inner.sockets.get_mut(&conn) {
            socket.rooms.push(room_id.to_owned());
        }
        Ok(Ok(if here {
            Joined::Beside
        } else {
            Joined::Arrived
        }))
    }

    async fn name_if_in(&self, room_id: &str, conn: Conn) -> Result<Option<Arc<str>>, DbErr> {
        let inner = self.lock();
        let Some(room) = inner.rooms.get(room_id) else {
            return Ok(None);
        };
        Ok(room.has(conn).then(|| room.name.clone()))
    }

    async fn person_in_room(&self, room_id: &str, sid: &str) -> Result<Option<BubbleId>, DbErr> {
        let inner = self.lock();
        let Some(room) = inner.rooms.get(room_id) else {
            return Ok(None);
        };
        Ok(room
            .sockets
            .iter()
            .find(|s| s.conn.sid.as_str() == sid)
            .map(|s| s.bubble_id.clone()))
    }

    async fn person(&self, conn: Conn) -> Result<Option<BubbleId>, DbErr> {
        Ok(self.lock().sockets.get(&conn).map(|s| s.bubble_id.clone()))
    }

    async fn sockets_of(&self, bubble_id: &str) -> Result<Vec<Conn>, DbErr> {
        let inner = self.lock();
        Ok(inner
            .sockets
            .iter()
            .filter(|(_, s)| &*s.bubble_id == bubble_id)
            .map(|(conn, _)| *conn)
            .collect())
    }

    async fn in_rooms(
        &self,
        room_ids: Vec<String>,
    ) -> Result<HashMap<String, Vec<RoomSocket>>, DbErr> {
        let inner = self.lock();
        Ok(room_ids
            .into_iter()
            .filter_map(|id| {
                let sockets = inner.rooms.get(&id)?.sockets.clone();
                Some((id, sockets))
            })
            .collect())
    }

    async fn rooms_of(&self, conn: Conn) -> Result<Vec<String>, DbErr> {
        let inner = self.lock();
        Ok(inner
            .sockets
            .get(&conn)
            .map(|s| s.rooms.clone())
            .unwrap_or_default())
    }

    async fn leave(&self, room_id: &str, conn: Conn) -> Result<(), DbErr> {
        let mut inner = self.lock();
        if let Some(room) = inner.rooms.get_mut(room_id) {
            room.sockets.retain(|s| s.conn != conn);
            if room.sockets.is_empty() {
                inner.rooms.remove(room_id);
            }
        }
        inner.forget_room(conn, room_id);
        Ok(())
    }

    async fn take_out(
        &self,
        room_id: &str,
        bubble_id: Option<&str>,
    ) -> Result<Vec<RoomSocket>, DbErr> {
        let mut inner = self.lock();
        let Some(room) = inner.rooms.get_mut(room_id) else {
            return Ok(Vec::new());
        };
        let (gone, stay): (Vec<_>, Vec<_>) = room
            .sockets
            .drain(..)
            .partition(|s| bubble_id.is_none_or(|b| &*s.bubble_id == b));
        room.sockets = stay;
        if room.sockets.is_empty() {
            inner.rooms.remove(room_id);
        }
        for socket in &gone {
            inner.forget_room(socket.conn, room_id);
        }
        Ok(gone)
    }

    async fn disconnect(&self, conn: Conn) -> Result<Vec<RoomLeft>, DbErr> {
        let mut inner = self.lock();
        inner.counsellors.remove(&conn);
        let Some(socket) = inner.sockets.remove(&conn) else {
            return Ok(Vec::new());
        };
        let mut left = Vec::with_capacity(socket.rooms.len());
        for room_id in socket.rooms {
            let Some(room) = inner.rooms.get_mut(&room_id) else {
                continue;
            };
            room.sockets.retain(|s| s.conn != conn);
            let person_gone = !room.has_person(&socket.bubble_id);
            if room.sockets.is_empty() {
                inner.rooms.remove(&room_id);
            }
            left.push(RoomLeft {
                room_id,
                person_gone,
            });
        }
        Ok(left)
    }

    async fn counsellor_online(&self, conn: Conn, id: &str, name: &str) -> Result<(), DbErr> {
        let mut inner = self.lock();
        let entry = inner.counsellors.entry(conn).or_insert_with(|| Counsellor {
            id: String::new(),
            name: String::new(),
            rooms: Vec::new(),
            pending: 0,
            idle_since: Instant::now(),
        });
        entry.id = id.to_owned();
        entry.name = name.to_owned();
        Ok(())
    }

    async fn counsellor_offline(&self, conn: Conn) -> Result<(), DbErr> {
        self.lock().counsellors.remove(&conn);
        Ok(())
    }

    async fn counsellor_id(&self, conn: Conn) -> Result<Option<String>, DbErr> {
        Ok(self.lock().counsellors.get(&conn).map(|c| c.id.clone()))
    }

    async fn claim_counsellor(&self) -> Result<Option<Claim>, DbErr> {
        let mut inner = self.lock();
        let Some((conn, chosen)) = inner
            .counsellors
            .iter_mut()
            .min_by_key(|(_, c)| (c.rooms.len() + c.pending, c.idle_since))
        else {
            return Ok(None);
        };
        chosen.pending += 1;
        chosen.idle_since = Instant::now();
        Ok(Some(Claim {
            conn: *conn,
            counsellor_id: chosen.id.clone(),
            name: chosen.name.clone(),
        }))
    }

    async fn settle(&self, claim: &Claim, room_id: Option<&str>) -> Result<(), DbErr> {
        if let Some(c) = self.lock().counsellors.get_mut(&claim.conn) {
            c.pending = c.pending.saturating_sub(1);
            if let Some(room_id) = room_id {
                c.rooms.push(room_id.to_owned());
            }
        }
        Ok(())
    }
}

impl Inner {
    fn forget_room(&mut self, conn: Conn, room_id: &str) {
        if let Some(socket) = self.sockets.get_mut(&conn) {
            socket.rooms.retain(|r| r != room_id);
        }
        if let Some(c) = self.counsellors.get_mut(&conn) {
            c.rooms.retain(|r| r != room_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use socketioxide::socket::Sid;

    use super::*;
    use crate::ids::Ns;

    async fn socket(p: &Local, bubble: &str) -> Conn {
        let conn = Conn {
            ns: Ns::Root,
            sid: Sid::new(),
        };
        p.connect(conn, bubble.into()).await.unwrap();
        conn
    }

    /// Rooms left, as [`PresenceBackend::disconnect`] reports them.
    fn left(rooms: Vec<(String, bool)>) -> Vec<RoomLeft> {
        rooms
            .into_iter()
            .map(|(room_id, person_gone)| RoomLeft {
                room_id,
                person_gone,
            })
            .collect()
    }

    #[tokio::test]
    async fn limit_counts_people_not_sockets() {
        let p = Local::default();
        let (a1, a2, b) = (
            socket(&p, "a").await,
            socket(&p, "a").await,
            socket(&p, "b").await,
        );
        let join = |conn| p.join("r", "R", conn, Some(1));
        assert_eq!(join(a1).await.unwrap(), Ok(Joined::Arrived));
        assert_eq!(
            join(a2).await.unwrap(),
            Ok(Joined::Beside),
            "same person, no new seat"
        );
        assert_eq!(join(b).await.unwrap(), Err(Full));
        assert_eq!(join(a1).await.unwrap(), Ok(Joined::Already));
        let snap = p.snapshot("r").await.unwrap();
        assert_eq!(snap.num_users, 1);
        assert_eq!(
            snap.participants,
            vec![a1.sid.to_string(), a2.sid.to_string()]
        );
    }

    #[tokio::test]
    async fn a_persons_sockets_are_all_found_in_a_room_or_not() {
        let p = Local::default();
        let (a1, a2) = (socket(&p, "a").await, socket(&p, "a").await);
        let _b = socket(&p, "b").await;
        p.join("r", "R", a1, None).await.unwrap().unwrap();
        let mut found = p.sockets_of("a").await.unwrap();
        found.sort_by_key(|c| c.sid.to_string());
        let mut expected = vec![a1, a2];
        expected.sort_by_key(|c| c.sid.to_string());
        assert_eq!(found, expected);
        assert!(p.sockets_of("nobody").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn disconnect_reports_whether_the_person_left() {
        let p = Local::default();
        let (a1, a2) = (socket(&p, "a").await, socket(&p, "a").await);
        p.join("r", "R", a1, None).await.unwrap().unwrap();
        p.join("r", "R", a2, None).await.unwrap().unwrap();
        p.join("s", "S", a1, None).await.unwrap().unwrap();
        assert_eq!(
            p.rooms_of(a1).await.unwrap(),
            vec!["r".to_owned(), "s".to_owned()]
        );
        assert_eq!(
            p.disconnect(a1).await.unwrap(),
            left(vec![("r".to_owned(), false), ("s".to_owned(), true)])
        );
        assert_eq!(p.snapshot("s").await.unwrap().num_users, 0);
        assert_eq!(
            p.sockets_of("a").await.unwrap(),
            vec![a2],
            "a disconnected socket is no longer the person's"
        );
        assert_eq!(p.leave_person("r", "a").await.unwrap(), vec![a2]);
        assert!(p.rooms_of(a2).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn counsellors_are_claimed_least_loaded_first() {
        let p = Local::default();
        let (c1, c2) = (socket(&p, "c1").await, socket(&p, "c2").await);
        p.counsellor_online(c1, "one", "One").await.unwrap();
        p.counsellor_online(c2, "two", "Two").await.unwrap();
        let claim = || async { p.claim_counsellor().await.unwrap().unwrap() };
        let first = claim().await;
        let second = claim().await;
        assert_ne!(first.conn, second.conn, "a pending match counts as load");
        p.attach(&first, "room-1").await.unwrap();
        p.release(&second).await.unwrap();
        assert_eq!(claim().await.conn, second.conn);
        p.disconnect(second.conn).await.unwrap();
        assert_eq!(claim().await.conn, first.conn);
    }
}

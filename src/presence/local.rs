//! Presence in memory, for a single node: which socket is in which room for which person, and
//! which counsellors are online. It dies with the connections it describes; everything that must
//! survive lives in the store.
//!
//! One mutex guards it all, held only for map updates, never across an `.await`, so each method
//! is atomic: a capacity check and the join it allows cannot be split by another join.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use socketioxide::socket::Sid;

use super::{Claim, Full, Joined, Snapshot};
use crate::ids::{BubbleId, Conn, Ns};

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
    sockets: Vec<(Conn, BubbleId)>,
}

impl RoomEntry {
    fn has_person(&self, bubble_id: &str) -> bool {
        self.sockets.iter().any(|(_, b)| &**b == bubble_id)
    }

    fn num_users(&self) -> usize {
        let mut people: Vec<&str> = self.sockets.iter().map(|(_, b)| &**b).collect();
        people.sort_unstable();
        people.dedup();
        people.len()
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

    pub fn connect(&self, conn: Conn, bubble_id: BubbleId) {
        self.lock().sockets.insert(
            conn,
            SocketEntry {
                bubble_id,
                rooms: Vec::new(),
            },
        );
    }

    /// Puts a socket in a room. With a `limit`, refuses when the socket's person is not present
    /// yet and the room already holds `limit` people.
    pub fn join(
        &self,
        room_id: &str,
        room_name: &str,
        conn: Conn,
        limit: Option<usize>,
    ) -> Result<Joined, Full> {
        let mut inner = self.lock();
        let Some(bubble_id) = inner.sockets.get(&conn).map(|s| s.bubble_id.clone()) else {
            return Err(Full);
        };
        let room = inner
            .rooms
            .entry(room_id.to_owned())
            .or_insert_with(|| RoomEntry {
                name: room_name.into(),
                sockets: Vec::new(),
            });
        if room.sockets.iter().any(|(c, _)| *c == conn) {
            return Ok(Joined::Already);
        }
        let here = room.has_person(&bubble_id);
        if let Some(limit) = limit
            && !here
            && room.num_users() >= limit
        {
            if room.sockets.is_empty() {
                inner.rooms.remove(room_id);
            }
            return Err(Full);
        }
        room.sockets.push((conn, bubble_id));
        if let Some(socket) = inner.sockets.get_mut(&conn) {
            socket.rooms.push(room_id.to_owned());
        }
        Ok(if here {
            Joined::Beside
        } else {
            Joined::Arrived
        })
    }

    pub fn contains(&self, room_id: &str, conn: Conn) -> bool {
        self.lock()
            .rooms
            .get(room_id)
            .is_some_and(|r| r.sockets.iter().any(|(c, _)| *c == conn))
    }

    /// The room's name, if the socket is in it.
    pub fn name_if_in(&self, room_id: &str, conn: Conn) -> Option<Arc<str>> {
        let inner = self.lock();
        let room = inner.rooms.get(room_id)?;
        room.sockets
            .iter()
            .any(|(c, _)| *c == conn)
            .then(|| room.name.clone())
    }

    /// The person behind a socket that is in the room.
    pub fn person_in_room(&self, room_id: &str, sid: &str) -> Option<BubbleId> {
        let inner = self.lock();
        let room = inner.rooms.get(room_id)?;
        room.sockets
            .iter()
            .find(|(c, _)| c.sid.as_str() == sid)
            .map(|(_, b)| b.clone())
    }

    /// The person behind a connected socket.
    pub fn person(&self, conn: Conn) -> Option<BubbleId> {
        let inner = self.lock();
        inner.sockets.get(&conn).map(|s| s.bubble_id.clone())
    }

    /// Every connected socket of a person.
    pub fn sockets_of(&self, bubble_id: &str) -> Vec<Conn> {
        let inner = self.lock();
        inner
            .sockets
            .iter()
            .filter(|(_, s)| &*s.bubble_id == bubble_id)
            .map(|(conn, _)| *conn)
            .collect()
    }

    /// The person behind a connected socket id, on any namespace.
    pub fn person_of(&self, sid: &str) -> Option<BubbleId> {
        let inner = self.lock();
        let sid: Sid = sid.parse().ok()?;
        [Ns::Root, Ns::Counsellor]
            .into_iter()
            .find_map(|ns| inner.sockets.get(&Conn { ns, sid }))
            .map(|s| s.bubble_id.clone())
    }

    pub fn snapshot(&self, room_id: &str) -> Snapshot {
        let inner = self.lock();
        inner
            .rooms
            .get(room_id)
            .map(|room| Snapshot {
                participants: room
                    .sockets
                    .iter()
                    .map(|(c, _)| c.sid.to_string())
                    .collect(),
                num_users: room.num_users(),
            })
            .unwrap_or_default()
    }

    /// The people with a socket in the room.
    pub fn people_in(&self, room_id: &str) -> Vec<BubbleId> {
        let inner = self.lock();
        let Some(room) = inner.rooms.get(room_id) else {
            return Vec::new();
        };
        let mut people: Vec<BubbleId> = room.sockets.iter().map(|(_, b)| b.clone()).collect();
        people.sort_unstable();
        people.dedup();
        people
    }

    /// The rooms a socket is in, in the order it joined them.
    pub fn rooms_of(&self, conn: Conn) -> Vec<String> {
        self.lock()
            .sockets
            .get(&conn)
            .map(|s| s.rooms.clone())
            .unwrap_or_default()
    }

    /// Takes one socket out of a room.
    pub fn leave(&self, room_id: &str, conn: Conn) {
        let mut inner = self.lock();
        if let Some(room) = inner.rooms.get_mut(room_id) {
            room.sockets.retain(|(c, _)| *c != conn);
            if room.sockets.is_empty() {
                inner.rooms.remove(room_id);
            }
        }
        inner.forget_room(conn, room_id);
    }

    /// Takes every socket of a person out of a room; returns those sockets.
    pub fn leave_person(&self, room_id: &str, bubble_id: &str) -> Vec<Conn> {
        let mut inner = self.lock();
        let Some(room) = inner.rooms.get_mut(room_id) else {
            return Vec::new();
        };
        let (gone, stay): (Vec<_>, Vec<_>) =
            room.sockets.drain(..).partition(|(_, b)| &**b == bubble_id);
        room.sockets = stay;
        if room.sockets.is_empty() {
            inner.rooms.remove(room_id);
        }
        let gone: Vec<Conn> = gone.into_iter().map(|(c, _)| c).collect();
        for conn in &gone {
            inner.forget_room(*conn, room_id);
        }
        gone
    }

    /// Empties a room; returns who was in it.
    pub fn clear_room(&self, room_id: &str) -> Vec<(Conn, BubbleId)> {
        let mut inner = self.lock();
        let Some(room) = inner.rooms.remove(room_id) else {
            return Vec::new();
        };
        for (conn, _) in &room.sockets {
            inner.forget_room(*conn, room_id);
        }
        room.sockets
    }

    /// Forgets a socket. Returns the rooms it was in, each with whether its person has now left
    /// the room (no other socket of theirs is in it).
    pub fn disconnect(&self, conn: Conn) -> Vec<(String, bool)> {
        let mut inner = self.lock();
        inner.counsellors.remove(&conn);
        let Some(socket) = inner.sockets.remove(&conn) else {
            return Vec::new();
        };
        let mut left = Vec::with_capacity(socket.rooms.len());
        for room_id in socket.rooms {
            let Some(room) = inner.rooms.get_mut(&room_id) else {
                continue;
            };
            room.sockets.retain(|(c, _)| *c != conn);
            let person_gone = !room.has_person(&socket.bubble_id);
            if room.sockets.is_empty() {
                inner.rooms.remove(&room_id);
            }
            left.push((room_id, person_gone));
        }
        left
    }

    /// Marks a socket as an online counsellor (again).
    pub fn counsellor_online(&self, conn: Conn, id: &str, name: &str) {
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
    }

    pub fn counsellor_offline(&self, conn: Conn) {
        self.lock().counsellors.remove(&conn);
    }

    /// The counsellor id of a socket that is online as one.
    pub fn counsellor_id(&self, conn: Conn) -> Option<String> {
        self.lock().counsellors.get(&conn).map(|c| c.id.clone())
    }

    /// Chooses the online counsellor with the fewest open counsellor rooms, ties going to the
    /// one idle longest, and counts the match against them at once so that concurrent requests
    /// spread out. Follow with [`Self::attach`] or [`Self::release`].
    pub fn claim_counsellor(&self) -> Option<Claim> {
        let mut inner = self.lock();
        let (conn, chosen) = inner
            .counsellors
            .iter_mut()
            .min_by_key(|(_, c)| (c.rooms.len() + c.pending, c.idle_since))?;
        chosen.pending += 1;
        chosen.idle_since = Instant::now();
        Some(Claim {
            conn: *conn,
            counsellor_id: chosen.id.clone(),
            name: chosen.name.clone(),
        })
    }

    /// The claimed match now has its room.
    pub fn attach(&self, claim: &Claim, room_id: &str) {
        if let Some(c) = self.lock().counsellors.get_mut(&claim.conn) {
            c.pending = c.pending.saturating_sub(1);
            c.rooms.push(room_id.to_owned());
        }
    }

    /// The claimed match did not happen.
    pub fn release(&self, claim: &Claim) {
        if let Some(c) = self.lock().counsellors.get_mut(&claim.conn) {
            c.pending = c.pending.saturating_sub(1);
        }
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
    use super::*;

    fn socket(p: &Local, bubble: &str) -> Conn {
        let conn = Conn {
            ns: Ns::Root,
            sid: Sid::new(),
        };
        p.connect(conn, bubble.into());
        conn
    }

    #[test]
    fn limit_counts_people_not_sockets() {
        let p = Local::default();
        let (a1, a2, b) = (socket(&p, "a"), socket(&p, "a"), socket(&p, "b"));
        assert_eq!(p.join("r", "R", a1, Some(1)), Ok(Joined::Arrived));
        assert_eq!(
            p.join("r", "R", a2, Some(1)),
            Ok(Joined::Beside),
            "same person, no new seat"
        );
        assert_eq!(p.join("r", "R", b, Some(1)), Err(Full));
        assert_eq!(p.join("r", "R", a1, Some(1)), Ok(Joined::Already));
        let snap = p.snapshot("r");
        assert_eq!(snap.num_users, 1);
        assert_eq!(
            snap.participants,
            vec![a1.sid.to_string(), a2.sid.to_string()]
        );
    }

    #[test]
    fn a_persons_sockets_are_all_found_in_a_room_or_not() {
        let p = Local::default();
        let (a1, a2, _b) = (socket(&p, "a"), socket(&p, "a"), socket(&p, "b"));
        p.join("r", "R", a1, None).unwrap();
        let mut found = p.sockets_of("a");
        found.sort_by_key(|c| c.sid.to_string());
        let mut expected = vec![a1, a2];
        expected.sort_by_key(|c| c.sid.to_string());
        assert_eq!(found, expected);
        assert!(p.sockets_of("nobody").is_empty());
    }

    #[test]
    fn disconnect_reports_whether_the_person_left() {
        let p = Local::default();
        let (a1, a2) = (socket(&p, "a"), socket(&p, "a"));
        p.join("r", "R", a1, None).unwrap();
        p.join("r", "R", a2, None).unwrap();
        p.join("s", "S", a1, None).unwrap();
        assert_eq!(p.rooms_of(a1), vec!["r".to_owned(), "s".to_owned()]);
        assert_eq!(
            p.disconnect(a1),
            vec![("r".to_owned(), false), ("s".to_owned(), true)]
        );
        assert_eq!(p.snapshot("s").num_users, 0);
        assert_eq!(
            p.sockets_of("a"),
            vec![a2],
            "a disconnected socket is no longer the person's"
        );
        assert_eq!(p.leave_person("r", "a"), vec![a2]);
        assert!(p.rooms_of(a2).is_empty());
    }

    #[test]
    fn counsellors_are_claimed_least_loaded_first() {
        let p = Local::default();
        let (c1, c2) = (socket(&p, "c1"), socket(&p, "c2"));
        p.counsellor_online(c1, "one", "One");
        p.counsellor_online(c2, "two", "Two");
        let first = p.claim_counsellor().unwrap();
        let second = p.claim_counsellor().unwrap();
        assert_ne!(first.conn, second.conn, "a pending match counts as load");
        p.attach(&first, "room-1");
        p.release(&second);
        assert_eq!(p.claim_counsellor().unwrap().conn, second.conn);
        p.disconnect(second.conn);
        assert_eq!(p.claim_counsellor().unwrap().conn, first.conn);
    }
}

//! Who is connected where: which socket is in which room for which person, and which counsellors
//! are online. A single node keeps it in memory ([`Local`]); nodes linked by an adapter share it
//! in the database ([`SharedPresence`]), where any node can read it and the presence of a node
//! that died is removed by a survivor (see [`crate::cluster`]).
//!
//! Both implement [`PresenceBackend`], each operation once; the few that are computed from
//! others are the trait's default methods. Every operation a backend writes is atomic: a capacity
//! check and the join it allows cannot be split by another join, on any node.
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::DbErr;

use crate::ids::{BubbleId, Conn, Ns};
use crate::store::SharedPresence;

mod local;

pub use local::Local;

/// How a socket entered a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// It was in already: nothing changed.
    Already,
    /// It joined where another socket of its person already was: the person did not arrive.
    Beside,
    /// It joined, and its person arrived with it.
    Arrived,
}

/// A room would exceed its user limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// A socket in a room, with its person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSocket {
    pub conn: Conn,
    pub bubble_id: BubbleId,
}

/// A room a socket was in when it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLeft {
    pub room_id: String,
    /// No other socket of the person is in the room now: the person has left it.
    pub person_gone: bool,
}

/// The people in a room now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Socket ids, in join order.
    pub participants: Vec<String>,
    /// Distinct people.
    pub num_users: usize,
}

/// An online counsellor chosen for a match.
#[derive(Debug, Clone)]
pub struct Claim {
    pub conn: Conn,
    pub counsellor_id: String,
    pub name: String,
}

/// Presence, in memory or shared: every operation, written once by each.
#[async_trait]
pub trait PresenceBackend: Send + Sync {
    async fn connect(&self, conn: Conn, bubble_id: BubbleId) -> Result<(), DbErr>;

    /// Puts a socket in a room. With a `limit`, refuses when the socket's person is not present
    /// yet and the room already holds `limit` people (and when the socket is not connected).
    /// Says whether the person arrived with it.
    async fn join(
        &self,
        room_id: &str,
        room_name: &str,
        conn: Conn,
        limit: Option<usize>,
    ) -> Result<Result<Joined, Full>, DbErr>;

    /// The room's name, if the socket is in it.
    async fn name_if_in(&self, room_id: &str, conn: Conn) -> Result<Option<Arc<str>>, DbErr>;

    /// The person behind a socket id, on either namespace, that is in the room.
    async fn person_in_room(&self, room_id: &str, sid: &str) -> Result<Option<BubbleId>, DbErr>;

    /// The person behind a connected socket.
    async fn person(&self, conn: Conn) -> Result<Option<BubbleId>, DbErr>;

    /// Every connected socket of a person, on any namespace and any node.
    async fn sockets_of(&self, bubble_id: &str) -> Result<Vec<Conn>, DbErr>;

    /// The sockets in each of the rooms, in join order (rooms nobody is in may be missing).
    async fn in_rooms(
        &self,
        room_ids: Vec<String>,
    ) -> Result<HashMap<String, Vec<RoomSocket>>, DbErr>;

    /// The rooms a socket is in, in the order it joined them.
    async fn rooms_of(&self, conn: Conn) -> Result<Vec<String>, DbErr>;

    /// Takes one socket out of a room.
    async fn leave(&self, room_id: &str, conn: Conn) -> Result<(), DbErr>;

    /// Takes sockets out of a room: every socket of `bubble_id`, or with none, everyone.
    /// Returns who was taken out, in join order.
    async fn take_out(
        &self,
        room_id: &str,
        bubble_id: Option<&str>,
    ) -> Result<Vec<RoomSocket>, DbErr>;

    /// Forgets a socket. Returns the rooms it was in, in join order, each with whether its person
    /// has now left the room (no other socket of theirs is in it, on any node).
    async fn disconnect(&self, conn: Conn) -> Result<Vec<RoomLeft>, DbErr>;

    /// Marks a socket as an online counsellor (again).
    async fn counsellor_online(&self, conn: Conn, id: &str, name: &str) -> Result<(), DbErr>;

    async fn counsellor_offline(&self, conn: Conn) -> Result<(), DbErr>;

    /// The counsellor id of a socket that is online as one.
    async fn counsellor_id(&self, conn: Conn) -> Result<Option<String>, DbErr>;

    /// Chooses the online counsellor with the fewest open counsellor rooms plus pending matches,
    /// ties going to the one idle longest, and counts the match against them at once so that
    /// concurrent requests spread out. Follow with [`PresenceBackend::attach`] or
    /// [`PresenceBackend::release`].
    async fn claim_counsellor(&self) -> Result<Option<Claim>, DbErr>;

    /// Settles a claimed match: attached to `room_id`, or released with none.
    async fn settle(&self, claim: &Claim, room_id: Option<&str>) -> Result<(), DbErr>;

    async fn contains(&self, room_id: &str, conn: Conn) -> Result<bool, DbErr> {
        Ok(self.name_if_in(room_id, conn).await?.is_some())
    }

    /// The person behind a connected socket id, on any namespace (`/` first).
    async fn person_of(&self, sid: &str) -> Result<Option<BubbleId>, DbErr> {
        let Ok(sid) = sid.parse() else {
            return Ok(None);
        };
        for ns in [Ns::Root, Ns::Counsellor] {
            if let Some(person) = self.person(Conn { ns, sid }).await? {
                return Ok(Some(person));
            }
        }
        Ok(None)
    }

    async fn snapshot(&self, room_id: &str) -> Result<Snapshot, DbErr> {
        let mut all = self.snapshots(vec![room_id.to_owned()]).await?;
        Ok(all.remove(room_id).unwrap_or_default())
    }

    /// The people in each of the rooms (rooms nobody is in may be missing).
    async fn snapshots(&self, room_ids: Vec<String>) -> Result<HashMap<String, Snapshot>, DbErr> {
        Ok(self
            .in_rooms(room_ids)
            .await?
            .into_iter()
            .map(|(id, sockets)| (id, Snapshot::of(&sockets)))
            .collect())
    }

    /// The people with a socket in the room.
    async fn people_in(&self, room_id: &str) -> Result<Vec<BubbleId>, DbErr> {
        let mut rooms = self.in_rooms(vec![room_id.to_owned()]).await?;
        let sockets = rooms.remove(room_id).unwrap_or_default();
        let mut people: Vec<BubbleId> = sockets.into_iter().map(|s| s.bubble_id).collect();
        people.sort_unstable();
        people.dedup();
        Ok(people)
    }

    /// Takes every socket of a person out of a room; returns those sockets.
    async fn leave_person(&self, room_id: &str, bubble_id: &str) -> Result<Vec<Conn>, DbErr> {
        let gone = self.take_out(room_id, Some(bubble_id)).await?;
        Ok(gone.into_iter().map(|s| s.conn).collect())
    }

    /// Empties a room; returns who was in it.
    async fn clear_room(&self, room_id: &str) -> Result<Vec<RoomSocket>, DbErr> {
        self.take_out(room_id, None).await
    }

    /// The claimed match now has its room.
    async fn attach(&self, claim: &Claim, room_id: &str) -> Result<(), DbErr> {
        self.settle(claim, Some(room_id)).await
    }

    /// The claimed match did not happen.
    async fn release(&self, claim: &Claim) -> Result<(), DbErr> {
        self.settle(claim, None).await
    }
}

impl Snapshot {
    fn of(sockets: &[RoomSocket]) -> Self {
        Self {
            participants: sockets.iter().map(|s| s.conn.sid.to_string()).collect(),
            num_users: num_users(sockets),
        }
    }
}

/// How many distinct people the sockets belong to.
fn num_users(sockets: &[RoomSocket]) -> usize {
    let mut people: Vec<&str> = sockets.iter().map(|s| &*s.bubble_id).collect();
    people.sort_unstable();
    people.dedup();
    people.len()
}

/// The presence of this node: in memory, or shared with the other nodes of its cluster. Its
/// operations are those of [`PresenceBackend`].
pub enum Presence {
    Local(Local),
    Shared(SharedPresence),
}

impl Default for Presence {
    fn default() -> Self {
        Self::Local(Local::default())
    }
}

impl Deref for Presence {
    type Target = dyn PresenceBackend;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::Local(local) => local,
            Self::Shared(shared) => shared,
        }
    }
}

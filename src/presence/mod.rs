//! Who is connected where: which socket is in which room for which person, and which counsellors
//! are online. A single node keeps it in memory ([`Local`]); nodes linked by an adapter share it
//! in the database ([`SharedPresence`]), where any node can read it and the presence of a node
//! that died is removed by a survivor (see [`crate::cluster`]).
//!
//! Every method is atomic: a capacity check and the join it allows cannot be split by another
//! join, on any node.
use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::DbErr;

use crate::ids::{BubbleId, Conn};
pub use crate::store::Joined;
use crate::store::{RoomSocket, SharedPresence};

mod local;

pub use local::Local;

/// A room would exceed its user limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

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

/// Presence, in memory or shared.
pub enum Presence {
    Local(Local),
    Shared {
        shared: SharedPresence,
        /// After this long without a heartbeat, a node's counsellors are no longer matched.
        node_timeout_ms: i64,
    },
}

impl Default for Presence {
    fn default() -> Self {
        Self::Local(Local::default())
    }
}

impl Presence {
    pub async fn connect(&self, conn: Conn, bubble_id: BubbleId) -> Result<(), DbErr> {
        match self {
            Self::Local(p) => {
                p.connect(conn, bubble_id);
                Ok(())
            }
            Self::Shared { shared, .. } => {
                shared
                    .connect(conn.ns.path(), conn.sid.as_str(), &bubble_id)
                    .await
            }
        }
    }

    /// Puts a socket in a room. With a `limit`, refuses when the socket's person is not present
    /// yet and the room already holds `limit` people. Says whether the person arrived with it.
    pub async fn join(
        &self,
        room_id: &str,
        room_name: &str,
        conn: Conn,
        limit: Option<usize>,
    ) -> Result<Result<Joined, Full>, DbErr> {
        match self {
            Self::Local(p) => Ok(p.join(room_id, room_name, conn, limit)),
            Self::Shared { shared, .. } => Ok(shared
                .join(room_id, room_name, conn.ns.path(), conn.sid.as_str(), limit)
                .await?
                .ok_or(Full)),
        }
    }

    pub async fn contains(&self, room_id: &str, conn: Conn) -> Result<bool, DbErr> {
        Ok(self.name_if_in(room_id, conn).await?.is_some())
    }

    /// The room's name, if the socket is in it.
    pub async fn name_if_in(&self, room_id: &str, conn: Conn) -> Result<Option<Arc<str>>, DbErr> {
        match self {
            Self::Local(p) => Ok(p.name_if_in(room_id, conn)),
            Self::Shared { shared, .. } => Ok(shared
                .name_if_in(room_id, conn.ns.path(), conn.sid.as_str())
                .await?
                .map(Into::into)),
        }
    }

    /// The person behind a socket that is in the room.
    pub async fn person_in_room(
        &self,
        room_id: &str,
        sid: &str,
    ) -> Result<Option<BubbleId>, DbErr> {
        match self {
            Self::Local(p) => Ok(p.person_in_room(room_id, sid)),
            Self::Shared { shared, .. } => {
                Ok(shared.person_in_room(room_id, sid).await?.map(Into::into))
            }
        }
    }

    /// The person behind a connected socket.
    pub async fn person(&self, conn: Conn) -> Result<Option<BubbleId>, DbErr> {
        match self {
            Self::Local(p) => Ok(p.person(conn)),
            Self::Shared { shared, .. } => Ok(shared
                .person(Some(conn.ns.path()), conn.sid.as_str())
                .await?
                .map(Into::into)),
        }
    }

    /// Every connected socket of a person, on any namespace and any node.
    pub async fn sockets_of(&self, bubble_id: &str) -> Result<Vec<Conn>, DbErr> {
        match self {
            Self::Local(p) => Ok(p.sockets_of(bubble_id)),
            Self::Shared { shared, .. } => Ok(shared
                .sockets_of(bubble_id)
                .await?
                .iter()
                .filter_map(|(ns, sid)| Conn::parse(ns, sid))
                .collect()),
        }
    }

    /// The person behind a connected socket id, on any namespace.
    pub async fn person_of(&self, sid: &str) -> Result<Option<BubbleId>, DbErr> {
        match self {
            Self::Local(p) => Ok(p.person_of(sid)),
            Self::Shared { shared, .. } => Ok(shared.person(None, sid).await?.map(Into::into)),
        }
    }

    pub async fn snapshot(&self, room_id: &str) -> Result<Snapshot, DbErr> {
        let mut all = self.snapshots(vec![room_id.to_owned()]).await?;
        Ok(all.remove(room_id).unwrap_or_default())
    }

    /// The people in each of the rooms (rooms nobody is in may be missing).
    pub async fn snapshots(
        &self,
        room_ids: Vec<String>,
    ) -> Result<HashMap<String, Snapshot>, DbErr> {
        match self {
            Self::Local(p) => Ok(room_ids
                .into_iter()
                .map(|id| {
                    let snapshot = p.snapshot(&id);
                    (id, snapshot)
                })
                .collect()),
            Self::Shared { shared, .. } => Ok(shared
                .in_rooms(room_ids)
                .await?
                .into_iter()
                .map(|(id, sockets)| (id, Snapshot::of(&sockets)))
                .collect()),
        }
    }

    /// The people with a socket in the room.
    pub async fn people_in(&self, room_id: &str) -> Result<Vec<BubbleId>, DbErr> {
        match self {
            Self::Local(p) => Ok(p.people_in(room_id)),
            Self::Shared { shared, .. } => {
                let mut rooms = shared.in_rooms(vec![room_id.to_owned()]).await?;
                let mut people: Vec<BubbleId> = rooms
                    .remove(room_id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(_, _, person)| person.into())
                    .collect();
                people.sort_unstable();
                people.dedup();
                Ok(people)
            }
        }
    }

    /// The rooms a socket is in, in the order it joined them.
    pub async fn rooms_of(&self, conn: Conn) -> Result<Vec<String>, DbErr> {
        match self {
            Self::Local(p) => Ok(p.rooms_of(conn)),
            Self::Shared { shared, .. } => shared.rooms_of(conn.ns.path(), conn.sid.as_str()).await,
        }
    }

    /// Takes one socket out of a room.
    pub async fn leave(&self, room_id: &str, conn: Conn) -> Result<(), DbErr> {
        match self {
            Self::Local(p) => {
                p.leave(room_id, conn);
                Ok(())
            }
            Self::Shared { shared, .. } => {
                shared
                    .leave(room_id, conn.ns.path(), conn.sid.as_str())
                    .await
            }
        }
    }

    /// Takes every socket of a person out of a room; returns those sockets.
    pub async fn leave_person(&self, room_id: &str, bubble_id: &str) -> Result<Vec<Conn>, DbErr> {
        match self {
            Self::Local(p) => Ok(p.leave_person(room_id, bubble_id)),
            Self::Shared { shared, .. } => Ok(shared
                .remove_from_room(room_id, Some(bubble_id))
                .await?
                .iter()
                .filter_map(|(ns, sid, _)| Conn::parse(ns, sid))
                .collect()),
        }
    }

    /// Empties a room; returns who was in it.
    pub async fn clear_room(&self, room_id: &str) -> Result<Vec<(Conn, BubbleId)>, DbErr> {
        match self {
            Self::Local(p) => Ok(p.clear_room(room_id)),
            Self::Shared { shared, .. } => Ok(shared
                .remove_from_room(room_id, None)
                .await?
                .into_iter()
                .filter_map(|(ns, sid, person)| Some((Conn::parse(&ns, &sid)?, person.into())))
                .collect()),
        }
    }

    /// Forgets a socket. Returns the rooms it was in, each with whether its person has now left
    /// the room (no other socket of theirs is in it).
    pub async fn disconnect(&self, conn: Conn) -> Result<Vec<(String, bool)>, DbErr> {
        match self {
            Self::Local(p) => Ok(p.disconnect(conn)),
            Self::Shared { shared, .. } => {
                shared.disconnect(conn.ns.path(), conn.sid.as_str()).await
            }
        }
    }

    /// Marks a socket as an online counsellor (again).
    pub async fn counsellor_online(&self, conn: Conn, id: &str, name: &str) -> Result<(), DbErr> {
        match self {
            Self::Local(p) => {
                p.counsellor_online(conn, id, name);
                Ok(())
            }
            Self::Shared { shared, .. } => {
                shared
                    .counsellor_online(conn.ns.path(), conn.sid.as_str(), id, name)
                    .await
            }
        }
    }

    pub async fn counsellor_offline(&self, conn: Conn) -> Result<(), DbErr> {
        match self {
            Self::Local(p) => {
                p.counsellor_offline(conn);
                Ok(())
            }
            Self::Shared { shared, .. } => {
                shared
                    .counsellor_offline(conn.ns.path(), conn.sid.as_str())
                    .await
            }
        }
    }

    /// The counsellor id of a socket that is online as one.
    pub async fn counsellor_id(&self, conn: Conn) -> Result<Option<String>, DbErr> {
        match self {
            Self::Local(p) => Ok(p.counsellor_id(conn)),
            Self::Shared { shared, .. } => {
                shared
                    .counsellor_id(conn.ns.path(), conn.sid.as_str())
                    .await
            }
        }
    }

    /// Chooses the online counsellor with the fewest open counsellor rooms, ties going to the
    /// one idle longest, and counts the match against them at once so that concurrent requests
    /// spread out. Follow with [`Presence::attach`] or [`Presence::release`].
    pub async fn claim_counsellor(&self) -> Result<Option<Claim>, DbErr> {
        match self {
            Self::Local(p) => Ok(p.claim_counsellor()),
            Self::Shared {
                shared,
                node_timeout_ms,
            } => {
                let Some((ns, sid, counsellor_id, name)) =
                    shared.claim_counsellor(*node_timeout_ms).await?
                else {
                    return Ok(None);
                };
                let Some(conn) = Conn::parse(&ns, &sid) else {
                    return Ok(None);
                };
                Ok(Some(Claim {
                    conn,
                    counsellor_id,
                    name,
                }))
            }
        }
    }

    /// The claimed match now has its room.
    pub async fn attach(&self, claim: &Claim, room_id: &str) -> Result<(), DbErr> {
        match self {
            Self::Local(p) => {
                p.attach(claim, room_id);
                Ok(())
            }
            Self::Shared { shared, .. } => {
                let (ns, sid) = (claim.conn.ns.path(), claim.conn.sid.as_str());
                shared.settle_claim(ns, sid, Some(room_id)).await
            }
        }
    }

    /// The claimed match did not happen.
    pub async fn release(&self, claim: &Claim) -> Result<(), DbErr> {
        match self {
            Self::Local(p) => {
                p.release(claim);
                Ok(())
            }
            Self::Shared { shared, .. } => {
                let (ns, sid) = (claim.conn.ns.path(), claim.conn.sid.as_str());
                shared.settle_claim(ns, sid, None).await
            }
        }
    }
}

impl Snapshot {
    fn of(sockets: &[RoomSocket]) -> Self {
        let mut people: Vec<&str> = sockets.iter().map(|(_, _, b)| b.as_str()).collect();
        people.sort_unstable();
        people.dedup();
        Self {
            participants: sockets.iter().map(|(_, sid, _)| sid.clone()).collect(),
            num_users: people.len(),
        }
    }
}

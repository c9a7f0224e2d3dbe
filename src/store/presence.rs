//! Presence shared by the nodes of a cluster, in PostgreSQL (several nodes always share one): the
//! [`PresenceBackend`] of linked nodes. Rows name a socket by its namespace's path and its id as
//! text, read back into a [`Conn`] in one place ([`conn`]).
//!
//! Each node writes the rows of its own sockets and tags them with its id; any node reads them
//! all. Checks and the writes they allow run in one transaction under an advisory lock (on the
//! room for a join, on the person for a departure, on matching for a claim), so that two nodes
//! cannot both let the last seat of a room go, or both miss that a person left.
//!
//! Liveness: each node stamps its `presence_node` row every heartbeat; a node whose stamp is older
//! than the timeout is dead, and the first survivor to delete its row removes its presence.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, QueryResult, Statement,
    TransactionTrait, Value,
};

use crate::clock::now_ms;
use crate::ids::{BubbleId, Conn};
use crate::presence::{Claim, Full, Joined, PresenceBackend, RoomLeft, RoomSocket};

/// What the death of a node took away: per room, its sockets there, each with whether its person
/// is now gone from the room (no socket of theirs left there on any node).
#[derive(Debug, Default)]
pub struct Departed {
    pub sockets: Vec<DepartedSocket>,
}

/// A socket of a dead node, in one of its rooms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartedSocket {
    pub room_id: String,
    pub conn: Conn,
    pub bubble_id: BubbleId,
    /// No socket of the person is left in the room, on any node: the person has left it.
    pub person_gone: bool,
}

/// The presence rows of one node, and read access to everyone's.
#[derive(Clone, Debug)]
pub struct SharedPresence {
    db: DatabaseConnection,
    node: String,
    /// After this long without a heartbeat, a node's counsellors are no longer matched.
    node_timeout_ms: i64,
}

fn stmt(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

/// A list bound as one JSON array, read in SQL with `IN (SELECT jsonb_array_elements_text($n))`.
fn list(items: Vec<String>) -> Value {
    serde_json::Value::from(items).into()
}

fn text(row: &QueryResult, col: &str) -> Result<String, DbErr> {
    row.try_get::<String>("", col)
}

/// The socket a row names in its `ns` and `sid` columns: the one place where the text of the
/// database becomes ids. `None` for a row that names no socket of this server.
fn conn(row: &QueryResult) -> Result<Option<Conn>, DbErr> {
    Ok(Conn::parse(&text(row, "ns")?, &text(row, "sid")?))
}

/// A row's socket (see [`conn`]) with its person, from column `bubble_id`.
fn room_socket(row: &QueryResult) -> Result<Option<RoomSocket>, DbErr> {
    let Some(conn) = conn(row)? else {
        return Ok(None);
    };
    let bubble_id = text(row, "bubble_id")?.into();
    Ok(Some(RoomSocket { conn, bubble_id }))
}

/// A socket as the rows name it: `[ns path, sid]`.
fn key(conn: Conn) -> [Value; 2] {
    [conn.ns.path().into(), conn.sid.as_str().into()]
}

/// Takes a transaction-scoped advisory lock named by `key`.
async fn lock(txn: &impl ConnectionTrait, key: String) -> Result<(), DbErr> {
    txn.execute_raw(stmt(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        [key.into()],
    ))
    .await?;
    Ok(())
}

impl super::Store {
    /// The shared presence of node `node`, which takes a node unseen for `node_timeout_ms` for
    /// dead. Only for PostgreSQL.
    pub fn shared_presence(
        &self,
        node: &str,
        node_timeout_ms: i64,
    ) -> Result<SharedPresence, DbErr> {
        if self.db.get_database_backend() != DatabaseBackend::Postgres {
            return Err(DbErr::Custom(
                "several nodes need a PostgreSQL database".into(),
            ));
        }
        Ok(SharedPresence {
            db: self.db.clone(),
            node: node.to_owned(),
            node_timeout_ms,
        })
    }
}

impl SharedPresence {
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Stamps this node alive. Returns `false` when its row was gone, that is when the others
    /// declared it dead and removed its presence; the row is then made again.
    pub async fn heartbeat(&self) -> Result<bool, DbErr> {
        let now = now_ms();
        let done = self
            .db
            .execute_raw(stmt(
                "UPDATE presence_node SET seen_at = $2 WHERE id = $1",
                [self.node.clone().into(), now.into()],
            ))
            .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        self.db
            .execute_raw(stmt(
                "INSERT INTO presence_node (id, seen_at) VALUES ($1, $2) ON CONFLICT (id) \
                 DO UPDATE SET seen_at = EXCLUDED.seen_at",
                [self.node.clone().into(), now.into()],
            ))
            .await?;
        Ok(false)
    }

    /// Ids of the other nodes unseen for `timeout_ms`.
    pub async fn dead_nodes(&self, timeout_ms: i64) -> Result<Vec<String>, DbErr> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT id FROM presence_node WHERE seen_at < $1 AND id <> $2",
                [(now_ms() - timeout_ms).into(), self.node.clone().into()],
            ))
            .await?;
        rows.iter().map(|r| text(r, "id")).collect()
    }

    /// Removes a node and every presence row of its: what its sockets left behind, and which of
    /// their persons are now gone from each room. When several nodes remove the same one, one
    /// does it and the others get nothing.
    pub async fn remove_node(&self, node: &str) -> Result<Departed, DbErr> {
        let txn = self.db.begin().await?;
        let n = || -> Value { node.to_owned().into() };
        let removed = txn
            .execute_raw(stmt("DELETE FROM presence_node WHERE id = $1", [n()]))
            .await?;
        if removed.rows_affected() == 0 {
            return Ok(Departed::default());
        }
        for table in ["presence_counsellor", "presence_match", "presence_socket"] {
            let sql = format!("DELETE FROM {table} WHERE node_id = $1");
            txn.execute_raw(stmt(&sql, [n()])).await?;
        }
        let rows = txn
            .query_all_raw(stmt(
                "DELETE FROM presence_room WHERE node_id = $1 \
                 RETURNING room_id, ns, sid, bubble_id, id",
                [n()],
            ))
            .await?;
        let mut left: Vec<(i64, String, String, Option<Conn>)> = Vec::new();
        for row in &rows {
            left.push((
                row.try_get("", "id")?,
                text(row, "room_id")?,
                text(row, "bubble_id")?,
                conn(row)?,
            ));
        }
        left.sort_by_key(|l| l.0);
        let rooms: Vec<String> = left.iter().map(|l| l.1.clone()).collect();
        let still = txn
            .query_all_raw(stmt(
                "SELECT DISTINCT room_id, bubble_id FROM presence_room \
                 WHERE room_id IN (SELECT jsonb_array_elements_text($1))",
                [list(rooms)],
            ))
            .await?;
        let mut present = HashSet::new();
        for row in &still {
            present.insert((text(row, "room_id")?, text(row, "bubble_id")?));
        }
        txn.commit().await?;
        // A person with several sockets on the dead node leaves once: with the last of them.
        let mut departed = Departed::default();
        let mut last: HashMap<(String, String), usize> = HashMap::new();
        for (i, (_, room, person, _)) in left.iter().enumerate() {
            last.insert((room.clone(), person.clone()), i);
        }
        for (i, (_, room, person, conn)) in left.into_iter().enumerate() {
            let key = (room, person);
            let person_gone = !present.contains(&key) && last.get(&key) == Some(&i);
            let Some(conn) = conn else { continue };
            departed.sockets.push(DepartedSocket {
                room_id: key.0,
                conn,
                bubble_id: key.1.into(),
                person_gone,
            });
        }
        Ok(departed)
    }
}

#[async_trait]
impl PresenceBackend for SharedPresence {
    async fn connect(&self, conn: Conn, bubble_id: BubbleId) -> Result<(), DbErr> {
        let [ns, sid] = key(conn);
        self.db
            .execute_raw(stmt(
                "INSERT INTO presence_socket (ns, sid, node_id, bubble_id) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (ns, sid) DO NOTHING",
                [ns, sid, self.node.clone().into(), (*bubble_id).into()],
            ))
            .await?;
        Ok(())
    }

    async fn join(
        &self,
        room_id: &str,
        room_name: &str,
        conn: Conn,
        limit: Option<usize>,
    ) -> Result<Result<Joined, Full>, DbErr> {
        let [ns, sid] = key(conn);
        let txn = self.db.begin().await?;
        lock(&txn, format!("room:{room_id}")).await?;
        let Some(socket) = txn
            .query_one_raw(stmt(
                "SELECT bubble_id, node_id FROM presence_socket WHERE ns = $1 AND sid = $2",
                key(conn),
            ))
            .await?
        else {
            return Ok(Err(Full));
        };
        let bubble_id = text(&socket, "bubble_id")?;
        let node_id = text(&socket, "node_id")?;
        let row = txn
            .query_one_raw(stmt(
                "SELECT COUNT(DISTINCT bubble_id) AS people, \
                 COALESCE(BOOL_OR(bubble_id = $2), FALSE) AS here, \
                 COALESCE(BOOL_OR(ns = $3 AND sid = $4), FALSE) AS socket_in \
                 FROM presence_room WHERE room_id = $1",
                [
                    room_id.into(),
                    bubble_id.clone().into(),
                    ns.clone(),
                    sid.clone(),
                ],
            ))
            .await?;
        let (people, here, socket_in) = match row {
            Some(r) => (
                r.try_get::<i64>("", "people")?,
                r.try_get::<bool>("", "here")?,
                r.try_get::<bool>("", "socket_in")?,
            ),
            None => (0, false, false),
        };
        if socket_in {
            return Ok(Ok(Joined::Already));
        }
        if let Some(limit) = limit
            && !here
            && usize::try_from(people).unwrap_or(usize::MAX) >= limit
        {
            return Ok(Err(Full));
        }
        txn.execute_raw(stmt(
            "INSERT INTO presence_room (room_id, room_name, ns, sid, node_id, bubble_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            [
                room_id.into(),
                room_name.into(),
                ns,
                sid,
                node_id.into(),
                bubble_id.into(),
            ],
        ))
        .await?;
        txn.commit().await?;
        Ok(Ok(if here {
            Joined::Beside
        } else {
            Joined::Arrived
        }))
    }

    async fn name_if_in(&self, room_id: &str, conn: Conn) -> Result<Option<Arc<str>>, DbErr> {
        let [ns, sid] = key(conn);
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT room_name FROM presence_room WHERE room_id = $1 AND ns = $2 AND sid = $3",
                [room_id.into(), ns, sid],
            ))
            .await?;
        row.map(|r| Ok(text(&r, "room_name")?.into())).transpose()
    }

    async fn person_in_room(&self, room_id: &str, sid: &str) -> Result<Option<BubbleId>, DbErr> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT bubble_id FROM presence_room WHERE room_id = $1 AND sid = $2 LIMIT 1",
                [room_id.into(), sid.into()],
            ))
            .await?;
        row.map(|r| Ok(text(&r, "bubble_id")?.into())).transpose()
    }

    async fn person(&self, conn: Conn) -> Result<Option<BubbleId>, DbErr> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT bubble_id FROM presence_socket WHERE ns = $1 AND sid = $2",
                key(conn),
            ))
            .await?;
        row.map(|r| Ok(text(&r, "bubble_id")?.into())).transpose()
    }

    /// Oldest first.
    async fn sockets_of(&self, bubble_id: &str) -> Result<Vec<Conn>, DbErr> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT ns, sid FROM presence_socket WHERE bubble_id = $1 ORDER BY ns, sid",
                [bubble_id.into()],
            ))
            .await?;
        let mut sockets = Vec::with_capacity(rows.len());
        for row in &rows {
            sockets.extend(conn(row)?);
        }
        Ok(sockets)
    }

    async fn in_rooms(
        &self,
        room_ids: Vec<String>,
    ) -> Result<HashMap<String, Vec<RoomSocket>>, DbErr> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT room_id, ns, sid, bubble_id FROM presence_room \
                 WHERE room_id IN (SELECT jsonb_array_elements_text($1)) ORDER BY id",
                [list(room_ids)],
            ))
            .await?;
        let mut rooms: HashMap<String, Vec<RoomSocket>> = HashMap::new();
        for row in &rows {
            let room = rooms.entry(text(row, "room_id")?).or_default();
            room.extend(room_socket(row)?);
        }
        Ok(rooms)
    }

    async fn rooms_of(&self, conn: Conn) -> Result<Vec<String>, DbErr> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT room_id FROM presence_room WHERE ns = $1 AND sid = $2 ORDER BY id",
                key(conn),
            ))
            .await?;
        rows.iter().map(|r| text(r, "room_id")).collect()
    }

    async fn leave(&self, room_id: &str, conn: Conn) -> Result<(), DbErr> {
        let [ns, sid] = key(conn);
        let txn = self.db.begin().await?;
        for table in ["presence_room", "presence_match"] {
            let sql = format!("DELETE FROM {table} WHERE room_id = $1 AND ns = $2 AND sid = $3");
            txn.execute_raw(stmt(&sql, [room_id.into(), ns.clone(), sid.clone()]))
                .await?;
        }
        txn.commit().await
    }

    async fn take_out(
        &self,
        room_id: &str,
        bubble_id: Option<&str>,
    ) -> Result<Vec<RoomSocket>, DbErr> {
        let txn = self.db.begin().await?;
        if let Some(person) = bubble_id {
            lock(&txn, format!("person:{person}")).await?;
        }
        let rows = txn
            .query_all_raw(stmt(
                "DELETE FROM presence_room WHERE room_id = $1 \
                 AND ($2::text IS NULL OR bubble_id = $2) RETURNING id, ns, sid, bubble_id",
                [room_id.into(), bubble_id.map(str::to_owned).into()],
            ))
            .await?;
        let mut gone = Vec::with_capacity(rows.len());
        for row in &rows {
            gone.push((
                row.try_get::<i64>("", "id")?,
                text(row, "sid")?,
                room_socket(row)?,
            ));
        }
        gone.sort_by_key(|(id, _, _)| *id);
        let sids: Vec<String> = gone.iter().map(|(_, sid, _)| sid.clone()).collect();
        txn.execute_raw(stmt(
            "DELETE FROM presence_match \
             WHERE room_id = $1 AND sid IN (SELECT jsonb_array_elements_text($2))",
            [room_id.into(), list(sids)],
        ))
        .await?;
        txn.commit().await?;
        Ok(gone.into_iter().filter_map(|(_, _, s)| s).collect())
    }

    async fn disconnect(&self, conn: Conn) -> Result<Vec<RoomLeft>, DbErr> {
        let txn = self.db.begin().await?;
        let Some(socket) = txn
            .query_one_raw(stmt(
                "DELETE FROM presence_socket WHERE ns = $1 AND sid = $2 RETURNING bubble_id",
                key(conn),
            ))
            .await?
        else {
            txn.commit().await?;
            return Ok(Vec::new());
        };
        let bubble_id = text(&socket, "bubble_id")?;
        lock(&txn, format!("person:{bubble_id}")).await?;
        for table in ["presence_counsellor", "presence_match"] {
            let sql = format!("DELETE FROM {table} WHERE ns = $1 AND sid = $2");
            txn.execute_raw(stmt(&sql, key(conn))).await?;
        }
        let rows = txn
            .query_all_raw(stmt(
                "DELETE FROM presence_room WHERE ns = $1 AND sid = $2 RETURNING id, room_id",
                key(conn),
            ))
            .await?;
        let mut rooms = Vec::with_capacity(rows.len());
        for row in &rows {
            rooms.push((row.try_get::<i64>("", "id")?, text(row, "room_id")?));
        }
        rooms.sort();
        let ids: Vec<String> = rooms.iter().map(|(_, r)| r.clone()).collect();
        let still = txn
            .query_all_raw(stmt(
                "SELECT DISTINCT room_id FROM presence_room \
                 WHERE room_id IN (SELECT jsonb_array_elements_text($1)) AND bubble_id = $2",
                [list(ids), bubble_id.into()],
            ))
            .await?;
        let still: Vec<String> = still
            .iter()
            .map(|r| text(r, "room_id"))
            .collect::<Result<_, _>>()?;
        txn.commit().await?;
        Ok(rooms
            .into_iter()
            .map(|(_, room_id)| RoomLeft {
                person_gone: !still.contains(&room_id),
                room_id,
            })
            .collect())
    }

    async fn counsellor_online(&self, conn: Conn, id: &str, name: &str) -> Result<(), DbErr> {
        let [ns, sid] = key(conn);
        self.db
            .execute_raw(stmt(
                "INSERT INTO presence_counsellor \
                 (ns, sid, node_id, counsellor_id, name, pending, idle_since) \
                 VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT (ns, sid) \
                 DO UPDATE SET counsellor_id = EXCLUDED.counsellor_id, name = EXCLUDED.name",
                [
                    ns,
                    sid,
                    self.node.clone().into(),
                    id.into(),
                    name.into(),
                    now_ms().into(),
                ],
            ))
            .await?;
        Ok(())
    }

    async fn counsellor_offline(&self, conn: Conn) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        for table in ["presence_counsellor", "presence_match"] {
            let sql = format!("DELETE FROM {table} WHERE ns = $1 AND sid = $2");
            txn.execute_raw(stmt(&sql, key(conn))).await?;
        }
        txn.commit().await
    }

    async fn counsellor_id(&self, conn: Conn) -> Result<Option<String>, DbErr> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT counsellor_id FROM presence_counsellor WHERE ns = $1 AND sid = $2",
                key(conn),
            ))
            .await?;
        row.map(|r| text(&r, "counsellor_id")).transpose()
    }

    /// Counsellors on a node unseen for the node timeout are not chosen; matched rooms count
    /// from `presence_match`.
    async fn claim_counsellor(&self) -> Result<Option<Claim>, DbErr> {
        let txn = self.db.begin().await?;
        lock(&txn, "bubble:matching".to_owned()).await?;
        let Some(row) = txn
            .query_one_raw(stmt(
                "SELECT c.ns, c.sid, c.counsellor_id, c.name FROM presence_counsellor c \
                 JOIN presence_node n ON n.id = c.node_id AND n.seen_at >= $1 \
                 ORDER BY c.pending + (SELECT COUNT(*) FROM presence_match m \
                 WHERE m.ns = c.ns AND m.sid = c.sid), c.idle_since LIMIT 1",
                [(now_ms() - self.node_timeout_ms).into()],
            ))
            .await?
        else {
            txn.commit().await?;
            return Ok(None);
        };
        txn.execute_raw(stmt(
            "UPDATE presence_counsellor SET pending = pending + 1, idle_since = $3 \
             WHERE ns = $1 AND sid = $2",
            [
                text(&row, "ns")?.into(),
                text(&row, "sid")?.into(),
                now_ms().into(),
            ],
        ))
        .await?;
        txn.commit().await?;
        let Some(conn) = conn(&row)? else {
            return Ok(None);
        };
        Ok(Some(Claim {
            conn,
            counsellor_id: text(&row, "counsellor_id")?,
            name: text(&row, "name")?,
        }))
    }

    async fn settle(&self, claim: &Claim, room_id: Option<&str>) -> Result<(), DbErr> {
        let [ns, sid] = key(claim.conn);
        let txn = self.db.begin().await?;
        let node = txn
            .query_one_raw(stmt(
                "UPDATE presence_counsellor SET pending = GREATEST(pending - 1, 0) \
                 WHERE ns = $1 AND sid = $2 RETURNING node_id",
                [ns.clone(), sid.clone()],
            ))
            .await?;
        if let (Some(room_id), Some(node)) = (room_id, node) {
            txn.execute_raw(stmt(
                "INSERT INTO presence_match (ns, sid, room_id, node_id) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
                [ns, sid, room_id.into(), text(&node, "node_id")?.into()],
            ))
            .await?;
        }
        txn.commit().await
    }
}

#[cfg(test)]
mod tests {
    use socketioxide::socket::Sid;

    use super::*;
    use crate::ids::Ns;
    use crate::store::temp_pg_store;

    /// Two nodes' presence on one database, when `BUBBLE_TEST_PG` names a server.
    async fn two_nodes() -> Option<(crate::store::PgGuard, SharedPresence, SharedPresence)> {
        let (guard, store) = temp_pg_store().await?;
        let a = store.shared_presence("node-a", 60_000).expect("postgres");
        let b = store.shared_presence("node-b", 60_000).expect("postgres");
        assert!(
            !a.heartbeat().await.unwrap(),
            "first heartbeat makes the row"
        );
        assert!(!b.heartbeat().await.unwrap());
        assert!(a.heartbeat().await.unwrap());
        Some((guard, a, b))
    }

    /// A new socket on namespace `ns`.
    fn socket(ns: &str) -> Conn {
        Conn {
            ns: Ns::from_path(ns).expect("a namespace"),
            sid: Sid::new(),
        }
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
    async fn shared_presence_is_refused_on_sqlite() {
        let (_dir, store) = crate::store::temp_store().await;
        assert!(store.shared_presence("n", 60_000).is_err());
    }

    #[tokio::test]
    async fn a_dead_node_leaves_once_per_person_and_only_where_they_are_gone() {
        let Some((_db, a, b)) = two_nodes().await else {
            eprintln!("BUBBLE_TEST_PG not set: skipped");
            return;
        };
        // Person p has two sockets on node b and one on node a; person q one on node b.
        let (pa, pb1, pb2, qb) = (socket("/"), socket("/"), socket("/"), socket("/counsellor"));
        a.connect(pa, "p".into()).await.unwrap();
        b.connect(pb1, "p".into()).await.unwrap();
        b.connect(pb2, "p".into()).await.unwrap();
        b.connect(qb, "q".into()).await.unwrap();
        for (room, conn) in [
            ("r1", pb1),
            ("r1", pb2),
            ("r1", qb),
            ("r2", pa),
            ("r2", pb1),
        ] {
            assert!(b.join(room, "R", conn, None).await.unwrap().is_ok());
        }
        b.counsellor_online(qb, "q", "Q").await.unwrap();

        assert!(a.dead_nodes(60_000).await.unwrap().is_empty());
        let mut dead = a.dead_nodes(-60_000).await.unwrap();
        dead.sort();
        assert_eq!(dead, vec!["node-b".to_owned()], "never itself");
        let departed = a.remove_node("node-b").await.unwrap();
        let gone: Vec<_> = departed
            .sockets
            .iter()
            .filter(|s| s.person_gone)
            .map(|s| (s.room_id.as_str(), s.conn, &*s.bubble_id))
            .collect();
        assert_eq!(
            gone,
            vec![("r1", pb2, "p"), ("r1", qb, "q")],
            "p leaves r1 once, with its last socket; p stays in r2 through node a"
        );
        assert_eq!(
            departed.sockets.len(),
            4,
            "pa is on node a, whoever joined it"
        );
        assert!(
            b.remove_node("node-b").await.unwrap().sockets.is_empty(),
            "a second remover gets nothing"
        );
        let left = a.in_rooms(vec!["r1".into(), "r2".into()]).await.unwrap();
        assert!(!left.contains_key("r1"));
        assert_eq!(
            left["r2"],
            vec![RoomSocket {
                conn: pa,
                bubble_id: "p".into()
            }]
        );
        assert!(a.claim_counsellor().await.unwrap().is_none());
        assert_eq!(a.person_of(pb1.sid.as_str()).await.unwrap(), None);
        // The dead node, alive after all, finds out and starts again.
        assert!(!b.heartbeat().await.unwrap());
    }

    #[tokio::test]
    async fn concurrent_joins_on_two_nodes_never_pass_the_limit() {
        let Some((_db, a, b)) = two_nodes().await else {
            eprintln!("BUBBLE_TEST_PG not set: skipped");
            return;
        };
        let mut joins = Vec::new();
        for i in 0..12 {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            let conn = socket("/");
            node.connect(conn, format!("person{i}").into())
                .await
                .unwrap();
            joins.push(tokio::spawn(async move {
                node.join("room", "R", conn, Some(5)).await.unwrap()
            }));
        }
        let mut admitted = 0;
        for join in joins {
            if join.await.unwrap() == Ok(Joined::Arrived) {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 5);
        let here = a.in_rooms(vec!["room".into()]).await.unwrap();
        assert_eq!(here["room"].len(), 5);
    }

    #[tokio::test]
    async fn a_disconnect_reports_the_rooms_its_person_left() {
        let Some((_db, a, b)) = two_nodes().await else {
            eprintln!("BUBBLE_TEST_PG not set: skipped");
            return;
        };
        let (x1, x2) = (socket("/"), socket("/"));
        a.connect(x1, "x".into()).await.unwrap();
        b.connect(x2, "x".into()).await.unwrap();
        let joined = a.join("r", "R", x1, None).await.unwrap();
        assert_eq!(joined, Ok(Joined::Arrived));
        a.join("s", "S", x1, None).await.unwrap().unwrap();
        let joined = b.join("r", "R", x2, None).await.unwrap();
        assert_eq!(
            joined,
            Ok(Joined::Beside),
            "the person was in r through node a"
        );
        let joined = b.join("r", "R", x2, None).await.unwrap();
        assert_eq!(joined, Ok(Joined::Already));
        let mut sockets = b.sockets_of("x").await.unwrap();
        sockets.sort_by_key(|c| c.sid.to_string());
        let mut both = vec![x1, x2];
        both.sort_by_key(|c| c.sid.to_string());
        assert_eq!(sockets, both, "both nodes' sockets of the person");
        assert_eq!(a.rooms_of(x1).await.unwrap(), vec!["r", "s"]);
        assert_eq!(
            a.disconnect(x1).await.unwrap(),
            left(vec![("r".to_owned(), false), ("s".to_owned(), true)])
        );
        assert_eq!(
            b.disconnect(x2).await.unwrap(),
            left(vec![("r".to_owned(), true)])
        );
        assert!(a.disconnect(x2).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn claims_go_to_the_least_loaded_counsellor_on_any_node() {
        let Some((_db, a, b)) = two_nodes().await else {
            eprintln!("BUBBLE_TEST_PG not set: skipped");
            return;
        };
        let (c1, c2) = (socket("/counsellor"), socket("/counsellor"));
        a.connect(c1, "one".into()).await.unwrap();
        b.connect(c2, "two".into()).await.unwrap();
        a.counsellor_online(c1, "one", "One").await.unwrap();
        b.counsellor_online(c2, "two", "Two").await.unwrap();
        let first = a.claim_counsellor().await.unwrap().unwrap();
        let second = b.claim_counsellor().await.unwrap().unwrap();
        assert_ne!(first.conn, second.conn, "a pending claim counts as load");
        a.attach(&first, "room-1").await.unwrap();
        b.release(&second).await.unwrap();
        let third = a.claim_counsellor().await.unwrap().unwrap();
        assert_eq!(third.conn, second.conn, "the one without a room");
        b.release(&third).await.unwrap();
        b.counsellor_offline(third.conn).await.unwrap();
        let fourth = b.claim_counsellor().await.unwrap().unwrap();
        assert_eq!(fourth.conn, first.conn);
        assert_eq!(b.counsellor_id(c1).await.unwrap().as_deref(), Some("one"));
    }
}

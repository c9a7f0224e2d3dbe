//! Presence shared by the nodes of a cluster, in PostgreSQL (several nodes always share one).
//!
//! Each node writes the rows of its own sockets and tags them with its id; any node reads them
//! all. Checks and the writes they allow run in one transaction under an advisory lock (on the
//! room for a join, on the person for a departure, on matching for a claim), so that two nodes
//! cannot both let the last seat of a room go, or both miss that a person left.
//!
//! Liveness: each node stamps its `presence_node` row every heartbeat; a node whose stamp is older
//! than the timeout is dead, and the first survivor to delete its row removes its presence.
use std::collections::HashMap;

use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, QueryResult, Statement,
    TransactionTrait, Value,
};

use crate::clock::now_ms;

/// A socket's row in a room, as the presence layer names it: `(ns path, sid, bubble_id)`.
pub type RoomSocket = (String, String, String);

/// What the death of a node took away: per room, its sockets there, each with whether its person
/// is now gone from the room (no socket of theirs left there on any node).
#[derive(Debug, Default)]
pub struct Departed {
    /// `(room_id, ns, sid, bubble_id, person_gone)`.
    pub sockets: Vec<(String, String, String, String, bool)>,
}

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

/// The presence rows of one node, and read access to everyone's.
#[derive(Clone, Debug)]
pub struct SharedPresence {
    db: DatabaseConnection,
    node: String,
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
    /// The shared presence of node `node`. Only for PostgreSQL.
    pub fn shared_presence(&self, node: &str) -> Result<SharedPresence, DbErr> {
        if self.db.get_database_backend() != DatabaseBackend::Postgres {
            return Err(DbErr::Custom(
                "several nodes need a PostgreSQL database".into(),
            ));
        }
        Ok(SharedPresence {
            db: self.db.clone(),
            node: node.to_owned(),
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
        let mut left: Vec<(i64, String, String, String, String)> = Vec::new();
        for row in &rows {
            left.push((
                row.try_get("", "id")?,
                text(row, "room_id")?,
                text(row, "ns")?,
                text(row, "sid")?,
                text(row, "bubble_id")?,
            ));
        }
        left.sort();
        let rooms: Vec<String> = left.iter().map(|l| l.1.clone()).collect();
        let still = txn
            .query_all_raw(stmt(
                "SELECT DISTINCT room_id, bubble_id FROM presence_room \
                 WHERE room_id IN (SELECT jsonb_array_elements_text($1))",
                [list(rooms)],
            ))
            .await?;
        let mut present = std::collections::HashSet::new();
        for row in &still {
            present.insert((text(row, "room_id")?, text(row, "bubble_id")?));
        }
        txn.commit().await?;
        // A person with several sockets on the dead node leaves once: with the last of them.
        let mut departed = Departed::default();
        let mut last: HashMap<(String, String), usize> = HashMap::new();
        for (i, (_, room, _, _, person)) in left.iter().enumerate() {
            last.insert((room.clone(), person.clone()), i);
        }
        for (i, (_, room, ns, sid, person)) in left.into_iter().enumerate() {
            let key = (room, person);
            let gone = !present.contains(&key) && last.get(&key) == Some(&i);
            departed.sockets.push((key.0, ns, sid, key.1, gone));
        }
        Ok(departed)
    }

    pub async fn connect(&self, ns: &str, sid: &str, bubble_id: &str) -> Result<(), DbErr> {
        self.db
            .execute_raw(stmt(
                "INSERT INTO presence_socket (ns, sid, node_id, bubble_id) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (ns, sid) DO NOTHING",
                [
                    ns.into(),
                    sid.into(),
                    self.node.clone().into(),
                    bubble_id.into(),
                ],
            ))
            .await?;
        Ok(())
    }

    /// Puts a socket in a room: `Ok(None)` when the socket is unknown or the room is full for a
    /// newcomer, else how it entered.
    pub async fn join(
        &self,
        room_id: &str,
        room_name: &str,
        ns: &str,
        sid: &str,
        limit: Option<usize>,
    ) -> Result<Option<Joined>, DbErr> {
        let txn = self.db.begin().await?;
        lock(&txn, format!("room:{room_id}")).await?;
        let Some(socket) = txn
            .query_one_raw(stmt(
                "SELECT bubble_id, node_id FROM presence_socket WHERE ns = $1 AND sid = $2",
                [ns.into(), sid.into()],
            ))
            .await?
        else {
            return Ok(None);
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
                    ns.into(),
                    sid.into(),
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
            return Ok(Some(Joined::Already));
        }
        if let Some(limit) = limit
            && !here
            && usize::try_from(people).unwrap_or(usize::MAX) >= limit
        {
            return Ok(None);
        }
        txn.execute_raw(stmt(
            "INSERT INTO presence_room (room_id, room_name, ns, sid, node_id, bubble_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            [
                room_id.into(),
                room_name.into(),
                ns.into(),
                sid.into(),
                node_id.into(),
                bubble_id.into(),
            ],
        ))
        .await?;
        txn.commit().await?;
        Ok(Some(if here {
            Joined::Beside
        } else {
            Joined::Arrived
        }))
    }

    /// The room's name, if the socket is in it.
    pub async fn name_if_in(
        &self,
        room_id: &str,
        ns: &str,
        sid: &str,
    ) -> Result<Option<String>, DbErr> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT room_name FROM presence_room WHERE room_id = $1 AND ns = $2 AND sid = $3",
                [room_id.into(), ns.into(), sid.into()],
            ))
            .await?;
        row.map(|r| text(&r, "room_name")).transpose()
    }

    /// The person behind socket id `sid` in the room, on either namespace.
    pub async fn person_in_room(&self, room_id: &str, sid: &str) -> Result<Option<String>, DbErr> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT bubble_id FROM presence_room WHERE room_id = $1 AND sid = $2 LIMIT 1",
                [room_id.into(), sid.into()],
            ))
            .await?;
        row.map(|r| text(&r, "bubble_id")).transpose()
    }

    /// The person behind a connected socket; with no `ns`, on either namespace.
    pub async fn person(&self, ns: Option<&str>, sid: &str) -> Result<Option<String>, DbErr> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT bubble_id FROM presence_socket \
                 WHERE sid = $1 AND ($2::text IS NULL OR ns = $2) LIMIT 1",
                [sid.into(), ns.map(str::to_owned).into()],
            ))
            .await?;
        row.map(|r| text(&r, "bubble_id")).transpose()
    }

    /// Every connected socket of a person, on any node: `(ns path, sid)`, oldest first.
    pub async fn sockets_of(&self, bubble_id: &str) -> Result<Vec<(String, String)>, DbErr> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT ns, sid FROM presence_socket WHERE bubble_id = $1 ORDER BY ns, sid",
                [bubble_id.into()],
            ))
            .await?;
        rows.iter()
            .map(|r| Ok((text(r, "ns")?, text(r, "sid")?)))
            .collect()
    }

    /// The sockets in each of the rooms, in join order.
    pub async fn in_rooms(
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
            rooms.entry(text(row, "room_id")?).or_default().push((
                text(row, "ns")?,
                text(row, "sid")?,
                text(row, "bubble_id")?,
            ));
        }
        Ok(rooms)
    }

    /// The rooms a socket is in, in the order it joined them.
    pub async fn rooms_of(&self, ns: &str, sid: &str) -> Result<Vec<String>, DbErr> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT room_id FROM presence_room WHERE ns = $1 AND sid = $2 ORDER BY id",
                [ns.into(), sid.into()],
            ))
            .await?;
        rows.iter().map(|r| text(r, "room_id")).collect()
    }

    /// Takes one socket out of a room.
    pub async fn leave(&self, room_id: &str, ns: &str, sid: &str) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        for table in ["presence_room", "presence_match"] {
            let sql = format!("DELETE FROM {table} WHERE room_id = $1 AND ns = $2 AND sid = $3");
            txn.execute_raw(stmt(&sql, [room_id.into(), ns.into(), sid.into()]))
                .await?;
        }
        txn.commit().await
    }

    /// Takes sockets out of a room: every socket of `bubble_id`, or with none, everyone.
    /// Returns who was taken out, in join order.
    pub async fn remove_from_room(
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
                (text(row, "ns")?, text(row, "sid")?, text(row, "bubble_id")?),
            ));
        }
        gone.sort_by_key(|(id, _)| *id);
        let sids: Vec<String> = gone.iter().map(|(_, s)| s.1.clone()).collect();
        txn.execute_raw(stmt(
            "DELETE FROM presence_match \
             WHERE room_id = $1 AND sid IN (SELECT jsonb_array_elements_text($2))",
            [room_id.into(), list(sids)],
        ))
        .await?;
        txn.commit().await?;
        Ok(gone.into_iter().map(|(_, s)| s).collect())
    }

    /// Forgets a socket. Returns the rooms it was in, in join order, each with whether its person
    /// has now left the room (no other socket of theirs is in it, on any node).
    pub async fn disconnect(&self, ns: &str, sid: &str) -> Result<Vec<(String, bool)>, DbErr> {
        let txn = self.db.begin().await?;
        let key = || -> [Value; 2] { [ns.into(), sid.into()] };
        let Some(socket) = txn
            .query_one_raw(stmt(
                "DELETE FROM presence_socket WHERE ns = $1 AND sid = $2 RETURNING bubble_id",
                key(),
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
            txn.execute_raw(stmt(&sql, key())).await?;
        }
        let rows = txn
            .query_all_raw(stmt(
                "DELETE FROM presence_room WHERE ns = $1 AND sid = $2 RETURNING id, room_id",
                key(),
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
            .map(|(_, room)| {
                let gone = !still.contains(&room);
                (room, gone)
            })
            .collect())
    }

    /// Marks a socket as an online counsellor (again).
    pub async fn counsellor_online(
        &self,
        ns: &str,
        sid: &str,
        id: &str,
        name: &str,
    ) -> Result<(), DbErr> {
        self.db
            .execute_raw(stmt(
                "INSERT INTO presence_counsellor \
                 (ns, sid, node_id, counsellor_id, name, pending, idle_since) \
                 VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT (ns, sid) \
                 DO UPDATE SET counsellor_id = EXCLUDED.counsellor_id, name = EXCLUDED.name",
                [
                    ns.into(),
                    sid.into(),
                    self.node.clone().into(),
                    id.into(),
                    name.into(),
                    now_ms().into(),
                ],
            ))
            .await?;
        Ok(())
    }

    pub async fn counsellor_offline(&self, ns: &str, sid: &str) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        for table in ["presence_counsellor", "presence_match"] {
            let sql = format!("DELETE FROM {table} WHERE ns = $1 AND sid = $2");
            txn.execute_raw(stmt(&sql, [ns.into(), sid.into()])).await?;
        }
        txn.commit().await
    }

    /// The counsellor id of a socket that is online as one.
    pub async fn counsellor_id(&self, ns: &str, sid: &str) -> Result<Option<String>, DbErr> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT counsellor_id FROM presence_counsellor WHERE ns = $1 AND sid = $2",
                [ns.into(), sid.into()],
            ))
            .await?;
        row.map(|r| text(&r, "counsellor_id")).transpose()
    }

    /// Chooses the online counsellor, on a live node, with the fewest matched rooms plus pending
    /// matches, ties going to the one idle longest, and counts the match against them at once.
    /// Returns `(ns, sid, counsellor_id, name)`.
    pub async fn claim_counsellor(
        &self,
        timeout_ms: i64,
    ) -> Result<Option<(String, String, String, String)>, DbErr> {
        let txn = self.db.begin().await?;
        lock(&txn, "bubble:matching".to_owned()).await?;
        let Some(row) = txn
            .query_one_raw(stmt(
                "SELECT c.ns, c.sid, c.counsellor_id, c.name FROM presence_counsellor c \
                 JOIN presence_node n ON n.id = c.node_id AND n.seen_at >= $1 \
                 ORDER BY c.pending + (SELECT COUNT(*) FROM presence_match m \
                 WHERE m.ns = c.ns AND m.sid = c.sid), c.idle_since LIMIT 1",
                [(now_ms() - timeout_ms).into()],
            ))
            .await?
        else {
            txn.commit().await?;
            return Ok(None);
        };
        let claim = (
            text(&row, "ns")?,
            text(&row, "sid")?,
            text(&row, "counsellor_id")?,
            text(&row, "name")?,
        );
        txn.execute_raw(stmt(
            "UPDATE presence_counsellor SET pending = pending + 1, idle_since = $3 \
             WHERE ns = $1 AND sid = $2",
            [
                claim.0.clone().into(),
                claim.1.clone().into(),
                now_ms().into(),
            ],
        ))
        .await?;
        txn.commit().await?;
        Ok(Some(claim))
    }

    /// Settles a claimed match: attached to `room_id`, or released with none.
    pub async fn settle_claim(
        &self,
        ns: &str,
        sid: &str,
        room_id: Option<&str>,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        let node = txn
            .query_one_raw(stmt(
                "UPDATE presence_counsellor SET pending = GREATEST(pending - 1, 0) \
                 WHERE ns = $1 AND sid = $2 RETURNING node_id",
                [ns.into(), sid.into()],
            ))
            .await?;
        if let (Some(room_id), Some(node)) = (room_id, node) {
            txn.execute_raw(stmt(
                "INSERT INTO presence_match (ns, sid, room_id, node_id) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
                [
                    ns.into(),
                    sid.into(),
                    room_id.into(),
                    text(&node, "node_id")?.into(),
                ],
            ))
            .await?;
        }
        txn.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_pg_store;

    /// Two nodes' presence on one database, when `BUBBLE_TEST_PG` names a server.
    async fn two_nodes() -> Option<(crate::store::PgGuard, SharedPresence, SharedPresence)> {
        let (guard, store) = temp_pg_store().await?;
        let a = store.shared_presence("node-a").expect("postgres");
        let b = store.shared_presence("node-b").expect("postgres");
        assert!(
            !a.heartbeat().await.unwrap(),
            "first heartbeat makes the row"
        );
        assert!(!b.heartbeat().await.unwrap());
        assert!(a.heartbeat().await.unwrap());
        Some((guard, a, b))
    }

    #[tokio::test]
    async fn shared_presence_is_refused_on_sqlite() {
        let (_dir, store) = crate::store::temp_store().await;
        assert!(store.shared_presence("n").is_err());
    }

    #[tokio::test]
    async fn a_dead_node_leaves_once_per_person_and_only_where_they_are_gone() {
        let Some((_db, a, b)) = two_nodes().await else {
            eprintln!("BUBBLE_TEST_PG not set: skipped");
            return;
        };
        // Person p has two sockets on node b and one on node a; person q one on node b.
        a.connect("/", "pa", "p").await.unwrap();
        b.connect("/", "pb1", "p").await.unwrap();
        b.connect("/", "pb2", "p").await.unwrap();
        b.connect("/counsellor", "qb", "q").await.unwrap();
        for (room, ns, sid) in [
            ("r1", "/", "pb1"),
            ("r1", "/", "pb2"),
            ("r1", "/counsellor", "qb"),
            ("r2", "/", "pa"),
            ("r2", "/", "pb1"),
        ] {
            assert!(b.join(room, "R", ns, sid, None).await.unwrap().is_some());
        }
        b.counsellor_online("/counsellor", "qb", "q", "Q")
            .await
            .unwrap();

        assert!(a.dead_nodes(60_000).await.unwrap().is_empty());
        let mut dead = a.dead_nodes(-60_000).await.unwrap();
        dead.sort();
        assert_eq!(dead, vec!["node-b".to_owned()], "never itself");
        let departed = a.remove_node("node-b").await.unwrap();
        let gone: Vec<_> = departed
            .sockets
            .iter()
            .filter(|s| s.4)
            .map(|s| (s.0.as_str(), s.2.as_str(), s.3.as_str()))
            .collect();
        assert_eq!(
            gone,
            vec![("r1", "pb2", "p"), ("r1", "qb", "q")],
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
        assert_eq!(left["r2"], vec![("/".into(), "pa".into(), "p".into())]);
        assert_eq!(a.claim_counsellor(60_000).await.unwrap(), None);
        assert_eq!(a.person(None, "pb1").await.unwrap(), None);
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
            let sid = format!("s{i}");
            node.connect("/", &sid, &format!("person{i}"))
                .await
                .unwrap();
            joins.push(tokio::spawn(async move {
                node.join("room", "R", "/", &sid, Some(5)).await.unwrap()
            }));
        }
        let mut admitted = 0;
        for join in joins {
            if join.await.unwrap() == Some(Joined::Arrived) {
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
        a.connect("/", "x1", "x").await.unwrap();
        b.connect("/", "x2", "x").await.unwrap();
        let joined = a.join("r", "R", "/", "x1", None).await.unwrap();
        assert_eq!(joined, Some(Joined::Arrived));
        a.join("s", "S", "/", "x1", None).await.unwrap();
        let joined = b.join("r", "R", "/", "x2", None).await.unwrap();
        assert_eq!(
            joined,
            Some(Joined::Beside),
            "the person was in r through node a"
        );
        let joined = b.join("r", "R", "/", "x2", None).await.unwrap();
        assert_eq!(joined, Some(Joined::Already));
        let mut sockets = b.sockets_of("x").await.unwrap();
        sockets.sort();
        assert_eq!(
            sockets,
            vec![("/".into(), "x1".into()), ("/".into(), "x2".into())],
            "both nodes' sockets of the person"
        );
        assert_eq!(a.rooms_of("/", "x1").await.unwrap(), vec!["r", "s"]);
        assert_eq!(
            a.disconnect("/", "x1").await.unwrap(),
            vec![("r".to_owned(), false), ("s".to_owned(), true)]
        );
        assert_eq!(
            b.disconnect("/", "x2").await.unwrap(),
            vec![("r".to_owned(), true)]
        );
        assert!(a.disconnect("/", "x2").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn claims_go_to_the_least_loaded_counsellor_on_any_node() {
        let Some((_db, a, b)) = two_nodes().await else {
            eprintln!("BUBBLE_TEST_PG not set: skipped");
            return;
        };
        a.connect("/counsellor", "c1", "one").await.unwrap();
        b.connect("/counsellor", "c2", "two").await.unwrap();
        a.counsellor_online("/counsellor", "c1", "one", "One")
            .await
            .unwrap();
        b.counsellor_online("/counsellor", "c2", "two", "Two")
            .await
            .unwrap();
        let first = a.claim_counsellor(60_000).await.unwrap().unwrap();
        let second = b.claim_counsellor(60_000).await.unwrap().unwrap();
        assert_ne!(first.1, second.1, "a pending claim counts as load");
        a.settle_claim(&first.0, &first.1, Some("room-1"))
            .await
            .unwrap();
        b.settle_claim(&second.0, &second.1, None).await.unwrap();
        let third = a.claim_counsellor(60_000).await.unwrap().unwrap();
        assert_eq!(third.1, second.1, "the one without a room");
        b.settle_claim(&third.0, &third.1, None).await.unwrap();
        b.counsellor_offline(&third.0, &third.1).await.unwrap();
        let fourth = b.claim_counsellor(60_000).await.unwrap().unwrap();
        assert_eq!(fourth.1, first.1);
        assert_eq!(
            b.counsellor_id("/counsellor", "c1")
                .await
                .unwrap()
                .as_deref(),
            Some("one")
        );
    }
}

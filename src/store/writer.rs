//! On SQLite, new messages are stored by the writer, a task on a thread and a connection of its
//! own. `add_message` hands it the message and waits; the writer takes everything that is waiting
//! (up to [`BATCH`] messages) and stores it in one transaction: BEGIN IMMEDIATE, one UPDATE that
//! stamps every room of the batch, one INSERT of every message, the push outbox statement of each
//! message whose room has someone with a device token, COMMIT. Every caller is answered after
//! that commit, so an acknowledged message is a stored one, as without the writer.
//!
//! SQLite has one writer at a time anyway. What a batch saves is statements and commits: sqlx
//! runs each SQLite connection on a thread of its own, so every call is a hand-off to that thread
//! and back (under load, often more time than the statements take), every commit writes the
//! pages it changed to the WAL, and pooled connections racing for the write lock sleep in the
//! busy handler. A batch is two calls and one commit however many messages it holds: BEGIN,
//! UPDATE and INSERT go as one multi-statement query, the push outbox statements and COMMIT as
//! the second. The WAL is copied back into the database by the checkpointer, off this path (see
//! [`super::checkpoint`]).
//!
//! Each message keeps the semantics of one transaction per message: its `createdAt` is its room's
//! `lastActive` moved on by one, or now if that is later, so the messages of a room are stamped
//! strictly increasing in the order they reached the writer; a message to a room that does not
//! exist is answered `None` and the others are stored; a batch that fails as a whole (any
//! statement, or the commit) is rolled back and its messages stored one by one, each in a
//! transaction of its own, so that one failing message costs the others only time.
//!
//! Being the only one that stores messages, the writer also keeps the cache of rooms' newest
//! messages exact (see [`super::recent`]): it reads rooms into it when asked, between batches, and
//! adds each stored message to it before the message's caller is answered.
use std::collections::HashMap;
use std::sync::Arc;

use entity::message;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, Value};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::Committed;
use super::messages::{Added, NewMessage, add_one};
use super::push_outbox::{Params, PushFanout, enqueue_statement};
use super::recent::{self, Recent, RecentCache};
use crate::clock::now_ms;

/// Most messages in one transaction.
pub(super) const BATCH: usize = 256;
/// Most messages waiting for the writer before `add_message` waits to hand its own over.
const QUEUE: usize = 4 * BATCH;

type Answer = Result<Option<Added>, DbErr>;

/// The sending end of the writer's queue; the writer stops when every clone is dropped.
#[derive(Clone, Debug)]
pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
}

/// What the writer does, in the order asked.
enum Job {
    Add(Request),
    /// Reads rooms' newest messages into the cache.
    Read {
        room_ids: Vec<String>,
        answer: oneshot::Sender<Result<HashMap<String, Recent>, DbErr>>,
    },
}

/// One `add_message` call waiting for the writer.
pub(super) struct Request {
    new: NewMessage,
    fanout: OwnedFanout,
    answer: oneshot::Sender<Answer>,
}

/// A [`PushFanout`] the request owns.
struct OwnedFanout {
    present: Vec<Arc<str>>,
    collapse_ms: i64,
    author_name: Option<String>,
}

impl OwnedFanout {
    fn new(fanout: &PushFanout<'_>) -> Self {
        Self {
            present: fanout.present.to_vec(),
            collapse_ms: fanout.collapse_ms,
            author_name: fanout.author_name.map(str::to_owned),
        }
    }

    fn borrow(&self) -> PushFanout<'_> {
        PushFanout {
            present: &self.present,
            collapse_ms: self.collapse_ms,
            author_name: self.author_name.as_deref(),
        }
    }
}

impl Request {
    pub(super) fn new(
        new: NewMessage,
        fanout: &PushFanout<'_>,
    ) -> (Self, oneshot::Receiver<Answer>) {
        let (answer, answered) = oneshot::channel();
        let request = Self {
            new,
            fanout: OwnedFanout::new(fanout),
            answer,
        };
        (request, answered)
    }

    fn answer(self, answer: Answer) {
        // The caller may have gone (its socket closed); the message is stored all the same.
        let _ = self.answer.send(answer);
    }
}

impl Writer {
    /// Starts the writer on a thread of its own, on a pool of one connection opened there from
    /// `options`: the writer is that connection's only user. (On the server's runtime, the
    /// writer's task would wait behind every ready socket task each time a statement returns,
    /// several times per batch.)
    pub(super) async fn start(
        options: ConnectOptions,
        cache: Arc<RecentCache>,
        committed: Committed,
    ) -> Result<Self, DbErr> {
        let (queue, queued) = mpsc::channel(QUEUE);
        let (ready, started) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("message-writer".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let runtime = match runtime {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(DbErr::Custom(format!("message writer: {e}"))));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match Database::connect(options).await {
                        Ok(db) => {
                            if ready.send(Ok(())).is_ok() {
                                run(db, &cache, &committed, queued).await;
                            }
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                        }
                    }
                });
            });
        thread.map_err(|e| DbErr::Custom(format!("message writer thread: {e}")))?;
        match started.await {
            Ok(started) => started.map(|()| Self { queue }),
            Err(_) => Err(DbErr::Custom("the message writer did not start".into())),
        }
    }

    /// Stores `new` in the writer's next batch; the answer comes after its commit. Hands the
    /// message back when the writer has stopped.
    pub(super) async fn add(
        &self,
        new: NewMessage,
        fanout: &PushFanout<'_>,
    ) -> Result<Answer, NewMessage> {
        let Ok(permit) = self.queue.reserve().await else {
            return Err(new);
        };
        let (request, answered) = Request::new(new, fanout);
        permit.send(Job::Add(request));
        Ok(answered.await.unwrap_or_else(|_| Err(stopped())))
    }

    /// Reads the newest messages of rooms into the cache, after the messages already waiting are
    /// stored; returns what was read. Hands the rooms back when the writer has stopped.
    pub(super) async fn read(
        &self,
        room_ids: Vec<String>,
    ) -> Result<Result<HashMap<String, Recent>, DbErr>, Vec<String>> {
        let Ok(permit) = self.queue.reserve().await else {
            return Err(room_ids);
        };
        let (answer, answered) = oneshot::channel();
        permit.send(Job::Read { room_ids, answer });
        Ok(answered.await.unwrap_or_else(|_| Err(stopped())))
    }
}

impl Writer {
    /// Reads rooms into the cache when the writer gets to it, without waiting for it; nothing is
    /// read when the queue is full (the rooms are then read when first asked for).
    pub(super) fn read_later(&self, room_ids: Vec<String>) {
        let (answer, _) = oneshot::channel();
        let _ = self.queue.try_send(Job::Read { room_ids, answer });
    }
}

fn stopped() -> DbErr {
    DbErr::Custom("the message writer stopped before answering".into())
}

async fn run(
    db: DatabaseConnection,
    cache: &RecentCache,
    committed: &Committed,
    mut queued: mpsc::Receiver<Job>,
) {
    let mut jobs = Vec::with_capacity(BATCH);
    let mut batch = Vec::with_capacity(BATCH);
    while queued.recv_many(&mut jobs, BATCH).await > 0 {
        for job in jobs.drain(..) {
            match job {
                Job::Add(request) => batch.push(request),
                Job::Read { room_ids, answer } => {
                    // The messages asked for before are stored first.
                    write(&db, cache, &mut batch).await;
                    let ids: Vec<&str> = room_ids.iter().map(String::as_str).collect();
                    let read = recent::read(&db, &ids).await;
                    if let Ok(found) = &read {
                        for (room_id, recent) in found {
                            cache.put(room_id, recent.clone());
                        }
                    }
                    let _ = answer.send(read);
                }
            }
        }
        write(&db, cache, &mut batch).await;
        committed.notify();
    }
}

/// Stores a batch and answers every request in it, leaving `batch` empty. Each stored message
/// is in the cache of newest messages before its caller hears of it.
pub(super) async fn write(db: &DatabaseConnection, cache: &RecentCache, batch: &mut Vec<Request>) {
    if batch.is_empty() {
        return;
    }
    match store_batch(db, batch).await {
        Ok(stored) => {
            for (request, stored) in batch.drain(..).zip(stored) {
                let added = stored.map(|stored| stored.added(request.new));
                if let Some(added) = &added {
                    cache.stored(&added.message);
                }
                let _ = request.answer.send(Ok(added));
            }
        }
        Err(e) if batch.len() == 1 => {
            if let Some(request) = batch.pop() {
                request.answer(Err(e));
            }
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                messages = batch.len(),
                "a batch of messages failed; storing them one at a time"
            );
            for Request {
                new,
                fanout,
                answer,
            } in batch.drain(..)
            {
                let added = add_one(db, new, &fanout.borrow()).await;
                if let Ok(Some(added)) = &added {
                    cache.stored(&added.message);
                }
                let _ = answer.send(added);
            }
        }
    }
}

/// The whole batch in one transaction: one answer per request, in order, or the first error
/// (and nothing stored). `db` must be a single connection, the writer's: the transaction is
/// begun and ended by statements of its own.
///
/// The transaction begins, stamps the rooms and inserts the messages in one call to the
/// connection's thread (one multi-statement query: the rows of both `RETURNING`s come back
/// together), then queues the pushes and commits in a second; each call is a round trip to that
/// thread, and those round trips, not SQLite, were most of a small batch's time.
async fn store_batch(
    db: &DatabaseConnection,
    batch: &[Request],
) -> Result<Vec<Option<Stored>>, DbErr> {
    let result = match stage(db, batch).await {
        Ok(mut stored) => match queue_pushes_and_commit(db, batch, &mut stored).await {
            Ok(()) => return Ok(stored),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    if let Err(rollback) = execute(db, "ROLLBACK").await {
        tracing::debug!(error = %rollback, "rolling back a batch of messages");
    }
    result
}

/// Queues the pushes of the stored messages whose room has someone with a device token, and
/// commits, in one call: the outbox statements (each returns the message of every row it wrote)
/// and COMMIT as one multi-statement query.
async fn queue_pushes_and_commit(
    db: &DatabaseConnection,
    batch: &[Request],
    stored: &mut [Option<Stored>],
) -> Result<(), DbErr> {
    let mut p = Params::new(db.get_database_backend());
    let mut sql = String::new();
    for (request, stored) in batch.iter().zip(stored.iter()) {
        let Some(stored) = stored else { continue };
        let Some(room_name) = &stored.pushable_in else {
            continue;
        };
        let model = stored.added(request.new.clone()).message;
        let fanout = request.fanout.borrow();
        sql.push_str(&enqueue_statement(&mut p, room_name, &model, &fanout));
        sql.push_str("; ");
    }
    if sql.is_empty() {
        return execute(db, "COMMIT").await;
    }
    sql.push_str("COMMIT");
    let mut queued: HashMap<i64, u64> = HashMap::new();
    for row in db.query_all_raw(p.statement(sql)).await? {
        *queued.entry(row.try_get("", "queued_for")?).or_default() += 1;
    }
    for stored in stored.iter_mut().flatten() {
        stored.pushes = queued.get(&stored.id).copied().unwrap_or(0);
    }
    Ok(())
}

async fn execute(db: &DatabaseConnection, sql: &str) -> Result<(), DbErr> {
    db.execute_unprepared(sql).await.map(|_| ())
}

/// A message of the batch once stored.
struct Stored {
    id: i64,
    created_at: i64,
    /// The room's name, when a member of the room has a device token: the message may queue
    /// pushes.
    pushable_in: Option<String>,
    pushes: u64,
}

impl Stored {
    fn added(&self, new: NewMessage) -> Added {
        Added {
            message: message::Model {
                id: self.id,
                room_id: new.room_id,
                user_id: new.user_id,
                bubble_id: new.bubble_id,
                message_type: new.message_type.to_owned(),
                content: new.content,
                target_user: new.target_user,
                target_user_bubble_id: new.target_user_bubble_id,
                created_at: self.created_at,
                updated_at: self.created_at,
            },
            pushes: self.pushes,
        }
    }
}

/// A room of the batch once stamped.
struct Stamped {
    name: String,
    /// Its new `lastActive`: the stamp of its last message in the batch.
    last_active: i64,
    /// Whether a member of the room has a device token: only then can a message queue a push.
    pushable: bool,
    /// Its messages' stamps and ids, as inserted.
    ids: Vec<(i64, i64)>,
}

/// Begins the transaction and stores the batch in it, leaving it open.
///
/// Every room's `lastActive` moves past its messages: a room with `k` messages gets
/// `max(lastActive, now - 1) + k`, so its first message is stamped `max(lastActive + 1, now)`,
/// as one message alone would be, and the others follow one millisecond apart, in the order they
/// reached the writer. Messages are inserted from the stamped rooms (the insert joins them), so a
/// message to a room that does not exist is simply not stored.
async fn stage(db: &DatabaseConnection, batch: &[Request]) -> Result<Vec<Option<Stored>>, DbErr> {
    let now = now_ms();
    // Each message's place among its room's messages in the batch (from 1), and the counts.
    let mut counts: HashMap<&str, i64> = HashMap::with_capacity(batch.len());
    let places: Vec<i64> = batch
        .iter()
        .map(|request| {
            let count = counts.entry(request.new.room_id.as_str()).or_default();
            *count += 1;
            *count
        })
        .collect();

    const COLUMNS: usize = 9;
    let backend = db.get_database_backend();
    let mut p = Params::with_capacity(backend, 3 + 2 * counts.len() + COLUMNS * batch.len());
    let (later, earliest) = (p.bind(now - 1), p.bind(now - 1));
    let updated = p.bind(now);
    let rooms: Vec<String> = counts
        .iter()
        .map(|(room, count)| format!("({}, {})", p.bind(*room), p.bind(*count)))
        .collect();
    let mut messages = String::with_capacity(batch.len() * 4 * COLUMNS);
    for (i, (request, place)) in batch.iter().zip(&places).enumerate() {
        let new = &request.new;
        let values: [Value; COLUMNS] = [
            new.room_id.as_str().into(),
            (*place).into(),
            new.user_id.as_str().into(),
            new.bubble_id.as_str().into(),
            new.message_type.into(),
            new.content.as_str().into(),
            new.target_user.as_deref().into(),
            new.target_user_bubble_id.as_deref().into(),
            counts
                .get(new.room_id.as_str())
                .copied()
                .unwrap_or(1)
                .into(),
        ];
        messages.push_str(if i == 0 { "(" } else { ", (" });
        for (j, value) in values.into_iter().enumerate() {
            if j > 0 {
                messages.push_str(", ");
            }
            messages.push_str(&p.bind(value));
        }
        messages.push(')');
    }
    // VALUES columns are named column1, column2, … . A message is stamped its room's new
    // `lastActive`, less its room's count, plus its place.
    let sql = format!(
        "BEGIN IMMEDIATE; \
         UPDATE room SET last_active = CASE WHEN room.last_active > {later} \
         THEN room.last_active ELSE {earliest} END + b.column2, updated_at = {updated} \
         FROM (VALUES {rooms}) AS b WHERE room.id = b.column1 \
         RETURNING room.id AS stamped_room, room.name AS stamped_name, \
         room.last_active AS stamped_at, EXISTS (SELECT 1 FROM room_member m \
         JOIN push_token t ON t.bubble_id = m.bubble_id WHERE m.room_id = room.id) AS pushable; \
         INSERT INTO message (room_id, user_id, bubble_id, message_type, content, target_user, \
         target_user_bubble_id, created_at, updated_at) \
         SELECT v.column1, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, \
         room.last_active - v.column9 + v.column2, room.last_active - v.column9 + v.column2 \
         FROM (VALUES {messages}) AS v JOIN room ON room.id = v.column1 \
         RETURNING id AS message_id, room_id AS message_room, created_at AS message_at",
        rooms = rooms.join(", ")
    );
    // The UPDATE's rows come first, then the INSERT's (RETURNING gives rows in no set order).
    let mut stamped: HashMap<String, Stamped> = HashMap::with_capacity(counts.len());
    let mut inserted = 0;
    for row in db.query_all_raw(p.statement(sql)).await? {
        if let Ok(room) = row.try_get::<String>("", "stamped_room") {
            let room_stamp = Stamped {
                name: row.try_get("", "stamped_name")?,
                last_active: row.try_get("", "stamped_at")?,
                pushable: row.try_get("", "pushable")?,
                ids: Vec::new(),
            };
            stamped.insert(room, room_stamp);
            continue;
        }
        let room: String = row.try_get("", "message_room")?;
        let Some(room) = stamped.get_mut(&room) else {
            return Err(DbErr::Custom(format!(
                "a message of room {room} not asked for"
            )));
        };
        room.ids.push((
            row.try_get("", "message_at")?,
            row.try_get("", "message_id")?,
        ));
        inserted += 1;
    }

    let mut stored = Vec::with_capacity(batch.len());
    for (request, place) in batch.iter().zip(&places) {
        let new = &request.new;
        let Some(room) = stamped.get(&new.room_id) else {
            stored.push(None);
            continue;
        };
        let count = counts.get(new.room_id.as_str()).copied().unwrap_or(1);
        let created_at = room.last_active - count + place;
        let id = room
            .ids
            .iter()
            .find(|(at, _)| *at == created_at)
            .map(|(_, id)| *id);
        let Some(id) = id else {
            return Err(DbErr::Custom(format!(
                "message {created_at} of room {} not returned",
                new.room_id
            )));
        };
        let message = Some(Stored {
            id,
            created_at,
            pushable_in: room.pushable.then(|| room.name.clone()),
            pushes: 0,
        });
        stored.push(message);
    }
    let expected = stored.iter().flatten().count();
    if inserted != expected {
        return Err(DbErr::Custom(format!(
            "stored {expected} messages, {inserted} returned"
        )));
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use entity::room;
    use sea_orm::{
        ColumnTrait, EntityTrait, QueryFilter, QueryOrder, SqliteTransactionMode,
        TransactionOptions, TransactionTrait,
    };

    use super::*;
    use crate::store::{NewRoom, Store, one_connection, temp_store};

    async fn new_room(store: &Store, name: &str, members: &[&str]) -> String {
        let room = store
            .create_room(NewRoom::by_author(name, 100), members, None)
            .await
            .unwrap();
        room.id
    }

    /// Runs `messages` as one batch on a connection of their own, as the writer would, and
    /// returns the answers in order.
    async fn batch(
        (one, store): (&DatabaseConnection, &Store),
        messages: Vec<(NewMessage, PushFanout<'_>)>,
    ) -> Vec<Answer> {
        let mut requests = Vec::new();
        let mut answers = Vec::new();
        for (new, fanout) in messages {
            let (request, answered) = Request::new(new, &fanout);
            requests.push(request);
            answers.push(answered);
        }
        write(one, &store.recent, &mut requests).await;
        let mut got = Vec::new();
        for answered in answers {
            got.push(answered.await.expect("every request is answered"));
        }
        got
    }

    async fn stored(store: &Store, room_id: &str) -> Vec<message::Model> {
        message::Entity::find()
            .filter(message::Column::RoomId.eq(room_id))
            .order_by_asc(message::Column::Id)
            .all(store.db())
            .await
            .unwrap()
    }

    async fn last_active(store: &Store, room_id: &str) -> i64 {
        room::Entity::find_by_id(room_id.to_owned())
            .one(store.db())
            .await
            .unwrap()
            .expect("room")
            .last_active
    }

    fn created(answer: &Answer) -> i64 {
        match answer {
            Ok(Some(added)) => added.message.created_at,
            other => panic!("expected a stored message, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_batch_stamps_each_room_strictly_increasing_in_order() {
        let (dir, store) = temp_store().await;
        let one = one_connection(&dir).await;
        let a = new_room(&store, "A", &["author"]).await;
        let b = new_room(&store, "B", &["author"]).await;
        // B was last active in the future (a clock step back): its messages come after that.
        let ahead = now_ms() + 60_000;
        room::Entity::update_many()
            .col_expr(room::Column::LastActive, ahead.into())
            .filter(room::Column::Id.eq(b.as_str()))
            .exec(store.db())
            .await
            .unwrap();

        let before = now_ms();
        let mut messages = Vec::new();
        for i in 0..30 {
            let room = if i % 3 == 0 { &b } else { &a };
            messages.push((
                NewMessage::by_author(room, &format!("m{i}")),
                PushFanout::NOBODY_HERE,
            ));
        }
        let answers = batch((&one, &store), messages).await;

        let (mut in_a, mut in_b) = (Vec::new(), Vec::new());
        for (i, answer) in answers.iter().enumerate() {
            let added = answer.as_ref().unwrap().as_ref().unwrap();
            assert_eq!(added.message.content, format!("m{i}"));
            assert_eq!(added.pushes, 0);
            let room = if i % 3 == 0 { &mut in_b } else { &mut in_a };
            room.push(created(answer));
        }
        assert_eq!((in_a.len(), in_b.len()), (20, 10));
        assert!(in_a[0] >= before, "stamped no earlier than the batch");
        assert!(in_a.windows(2).all(|w| w[1] == w[0] + 1), "{in_a:?}");
        assert_eq!(in_b[0], ahead + 1);
        assert!(in_b.windows(2).all(|w| w[1] == w[0] + 1), "{in_b:?}");
        assert_eq!(last_active(&store, &a).await, in_a[19]);
        assert_eq!(last_active(&store, &b).await, in_b[9]);

        // What was answered is what is stored, and the next message comes after the batch.
        let rows: Vec<i64> = stored(&store, &a)
            .await
            .iter()
            .map(|m| m.created_at)
            .collect();
        assert_eq!(rows, in_a);
        let next = store
            .add_message(NewMessage::by_author(&a, "after"), &PushFanout::NOBODY_HERE)
            .await
            .unwrap()
            .unwrap();
        assert!(next.message.created_at > in_a[19]);
    }

    #[tokio::test]
    async fn concurrent_messages_wait_for_one_batch_and_stay_ordered_per_room() {
        let (_dir, store) = temp_store().await;
        let mut rooms = Vec::new();
        for name in ["A", "B", "C", "D"] {
            rooms.push(new_room(&store, name, &["author"]).await);
        }
        // Hold SQLite's write lock so that the writer's first batch waits and the rest queue.
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        let lock = store.db().begin_with_options(options).await.unwrap();
        let writer = store.writer.clone().expect("SQLite has a writer");
        let queued = || QUEUE - writer.queue.capacity();
        let wait_for = |n: usize| async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while queued() != n {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{} queued",
                    queued()
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        // The first message is taken alone and waits for the lock; the others queue behind it.
        let spawn = |room: &String, content: String| {
            let (store, room) = (store.clone(), room.clone());
            tokio::spawn(async move {
                store
                    .add_message(
                        NewMessage::by_author(&room, &content),
                        &PushFanout::NOBODY_HERE,
                    )
                    .await
            })
        };
        let (first, first_answer) = Request::new(
            NewMessage::by_author(&rooms[0], "first"),
            &PushFanout::NOBODY_HERE,
        );
        assert!(writer.queue.send(Job::Add(first)).await.is_ok());
        wait_for(0).await;
        let mut sends = Vec::new();
        const PER_ROOM: usize = 50;
        for i in 0..PER_ROOM {
            for room in &rooms {
                sends.push(spawn(room, i.to_string()));
            }
        }
        wait_for(PER_ROOM * rooms.len()).await;
        lock.commit().await.unwrap();

        first_answer
            .await
            .unwrap()
            .unwrap()
            .expect("the room exists");
        for send in sends {
            send.await.unwrap().unwrap().expect("the room exists");
        }
        for room in &rooms {
            let times: Vec<i64> = stored(&store, room)
                .await
                .iter()
                .map(|m| m.created_at)
                .collect();
            let first = usize::from(room == &rooms[0]);
            assert_eq!(times.len(), PER_ROOM + first);
            assert!(times.windows(2).all(|w| w[1] > w[0]), "{times:?}");
            assert_eq!(last_active(&store, room).await, times[times.len() - 1]);
        }
    }

    #[tokio::test]
    async fn a_missing_room_answers_none_and_the_others_are_stored() {
        let (dir, store) = temp_store().await;
        let one = one_connection(&dir).await;
        let a = new_room(&store, "A", &["author"]).await;
        let answers = batch(
            (&one, &store),
            vec![
                (NewMessage::by_author(&a, "one"), PushFanout::NOBODY_HERE),
                (
                    NewMessage::by_author("no such room", "lost"),
                    PushFanout::NOBODY_HERE,
                ),
                (NewMessage::by_author(&a, "two"), PushFanout::NOBODY_HERE),
            ],
        )
        .await;
        assert!(matches!(answers[1], Ok(None)), "{:?}", answers[1]);
        assert_eq!(created(&answers[2]), created(&answers[0]) + 1);
        let contents: Vec<String> = stored(&store, &a)
            .await
            .into_iter()
            .map(|m| m.content)
            .collect();
        assert_eq!(contents, ["one", "two"]);

        // A batch of nothing but missing rooms stores nothing.
        let answers = batch(
            (&one, &store),
            vec![(NewMessage::by_author("gone", "x"), PushFanout::NOBODY_HERE)],
        )
        .await;
        assert!(matches!(answers[0], Ok(None)));
        assert_eq!(
            message::Entity::find().all(store.db()).await.unwrap().len(),
            2
        );
    }

    #[tokio::test]
    async fn a_failing_message_does_not_lose_the_others() {
        let (dir, store) = temp_store().await;
        let one = one_connection(&dir).await;
        let a = new_room(&store, "A", &["author"]).await;
        let b = new_room(&store, "B", &["author"]).await;
        store
            .db()
            .execute_unprepared(
                "CREATE TRIGGER refuse BEFORE INSERT ON message WHEN NEW.content = 'refused' \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            )
            .await
            .unwrap();
        let answers = batch(
            (&one, &store),
            vec![
                (NewMessage::by_author(&a, "one"), PushFanout::NOBODY_HERE),
                (
                    NewMessage::by_author(&a, "refused"),
                    PushFanout::NOBODY_HERE,
                ),
                (NewMessage::by_author(&b, "two"), PushFanout::NOBODY_HERE),
                (NewMessage::by_author(&a, "three"), PushFanout::NOBODY_HERE),
            ],
        )
        .await;
        let error = answers[1].as_ref().expect_err("the refused message fails");
        assert!(error.to_string().contains("refused by the test"), "{error}");
        assert!(created(&answers[3]) > created(&answers[0]));
        let contents: Vec<String> = stored(&store, &a)
            .await
            .into_iter()
            .map(|m| m.content)
            .collect();
        assert_eq!(contents, ["one", "three"]);
        assert_eq!(last_active(&store, &a).await, created(&answers[3]));
        assert_eq!(stored(&store, &b).await.len(), 1);

        // Alone in its batch, it fails the same way and stores nothing.
        let answers = batch(
            (&one, &store),
            vec![(
                NewMessage::by_author(&b, "refused"),
                PushFanout::NOBODY_HERE,
            )],
        )
        .await;
        assert!(answers[0].is_err());
        assert_eq!(stored(&store, &b).await.len(), 1);
        // Through the writer too.
        let through = store
            .add_message(
                NewMessage::by_author(&b, "refused"),
                &PushFanout::NOBODY_HERE,
            )
            .await;
        assert!(through.is_err());
        let fine = store
            .add_message(NewMessage::by_author(&b, "fine"), &PushFanout::NOBODY_HERE)
            .await;
        assert!(matches!(fine, Ok(Some(_))), "{fine:?}");
    }

    #[tokio::test]
    async fn pushes_in_a_batch_are_queued_as_one_message_at_a_time_would() {
        let (dir, store) = temp_store().await;
        let one = one_connection(&dir).await;
        let a = new_room(&store, "A", &["author", "away", "here", "tokenless"]).await;
        let quiet = new_room(&store, "Quiet", &["author", "tokenless"]).await;
        for (token, who) in [
            ("tok-away", "away"),
            ("tok-here", "here"),
            ("tok-author", "author"),
        ] {
            store.register_push_token(token, who, "fcm").await.unwrap();
        }
        let present: Vec<Arc<str>> = vec!["author".into(), "here".into()];
        let with_here = PushFanout {
            present: &present,
            ..PushFanout::NOBODY_HERE
        };
        let answers = batch(
            (&one, &store),
            vec![
                // Nobody present: "away" and "here" each get a row.
                (NewMessage::by_author(&a, "one"), PushFanout::NOBODY_HERE),
                (
                    NewMessage::by_author(&quiet, "nobody to push to"),
                    PushFanout::NOBODY_HERE,
                ),
                // Both rows collapse into this one.
                (NewMessage::by_author(&a, "two"), PushFanout::NOBODY_HERE),
                // "here" is present now: only the row of "away" moves on.
                (NewMessage::by_author(&a, "three"), with_here),
            ],
        )
        .await;
        let pushes: Vec<u64> = answers
            .iter()
            .map(|a| a.as_ref().unwrap().as_ref().unwrap().pushes)
            .collect();
        assert_eq!(pushes, [2, 0, 2, 1]);
        let id = |i: usize| answers[i].as_ref().unwrap().as_ref().unwrap().message.id;
        let mut rows: Vec<(String, i64)> = store
            .push_outbox_rows()
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.token, r.message_id))
            .collect();
        rows.sort();
        assert_eq!(
            rows,
            [
                ("tok-away".to_owned(), id(3)),
                ("tok-here".to_owned(), id(2))
            ]
        );
    }

    /// What the store alone sustains with many senders, each waiting for its answer before
    /// sending again, and what it costs: run with
    /// `cargo test --release --lib store_ingest_rate -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement, not a check"]
    async fn store_ingest_rate() {
        const SENDERS: usize = 200;
        const SECONDS: u64 = 5;
        let (_dir, store) = temp_store().await;
        let cpu = || {
            let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
            let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split(' ').collect();
            // utime and stime, in clock ticks (100 a second), are fields 14 and 15.
            let ticks = |i: usize| fields.get(i - 1).and_then(|f| f.parse::<u64>().ok());
            ticks(14).unwrap_or(0) + ticks(15).unwrap_or(0)
        };
        let mut senders = Vec::new();
        let started = tokio::time::Instant::now();
        let until = started + Duration::from_secs(SECONDS);
        let cpu_before = cpu();
        for i in 0..SENDERS {
            let room = new_room(&store, &format!("room {i}"), &["author"]).await;
            let store = store.clone();
            senders.push(tokio::spawn(async move {
                let mut sent = 0u64;
                while tokio::time::Instant::now() < until {
                    let message = NewMessage::by_author(&room, &"x".repeat(64));
                    store
                        .add_message(message, &PushFanout::NOBODY_HERE)
                        .await
                        .unwrap()
                        .unwrap();
                    sent += 1;
                }
                sent
            }));
        }
        let mut sent = 0;
        for sender in senders {
            sent += sender.await.unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu_ms = (cpu() - cpu_before) * 10;
        eprintln!(
            "{SENDERS} senders: {:.0} messages/s, {:.1} µs of CPU per message",
            sent as f64 / elapsed,
            cpu_ms as f64 * 1000.0 / sent as f64
        );
    }
}

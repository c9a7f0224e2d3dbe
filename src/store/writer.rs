//! On SQLite, new messages are stored by the writer, a thread with a connection of its own.
//! `add_message` hands it the message and waits; the writer takes everything that is waiting (up
//! to [`BATCH`] messages) and stores it in one transaction: BEGIN IMMEDIATE, one UPDATE that
//! stamps every room of the batch, one INSERT of every message, the push outbox statement of each
//! message whose room has someone with a device token, COMMIT. Every caller is answered after
//! that commit, so an acknowledged message is a stored one, as without the writer.
//!
//! SQLite has one writer at a time anyway. What a batch saves is statements and commits: every
//! commit writes the pages it changed to the WAL (and, on this connection, waits for them to reach
//! the disk), and pooled connections racing for the write lock sleep in the busy handler. The
//! writer's connection is rusqlite's, called on the writer's own thread, where sqlx would run it
//! on a thread of its own and hand every statement and every row of its answer across (each a
//! wake-up of the other thread, dozens per batch). The WAL is copied back into the database by
//! the checkpointer, off this path (see [`super::checkpoint`]).
//!
//! Each message keeps the semantics of one transaction per message: its `createdAt` is its room's
//! `lastActive` moved on by one, or now if that is later, so the messages of a room are stamped
//! strictly increasing in the order they reached the writer; a message to a room that does not
//! exist is answered `None` and the others are stored; a batch that fails as a whole (any
//! statement, or the commit) is rolled back and its messages stored one by one, each in a
//! transaction of its own, so that one failing message costs the others only time. A connection
//! that a failed batch left inside its transaction (the ROLLBACK failed too) is closed and opened
//! afresh before the next batch, so that nothing is ever stored inside a transaction that will
//! not commit.
//!
//! Being the only one that stores messages, the writer also keeps the cache of rooms' newest
//! messages exact (see [`super::recent`]): it reads rooms into it when asked, between batches, and
//! adds each stored message to it before the message's caller is answered.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use entity::message;
use rusqlite::types::ToSqlOutput;
use rusqlite::types::ValueRef::{self, Integer, Null};
use rusqlite::{Connection, TransactionBehavior, params_from_iter};
use sea_orm::{ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DbErr, Value};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::{self, Committed};
use super::messages::{Added, NewMessage};
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
    /// Starts the writer on a thread of its own, with its connection to the database file `file`
    /// (see [`open`]) and, for reading rooms into the cache, a pool of one connection opened there
    /// from `reads`. (On the server's runtime, the writer would wait behind every ready socket
    /// task, and hold up one of the runtime's threads while SQLite works.)
    pub(super) async fn start(
        file: PathBuf,
        reads: ConnectOptions,
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
                    let opened = match open(&file) {
                        Ok(connection) => Database::connect(reads).await.map(|db| (connection, db)),
                        Err(e) => Err(e),
                    };
                    match opened {
                        Ok((connection, db)) => {
                            if ready.send(Ok(())).is_ok() {
                                run(connection, db, &cache, &committed, queued).await;
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

/// Prepared statements the writer keeps: its UPDATE and INSERT differ with the number of rooms
/// and messages in the batch, the push outbox statement with the number of members present.
const STATEMENTS: usize = 64;

/// The writer's connection to the database file, set as the pool's are (WAL, the busy timeout,
/// foreign keys, the checkpointer's threshold), with two differences. Its commits are synced to
/// disk (`synchronous=FULL`): an acknowledged message survives a power cut, and so does
/// everything committed before it, since the log is written in order. The statement journal of
/// a batch (its INSERT changes many pages after the UPDATE) stays in memory instead of a
/// temporary file made and deleted every time.
pub(super) fn open(file: &Path) -> Result<Connection, DbErr> {
    let connection = Connection::open(file).map_err(sqlite_error)?;
    connection
        .busy_timeout(super::BUSY_TIMEOUT)
        .map_err(sqlite_error)?;
    connection.set_prepared_statement_cache_capacity(STATEMENTS);
    let pragmas = format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {}",
        checkpoint::LOG_LIMIT
    );
    connection.execute_batch(&pragmas).map_err(sqlite_error)?;
    Ok(connection)
}

fn sqlite_error(e: rusqlite::Error) -> DbErr {
    DbErr::Custom(format!("SQLite: {e}"))
}

async fn run(
    mut connection: Connection,
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
                    write(&mut connection, cache, &mut batch);
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
        write(&mut connection, cache, &mut batch);
        committed.notify();
    }
}

/// Stores a batch and answers every request in it, leaving `batch` empty. Each stored message
/// is in the cache of newest messages before its caller hears of it.
pub(super) fn write(connection: &mut Connection, cache: &RecentCache, batch: &mut Vec<Request>) {
    if batch.is_empty() {
        return;
    }
    match store_batch(connection, batch) {
        Ok(stored) => {
            for (request, stored) in batch.drain(..).zip(stored) {
                answer_stored(cache, request, stored);
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
            for request in batch.drain(..) {
                match store_batch(connection, std::slice::from_ref(&request)) {
                    Ok(mut stored) => {
                        let stored = stored.pop().flatten();
                        answer_stored(cache, request, stored);
                    }
                    Err(e) => request.answer(Err(e)),
                }
            }
        }
    }
}

/// Answers a request of a committed batch: its message as stored, or `None` (no such room).
fn answer_stored(cache: &RecentCache, request: Request, stored: Option<Stored>) {
    let added = stored.map(|stored| stored.added(request.new));
    if let Some(added) = &added {
        cache.stored(&added.message);
    }
    let _ = request.answer.send(Ok(added));
}

/// The whole batch in one transaction: one answer per request, in order, or the first error
/// (and nothing stored: the transaction is rolled back when dropped uncommitted).
fn store_batch(
    connection: &mut Connection,
    batch: &[Request],
) -> Result<Vec<Option<Stored>>, DbErr> {
    outside_transaction(connection)?;
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    let mut stored = stage(&transaction, batch)?;
    queue_pushes(&transaction, batch, &mut stored)?;
    transaction.commit().map_err(sqlite_error)?;
    Ok(stored)
}

/// Makes sure the connection is outside any transaction. rusqlite asks SQLite whether a failed
/// batch's transaction is still open and rolls it back if so; should that ROLLBACK fail too, the
/// transaction would stay open, keeping the write lock and failing every later BEGIN. Such a
/// connection is closed (SQLite rolls back what it had) and replaced by a new one.
fn outside_transaction(connection: &mut Connection) -> Result<(), DbErr> {
    if connection.is_autocommit() {
        return Ok(());
    }
    let file = connection
        .path()
        .map(PathBuf::from)
        .ok_or_else(|| DbErr::Custom("the message writer's connection has no file".into()))?;
    tracing::warn!("the message writer's connection was left inside a transaction; reopening it");
    let stale = std::mem::replace(connection, open(&file)?);
    if let Err((_, e)) = stale.close() {
        tracing::warn!(error = %e, "closing the message writer's old connection failed");
    }
    Ok(())
}

/// Runs `sql` with `params`, calling `each` with every row it returns.
fn query(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    mut each: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<Result<(), DbErr>>,
) -> Result<(), DbErr> {
    let mut statement = connection.prepare_cached(sql).map_err(sqlite_error)?;
    let mut rows = statement.query(params).map_err(sqlite_error)?;
    while let Some(row) = rows.next().map_err(sqlite_error)? {
        each(row).map_err(sqlite_error)??;
    }
    Ok(())
}

/// A value bound by [`Params`], as SQLite takes it.
fn sqlite_value(value: Value) -> Result<rusqlite::types::Value, DbErr> {
    use rusqlite::types::Value as Sqlite;
    let integer = |i: Option<i64>| i.map_or(Sqlite::Null, Sqlite::Integer);
    Ok(match value {
        Value::Bool(b) => integer(b.map(i64::from)),
        Value::Int(i) => integer(i.map(i64::from)),
        Value::BigInt(i) => integer(i),
        Value::String(s) => s.map_or(Sqlite::Null, Sqlite::Text),
        other => {
            return Err(DbErr::Custom(format!(
                "the message writer binds no {other:?}"
            )));
        }
    })
}

/// Queues the pushes of the stored messages whose room has someone with a device token: the
/// outbox statement of each (it returns a row for every push it queued, or moved on to it).
fn queue_pushes(
    connection: &Connection,
    batch: &[Request],
    stored: &mut [Option<Stored>],
) -> Result<(), DbErr> {
    for (request, stored) in batch.iter().zip(stored.iter_mut()) {
        let Some(stored) = stored else { continue };
        let Some(room_name) = &stored.pushable_in else {
            continue;
        };
        let model = stored.added(request.new.clone()).message;
        let mut p = Params::new(DatabaseBackend::Sqlite);
        let sql = enqueue_statement(&mut p, room_name, &model, &request.fanout.borrow());
        let values = p.into_values().into_iter().map(sqlite_value);
        let values = values.collect::<Result<Vec<_>, _>>()?;
        let mut pushes = 0;
        query(connection, &sql, params_from_iter(values), |_| {
            pushes += 1;
            Ok(Ok(()))
        })?;
        stored.pushes = pushes;
    }
    Ok(())
}

/// `rows` rows of `columns` placeholders, for VALUES.
fn rows(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

fn text(s: &str) -> ValueRef<'_> {
    ValueRef::Text(s.as_bytes())
}

/// Values borrowed from the batch, as a statement's parameters.
fn bound<'a>(binds: &'a [ValueRef<'a>]) -> impl rusqlite::Params + 'a {
    params_from_iter(binds.iter().map(|v| ToSqlOutput::Borrowed(*v)))
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

/// Stores the batch in the open transaction.
///
/// Every room's `lastActive` moves past its messages: a room with `k` messages gets
/// `max(lastActive, now - 1) + k`, so its first message is stamped `max(lastActive + 1, now)`,
/// as one message alone would be, and the others follow one millisecond apart, in the order they
/// reached the writer. Messages are inserted from the stamped rooms (the insert joins them), so a
/// message to a room that does not exist is simply not stored.
fn stage(connection: &Connection, batch: &[Request]) -> Result<Vec<Option<Stored>>, DbErr> {
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

    // The statements' shapes depend only on how many rows of values they take, rounded up to a
    // power of two (the extra rows are NULLs, matching no room), so that they are prepared once.
    let room_rows = counts.len().next_power_of_two();
    let mut binds = Vec::with_capacity(3 + 2 * room_rows);
    binds.extend([Integer(now - 1), Integer(now - 1), Integer(now)]);
    for (room, count) in &counts {
        binds.extend([text(room), Integer(*count)]);
    }
    binds.resize(3 + 2 * room_rows, Null);
    // VALUES columns are named column1, column2, … .
    let update = format!(
        "UPDATE room SET last_active = CASE WHEN room.last_active > ? \
         THEN room.last_active ELSE ? END + b.column2, updated_at = ? \
         FROM (VALUES {rooms}) AS b WHERE room.id = b.column1 \
         RETURNING room.id, room.name, room.last_active, EXISTS (SELECT 1 FROM room_member m \
         JOIN push_token t ON t.bubble_id = m.bubble_id WHERE m.room_id = room.id)",
        rooms = rows(room_rows, 2)
    );
    let mut stamped: HashMap<String, Stamped> = HashMap::with_capacity(counts.len());
    query(connection, &update, bound(&binds), |row| {
        let room = Stamped {
            name: row.get(1)?,
            last_active: row.get(2)?,
            pushable: row.get(3)?,
            ids: Vec::new(),
        };
        stamped.insert(row.get(0)?, room);
        Ok(Ok(()))
    })?;

    const COLUMNS: usize = 9;
    let message_rows = batch.len().next_power_of_two();
    binds.clear();
    for (request, place) in batch.iter().zip(&places) {
        let new = &request.new;
        let count = counts.get(new.room_id.as_str()).copied().unwrap_or(1);
        binds.extend([
            text(&new.room_id),
            Integer(*place),
            text(&new.user_id),
            text(&new.bubble_id),
            text(new.message_type),
            text(&new.content),
            new.target_user.as_deref().map_or(Null, text),
            new.target_user_bubble_id.as_deref().map_or(Null, text),
            Integer(count),
        ]);
    }
    binds.resize(COLUMNS * message_rows, Null);
    // A message is stamped its room's new `lastActive`, less its room's count, plus its place.
    let insert = format!(
        "INSERT INTO message (room_id, user_id, bubble_id, message_type, content, target_user, \
         target_user_bubble_id, created_at, updated_at) \
         SELECT v.column1, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, \
         room.last_active - v.column9 + v.column2, room.last_active - v.column9 + v.column2 \
         FROM (VALUES {messages}) AS v JOIN room ON room.id = v.column1 \
         RETURNING id, room_id, created_at",
        messages = rows(message_rows, COLUMNS)
    );
    // RETURNING gives rows in no set order.
    let mut inserted = 0;
    query(connection, &insert, bound(&binds), |row| {
        let room = row.get_ref(1)?.as_str()?;
        let Some(room) = stamped.get_mut(room) else {
            let unasked = format!("a message of room {room} not asked for");
            return Ok(Err(DbErr::Custom(unasked)));
        };
        room.ids.push((row.get(2)?, row.get(0)?));
        inserted += 1;
        Ok(Ok(()))
    })?;

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
        ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, SqliteTransactionMode,
        TransactionOptions, TransactionTrait,
    };

    use super::*;
    use crate::store::{NewRoom, Store, one_connection, temp_store};

    async fn new_room(store: &Store, name: &str, members: &[&str]) -> String {
        let room = store
            .rooms()
            .create(NewRoom::by_author(name, 100), members, None)
            .await
            .unwrap();
        room.id
    }

    /// Runs `messages` as one batch on a connection of their own, as the writer would, and
    /// returns the answers in order.
    async fn batch(
        (one, store): (&mut Connection, &Store),
        messages: Vec<(NewMessage, PushFanout<'_>)>,
    ) -> Vec<Answer> {
        let mut requests = Vec::new();
        let mut answers = Vec::new();
        for (new, fanout) in messages {
            let (request, answered) = Request::new(new, &fanout);
            requests.push(request);
            answers.push(answered);
        }
        write(one, &store.recent, &mut requests);
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

    async fn contents(store: &Store, room_id: &str) -> Vec<String> {
        let stored = stored(store, room_id).await;
        stored.into_iter().map(|m| m.content).collect()
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
        let mut one = one_connection(&dir);
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
        let answers = batch((&mut one, &store), messages).await;

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
            .messages()
            .add(NewMessage::by_author(&a, "after"), &PushFanout::NOBODY_HERE)
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
                    .messages()
                    .add(
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
        let mut one = one_connection(&dir);
        let a = new_room(&store, "A", &["author"]).await;
        let answers = batch(
            (&mut one, &store),
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
        let contents = contents(&store, &a).await;
        assert_eq!(contents, ["one", "two"]);

        // A batch of nothing but missing rooms stores nothing.
        let answers = batch(
            (&mut one, &store),
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
        let mut one = one_connection(&dir);
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
            (&mut one, &store),
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
        let contents = contents(&store, &a).await;
        assert_eq!(contents, ["one", "three"]);
        assert_eq!(last_active(&store, &a).await, created(&answers[3]));
        assert_eq!(stored(&store, &b).await.len(), 1);

        // Alone in its batch, it fails the same way and stores nothing.
        let answers = batch(
            (&mut one, &store),
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
            .messages()
            .add(
                NewMessage::by_author(&b, "refused"),
                &PushFanout::NOBODY_HERE,
            )
            .await;
        assert!(through.is_err());
        let fine = store
            .messages()
            .add(NewMessage::by_author(&b, "fine"), &PushFanout::NOBODY_HERE)
            .await;
        assert!(matches!(fine, Ok(Some(_))), "{fine:?}");
    }

    #[tokio::test]
    async fn a_transaction_left_open_by_a_failed_batch_goes_with_its_connection() {
        let (dir, store) = temp_store().await;
        let mut one = one_connection(&dir);
        let a = new_room(&store, "A", &["author"]).await;
        // As a batch whose COMMIT and then ROLLBACK failed leaves the connection: inside its
        // transaction, holding the write lock.
        one.execute_batch("BEGIN IMMEDIATE; UPDATE room SET name = 'never committed'")
            .unwrap();

        let answers = batch(
            (&mut one, &store),
            vec![(NewMessage::by_author(&a, "next"), PushFanout::NOBODY_HERE)],
        )
        .await;
        assert!(matches!(answers[0], Ok(Some(_))), "{:?}", answers[0]);
        assert!(one.is_autocommit(), "the writer is outside any transaction");
        assert_eq!(contents(&store, &a).await, ["next"], "committed for real");
        let room = store.rooms().get(&a).await.unwrap().expect("room");
        assert_eq!(room.name, "A", "the transaction left open is not committed");
        store
            .db()
            .execute_unprepared("UPDATE room SET name = 'B'")
            .await
            .expect("the write lock is free");
    }

    #[tokio::test]
    async fn pushes_in_a_batch_are_queued_as_one_message_at_a_time_would() {
        let (dir, store) = temp_store().await;
        let mut one = one_connection(&dir);
        let a = new_room(&store, "A", &["author", "away", "here", "tokenless"]).await;
        let quiet = new_room(&store, "Quiet", &["author", "tokenless"]).await;
        for (token, who) in [
            ("tok-away", "away"),
            ("tok-here", "here"),
            ("tok-author", "author"),
        ] {
            store
                .push()
                .register_token(token, who, "fcm")
                .await
                .unwrap();
        }
        let present: Vec<Arc<str>> = vec!["author".into(), "here".into()];
        let with_here = PushFanout {
            present: &present,
            ..PushFanout::NOBODY_HERE
        };
        let answers = batch(
            (&mut one, &store),
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
            .push()
            .outbox_rows()
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

    #[tokio::test]
    async fn a_database_in_memory_stores_messages_without_the_writer() {
        let args = crate::config::DatabaseArgs {
            database_url: "sqlite::memory:".into(),
            db_connections: 2,
            log: "warn".into(),
        };
        let store = Store::connect(&args).await.unwrap();
        assert!(store.writer.is_none(), "no other connection reaches it");
        let room = new_room(&store, "A", &["author"]).await;
        let first = store
            .messages()
            .add(
                NewMessage::by_author(&room, "one"),
                &PushFanout::NOBODY_HERE,
            )
            .await;
        let second = store
            .messages()
            .add(
                NewMessage::by_author(&room, "two"),
                &PushFanout::NOBODY_HERE,
            )
            .await;
        assert!(created(&second) > created(&first));
        let contents = contents(&store, &room).await;
        assert_eq!(contents, ["one", "two"]);
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
                        .messages()
                        .add(message, &PushFanout::NOBODY_HERE)
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

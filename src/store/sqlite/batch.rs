//! One batch of the message writer, in one transaction: BEGIN IMMEDIATE, one UPDATE that stamps
//! every room of the batch, one INSERT of every message, the push outbox statement of each
//! message whose room has someone with a device token, COMMIT; the values bound to them, as
//! SQLite takes them; and the cache of rooms' newest messages, which every stored message joins
//! before its caller is answered.
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
use std::collections::HashMap;
use std::path::PathBuf;

use entity::message;
use rusqlite::types::ToSqlOutput;
use rusqlite::types::ValueRef::{self, Integer, Null};
use rusqlite::{Connection, TransactionBehavior, params_from_iter};
use sea_orm::{DatabaseBackend, DbErr, Value};

use super::writer::Request;
use super::{open, sqlite_error};
use crate::clock::now_ms;
use crate::store::messages::{Added, NewMessage};
use crate::store::push_outbox::{Params, enqueue_statement};
use crate::store::recent::RecentCache;

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
            crate::ops::record::database_error("batch");
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

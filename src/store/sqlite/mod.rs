//! What SQLite has that PostgreSQL does not: the message writer, a thread that stores new
//! messages in batches on a connection of its own ([`writer`], each batch's SQL in [`batch`]),
//! and the checkpointer, which copies the write-ahead log back into the database file off the
//! writer's path ([`checkpoint`]).
use std::path::Path;

use rusqlite::Connection;
use sea_orm::DbErr;

mod batch;
pub(super) mod checkpoint;
#[cfg(test)]
mod tests;
mod writer;

pub(super) use writer::{Answer, Writer, stopped};

/// Prepared statements the writer keeps: its UPDATE and INSERT differ with the number of rooms
/// and messages in the batch, the push outbox statement with the number of members present.
const STATEMENTS: usize = 64;

/// The writer's connection to the database file, set as the pool's are (WAL, the busy timeout,
/// foreign keys, the checkpointer's threshold), with two differences. Its commits are synced to
/// disk (`synchronous=FULL`): an acknowledged message survives a power cut, and so does
/// everything committed before it, since the log is written in order. The statement journal of
/// a batch (its INSERT changes many pages after the UPDATE) stays in memory instead of a
/// temporary file made and deleted every time.
pub(in crate::store) fn open(file: &Path) -> Result<Connection, DbErr> {
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

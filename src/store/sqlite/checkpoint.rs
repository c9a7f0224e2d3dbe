//! On SQLite, copies the write-ahead log back into the database file off the writer's path.
//!
//! In WAL mode every commit appends the pages it changed to the log, and SQLite by default
//! copies the log back into the database (a checkpoint, with its `fsync`s) inside whichever
//! commit takes the log past 1,000 pages: on the message writer, that stalls every message
//! waiting behind it. Here the connections only checkpoint on their own past [`LOG_LIMIT`]
//! pages, a safety valve; the checkpointer, a task with a connection of its own, does the
//! ordinary work soon after the writer's commits (and every few seconds for the other
//! connections'), in passive mode: it never blocks a writer or a reader.
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};
use tokio::sync::Notify;

/// Pages of log past which a committing connection checkpoints itself (64 MiB of 4 KiB pages):
/// only reached when the checkpointer cannot keep up or a reader holds the log.
pub(in crate::store) const LOG_LIMIT: u32 = 16_384;

/// How long the checkpointer lets commits gather before it runs: a checkpoint copies each page
/// once however many commits changed it.
const GATHER: Duration = Duration::from_millis(100);
/// The checkpointer also runs this often unasked, for what other connections committed.
const EVERY: Duration = Duration::from_secs(5);

/// Tells the checkpointer that something was committed.
#[derive(Debug, Clone, Default)]
pub(in crate::store) struct Committed(Arc<Notify>);

impl Committed {
    pub(super) fn notify(&self) {
        self.0.notify_one();
    }
}

/// Runs the checkpointer on `db` (a connection of its own) until the process ends.
pub(in crate::store) fn start(db: DatabaseConnection) -> Committed {
    let committed = Committed::default();
    let wake = committed.0.clone();
    tokio::spawn(async move {
        loop {
            let _ = tokio::time::timeout(EVERY, wake.notified()).await;
            tokio::time::sleep(GATHER).await;
            if let Err(e) = checkpoint(&db).await {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
    });
    committed
}

async fn checkpoint(db: &DatabaseConnection) -> Result<(), DbErr> {
    let sql = "PRAGMA wal_checkpoint(PASSIVE)";
    let stmt = Statement::from_string(db.get_database_backend(), sql);
    db.execute_raw(stmt).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::store::{NewMessage, NewRoom, PushFanout, temp_store};

    #[tokio::test]
    async fn what_the_writer_commits_reaches_the_database_file_soon_after() {
        let (dir, store) = temp_store().await;
        let file = dir.path().join("t.db");
        let room = store
            .rooms()
            .create(NewRoom::by_author("A", 21), &["author"], None)
            .await
            .unwrap();
        let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let before = size();
        for i in 0..2_000 {
            let new = NewMessage::by_author(&room.id, &format!("{i} {}", "x".repeat(1000)));
            let fanout = PushFanout::NOBODY_HERE;
            store.messages().add(new, &fanout).await.unwrap().unwrap();
        }
        // Two megabytes of messages, far below the 64 MiB at which a connection would copy the
        // log back itself: only the checkpointer moves them into the file, and quickly.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while size() < before + 2_000_000 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the database file is still {} bytes (was {before})",
                size()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

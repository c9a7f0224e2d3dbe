//! Pooled connections go back to the pool only outside any transaction; one that comes back
//! inside one is closed, and the pool opens another.
//!
//! Why: when a COMMIT or a ROLLBACK fails, sqlx still counts the connection as inside the
//! transaction (it lowers its count only on success), while SQLite may have ended the transaction
//! itself: a commit that cannot be written (disk full, a file past its size limit, an I/O error)
//! is rolled back. The next BEGIN on that connection then becomes a SAVEPOINT, and its commit a
//! RELEASE; once one such transaction is given up (ROLLBACK TO, which leaves the savepoint and so
//! SQLite's transaction open), every later "commit" on the connection only releases a savepoint
//! of a transaction that never commits: writes acknowledged and lost, and SQLite's write lock held
//! for as long as the connection lives, so that every other connection (the message writer's
//! too) waits out its busy timeout and fails.
//!
//! The contract: a connection is handed out again only when both sqlx and the database agree
//! that it is outside any transaction, so a transaction whose commit returned `Ok` has really
//! committed, and a failed one leaves no lock behind. The check is the pool's `after_release`
//! hook, one place for every pooled transaction. On SQLite it runs after whatever was queued on
//! the connection's thread (the ROLLBACK of a transaction dropped uncommitted), and asks SQLite
//! itself (`sqlite3_get_autocommit`, through the same library that rusqlite links); that costs
//! one more round trip to that thread per release. On PostgreSQL sqlx's own count stays right (a
//! dropped transaction's ROLLBACK is queued and counted at once, and a connection that cannot run
//! it fails the pool's ping and is closed); the check only makes sure.
use sea_orm::sqlx::pool::{PoolConnectionMetadata, PoolOptions};
use sea_orm::sqlx::postgres::{PgConnection, Postgres};
use sea_orm::sqlx::sqlite::{Sqlite, SqliteConnection};
use sea_orm::sqlx::{Connection, Error};

/// SQLite pool options that close a connection coming back inside a transaction.
pub(super) fn sqlite(options: PoolOptions<Sqlite>) -> PoolOptions<Sqlite> {
    options.after_release(|connection, meta| Box::pin(sqlite_reusable(connection, meta)))
}

/// PostgreSQL pool options that close a connection coming back inside a transaction.
pub(super) fn postgres(options: PoolOptions<Postgres>) -> PoolOptions<Postgres> {
    options.after_release(|connection, _| Box::pin(postgres_reusable(connection)))
}

async fn sqlite_reusable(
    connection: &mut SqliteConnection,
    meta: PoolConnectionMetadata,
) -> Result<bool, Error> {
    // Locking the handle waits until the connection's thread has run what was queued before.
    let mut handle = connection.lock_handle().await?;
    // SAFETY: the handle is valid and locked: no other thread calls SQLite on it meanwhile.
    let autocommit =
        unsafe { rusqlite::ffi::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) } != 0;
    drop(handle);
    let reusable = autocommit && !connection.is_in_transaction();
    if !reusable {
        tracing::warn!(
            autocommit,
            age_s = meta.age.as_secs(),
            "a pooled SQLite connection came back inside a transaction (its COMMIT or ROLLBACK \
             failed); closing it"
        );
    }
    Ok(reusable)
}

async fn postgres_reusable(connection: &mut PgConnection) -> Result<bool, Error> {
    let reusable = !connection.is_in_transaction();
    if !reusable {
        tracing::warn!("a pooled PostgreSQL connection came back inside a transaction; closing it");
    }
    Ok(reusable)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use sea_orm::{ConnectionTrait, Database, TransactionTrait};

    use crate::config::DatabaseArgs;
    use crate::store::{options, temp_pg_store};

    /// The rows of `t`, read on a connection of `db`.
    async fn rows(db: &sea_orm::DatabaseConnection) -> Vec<i64> {
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT x FROM t ORDER BY x",
            ))
            .await
            .expect("rows");
        rows.iter()
            .map(|row| row.try_get::<i64>("", "x").expect("x"))
            .collect()
    }

    /// A transaction given up (2), then one committed (3), on `db`.
    async fn give_up_then_commit(db: &sea_orm::DatabaseConnection) {
        let txn = db.begin().await.expect("begin");
        txn.execute_unprepared("INSERT INTO t VALUES (2)")
            .await
            .expect("insert");
        drop(txn);
        let txn = db.begin().await.expect("begin");
        txn.execute_unprepared("INSERT INTO t VALUES (3)")
            .await
            .expect("insert");
        txn.commit().await.expect("commit");
    }

    /// SQLite rolls a transaction back when its COMMIT fails to write (disk full, file too
    /// large, I/O error), as it does when a commit hook refuses the commit. The pool must not
    /// hand that connection out again believing it is still inside the transaction: the next
    /// transactions on it would be savepoints of one that never commits, holding the write lock.
    #[tokio::test]
    async fn sqlite_connection_whose_commit_failed_is_not_used_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("t.db");
        let args = DatabaseArgs {
            database_url: format!("sqlite://{}?mode=rwc", file.display()),
            db_connections: 1,
            log: "warn".into(),
        };
        // One connection: every transaction below runs on the pool's only one.
        let db = Database::connect(options(&args, 1)).await.expect("pool");
        db.execute_unprepared("CREATE TABLE t (x INTEGER NOT NULL)")
            .await
            .expect("table");
        let refuse = Arc::new(AtomicBool::new(false));
        {
            let mut connection = db
                .get_sqlite_connection_pool()
                .acquire()
                .await
                .expect("the connection");
            let refuse = refuse.clone();
            let mut handle = connection.lock_handle().await.expect("its handle");
            handle.set_commit_hook(move || !refuse.load(Ordering::SeqCst));
        }

        refuse.store(true, Ordering::SeqCst);
        let txn = db.begin().await.expect("begin");
        txn.execute_unprepared("INSERT INTO t VALUES (1)")
            .await
            .expect("insert");
        assert!(txn.commit().await.is_err(), "the commit is refused");
        refuse.store(false, Ordering::SeqCst);

        give_up_then_commit(&db).await;

        // Another connection sees exactly what was committed, and may write at once.
        let other = rusqlite::Connection::open(&file).expect("another connection");
        other
            .busy_timeout(std::time::Duration::from_secs(2))
            .expect("busy timeout");
        let mut select = other.prepare("SELECT x FROM t ORDER BY x").expect("select");
        let stored: Vec<i64> = select
            .query_map([], |row| row.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(stored, [3], "only the committed transaction is stored");
        let write = other.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (4); COMMIT");
        assert!(write.is_ok(), "the write lock is free: {write:?}");
    }

    /// On PostgreSQL a failed COMMIT ends the transaction on the server, and a terminated
    /// backend fails the pool's test of the connection; either way the next transaction runs on
    /// a connection outside any transaction, and its commit is one.
    #[tokio::test]
    async fn postgres_connection_whose_commit_failed_is_not_used_in_a_transaction() {
        let Some((guard, _store)) = temp_pg_store().await else {
            return;
        };
        let args = DatabaseArgs {
            database_url: guard.url(),
            db_connections: 1,
            log: "warn".into(),
        };
        let db = Database::connect(options(&args, 1)).await.expect("pool");
        let other = Database::connect(guard.url()).await.expect("another pool");
        db.execute_unprepared(
            "CREATE TABLE t (x BIGINT NOT NULL, CONSTRAINT once UNIQUE (x) DEFERRABLE INITIALLY \
             DEFERRED)",
        )
        .await
        .expect("table");

        // The commit fails on a live connection (a deferred constraint)...
        let txn = db.begin().await.expect("begin");
        txn.execute_unprepared("INSERT INTO t VALUES (1), (1)")
            .await
            .expect("insert");
        assert!(txn.commit().await.is_err(), "the commit fails");
        give_up_then_commit(&db).await;

        // ...and on a connection whose backend was terminated.
        let txn = db.begin().await.expect("begin");
        txn.execute_unprepared("INSERT INTO t VALUES (4)")
            .await
            .expect("insert");
        other
            .execute_unprepared(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .await
            .expect("terminate");
        assert!(txn.commit().await.is_err(), "the commit fails");
        let txn = db.begin().await.expect("begin");
        txn.execute_unprepared("INSERT INTO t VALUES (5)")
            .await
            .expect("insert");
        txn.commit().await.expect("commit");

        assert_eq!(
            rows(&other).await,
            [3, 5],
            "only the committed transactions"
        );
        other.close().await.expect("close");
        db.close().await.expect("close");
    }
}

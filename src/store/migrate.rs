//! Bringing the schema up to date, one process at a time.
//!
//! Every process that opens the store migrates it first (`serve`, `migrate`, the `counsellor`
//! commands). Several of them starting at once on one PostgreSQL database (replicas started
//! together, a rolling deploy that brings a new migration) would each create the same tables and
//! types, and all but one would fail (`duplicate key value violates unique constraint
//! "pg_type_typname_nsp_index"`). On PostgreSQL the migrations therefore run under a
//! session-level advisory lock, on a connection of their own that holds it: a process that comes
//! second waits for the first to finish, then finds nothing left to apply. The lock lives and
//! dies with that connection, so a process that dies while migrating releases it. On SQLite the
//! store's own pool migrates, as one process serves a SQLite file.
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    Statement,
};

use crate::config::DatabaseArgs;

/// Key of the advisory lock around migrations: `bubblemg` in ASCII. It lies outside the 32-bit
/// range of the presence locks (`hashtext`), so no other lock of this server can share it.
const MIGRATION_LOCK: i64 = 0x6275_6262_6c65_6d67;

/// How long connecting may wait for the database; waiting for the lock has no limit (another
/// process's migrations take as long as they take).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Applies the pending migrations to the database of `args`, which `db` is connected to.
pub(super) async fn up(args: &DatabaseArgs, db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Migrator::up(db, None).await;
    }
    // One connection, kept for the whole run, so that the session holding the lock is the one
    // that migrates.
    let mut options = ConnectOptions::new(args.database_url.clone());
    options
        .max_connections(1)
        .min_connections(1)
        .acquire_timeout(CONNECT_TIMEOUT)
        .idle_timeout(None)
        .max_lifetime(None)
        .sqlx_logging(false);
    let session = Database::connect(options).await?;
    let locked = session
        .execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_lock($1)",
            [MIGRATION_LOCK.into()],
        ))
        .await;
    let migrated = match locked {
        Ok(_) => Migrator::up(&session, None).await,
        Err(e) => Err(e),
    };
    // Closing the session releases the lock.
    let closed = session.close().await;
    migrated.and(closed)
}

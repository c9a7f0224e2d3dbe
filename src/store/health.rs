//! What operators ask of the store: whether the database answers, whether the message writer
//! runs, and the gauges read when metrics are scraped.
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement};

use super::Store;
use super::push_outbox::PENDING;

/// Connections of the store's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConnections {
    /// Open, in use or idle.
    pub open: u32,
    pub idle: usize,
}

impl Store {
    /// A `SELECT 1` on a pooled connection.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.db.ping().await
    }

    /// Whether the message writer (SQLite) still takes messages; true when there is none.
    pub fn writer_running(&self) -> bool {
        self.writer.as_ref().is_none_or(|w| w.running())
    }

    /// Jobs waiting for the message writer (SQLite); `None` when there is none.
    pub fn writer_queue_depth(&self) -> Option<usize> {
        self.writer.as_ref().map(|w| w.waiting())
    }

    /// The pool's open and idle connections.
    pub fn pool_connections(&self) -> PoolConnections {
        match self.db.get_database_backend() {
            DatabaseBackend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                PoolConnections {
                    open: pool.size(),
                    idle: pool.num_idle(),
                }
            }
            DatabaseBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                PoolConnections {
                    open: pool.size(),
                    idle: pool.num_idle(),
                }
            }
            _ => PoolConnections { open: 0, idle: 0 },
        }
    }

    /// Pushes in the outbox still to be sent (pending, due or not).
    pub async fn push_outbox_depth(&self) -> Result<i64, DbErr> {
        let sql = format!("SELECT COUNT(*) AS n FROM push_outbox WHERE status = '{PENDING}'");
        let stmt = Statement::from_string(self.db.get_database_backend(), sql);
        match self.db.query_one_raw(stmt).await? {
            Some(row) => row.try_get::<i64>("", "n"),
            None => Ok(0),
        }
    }
}

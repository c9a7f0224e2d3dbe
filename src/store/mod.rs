//! The only code that talks to the database: one module per aggregate. Nothing here knows about
//! sockets; callers pass plain ids and get entity models back.
//!
//! [`Store`] holds the connection and hands out one small handle per aggregate, which borrows it
//! and costs nothing to make: `store.rooms().create(…)`, `store.push().claim(…)`,
//! `store.tincan().groups().edit(…)`. Each handle lives in its aggregate's module with the
//! methods that read and write it.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DbErr};

use crate::config::DatabaseArgs;

mod accounts;
pub mod backup;
mod counsellors;
mod health;
mod issues;
mod messages;
mod migrate;
mod people;
mod pool;
mod presence;
mod push_outbox;
mod push_tokens;
mod recent;
mod rooms;
mod sessions;
mod sqlite;
pub mod tincan;
mod tokens;

pub use accounts::{Accounts, SESSION_ACCOUNT_KEY, TOKEN_LIFETIME_MS};
pub use counsellors::Counsellors;
pub use health::PoolConnections;
pub use issues::{IssueType, Issues, NewIssue, NewReport};
pub use messages::{Added, Committing, Messages, NewMessage};
pub use people::People;
pub use presence::{Departed, DepartedSocket, SharedPresence};
pub use push_outbox::{Push, PushFanout};
pub use recent::Recent;
pub use rooms::{HOT, NewRoom, PRIVATE, PUBLIC, Rooms};
pub use sessions::SessionStore;
pub use tincan::{
    ConversationRecord, EditedGroup, GroupChanges, GroupCursor, MEMBER, NewGroup, PENDING,
    SignedIn, TinCan,
};
pub use tokens::IssuedToken;

/// Handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// On SQLite, the task that stores new messages in batches (see [`mod@sqlite`]).
    writer: Option<sqlite::Writer>,
    /// Rooms' newest messages (see [`recent`]).
    recent: Arc<recent::RecentCache>,
}

impl Store {
    /// Connects (see `options`) and brings the schema up to date (see `migrate`). On SQLite,
    /// also starts the writer that stores new messages (see `sqlite`), on a connection of its
    /// own.
    pub async fn connect(args: &DatabaseArgs) -> Result<Self, DbErr> {
        let db = Database::connect(options(args, args.db_connections.max(2))).await?;
        migrate::up(args, &db).await?;
        let recent = Arc::<recent::RecentCache>::default();
        let writer = match db.get_database_backend() {
            DatabaseBackend::Sqlite => match sqlite_file(&args.database_url) {
                Some(file) => {
                    let checkpoints = Database::connect(options(args, 1)).await?;
                    let committed = sqlite::checkpoint::start(checkpoints);
                    let reads = options(args, 1);
                    Some(sqlite::Writer::start(file, reads, recent.clone(), committed).await?)
                }
                // In memory: no other connection can reach the database (nor has it a log to
                // copy back); each message is stored in a transaction of its own.
                None => None,
            },
            _ => None,
        };
        Ok(Self { db, writer, recent })
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Rooms and their members.
    pub fn rooms(&self) -> Rooms<'_> {
        Rooms { store: self }
    }

    /// Messages and reactions, and rooms' newest messages kept in memory.
    pub fn messages(&self) -> Messages<'_> {
        Messages { store: self }
    }

    /// People: the `bubble` token to bubbleId mapping, and names.
    pub fn people(&self) -> People<'_> {
        People { store: self }
    }

    /// Issues for counsellors, and user reports.
    pub fn issues(&self) -> Issues<'_> {
        Issues { store: self }
    }

    /// Counsellors as the protocol knows them.
    pub fn counsellors(&self) -> Counsellors<'_> {
        Counsellors { store: self }
    }

    /// Counsellor accounts and their API tokens.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts { store: self }
    }

    /// HTTP sessions, as the session layer's store.
    pub fn sessions(&self) -> SessionStore {
        SessionStore {
            db: self.db.clone(),
        }
    }

    /// Device tokens and the push outbox.
    pub fn push(&self) -> Push<'_> {
        Push { store: self }
    }

    /// Everything TinCan: users, groups, conversations and messages.
    pub fn tincan(&self) -> TinCan<'_> {
        TinCan { store: self }
    }
}

/// How long a connection waits for another's write to end before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The database file of a SQLite URL, once it exists (an in-memory database has none).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let options: SqliteConnectOptions = url.parse().ok()?;
    let file = options.get_filename();
    file.is_file().then(|| file.to_owned())
}

/// Pool options for `connections` connections, on SQLite with [`sqlite()`]; a connection that
/// comes back to the pool inside a transaction is closed (see [`pool`]).
fn options(args: &DatabaseArgs, connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(args.database_url.clone());
    options
        .max_connections(connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(sqlite)
        .map_sqlx_sqlite_pool_opts(pool::sqlite)
        .map_sqlx_postgres_pool_opts(pool::postgres);
    options
}

/// SQLite runs in WAL mode with `synchronous=NORMAL` (a commit survives a crash of the process;
/// the message writer's are synced too, see [`sqlite::open`]),
/// a busy timeout so that concurrent writers wait instead of failing, and foreign keys on. The
/// log is copied back into the database by the checkpointer (see [`sqlite::checkpoint`]).
fn sqlite(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        .pragma(
            "wal_autocheckpoint",
            sqlite::checkpoint::LOG_LIMIT.to_string(),
        )
}

/// A store on a fresh SQLite file, for unit tests.
#[cfg(test)]
pub(crate) async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let args = DatabaseArgs {
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
        db_connections: 2,
        log: "warn".into(),
    };
    let store = Store::connect(&args).await.expect("store");
    (dir, store)
}

/// A connection to the database of [`temp_store`] opened as the message writer's is.
#[cfg(test)]
pub(crate) fn one_connection(dir: &tempfile::TempDir) -> rusqlite::Connection {
    sqlite::open(&dir.path().join("t.db")).expect("a connection")
}

/// A store on a fresh PostgreSQL database of its own, for unit tests, when `BUBBLE_TEST_PG` names
/// a server (`None` otherwise). The database is dropped with the returned guard.
#[cfg(test)]
pub(crate) async fn temp_pg_store() -> Option<(PgGuard, Store)> {
    use sea_orm::ConnectionTrait;

    let admin_url = std::env::var("BUBBLE_TEST_PG").ok()?;
    let name = format!("bubble_unit_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url)
        .await
        .expect("admin connection");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let guard = PgGuard { admin_url, name };
    let store = Store::connect(&DatabaseArgs {
        database_url: guard.url(),
        db_connections: 8,
        log: "warn".into(),
    })
    .await
    .expect("store");
    Some((guard, store))
}

/// Drops a test database when the test is done with it.
#[cfg(test)]
pub(crate) struct PgGuard {
    admin_url: String,
    name: String,
}

#[cfg(test)]
impl PgGuard {
    /// The URL of the test database.
    pub(crate) fn url(&self) -> String {
        let base = self.admin_url.split('?').next().unwrap_or(&self.admin_url);
        let server = &base[..base.rfind('/').expect("a database in BUBBLE_TEST_PG")];
        format!("{server}/{}", self.name)
    }
}

#[cfg(test)]
impl Drop for PgGuard {
    fn drop(&mut self) {
        use sea_orm::ConnectionTrait;

        let url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs inside the test's runtime, whose connections cannot be driven from here: a
        // thread of its own connects and drops the database.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(admin) = Database::connect(&url).await {
                        let _ = admin.execute_unprepared(&sql).await;
                        let _ = admin.close().await;
                    }
                });
            }
        })
        .join();
    }
}

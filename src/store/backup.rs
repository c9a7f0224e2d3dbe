//! A consistent copy of a SQLite database, taken while a server is using it.
//!
//! `VACUUM INTO` reads the database in one read transaction: the copy holds exactly what was
//! committed when it began (everything acknowledged by then, the message writer's batches too),
//! and in WAL mode that transaction neither waits for writers nor makes them wait. The copy is
//! written under a temporary name beside its destination, synced, then renamed into place, so a
//! file at the destination is always a whole copy. Restoring is starting a server on the copy.
//!
//! PostgreSQL has its own tool for this: `pg_dump`.
use std::path::{Path, PathBuf};

use sea_orm::sqlx::sqlite::SqliteConnectOptions;

/// Why a backup could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("only a SQLite database file can be backed up this way; use pg_dump for PostgreSQL")]
    NotSqlite,
    #[error("the database file {0} does not exist")]
    NoDatabase(PathBuf),
    #[error("{0} exists already: a backup never overwrites a file")]
    Exists(PathBuf),
    #[error("copying the database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("writing the copy: {0}")]
    Io(#[from] std::io::Error),
}

/// Copies the SQLite database of `database_url` to the new file `to`; returns its size in bytes.
pub fn sqlite(database_url: &str, to: &Path) -> Result<u64, BackupError> {
    if !database_url.starts_with("sqlite:") {
        return Err(BackupError::NotSqlite);
    }
    let options: SqliteConnectOptions = database_url.parse().map_err(|_| BackupError::NotSqlite)?;
    let from = options.get_filename();
    if !from.is_file() {
        return Err(BackupError::NoDatabase(from.to_owned()));
    }
    if to.exists() {
        return Err(BackupError::Exists(to.to_owned()));
    }
    let partial = partial_name(to);
    let _ = std::fs::remove_file(&partial);
    let result = copy(from, &partial, to);
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn copy(from: &Path, partial: &Path, to: &Path) -> Result<u64, BackupError> {
    let db =
        rusqlite::Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    db.busy_timeout(super::BUSY_TIMEOUT)?;
    let target = partial.to_str().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path is not UTF-8")
    })?;
    db.execute("VACUUM INTO ?1", [target])?;
    drop(db);
    let file = std::fs::File::open(partial)?;
    file.sync_all()?;
    let size = file.metadata()?.len();
    // A rename never replaces a file that appeared meanwhile: hard-link, then unlink.
    std::fs::hard_link(partial, to).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => BackupError::Exists(to.to_owned()),
        _ => e.into(),
    })?;
    std::fs::remove_file(partial)?;
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(size)
}

/// `FILE.partial`, beside `FILE`.
fn partial_name(to: &Path) -> PathBuf {
    let mut name = to.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_copy_holds_what_was_committed_and_never_overwrites() {
        let (dir, store) = super::super::temp_store().await;
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = store.db();
        use sea_orm::ConnectionTrait;
        db.execute_unprepared("CREATE TABLE kept (x INTEGER)")
            .await
            .expect("table");
        db.execute_unprepared("INSERT INTO kept VALUES (1), (2)")
            .await
            .expect("rows");

        let to = dir.path().join("copy.db");
        let size = sqlite(&url, &to).expect("backup");
        assert!(size > 0);
        assert!(!partial_name(&to).exists(), "no partial file left");
        let copy = rusqlite::Connection::open(&to).expect("the copy opens");
        let n: i64 = copy
            .query_row("SELECT COUNT(*) FROM kept", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 2);

        assert!(matches!(sqlite(&url, &to), Err(BackupError::Exists(_))));
        let missing = format!("sqlite://{}", dir.path().join("none.db").display());
        let other = dir.path().join("other.db");
        assert!(matches!(
            sqlite(&missing, &other),
            Err(BackupError::NoDatabase(_))
        ));
        assert!(matches!(
            sqlite("postgres://root@127.0.0.1/test", &other),
            Err(BackupError::NotSqlite)
        ));
        assert!(!other.exists());
    }
}

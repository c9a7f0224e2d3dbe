//! HTTP sessions for tower-sessions, kept in the `session` table so that a sign-in survives a
//! restart and is seen by every node.
//!
//! The row holds the whole record as JSON and its expiry in milliseconds; expired rows are
//! skipped on load and removed by [`SessionStore::delete_expired`], which the server runs
//! periodically.
use entity::session;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set, TryInsertResult,
};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, Error};

use crate::clock::now_ms;

/// Attempts at finding a free id before giving up; with 128 random bits, one is enough.
const CREATE_ATTEMPTS: usize = 8;

/// A [`tower_sessions::SessionStore`] over the store's database; see [`super::Store::sessions`].
#[derive(Debug, Clone)]
pub struct SessionStore {
    pub(super) db: DatabaseConnection,
}

impl SessionStore {
    /// Forgets expired sessions; returns how many.
    pub async fn delete_expired(&self) -> Result<u64, DbErr> {
        let done = session::Entity::delete_many()
            .filter(session::Column::ExpiresAt.lte(now_ms()))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected)
    }
}

fn row(record: &Record) -> session_store::Result<session::ActiveModel> {
    let data = serde_json::to_string(record).map_err(|e| Error::Encode(e.to_string()))?;
    let expires_ms = record.expiry_date.unix_timestamp_nanos() / 1_000_000;
    Ok(session::ActiveModel {
        id: Set(record.id.to_string()),
        data: Set(data),
        expires_at: Set(i64::try_from(expires_ms).unwrap_or(i64::MAX)),
    })
}

fn backend(e: DbErr) -> Error {
    Error::Backend(e.to_string())
}

#[async_trait::async_trait]
impl tower_sessions::SessionStore for SessionStore {
    /// Inserts under a fresh id, drawing another while the id is taken.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        for _ in 0..CREATE_ATTEMPTS {
            let inserted = session::Entity::insert(row(record)?)
                .on_conflict_do_nothing_on([session::Column::Id])
                .exec(&self.db)
                .await
                .map_err(backend)?;
            if let TryInsertResult::Inserted(_) = inserted {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(Error::Backend("no free session id".into()))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        session::Entity::insert(row(record)?)
            .on_conflict(
                OnConflict::column(session::Column::Id)
                    .update_columns([session::Column::Data, session::Column::ExpiresAt])
                    .to_owned(),
            )
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let found = session::Entity::find_by_id(id.to_string())
            .filter(session::Column::ExpiresAt.gt(now_ms()))
            .one(&self.db)
            .await
            .map_err(backend)?;
        found
            .map(|row| serde_json::from_str(&row.data).map_err(|e| Error::Decode(e.to_string())))
            .transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        session::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tower_sessions::SessionStore as _;
    use tower_sessions::cookie::time::{Duration, OffsetDateTime};

    use super::*;
    use crate::store::Store;

    async fn store() -> (tempfile::TempDir, Store) {
        crate::store::temp_store().await
    }

    fn record(expires_in: Duration) -> Record {
        Record {
            id: Id::default(),
            data: [("k".to_owned(), serde_json::json!("v"))].into(),
            expiry_date: OffsetDateTime::now_utc() + expires_in,
        }
    }

    #[tokio::test]
    async fn create_load_save_delete() {
        let (_dir, store) = store().await;
        let sessions = store.sessions();
        let mut r = record(Duration::hours(1));
        sessions.create(&mut r).await.unwrap();
        assert_eq!(sessions.load(&r.id).await.unwrap(), Some(r.clone()));

        r.data.insert("k".into(), serde_json::json!(2));
        sessions.save(&r).await.unwrap();
        assert_eq!(sessions.load(&r.id).await.unwrap(), Some(r.clone()));

        sessions.delete(&r.id).await.unwrap();
        assert_eq!(sessions.load(&r.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn create_draws_a_new_id_on_collision() {
        let (_dir, store) = store().await;
        let sessions = store.sessions();
        let mut first = record(Duration::hours(1));
        sessions.create(&mut first).await.unwrap();
        let mut second = record(Duration::hours(1));
        second.id = first.id;
        second.data.insert("k".into(), serde_json::json!("second"));
        sessions.create(&mut second).await.unwrap();
        assert_ne!(second.id, first.id);
        assert_eq!(sessions.load(&first.id).await.unwrap(), Some(first));
        assert_eq!(sessions.load(&second.id).await.unwrap(), Some(second));
    }

    #[tokio::test]
    async fn expired_sessions_are_skipped_then_deleted() {
        let (_dir, store) = store().await;
        let sessions = store.sessions();
        let mut old = record(Duration::seconds(-1));
        let mut live = record(Duration::hours(1));
        sessions.create(&mut old).await.unwrap();
        sessions.create(&mut live).await.unwrap();
        assert_eq!(sessions.load(&old.id).await.unwrap(), None);
        assert_eq!(store.sessions().delete_expired().await.unwrap(), 1);
        assert_eq!(sessions.load(&live.id).await.unwrap(), Some(live));
    }
}

//! Counsellor accounts and their API tokens.
//!
//! Usernames arrive here already normalised (lowercase) and passwords already hashed: this module
//! stores, it does not judge. API tokens are issued, looked up and revoked by [`super::tokens`],
//! as TinCan's are.
use entity::{counsellor_account, counsellor_token, session};
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
    TryInsertResult,
};
use uuid::Uuid;

use super::{Store, tokens};
use crate::clock::now_ms;

/// How long an API token stays valid.
pub const TOKEN_LIFETIME_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// The key under which a signed-in session keeps its account id. The session cleanup on
/// password change and removal looks for it in the stored JSON.
pub const SESSION_ACCOUNT_KEY: &str = "counsellor_account_id";

/// Counsellor accounts and their API tokens; see [`Store::accounts`].
#[derive(Clone, Copy, Debug)]
pub struct Accounts<'a> {
    pub(super) store: &'a Store,
}

impl Accounts<'_> {
    /// Creates an account; `None` if the username is taken.
    pub async fn create(
        &self,
        username: &str,
        name: &str,
        password_hash: &str,
    ) -> Result<Option<counsellor_account::Model>, DbErr> {
        let now = now_ms();
        let model = counsellor_account::Model {
            id: Uuid::new_v4().to_string(),
            username: username.to_owned(),
            name: name.to_owned(),
            password_hash: password_hash.to_owned(),
            created_at: now,
            updated_at: now,
        };
        let row = counsellor_account::ActiveModel {
            id: Set(model.id.clone()),
            username: Set(model.username.clone()),
            name: Set(model.name.clone()),
            password_hash: Set(model.password_hash.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let inserted = counsellor_account::Entity::insert(row)
            .on_conflict_do_nothing_on([counsellor_account::Column::Username])
            .exec(&self.store.db)
            .await?;
        Ok(match inserted {
            TryInsertResult::Inserted(_) => Some(model),
            TryInsertResult::Empty | TryInsertResult::Conflicted => None,
        })
    }

    pub async fn get(&self, id: &str) -> Result<Option<counsellor_account::Model>, DbErr> {
        counsellor_account::Entity::find_by_id(id.to_owned())
            .one(&self.store.db)
            .await
    }

    pub async fn by_username(
        &self,
        username: &str,
    ) -> Result<Option<counsellor_account::Model>, DbErr> {
        find_by_username(&self.store.db, username).await
    }

    /// Every account, by username.
    pub async fn list(&self) -> Result<Vec<counsellor_account::Model>, DbErr> {
        counsellor_account::Entity::find()
            .order_by_asc(counsellor_account::Column::Username)
            .all(&self.store.db)
            .await
    }

    /// Removes an account with its tokens and sessions; `None` if there is no such username.
    pub async fn remove(&self, username: &str) -> Result<Option<counsellor_account::Model>, DbErr> {
        let txn = self.store.db.begin().await?;
        let Some(account) = find_by_username(&txn, username).await? else {
            return Ok(None);
        };
        // The foreign key cascades too, but only where the connection enforces foreign keys.
        sign_out_everywhere(&txn, &account.id).await?;
        counsellor_account::Entity::delete_by_id(account.id.clone())
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(Some(account))
    }

    /// Replaces an account's password hash and signs it out everywhere: its API tokens are
    /// revoked and its sessions ended. `None` if there is no such username.
    pub async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<Option<counsellor_account::Model>, DbErr> {
        let txn = self.store.db.begin().await?;
        let Some(account) = find_by_username(&txn, username).await? else {
            return Ok(None);
        };
        counsellor_account::Entity::update_many()
            .col_expr(
                counsellor_account::Column::PasswordHash,
                password_hash.to_owned().into(),
            )
            .col_expr(counsellor_account::Column::UpdatedAt, now_ms().into())
            .filter(counsellor_account::Column::Id.eq(&account.id))
            .exec(&txn)
            .await?;
        sign_out_everywhere(&txn, &account.id).await?;
        txn.commit().await?;
        Ok(Some(account))
    }

    /// Issues a new API token for an account, valid for [`TOKEN_LIFETIME_MS`]. The token is
    /// returned once and never stored.
    pub async fn create_token(&self, account_id: &str) -> Result<String, DbErr> {
        let issued = tokens::issue::<counsellor_token::Entity>(
            &self.store.db,
            account_id,
            TOKEN_LIFETIME_MS,
        )
        .await?;
        Ok(issued.token)
    }

    /// The account an unexpired API token belongs to.
    pub async fn for_token(&self, token: &str) -> Result<Option<counsellor_account::Model>, DbErr> {
        let hash = tokens::hash(token);
        match tokens::owner::<counsellor_token::Entity>(&self.store.db, &hash).await? {
            Some(account_id) => self.get(&account_id).await,
            None => Ok(None),
        }
    }

    /// Revokes one API token; unknown tokens are ignored.
    pub async fn revoke_token(&self, token: &str) -> Result<(), DbErr> {
        tokens::revoke::<counsellor_token::Entity>(&self.store.db, &tokens::hash(token)).await
    }

    /// Revokes every API token of an account; returns how many there were.
    pub async fn revoke_tokens(&self, account_id: &str) -> Result<u64, DbErr> {
        tokens::revoke_all::<counsellor_token::Entity>(&self.store.db, account_id).await
    }

    /// Forgets expired API tokens; returns how many.
    pub async fn delete_expired_tokens(&self) -> Result<u64, DbErr> {
        tokens::delete_expired::<counsellor_token::Entity>(&self.store.db).await
    }
}

async fn find_by_username(
    db: &impl sea_orm::ConnectionTrait,
    username: &str,
) -> Result<Option<counsellor_account::Model>, DbErr> {
    counsellor_account::Entity::find()
        .filter(counsellor_account::Column::Username.eq(username))
        .one(db)
        .await
}

/// Revokes every API token of an account and ends its sessions.
async fn sign_out_everywhere(
    db: &impl sea_orm::ConnectionTrait,
    account_id: &str,
) -> Result<(), DbErr> {
    tokens::revoke_all::<counsellor_token::Entity>(db, account_id).await?;
    delete_sessions_of(db, account_id).await
}

/// Ends every session signed in as `account_id`. Sessions are opaque JSON, so this matches the
/// `"counsellor_account_id":"<id>"` pair in it: a scan, fine for the rare password change or
/// removal, and exact because account ids are UUIDs (no JSON escaping, no `LIKE` wildcards).
async fn delete_sessions_of(
    db: &impl sea_orm::ConnectionTrait,
    account_id: &str,
) -> Result<(), DbErr> {
    let pattern = format!("%\"{SESSION_ACCOUNT_KEY}\":\"{account_id}\"%");
    session::Entity::delete_many()
        .filter(session::Column::Data.like(pattern))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tower_sessions::SessionStore as _;
    use tower_sessions::cookie::time::{Duration, OffsetDateTime};
    use tower_sessions::session::{Id, Record};

    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        crate::store::temp_store().await
    }

    async fn signed_in_session(store: &Store, account_id: &str) -> Id {
        let mut record = Record {
            id: Id::default(),
            data: [(SESSION_ACCOUNT_KEY.to_owned(), account_id.into())].into(),
            expiry_date: OffsetDateTime::now_utc() + Duration::days(1),
        };
        store.sessions().create(&mut record).await.unwrap();
        record.id
    }

    #[tokio::test]
    async fn usernames_are_unique() {
        let (_dir, store) = store().await;
        let a = store
            .accounts()
            .create("alice", "Alice", "h")
            .await
            .unwrap();
        assert_eq!(a.as_ref().map(|a| a.username.as_str()), Some("alice"));
        assert!(
            store
                .accounts()
                .create("alice", "Other", "h")
                .await
                .unwrap()
                .is_none()
        );
        let found = store
            .accounts()
            .by_username("alice")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Some(found), a);
    }

    #[tokio::test]
    async fn tokens_resolve_until_revoked() {
        let (_dir, store) = store().await;
        let a = store
            .accounts()
            .create("alice", "Alice", "h")
            .await
            .unwrap()
            .unwrap();
        let t1 = store.accounts().create_token(&a.id).await.unwrap();
        let t2 = store.accounts().create_token(&a.id).await.unwrap();
        assert_eq!(t1.len(), 64);
        assert_ne!(t1, t2);
        assert_eq!(
            store.accounts().for_token(&t1).await.unwrap(),
            Some(a.clone())
        );
        assert_eq!(store.accounts().for_token("nope").await.unwrap(), None);
        store.accounts().revoke_token(&t1).await.unwrap();
        assert_eq!(store.accounts().for_token(&t1).await.unwrap(), None);
        assert_eq!(
            store.accounts().for_token(&t2).await.unwrap(),
            Some(a.clone())
        );
        assert_eq!(store.accounts().revoke_tokens(&a.id).await.unwrap(), 1);
        assert_eq!(store.accounts().for_token(&t2).await.unwrap(), None);
    }

    #[tokio::test]
    async fn expired_tokens_do_not_resolve() {
        let (_dir, store) = store().await;
        let a = store
            .accounts()
            .create("alice", "Alice", "h")
            .await
            .unwrap()
            .unwrap();
        let token = store.accounts().create_token(&a.id).await.unwrap();
        counsellor_token::Entity::update_many()
            .col_expr(counsellor_token::Column::ExpiresAt, (now_ms() - 1).into())
            .exec(&store.db)
            .await
            .unwrap();
        assert_eq!(store.accounts().for_token(&token).await.unwrap(), None);
        assert_eq!(store.accounts().delete_expired_tokens().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn password_change_signs_out_everywhere() {
        let (_dir, store) = store().await;
        let a = store
            .accounts()
            .create("alice", "Alice", "old")
            .await
            .unwrap()
            .unwrap();
        let b = store
            .accounts()
            .create("bob", "Bob", "old")
            .await
            .unwrap()
            .unwrap();
        let token = store.accounts().create_token(&a.id).await.unwrap();
        let other = store.accounts().create_token(&b.id).await.unwrap();
        let session = signed_in_session(&store, &a.id).await;
        let other_session = signed_in_session(&store, &b.id).await;

        assert!(
            store
                .accounts()
                .set_password("alice", "new")
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .accounts()
                .set_password("carol", "new")
                .await
                .unwrap()
                .is_none()
        );
        let a = store.accounts().get(&a.id).await.unwrap().unwrap();
        assert_eq!(a.password_hash, "new");
        assert_eq!(store.accounts().for_token(&token).await.unwrap(), None);
        assert!(store.sessions().load(&session).await.unwrap().is_none());
        assert!(store.accounts().for_token(&other).await.unwrap().is_some());
        assert!(
            store
                .sessions()
                .load(&other_session)
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn removal_takes_tokens_and_sessions() {
        let (_dir, store) = store().await;
        let a = store
            .accounts()
            .create("alice", "Alice", "h")
            .await
            .unwrap()
            .unwrap();
        store
            .accounts()
            .create("bob", "Bob", "h")
            .await
            .unwrap()
            .unwrap();
        let token = store.accounts().create_token(&a.id).await.unwrap();
        let session = signed_in_session(&store, &a.id).await;

        assert_eq!(
            store.accounts().remove("alice").await.unwrap(),
            Some(a.clone())
        );
        assert_eq!(store.accounts().remove("alice").await.unwrap(), None);
        assert_eq!(store.accounts().get(&a.id).await.unwrap(), None);
        assert_eq!(store.accounts().for_token(&token).await.unwrap(), None);
        assert!(store.sessions().load(&session).await.unwrap().is_none());
        let names: Vec<_> = store
            .accounts()
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.username)
            .collect();
        assert_eq!(names, ["bob"]);
    }
}

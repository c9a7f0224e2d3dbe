//! TinCan users and their sign-in tokens.
//!
//! Usernames arrive already normalised and passwords already hashed. Tokens are issued, looked
//! up and revoked by `store::tokens`, as counsellors' API tokens are.
use entity::{tincan_token, tincan_user};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, TryInsertResult};
use uuid::Uuid;

use crate::clock::now_ms;
use crate::store::Store;
use crate::store::tokens::{self, IssuedToken};

/// The user behind a valid token, and the token's stored hash (which names the sockets that use
/// it, to disconnect them when it is revoked).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: tincan_user::Model,
    pub token_hash: String,
}

/// TinCan users and their tokens; see [`TinCan::accounts`](super::TinCan::accounts).
#[derive(Clone, Copy, Debug)]
pub struct Accounts<'a> {
    pub(super) store: &'a Store,
}

impl Accounts<'_> {
    /// Creates a user; `None` if the username is taken.
    pub async fn create(
        &self,
        username: &str,
        display_name: &str,
        password_hash: &str,
    ) -> Result<Option<tincan_user::Model>, DbErr> {
        let now = now_ms();
        let model = tincan_user::Model {
            id: Uuid::new_v4().to_string(),
            username: username.to_owned(),
            display_name: display_name.to_owned(),
            password_hash: password_hash.to_owned(),
            created_at: now,
            updated_at: now,
        };
        let inserted = tincan_user::Entity::insert(tincan_user::ActiveModel::from(model.clone()))
            .on_conflict_do_nothing_on([tincan_user::Column::Username])
            .exec(&self.store.db)
            .await?;
        Ok(match inserted {
            TryInsertResult::Inserted(_) => Some(model),
            TryInsertResult::Empty | TryInsertResult::Conflicted => None,
        })
    }

    pub async fn get(&self, id: &str) -> Result<Option<tincan_user::Model>, DbErr> {
        tincan_user::Entity::find_by_id(id.to_owned())
            .one(&self.store.db)
            .await
    }

    pub async fn by_username(&self, username: &str) -> Result<Option<tincan_user::Model>, DbErr> {
        tincan_user::Entity::find()
            .filter(tincan_user::Column::Username.eq(username))
            .one(&self.store.db)
            .await
    }

    /// The users with these ids that exist, in no particular order.
    pub async fn get_many(&self, ids: &[String]) -> Result<Vec<tincan_user::Model>, DbErr> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        tincan_user::Entity::find()
            .filter(tincan_user::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.store.db)
            .await
    }

    /// Issues a token valid for `ttl_ms`.
    pub async fn create_token(&self, user_id: &str, ttl_ms: i64) -> Result<IssuedToken, DbErr> {
        tokens::issue::<tincan_token::Entity>(&self.store.db, user_id, ttl_ms).await
    }

    /// The user of an unexpired, unrevoked token.
    pub async fn for_token(&self, token: &str) -> Result<Option<SignedIn>, DbErr> {
        let hash = tokens::hash(token);
        let Some(user_id) = tokens::owner::<tincan_token::Entity>(&self.store.db, &hash).await?
        else {
            return Ok(None);
        };
        Ok(self.get(&user_id).await?.map(|user| SignedIn {
            user,
            token_hash: hash,
        }))
    }

    /// Revokes a token by its stored hash; unknown hashes are ignored.
    pub async fn revoke_token(&self, token_hash: &str) -> Result<(), DbErr> {
        tokens::revoke::<tincan_token::Entity>(&self.store.db, token_hash).await
    }

    /// Forgets expired tokens; returns how many.
    pub async fn delete_expired_tokens(&self) -> Result<u64, DbErr> {
        tokens::delete_expired::<tincan_token::Entity>(&self.store.db).await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::temp_store;

    #[tokio::test]
    async fn users_and_tokens() {
        let (_dir, store) = temp_store().await;
        let a = store
            .tincan()
            .accounts()
            .create("alice", "Alice", "h")
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .tincan()
                .accounts()
                .create("alice", "Other", "h")
                .await
                .unwrap()
                .is_none()
        );
        let issued = store
            .tincan()
            .accounts()
            .create_token(&a.id, 60_000)
            .await
            .unwrap();
        assert_eq!(issued.token.len(), 64);
        let signed_in = store
            .tincan()
            .accounts()
            .for_token(&issued.token)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(signed_in.user, a);
        assert_ne!(signed_in.token_hash, issued.token, "only the hash is kept");
        store
            .tincan()
            .accounts()
            .revoke_token(&signed_in.token_hash)
            .await
            .unwrap();
        assert!(
            store
                .tincan()
                .accounts()
                .for_token(&issued.token)
                .await
                .unwrap()
                .is_none()
        );
        let expired = store
            .tincan()
            .accounts()
            .create_token(&a.id, -1)
            .await
            .unwrap();
        assert!(
            store
                .tincan()
                .accounts()
                .for_token(&expired.token)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store
                .tincan()
                .accounts()
                .delete_expired_tokens()
                .await
                .unwrap(),
            1
        );
    }
}

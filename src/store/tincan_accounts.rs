//! TinCan users and their sign-in tokens.
//!
//! Usernames arrive already normalised and passwords already hashed. A token is shown once;
//! only its SHA-256 is kept, so a copy of the database signs nobody in.
use entity::{tincan_token, tincan_user};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, Set, TryInsertResult};
use uuid::Uuid;

use super::Store;
use super::accounts::{new_token, token_hash};
use crate::clock::now_ms;

/// A token as handed out at sign-in.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: i64,
}

/// The user behind a valid token, and the token's stored hash (which names the sockets that use
/// it, to disconnect them when it is revoked).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: tincan_user::Model,
    pub token_hash: String,
}

impl Store {
    /// Creates a user; `None` if the username is taken.
    pub async fn tincan_create_user(
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
            .exec(&self.db)
            .await?;
        Ok(match inserted {
            TryInsertResult::Inserted(_) => Some(model),
            TryInsertResult::Empty | TryInsertResult::Conflicted => None,
        })
    }

    pub async fn tincan_user(&self, id: &str) -> Result<Option<tincan_user::Model>, DbErr> {
        tincan_user::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
    }

    pub async fn tincan_user_by_username(
        &self,
        username: &str,
    ) -> Result<Option<tincan_user::Model>, DbErr> {
        tincan_user::Entity::find()
            .filter(tincan_user::Column::Username.eq(username))
            .one(&self.db)
            .await
    }

    /// The users with these ids that exist, in no particular order.
    pub async fn tincan_users(&self, ids: &[String]) -> Result<Vec<tincan_user::Model>, DbErr> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        tincan_user::Entity::find()
            .filter(tincan_user::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await
    }

    /// Issues a token valid for `ttl_ms`.
    pub async fn tincan_create_token(
        &self,
        user_id: &str,
        ttl_ms: i64,
    ) -> Result<IssuedToken, DbErr> {
        let token = new_token();
        let now = now_ms();
        let expires_at = now.saturating_add(ttl_ms);
        let row = tincan_token::ActiveModel {
            token_hash: Set(token_hash(&token)),
            user_id: Set(user_id.to_owned()),
            created_at: Set(now),
            expires_at: Set(expires_at),
        };
        tincan_token::Entity::insert(row).exec(&self.db).await?;
        Ok(IssuedToken { token, expires_at })
    }

    /// The user of an unexpired, unrevoked token.
    pub async fn tincan_user_for_token(&self, token: &str) -> Result<Option<SignedIn>, DbErr> {
        let hash = token_hash(token);
        let found = tincan_token::Entity::find_by_id(hash.clone())
            .filter(tincan_token::Column::ExpiresAt.gt(now_ms()))
            .one(&self.db)
            .await?;
        let Some(row) = found else { return Ok(None) };
        Ok(self.tincan_user(&row.user_id).await?.map(|user| SignedIn {
            user,
            token_hash: hash,
        }))
    }

    /// Revokes a token by its stored hash; unknown hashes are ignored.
    pub async fn tincan_revoke_token(&self, token_hash: &str) -> Result<(), DbErr> {
        tincan_token::Entity::delete_by_id(token_hash.to_owned())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Forgets expired tokens; returns how many.
    pub async fn tincan_delete_expired_tokens(&self) -> Result<u64, DbErr> {
        let done = tincan_token::Entity::delete_many()
            .filter(tincan_token::Column::ExpiresAt.lte(now_ms()))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::temp_store;

    #[tokio::test]
    async fn users_and_tokens() {
        let (_dir, store) = temp_store().await;
        let a = store
            .tincan_create_user("alice", "Alice", "h")
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .tincan_create_user("alice", "Other", "h")
                .await
                .unwrap()
                .is_none()
        );
        let issued = store.tincan_create_token(&a.id, 60_000).await.unwrap();
        assert_eq!(issued.token.len(), 64);
        let signed_in = store
            .tincan_user_for_token(&issued.token)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(signed_in.user, a);
        assert_ne!(signed_in.token_hash, issued.token, "only the hash is kept");
        store
            .tincan_revoke_token(&signed_in.token_hash)
            .await
            .unwrap();
        assert!(
            store
                .tincan_user_for_token(&issued.token)
                .await
                .unwrap()
                .is_none()
        );
        let expired = store.tincan_create_token(&a.id, -1).await.unwrap();
        assert!(
            store
                .tincan_user_for_token(&expired.token)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.tincan_delete_expired_tokens().await.unwrap(), 1);
    }
}

//! Sign-in tokens, one implementation for both kinds: counsellor API tokens
//! (`counsellor_token`, see [`super::accounts`]) and TinCan tokens (`tincan_token`, see
//! [`super::tincan::accounts`]).
//!
//! A token is 256 random bits shown once, when it is issued; only its SHA-256 is kept, so a copy
//! of the database signs nobody in. Both tables have the same shape (hash, owner, created,
//! expires); [`TokenTable`] names the columns that differ, and everything else (hashing,
//! issuing, looking up an unexpired token, revoking, forgetting expired ones) is written once
//! here. What each kind hands back stays with its owner: an account for a counsellor, the user
//! and the hash (which names its sockets) for TinCan.
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Set,
};
use sha2::{Digest, Sha256};

use crate::clock::now_ms;

/// A token as handed out at sign-in.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: i64,
}

/// A table of tokens: `token_hash` (the key), the owner's id, `created_at`, `expires_at`.
pub(super) trait TokenTable: EntityTrait {
    fn hash_column() -> Self::Column;
    fn owner_column() -> Self::Column;
    fn expires_column() -> Self::Column;
    fn row(
        token_hash: String,
        owner_id: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Self::ActiveModel;
}

impl TokenTable for entity::counsellor_token::Entity {
    fn hash_column() -> Self::Column {
        entity::counsellor_token::Column::TokenHash
    }
    fn owner_column() -> Self::Column {
        entity::counsellor_token::Column::AccountId
    }
    fn expires_column() -> Self::Column {
        entity::counsellor_token::Column::ExpiresAt
    }
    fn row(
        token_hash: String,
        owner_id: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Self::ActiveModel {
        entity::counsellor_token::ActiveModel {
            token_hash: Set(token_hash),
            account_id: Set(owner_id.to_owned()),
            created_at: Set(created_at),
            expires_at: Set(expires_at),
        }
    }
}

impl TokenTable for entity::tincan_token::Entity {
    fn hash_column() -> Self::Column {
        entity::tincan_token::Column::TokenHash
    }
    fn owner_column() -> Self::Column {
        entity::tincan_token::Column::UserId
    }
    fn expires_column() -> Self::Column {
        entity::tincan_token::Column::ExpiresAt
    }
    fn row(
        token_hash: String,
        owner_id: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Self::ActiveModel {
        entity::tincan_token::ActiveModel {
            token_hash: Set(token_hash),
            user_id: Set(owner_id.to_owned()),
            created_at: Set(created_at),
            expires_at: Set(expires_at),
        }
    }
}

/// How a token is stored: lowercase hex SHA-256. Tokens carry 256 random bits, so a fast hash
/// is enough; nothing can be guessed from it.
pub(super) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh token: 256 random bits as 64 hex digits.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Issues a token for `owner_id`, valid for `ttl_ms`. The token is returned once and never
/// stored.
pub(super) async fn issue<T>(
    db: &impl ConnectionTrait,
    owner_id: &str,
    ttl_ms: i64,
) -> Result<IssuedToken, DbErr>
where
    T: TokenTable,
    T::ActiveModel: ActiveModelTrait<Entity = T> + Send,
{
    let token = new_token();
    let now = now_ms();
    let expires_at = now.saturating_add(ttl_ms);
    T::insert(T::row(hash(&token), owner_id, now, expires_at))
        .exec(db)
        .await?;
    Ok(IssuedToken { token, expires_at })
}

/// The owner of an unexpired token, by the token's hash.
pub(super) async fn owner<T: TokenTable>(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<String>, DbErr> {
    T::find()
        .select_only()
        .column(T::owner_column())
        .filter(T::hash_column().eq(token_hash))
        .filter(T::expires_column().gt(now_ms()))
        .into_tuple()
        .one(db)
        .await
}

/// Revokes one token by its hash; unknown hashes are ignored.
pub(super) async fn revoke<T: TokenTable>(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<(), DbErr> {
    T::delete_many()
        .filter(T::hash_column().eq(token_hash))
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes every token of an owner; returns how many there were.
pub(super) async fn revoke_all<T: TokenTable>(
    db: &impl ConnectionTrait,
    owner_id: &str,
) -> Result<u64, DbErr> {
    let done = T::delete_many()
        .filter(T::owner_column().eq(owner_id))
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}

/// Forgets expired tokens; returns how many.
pub(super) async fn delete_expired<T: TokenTable>(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let done = T::delete_many()
        .filter(T::expires_column().lte(now_ms()))
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}

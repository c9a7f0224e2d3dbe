//! People: the `bubble` token to bubbleId mapping, and names.
use entity::person;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Store;
use crate::clock::now_ms;

/// People and their names; see [`Store::people`].
#[derive(Clone, Copy, Debug)]
pub struct People<'a> {
    pub(super) store: &'a Store,
}

impl People<'_> {
    /// The person holding `token` (a UUID), created on first sight. Only a hash of the token is
    /// stored.
    pub async fn for_token(&self, token: Uuid) -> Result<person::Model, DbErr> {
        let hash = hex::encode(Sha256::digest(token.hyphenated().to_string().as_bytes()));
        if let Some(found) = self.find_by_token_hash(&hash).await? {
            return Ok(found);
        }
        let now = now_ms();
        let row = person::ActiveModel {
            bubble_id: Set(Uuid::new_v4().to_string()),
            token_hash: Set(Some(hash.clone())),
            name: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        // Two first connections with one token may race: the loser's insert does nothing and
        // both read the winner's row.
        person::Entity::insert(row)
            .on_conflict_do_nothing_on([person::Column::TokenHash])
            .exec(&self.store.db)
            .await?;
        self.find_by_token_hash(&hash)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("person just inserted".into()))
    }

    async fn find_by_token_hash(&self, hash: &str) -> Result<Option<person::Model>, DbErr> {
        person::Entity::find()
            .filter(person::Column::TokenHash.eq(hash))
            .one(&self.store.db)
            .await
    }

    /// Stores the display name of a person.
    pub async fn set_name(&self, bubble_id: &str, name: &str) -> Result<(), DbErr> {
        let now = now_ms();
        let row = person::ActiveModel {
            bubble_id: Set(bubble_id.to_owned()),
            token_hash: Set(None),
            name: Set(Some(name.to_owned())),
            created_at: Set(now),
            updated_at: Set(now),
        };
        person::Entity::insert(row)
            .on_conflict(
                OnConflict::column(person::Column::BubbleId)
                    .update_columns([person::Column::Name, person::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec(&self.store.db)
            .await?;
        Ok(())
    }

    pub async fn get(&self, bubble_id: &str) -> Result<Option<person::Model>, DbErr> {
        person::Entity::find_by_id(bubble_id.to_owned())
            .one(&self.store.db)
            .await
    }
}

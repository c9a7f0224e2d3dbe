//! Push tokens of people's devices.
use entity::push_token;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DbErr, EntityTrait, Set};

use super::Push;
use crate::clock::now_ms;

impl Push<'_> {
    /// Stores a device token for a person. A token already known moves to this person: it is
    /// one device, now used by them.
    pub async fn register_token(
        &self,
        token: &str,
        bubble_id: &str,
        platform: &str,
    ) -> Result<(), DbErr> {
        let now = now_ms();
        let row = push_token::ActiveModel {
            token: Set(token.to_owned()),
            bubble_id: Set(bubble_id.to_owned()),
            platform: Set(platform.to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        push_token::Entity::insert(row)
            .on_conflict(
                OnConflict::column(push_token::Column::Token)
                    .update_columns([
                        push_token::Column::BubbleId,
                        push_token::Column::Platform,
                        push_token::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.store.db)
            .await?;
        Ok(())
    }
}

//! Counsellors as the protocol knows them: an id and a display name.
use entity::counsellor;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DbErr, EntityTrait, Set};

use super::Store;
use crate::clock::now_ms;

/// Counsellors as the protocol knows them; see [`Store::counsellors`].
#[derive(Clone, Copy, Debug)]
pub struct Counsellors<'a> {
    pub(super) store: &'a Store,
}

impl Counsellors<'_> {
    /// Records a counsellor (the old apps' `counsellor_online`), renaming a known one.
    pub async fn upsert(&self, id: &str, name: &str) -> Result<(), DbErr> {
        let now = now_ms();
        let row = counsellor::ActiveModel {
            id: Set(id.to_owned()),
            name: Set(name.to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        counsellor::Entity::insert(row)
            .on_conflict(
                OnConflict::column(counsellor::Column::Id)
                    .update_columns([counsellor::Column::Name, counsellor::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec(&self.store.db)
            .await?;
        Ok(())
    }
}

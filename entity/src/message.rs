//! A message or reaction in a room.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub room_id: String,
    /// Socket id of the author at the time.
    pub user_id: String,
    pub bubble_id: String,
    /// `MESSAGE` or `REACTION`.
    pub message_type: String,
    pub content: String,
    pub target_user: Option<String>,
    pub target_user_bubble_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

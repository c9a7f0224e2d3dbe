//! A chat room. `numUsers` and `participants` are presence, not stored.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "room")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub description: String,
    /// `PUBLIC`, `PRIVATE` or `HOT`.
    pub room_type: String,
    pub user_limit: i32,
    /// JSON array of category strings.
    pub categories: String,
    pub is_open: bool,
    pub created_by: String,
    pub created_by_bubble_id: String,
    /// Also the `createdAt` of the newest message: the next one is stamped strictly later.
    pub last_active: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! Something a counsellor should look at: `USER_MISSED`, `USER_REQUESTED` or `USER_FLAGGED`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "issue")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub issue_type: String,
    pub user_id: String,
    pub bubble_id: String,
    pub counsellor_id: Option<String>,
    pub room_id: Option<String>,
    pub reason: Option<String>,
    pub resolved_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

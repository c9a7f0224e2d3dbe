//! A person: the stable identity behind one or more sockets (`bubbleId`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "person")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub bubble_id: String,
    /// SHA-256 (hex) of the client's `bubble` token; `None` for a connection without a token.
    #[sea_orm(unique)]
    pub token_hash: Option<String>,
    pub name: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

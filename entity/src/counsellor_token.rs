//! An API token of a counsellor account, for native apps that keep no cookie. Only the token's
//! hash is stored; the row goes with its account.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "counsellor_token")]
pub struct Model {
    /// Lowercase hex SHA-256 of the token as handed out.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub account_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

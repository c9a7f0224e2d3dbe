//! A counsellor who signs in: created from the command line, authenticated by password.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "counsellor_account")]
pub struct Model {
    /// UUID v4, lowercase hyphenated.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Unique, stored lowercase: sign-in is case-insensitive.
    #[sea_orm(unique)]
    pub username: String,
    /// Display name.
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

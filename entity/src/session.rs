//! An HTTP session (tower-sessions record), kept so that sign-ins survive a restart.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "session")]
pub struct Model {
    /// The session id as the cookie carries it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// JSON of the whole session record.
    pub data: String,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

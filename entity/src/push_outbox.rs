//! A push notification waiting for its provider, or the record of one sent or given up on.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "push_outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub token: String,
    /// `fcm` or `apns`.
    pub platform: String,
    /// The person the device belonged to when the row was written.
    pub bubble_id: String,
    pub room_id: String,
    /// The newest message this push stands for (older ones collapsed into it).
    pub message_id: i64,
    /// `message` or `reaction`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// JSON object of string values, handed to the app with the notification.
    pub data: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    /// A worker is sending it until then; after that another may claim it again.
    pub claimed_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

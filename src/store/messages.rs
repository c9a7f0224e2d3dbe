//! Messages and reactions: the hot path.
use entity::{message, room};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

use super::Store;
use super::push_outbox::{PushFanout, enqueue_for_message};
use crate::clock::now_ms;

/// How many messages a room shows: the newest ones.
pub const RECENT_MESSAGES: u64 = 100;

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room_id: String,
    pub user_id: String,
    pub bubble_id: String,
    pub message_type: &'static str,
    pub content: String,
    pub target_user: Option<String>,
    pub target_user_bubble_id: Option<String>,
}

/// A stored message and how many push outbox rows it wrote or updated.
#[derive(Debug, Clone)]
pub struct Added {
    pub message: message::Model,
    pub pushes: u64,
}

impl Store {
    /// Stores a message, moves the room's `lastActive` to its `createdAt`, and queues pushes for
    /// the members who are away (see [`PushFanout`]), all in one transaction: a push is never
    /// queued for a message that was not stored, nor lost for one that was. Returns once that
    /// transaction has committed; `None` when the room does not exist.
    ///
    /// A room's messages are stamped one after the other, each strictly later than the one
    /// before even within one millisecond. On SQLite the message goes through the writer task,
    /// which commits the messages waiting together in one transaction (see [`super::writer`]);
    /// on PostgreSQL it is stored here.
    pub async fn add_message(
        &self,
        new: NewMessage,
        fanout: &PushFanout<'_>,
    ) -> Result<Option<Added>, DbErr> {
        let new = match &self.writer {
            Some(writer) => match writer.add(new, fanout).await {
                Ok(answer) => return answer,
                // The writer has stopped: store the message here.
                Err(new) => new,
            },
            None => new,
        };
        add_one(&self.db, new, fanout).await
    }

    /// The newest messages of a room, newest first: an index range read, never the history.
    pub async fn recent_messages(&self, room_id: &str) -> Result<Vec<message::Model>, DbErr> {
        message::Entity::find()
            .filter(message::Column::RoomId.eq(room_id))
            .order_by_desc(message::Column::CreatedAt)
            .order_by_desc(message::Column::Id)
            .limit(RECENT_MESSAGES)
            .all(&self.db)
            .await
    }
}

/// Stores one message in a transaction of its own.
///
/// The room row is updated first: that takes its write lock, so concurrent messages to one room
/// are stamped one after the other, each strictly later than the one before even within one
/// millisecond.
pub(super) async fn add_one(
    db: &DatabaseConnection,
    new: NewMessage,
    fanout: &PushFanout<'_>,
) -> Result<Option<Added>, DbErr> {
    let now = now_ms();
    let txn = db.begin().await?;
    let next = Expr::col(room::Column::LastActive).add(1);
    let stamped = room::Entity::update_many()
        .col_expr(
            room::Column::LastActive,
            Expr::case(next.clone().gt(now), next).finally(now).into(),
        )
        .col_expr(room::Column::UpdatedAt, Expr::value(now))
        .filter(room::Column::Id.eq(new.room_id.as_str()))
        .exec_with_returning(&txn)
        .await?;
    let Some(room) = stamped.into_iter().next() else {
        return Ok(None);
    };
    let created_at = room.last_active;
    let row = message::ActiveModel {
        room_id: Set(new.room_id),
        user_id: Set(new.user_id),
        bubble_id: Set(new.bubble_id),
        message_type: Set(new.message_type.to_owned()),
        content: Set(new.content),
        target_user: Set(new.target_user),
        target_user_bubble_id: Set(new.target_user_bubble_id),
        created_at: Set(created_at),
        updated_at: Set(created_at),
        ..Default::default()
    };
    let stored = message::Entity::insert(row)
        .exec_with_returning(&txn)
        .await?;
    let pushes = enqueue_for_message(&txn, &room.name, &stored, fanout).await?;
    txn.commit().await?;
    Ok(Some(Added {
        message: stored,
        pushes,
    }))
}

//! Messages and reactions: the hot path.
use std::collections::HashMap;
use std::sync::Arc;

use entity::{message, room};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set, TransactionTrait,
};

use tokio::sync::oneshot;

use super::Store;
use super::push_outbox::{PushFanout, enqueue_for_message};
use super::recent::{self, Recent};
use super::sqlite::{self, Answer};
use crate::clock::now_ms;

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

/// A message by the person `author` from socket `sid-author`, for tests.
#[cfg(test)]
impl NewMessage {
    pub(crate) fn by_author(room_id: &str, content: &str) -> Self {
        Self {
            room_id: room_id.to_owned(),
            user_id: "sid-author".into(),
            bubble_id: "author".into(),
            message_type: "MESSAGE",
            content: content.to_owned(),
            target_user: None,
            target_user_bubble_id: None,
        }
    }
}

/// A stored message and how many push outbox rows it wrote or updated.
#[derive(Debug, Clone)]
pub struct Added {
    pub message: message::Model,
    pub pushes: u64,
}

/// A message handed to the store ([`Messages::queue`]), until it is known to be stored.
pub struct Committing(Stage);

enum Stage {
    /// Waiting for the writer's commit.
    Queued(oneshot::Receiver<Answer>),
    Done(Answer),
}

impl Committing {
    /// What [`Messages::add`] returns, once the message's transaction has committed.
    pub async fn committed(self) -> Result<Option<Added>, DbErr> {
        match self.0 {
            Stage::Queued(answer) => answer.await.unwrap_or_else(|_| Err(sqlite::stopped())),
            Stage::Done(added) => added,
        }
    }
}

/// Messages and rooms' newest messages; see [`Store::messages`].
#[derive(Clone, Copy, Debug)]
pub struct Messages<'a> {
    pub(super) store: &'a Store,
}

impl Messages<'_> {
    /// Stores a message, moves the room's `lastActive` to its `createdAt`, and queues pushes for
    /// the members who are away (see [`PushFanout`]), all in one transaction: a push is never
    /// queued for a message that was not stored, nor lost for one that was. Returns once that
    /// transaction has committed; `None` when the room does not exist.
    ///
    /// A room's messages are stamped one after the other, each strictly later than the one
    /// before even within one millisecond. On SQLite the message goes through the writer, which
    /// commits the messages waiting together in one transaction (see `store::writer`); on
    /// PostgreSQL (and a SQLite database in memory) it is stored here.
    pub async fn add(
        &self,
        new: NewMessage,
        fanout: &PushFanout<'_>,
    ) -> Result<Option<Added>, DbErr> {
        self.queue(new, fanout).await.committed().await
    }

    /// [`Messages::add`] in two steps: hands the message over, in order (what is queued on
    /// SQLite is stored in the order it was queued), and returns what waits for its commit. On
    /// PostgreSQL the message is stored before this returns.
    pub async fn queue(&self, new: NewMessage, fanout: &PushFanout<'_>) -> Committing {
        let new = match &self.store.writer {
            Some(writer) => match writer.queue(new, fanout).await {
                Ok(answer) => return Committing(Stage::Queued(answer)),
                // The writer has stopped: store the message here.
                Err(new) => new,
            },
            None => new,
        };
        let room_id = new.room_id.clone();
        let added = add_one(&self.store.db, new, fanout).await;
        if self.store.writer.is_some() {
            // Stored behind the writer's back (it has stopped): its cache entry is stale.
            self.store.recent.forget(&room_id);
        }
        Committing(Stage::Done(added))
    }

    /// The newest messages of each room (newest first, at most `RECENT_MESSAGES`), as of the
    /// `lastActive` it was read at or later, in the order given. They come from memory (see
    /// `store::recent`); rooms not there are read, at most that many rows each, never the
    /// history. A room that is gone has none.
    pub async fn recent(&self, rooms: &[&room::Model]) -> Result<Vec<Recent>, DbErr> {
        let mut found: Vec<Option<Recent>> = rooms
            .iter()
            .map(|room| self.store.recent.get(&room.id, room.last_active))
            .collect();
        let missing: Vec<String> = rooms
            .iter()
            .zip(&found)
            .filter(|(_, recent)| recent.is_none())
            .map(|(room, _)| room.id.clone())
            .collect();
        if !missing.is_empty() {
            let mut read = self.read_recent(missing).await?;
            for (room, recent) in rooms.iter().zip(&mut found) {
                if recent.is_none() {
                    *recent = read.remove(&room.id);
                }
            }
        }
        Ok(rooms
            .iter()
            .zip(found)
            .map(|(room, recent)| {
                recent.unwrap_or_else(|| Recent {
                    at: room.last_active,
                    messages: Arc::default(),
                })
            })
            .collect())
    }

    /// Reads rooms into the cache: through the writer on SQLite, so that no message is stored
    /// between the read and the cache's copy of it; directly otherwise.
    async fn read_recent(&self, room_ids: Vec<String>) -> Result<HashMap<String, Recent>, DbErr> {
        let room_ids = match &self.store.writer {
            Some(writer) => match writer.read(room_ids).await {
                Ok(read) => return read,
                // The writer has stopped: read here.
                Err(room_ids) => room_ids,
            },
            None => room_ids,
        };
        let ids: Vec<&str> = room_ids.iter().map(String::as_str).collect();
        let read = recent::read(&self.store.db, &ids).await?;
        for (room_id, recent) in &read {
            self.store.recent.put(room_id, recent.clone());
        }
        Ok(read)
    }

    /// Starts keeping the newest messages of a room just created, so that lists showing it find
    /// them in memory. On SQLite the writer reads the room (in its order, so that no message is
    /// missed); elsewhere it has none yet as of its `lastActive`.
    pub(super) fn recent_created(&self, room: &room::Model) {
        match &self.store.writer {
            Some(writer) => writer.read_later(vec![room.id.clone()]),
            None => self.store.recent.put(
                &room.id,
                Recent {
                    at: room.last_active,
                    messages: Arc::default(),
                },
            ),
        }
    }

    /// Forgets the newest messages of rooms other than those `keep` accepts; they are read again
    /// when asked for.
    pub fn keep_recent_of(&self, keep: impl Fn(&str) -> bool) {
        self.store.recent.retain(keep);
    }
}

/// Stores one message in a transaction of its own.
///
/// The room row is updated first: that takes its write lock, so concurrent messages to one room
/// are stamped one after the other, each strictly later than the one before even within one
/// millisecond.
async fn add_one(
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

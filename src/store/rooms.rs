//! Rooms and their members.
use entity::{room, room_member};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use uuid::Uuid;

use super::{NewIssue, Store};
use crate::clock::now_ms;

/// Room types as stored and sent.
pub const PUBLIC: &str = "PUBLIC";
pub const PRIVATE: &str = "PRIVATE";
pub const HOT: &str = "HOT";

/// A room about to be created.
#[derive(Debug, Clone)]
pub struct NewRoom {
    pub name: String,
    pub description: String,
    pub room_type: &'static str,
    pub user_limit: i32,
    pub categories: Vec<String>,
    pub created_by: String,
    pub created_by_bubble_id: String,
}

/// A public room opened by the person `author` from socket `sid-author`, for tests.
#[cfg(test)]
impl NewRoom {
    pub(crate) fn by_author(name: &str, user_limit: i32) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            room_type: PUBLIC,
            user_limit,
            categories: Vec::new(),
            created_by: "sid-author".into(),
            created_by_bubble_id: "author".into(),
        }
    }
}

/// Rooms and their members; see [`Store::rooms`].
#[derive(Clone, Copy, Debug)]
pub struct Rooms<'a> {
    pub(super) store: &'a Store,
}

impl Rooms<'_> {
    /// Creates an open room with its first members (and, for a counsellor chat, the issue that
    /// records the request), all in one transaction.
    pub async fn create(
        &self,
        new: NewRoom,
        members: &[&str],
        issue: Option<NewIssue>,
    ) -> Result<room::Model, DbErr> {
        let now = now_ms();
        let categories = serde_json::to_string(&new.categories)
            .map_err(|e| DbErr::Custom(format!("categories: {e}")))?;
        let row = room::Model {
            id: Uuid::new_v4().to_string(),
            name: new.name,
            description: new.description,
            room_type: new.room_type.to_owned(),
            user_limit: new.user_limit,
            categories,
            is_open: true,
            created_by: new.created_by,
            created_by_bubble_id: new.created_by_bubble_id,
            last_active: now,
            created_at: now,
            updated_at: now,
        };
        let txn = self.store.db.begin().await?;
        room::Entity::insert(room::ActiveModel::from(row.clone()))
            .exec_without_returning(&txn)
            .await?;
        for bubble_id in members {
            insert_member(&txn, &row.id, bubble_id, now).await?;
        }
        if let Some(mut issue) = issue {
            issue.room_id = Some(row.id.clone());
            super::issues::insert(&txn, issue).await?;
        }
        txn.commit().await?;
        self.store.messages().recent_created(&row);
        Ok(row)
    }

    pub async fn get(&self, id: &str) -> Result<Option<room::Model>, DbErr> {
        room::Entity::find_by_id(id.to_owned())
            .one(&self.store.db)
            .await
    }

    /// Makes a person a member of a room that is still open; a member already is one. Returns
    /// `false` when the room has closed (or is gone) meanwhile.
    pub async fn add_member(&self, room_id: &str, bubble_id: &str) -> Result<bool, DbErr> {
        let txn = self.store.db.begin().await?;
        if !lock_open_room(&txn, room_id).await? {
            return Ok(false);
        }
        insert_member(&txn, room_id, bubble_id, now_ms()).await?;
        txn.commit().await?;
        Ok(true)
    }

    pub async fn is_member(&self, room_id: &str, bubble_id: &str) -> Result<bool, DbErr> {
        Ok(
            room_member::Entity::find_by_id((room_id.to_owned(), bubble_id.to_owned()))
                .one(&self.store.db)
                .await?
                .is_some(),
        )
    }

    /// Ends a membership, closing the room when it was the last one. Returns whether the room
    /// closed.
    pub async fn remove_member(&self, room_id: &str, bubble_id: &str) -> Result<bool, DbErr> {
        let txn = self.store.db.begin().await?;
        // Lock the room first: a join running at the same time either lands before this count
        // or finds the room closed.
        lock_open_room(&txn, room_id).await?;
        room_member::Entity::delete_by_id((room_id.to_owned(), bubble_id.to_owned()))
            .exec(&txn)
            .await?;
        let left = room_member::Entity::find()
            .filter(room_member::Column::RoomId.eq(room_id))
            .count(&txn)
            .await?;
        if left == 0 {
            room::Entity::update_many()
                .col_expr(room::Column::IsOpen, false.into())
                .col_expr(room::Column::UpdatedAt, now_ms().into())
                .filter(room::Column::Id.eq(room_id))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(left == 0)
    }

    /// Closes a room for good (moderation). Returns the updated room, `None` if there is none.
    pub async fn close(&self, room_id: &str) -> Result<Option<room::Model>, DbErr> {
        self.update(room_id, room::Column::IsOpen, false.into())
            .await
    }

    /// Changes a room's type (`HOT` or `PUBLIC`).
    pub async fn set_type(
        &self,
        room_id: &str,
        room_type: &str,
    ) -> Result<Option<room::Model>, DbErr> {
        self.update(room_id, room::Column::RoomType, room_type.into())
            .await
    }

    async fn update(
        &self,
        room_id: &str,
        column: room::Column,
        value: sea_orm::sea_query::SimpleExpr,
    ) -> Result<Option<room::Model>, DbErr> {
        let updated = room::Entity::update_many()
            .col_expr(column, value)
            .col_expr(room::Column::UpdatedAt, now_ms().into())
            .filter(room::Column::Id.eq(room_id))
            .exec_with_returning(&self.store.db)
            .await?;
        Ok(updated.into_iter().next())
    }

    /// The open rooms a person is a member of, in the order they joined them.
    pub async fn open_of(&self, bubble_id: &str) -> Result<Vec<room::Model>, DbErr> {
        let memberships = room_member::Entity::find()
            .filter(room_member::Column::BubbleId.eq(bubble_id))
            .order_by_asc(room_member::Column::JoinedAt)
            .all(&self.store.db)
            .await?;
        if memberships.is_empty() {
            return Ok(Vec::new());
        }
        let mut rooms = room::Entity::find()
            .filter(room::Column::Id.is_in(memberships.iter().map(|m| m.room_id.clone())))
            .filter(room::Column::IsOpen.eq(true))
            .all(&self.store.db)
            .await?;
        let order = |r: &room::Model| memberships.iter().position(|m| m.room_id == r.id);
        rooms.sort_by_key(order);
        Ok(rooms)
    }

    /// The rooms `list_rooms` shows: open, not private, and active since `active_since` unless
    /// HOT or one of `also`. Unordered.
    pub async fn listable(
        &self,
        active_since: i64,
        also: &[String],
    ) -> Result<Vec<room::Model>, DbErr> {
        let mut recent = Condition::any()
            .add(room::Column::LastActive.gte(active_since))
            .add(room::Column::RoomType.eq(HOT));
        if !also.is_empty() {
            recent = recent.add(room::Column::Id.is_in(also.iter().cloned()));
        }
        room::Entity::find()
            .filter(room::Column::IsOpen.eq(true))
            .filter(room::Column::RoomType.ne(PRIVATE))
            .filter(recent)
            .all(&self.store.db)
            .await
    }
}

/// Takes the room's row lock (PostgreSQL) or the write lock (SQLite) with a no-op update, so that
/// joins and last exits of one room happen one after the other. Returns whether the room is open.
async fn lock_open_room<C: sea_orm::ConnectionTrait>(db: &C, room_id: &str) -> Result<bool, DbErr> {
    let locked = room::Entity::update_many()
        .col_expr(room::Column::IsOpen, Expr::col(room::Column::IsOpen))
        .filter(room::Column::Id.eq(room_id))
        .filter(room::Column::IsOpen.eq(true))
        .exec(db)
        .await?;
    Ok(locked.rows_affected > 0)
}

async fn insert_member<C: sea_orm::ConnectionTrait>(
    db: &C,
    room_id: &str,
    bubble_id: &str,
    now: i64,
) -> Result<(), DbErr> {
    let row = room_member::ActiveModel {
        room_id: Set(room_id.to_owned()),
        bubble_id: Set(bubble_id.to_owned()),
        joined_at: Set(now),
    };
    room_member::Entity::insert(row)
        .on_conflict_do_nothing_on([room_member::Column::RoomId, room_member::Column::BubbleId])
        .exec(db)
        .await?;
    Ok(())
}

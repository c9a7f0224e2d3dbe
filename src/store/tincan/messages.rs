//! TinCan messages. A removed message stays as a tombstone (content cleared, `removed_at` set)
//! so that history keeps its order; listings leave tombstones out.
use entity::tincan_message;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::write;
use crate::clock::now_ms;
use crate::store::Store;

/// Messages of conversations; see [`TinCan::messages`](super::TinCan::messages).
#[derive(Clone, Copy, Debug)]
pub struct Messages<'a> {
    pub(super) store: &'a Store,
}

impl Messages<'_> {
    /// Stores a message. Its `created_at` is later than every other in the conversation (one
    /// millisecond after the newest when the clock has not moved on), so that history reads in
    /// the order messages were accepted.
    pub async fn create(
        &self,
        conversation_id: &str,
        author_id: &str,
        content: &str,
        client_id: Option<&str>,
    ) -> Result<tincan_message::Model, DbErr> {
        let txn = write(self.store).await?;
        let newest: Option<Option<i64>> = tincan_message::Entity::find()
            .select_only()
            .column_as(Expr::col(tincan_message::Column::CreatedAt).max(), "newest")
            .filter(tincan_message::Column::ConversationId.eq(conversation_id))
            .into_tuple()
            .one(&txn)
            .await?;
        let now = now_ms();
        let created_at = match newest.flatten() {
            Some(newest) if newest >= now => newest + 1,
            _ => now,
        };
        let model = tincan_message::Model {
            id: Uuid::new_v4().to_string(),
            conversation_id: conversation_id.to_owned(),
            author_id: author_id.to_owned(),
            content: content.to_owned(),
            client_id: client_id.map(str::to_owned),
            created_at,
            edited_at: None,
            removed_at: None,
        };
        tincan_message::Entity::insert(tincan_message::ActiveModel::from(model.clone()))
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(model)
    }

    /// A message, tombstones included.
    pub async fn get(&self, id: &str) -> Result<Option<tincan_message::Model>, DbErr> {
        tincan_message::Entity::find_by_id(id.to_owned())
            .one(&self.store.db)
            .await
    }

    /// Replaces a message's content; `None` if it is gone or removed.
    pub async fn edit(
        &self,
        id: &str,
        content: &str,
    ) -> Result<Option<tincan_message::Model>, DbErr> {
        let txn = write(self.store).await?;
        let updated = tincan_message::Entity::update_many()
            .col_expr(tincan_message::Column::Content, Expr::value(content))
            .col_expr(tincan_message::Column::EditedAt, Expr::value(now_ms()))
            .filter(tincan_message::Column::Id.eq(id))
            .filter(tincan_message::Column::RemovedAt.is_null())
            .exec(&txn)
            .await?;
        let found = if updated.rows_affected > 0 {
            tincan_message::Entity::find_by_id(id.to_owned())
                .one(&txn)
                .await?
        } else {
            None
        };
        txn.commit().await?;
        Ok(found)
    }

    /// Turns a message into a tombstone; `None` if it is gone or already removed.
    pub async fn remove(&self, id: &str) -> Result<Option<tincan_message::Model>, DbErr> {
        let txn = write(self.store).await?;
        let updated = tincan_message::Entity::update_many()
            .col_expr(tincan_message::Column::Content, Expr::value(""))
            .col_expr(tincan_message::Column::RemovedAt, Expr::value(now_ms()))
            .filter(tincan_message::Column::Id.eq(id))
            .filter(tincan_message::Column::RemovedAt.is_null())
            .exec(&txn)
            .await?;
        let found = if updated.rows_affected > 0 {
            tincan_message::Entity::find_by_id(id.to_owned())
                .one(&txn)
                .await?
        } else {
            None
        };
        txn.commit().await?;
        Ok(found)
    }

    /// Up to `limit` messages of a conversation, newest first, strictly older than `before`
    /// (by `created_at`, then id), without tombstones.
    pub async fn list(
        &self,
        conversation_id: &str,
        before: Option<&tincan_message::Model>,
        limit: u64,
    ) -> Result<Vec<tincan_message::Model>, DbErr> {
        let mut find = tincan_message::Entity::find()
            .filter(tincan_message::Column::ConversationId.eq(conversation_id))
            .filter(tincan_message::Column::RemovedAt.is_null());
        if let Some(before) = before {
            find = find.filter(
                Condition::any()
                    .add(tincan_message::Column::CreatedAt.lt(before.created_at))
                    .add(
                        Condition::all()
                            .add(tincan_message::Column::CreatedAt.eq(before.created_at))
                            .add(tincan_message::Column::Id.lt(before.id.as_str())),
                    ),
            );
        }
        find.order_by_desc(tincan_message::Column::CreatedAt)
            .order_by_desc(tincan_message::Column::Id)
            .limit(limit)
            .all(&self.store.db)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;
    use crate::store::tincan::NewGroup;

    #[tokio::test]
    async fn history_is_newest_first_without_tombstones() {
        let (_dir, store) = temp_store().await;
        let a = store
            .tincan()
            .accounts()
            .create("alice", "A", "h")
            .await
            .unwrap()
            .unwrap();
        let g = store
            .tincan()
            .groups()
            .create(
                NewGroup {
                    name: "g".into(),
                    description: String::new(),
                    visibility: "public",
                    owner_id: a.id.clone(),
                },
                &[],
            )
            .await
            .unwrap();
        let c = store
            .tincan()
            .conversations()
            .create(&g.id, "c", &a.id, None)
            .await
            .unwrap()
            .conversation;
        let mut sent = Vec::new();
        for i in 0..5 {
            let m = store
                .tincan()
                .messages()
                .create(&c.id, &a.id, &format!("m{i}"), Some("cid"))
                .await
                .unwrap();
            if let Some(prev) = sent.last() {
                let prev: &tincan_message::Model = prev;
                assert!(m.created_at > prev.created_at, "strictly increasing");
            }
            sent.push(m);
        }
        let removed = store
            .tincan()
            .messages()
            .remove(&sent[3].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(removed.content, "");
        assert!(removed.removed_at.is_some());
        assert!(
            store
                .tincan()
                .messages()
                .remove(&sent[3].id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .tincan()
                .messages()
                .edit(&sent[3].id, "x")
                .await
                .unwrap()
                .is_none()
        );
        let edited = store
            .tincan()
            .messages()
            .edit(&sent[0].id, "new")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(edited.content, "new");
        assert!(edited.edited_at.is_some());

        let contents =
            |ms: Vec<tincan_message::Model>| ms.into_iter().map(|m| m.content).collect::<Vec<_>>();
        let page = store
            .tincan()
            .messages()
            .list(&c.id, None, 2)
            .await
            .unwrap();
        assert_eq!(contents(page.clone()), ["m4", "m2"]);
        let rest = store
            .tincan()
            .messages()
            .list(&c.id, page.last(), 10)
            .await
            .unwrap();
        assert_eq!(contents(rest), ["m1", "new"]);
    }
}

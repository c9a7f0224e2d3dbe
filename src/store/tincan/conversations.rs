//! TinCan conversations and their participant lists.
use std::collections::HashMap;

use entity::{tincan_conversation, tincan_message, tincan_participant};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::write;
use crate::clock::now_ms;
use crate::store::Store;

/// A conversation with who takes part: `None` for every member of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    pub conversation: tincan_conversation::Model,
    pub participants: Option<Vec<String>>,
}

/// Conversations and who takes part; see [`TinCan::conversations`](super::TinCan::conversations).
#[derive(Clone, Copy, Debug)]
pub struct Conversations<'a> {
    pub(super) store: &'a Store,
}

impl Conversations<'_> {
    /// Creates a conversation; `participants: None` opens it to every member of the group. Its
    /// `created_at` is later than every other in the group, so listings show them in the order
    /// they were made.
    pub async fn create(
        &self,
        group_id: &str,
        name: &str,
        owner_id: &str,
        participants: Option<Vec<String>>,
    ) -> Result<ConversationRecord, DbErr> {
        let txn = write(self.store).await?;
        let newest: Option<Option<i64>> = tincan_conversation::Entity::find()
            .select_only()
            .column_as(
                Expr::col(tincan_conversation::Column::CreatedAt).max(),
                "newest",
            )
            .filter(tincan_conversation::Column::GroupId.eq(group_id))
            .into_tuple()
            .one(&txn)
            .await?;
        let now = match newest.flatten() {
            Some(newest) if newest >= now_ms() => newest + 1,
            _ => now_ms(),
        };
        let conversation = tincan_conversation::Model {
            id: Uuid::new_v4().to_string(),
            group_id: group_id.to_owned(),
            name: name.to_owned(),
            owner_id: owner_id.to_owned(),
            all_members: participants.is_none(),
            created_at: now,
            updated_at: now,
        };
        tincan_conversation::Entity::insert(tincan_conversation::ActiveModel::from(
            conversation.clone(),
        ))
        .exec_without_returning(&txn)
        .await?;
        if let Some(list) = &participants {
            put_participants(&txn, &conversation.id, list).await?;
        }
        txn.commit().await?;
        Ok(ConversationRecord {
            conversation,
            participants,
        })
    }

    pub async fn get(&self, id: &str) -> Result<Option<ConversationRecord>, DbErr> {
        let Some(conversation) = tincan_conversation::Entity::find_by_id(id.to_owned())
            .one(&self.store.db)
            .await?
        else {
            return Ok(None);
        };
        let mut with = self.with_participants(vec![conversation]).await?;
        Ok(with.pop())
    }

    /// The conversations of a group, oldest first.
    pub async fn in_group(&self, group_id: &str) -> Result<Vec<ConversationRecord>, DbErr> {
        let conversations = tincan_conversation::Entity::find()
            .filter(tincan_conversation::Column::GroupId.eq(group_id))
            .order_by_asc(tincan_conversation::Column::CreatedAt)
            .order_by_asc(tincan_conversation::Column::Id)
            .all(&self.store.db)
            .await?;
        self.with_participants(conversations).await
    }

    /// Renames a conversation and/or replaces who takes part (`Some(None)`: every member);
    /// `None` if it is gone.
    pub async fn edit(
        &self,
        id: &str,
        name: Option<String>,
        participants: Option<Option<Vec<String>>>,
    ) -> Result<Option<ConversationRecord>, DbErr> {
        let txn = write(self.store).await?;
        let Some(found) = tincan_conversation::Entity::find_by_id(id.to_owned())
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let mut row = tincan_conversation::ActiveModel::from(found);
        if let Some(name) = name {
            row.name = Set(name);
        }
        if let Some(participants) = &participants {
            row.all_members = Set(participants.is_none());
            tincan_participant::Entity::delete_many()
                .filter(tincan_participant::Column::ConversationId.eq(id))
                .exec(&txn)
                .await?;
            if let Some(list) = participants {
                put_participants(&txn, id, list).await?;
            }
        }
        row.updated_at = Set(now_ms());
        tincan_conversation::Entity::update(row).exec(&txn).await?;
        txn.commit().await?;
        self.get(id).await
    }

    /// Removes a conversation with its messages; `false` if there was none.
    pub async fn remove(&self, id: &str) -> Result<bool, DbErr> {
        let txn = write(self.store).await?;
        tincan_message::Entity::delete_many()
            .filter(tincan_message::Column::ConversationId.eq(id))
            .exec(&txn)
            .await?;
        tincan_participant::Entity::delete_many()
            .filter(tincan_participant::Column::ConversationId.eq(id))
            .exec(&txn)
            .await?;
        let gone = tincan_conversation::Entity::delete_by_id(id.to_owned())
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(gone.rows_affected > 0)
    }

    async fn with_participants(
        &self,
        conversations: Vec<tincan_conversation::Model>,
    ) -> Result<Vec<ConversationRecord>, DbErr> {
        let listed: Vec<String> = conversations
            .iter()
            .filter(|c| !c.all_members)
            .map(|c| c.id.clone())
            .collect();
        let mut by_conversation: HashMap<String, Vec<String>> = HashMap::new();
        if !listed.is_empty() {
            let rows = tincan_participant::Entity::find()
                .filter(tincan_participant::Column::ConversationId.is_in(listed))
                .order_by_asc(tincan_participant::Column::UserId)
                .all(&self.store.db)
                .await?;
            for row in rows {
                by_conversation
                    .entry(row.conversation_id)
                    .or_default()
                    .push(row.user_id);
            }
        }
        Ok(conversations
            .into_iter()
            .map(|conversation| {
                let participants = (!conversation.all_members)
                    .then(|| by_conversation.remove(&conversation.id).unwrap_or_default());
                ConversationRecord {
                    conversation,
                    participants,
                }
            })
            .collect())
    }
}

async fn put_participants(
    txn: &DatabaseTransaction,
    conversation_id: &str,
    users: &[String],
) -> Result<(), DbErr> {
    for user_id in users {
        let row = tincan_participant::ActiveModel {
            conversation_id: Set(conversation_id.to_owned()),
            user_id: Set(user_id.clone()),
        };
        tincan_participant::Entity::insert(row)
            .on_conflict_do_nothing_on([
                tincan_participant::Column::ConversationId,
                tincan_participant::Column::UserId,
            ])
            .exec(txn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::temp_store;
    use crate::store::tincan::NewGroup;

    #[tokio::test]
    async fn participants_round_trip_and_removal_takes_messages() {
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
        let all = store
            .tincan()
            .conversations()
            .create(&g.id, "all", &a.id, None)
            .await
            .unwrap();
        assert_eq!(all.participants, None);
        let some = store
            .tincan()
            .conversations()
            .create(&g.id, "some", &a.id, Some(vec![a.id.clone()]))
            .await
            .unwrap();
        assert_eq!(some.participants, Some(vec![a.id.clone()]));
        let listed = store
            .tincan()
            .conversations()
            .in_group(&g.id)
            .await
            .unwrap();
        assert_eq!(listed, vec![all.clone(), some.clone()]);
        let opened = store
            .tincan()
            .conversations()
            .edit(&some.conversation.id, Some("x".into()), Some(None))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(opened.participants, None);
        assert_eq!(opened.conversation.name, "x");
        store
            .tincan()
            .messages()
            .create(&all.conversation.id, &a.id, "hi", None)
            .await
            .unwrap();
        assert!(
            store
                .tincan()
                .conversations()
                .remove(&all.conversation.id)
                .await
                .unwrap()
        );
        assert!(
            !store
                .tincan()
                .conversations()
                .remove(&all.conversation.id)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .tincan()
                .messages()
                .list(&all.conversation.id, None, 10)
                .await
                .unwrap(),
            vec![]
        );
    }
}

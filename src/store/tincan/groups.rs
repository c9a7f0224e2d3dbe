//! TinCan groups and their members (and pending requests to join). Writes run in transactions
//! from `tincan::write`.
use std::collections::HashMap;

use entity::{
    tincan_conversation, tincan_group, tincan_member, tincan_message, tincan_participant,
};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TryInsertResult,
};
use uuid::Uuid;

use super::write;
use crate::clock::now_ms;
use crate::store::Store;

/// Membership statuses as stored.
pub const MEMBER: &str = "member";
pub const PENDING: &str = "pending";

/// A group about to be created.
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub name: String,
    pub description: String,
    pub visibility: &'static str,
    pub owner_id: String,
}

/// What `group/edit` changes; `None` and empty lists leave things as they are.
#[derive(Debug, Clone, Default)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<&'static str>,
    /// Made members: new ones, or pending requests approved.
    pub add: Vec<String>,
    /// Members or pending requests removed.
    pub remove: Vec<String>,
}

/// The outcome of an edit: the group as it now is, and whose place in it changed.
#[derive(Debug, Clone)]
pub struct EditedGroup {
    pub group: tincan_group::Model,
    /// Users who became members (pending before, or nothing).
    pub added: Vec<String>,
    /// Users who were members or pending and no longer are.
    pub removed: Vec<String>,
}

/// Where `group/list` resumes: after the group with this name and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCursor {
    pub name: String,
    pub id: String,
}

/// Groups and their members; see [`TinCan::groups`](super::TinCan::groups).
#[derive(Clone, Copy, Debug)]
pub struct Groups<'a> {
    pub(super) store: &'a Store,
}

impl Groups<'_> {
    /// Creates a group owned by its creator, with the creator and `members` as members.
    pub async fn create(
        &self,
        new: NewGroup,
        members: &[String],
    ) -> Result<tincan_group::Model, DbErr> {
        let now = now_ms();
        let group = tincan_group::Model {
            id: Uuid::new_v4().to_string(),
            name: new.name,
            description: new.description,
            visibility: new.visibility.to_owned(),
            owner_id: new.owner_id,
            created_at: now,
            updated_at: now,
        };
        let txn = write(self.store).await?;
        tincan_group::Entity::insert(tincan_group::ActiveModel::from(group.clone()))
            .exec_without_returning(&txn)
            .await?;
        put_member(&txn, &group.id, &group.owner_id, now).await?;
        for user_id in members {
            put_member(&txn, &group.id, user_id, now).await?;
        }
        txn.commit().await?;
        Ok(group)
    }

    pub async fn get(&self, id: &str) -> Result<Option<tincan_group::Model>, DbErr> {
        tincan_group::Entity::find_by_id(id.to_owned())
            .one(&self.store.db)
            .await
    }

    /// A user's place in a group, member or pending.
    pub async fn membership(
        &self,
        group_id: &str,
        user_id: &str,
    ) -> Result<Option<tincan_member::Model>, DbErr> {
        tincan_member::Entity::find_by_id((group_id.to_owned(), user_id.to_owned()))
            .one(&self.store.db)
            .await
    }

    /// Everyone in a group, members and pending, in the order they came.
    pub async fn members(&self, group_id: &str) -> Result<Vec<tincan_member::Model>, DbErr> {
        tincan_member::Entity::find()
            .filter(tincan_member::Column::GroupId.eq(group_id))
            .order_by_asc(tincan_member::Column::JoinedAt)
            .order_by_asc(tincan_member::Column::UserId)
            .all(&self.store.db)
            .await
    }

    /// How many members (not pending) each of these groups has.
    pub async fn member_counts(&self, group_ids: &[String]) -> Result<HashMap<String, u64>, DbErr> {
        if group_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, i64)> = tincan_member::Entity::find()
            .select_only()
            .column(tincan_member::Column::GroupId)
            .column_as(Expr::col(tincan_member::Column::UserId).count(), "n")
            .filter(tincan_member::Column::GroupId.is_in(group_ids.iter().cloned()))
            .filter(tincan_member::Column::Status.eq(MEMBER))
            .group_by(tincan_member::Column::GroupId)
            .into_tuple()
            .all(&self.store.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, n)| (id, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    /// Every group a user is in, member or pending.
    pub async fn memberships_of(&self, user_id: &str) -> Result<Vec<tincan_member::Model>, DbErr> {
        tincan_member::Entity::find()
            .filter(tincan_member::Column::UserId.eq(user_id))
            .all(&self.store.db)
            .await
    }

    /// Groups a user may list: public ones and their own (member or pending), whose name
    /// contains `query` (ASCII letters in any case), by name then id, after `cursor`; at most
    /// `limit`.
    pub async fn list(
        &self,
        user_id: &str,
        query: Option<&str>,
        cursor: Option<&GroupCursor>,
        limit: u64,
    ) -> Result<Vec<tincan_group::Model>, DbErr> {
        let own: Vec<String> = self
            .memberships_of(user_id)
            .await?
            .into_iter()
            .map(|m| m.group_id)
            .collect();
        let mut visible = Condition::any().add(tincan_group::Column::Visibility.eq("public"));
        if !own.is_empty() {
            visible = visible.add(tincan_group::Column::Id.is_in(own));
        }
        let mut find = tincan_group::Entity::find().filter(visible);
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            // ASCII only, like SQLite's lower(): a query matches the same names on both stores.
            let pattern = format!("%{}%", escape_like(&q.to_ascii_lowercase()));
            let name = Expr::expr(Func::lower(Expr::col(tincan_group::Column::Name)));
            find = find.filter(name.like(LikeExpr::new(pattern).escape('\\')));
        }
        if let Some(after) = cursor {
            find = find.filter(
                Condition::any()
                    .add(tincan_group::Column::Name.gt(after.name.as_str()))
                    .add(
                        Condition::all()
                            .add(tincan_group::Column::Name.eq(after.name.as_str()))
                            .add(tincan_group::Column::Id.gt(after.id.as_str())),
                    ),
            );
        }
        find.order_by_asc(tincan_group::Column::Name)
            .order_by_asc(tincan_group::Column::Id)
            .limit(limit)
            .all(&self.store.db)
            .await
    }

    /// Applies an edit; `None` if the group is gone. Removed users also stop being listed
    /// participants of the group's conversations.
    pub async fn edit(
        &self,
        group_id: &str,
        changes: GroupChanges,
    ) -> Result<Option<EditedGroup>, DbErr> {
        let now = now_ms();
        let txn = write(self.store).await?;
        let Some(group) = tincan_group::Entity::find_by_id(group_id.to_owned())
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let mut row = tincan_group::ActiveModel::from(group);
        if let Some(name) = changes.name {
            row.name = Set(name);
        }
        if let Some(description) = changes.description {
            row.description = Set(description);
        }
        if let Some(visibility) = changes.visibility {
            row.visibility = Set(visibility.to_owned());
        }
        row.updated_at = Set(now);
        let group = tincan_group::Entity::update(row).exec(&txn).await?;

        let mut added = Vec::new();
        for user_id in &changes.add {
            let key = (group_id.to_owned(), user_id.clone());
            match tincan_member::Entity::find_by_id(key).one(&txn).await? {
                Some(m) if m.status == MEMBER => {}
                Some(_) => {
                    tincan_member::Entity::update_many()
                        .col_expr(tincan_member::Column::Status, Expr::value(MEMBER))
                        .col_expr(tincan_member::Column::JoinedAt, Expr::value(now))
                        .filter(tincan_member::Column::GroupId.eq(group_id))
                        .filter(tincan_member::Column::UserId.eq(user_id.as_str()))
                        .exec(&txn)
                        .await?;
                    added.push(user_id.clone());
                }
                None => {
                    put_member(&txn, group_id, user_id, now).await?;
                    added.push(user_id.clone());
                }
            }
        }
        let mut removed = Vec::new();
        for user_id in &changes.remove {
            if drop_member(&txn, group_id, user_id).await? {
                removed.push(user_id.clone());
            }
        }
        txn.commit().await?;
        Ok(Some(EditedGroup {
            group,
            added,
            removed,
        }))
    }

    /// Adds a user to a group as `status` (member or pending); `false` if they already are in
    /// it either way.
    pub async fn join(
        &self,
        group_id: &str,
        user_id: &str,
        status: &'static str,
    ) -> Result<bool, DbErr> {
        let row = tincan_member::ActiveModel {
            group_id: Set(group_id.to_owned()),
            user_id: Set(user_id.to_owned()),
            status: Set(status.to_owned()),
            joined_at: Set(now_ms()),
        };
        let inserted = tincan_member::Entity::insert(row)
            .on_conflict_do_nothing_on([
                tincan_member::Column::GroupId,
                tincan_member::Column::UserId,
            ])
            .exec(&self.store.db)
            .await?;
        Ok(matches!(inserted, TryInsertResult::Inserted(_)))
    }

    /// Takes a user out of a group (and out of the participant lists of its conversations);
    /// `false` if they were not in it.
    pub async fn leave(&self, group_id: &str, user_id: &str) -> Result<bool, DbErr> {
        let txn = write(self.store).await?;
        let left = drop_member(&txn, group_id, user_id).await?;
        txn.commit().await?;
        Ok(left)
    }

    /// Removes a group with its members, conversations and messages; returns the ids of the
    /// conversations that went with it, `None` if there was no such group.
    pub async fn remove(&self, group_id: &str) -> Result<Option<Vec<String>>, DbErr> {
        let txn = write(self.store).await?;
        if tincan_group::Entity::find_by_id(group_id.to_owned())
            .one(&txn)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let conversations = conversation_ids(&txn, group_id).await?;
        if !conversations.is_empty() {
            tincan_message::Entity::delete_many()
                .filter(tincan_message::Column::ConversationId.is_in(conversations.clone()))
                .exec(&txn)
                .await?;
            tincan_participant::Entity::delete_many()
                .filter(tincan_participant::Column::ConversationId.is_in(conversations.clone()))
                .exec(&txn)
                .await?;
        }
        tincan_conversation::Entity::delete_many()
            .filter(tincan_conversation::Column::GroupId.eq(group_id))
            .exec(&txn)
            .await?;
        tincan_member::Entity::delete_many()
            .filter(tincan_member::Column::GroupId.eq(group_id))
            .exec(&txn)
            .await?;
        tincan_group::Entity::delete_by_id(group_id.to_owned())
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(Some(conversations))
    }
}

/// Makes a user a member; one already in the group (either way) is left as is.
async fn put_member(
    txn: &DatabaseTransaction,
    group_id: &str,
    user_id: &str,
    now: i64,
) -> Result<(), DbErr> {
    let row = tincan_member::ActiveModel {
        group_id: Set(group_id.to_owned()),
        user_id: Set(user_id.to_owned()),
        status: Set(MEMBER.to_owned()),
        joined_at: Set(now),
    };
    tincan_member::Entity::insert(row)
        .on_conflict_do_nothing_on([
            tincan_member::Column::GroupId,
            tincan_member::Column::UserId,
        ])
        .exec(txn)
        .await?;
    Ok(())
}

/// Deletes a membership and the user's participant rows in the group's conversations; whether
/// there was a membership.
async fn drop_member(
    txn: &DatabaseTransaction,
    group_id: &str,
    user_id: &str,
) -> Result<bool, DbErr> {
    let gone = tincan_member::Entity::delete_by_id((group_id.to_owned(), user_id.to_owned()))
        .exec(txn)
        .await?;
    let conversations = conversation_ids(txn, group_id).await?;
    if !conversations.is_empty() {
        tincan_participant::Entity::delete_many()
            .filter(tincan_participant::Column::ConversationId.is_in(conversations))
            .filter(tincan_participant::Column::UserId.eq(user_id))
            .exec(txn)
            .await?;
    }
    Ok(gone.rows_affected > 0)
}

async fn conversation_ids(txn: &DatabaseTransaction, group_id: &str) -> Result<Vec<String>, DbErr> {
    tincan_conversation::Entity::find()
        .select_only()
        .column(tincan_conversation::Column::Id)
        .filter(tincan_conversation::Column::GroupId.eq(group_id))
        .into_tuple()
        .all(txn)
        .await
}

/// `s` with the `LIKE` wildcards and the escape character escaped by `\`.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;

    async fn user(store: &Store, name: &str) -> String {
        store
            .tincan()
            .accounts()
            .create(name, name, "h")
            .await
            .unwrap()
            .unwrap()
            .id
    }

    fn new_group(name: &str, owner: &str, visibility: &'static str) -> NewGroup {
        NewGroup {
            name: name.into(),
            description: String::new(),
            visibility,
            owner_id: owner.into(),
        }
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
    }

    #[tokio::test]
    async fn listing_pages_by_name_then_id_and_hides_others_private_groups() {
        let (_dir, store) = temp_store().await;
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        for name in ["b", "a", "b", "c"] {
            store
                .tincan()
                .groups()
                .create(new_group(name, &a, "public"), &[])
                .await
                .unwrap();
        }
        let secret = store
            .tincan()
            .groups()
            .create(new_group("a secret 100%", &a, "private"), &[])
            .await
            .unwrap();
        let page = |cursor: Option<GroupCursor>, who: String| {
            let store = store.clone();
            async move {
                store
                    .tincan()
                    .groups()
                    .list(&who, None, cursor.as_ref(), 2)
                    .await
                    .unwrap()
            }
        };
        let first = page(None, b.clone()).await;
        let names: Vec<_> = first.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let last = first.last().unwrap();
        let cursor = GroupCursor {
            name: last.name.clone(),
            id: last.id.clone(),
        };
        let second = page(Some(cursor), b.clone()).await;
        let names: Vec<_> = second.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert!(second[0].id > last.id);
        // The owner sees the private group; `%` in a query is literal.
        let mine = store
            .tincan()
            .groups()
            .list(&a, Some("100%"), None, 10)
            .await
            .unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].id, secret.id);
        let theirs = store
            .tincan()
            .groups()
            .list(&b, Some("SECRET"), None, 10)
            .await
            .unwrap();
        assert!(theirs.is_empty());
    }

    #[tokio::test]
    async fn edits_approve_and_remove_members() {
        let (_dir, store) = temp_store().await;
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        let c = user(&store, "carol").await;
        let g = store
            .tincan()
            .groups()
            .create(new_group("g", &a, "private"), std::slice::from_ref(&c))
            .await
            .unwrap();
        assert!(
            store
                .tincan()
                .groups()
                .join(&g.id, &b, PENDING)
                .await
                .unwrap()
        );
        assert!(
            !store
                .tincan()
                .groups()
                .join(&g.id, &b, PENDING)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .tincan()
                .groups()
                .member_counts(std::slice::from_ref(&g.id))
                .await
                .unwrap()[&g.id],
            2
        );
        let edited = store
            .tincan()
            .groups()
            .edit(
                &g.id,
                GroupChanges {
                    name: Some("renamed".into()),
                    add: vec![b.clone(), a.clone()],
                    remove: vec![c.clone()],
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(edited.group.name, "renamed");
        assert_eq!(edited.added, std::slice::from_ref(&b));
        assert_eq!(edited.removed, std::slice::from_ref(&c));
        let status = store
            .tincan()
            .groups()
            .membership(&g.id, &b)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.status, MEMBER);
        assert!(
            store
                .tincan()
                .groups()
                .membership(&g.id, &c)
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.tincan().groups().leave(&g.id, &b).await.unwrap());
        assert!(!store.tincan().groups().leave(&g.id, &b).await.unwrap());
        assert_eq!(
            store.tincan().groups().remove(&g.id).await.unwrap(),
            Some(vec![])
        );
        assert_eq!(store.tincan().groups().remove(&g.id).await.unwrap(), None);
        assert!(
            store
                .tincan()
                .groups()
                .members(&g.id)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

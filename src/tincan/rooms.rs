//! Which socket.io rooms a TinCan socket is in, and keeping them right as membership changes.
//!
//! Every socket is in `user:<id>` (all sockets of its user), `group:<id>` for each group its
//! user is a member of, and `conversation:<id>` for each conversation its user can see. Events
//! go to those rooms; when membership changes, the sockets of the users concerned join or leave
//! rooms at once (through the namespace, so every socket of the user moves, not only the one
//! that asked).
use sea_orm::DbErr;

use super::views::Status;
use crate::store::{ConversationRecord, Store};

pub fn user(id: &str) -> String {
    format!("user:{id}")
}

pub fn group(id: &str) -> String {
    format!("group:{id}")
}

pub fn conversation(id: &str) -> String {
    format!("conversation:{id}")
}

/// Whether a member of the conversation's group can see it: it is open to every member, they
/// are listed, or they own the group (who sees every conversation in it, to moderate).
pub fn member_can_see(record: &ConversationRecord, group_owner: &str, user_id: &str) -> bool {
    match &record.participants {
        None => true,
        Some(listed) => group_owner == user_id || listed.iter().any(|p| p == user_id),
    }
}

/// The rooms whose sockets can see a conversation: the group's for one open to every member,
/// otherwise the user rooms of its participants and of the group owner.
pub fn audience(record: &ConversationRecord, group_owner: &str) -> Vec<String> {
    match &record.participants {
        None => vec![group(&record.conversation.group_id)],
        Some(listed) => listed
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(group_owner))
            .map(user)
            .collect(),
    }
}

/// Every room a user's socket belongs in, loaded on connect.
pub async fn of_user(store: &Store, user_id: &str) -> Result<Vec<String>, DbErr> {
    let mut rooms = vec![user(user_id)];
    for membership in store.tincan().groups().memberships_of(user_id).await? {
        if !Status::is_member(&membership.status) {
            continue;
        }
        let Some(g) = store.tincan().groups().get(&membership.group_id).await? else {
            continue;
        };
        rooms.push(group(&g.id));
        for record in store.tincan().conversations().in_group(&g.id).await? {
            if member_can_see(&record, &g.owner_id, user_id) {
                rooms.push(conversation(&record.conversation.id));
            }
        }
    }
    Ok(rooms)
}

/// The rooms of a group's conversations that every member sees (those a new member joins).
pub fn open_conversations(records: &[ConversationRecord]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.participants.is_none())
        .map(|r| conversation(&r.conversation.id))
        .collect()
}

#[cfg(test)]
mod tests {
    use entity::tincan_conversation;

    use super::*;

    fn record(participants: Option<Vec<&str>>) -> ConversationRecord {
        ConversationRecord {
            conversation: tincan_conversation::Model {
                id: "c".into(),
                group_id: "g".into(),
                name: "n".into(),
                owner_id: "a".into(),
                all_members: participants.is_none(),
                created_at: 0,
                updated_at: 0,
            },
            participants: participants.map(|p| p.into_iter().map(String::from).collect()),
        }
    }

    #[test]
    fn who_sees_a_conversation() {
        let open = record(None);
        assert!(member_can_see(&open, "owner", "anyone"));
        assert_eq!(audience(&open, "owner"), ["group:g"]);
        let listed = record(Some(vec!["a", "b"]));
        assert!(member_can_see(&listed, "owner", "b"));
        assert!(member_can_see(&listed, "owner", "owner"));
        assert!(!member_can_see(&listed, "owner", "c"));
        assert_eq!(
            audience(&listed, "owner"),
            ["user:a", "user:b", "user:owner"]
        );
        assert_eq!(open_conversations(&[open, listed]), ["conversation:c"]);
    }
}

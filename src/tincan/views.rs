//! What TinCan shows on the wire: users, groups (by audience), conversations and messages.
use std::collections::HashMap;

use entity::{tincan_group, tincan_message, tincan_user};
use serde::Serialize;

use crate::clock::Iso;
use crate::store::{ConversationRecord, MEMBER, PENDING, Store};

/// A user's place in a group, as the wire spells it (`member`, `pending`) and the store keeps it
/// ([`MEMBER`], [`PENDING`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Member,
    Pending,
}

impl Status {
    /// As the store keeps it.
    pub fn stored(self) -> &'static str {
        match self {
            Self::Member => MEMBER,
            Self::Pending => PENDING,
        }
    }

    /// Whether a status as stored is [`Status::Member`] (anything else is a pending request).
    pub fn is_member(stored: &str) -> bool {
        stored == MEMBER
    }
}

/// `{ id, username, displayName, createdAt }`: never the password hash.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub created_at: Iso,
}

impl From<&tincan_user::Model> for UserView {
    fn from(u: &tincan_user::Model) -> Self {
        Self {
            id: u.id.clone(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            created_at: Iso(u.created_at),
        }
    }
}

/// A group as one audience sees it: `members` only to members, `pendingRequests` only to the
/// owner.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub visibility: String,
    pub owner_id: String,
    pub member_count: u64,
    pub created_at: Iso,
    pub updated_at: Iso,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<UserView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_requests: Option<Vec<UserView>>,
}

impl GroupView {
    /// The public details, as `group/list` shows them.
    pub fn public(group: &tincan_group::Model, member_count: u64) -> Self {
        Self {
            id: group.id.clone(),
            name: group.name.clone(),
            description: group.description.clone(),
            visibility: group.visibility.clone(),
            owner_id: group.owner_id.clone(),
            member_count,
            created_at: Iso(group.created_at),
            updated_at: Iso(group.updated_at),
            members: None,
            pending_requests: None,
        }
    }
}

/// A group with everyone in it, loaded once, from which each audience gets its view.
pub struct GroupDetail {
    pub group: tincan_group::Model,
    pub members: Vec<UserView>,
    pub pending: Vec<UserView>,
}

impl GroupDetail {
    pub async fn load(store: &Store, group: tincan_group::Model) -> Result<Self, sea_orm::DbErr> {
        let rows = store.tincan().groups().members(&group.id).await?;
        let ids: Vec<String> = rows.iter().map(|m| m.user_id.clone()).collect();
        let users: HashMap<String, tincan_user::Model> = store
            .tincan()
            .accounts()
            .get_many(&ids)
            .await?
            .into_iter()
            .map(|u| (u.id.clone(), u))
            .collect();
        let (mut members, mut pending) = (Vec::new(), Vec::new());
        for row in rows {
            let Some(user) = users.get(&row.user_id) else {
                continue;
            };
            if Status::is_member(&row.status) {
                members.push(UserView::from(user));
            } else {
                pending.push(UserView::from(user));
            }
        }
        Ok(Self {
            group,
            members,
            pending,
        })
    }

    pub fn is_member(&self, user_id: &str) -> bool {
        self.members.iter().any(|m| m.id == user_id)
    }

    pub fn public(&self) -> GroupView {
        GroupView::public(&self.group, self.members.len() as u64)
    }

    pub fn member(&self) -> GroupView {
        GroupView {
            members: Some(self.members.clone()),
            ..self.public()
        }
    }

    pub fn owner(&self) -> GroupView {
        GroupView {
            pending_requests: Some(self.pending.clone()),
            ..self.member()
        }
    }

    /// The view `user_id` is entitled to.
    pub fn for_user(&self, user_id: &str) -> GroupView {
        if self.group.owner_id == user_id {
            self.owner()
        } else if self.is_member(user_id) {
            self.member()
        } else {
            self.public()
        }
    }
}

/// `participants: null` means every member of the group.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationView {
    pub id: String,
    pub group_id: String,
    pub name: String,
    pub owner_id: String,
    pub participants: Option<Vec<String>>,
    pub created_at: Iso,
    pub updated_at: Iso,
}

impl From<&ConversationRecord> for ConversationView {
    fn from(r: &ConversationRecord) -> Self {
        let c = &r.conversation;
        Self {
            id: c.id.clone(),
            group_id: c.group_id.clone(),
            name: c.name.clone(),
            owner_id: c.owner_id.clone(),
            participants: r.participants.clone(),
            created_at: Iso(c.created_at),
            updated_at: Iso(c.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorView {
    pub id: String,
    pub username: String,
    pub display_name: String,
}

impl From<&tincan_user::Model> for AuthorView {
    fn from(u: &tincan_user::Model) -> Self {
        Self {
            id: u.id.clone(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub id: String,
    pub conversation_id: String,
    pub author_id: String,
    pub author: AuthorView,
    pub content: String,
    pub created_at: Iso,
    pub edited_at: Option<Iso>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl MessageView {
    pub fn new(m: &tincan_message::Model, author: AuthorView) -> Self {
        Self {
            id: m.id.clone(),
            conversation_id: m.conversation_id.clone(),
            author_id: m.author_id.clone(),
            author,
            content: m.content.clone(),
            created_at: Iso(m.created_at),
            edited_at: m.edited_at.map(Iso),
            client_id: m.client_id.clone(),
        }
    }
}

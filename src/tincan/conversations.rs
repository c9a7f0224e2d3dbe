//! `conversation/*`: create, edit, list, remove (typing is in [`super::typing`]).
//!
//! A conversation is seen by the members of its group it is open to ([`rooms::member_can_see`]);
//! to anyone else it does not exist (`not_found`).
use entity::tincan_group;
use serde::Serialize;

use super::events::Handle;
use super::request::{CreateConversation, EditConversation, ListConversations, RemoveConversation};
use super::views::{ConversationView, Status};
use super::{Ctx, TinCanError, groups, rooms};
use crate::store::ConversationRecord;

/// `{ conversation }`: `conversation/created`, `conversation/edited`.
#[derive(Serialize)]
pub struct ConversationReply {
    conversation: ConversationView,
}

/// `conversation/list-response { groupId, conversations }`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    group_id: String,
    conversations: Vec<ConversationView>,
}

/// `conversation/removed { conversationId, groupId }`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    conversation_id: String,
    group_id: String,
}

/// The conversation and its group, if the user can see it; `not_found` otherwise.
pub async fn visible(
    ctx: &Ctx,
    id: &str,
) -> Result<(ConversationRecord, tincan_group::Model), TinCanError> {
    let hidden = TinCanError::NotFound("conversation");
    let record = ctx
        .store()
        .tincan()
        .conversations()
        .get(id)
        .await?
        .ok_or(hidden)?;
    let group = ctx
        .store()
        .tincan()
        .groups()
        .get(&record.conversation.group_id)
        .await?
        .ok_or(TinCanError::NotFound("conversation"))?;
    let member = ctx
        .store()
        .tincan()
        .groups()
        .membership(&group.id, ctx.me())
        .await?
        .is_some_and(|m| Status::is_member(&m.status));
    if member && rooms::member_can_see(&record, &group.owner_id, ctx.me()) {
        Ok((record, group))
    } else {
        Err(TinCanError::NotFound("conversation"))
    }
}

/// Fails unless the user is a member of the group (which they can see by id).
async fn require_member(ctx: &Ctx, group: &tincan_group::Model) -> Result<(), TinCanError> {
    let member = ctx
        .store()
        .tincan()
        .groups()
        .membership(&group.id, ctx.me())
        .await?
        .is_some_and(|m| Status::is_member(&m.status));
    if member {
        Ok(())
    } else {
        Err(TinCanError::Forbidden(
            "Only members of the group may do that.",
        ))
    }
}

/// A participant list made valid: the owner always takes part, and every participant must be a
/// member of the group.
async fn participants(
    ctx: &Ctx,
    group_id: &str,
    owner: &str,
    list: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, TinCanError> {
    let Some(mut list) = list else {
        return Ok(None);
    };
    if !list.iter().any(|p| p == owner) {
        list.push(owner.to_owned());
    }
    let members = ctx.store().tincan().groups().members(group_id).await?;
    let is_member = |id: &String| {
        members
            .iter()
            .any(|m| &m.user_id == id && Status::is_member(&m.status))
    };
    if list.iter().all(is_member) {
        list.sort();
        Ok(Some(list))
    } else {
        Err(TinCanError::invalid(
            "participants",
            "Every participant must be a member of the group.",
        ))
    }
}

/// Members only.
impl Handle for CreateConversation {
    type Reply = ConversationReply;

    async fn handle(self, ctx: &Ctx) -> Result<ConversationReply, TinCanError> {
        let CreateConversation {
            group_id,
            name,
            participants: listed,
        } = self;
        let group = groups::group(ctx, &group_id).await?;
        require_member(ctx, &group).await?;
        let listed = participants(ctx, &group.id, ctx.me(), listed).await?;
        let record = ctx
            .store()
            .tincan()
            .conversations()
            .create(&group.id, &name, ctx.me(), listed)
            .await?;
        let room = rooms::conversation(&record.conversation.id);
        ctx.join(
            rooms::audience(&record, &group.owner_id),
            vec![room.clone()],
        )
        .await;
        let payload = ConversationReply {
            conversation: ConversationView::from(&record),
        };
        ctx.broadcast(vec![room], vec![], "conversation/created", &payload)
            .await;
        Ok(payload)
    }
}

/// Its owner only. Whoever stops seeing it gets this last event, then leaves its room; whoever
/// starts joins it.
impl Handle for EditConversation {
    type Reply = ConversationReply;

    async fn handle(self, ctx: &Ctx) -> Result<ConversationReply, TinCanError> {
        let EditConversation {
            conversation_id: id,
            name,
            participants: listed,
        } = self;
        let (record, group) = visible(ctx, &id).await?;
        if record.conversation.owner_id != ctx.me() {
            return Err(TinCanError::Forbidden(
                "Only the owner may edit the conversation.",
            ));
        }
        let listed = match listed {
            None => None,
            Some(list) => Some(participants(ctx, &group.id, ctx.me(), list).await?),
        };
        let before = rooms::audience(&record, &group.owner_id);
        let edited = ctx
            .store()
            .tincan()
            .conversations()
            .edit(&id, name, listed)
            .await?
            .ok_or(TinCanError::NotFound("conversation"))?;
        let after = rooms::audience(&edited, &group.owner_id);
        let room = rooms::conversation(&id);
        ctx.join(after.clone(), vec![room.clone()]).await;
        let payload = ConversationReply {
            conversation: ConversationView::from(&edited),
        };
        ctx.broadcast(vec![room.clone()], vec![], "conversation/edited", &payload)
            .await;
        ctx.leave(before, after, vec![room]).await;
        Ok(payload)
    }
}

/// Members only; the conversations the user can see.
impl Handle for ListConversations {
    type Reply = Listed;

    async fn handle(self, ctx: &Ctx) -> Result<Listed, TinCanError> {
        let group = groups::group(ctx, &self.group_id).await?;
        require_member(ctx, &group).await?;
        let conversations: Vec<ConversationView> = ctx
            .store()
            .tincan()
            .conversations()
            .in_group(&group.id)
            .await?
            .iter()
            .filter(|r| rooms::member_can_see(r, &group.owner_id, ctx.me()))
            .map(ConversationView::from)
            .collect();
        Ok(Listed {
            group_id: group.id,
            conversations,
        })
    }
}

/// Its owner or the group's owner; its messages go too.
impl Handle for RemoveConversation {
    type Reply = Removed;

    async fn handle(self, ctx: &Ctx) -> Result<Removed, TinCanError> {
        let id = self.conversation_id;
        let (record, group) = visible(ctx, &id).await?;
        if record.conversation.owner_id != ctx.me() && group.owner_id != ctx.me() {
            return Err(TinCanError::Forbidden(
                "Only the owner of the conversation or of the group may remove it.",
            ));
        }
        if !ctx.store().tincan().conversations().remove(&id).await? {
            return Err(TinCanError::NotFound("conversation"));
        }
        let room = rooms::conversation(&id);
        let payload = Removed {
            conversation_id: id,
            group_id: group.id,
        };
        ctx.broadcast(vec![room.clone()], vec![], "conversation/removed", &payload)
            .await;
        ctx.leave(vec![room.clone()], vec![], vec![room]).await;
        Ok(payload)
    }
}

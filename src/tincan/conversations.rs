//! `conversation/*`: create, edit, list, remove (typing is in [`super::typing`]).
//!
//! A conversation is seen by the members of its group it is open to ([`rooms::member_can_see`]);
//! to anyone else it does not exist (`not_found`).
use entity::tincan_group;
use serde_json::json;

use super::views::ConversationView;
use super::{Answer, Ctx, Fields, Outcome, TinCanError, groups, rooms};
use crate::store::{ConversationRecord, MEMBER};

pub const MAX_NAME: usize = 100;

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
        .is_some_and(|m| m.status == MEMBER);
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
        .is_some_and(|m| m.status == MEMBER);
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
            .any(|m| &m.user_id == id && m.status == MEMBER)
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

/// `conversation/create { groupId, name, participants? }`: members only.
pub async fn create(ctx: &Ctx, f: &Fields) -> Outcome {
    let group_id = f.id("groupId")?;
    let name = f.text("name", 1, MAX_NAME)?;
    let listed = f.nullable_ids("participants")?.flatten();
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
    let payload = json!({ "conversation": ConversationView::from(&record) });
    ctx.broadcast(vec![room], vec![], "conversation/created", &payload)
        .await;
    Ok(Answer::Reply(payload))
}

/// `conversation/edit { conversationId, name?, participants? }`: its owner only. Whoever stops
/// seeing it gets this last event, then leaves its room; whoever starts joins it.
pub async fn edit(ctx: &Ctx, f: &Fields) -> Outcome {
    let id = f.id("conversationId")?;
    let name = f.optional_text("name", 1, MAX_NAME)?;
    let listed = f.nullable_ids("participants")?;
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
    let payload = json!({ "conversation": ConversationView::from(&edited) });
    ctx.broadcast(vec![room.clone()], vec![], "conversation/edited", &payload)
        .await;
    ctx.leave(before, after, vec![room]).await;
    Ok(Answer::Reply(payload))
}

/// `conversation/list { groupId }`: members only; the conversations the user can see.
pub async fn list(ctx: &Ctx, f: &Fields) -> Outcome {
    let group = groups::group(ctx, &f.id("groupId")?).await?;
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
    Ok(Answer::reply(
        json!({ "groupId": group.id, "conversations": conversations }),
    ))
}

/// `conversation/remove { conversationId }`: its owner or the group's owner; its messages go
/// too.
pub async fn remove(ctx: &Ctx, f: &Fields) -> Outcome {
    let id = f.id("conversationId")?;
    let (record, group) = visible(ctx, &id).await?;
    if record.conversation.owner_id != ctx.me() && group.owner_id != ctx.me() {
        return Err(TinCanError::Forbidden(
            "Only the owner of the conversation or of the group may remove it.",
        ));
    }
    if !ctx.store().tincan().conversations().remove(&id).await? {
        return Err(TinCanError::NotFound("conversation"));
    }
    let payload = json!({ "conversationId": id, "groupId": group.id });
    let room = rooms::conversation(&id);
    ctx.broadcast(vec![room.clone()], vec![], "conversation/removed", &payload)
        .await;
    ctx.leave(vec![room.clone()], vec![], vec![room]).await;
    Ok(Answer::Reply(payload))
}

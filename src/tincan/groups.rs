//! `group/*`: create, edit, list, view, join, leave, remove.
//!
//! Any group can be viewed by whoever has its id (that is how one asks to join a private
//! group), so on a group the failures are `not_found` only when it does not exist and
//! `forbidden` when the user may not do what they asked.
use entity::tincan_group;
use serde::Serialize;
use serde_json::{Value, json};

use super::views::{GroupDetail, GroupView};
use super::{Answer, Ctx, Fields, Outcome, TinCanError, rooms};
use crate::store::{GroupChanges, GroupCursor, MEMBER, NewGroup, PENDING};

pub const MAX_NAME: usize = 100;
pub const MAX_DESCRIPTION: usize = 1000;
const MAX_QUERY: usize = 100;
const MAX_CURSOR: usize = 1000;

/// The group, or `not_found`.
pub async fn group(ctx: &Ctx, id: &str) -> Result<tincan_group::Model, TinCanError> {
    ctx.store()
        .tincan()
        .groups()
        .get(id)
        .await?
        .ok_or(TinCanError::NotFound("group"))
}

/// Fails with `invalid_payload` on `field` unless every id names a user.
async fn users_exist(ctx: &Ctx, ids: &[String], field: &'static str) -> Result<(), TinCanError> {
    let found = ctx.store().tincan().accounts().get_many(ids).await?;
    if found.len() == ids.len() {
        Ok(())
    } else {
        Err(TinCanError::invalid(
            field,
            format!("{field} names an unknown user."),
        ))
    }
}

/// Sends `event` about a group to its members (member view), owner (owner view) and `outsiders`
/// (public view), except the requesting socket; returns the requester's own payload.
async fn announce(
    ctx: &Ctx,
    event: &str,
    detail: &GroupDetail,
    outsiders: &[String],
    wrap: impl Fn(GroupView) -> Value,
) -> Value {
    let owner = rooms::user(&detail.group.owner_id);
    // Removed members are still in the group's room until the announcement is out.
    let outsiders: Vec<String> = outsiders.iter().map(|u| rooms::user(u)).collect();
    let mut not_members = outsiders.clone();
    not_members.push(owner.clone());
    ctx.broadcast(
        vec![rooms::group(&detail.group.id)],
        not_members,
        event,
        &wrap(detail.member()),
    )
    .await;
    ctx.broadcast(vec![owner], vec![], event, &wrap(detail.owner()))
        .await;
    ctx.broadcast(outsiders, vec![], event, &wrap(detail.public()))
        .await;
    wrap(detail.for_user(ctx.me()))
}

/// `group/create { name, description?, visibility?, members? }`.
pub async fn create(ctx: &Ctx, f: &Fields) -> Outcome {
    let name = f.text("name", 1, MAX_NAME)?;
    let description = f
        .optional_text("description", 0, MAX_DESCRIPTION)?
        .unwrap_or_default();
    let visibility = f.visibility()?.unwrap_or("public");
    let mut members = f.ids("members")?.unwrap_or_default();
    members.retain(|m| m != ctx.me());
    users_exist(ctx, &members, "members").await?;
    let group = ctx
        .store()
        .tincan()
        .groups()
        .create(
            NewGroup {
                name,
                description,
                visibility,
                owner_id: ctx.me().to_owned(),
            },
            &members,
        )
        .await?;
    let everyone: Vec<String> = members
        .iter()
        .map(String::as_str)
        .chain([ctx.me()])
        .map(rooms::user)
        .collect();
    ctx.join(everyone, vec![rooms::group(&group.id)]).await;
    let detail = GroupDetail::load(ctx.store(), group).await?;
    let own = announce(
        ctx,
        "group/created",
        &detail,
        &[],
        |g| json!({ "group": g }),
    )
    .await;
    Ok(Answer::Reply(own))
}

/// `group/edit { groupId, name?, description?, visibility?, addMembers?, removeMembers? }`:
/// owner only. `addMembers` also approves pending requests.
pub async fn edit(ctx: &Ctx, f: &Fields) -> Outcome {
    let group_id = f.id("groupId")?;
    let changes = GroupChanges {
        name: f.optional_text("name", 1, MAX_NAME)?,
        description: f.optional_text("description", 0, MAX_DESCRIPTION)?,
        visibility: f.visibility()?,
        add: f.ids("addMembers")?.unwrap_or_default(),
        remove: f.ids("removeMembers")?.unwrap_or_default(),
    };
    let group = group(ctx, &group_id).await?;
    if group.owner_id != ctx.me() {
        return Err(TinCanError::Forbidden("Only the owner may edit the group."));
    }
    if changes.remove.contains(&group.owner_id) {
        return Err(TinCanError::invalid(
            "removeMembers",
            "The owner cannot be removed from their group.",
        ));
    }
    if changes.add.iter().any(|a| changes.remove.contains(a)) {
        return Err(TinCanError::invalid(
            "addMembers",
            "A user cannot be both added and removed.",
        ));
    }
    users_exist(ctx, &changes.add, "addMembers").await?;
    let edited = ctx
        .store()
        .tincan()
        .groups()
        .edit(&group_id, changes)
        .await?
        .ok_or(TinCanError::NotFound("group"))?;
    let conversations = ctx
        .store()
        .tincan()
        .conversations()
        .in_group(&group_id)
        .await?;
    let added: Vec<String> = edited.added.iter().map(|u| rooms::user(u)).collect();
    let mut joined = rooms::open_conversations(&conversations);
    joined.push(rooms::group(&group_id));
    ctx.join(added, joined).await;
    let detail = GroupDetail::load(ctx.store(), edited.group).await?;
    let own = announce(
        ctx,
        "group/edited",
        &detail,
        &edited.removed,
        |g| json!({ "group": g }),
    )
    .await;
    let removed: Vec<String> = edited.removed.iter().map(|u| rooms::user(u)).collect();
    let mut left: Vec<String> = conversations
        .iter()
        .map(|c| rooms::conversation(&c.conversation.id))
        .collect();
    left.push(rooms::group(&group_id));
    ctx.leave(removed, vec![], left).await;
    Ok(Answer::Reply(own))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    groups: Vec<GroupView>,
    next_cursor: Option<String>,
}

/// `group/list { query?, limit?, cursor? }`: public groups and the user's own, by name then id.
pub async fn list(ctx: &Ctx, f: &Fields) -> Outcome {
    let query = f.optional_string("query", MAX_QUERY)?;
    let limit = f.limit()?;
    let cursor = match f.optional_string("cursor", MAX_CURSOR)? {
        None => None,
        Some(c) => Some(decode_cursor(&c).ok_or_else(|| {
            TinCanError::invalid("cursor", "cursor must be a nextCursor from group/list.")
        })?),
    };
    let mut groups = ctx
        .store()
        .tincan()
        .groups()
        .list(ctx.me(), query.as_deref(), cursor.as_ref(), limit + 1)
        .await?;
    let more = groups.len() as u64 > limit;
    groups.truncate(limit as usize);
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let counts = ctx.store().tincan().groups().member_counts(&ids).await?;
    let next_cursor = groups
        .last()
        .filter(|_| more)
        .map(|g| encode_cursor(&g.name, &g.id));
    let groups = groups
        .iter()
        .map(|g| GroupView::public(g, counts.get(&g.id).copied().unwrap_or(0)))
        .collect();
    Ok(Answer::reply(Listed {
        groups,
        next_cursor,
    }))
}

/// An opaque cursor: the hex of `[name, id]` as JSON.
fn encode_cursor(name: &str, id: &str) -> String {
    hex::encode(json!([name, id]).to_string())
}

fn decode_cursor(cursor: &str) -> Option<GroupCursor> {
    let bytes = hex::decode(cursor).ok()?;
    let (name, id): (String, String) = serde_json::from_slice(&bytes).ok()?;
    Some(GroupCursor { name, id })
}

/// `group/view { groupId }`: public details of any group; members to members; pending
/// requests to the owner.
pub async fn view(ctx: &Ctx, f: &Fields) -> Outcome {
    let group = group(ctx, &f.id("groupId")?).await?;
    let detail = GroupDetail::load(ctx.store(), group).await?;
    Ok(Answer::reply(json!({ "group": detail.for_user(ctx.me()) })))
}

/// `group/join { groupId }`: a member of a public group at once; a pending request to the
/// owner of a private one.
pub async fn join(ctx: &Ctx, f: &Fields) -> Outcome {
    let group = group(ctx, &f.id("groupId")?).await?;
    match ctx
        .store()
        .tincan()
        .groups()
        .membership(&group.id, ctx.me())
        .await?
    {
        Some(m) if m.status == MEMBER => return Err(TinCanError::AlreadyMember),
        Some(_) => {
            return Err(TinCanError::Conflict(
                "Your request to join that group is already pending.",
            ));
        }
        None => {}
    }
    let status = if group.visibility == "public" {
        MEMBER
    } else {
        PENDING
    };
    if !ctx
        .store()
        .tincan()
        .groups()
        .join(&group.id, ctx.me(), status)
        .await?
    {
        return Err(TinCanError::AlreadyMember);
    }
    let me = ctx.me().to_owned();
    let wrap = |g: GroupView| json!({ "group": g, "userId": me, "status": status });
    if status == MEMBER {
        let conversations = ctx
            .store()
            .tincan()
            .conversations()
            .in_group(&group.id)
            .await?;
        let mut joined = rooms::open_conversations(&conversations);
        joined.push(rooms::group(&group.id));
        ctx.join(vec![rooms::user(ctx.me())], joined).await;
        let detail = GroupDetail::load(ctx.store(), group).await?;
        return Ok(Answer::Reply(
            announce(ctx, "group/joined", &detail, &[], wrap).await,
        ));
    }
    let detail = GroupDetail::load(ctx.store(), group).await?;
    let owner = rooms::user(&detail.group.owner_id);
    ctx.broadcast(vec![owner], vec![], "group/joined", &wrap(detail.owner()))
        .await;
    ctx.broadcast(
        vec![rooms::user(ctx.me())],
        vec![],
        "group/joined",
        &wrap(detail.public()),
    )
    .await;
    Ok(Answer::Reply(wrap(detail.public())))
}

/// `group/leave { groupId }`: a member leaves (or a pending request is withdrawn); the owner
/// cannot leave.
pub async fn leave(ctx: &Ctx, f: &Fields) -> Outcome {
    let group = group(ctx, &f.id("groupId")?).await?;
    if group.owner_id == ctx.me() {
        return Err(TinCanError::OwnerCannotLeave);
    }
    let Some(membership) = ctx
        .store()
        .tincan()
        .groups()
        .membership(&group.id, ctx.me())
        .await?
    else {
        return Err(TinCanError::NotMember);
    };
    let conversations = ctx
        .store()
        .tincan()
        .conversations()
        .in_group(&group.id)
        .await?;
    if !ctx
        .store()
        .tincan()
        .groups()
        .leave(&group.id, ctx.me())
        .await?
    {
        return Err(TinCanError::NotMember);
    }
    let payload = json!({ "groupId": group.id, "userId": ctx.me() });
    let me = rooms::user(ctx.me());
    let audience = if membership.status == MEMBER {
        rooms::group(&group.id)
    } else {
        rooms::user(&group.owner_id)
    };
    ctx.broadcast(vec![audience, me.clone()], vec![], "group/left", &payload)
        .await;
    let mut left: Vec<String> = conversations
        .iter()
        .map(|c| rooms::conversation(&c.conversation.id))
        .collect();
    left.push(rooms::group(&group.id));
    ctx.leave(vec![me], vec![], left).await;
    Ok(Answer::Reply(payload))
}

/// `group/remove { groupId }`: owner only; its conversations and messages go too.
pub async fn remove(ctx: &Ctx, f: &Fields) -> Outcome {
    let group = group(ctx, &f.id("groupId")?).await?;
    if group.owner_id != ctx.me() {
        return Err(TinCanError::Forbidden(
            "Only the owner may remove the group.",
        ));
    }
    let conversations = ctx
        .store()
        .tincan()
        .groups()
        .remove(&group.id)
        .await?
        .ok_or(TinCanError::NotFound("group"))?;
    let payload = json!({ "groupId": group.id });
    let room = rooms::group(&group.id);
    ctx.broadcast(vec![room.clone()], vec![], "group/removed", &payload)
        .await;
    let mut left: Vec<String> = conversations
        .iter()
        .map(|c| rooms::conversation(c))
        .collect();
    left.push(room.clone());
    ctx.leave(vec![room], vec![], left).await;
    Ok(Answer::Reply(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let c = encode_cursor("Name \"quoted\" é", "id-1");
        assert_eq!(
            decode_cursor(&c),
            Some(GroupCursor {
                name: "Name \"quoted\" é".into(),
                id: "id-1".into()
            })
        );
        for junk in ["", "zz", "00", &hex::encode("[1,2]"), &hex::encode("{}")] {
            assert_eq!(decode_cursor(junk), None, "{junk}");
        }
    }
}

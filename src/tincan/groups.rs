//! `group/*`: create, edit, list, view, join, leave, remove.
//!
//! Any group can be viewed by whoever has its id (that is how one asks to join a private
//! group), so on a group the failures are `not_found` only when it does not exist and
//! `forbidden` when the user may not do what they asked.
use entity::tincan_group;
use serde::Serialize;

use super::events::Handle;
use super::payload::Visibility;
use super::request::{
    CreateGroup, EditGroup, JoinGroup, LeaveGroup, ListGroups, RemoveGroup, ViewGroup,
    encode_cursor,
};
use super::views::{GroupDetail, GroupView, Status};
use super::{Ctx, TinCanError, rooms};
use crate::store::{GroupChanges, NewGroup};

/// `{ group }`: `group/created`, `group/edited`, `group/view-response`.
#[derive(Serialize)]
pub struct GroupReply {
    group: GroupView,
}

/// `group/joined { group, userId, status }`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    group: GroupView,
    user_id: String,
    status: Status,
}

/// `group/left { groupId, userId }`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Left {
    group_id: String,
    user_id: String,
}

/// `group/removed { groupId }`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    group_id: String,
}

/// `group/list-response { groups, nextCursor }`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    groups: Vec<GroupView>,
    next_cursor: Option<String>,
}

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
async fn announce<T: Serialize>(
    ctx: &Ctx,
    event: &str,
    detail: &GroupDetail,
    outsiders: &[String],
    wrap: impl Fn(GroupView) -> T,
) -> T {
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

/// The creator and `members` are its members.
impl Handle for CreateGroup {
    type Reply = GroupReply;

    async fn handle(self, ctx: &Ctx) -> Result<GroupReply, TinCanError> {
        let CreateGroup {
            name,
            description,
            visibility,
            mut members,
        } = self;
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
                    visibility: visibility.as_str(),
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
        let own = announce(ctx, "group/created", &detail, &[], |group| GroupReply {
            group,
        })
        .await;
        Ok(own)
    }
}

/// Owner only. `addMembers` also approves pending requests.
impl Handle for EditGroup {
    type Reply = GroupReply;

    async fn handle(self, ctx: &Ctx) -> Result<GroupReply, TinCanError> {
        let group_id = self.group_id;
        let changes = GroupChanges {
            name: self.name,
            description: self.description,
            visibility: self.visibility.map(Visibility::as_str),
            add: self.add,
            remove: self.remove,
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
        let own = announce(ctx, "group/edited", &detail, &edited.removed, |group| {
            GroupReply { group }
        })
        .await;
        let removed: Vec<String> = edited.removed.iter().map(|u| rooms::user(u)).collect();
        let mut left: Vec<String> = conversations
            .iter()
            .map(|c| rooms::conversation(&c.conversation.id))
            .collect();
        left.push(rooms::group(&group_id));
        ctx.leave(removed, vec![], left).await;
        Ok(own)
    }
}

/// Public groups and the user's own, by name then id.
impl Handle for ListGroups {
    type Reply = Listed;

    async fn handle(self, ctx: &Ctx) -> Result<Listed, TinCanError> {
        let ListGroups {
            query,
            limit,
            cursor,
        } = self;
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
        Ok(Listed {
            groups,
            next_cursor,
        })
    }
}

/// Public details of any group; members to members; pending requests to the owner.
impl Handle for ViewGroup {
    type Reply = GroupReply;

    async fn handle(self, ctx: &Ctx) -> Result<GroupReply, TinCanError> {
        let group = group(ctx, &self.group_id).await?;
        let detail = GroupDetail::load(ctx.store(), group).await?;
        Ok(GroupReply {
            group: detail.for_user(ctx.me()),
        })
    }
}

/// A member of a public group at once; a pending request to the owner of a private one.
impl Handle for JoinGroup {
    type Reply = Joined;

    async fn handle(self, ctx: &Ctx) -> Result<Joined, TinCanError> {
        let group = group(ctx, &self.group_id).await?;
        match ctx
            .store()
            .tincan()
            .groups()
            .membership(&group.id, ctx.me())
            .await?
        {
            Some(m) if Status::is_member(&m.status) => return Err(TinCanError::AlreadyMember),
            Some(_) => {
                return Err(TinCanError::Conflict(
                    "Your request to join that group is already pending.",
                ));
            }
            None => {}
        }
        let status = if Visibility::of(&group.visibility) == Some(Visibility::Public) {
            Status::Member
        } else {
            Status::Pending
        };
        if !ctx
            .store()
            .tincan()
            .groups()
            .join(&group.id, ctx.me(), status.stored())
            .await?
        {
            return Err(TinCanError::AlreadyMember);
        }
        let me = ctx.me().to_owned();
        let wrap = |group: GroupView| Joined {
            group,
            user_id: me.clone(),
            status,
        };
        if status == Status::Member {
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
            return Ok(announce(ctx, "group/joined", &detail, &[], wrap).await);
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
        Ok(wrap(detail.public()))
    }
}

/// A member leaves (or a pending request is withdrawn); the owner cannot leave.
impl Handle for LeaveGroup {
    type Reply = Left;

    async fn handle(self, ctx: &Ctx) -> Result<Left, TinCanError> {
        let group = group(ctx, &self.group_id).await?;
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
        let payload = Left {
            group_id: group.id.clone(),
            user_id: ctx.me().to_owned(),
        };
        let me = rooms::user(ctx.me());
        let audience = if Status::is_member(&membership.status) {
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
        Ok(payload)
    }
}

/// Owner only; its conversations and messages go too.
impl Handle for RemoveGroup {
    type Reply = Removed;

    async fn handle(self, ctx: &Ctx) -> Result<Removed, TinCanError> {
        let group = group(ctx, &self.group_id).await?;
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
        let payload = Removed {
            group_id: group.id.clone(),
        };
        let room = rooms::group(&group.id);
        ctx.broadcast(vec![room.clone()], vec![], "group/removed", &payload)
            .await;
        let mut left: Vec<String> = conversations
            .iter()
            .map(|c| rooms::conversation(c))
            .collect();
        left.push(room.clone());
        ctx.leave(vec![room], vec![], left).await;
        Ok(payload)
    }
}

//! Counsellors on `/` (the old apps' way), matching, issues and reports.
use serde::Serialize;

use super::kinds::RoomType;
use super::request::{CounsellorOnline, Field, ListIssues, NoFields, ReportUser, ResolveIssue};
use super::views::{Empty, IssueView, RoomDetail};
use super::{BubbleError, Ctx, Outcome, Reply};
use crate::socket::sio;
use crate::store::{IssueType, NewIssue, NewReport, NewRoom};

const COUNSELLOR_ROOM_NAME: &str = "Chat with counsellor";

/// `{ reason, reportedUserId, roomId }`: what the others in the room hear of a report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Reported<'a> {
    reason: &'a str,
    reported_user_id: &'a str,
    room_id: &'a str,
}

/// `{ counsellorId, counsellorName }`: who the person was matched with, added to their room.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Matched<'a> {
    counsellor_id: &'a str,
    counsellor_name: &'a str,
}

/// `{ bubbleId, counsellorId, counsellorName, userId }`: the counsellor's copy of the match,
/// which also says who asked.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MatchedUser<'a> {
    bubble_id: &'a str,
    counsellor_id: &'a str,
    counsellor_name: &'a str,
    user_id: String,
}

pub async fn report_user(ctx: &Ctx, r: ReportUser) -> Outcome {
    let room = ctx.room(&r.room_id?).await?;
    let reported = r.user_to_report?;
    let presence = &ctx.app.presence;
    let Some(reported_bubble_id) = presence.person_in_room(&room.id, &reported).await? else {
        return Err(BubbleError::NoUserToReport);
    };
    let reason = r.reason?;
    let report = NewReport {
        room_id: room.id.clone(),
        reporter_user_id: ctx.sid.to_string(),
        reporter_bubble_id: ctx.bubble_id.to_string(),
        reported_user_id: reported.clone(),
        reported_bubble_id: reported_bubble_id.to_string(),
        reason: reason.clone(),
    };
    ctx.app.store.issues().add_report(report).await?;
    let payload = Reported {
        reason: &reason,
        reported_user_id: &reported,
        room_id: &room.id,
    };
    ctx.to_others(&room.id, "report_user", &payload).await;
    Ok(None)
}

pub async fn find_counsellor(ctx: &Ctx, _: NoFields) -> Outcome {
    let presence = &ctx.app.presence;
    let mut claimed = None;
    if let Some(claim) = presence.claim_counsellor().await? {
        match presence.person(claim.conn).await {
            Ok(Some(person)) => claimed = Some((claim, person)),
            Ok(None) => presence.release(&claim).await?,
            Err(e) => {
                presence.release(&claim).await?;
                return Err(e.into());
            }
        }
    }
    let Some((claim, counsellor_bubble_id)) = claimed else {
        ctx.app
            .store
            .issues()
            .add(issue(ctx, IssueType::UserMissed, None))
            .await?;
        return Err(BubbleError::CounsellorUnavailable);
    };
    let new = NewRoom {
        name: COUNSELLOR_ROOM_NAME.to_owned(),
        description: String::new(),
        room_type: RoomType::Private.as_str(),
        user_limit: 2,
        categories: Vec::new(),
        created_by: ctx.sid.to_string(),
        created_by_bubble_id: ctx.bubble_id.to_string(),
    };
    let requested = issue(ctx, IssueType::UserRequested, Some(&claim.counsellor_id));
    let members = [&*ctx.bubble_id, &*counsellor_bubble_id];
    let room = match ctx
        .app
        .store
        .rooms()
        .create(new, &members, Some(requested))
        .await
    {
        Ok(room) => room,
        Err(e) => {
            presence.release(&claim).await?;
            return Err(e.into());
        }
    };
    presence.attach(&claim, &room.id).await?;
    for conn in [ctx.conn, claim.conn] {
        if presence
            .join(&room.id, &room.name, conn, None)
            .await?
            .is_ok()
        {
            ctx.join_socket(conn, &room.id).await;
        }
    }
    let here = presence.snapshot(&room.id).await?;
    let detail = RoomDetail::new(&room, &[], &here).with(Matched {
        counsellor_id: &claim.counsellor_id,
        counsellor_name: &claim.name,
    });
    let reply = Reply::new("find_counsellor", &detail);
    let to_counsellor = detail.with(MatchedUser {
        bubble_id: &ctx.bubble_id,
        counsellor_id: &claim.counsellor_id,
        counsellor_name: &claim.name,
        user_id: ctx.sid.to_string(),
    });
    ctx.emit_to(claim.conn, "find_counsellor", &to_counsellor)
        .await;
    Ok(Some(reply))
}

fn issue(ctx: &Ctx, issue_type: IssueType, counsellor_id: Option<&str>) -> NewIssue {
    NewIssue {
        issue_type,
        user_id: ctx.sid.to_string(),
        bubble_id: ctx.bubble_id.to_string(),
        counsellor_id: counsellor_id.map(str::to_owned),
        room_id: None,
        reason: None,
    }
}

/// Going online: on `/counsellor` as the signed-in account, which also gets the current
/// `list_issues`; on `/`, the old apps' unauthenticated way, `{ counsellorId, counsellorName }` or
/// the seed's `{ userId, newName }`.
pub async fn counsellor_online(ctx: &Ctx, r: CounsellorOnline) -> Outcome {
    let (id, name) = match &ctx.counsellor {
        Some(signed_in) => (signed_in.account_id.clone(), signed_in.name.clone()),
        None if ctx.app.config.root_counsellors => {
            let (id, name) = legacy_counsellor(ctx, r)?;
            ctx.app.store.counsellors().upsert(&id, &name).await?;
            (id, name)
        }
        None => return Err(BubbleError::Unauthorized),
    };
    ctx.app
        .presence
        .counsellor_online(ctx.conn, &id, &name)
        .await?;
    if ctx.counsellor.is_some() {
        let issues = ctx.app.store.issues().open(Some(&id)).await?;
        let listed: Vec<IssueView> = issues.iter().map(IssueView::from).collect();
        sio::emit(&*ctx.socket, "list_issues", &listed);
    }
    Ok(Some(Reply::new("counsellor_online", Empty {})))
}

/// The counsellor an old app names on `/`: id, then name, each the first of its pair that is
/// not blank (a bad one fails only when it is reached).
fn legacy_counsellor(ctx: &Ctx, r: CounsellorOnline) -> Result<(String, String), BubbleError> {
    let first = |a: Field<Option<String>>, b: Field<Option<String>>| match a? {
        Some(value) => Ok(Some(value)),
        None => b,
    };
    let id = first(r.counsellor_id, r.user_id)?.unwrap_or_else(|| ctx.bubble_id.to_string());
    let name = first(r.counsellor_name, r.new_name)?.unwrap_or_else(|| "Counsellor".to_owned());
    Ok((id, name))
}

/// Stops being matched; rooms already open stay.
pub async fn counsellor_offline(ctx: &Ctx, _: NoFields) -> Outcome {
    ctx.app.presence.counsellor_offline(ctx.conn).await?;
    Ok(Some(Reply::new("counsellor_offline", Empty {})))
}

/// The issues a counsellor sees. On `/counsellor` the counsellor is the signed-in one; on `/` the
/// payload may name one, or the socket's own online counsellor id is used.
pub async fn list_issues(ctx: &Ctx, r: ListIssues) -> Outcome {
    let counsellor_id = match &ctx.counsellor {
        Some(signed_in) => Some(signed_in.account_id.clone()),
        None => match r.counsellor_id? {
            Some(id) => Some(id),
            None => ctx.app.presence.counsellor_id(ctx.conn).await?,
        },
    };
    let issues = ctx
        .app
        .store
        .issues()
        .open(counsellor_id.as_deref())
        .await?;
    let listed: Vec<IssueView> = issues.iter().map(IssueView::from).collect();
    Ok(Some(Reply::new("list_issues", listed)))
}

/// `resolve_issue { issueId }`: the issue is handled and leaves the lists.
pub async fn resolve_issue(ctx: &Ctx, r: ResolveIssue) -> Outcome {
    let id = r.issue_id?;
    let issue = ctx
        .app
        .store
        .issues()
        .resolve(id)
        .await?
        .ok_or(BubbleError::IssueNotFound)?;
    Ok(Some(Reply::new("resolve_issue", IssueView::from(&issue))))
}

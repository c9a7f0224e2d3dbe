//! Counsellors on `/` (the old apps' way), matching, issues and reports.
use serde_json::{Value, json};

use super::views::{IssueView, RoomDetail};
use super::{BubbleError, Ctx, Outcome, Payload, Reply};
use crate::socket::sio;
use crate::store::{IssueType, NewIssue, NewReport, NewRoom, PRIVATE};

const MAX_REASON_CHARS: usize = 1000;
const MAX_COUNSELLOR_CHARS: usize = 100;
const COUNSELLOR_ROOM_NAME: &str = "Chat with counsellor";

pub async fn report_user(ctx: &Ctx, p: Payload) -> Outcome {
    let room = ctx.room(&p.room_id()?).await?;
    let reported = match p.get("userToReport") {
        Some(Value::String(sid)) => sid.as_str(),
        _ => return Err(BubbleError::NoUserToReport),
    };
    let Some(reported_bubble_id) = ctx.app.presence.person_in_room(&room.id, reported).await?
    else {
        return Err(BubbleError::NoUserToReport);
    };
    let reason = p
        .optional_text("reason", MAX_REASON_CHARS, BubbleError::InvalidReason)?
        .unwrap_or_default();
    let report = NewReport {
        room_id: room.id.clone(),
        reporter_user_id: ctx.sid.to_string(),
        reporter_bubble_id: ctx.bubble_id.to_string(),
        reported_user_id: reported.to_owned(),
        reported_bubble_id: reported_bubble_id.to_string(),
        reason: reason.to_owned(),
    };
    ctx.app.store.issues().add_report(report).await?;
    let payload = json!({ "roomId": room.id, "reportedUserId": reported, "reason": reason });
    ctx.to_others(&room.id, "report_user", &payload).await;
    Ok(None)
}

pub async fn find_counsellor(ctx: &Ctx) -> Outcome {
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
        room_type: PRIVATE,
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
    let detail = RoomDetail::new(&room, &[], &here).with([
        ("counsellorId", json!(claim.counsellor_id)),
        ("counsellorName", json!(claim.name)),
    ]);
    let reply = Reply::new("find_counsellor", &detail);
    let to_counsellor = detail.with([
        ("userId", json!(ctx.sid.to_string())),
        ("bubbleId", json!(&*ctx.bubble_id)),
    ]);
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
pub async fn counsellor_online(ctx: &Ctx, p: Payload) -> Outcome {
    let (id, name) = match &ctx.counsellor {
        Some(signed_in) => (signed_in.account_id.clone(), signed_in.name.clone()),
        None if ctx.app.config.root_counsellors => {
            let (id, name) = legacy_counsellor(ctx, &p)?;
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
    Ok(Some(Reply::new("counsellor_online", json!({}))))
}

fn legacy_counsellor(ctx: &Ctx, p: &Payload) -> Result<(String, String), BubbleError> {
    let field = |keys: [&str; 2]| -> Result<Option<String>, BubbleError> {
        for key in keys {
            if let Some(value) =
                p.optional_text(key, MAX_COUNSELLOR_CHARS, BubbleError::InvalidCounsellor)?
                && !value.trim().is_empty()
            {
                return Ok(Some(value.to_owned()));
            }
        }
        Ok(None)
    };
    let id = field(["counsellorId", "userId"])?.unwrap_or_else(|| ctx.bubble_id.to_string());
    let name = field(["counsellorName", "newName"])?.unwrap_or_else(|| "Counsellor".to_owned());
    Ok((id, name))
}

/// Stops being matched; rooms already open stay.
pub async fn counsellor_offline(ctx: &Ctx) -> Outcome {
    ctx.app.presence.counsellor_offline(ctx.conn).await?;
    Ok(Some(Reply::new("counsellor_offline", json!({}))))
}

/// The issues a counsellor sees. On `/counsellor` the counsellor is the signed-in one; on `/` the
/// payload may name one, or the socket's own online counsellor id is used.
pub async fn list_issues(ctx: &Ctx, p: Payload) -> Outcome {
    let counsellor_id = match &ctx.counsellor {
        Some(signed_in) => Some(signed_in.account_id.clone()),
        None => match p.optional_text(
            "counsellorId",
            MAX_COUNSELLOR_CHARS,
            BubbleError::InvalidCounsellor,
        )? {
            Some(id) => Some(id.to_owned()),
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
pub async fn resolve_issue(ctx: &Ctx, p: Payload) -> Outcome {
    let id = match p.get("issueId") {
        None => return Err(BubbleError::NoIssueId),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    }
    .ok_or(BubbleError::InvalidIssueId)?;
    let issue = ctx
        .app
        .store
        .issues()
        .resolve(id)
        .await?
        .ok_or(BubbleError::IssueNotFound)?;
    Ok(Some(Reply::new("resolve_issue", IssueView::from(&issue))))
}

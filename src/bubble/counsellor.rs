//! Counsellors on `/` (the old apps' way), matching, issues and reports.
use serde_json::{Value, json};

use super::views::{IssueView, RoomDetail};
use super::{BubbleError, Ctx, Outcome, Payload, Reply};
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
    let Some(reported_bubble_id) = ctx.app.presence.person_in_room(&room.id, reported) else {
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
    ctx.app.store.add_report(report).await?;
    let payload = json!({ "roomId": room.id, "reportedUserId": reported, "reason": reason });
    ctx.to_others(&room.id, "report_user", &payload).await;
    Ok(None)
}

pub async fn find_counsellor(ctx: &Ctx) -> Outcome {
    let presence = &ctx.app.presence;
    let claimed = presence
        .claim_counsellor()
        .and_then(|claim| match presence.person(claim.conn) {
            Some(person) => Some((claim, person)),
            None => {
                presence.release(&claim);
                None
            }
        });
    let Some((claim, counsellor_bubble_id)) = claimed else {
        ctx.app
            .store
            .add_issue(issue(ctx, IssueType::UserMissed, None))
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
        .create_room(new, &members, Some(requested))
        .await
    {
        Ok(room) => room,
        Err(e) => {
            presence.release(&claim);
            return Err(e.into());
        }
    };
    presence.attach(&claim, &room.id);
    let _ = presence.join(&room.id, &room.name, ctx.conn, None);
    ctx.socket.join(room.id.clone());
    if let Some(counsellor) = ctx.socket_of(claim.conn) {
        let _ = presence.join(&room.id, &room.name, claim.conn, None);
        counsellor.join(room.id.clone());
    }
    let detail = RoomDetail::new(&room, &[], presence.snapshot(&room.id));
    let counsellor = [
        ("counsellorId", json!(claim.counsellor_id)),
        ("counsellorName", json!(claim.name)),
    ];
    let [id, name] = counsellor.clone();
    let to_counsellor = detail.with([
        id,
        name,
        ("userId", json!(ctx.sid.to_string())),
        ("bubbleId", json!(&*ctx.bubble_id)),
    ]);
    ctx.emit_to(claim.conn, "find_counsellor", &to_counsellor);
    Ok(Some(Reply::new("find_counsellor", detail.with(counsellor))))
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

/// The old apps' unauthenticated way to go online as a counsellor: `{ counsellorId,
/// counsellorName }`, or the seed's `{ userId, newName }`.
pub async fn counsellor_online(ctx: &Ctx, p: Payload) -> Outcome {
    if !ctx.app.config.root_counsellors {
        return Err(BubbleError::Unauthorized);
    }
    let field = |keys: [&str; 2]| -> Result<Option<&str>, BubbleError> {
        for key in keys {
            if let Some(value) =
                p.optional_text(key, MAX_COUNSELLOR_CHARS, BubbleError::InvalidCounsellor)?
                && !value.trim().is_empty()
            {
                return Ok(Some(value));
            }
        }
        Ok(None)
    };
    let id = field(["counsellorId", "userId"])?.unwrap_or(&ctx.bubble_id);
    let name = field(["counsellorName", "newName"])?.unwrap_or("Counsellor");
    ctx.app.store.upsert_counsellor(id, name).await?;
    ctx.app.presence.counsellor_online(ctx.conn, id, name);
    Ok(Some(Reply::new("counsellor_online", json!({}))))
}

pub async fn list_issues(ctx: &Ctx, p: Payload) -> Outcome {
    let counsellor_id = match p.optional_text(
        "counsellorId",
        MAX_COUNSELLOR_CHARS,
        BubbleError::InvalidCounsellor,
    )? {
        Some(id) => Some(id.to_owned()),
        None => ctx.app.presence.counsellor_id(ctx.conn),
    };
    let issues = ctx.app.store.open_issues(counsellor_id.as_deref()).await?;
    let listed: Vec<IssueView> = issues.iter().map(IssueView::from).collect();
    Ok(Some(Reply::new("list_issues", listed)))
}

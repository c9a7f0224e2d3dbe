//! What a person says about themselves: their name and their device's push token.
use serde_json::json;

use super::{BubbleError, Ctx, Outcome, Payload, Reply};

const MAX_NAME_CHARS: usize = 100;
const MAX_PUSH_TOKEN_CHARS: usize = 4096;

pub async fn set_user_name(ctx: &Ctx, p: Payload) -> Outcome {
    let name = p.text(
        "newName",
        MAX_NAME_CHARS,
        BubbleError::NoName,
        BubbleError::InvalidNewName,
    )?;
    ctx.app
        .store
        .people()
        .set_name(&ctx.bubble_id, name)
        .await?;
    if let Ok(mut known) = ctx.name.lock() {
        *known = Some(name.to_owned());
    }
    let payload = json!({
        "userId": ctx.sid.to_string(),
        "newName": name,
        "bubbleId": &*ctx.bubble_id,
    });
    let rooms = ctx.app.presence.rooms_of(ctx.conn).await?;
    ctx.to_others_in(rooms, "set_user_name", &payload).await;
    Ok(None)
}

pub async fn register_push(ctx: &Ctx, p: Payload) -> Outcome {
    let token = p.text(
        "pushToken",
        MAX_PUSH_TOKEN_CHARS,
        BubbleError::InvalidPushToken,
        BubbleError::InvalidPushToken,
    )?;
    let platform = match p.get("platform") {
        None => "fcm",
        Some(value) => match value.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("fcm" | "android") => "fcm",
            Some("apns" | "ios") => "apns",
            _ => return Err(BubbleError::InvalidPlatform),
        },
    };
    ctx.app
        .store
        .push()
        .register_token(token, &ctx.bubble_id, platform)
        .await?;
    Ok(Some(Reply::new("register_push", json!({}))))
}

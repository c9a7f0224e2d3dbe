//! What a person says about themselves: their name and their device's push token.
use serde::Serialize;

use super::request::{NoFields, RegisterPush, SetUserName};
use super::views::Empty;
use super::{Ctx, Outcome, Reply};

/// `{ bubbleId, newName, userId }`: what the others in the person's rooms hear of a new name.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Renamed<'a> {
    bubble_id: &'a str,
    new_name: &'a str,
    user_id: String,
}

/// `my_id`: the person's bubbleId, as sent on connecting.
pub async fn my_id(ctx: &Ctx, _: NoFields) -> Outcome {
    Ok(Some(Reply::new("my_id", &*ctx.bubble_id)))
}

pub async fn set_user_name(ctx: &Ctx, r: SetUserName) -> Outcome {
    let name = r.new_name?;
    ctx.app
        .store
        .people()
        .set_name(&ctx.bubble_id, &name)
        .await?;
    if let Ok(mut known) = ctx.name.lock() {
        *known = Some(name.clone());
    }
    let payload = Renamed {
        bubble_id: &ctx.bubble_id,
        new_name: &name,
        user_id: ctx.sid.to_string(),
    };
    let rooms = ctx.app.presence.rooms_of(ctx.conn).await?;
    ctx.to_others_in(rooms, "set_user_name", &payload).await;
    Ok(None)
}

pub async fn register_push(ctx: &Ctx, r: RegisterPush) -> Outcome {
    let token = r.push_token?;
    let platform = r.platform?;
    ctx.app
        .store
        .push()
        .register_token(&token, &ctx.bubble_id, platform.as_str())
        .await?;
    Ok(Some(Reply::new("register_push", Empty {})))
}

//! `message/*`: create, edit, remove, list. Messages reach everyone in the conversation's room;
//! a removed message stays as a tombstone that listings leave out.
use std::collections::HashMap;

use entity::tincan_user;
use serde::Serialize;

use super::events::Handle;
use super::request::{CreateMessage, EditMessage, ListMessages, RemoveMessage};
use super::views::{AuthorView, MessageView};
use super::{Ctx, TinCanError, conversations, rooms};

/// `{ message }`: `message/created`, `message/edited`.
#[derive(Serialize)]
pub struct MessageReply {
    message: MessageView,
}

/// `message/removed { messageId, conversationId }`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    message_id: String,
    conversation_id: String,
}

/// `message/list-response { conversationId, messages, hasMore }`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    conversation_id: String,
    messages: Vec<MessageView>,
    has_more: bool,
}

/// The signed-in user as an author.
fn me(ctx: &Ctx) -> AuthorView {
    AuthorView {
        id: ctx.me.user_id.clone(),
        username: ctx.me.username.clone(),
        display_name: ctx.me.display_name.clone(),
    }
}

/// In a conversation the user sees.
impl Handle for CreateMessage {
    type Reply = MessageReply;

    async fn handle(self, ctx: &Ctx) -> Result<MessageReply, TinCanError> {
        let CreateMessage {
            conversation_id: id,
            content,
            client_id,
        } = self;
        conversations::visible(ctx, &id).await?;
        let stored = ctx
            .store()
            .tincan()
            .messages()
            .create(&id, ctx.me(), &content, client_id.as_deref())
            .await?;
        let payload = MessageReply {
            message: MessageView::new(&stored, me(ctx)),
        };
        ctx.broadcast(
            vec![rooms::conversation(&id)],
            vec![],
            "message/created",
            &payload,
        )
        .await;
        Ok(payload)
    }
}

/// Its author only.
impl Handle for EditMessage {
    type Reply = MessageReply;

    async fn handle(self, ctx: &Ctx) -> Result<MessageReply, TinCanError> {
        let EditMessage {
            message_id: id,
            content,
        } = self;
        let (message, _) = visible_message(ctx, &id).await?;
        if message.author_id != ctx.me() {
            return Err(TinCanError::Forbidden(
                "Only the author may edit a message.",
            ));
        }
        let edited = ctx
            .store()
            .tincan()
            .messages()
            .edit(&id, &content)
            .await?
            .ok_or(TinCanError::NotFound("message"))?;
        let payload = MessageReply {
            message: MessageView::new(&edited, me(ctx)),
        };
        ctx.broadcast(
            vec![rooms::conversation(&edited.conversation_id)],
            vec![],
            "message/edited",
            &payload,
        )
        .await;
        Ok(payload)
    }
}

/// Its author, or the group's owner.
impl Handle for RemoveMessage {
    type Reply = Removed;

    async fn handle(self, ctx: &Ctx) -> Result<Removed, TinCanError> {
        let id = self.message_id;
        let (message, group_owner) = visible_message(ctx, &id).await?;
        if message.author_id != ctx.me() && group_owner != ctx.me() {
            return Err(TinCanError::Forbidden(
                "Only the author or the group's owner may remove a message.",
            ));
        }
        ctx.store()
            .tincan()
            .messages()
            .remove(&id)
            .await?
            .ok_or(TinCanError::NotFound("message"))?;
        let payload = Removed {
            message_id: id,
            conversation_id: message.conversation_id,
        };
        ctx.broadcast(
            vec![rooms::conversation(&payload.conversation_id)],
            vec![],
            "message/removed",
            &payload,
        )
        .await;
        Ok(payload)
    }
}

/// A message that is not removed, in a conversation the user sees, with the group owner's id;
/// `not_found` otherwise.
async fn visible_message(
    ctx: &Ctx,
    id: &str,
) -> Result<(entity::tincan_message::Model, String), TinCanError> {
    let message = ctx
        .store()
        .tincan()
        .messages()
        .get(id)
        .await?
        .filter(|m| m.removed_at.is_none())
        .ok_or(TinCanError::NotFound("message"))?;
    let (_, group) = conversations::visible(ctx, &message.conversation_id)
        .await
        .map_err(|e| match e {
            TinCanError::NotFound(_) => TinCanError::NotFound("message"),
            other => other,
        })?;
    Ok((message, group.owner_id))
}

/// Newest first, tombstones left out. `before` is a message id of the conversation (a removed
/// one works too).
impl Handle for ListMessages {
    type Reply = Listed;

    async fn handle(self, ctx: &Ctx) -> Result<Listed, TinCanError> {
        let ListMessages {
            conversation_id: id,
            before,
            limit,
        } = self;
        conversations::visible(ctx, &id).await?;
        let before = match before {
            None => None,
            Some(b) => Some(
                ctx.store()
                    .tincan()
                    .messages()
                    .get(&b)
                    .await?
                    .filter(|m| m.conversation_id == id)
                    .ok_or_else(|| {
                        TinCanError::invalid(
                            "before",
                            "before must be a message of this conversation.",
                        )
                    })?,
            ),
        };
        let mut messages = ctx
            .store()
            .tincan()
            .messages()
            .list(&id, before.as_ref(), limit + 1)
            .await?;
        let has_more = messages.len() as u64 > limit;
        messages.truncate(limit as usize);
        let mut author_ids: Vec<String> = messages.iter().map(|m| m.author_id.clone()).collect();
        author_ids.sort();
        author_ids.dedup();
        let authors: HashMap<String, tincan_user::Model> = ctx
            .store()
            .tincan()
            .accounts()
            .get_many(&author_ids)
            .await?
            .into_iter()
            .map(|u| (u.id.clone(), u))
            .collect();
        let messages = messages
            .iter()
            .map(|m| {
                let author = match authors.get(&m.author_id) {
                    Some(u) => AuthorView::from(u),
                    None => AuthorView {
                        id: m.author_id.clone(),
                        username: String::new(),
                        display_name: String::new(),
                    },
                };
                MessageView::new(m, author)
            })
            .collect();
        Ok(Listed {
            conversation_id: id,
            messages,
            has_more,
        })
    }
}

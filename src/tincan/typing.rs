//! Typing notices: relayed to the others who can see the conversation, never stored.
//!
//! A client may stop without saying so (it closed, it lost the network), so each
//! `type-start` (re)arms a timer per (user, conversation); when it runs out the server sends
//! `type-end` itself. A `type-end` from the client cancels it.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::task::AbortHandle;

use super::events::Handle;
use super::request::{TypeEnd, TypeStart};
use super::{Ctx, NS, TinCanError, conversations, rooms};
use crate::socket::sio::Io;
use crate::socket::wire;

type Key = (String, String);

pub struct Typing {
    timeout: Duration,
    timers: Arc<Mutex<HashMap<Key, (u64, AbortHandle)>>>,
    next: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Notice {
    conversation_id: String,
    user_id: String,
    username: String,
}

impl Typing {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            timers: Arc::default(),
            next: Default::default(),
        }
    }

    /// (Re)arms the timer that ends this typing after the timeout.
    fn started(&self, io: Arc<dyn Io>, notice: Notice) {
        let key = (notice.user_id.clone(), notice.conversation_id.clone());
        let generation = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let timers = self.timers.clone();
        let timeout = self.timeout;
        let task_key = key.clone();
        // Held while the task is spawned, so it cannot look for its entry before it is there.
        let Ok(mut armed) = self.timers.lock() else {
            return;
        };
        let task = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let mine = timers
                .lock()
                .map(|mut t| match t.get(&task_key) {
                    Some((g, _)) if *g == generation => t.remove(&task_key).is_some(),
                    _ => false,
                })
                .unwrap_or(false);
            if mine {
                let to = vec![rooms::conversation(&notice.conversation_id)];
                let except = vec![rooms::user(&notice.user_id)];
                let payload = wire::json(&notice);
                io.emit(NS, to, except, "conversation/type-end", &payload)
                    .await;
            }
        });
        if let Some((_, old)) = armed.insert(key, (generation, task.abort_handle())) {
            old.abort();
        }
    }

    /// Cancels the timer, if one runs.
    fn ended(&self, user_id: &str, conversation_id: &str) {
        let key = (user_id.to_owned(), conversation_id.to_owned());
        if let Ok(mut timers) = self.timers.lock()
            && let Some((_, timer)) = timers.remove(&key)
        {
            timer.abort();
        }
    }
}

/// Nothing but `{ ok: true }` on the acknowledgement.
#[derive(Serialize)]
pub struct Quiet {}

async fn notice(ctx: &Ctx, id: String) -> Result<Notice, TinCanError> {
    conversations::visible(ctx, &id).await?;
    Ok(Notice {
        conversation_id: id,
        user_id: ctx.me.user_id.clone(),
        username: ctx.me.username.clone(),
    })
}

/// The others who can see the conversation hear it.
impl Handle for TypeStart {
    type Reply = Quiet;

    async fn handle(self, ctx: &Ctx) -> Result<Quiet, TinCanError> {
        let notice = notice(ctx, self.conversation_id).await?;
        relay(ctx, "conversation/type-start", &notice).await;
        ctx.app.tincan.typing.started(ctx.app.io.clone(), notice);
        Ok(Quiet {})
    }
}

/// Relayed, and the timer cancelled.
impl Handle for TypeEnd {
    type Reply = Quiet;

    async fn handle(self, ctx: &Ctx) -> Result<Quiet, TinCanError> {
        let notice = notice(ctx, self.conversation_id).await?;
        ctx.app
            .tincan
            .typing
            .ended(&notice.user_id, &notice.conversation_id);
        relay(ctx, "conversation/type-end", &notice).await;
        Ok(Quiet {})
    }
}

async fn relay(ctx: &Ctx, event: &str, notice: &Notice) {
    ctx.broadcast(
        vec![rooms::conversation(&notice.conversation_id)],
        vec![rooms::user(&notice.user_id)],
        event,
        notice,
    )
    .await;
}

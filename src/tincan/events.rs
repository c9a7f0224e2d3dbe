//! Every client event of `/tincan` in one table ([`ROUTES`]): its request type (whose
//! [`Handle`] is its handler), the event its success is answered with and how its failure
//! reaches the requester. Adding an event is one request type, one handler and one row here.
//!
//! A request is answered to the requester only: on success, the route's success event (with its
//! `requestId`) and the acknowledgement `{ ok: true, requestId?, ... }`; on failure, the route's
//! failure event and `{ ok: false, code, message, field?, requestId? }` on the acknowledgement.
//! Both are one reply wrapped in one [`Envelope`]. Everyone else concerned hears of it through
//! the rooms, from the handler.
use std::future::Future;

use serde::Serialize;
use serde_json::Value;

use super::request::{
    CreateConversation, CreateGroup, CreateMessage, Decode, EditConversation, EditGroup,
    EditMessage, JoinGroup, LeaveGroup, ListConversations, ListGroups, ListMessages, LogOut,
    RemoveConversation, RemoveGroup, RemoveMessage, TypeEnd, TypeStart, ViewGroup,
};
use super::{Ctx, TinCanError, payload};
use crate::socket::payload::Object;
use crate::socket::{self, Ack, Handled, Sock, wire};

/// What a request does once decoded: its handler.
pub trait Handle: Decode + Send + 'static {
    /// The requester's success payload.
    type Reply: Serialize + Send + Sync;

    fn handle(self, ctx: &Ctx) -> impl Future<Output = Result<Self::Reply, TinCanError>> + Send;

    /// What follows the answer, once the requester has it.
    fn after(_reply: &Self::Reply, _ctx: &Ctx) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// How a request's success reaches the requester, besides its acknowledgement.
#[derive(Clone, Copy, Debug)]
pub enum Success {
    /// An event of its own.
    Event(&'static str),
    /// Its `-response` event, with `ok: true`.
    Response(&'static str),
    /// Only the acknowledgement.
    AckOnly,
}

/// How a request's failure reaches the requester, besides its acknowledgement.
#[derive(Clone, Copy, Debug)]
pub enum Failure {
    /// Its own `-failed` event.
    Event(&'static str),
    /// Its `-response` event with `ok: false`.
    Response(&'static str),
    /// Only the acknowledgement (typing, signing out).
    Silent,
}

/// What a request reads of its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Its fields: a payload that is not an object, or a bad `requestId`, fails the request.
    Payload,
    /// Nothing: whatever the payload, the request goes ahead (signing out must not be kept from
    /// happening by a malformed payload). Its `requestId` is still echoed when it can be read.
    Nothing,
}

type Run = for<'a> fn(&'a Ctx, &'static Route, Object, Option<String>, Ack) -> Handled<'a>;

/// One row of the table.
pub struct Route {
    pub event: &'static str,
    pub success: Success,
    pub failure: Failure,
    pub reads: Reads,
    run: Run,
}

impl Route {
    const fn new<R: Handle>(event: &'static str, success: Success, failure: Failure) -> Self {
        Self {
            event,
            success,
            failure,
            reads: Reads::Payload,
            run: run::<R>,
        }
    }

    const fn reading_nothing(self) -> Self {
        Self {
            reads: Reads::Nothing,
            ..self
        }
    }
}

/// Every client event of the protocol.
pub static ROUTES: &[Route] = &[
    Route::new::<LogOut>("auth/logout", Success::AckOnly, Failure::Silent).reading_nothing(),
    Route::new::<CreateGroup>(
        "group/create",
        Success::Event("group/created"),
        Failure::Event("group/create-failed"),
    ),
    Route::new::<EditGroup>(
        "group/edit",
        Success::Event("group/edited"),
        Failure::Event("group/edit-failed"),
    ),
    Route::new::<ListGroups>(
        "group/list",
        Success::Response("group/list-response"),
        Failure::Response("group/list-response"),
    ),
    Route::new::<ViewGroup>(
        "group/view",
        Success::Response("group/view-response"),
        Failure::Response("group/view-response"),
    ),
    Route::new::<JoinGroup>(
        "group/join",
        Success::Event("group/joined"),
        Failure::Event("group/join-failed"),
    ),
    Route::new::<LeaveGroup>(
        "group/leave",
        Success::Event("group/left"),
        Failure::Event("group/leave-failed"),
    ),
    Route::new::<RemoveGroup>(
        "group/remove",
        Success::Event("group/removed"),
        Failure::Event("group/remove-failed"),
    ),
    Route::new::<CreateConversation>(
        "conversation/create",
        Success::Event("conversation/created"),
        Failure::Event("conversation/create-failed"),
    ),
    Route::new::<EditConversation>(
        "conversation/edit",
        Success::Event("conversation/edited"),
        Failure::Event("conversation/edit-failed"),
    ),
    Route::new::<ListConversations>(
        "conversation/list",
        Success::Response("conversation/list-response"),
        Failure::Response("conversation/list-response"),
    ),
    Route::new::<RemoveConversation>(
        "conversation/remove",
        Success::Event("conversation/removed"),
        Failure::Event("conversation/remove-failed"),
    ),
    Route::new::<TypeStart>("conversation/type-start", Success::AckOnly, Failure::Silent),
    Route::new::<TypeEnd>("conversation/type-end", Success::AckOnly, Failure::Silent),
    Route::new::<CreateMessage>(
        "message/create",
        Success::Event("message/created"),
        Failure::Event("message/create-failed"),
    ),
    Route::new::<EditMessage>(
        "message/edit",
        Success::Event("message/edited"),
        Failure::Event("message/edit-failed"),
    ),
    Route::new::<RemoveMessage>(
        "message/remove",
        Success::Event("message/removed"),
        Failure::Event("message/remove-failed"),
    ),
    Route::new::<ListMessages>(
        "message/list",
        Success::Response("message/list-response"),
        Failure::Event("message/list-failed"),
    ),
];

/// The row of `event`; `None` for events the protocol does not have.
pub fn route(event: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.event == event)
}

/// Handles one request of the socket of `ctx`, and answers it.
pub async fn handle(ctx: &Ctx, route: &'static Route, data: Value, ack: Ack) {
    let fields = payload::object(data);
    // The requestId is echoed whenever it can be read, even when something else is wrong.
    let request_id = fields
        .as_ref()
        .ok()
        .and_then(|f| payload::request_id(f).ok().flatten());
    let fields = match route.reads {
        Reads::Nothing => Object::default(),
        Reads::Payload => match fields.and_then(|f| payload::request_id(&f).map(|_| f)) {
            Ok(fields) => fields,
            Err(error) => return fail(ctx, route, &error, request_id.as_deref(), ack),
        },
    };
    (route.run)(ctx, route, fields, request_id, ack).await
}

/// Decodes, handles and answers a request of type `R`.
fn run<'a, R: Handle>(
    ctx: &'a Ctx,
    route: &'static Route,
    fields: Object,
    request_id: Option<String>,
    ack: Ack,
) -> Handled<'a> {
    Box::pin(async move {
        let outcome = match R::decode(&fields) {
            Ok(request) => request.handle(ctx).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(reply) => {
                succeed(ctx, route, &reply, request_id.as_deref(), ack);
                R::after(&reply, ctx).await;
            }
            Err(error) => fail(ctx, route, &error, request_id.as_deref(), ack),
        }
    })
}

/// A reply with what every answer carries: `ok` (where it belongs) and the `requestId`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<'a, T> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(flatten)]
    body: &'a T,
}

fn succeed<T: Serialize>(ctx: &Ctx, route: &Route, reply: &T, request_id: Option<&str>, ack: Ack) {
    let envelope = |ok| Envelope {
        ok,
        request_id,
        body: reply,
    };
    match route.success {
        Success::Event(name) => socket::emit(&*ctx.socket, name, &sorted(&envelope(None))),
        // Every `-response` says whether it answers a success.
        Success::Response(name) => socket::emit(&*ctx.socket, name, &sorted(&envelope(Some(true)))),
        Success::AckOnly => {}
    }
    ack.send(&wire::json(&sorted(&envelope(Some(true)))));
}

fn fail(ctx: &Ctx, route: &Route, error: &TinCanError, request_id: Option<&str>, ack: Ack) {
    error.log(ctx.socket.id(), route.event);
    refuse(&*ctx.socket, Some(route.failure), error, request_id, ack);
}

/// Answers a request with a failure: the `failure` event, if any, then
/// `{ ok: false, code, message, field?, requestId? }` on the acknowledgement.
pub fn refuse(
    s: &dyn Sock,
    failure: Option<Failure>,
    error: &TinCanError,
    request_id: Option<&str>,
    ack: Ack,
) {
    let body = error.wire();
    let envelope = |ok| Envelope {
        ok,
        request_id,
        body: &body,
    };
    match failure {
        Some(Failure::Event(name)) => socket::emit(s, name, &sorted(&envelope(None))),
        Some(Failure::Response(name)) => socket::emit(s, name, &sorted(&envelope(Some(false)))),
        Some(Failure::Silent) | None => {}
    }
    ack.send(&wire::json(&sorted(&envelope(Some(false)))));
}

/// A payload with its keys in alphabetical order, at every depth, as TinCan has always sent
/// them (they go through a [`serde_json::Value`], whose objects keep their keys sorted).
pub fn sorted(payload: &impl Serialize) -> Value {
    serde_json::to_value(payload).unwrap_or(Value::Null)
}

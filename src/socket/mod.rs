//! What every namespace shares, whatever protocol it speaks.
//!
//! A protocol ([`Protocol`]) says who a connecting socket is; [`register`] does the rest for
//! every namespace alike: it runs that before the client hears it is connected, meters what the
//! socket is sent ([`outflow`]), counts the connection ([`crate::ops::record`]) and opens its
//! ordered [`inbox`], whose [`Served`] then handles the socket's events one after the other and
//! answers any it cannot handle (too many waiting, a handler that panicked) as the protocol
//! answers any failure ([`Served::refuse`]). The Admin UI's feed ([`admin::feed`]) hears sockets
//! connect and leave, join and leave rooms, and what they send and are sent, from here,
//! [`inbox`] and [`sio`].
//!
//! - [`inbox`]: every socket's events handled in order;
//! - [`sio`]: socket.io as the handlers see it, whichever adapter links the nodes; [`emit`];
//! - [`outflow`]: what a socket has waiting to be sent, bounded in bytes;
//! - [`wire`]: the JSON every client reads, and the quirks of old clients' packets;
//! - [`payload`]: lenient reading of request payloads, one field at a time;
//! - [`WireError`]: the body of every failure the protocols send.
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide_core::adapter::DefinedAdapter;

use crate::{AppState, admin};

pub mod inbox;
pub mod outflow;
pub mod payload;
pub mod sio;
pub mod wire;

pub use inbox::{Finish, Handled, Job, Refusal, Refused, Rest, Served, Turn};
pub use sio::{Ack, Sock, SockRef, emit};

/// A protocol served on a namespace: how a connecting socket is accepted.
pub trait Protocol: Send + Sync + 'static {
    /// What the protocol keeps about an accepted socket; it handles the socket's jobs.
    type Served: Served;

    /// Runs before the client hears it is connected: finds who the socket is (from the
    /// handshake's `auth` object, headers or query), puts it in its rooms, and returns what will
    /// serve it; or refuses it, and the client gets the code as its connect error.
    fn accept<A: Adapter>(
        &self,
        app: &Arc<AppState>,
        s: &SocketRef<A>,
        auth: Option<Value>,
    ) -> impl Future<Output = Result<Self::Served, Refused>> + Send;
}

/// Serves `protocol` on the namespace `path`; returns what readies its adapter.
pub fn register<A: Adapter + DefinedAdapter, P: Protocol>(
    app: &Arc<AppState>,
    io: &SocketIo<A>,
    path: &'static str,
    protocol: P,
) -> A::InitRes {
    let protocol = Arc::new(protocol);
    if let Some(admin) = &app.admin {
        admin.serves(path);
    }
    let on_connect = async |s: SocketRef<A>| {
        inbox::hand_over(&s);
        admin::feed::connected(&s);
    };
    let accept = {
        let app = app.clone();
        move |s: SocketRef<A>, TryData(auth): TryData<Value>| {
            let app = app.clone();
            let protocol = protocol.clone();
            async move {
                let served = protocol.accept(&app, &s, auth.ok()).await;
                if let Err(Refused::Internal(_)) = &served {
                    crate::ops::record::database_error("connect");
                }
                let served = served?;
                outflow::attach(&s, &app.lines);
                admin::feed::attach(app.admin.as_ref().map(|a| &a.feed), &s);
                inbox::open(&s, app.config.max_queued_events, Arc::new(served));
                crate::ops::record::connected(&s, path);
                Ok::<(), Refused>(())
            }
        }
    };
    io.ns(path, on_connect.with(accept))
}

/// The value of `key` in a handshake's query string, as it is written there.
pub fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, value)| value)
}

/// The `token` of a handshake's `auth` object (socket.io 3+ clients), if a string.
pub fn auth_token(auth: Option<&Value>) -> Option<&str> {
    auth.and_then(|a| a.get("token")).and_then(Value::as_str)
}

/// The body of a failure, in every protocol: `{ code, message, field? }`. Internal details
/// never leave the server.
#[derive(Debug, Clone, Serialize)]
pub struct WireError {
    pub code: &'static str,
    pub message: String,
    /// The field a request got wrong, where the protocol names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn query_params_are_read_as_written() {
        let query = "EIO=4&transport=polling&bubble=ab-cd&token=x%20y";
        assert_eq!(query_param(query, "bubble"), Some("ab-cd"));
        assert_eq!(query_param(query, "token"), Some("x%20y"));
        assert_eq!(query_param(query, "missing"), None);
        assert_eq!(query_param("bubble", "bubble"), None);
    }

    #[test]
    fn the_auth_token_is_a_string_or_nothing() {
        assert_eq!(auth_token(Some(&json!({ "token": "t" }))), Some("t"));
        assert_eq!(auth_token(Some(&json!({ "token": 5 }))), None);
        assert_eq!(auth_token(Some(&json!("t"))), None);
        assert_eq!(auth_token(None), None);
    }

    #[test]
    fn a_wire_error_names_its_field_only_when_it_has_one() {
        let plain = WireError {
            code: "no_message",
            message: "No message specified.".into(),
            field: None,
        };
        let text = serde_json::to_string(&plain).unwrap();
        assert_eq!(
            text,
            r#"{"code":"no_message","message":"No message specified."}"#
        );
        let named = WireError {
            field: Some("name"),
            ..plain
        };
        assert!(
            serde_json::to_string(&named)
                .unwrap()
                .ends_with(r#""field":"name"}"#)
        );
    }
}

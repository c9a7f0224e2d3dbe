//! What the Admin UI may do to sockets (unless `--admin-readonly`): make them join or leave a
//! room, or disconnect them. Each request names a namespace and, optionally, a filter: a room,
//! or a socket's id (every socket is in the room of its own id); no filter means the whole
//! namespace. The arguments are those of the reference server's `ClientEvents`:
//! - `join(nsp, room, filter?)`, `leave(nsp, room, filter?)`;
//! - `_disconnect(nsp, close, filter?)`.
//!
//! They apply to the sockets of this node only: on linked nodes, the UI reaches a socket
//! through the node it is connected to. `close` (closing the client's whole connection rather
//! than its socket on one namespace) is read but not followed: the socket is disconnected from
//! its namespace either way, and its client decides whether to come back.
use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use crate::socket::Sock;

/// The events the Admin UI sends for operations.
pub const EVENTS: [&str; 3] = ["join", "leave", "_disconnect"];

/// One operation, decoded from its event's arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Operation {
    pub nsp: String,
    pub filter: Option<String>,
    pub action: Action,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Join(String),
    Leave(String),
    Disconnect,
}

impl Operation {
    /// The operation of `event` with `args`; `None` when an argument is missing or of the
    /// wrong type, or the event is not an operation.
    pub fn decode(event: &str, args: &[Value]) -> Option<Self> {
        let text = |i: usize| args.get(i).and_then(Value::as_str).map(str::to_owned);
        let nsp = text(0)?;
        let filter = text(2).filter(|f| !f.is_empty());
        let action = match event {
            "join" => Action::Join(text(1)?),
            "leave" => Action::Leave(text(1)?),
            "_disconnect" => Action::Disconnect,
            _ => return None,
        };
        Some(Operation {
            nsp,
            filter,
            action,
        })
    }

    /// Applies the operation to the sockets of this node it selects.
    pub fn apply<A: Adapter>(&self, io: &SocketIo<A>) {
        let Some(ns) = io.of(&self.nsp) else {
            return;
        };
        let selected = match &self.filter {
            Some(filter) => ns.local().to(filter.clone()).sockets(),
            None => ns.local().sockets(),
        };
        tracing::info!(
            nsp = self.nsp,
            action = ?self.action,
            sockets = selected.len(),
            "admin operation"
        );
        for s in selected {
            match &self.action {
                Action::Join(room) => s.join_room(room.clone()),
                Action::Leave(room) => s.leave_room(room.clone()),
                Action::Disconnect => {
                    let _ = s.disconnect();
                }
            }
        }
    }
}

/// Every argument of an event. socketioxide gives a handler all of them only when what it asks
/// for reads itself as a tuple (otherwise the first alone), so this one does, of any length.
#[derive(Debug, Default)]
pub struct Arguments(pub Vec<Value>);

impl<'de> Deserialize<'de> for Arguments {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = Arguments;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an event's arguments")
            }

            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Arguments, S::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element()? {
                    args.push(arg);
                }
                Ok(Arguments(args))
            }
        }
        deserializer.deserialize_tuple(usize::MAX, Each)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn operations_are_read_as_the_ui_sends_them() {
        let op = |event, args: Value| {
            let Arguments(args) = serde_json::from_value(args).unwrap();
            Operation::decode(event, &args)
        };
        assert_eq!(
            op("join", json!(["/", "lobby", "abc"])),
            Some(Operation {
                nsp: "/".into(),
                filter: Some("abc".into()),
                action: Action::Join("lobby".into()),
            })
        );
        assert_eq!(
            op("leave", json!(["/tincan", "lobby"])).map(|o| (o.filter, o.action)),
            Some((None, Action::Leave("lobby".into())))
        );
        assert_eq!(
            op("_disconnect", json!(["/", false, "abc"])).map(|o| o.action),
            Some(Action::Disconnect)
        );
        assert_eq!(
            op("_disconnect", json!(["/", true])).map(|o| o.filter),
            Some(None)
        );
        assert_eq!(op("join", json!(["/"])), None);
        assert_eq!(op("join", json!([5, "room"])), None);
        assert_eq!(op("emit", json!(["/", "room", "ev"])), None);
        assert_eq!(
            op("_disconnect", json!(["/"])).map(|o| o.nsp),
            Some("/".into())
        );
    }
}

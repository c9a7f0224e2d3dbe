//! What the server counts as it goes: one call per thing that happened, with `&'static str`
//! labels only, so that the hot path builds no string and a label never carries an id. Without
//! `--metrics-addr` no recorder is installed and every call here does nothing.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::{ProtocolVersion, TransportType};

use crate::socket::wire::Json;

/// The event names the protocols know, each with its family (the label of its handling time).
/// Any other name is counted as `other`.
const EVENTS: &[(&str, &str)] = &[
    // Bubble, on `/` and `/counsellor`.
    ("join_room", "rooms"),
    ("exit_room", "rooms"),
    ("list_rooms", "rooms"),
    ("view_room", "rooms"),
    ("my_rooms", "rooms"),
    ("create_room", "rooms"),
    ("typing", "typing"),
    ("stop_typing", "typing"),
    ("add_message", "messages"),
    ("add_reaction", "messages"),
    ("my_id", "people"),
    ("set_user_name", "people"),
    ("register_push", "push"),
    ("registerPush", "push"),
    ("counsellor_online", "counsellor"),
    ("counsellor_offline", "counsellor"),
    ("list_issues", "counsellor"),
    ("report_user", "counsellor"),
    ("find_counsellor", "counsellor"),
    ("resolve_issue", "counsellor"),
    ("close_room", "moderation"),
    ("set_room_type", "moderation"),
    // TinCan, on `/tincan`.
    ("auth/logout", "tincan_auth"),
    ("group/create", "tincan_groups"),
    ("group/edit", "tincan_groups"),
    ("group/list", "tincan_groups"),
    ("group/view", "tincan_groups"),
    ("group/join", "tincan_groups"),
    ("group/leave", "tincan_groups"),
    ("group/remove", "tincan_groups"),
    ("conversation/create", "tincan_conversations"),
    ("conversation/edit", "tincan_conversations"),
    ("conversation/list", "tincan_conversations"),
    ("conversation/remove", "tincan_conversations"),
    ("conversation/type-start", "tincan_typing"),
    ("conversation/type-end", "tincan_typing"),
    ("message/create", "tincan_messages"),
    ("message/edit", "tincan_messages"),
    ("message/remove", "tincan_messages"),
    ("message/list", "tincan_messages"),
];

/// The error codes the protocols answer with; any other is counted as `error`.
const CODES: &[&str] = &[
    "already_member",
    "conflict",
    "counsellor_unavailable",
    "forbidden",
    "internal_error",
    "invalid_categories",
    "invalid_counsellor",
    "invalid_issue_id",
    "invalid_message",
    "invalid_new_name",
    "invalid_payload",
    "invalid_platform",
    "invalid_push_token",
    "invalid_reaction",
    "invalid_reason",
    "invalid_room_id",
    "invalid_room_name",
    "invalid_room_type",
    "invalid_target_user",
    "invalid_user_limit",
    "issue_not_found",
    "no_issue_id",
    "no_message",
    "no_name",
    "no_reaction",
    "no_room_id",
    "no_room_name",
    "no_target_user",
    "no_user_to_report",
    "not_found",
    "not_member",
    "owner_cannot_leave",
    "payload_too_large",
    "rate_limited",
    "room_closed",
    "room_full",
    "room_id_not_found",
    "unauthorized",
    "user_not_in_room",
];

/// An event's name as counted, and its family: both `other` for a name no protocol knows.
pub fn event_labels(event: &str) -> (&'static str, &'static str) {
    EVENTS
        .iter()
        .find(|(name, _)| *name == event)
        .copied()
        .unwrap_or(("other", "other"))
}

/// The labels of a connection, kept in its socket's extensions from its connection on.
#[derive(Debug, Clone, Copy)]
struct Connection {
    namespace: &'static str,
    protocol: &'static str,
    transport: &'static str,
}

impl Connection {
    fn labels(self) -> [(&'static str, &'static str); 3] {
        [
            ("namespace", self.namespace),
            ("protocol", self.protocol),
            ("transport", self.transport),
        ]
    }
}

/// A socket accepted on `namespace`: counted open until [`disconnected`].
pub fn connected<A: Adapter>(s: &SocketRef<A>, namespace: &'static str) {
    let connection = Connection {
        namespace,
        protocol: match s.protocol() {
            // socket.io's protocol 4 is the one of Engine.IO 3 (clients 1.x and 2.x).
            ProtocolVersion::V4 => "EIO3",
            ProtocolVersion::V5 => "EIO4",
        },
        transport: match s.transport_type() {
            TransportType::Polling => "polling",
            TransportType::Websocket => "websocket",
        },
    };
    s.extensions.insert(connection);
    let labels = connection.labels();
    gauge!("bubble_connections", &labels).increment(1.0);
    counter!("bubble_connections_opened_total", &labels).increment(1);
}

/// A socket counted by [`connected`] is gone.
pub fn disconnected<A: Adapter>(s: &SocketRef<A>) {
    if let Some(connection) = s.extensions.get::<Connection>() {
        let labels = connection.labels();
        gauge!("bubble_connections", &labels).decrement(1.0);
        counter!("bubble_connections_closed_total", &labels).increment(1);
    }
}

/// An event arrived on a socket.
pub fn received(event: &str) {
    let (event, _) = event_labels(event);
    counter!("bubble_events_received_total", "event" => event).increment(1);
}

/// An event was refused because its socket had too many waiting (answered `rate_limited`).
pub fn rate_limited() {
    counter!("bubble_events_rate_limited_total").increment(1);
    answer("rate_limited");
}

/// Events whose handler is running, on every socket.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// An event's handler starts; [`handled`] when it ends.
pub fn handling() {
    IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
}

/// How many events are being handled now.
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::Relaxed)
}

/// An event's handler (see [`handling`]) ran for `took`.
pub fn handled(event: &str, took: Duration) {
    IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    let (_, family) = event_labels(event);
    histogram!("bubble_event_handling_seconds", "family" => family).record(took.as_secs_f64());
}

/// An event was answered with `payload`: counted by outcome, `ok` or the error code it carries.
pub fn answered(payload: &Json) {
    match payload {
        Json::Value(raw) => answer(outcome(raw.get())),
        // Only lists are sent as arrays: a success.
        Json::Array(_) => answer("ok"),
    }
}

/// An event answered with `outcome` (`ok` or an error code) without a payload to read it from
/// (see [`answered`]).
pub fn answer(outcome: &'static str) {
    counter!("bubble_answers_total", "outcome" => outcome).increment(1);
    if outcome == "internal_error" {
        database_error("request");
    }
}

/// The outcome of an answer: the `code` of a failure, which both protocols put first (Bubble's
/// `{"error":{"code":…}}`, TinCan's `{"code":…,"ok":false}`), or `ok`.
fn outcome(text: &str) -> &'static str {
    let rest = text
        .strip_prefix(r#"{"error":{"code":""#)
        .or_else(|| text.strip_prefix(r#"{"code":""#));
    let Some(rest) = rest else {
        return "ok";
    };
    let code = rest.split('"').next().unwrap_or_default();
    CODES
        .iter()
        .find(|known| **known == code)
        .copied()
        .unwrap_or("error")
}

/// Something failed on the database: a `request` answered `internal_error`, a message `batch`
/// the writer could not commit, a `connect` refused for it.
pub fn database_error(during: &'static str) {
    counter!("bubble_database_errors_total", "during" => during).increment(1);
}

/// The message writer committed a batch of `messages` in `took`.
pub fn batch_committed(messages: usize, took: Duration) {
    histogram!("bubble_writer_batch_size").record(messages as f64);
    histogram!("bubble_writer_commit_seconds").record(took.as_secs_f64());
}

/// What became of one push to `provider` (`apns`, `fcm`): `sent`, `retried`, `failed`, or
/// `pruned` (its token was removed as invalid).
pub fn push(provider: &'static str, result: &'static str) {
    counter!("bubble_pushes_total", "provider" => provider, "result" => result).increment(1);
}

/// The adapter linking the nodes failed an operation (`broadcast`, `join`, `leave`,
/// `disconnect`).
pub fn adapter_error(op: &'static str) {
    counter!("bubble_adapter_errors_total", "op" => op).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_ok_or_a_known_code() {
        assert_eq!(outcome(r#"{"roomId":"r"}"#), "ok");
        assert_eq!(outcome("{}"), "ok");
        assert_eq!(
            outcome(r#"{"error":{"code":"room_full","message":"Room full."}}"#),
            "room_full"
        );
        assert_eq!(
            outcome(r#"{"code":"not_member","message":"…","ok":false}"#),
            "not_member"
        );
        assert_eq!(outcome(r#"{"code":"some room id","ok":false}"#), "error");
    }

    #[test]
    fn unknown_events_are_other() {
        assert_eq!(event_labels("add_message"), ("add_message", "messages"));
        assert_eq!(event_labels("group/join"), ("group/join", "tincan_groups"));
        assert_eq!(event_labels("room-1234"), ("other", "other"));
    }
}

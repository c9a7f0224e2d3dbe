//! The rules of groups, conversations, messages, typing and signing out, through the table and
//! the handlers, on a real store, with a socket and a socket.io that record what they are told.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use socketioxide::extensions::Extensions;
use socketioxide::socket::Sid;

use super::{Ctx, Identity, events};
use crate::AppState;
use crate::config::Config;
use crate::socket::sio::{Ack, Io, Sock};
use crate::socket::wire::Json;

/// Records what the server is asked to do, one line each.
#[derive(Default)]
struct FakeIo {
    log: Mutex<Vec<String>>,
}

impl FakeIo {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    fn push(&self, line: String) {
        self.log.lock().unwrap().push(line);
    }
}

#[async_trait]
impl Io for FakeIo {
    async fn emit(&self, _: &str, to: Vec<String>, except: Vec<String>, event: &str, p: &Json) {
        // Leaves out the requester's own room (named by its random id).
        let except: Vec<&String> = except.iter().filter(|r| r.contains(':')).collect();
        self.push(format!(
            "emit {event} to {to:?} except {except:?} {}",
            p.text()
        ));
    }

    async fn join(&self, _: &str, of: Vec<String>, rooms: Vec<String>) {
        self.push(format!("join {of:?} {rooms:?}"));
    }

    async fn leave(&self, _: &str, of: Vec<String>, except: Vec<String>, rooms: Vec<String>) {
        self.push(format!("leave {of:?} except {except:?} {rooms:?}"));
    }

    async fn disconnect(&self, _: &str, of: Vec<String>) {
        self.push(format!("disconnect {of:?}"));
    }

    async fn disconnect_local(&self) {}

    async fn close(&self) {}
}

/// Records what it is sent.
struct FakeSock {
    id: Sid,
    extensions: Extensions,
    sent: Mutex<Vec<(String, Value)>>,
}

impl Sock for FakeSock {
    fn id(&self) -> Sid {
        self.id
    }

    fn send(&self, event: &str, payload: &Json) {
        let value = serde_json::from_str(&payload.text()).unwrap();
        self.sent.lock().unwrap().push((event.to_owned(), value));
    }

    fn join_room(&self, _: String) {}

    fn leave_room(&self, _: String) {}

    fn extensions(&self) -> &Extensions {
        &self.extensions
    }
}

struct Server {
    _dir: tempfile::TempDir,
    app: Arc<AppState>,
    io: Arc<FakeIo>,
}

/// One signed-in socket.
struct Client {
    ctx: Ctx,
    sock: Arc<FakeSock>,
    token: String,
}

/// What a request got: its acknowledgement (as text) and what its socket was sent.
struct Answered {
    ack: String,
    sent: Vec<(String, Value)>,
}

impl Answered {
    fn ack(&self) -> Value {
        serde_json::from_str(&self.ack).unwrap()
    }

    /// The failure code on the acknowledgement; panics on a success.
    fn code(&self) -> String {
        let ack = self.ack();
        assert_eq!(ack["ok"], false, "{ack}");
        ack["code"].as_str().unwrap().to_owned()
    }

    /// The acknowledgement of a success; panics on a failure.
    fn ok(&self) -> Value {
        let ack = self.ack();
        assert_eq!(ack["ok"], true, "{ack}");
        ack
    }
}

impl Server {
    async fn new() -> Self {
        Self::with(|_| {}).await
    }

    async fn with(configure: impl FnOnce(&mut Config)) -> Self {
        let (dir, store) = crate::store::temp_store().await;
        let io = Arc::new(FakeIo::default());
        let app = AppState::for_tests(store, io.clone(), configure);
        Self { _dir: dir, app, io }
    }

    async fn client(&self, name: &str) -> Client {
        let accounts = self.app.store.tincan().accounts();
        let user = accounts.create(name, name, "hash").await.unwrap().unwrap();
        let issued = accounts.create_token(&user.id, 60_000).await.unwrap();
        let signed_in = accounts.for_token(&issued.token).await.unwrap().unwrap();
        let sock = Arc::new(FakeSock {
            id: Sid::new(),
            extensions: Extensions::new(),
            sent: Mutex::default(),
        });
        let ctx = Ctx {
            app: self.app.clone(),
            socket: sock.clone(),
            me: Arc::new(Identity {
                user_id: user.id,
                username: user.username,
                display_name: user.display_name,
                token_hash: signed_in.token_hash,
            }),
        };
        Client {
            ctx,
            sock,
            token: issued.token,
        }
    }
}

impl Client {
    fn id(&self) -> String {
        self.ctx.me.user_id.clone()
    }

    async fn ask(&self, event: &str, payload: Value) -> Answered {
        let acked = Arc::new(Mutex::new(None));
        let into = acked.clone();
        let ack = Ack::from_fn(move |p| *into.lock().unwrap() = Some(p.text()));
        let route = events::route(event).expect("a known event");
        events::handle(&self.ctx, route, payload, ack).await;
        let ack = acked.lock().unwrap().take().expect("acknowledged");
        let sent = std::mem::take(&mut *self.sock.sent.lock().unwrap());
        Answered { ack, sent }
    }

    /// Asks, and returns the acknowledgement of a success.
    async fn ok(&self, event: &str, payload: Value) -> Value {
        self.ask(event, payload).await.ok()
    }

    async fn code(&self, event: &str, payload: Value) -> String {
        self.ask(event, payload).await.code()
    }
}

#[tokio::test]
async fn answers_wrap_the_reply_with_ok_and_the_request_id_keys_in_order() {
    let server = Server::new().await;
    let alice = server.client("alice").await;
    let got = alice
        .ask("group/create", json!({ "name": "G", "requestId": "r1" }))
        .await;
    assert!(
        got.ack.starts_with(r#"{"group":{"createdAt":"#),
        "{}",
        got.ack
    );
    assert!(
        got.ack.ends_with(r#"},"ok":true,"requestId":"r1"}"#),
        "{}",
        got.ack
    );
    let [(event, sent)] = &got.sent[..] else {
        panic!("{:?}", got.sent)
    };
    assert_eq!(event, "group/created");
    assert_eq!(sent.get("ok"), None);
    assert_eq!(sent["requestId"], "r1");
    assert_eq!(sent["group"], got.ack()["group"]);

    // A -response says ok: true on the event too.
    let got = alice.ask("group/list", json!({ "requestId": "r2" })).await;
    assert_eq!(got.sent[0].0, "group/list-response");
    assert_eq!(got.sent[0].1["ok"], true);
    assert_eq!(got.sent[0].1["requestId"], "r2");
    assert_eq!(got.sent[0].1["nextCursor"], Value::Null);
}

#[tokio::test]
async fn failures_name_the_first_wrong_field_and_reach_only_the_requester() {
    let server = Server::new().await;
    let alice = server.client("alice").await;

    let got = alice.ask("group/create", json!("x")).await;
    assert_eq!(
        got.ack,
        r#"{"code":"invalid_payload","field":"payload","message":"The payload must be a JSON object.","ok":false}"#
    );
    assert_eq!(got.sent[0].0, "group/create-failed");
    assert_eq!(got.sent[0].1.get("ok"), None);

    let got = alice
        .ask(
            "group/edit",
            json!({ "groupId": 5, "name": 7, "requestId": "r" }),
        )
        .await;
    assert_eq!(got.ack()["field"], "groupId");
    assert_eq!(got.ack()["requestId"], "r");
    assert_eq!(got.sent[0].1["requestId"], "r");

    // A bad requestId is refused before any other field.
    let got = alice
        .ask("group/create", json!({ "requestId": 7, "name": 7 }))
        .await;
    assert_eq!(got.ack()["field"], "requestId");

    let got = alice.ask("group/list", json!({ "limit": 0 })).await;
    assert_eq!(got.code(), "invalid_payload");
    assert_eq!(got.sent[0].0, "group/list-response");
    assert_eq!(got.sent[0].1["ok"], false);

    // Typing fails silently: only the acknowledgement.
    let got = alice
        .ask(
            "conversation/type-start",
            json!({ "conversationId": "nope" }),
        )
        .await;
    assert_eq!(got.code(), "not_found");
    assert!(got.sent.is_empty());
    assert!(server.io.take().is_empty());
}

#[tokio::test]
async fn groups_owner_members_requests_and_strangers() {
    let server = Server::new().await;
    let (alice, bob, carol) = (
        server.client("alice").await,
        server.client("bob").await,
        server.client("carol").await,
    );
    assert_eq!(
        alice
            .ask(
                "group/create",
                json!({ "name": "G", "members": [bob.id(), "nobody"] })
            )
            .await
            .ack()["field"],
        "members"
    );
    let created = alice
        .ok(
            "group/create",
            json!({ "name": " Knit ", "visibility": "private", "members": [bob.id(), alice.id()] }),
        )
        .await;
    let group = created["group"].clone();
    let id = group["id"].as_str().unwrap().to_owned();
    assert_eq!(group["name"], "Knit");
    assert_eq!(group["memberCount"], 2);
    assert!(group.get("pendingRequests").is_some());
    let log = server.io.take();
    assert!(
        log.iter().any(|l| l.starts_with("join")
            && l.contains(&format!("user:{}", bob.id()))
            && l.contains(&format!("group:{id}"))),
        "{log:?}"
    );

    // Anyone with the id sees the public details; members see members.
    let seen = carol.ok("group/view", json!({ "groupId": id })).await;
    assert_eq!(seen["group"].get("members"), None);
    let seen = bob.ok("group/view", json!({ "groupId": id })).await;
    assert!(seen["group"].get("members").is_some());
    assert_eq!(seen["group"].get("pendingRequests"), None);
    assert_eq!(
        carol
            .code("group/view", json!({ "groupId": "missing" }))
            .await,
        "not_found"
    );

    // A private group takes requests, once.
    let joined = carol.ok("group/join", json!({ "groupId": id })).await;
    assert_eq!(joined["status"], "pending");
    assert_eq!(joined["userId"], carol.id());
    assert_eq!(
        carol.code("group/join", json!({ "groupId": id })).await,
        "conflict"
    );
    assert_eq!(
        bob.code("group/join", json!({ "groupId": id })).await,
        "already_member"
    );

    // Only the owner edits; adding approves the request.
    assert_eq!(
        bob.code("group/edit", json!({ "groupId": id, "name": "Mine" }))
            .await,
        "forbidden"
    );
    assert_eq!(
        alice
            .code("group/edit", json!({ "groupId": "missing", "name": "X" }))
            .await,
        "not_found"
    );
    let got = alice
        .ask(
            "group/edit",
            json!({ "groupId": id, "removeMembers": [alice.id()] }),
        )
        .await;
    assert_eq!(got.ack()["field"], "removeMembers");
    let got = alice
        .ask(
            "group/edit",
            json!({ "groupId": id, "addMembers": [carol.id()], "removeMembers": [carol.id()] }),
        )
        .await;
    assert_eq!(got.ack()["field"], "addMembers");
    let edited = alice
        .ok(
            "group/edit",
            json!({ "groupId": id, "addMembers": [carol.id()] }),
        )
        .await;
    assert_eq!(edited["group"]["memberCount"], 3);
    assert_eq!(edited["group"]["pendingRequests"], json!([]));

    // The owner cannot leave; strangers are not members; members leave.
    assert_eq!(
        alice.code("group/leave", json!({ "groupId": id })).await,
        "owner_cannot_leave"
    );
    let dave = server.client("dave").await;
    assert_eq!(
        dave.code("group/leave", json!({ "groupId": id })).await,
        "not_member"
    );
    server.io.take();
    let left = bob.ok("group/leave", json!({ "groupId": id })).await;
    assert_eq!(left["groupId"], id);
    assert_eq!(left["userId"], bob.id());
    let log = server.io.take();
    assert!(
        log.iter().any(|l| l.starts_with("emit group/left")),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.starts_with("leave")), "{log:?}");

    // A public group takes members at once.
    let public = alice.ok("group/create", json!({ "name": "Open" })).await;
    let public_id = public["group"]["id"].as_str().unwrap().to_owned();
    let joined = dave.ok("group/join", json!({ "groupId": public_id })).await;
    assert_eq!(joined["status"], "member");
    assert_eq!(
        dave.code("group/join", json!({ "groupId": public_id }))
            .await,
        "already_member"
    );

    // Only the owner removes.
    assert_eq!(
        carol.code("group/remove", json!({ "groupId": id })).await,
        "forbidden"
    );
    let removed = alice.ok("group/remove", json!({ "groupId": id })).await;
    assert_eq!(removed["groupId"], id);
    assert_eq!(
        alice.code("group/view", json!({ "groupId": id })).await,
        "not_found"
    );
}

#[tokio::test]
async fn group_list_pages_with_cursors() {
    let server = Server::new().await;
    let alice = server.client("alice").await;
    let bob = server.client("bob").await;
    for name in ["b", "a", "c"] {
        alice.ok("group/create", json!({ "name": name })).await;
    }
    alice
        .ok(
            "group/create",
            json!({ "name": "hidden", "visibility": "private" }),
        )
        .await;
    let page = bob.ok("group/list", json!({ "limit": 2 })).await;
    let names: Vec<&str> = page["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let cursor = page["nextCursor"].as_str().unwrap();
    let rest = bob
        .ok("group/list", json!({ "limit": 2, "cursor": cursor }))
        .await;
    assert_eq!(rest["groups"].as_array().unwrap().len(), 1);
    assert_eq!(rest["groups"][0]["name"], "c");
    assert_eq!(rest["nextCursor"], Value::Null);
    // The owner also sees their private group.
    let own = alice.ok("group/list", json!({})).await;
    assert_eq!(own["groups"].as_array().unwrap().len(), 4);
    let got = bob.ask("group/list", json!({ "cursor": "zz" })).await;
    assert_eq!(got.ack()["field"], "cursor");
}

#[tokio::test]
async fn conversations_are_for_members_and_hidden_from_others() {
    let server = Server::new().await;
    let (alice, bob, carol) = (
        server.client("alice").await,
        server.client("bob").await,
        server.client("carol").await,
    );
    let group = alice
        .ok(
            "group/create",
            json!({ "name": "G", "members": [bob.id()] }),
        )
        .await;
    let group_id = group["group"]["id"].as_str().unwrap().to_owned();

    assert_eq!(
        carol
            .code(
                "conversation/create",
                json!({ "groupId": group_id, "name": "x" })
            )
            .await,
        "forbidden"
    );
    assert_eq!(
        carol
            .code("conversation/list", json!({ "groupId": group_id }))
            .await,
        "forbidden"
    );
    let got = alice
        .ask(
            "conversation/create",
            json!({ "groupId": group_id, "name": "x", "participants": [carol.id()] }),
        )
        .await;
    assert_eq!(got.ack()["field"], "participants");

    // Bob's private conversation: the group owner sees it too, carol does not.
    let private = bob
        .ok(
            "conversation/create",
            json!({ "groupId": group_id, "name": "mine", "participants": [] }),
        )
        .await;
    let private_id = private["conversation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(private["conversation"]["participants"], json!([bob.id()]));
    let open = alice
        .ok(
            "conversation/create",
            json!({ "groupId": group_id, "name": "all" }),
        )
        .await;
    let open_id = open["conversation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(open["conversation"]["participants"], Value::Null);
    let listed = alice
        .ok("conversation/list", json!({ "groupId": group_id }))
        .await;
    assert_eq!(listed["conversations"].as_array().unwrap().len(), 2);
    assert_eq!(listed["groupId"], group_id);

    // Only the conversation's owner edits; others who cannot see it get not_found.
    assert_eq!(
        bob.code(
            "conversation/edit",
            json!({ "conversationId": open_id, "name": "n" })
        )
        .await,
        "forbidden"
    );
    assert_eq!(
        carol
            .code(
                "conversation/edit",
                json!({ "conversationId": open_id, "name": "n" })
            )
            .await,
        "not_found"
    );
    let edited = alice
        .ok(
            "conversation/edit",
            json!({ "conversationId": open_id, "participants": [bob.id()] }),
        )
        .await;
    let mut participants = vec![alice.id(), bob.id()];
    participants.sort();
    assert_eq!(edited["conversation"]["participants"], json!(participants));

    // The group's owner removes anyone's conversation.
    let removed = alice
        .ok(
            "conversation/remove",
            json!({ "conversationId": private_id }),
        )
        .await;
    assert_eq!(removed["conversationId"], private_id);
    assert_eq!(removed["groupId"], group_id);
    assert_eq!(
        bob.code(
            "conversation/remove",
            json!({ "conversationId": private_id })
        )
        .await,
        "not_found"
    );
}

#[tokio::test]
async fn messages_authors_owners_tombstones_and_pages() {
    let server = Server::new().await;
    let (alice, bob, carol) = (
        server.client("alice").await,
        server.client("bob").await,
        server.client("carol").await,
    );
    let group = alice
        .ok(
            "group/create",
            json!({ "name": "G", "members": [bob.id()] }),
        )
        .await;
    let group_id = group["group"]["id"].as_str().unwrap().to_owned();
    let conversation = alice
        .ok(
            "conversation/create",
            json!({ "groupId": group_id, "name": "c" }),
        )
        .await;
    let cid = conversation["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = alice
        .ok(
            "conversation/create",
            json!({ "groupId": group_id, "name": "d" }),
        )
        .await;
    let other_id = other["conversation"]["id"].as_str().unwrap().to_owned();

    assert_eq!(
        carol
            .code(
                "message/create",
                json!({ "conversationId": cid, "content": "hi" })
            )
            .await,
        "not_found"
    );
    let got = bob
        .ask(
            "message/create",
            json!({ "conversationId": cid, "content": "  " }),
        )
        .await;
    assert_eq!(got.ack()["field"], "content");
    let mut ids = Vec::new();
    for n in 0..5 {
        let created = bob
            .ok(
                "message/create",
                json!({ "conversationId": cid, "content": format!("m{n}"), "clientId": "c" }),
            )
            .await;
        assert_eq!(created["message"]["author"]["username"], "bob");
        ids.push(created["message"]["id"].as_str().unwrap().to_owned());
    }
    let log = server.io.take();
    assert!(
        log.iter()
            .any(|l| l.starts_with(&format!("emit message/created to [\"conversation:{cid}\"]"))),
        "{log:?}"
    );

    assert_eq!(
        alice
            .code(
                "message/edit",
                json!({ "messageId": ids[0], "content": "x" })
            )
            .await,
        "forbidden"
    );
    let edited = bob
        .ok(
            "message/edit",
            json!({ "messageId": ids[0], "content": "x" }),
        )
        .await;
    assert_eq!(edited["message"]["content"], "x");
    assert!(edited["message"]["editedAt"].is_string());

    // The group owner removes; a removed message is gone for editing and listing.
    let removed = alice
        .ok("message/remove", json!({ "messageId": ids[4] }))
        .await;
    assert_eq!(removed["messageId"], ids[4]);
    assert_eq!(removed["conversationId"], cid);
    assert_eq!(
        bob.code(
            "message/edit",
            json!({ "messageId": ids[4], "content": "y" })
        )
        .await,
        "not_found"
    );

    let page = bob
        .ok("message/list", json!({ "conversationId": cid, "limit": 2 }))
        .await;
    let contents: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["m3", "m2"]);
    assert_eq!(page["hasMore"], true);
    let rest = bob
        .ok(
            "message/list",
            json!({ "conversationId": cid, "limit": 2, "before": ids[2] }),
        )
        .await;
    let contents: Vec<&str> = rest["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["m1", "x"]);
    assert_eq!(rest["hasMore"], false);
    // A removed message still marks a place.
    let after_tombstone = bob
        .ok(
            "message/list",
            json!({ "conversationId": cid, "before": ids[4] }),
        )
        .await;
    assert_eq!(after_tombstone["messages"].as_array().unwrap().len(), 4);
    let got = bob
        .ask(
            "message/list",
            json!({ "conversationId": other_id, "before": ids[1] }),
        )
        .await;
    assert_eq!(got.ack()["field"], "before");
    assert_eq!(got.sent[0].0, "message/list-failed");
}

#[tokio::test]
async fn typing_is_relayed_and_ended_by_the_server_after_the_timeout() {
    let server = Server::with(|c| c.tincan.typing_timeout_ms = 50).await;
    let alice = server.client("alice").await;
    let group = alice.ok("group/create", json!({ "name": "G" })).await;
    let group_id = group["group"]["id"].as_str().unwrap().to_owned();
    let conversation = alice
        .ok(
            "conversation/create",
            json!({ "groupId": group_id, "name": "c" }),
        )
        .await;
    let cid = conversation["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.io.take();

    let got = alice
        .ask("conversation/type-start", json!({ "conversationId": cid }))
        .await;
    assert_eq!(got.ack, r#"{"ok":true}"#);
    assert!(got.sent.is_empty());
    let notice = format!(
        r#"{{"conversationId":"{cid}","userId":"{}","username":"alice"}}"#,
        alice.id()
    );
    let relayed = format!(
        "to [\"conversation:{cid}\"] except [\"user:{}\"] {notice}",
        alice.id()
    );
    assert_eq!(
        server.io.take(),
        [format!("emit conversation/type-start {relayed}")]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.io.take(),
        [format!("emit conversation/type-end {relayed}")]
    );

    // An end from the client cancels the timer.
    alice
        .ok("conversation/type-start", json!({ "conversationId": cid }))
        .await;
    alice
        .ok("conversation/type-end", json!({ "conversationId": cid }))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.io.take(),
        [
            format!("emit conversation/type-start {relayed}"),
            format!("emit conversation/type-end {relayed}"),
        ]
    );
}

#[tokio::test]
async fn signing_out_reads_nothing_and_drops_the_token() {
    let server = Server::new().await;
    let alice = server.client("alice").await;
    let got = alice.ask("auth/logout", json!("not an object")).await;
    assert_eq!(got.ack, r#"{"ok":true}"#);
    assert!(got.sent.is_empty());
    assert_eq!(
        server.io.take(),
        [format!(
            "disconnect [\"token:{}\"]",
            alice.ctx.me.token_hash
        )]
    );
    let accounts = server.app.store.tincan().accounts();
    assert!(accounts.for_token(&alice.token).await.unwrap().is_none());

    let bob = server.client("bob").await;
    let got = bob
        .ask("auth/logout", json!({ "requestId": "bye", "anything": 1 }))
        .await;
    assert_eq!(got.ack, r#"{"ok":true,"requestId":"bye"}"#);
}

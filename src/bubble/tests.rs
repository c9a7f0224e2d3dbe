//! The rules of the Bubble events, run through the dispatch table against a real store (a
//! SQLite file), this node's own presence, and a socket.io that records what it is asked to send.
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use socketioxide::extensions::Extensions;
use socketioxide::socket::Sid;

use super::*;
use crate::socket::wire::Json;
use crate::store::{NewRoom, PRIVATE, temp_store};

/// What the recording socket.io was asked to send: namespace, rooms, rooms excepted, event and
/// payload.
#[derive(Debug, Clone)]
struct Emitted {
    ns: String,
    rooms: Vec<String>,
    except: Vec<String>,
    event: String,
    payload: Value,
}

#[derive(Default)]
struct RecordingIo {
    emitted: Mutex<Vec<Emitted>>,
}

#[async_trait]
impl sio::Io for RecordingIo {
    async fn emit(
        &self,
        ns: &str,
        rooms: Vec<String>,
        except: Vec<String>,
        event: &str,
        payload: &Json,
    ) {
        let payload = serde_json::from_str(&payload.text()).expect("JSON");
        self.emitted.lock().unwrap().push(Emitted {
            ns: ns.to_owned(),
            rooms,
            except,
            event: event.to_owned(),
            payload,
        });
    }
    async fn join(&self, _: &str, _: Vec<String>, _: Vec<String>) {}
    async fn leave(&self, _: &str, _: Vec<String>, _: Vec<String>, _: Vec<String>) {}
    async fn disconnect(&self, _: &str, _: Vec<String>) {}
    async fn disconnect_local(&self) {}
    async fn close(&self) {}
}

/// A socket of this node that records what it is sent, as `event payload` text.
struct RecordingSock {
    id: Sid,
    extensions: Extensions,
    sent: Mutex<Vec<String>>,
    rooms: Mutex<Vec<String>>,
}

impl Sock for RecordingSock {
    fn id(&self) -> Sid {
        self.id
    }

    fn send(&self, event: &str, payload: &Json) {
        let sent = format!("{event} {}", payload.text());
        self.sent.lock().unwrap().push(sent);
    }

    fn join_room(&self, room: String) {
        self.rooms.lock().unwrap().push(room);
    }

    fn leave_room(&self, room: String) {
        self.rooms.lock().unwrap().retain(|r| *r != room);
    }

    fn extensions(&self) -> &Extensions {
        &self.extensions
    }
}

struct Server {
    _dir: tempfile::TempDir,
    app: Arc<AppState>,
    io: Arc<RecordingIo>,
}

struct Client {
    ctx: Ctx,
    sock: Arc<RecordingSock>,
}

impl Server {
    async fn new() -> Self {
        let (dir, store) = temp_store().await;
        let io = Arc::new(RecordingIo::default());
        let app = crate::AppState::for_tests(store, io.clone(), |_| {});
        Self { _dir: dir, app, io }
    }

    /// A person connecting on `/`.
    async fn user(&self) -> Client {
        self.connect(Ns::Root, None).await
    }

    /// A signed-in counsellor connecting on `/counsellor`.
    async fn counsellor(&self) -> Client {
        let identity = CounsellorIdentity {
            account_id: Uuid::new_v4().to_string(),
            username: "sam".into(),
            name: "Sam".into(),
        };
        self.connect(Ns::Counsellor, Some(identity)).await
    }

    async fn connect(&self, ns: Ns, counsellor: Option<CounsellorIdentity>) -> Client {
        let sock = Arc::new(RecordingSock {
            id: Sid::new(),
            extensions: Extensions::new(),
            sent: Mutex::default(),
            rooms: Mutex::default(),
        });
        let bubble_id: BubbleId = match &counsellor {
            Some(c) => c.account_id.clone().into(),
            None => Uuid::new_v4().to_string().into(),
        };
        let conn = Conn { ns, sid: sock.id };
        self.app
            .presence
            .connect(conn, bubble_id.clone())
            .await
            .unwrap();
        let ctx = Ctx {
            app: self.app.clone(),
            socket: sock.clone(),
            conn,
            sid: sock.id,
            bubble_id,
            counsellor: counsellor.map(Arc::new),
            name: Arc::default(),
        };
        Client { ctx, sock }
    }

    /// What was sent through socket.io since the last call.
    fn emitted(&self) -> Vec<Emitted> {
        std::mem::take(&mut *self.io.emitted.lock().unwrap())
    }
}

impl Client {
    /// Sends an event as the client would; its acknowledgement, `null` when there was none (an
    /// unknown event).
    async fn send(&self, event: &str, data: Value) -> Value {
        let acked = Arc::new(Mutex::new(Value::Null));
        let ack = {
            let acked = acked.clone();
            Ack::from_fn(move |json| {
                *acked.lock().unwrap() = serde_json::from_str(&json.text()).unwrap();
            })
        };
        let ctx = self.ctx.clone();
        let fields = request::fields(data);
        if let Rest::Later(rest) = start(ctx, event.to_owned(), fields, ack, overlaps(event)).await
        {
            (rest.await)().await;
        }
        acked.lock().unwrap().take()
    }

    /// The error code of a request that failed; panics on a success.
    async fn refused(&self, event: &str, data: Value) -> String {
        let ack = self.send(event, data).await;
        match ack["error"]["code"].as_str() {
            Some(code) => code.to_owned(),
            None => panic!("{event} succeeded: {ack}"),
        }
    }

    /// Creates a room (as a person on `/`) and returns its id.
    async fn create_room(&self, extra: Value) -> String {
        let mut data = json!({ "roomName": "Talk" });
        if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
            data.extend(extra);
        }
        let reply = self.send("create_room", data).await;
        reply["roomId"].as_str().expect("a room").to_owned()
    }

    fn sid(&self) -> String {
        self.ctx.sid.to_string()
    }

    fn sent(&self) -> Vec<String> {
        std::mem::take(&mut *self.sock.sent.lock().unwrap())
    }
}

fn unknown_room() -> String {
    Uuid::new_v4().to_string()
}

#[tokio::test]
async fn add_message_checks_in_the_spec_order() {
    let server = Server::new().await;
    let (owner, other) = (server.user().await, server.user().await);
    let room = owner.create_room(json!({})).await;
    for (data, code) in [
        (json!({ "message": "hi" }), "no_room_id"),
        (json!({ "roomId": 5 }), "invalid_room_id"),
        (json!({ "roomId": unknown_room() }), "room_id_not_found"),
        (json!({ "roomId": room }), "no_message"),
        (json!({ "roomId": room, "message": 5 }), "invalid_message"),
        (
            json!({ "roomId": room, "message": "hi" }),
            "user_not_in_room",
        ),
    ] {
        assert_eq!(
            other.refused("add_message", data.clone()).await,
            code,
            "{data}"
        );
    }
    let long = "x".repeat(3001);
    let data = json!({ "roomId": room, "message": long });
    assert_eq!(owner.refused("add_message", data).await, "invalid_message");

    server.emitted();
    let reply = owner
        .send("add_message", json!({ "roomId": room, "message": "héllo" }))
        .await;
    assert_eq!(reply["sentByMe"], json!(true));
    assert_eq!(reply["messageType"], json!("MESSAGE"));
    assert_eq!(reply["message"], json!("héllo"));
    let heard = server.emitted();
    assert_eq!(heard[0].event, "add_message");
    assert_eq!(heard[0].except, [owner.sid()]);
    assert_eq!(heard[0].payload["sentByMe"], json!(false));
}

#[tokio::test]
async fn join_room_checks_in_the_spec_order_and_a_full_room_refuses() {
    let server = Server::new().await;
    let (owner, second, third) = (
        server.user().await,
        server.user().await,
        server.user().await,
    );
    let room = owner.create_room(json!({ "userLimit": 2 })).await;
    for (data, code) in [
        (json!({}), "no_room_id"),
        (json!({ "roomId": "nope" }), "invalid_room_id"),
        (json!({ "roomId": unknown_room() }), "room_id_not_found"),
    ] {
        assert_eq!(
            second.refused("join_room", data.clone()).await,
            code,
            "{data}"
        );
    }
    server.emitted();
    let joined = second.send("join_room", json!({ "roomId": room })).await;
    assert_eq!(joined["numUsers"], json!(2));
    assert_eq!(joined["userId"], json!(second.sid()));
    let heard = server.emitted();
    assert_eq!(heard[0].event, "join_room");
    assert_eq!(heard[0].except, [second.sid()]);

    assert_eq!(
        third.refused("join_room", json!({ "roomId": room })).await,
        "room_full"
    );
    // Joining again is no new arrival, and never full.
    let again = second.send("join_room", json!({ "roomId": room })).await;
    assert_eq!(again["numUsers"], json!(2));
}

#[tokio::test]
async fn create_room_checks_in_the_spec_order() {
    let server = Server::new().await;
    let user = server.user().await;
    for (data, code) in [
        (json!({ "userLimit": 1 }), "no_room_name"),
        (json!({ "roomName": " " }), "no_room_name"),
        (
            json!({ "roomName": 5, "userLimit": 1 }),
            "invalid_room_name",
        ),
        (
            json!({ "roomName": "a", "roomDescription": 5, "userLimit": 1 }),
            "invalid_room_name",
        ),
        (
            json!({ "roomName": "a", "userLimit": 1, "categories": "Rant" }),
            "invalid_user_limit",
        ),
        (
            json!({ "roomName": "a", "categories": ["Rant", "Gossip"] }),
            "invalid_categories",
        ),
    ] {
        assert_eq!(
            user.refused("create_room", data.clone()).await,
            code,
            "{data}"
        );
    }
    let room = user
        .send(
            "create_room",
            json!({ "roomName": "a", "categories": ["Rant", "Rant"] }),
        )
        .await;
    assert_eq!(room["roomType"], json!("PUBLIC"));
    assert_eq!(room["userLimit"], json!(21));
    assert_eq!(room["categories"], json!(["Rant"]));
    assert_eq!(room["numUsers"], json!(1));
}

#[tokio::test]
async fn exit_room_tells_the_others() {
    let server = Server::new().await;
    let (owner, guest) = (server.user().await, server.user().await);
    let room = owner.create_room(json!({})).await;
    guest.send("join_room", json!({ "roomId": room })).await;
    server.emitted();
    guest.sent();

    let reply = guest.send("exit_room", json!({ "roomId": room })).await;
    let bubble_id = guest.ctx.bubble_id.to_string();
    assert_eq!(
        guest.sent(),
        [format!(
            r#"i_exit {{"bubbleId":"{bubble_id}","roomId":"{room}","userId":"{}"}}"#,
            guest.sid()
        )]
    );
    assert_eq!(reply["roomId"], json!(room));
    let heard = server.emitted();
    let exits: Vec<_> = heard.iter().filter(|e| e.event == "exit_room").collect();
    assert_eq!(exits.len(), 2, "{heard:?}");
    assert_eq!(
        (exits[0].ns.as_str(), &exits[0].rooms),
        (NS, &vec![room.clone()])
    );
    assert_eq!(exits[0].except, [guest.sid()]);
    assert_eq!(exits[1].ns, COUNSELLOR_NS);
    assert_eq!(exits[0].payload["bubbleId"], json!(bubble_id));

    assert_eq!(
        guest.refused("exit_room", json!({ "roomId": room })).await,
        "user_not_in_room"
    );
}

#[tokio::test]
async fn counsellor_events_are_refused_on_root_and_user_events_unknown_on_counsellor() {
    let server = Server::new().await;
    let (user, counsellor) = (server.user().await, server.counsellor().await);
    for event in ["resolve_issue", "close_room", "set_room_type"] {
        assert_eq!(who(event), Some(Who::Counsellor));
        assert_eq!(
            user.refused(event, json!({})).await,
            "unauthorized",
            "{event}"
        );
    }
    for event in [
        "create_room",
        "set_user_name",
        "register_push",
        "registerPush",
        "report_user",
        "find_counsellor",
    ] {
        assert_eq!(who(event), Some(Who::User));
        let ack = counsellor.send(event, json!({ "roomName": "x" })).await;
        assert_eq!(ack, Value::Null, "{event}");
    }
    assert!(counsellor.sent().is_empty());
    assert_eq!(who("no_such_event"), None);
    assert_eq!(user.send("no_such_event", json!({})).await, Value::Null);
    let me = user.send("my_id", json!(null)).await;
    assert_eq!(me, json!(user.ctx.bubble_id.to_string()));
}

#[tokio::test]
async fn close_room_sends_everyone_out_and_the_room_stays_shut() {
    let server = Server::new().await;
    let (owner, guest, counsellor) = (
        server.user().await,
        server.user().await,
        server.counsellor().await,
    );
    let room = owner.create_room(json!({})).await;
    guest.send("join_room", json!({ "roomId": room })).await;
    assert_eq!(
        counsellor
            .refused("close_room", json!({ "roomId": unknown_room() }))
            .await,
        "room_id_not_found"
    );
    server.emitted();

    let closed = counsellor
        .send("close_room", json!({ "roomId": room }))
        .await;
    assert_eq!(closed["isOpen"], json!(false));
    assert_eq!(closed["numUsers"], json!(0));
    let heard = server.emitted();
    let to = |client: &Client, event: &str| {
        heard
            .iter()
            .filter(|e| e.rooms == [client.sid()] && e.event == event)
            .count()
    };
    for (client, other) in [(&owner, &guest), (&guest, &owner)] {
        assert_eq!(to(client, "i_exit"), 1);
        assert_eq!(to(client, "exit_room"), 1);
        let exit = heard
            .iter()
            .find(|e| e.rooms == [client.sid()] && e.event == "exit_room")
            .unwrap();
        assert_eq!(exit.payload["userId"], json!(other.sid()));
    }
    assert_eq!(
        guest.refused("join_room", json!({ "roomId": room })).await,
        "room_closed"
    );
    let listed = guest.send("list_rooms", json!({})).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn set_room_type_features_public_rooms_only() {
    let server = Server::new().await;
    let (owner, counsellor) = (server.user().await, server.counsellor().await);
    let room = owner.create_room(json!({})).await;
    let set = |room_id: &str, room_type: Value| json!({ "roomId": room_id, "roomType": room_type });
    for (data, code) in [
        (json!({ "roomType": "HOT" }), "no_room_id"),
        (set(&unknown_room(), json!("nope")), "room_id_not_found"),
        (set(&room, json!("PRIVATE")), "invalid_room_type"),
        (set(&room, json!("hot")), "invalid_room_type"),
        (set(&room, json!(5)), "invalid_room_type"),
    ] {
        assert_eq!(
            counsellor.refused("set_room_type", data.clone()).await,
            code,
            "{data}"
        );
    }
    let hot = counsellor
        .send("set_room_type", set(&room, json!("HOT")))
        .await;
    assert_eq!(hot["roomType"], json!("HOT"));
    assert_eq!(hot["numUsers"], json!(1));

    let private = NewRoom {
        name: "Just us".into(),
        description: String::new(),
        room_type: PRIVATE,
        user_limit: 2,
        categories: Vec::new(),
        created_by: owner.sid(),
        created_by_bubble_id: owner.ctx.bubble_id.to_string(),
    };
    let rooms = server.app.store.rooms();
    let private = rooms.create(private, &[], None).await.unwrap();
    assert_eq!(
        counsellor
            .refused("set_room_type", set(&private.id, json!("HOT")))
            .await,
        "invalid_room_type"
    );
}

#[tokio::test]
async fn report_user_needs_someone_in_the_room() {
    let server = Server::new().await;
    let (owner, reporter) = (server.user().await, server.user().await);
    let room = owner.create_room(json!({})).await;
    reporter.send("join_room", json!({ "roomId": room })).await;
    let report = |who: Value, reason: Value| json!({ "roomId": room, "userToReport": who, "reason": reason });
    for (data, code) in [
        (json!({ "userToReport": owner.sid() }), "no_room_id"),
        (
            json!({ "roomId": unknown_room(), "userToReport": 5 }),
            "room_id_not_found",
        ),
        (report(json!(5), json!(5)), "no_user_to_report"),
        (report(json!("someone-else"), json!(5)), "no_user_to_report"),
        (report(json!(owner.sid()), json!(5)), "invalid_reason"),
    ] {
        assert_eq!(
            reporter.refused("report_user", data.clone()).await,
            code,
            "{data}"
        );
    }
    server.emitted();
    let ack = reporter
        .send("report_user", report(json!(owner.sid()), json!("rude")))
        .await;
    assert_eq!(ack, json!({}));
    let heard = server.emitted();
    assert_eq!(heard[0].event, "report_user");
    assert_eq!(heard[0].except, [reporter.sid()]);
    assert_eq!(
        heard[0].payload,
        json!({ "reason": "rude", "reportedUserId": owner.sid(), "roomId": room })
    );
}

#[tokio::test]
async fn find_counsellor_with_nobody_online_records_the_miss() {
    let server = Server::new().await;
    let user = server.user().await;
    assert_eq!(
        user.refused("find_counsellor", json!({})).await,
        "counsellor_unavailable"
    );
    let issues = server.app.store.issues().open(None).await.unwrap();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].issue_type, "USER_MISSED");
    assert_eq!(issues[0].bubble_id, &*user.ctx.bubble_id);
    assert_eq!(user.sent()[0].split_once(' ').unwrap().0, "bubble_error");
}

#[tokio::test]
async fn find_counsellor_matches_someone_online() {
    let server = Server::new().await;
    let (user, counsellor) = (server.user().await, server.counsellor().await);
    let online = counsellor.send("counsellor_online", json!({})).await;
    assert_eq!(online, json!({}));
    let matched = user.send("find_counsellor", json!({})).await;
    assert_eq!(matched["roomType"], json!("PRIVATE"));
    assert_eq!(matched["counsellorName"], json!("Sam"));
    assert_eq!(matched["numUsers"], json!(2));
    let told = server
        .emitted()
        .into_iter()
        .find(|e| e.event == "find_counsellor")
        .expect("the counsellor is told");
    assert_eq!(told.rooms, [counsellor.sid()]);
    assert_eq!(
        told.payload["bubbleId"],
        json!(user.ctx.bubble_id.to_string())
    );
}

#[tokio::test]
async fn set_user_name_and_register_push_check_their_fields() {
    let server = Server::new().await;
    let user = server.user().await;
    assert_eq!(user.refused("set_user_name", json!({})).await, "no_name");
    assert_eq!(
        user.refused("set_user_name", json!({ "newName": 5 })).await,
        "invalid_new_name"
    );
    assert_eq!(
        user.send("set_user_name", json!({ "newName": "Ann" }))
            .await,
        json!({})
    );
    assert_eq!(user.ctx.name().as_deref(), Some("Ann"));
    for (data, code) in [
        (json!({ "platform": "web" }), "invalid_push_token"),
        (
            json!({ "pushToken": "t", "platform": "web" }),
            "invalid_platform",
        ),
    ] {
        assert_eq!(
            user.refused("register_push", data.clone()).await,
            code,
            "{data}"
        );
    }
    let ok = json!({ "pushToken": "t", "platform": "IOS" });
    assert_eq!(user.send("registerPush", ok).await, json!({}));
}

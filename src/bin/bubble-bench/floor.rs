//! `floor-server` (hidden): the least a socket.io fan-out server can do, as a reference for what
//! bubble's deliveries cost beyond the unavoidable.
//!
//! It speaks just enough Engine.IO 3 and 4 over a websocket opened directly
//! (`/socket.io/?EIO=4&transport=websocket`) for the bench's own clients, and three events:
//! `create_room` and `join_room` (acknowledged with the room's `roomId`), and `add_message`,
//! delivered as the event `add_message` to every member of the room, the sender included, with
//! the payload bubble sends (the `Message` shape plus `roomId`, `roomName`, `user`, `sentByMe`,
//! `message`), and acknowledged to the sender when it asks. No database, no checks (any socket
//! may send to any room it names), no limits, nothing else of the protocol.
//!
//! The cost it keeps is the one any such server pays: a message is decoded once, its JSON made
//! once for the others and once for the sender (`sentByMe` differs), and each recipient gets a
//! clone of that shared buffer through its connection's queue, written by the connection's own
//! writer task (which writes whatever has queued up and then flushes, as engineioxide does). The
//! queues are unbounded: a client that stops reading grows the server, which the bench's clients
//! do not do. Sockets are `TCP_NODELAY`, like bubble's.
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::sio::Eio;

#[derive(clap::Args, Debug, Clone)]
pub struct FloorArgs {
    /// Port on 127.0.0.1 (0: any free one). The address is printed as `listening on ADDR`.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

const PING_INTERVAL: Duration = Duration::from_secs(25);

/// Listens until killed.
pub async fn serve(args: &FloorArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let state = Arc::new(State::default());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to close.
                eprintln!("floor-server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            eprintln!("floor-server: TCP_NODELAY: {e}");
        }
        tokio::spawn(connection(stream, state.clone()));
    }
}

/// The rooms, and counters for ids.
#[derive(Default)]
struct State {
    rooms: Mutex<HashMap<String, Room>>,
    next_conn: AtomicU64,
    next_message: AtomicU64,
}

struct Room {
    name: String,
    /// Connection id and queue of each member.
    members: Vec<(u64, UnboundedSender<Message>)>,
}

impl State {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Room>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One connection's side of the state: who it is, its queue, and the rooms it is in.
struct Conn {
    id: u64,
    /// The socket id (`40{"sid"}` for v4, the Engine.IO sid for v3), also `userId` and `user`.
    sid: String,
    bubble_id: String,
    tx: UnboundedSender<Message>,
    rooms: Vec<String>,
    state: Arc<State>,
}

/// Reads the Engine.IO generation from the websocket handshake's query (`EIO=3`, else 4).
struct ReadEio<'a>(&'a mut Eio);

impl Callback for ReadEio<'_> {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        let query = request.uri().query().unwrap_or_default();
        if query.split('&').any(|kv| kv == "EIO=3") {
            *self.0 = Eio::V3;
        }
        Ok(response)
    }
}

async fn connection(stream: TcpStream, state: Arc<State>) {
    let mut eio = Eio::V4;
    let callback = ReadEio(&mut eio);
    // tungstenite's default read buffer is 128 KiB per connection, allocated up front: more than
    // all the rest of the floor's memory. The bench's packets are small.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let accepting = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config));
    let Ok(ws) = accepting.await else {
        return;
    };
    let (sink, mut incoming) = ws.split();
    let (tx, rx) = unbounded_channel();
    let pings = (eio == Eio::V4).then_some(PING_INTERVAL);
    tokio::spawn(write(sink, rx, pings));
    let engine_sid = uuid::Uuid::new_v4().simple().to_string();
    let open = format!(
        r#"0{{"sid":"{engine_sid}","upgrades":[],"pingInterval":{},"pingTimeout":20000,"maxPayload":1000000}}"#,
        PING_INTERVAL.as_millis()
    );
    let _ = tx.send(Message::text(open));
    let sid = match eio {
        // v3: the server connects the client to `/` by itself.
        Eio::V3 => {
            let _ = tx.send(Message::text("40"));
            engine_sid
        }
        Eio::V4 => uuid::Uuid::new_v4().simple().to_string(),
    };
    let mut conn = Conn {
        id: state.next_conn.fetch_add(1, Ordering::Relaxed),
        sid,
        bubble_id: uuid::Uuid::new_v4().to_string(),
        tx,
        rooms: Vec::new(),
        state,
    };
    while let Some(Ok(message)) = incoming.next().await {
        match message {
            Message::Text(text) => conn.packet(&text),
            Message::Close(_) => break,
            _ => {}
        }
    }
    conn.leave_all();
}

/// Writes what the connection's queue holds: everything waiting, then one flush. With `pings`,
/// also sends an Engine.IO ping (v4) at that interval. Ends when the queue's senders are all gone
/// (the connection closed and left its rooms) or a write fails.
async fn write(
    mut sink: futures_util::stream::SplitSink<WebSocketStream<TcpStream>, Message>,
    mut rx: UnboundedReceiver<Message>,
    pings: Option<Duration>,
) {
    let every = pings.unwrap_or(Duration::MAX / 4);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            got = rx.recv() => {
                let Some(message) = got else { break };
                if sink.feed(message).await.is_err() {
                    return;
                }
                while let Ok(message) = rx.try_recv() {
                    if sink.feed(message).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            _ = ping.tick(), if pings.is_some() => {
                if sink.send(Message::text("2")).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = sink.close().await;
}

/// The fields of the three events' payloads that the floor reads; the rest are ignored. Strings
/// without escapes are borrowed from the packet.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Payload<'a> {
    #[serde(borrow)]
    room_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    room_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
}

/// `["name", payload]`: the payload may be absent, but if present it must be an object.
#[derive(Deserialize)]
struct Event<'a>(
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow, default)] Payload<'a>,
);

/// An `add_message` as bubble delivers it: the `Message` shape, then where and whose.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Delivered<'a> {
    id: u64,
    user_id: &'a str,
    bubble_id: &'a str,
    message_type: &'static str,
    content: &'a str,
    room_room_id: &'a str,
    target_user: Option<&'a str>,
    target_user_bubble_id: Option<&'a str>,
    created_at: &'a str,
    updated_at: &'a str,
    room_id: &'a str,
    room_name: &'a str,
    user: &'a str,
    sent_by_me: bool,
    message: &'a str,
}

impl Conn {
    /// One Engine.IO packet from the client. Anything it does not understand is ignored.
    fn packet(&mut self, text: &str) {
        match text.as_bytes() {
            // v3: the client's ping.
            [b'2', ..] => self.send("3".into()),
            // v4: the client connects to `/`.
            [b'4', b'0', ..] => self.send(format!(r#"40{{"sid":"{}"}}"#, self.sid)),
            [b'4', b'2', ..] => self.event(&text[2..]),
            _ => {}
        }
    }

    /// `[<ack id>]["name",payload]`.
    fn event(&mut self, text: &str) {
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let ack = text[..digits].parse::<u64>().ok();
        let Ok(Event(name, payload)) = serde_json::from_str::<Event>(&text[digits..]) else {
            return self.refuse(ack, "invalid_payload");
        };
        match &*name {
            "create_room" => self.create_room(ack, payload),
            "join_room" => self.join_room(ack, payload),
            "add_message" => self.add_message(ack, payload),
            _ => self.ack(ack, "{}"),
        }
    }

    fn create_room(&mut self, ack: Option<u64>, p: Payload<'_>) {
        let room_id = uuid::Uuid::new_v4().to_string();
        let name = p.room_name.unwrap_or_default().into_owned();
        let answer = json!({ "roomId": room_id, "roomName": name, "numUsers": 1 });
        let room = Room {
            name,
            members: vec![(self.id, self.tx.clone())],
        };
        self.state.rooms().insert(room_id.clone(), room);
        self.rooms.push(room_id);
        self.ack(ack, &answer.to_string());
    }

    fn join_room(&mut self, ack: Option<u64>, p: Payload<'_>) {
        let room_id = p.room_id.unwrap_or_default().into_owned();
        let answer = {
            let mut rooms = self.state.rooms();
            let Some(room) = rooms.get_mut(&room_id) else {
                drop(rooms);
                return self.refuse(ack, "room_id_not_found");
            };
            if !room.members.iter().any(|(id, _)| *id == self.id) {
                room.members.push((self.id, self.tx.clone()));
                self.rooms.push(room_id.clone());
            }
            json!({
                "roomId": room_id,
                "roomName": room.name,
                "numUsers": room.members.len(),
                "userId": self.sid,
            })
        };
        self.ack(ack, &answer.to_string());
    }

    fn add_message(&mut self, ack: Option<u64>, p: Payload<'_>) {
        let room_id = p.room_id.unwrap_or_default();
        let content = p.message.unwrap_or_default();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let rooms = self.state.rooms();
        let Some(room) = rooms.get(&*room_id) else {
            drop(rooms);
            return self.refuse(ack, "room_id_not_found");
        };
        let mut delivered = Delivered {
            id: self.state.next_message.fetch_add(1, Ordering::Relaxed) + 1,
            user_id: &self.sid,
            bubble_id: &self.bubble_id,
            message_type: "MESSAGE",
            content: &content,
            room_room_id: &room_id,
            target_user: None,
            target_user_bubble_id: None,
            created_at: &now,
            updated_at: &now,
            room_id: &room_id,
            room_name: &room.name,
            user: &self.sid,
            sent_by_me: false,
            message: &content,
        };
        let json = |d: &Delivered| serde_json::to_string(d).unwrap_or_else(|_| "{}".into());
        let others = Message::Text(Utf8Bytes::from(format!(
            r#"42["add_message",{}]"#,
            json(&delivered)
        )));
        for (id, tx) in &room.members {
            if *id != self.id {
                let _ = tx.send(others.clone());
            }
        }
        delivered.sent_by_me = true;
        let mine = json(&delivered);
        drop(rooms);
        self.send(format!(r#"42["add_message",{mine}]"#));
        self.ack(ack, &mine);
    }

    /// A failure: `bubble_error` and, if asked, the ack `{ error: { code, message } }`.
    fn refuse(&self, ack: Option<u64>, code: &str) {
        let error = json!({ "code": code, "message": code });
        self.send(format!(r#"42["bubble_error",{error}]"#));
        self.ack(ack, &json!({ "error": error }).to_string());
    }

    fn ack(&self, ack: Option<u64>, payload: &str) {
        if let Some(id) = ack {
            self.send(format!("43{id}[{payload}]"));
        }
    }

    fn send(&self, text: String) {
        let _ = self.tx.send(Message::text(text));
    }

    /// Out of every room, so that no queue sender of this connection is left and its writer ends.
    fn leave_all(&mut self) {
        let mut rooms = self.state.rooms();
        for room_id in self.rooms.drain(..) {
            if let Some(room) = rooms.get_mut(&room_id) {
                room.members.retain(|(id, _)| *id != self.id);
            }
        }
    }
}

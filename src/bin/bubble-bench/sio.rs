//! A minimal socket.io client over one raw websocket: just what a load generator needs, with
//! little memory and CPU per simulated client.
//!
//! Engine.IO 4 (socket.io-client 3+): the server opens with `0{...}`, the client connects `/` with
//! `40`, the server pings (`2`) and the client answers (`3`). Engine.IO 3 (socket.io-client 1.x
//! and 2.x): the server connects `/` by itself (`40`) and the client pings every `pingInterval`.
//! Events are `42["name",payload]`, acknowledgements `43<id>[payload]`.
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The Engine.IO generation a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Eio {
    /// Engine.IO 3 (socket.io-client 1.x/2.x): the client pings.
    #[value(name = "3")]
    V3,
    /// Engine.IO 4 (socket.io-client 3+): the server pings.
    #[value(name = "4")]
    V4,
}

/// What the server sent that a scenario cares about.
pub enum Incoming {
    /// A whole `42[...]` packet.
    Event(Utf8Bytes),
    /// An acknowledgement: its id and the whole `43<id>[...]` packet.
    Ack(u64, Utf8Bytes),
}

impl Incoming {
    /// Whether this is the event `name`.
    pub fn is_event(&self, name: &str) -> bool {
        match self {
            Incoming::Event(t) => t
                .strip_prefix("42[\"")
                .and_then(|rest| rest.strip_prefix(name))
                .is_some_and(|rest| rest.starts_with('"')),
            Incoming::Ack(..) => false,
        }
    }
}

pub struct Client {
    ws: Ws,
    eio: Eio,
    /// The socket id the server gave (Engine.IO sid for v3, the `40{sid}` for v4).
    pub sid: String,
    ping_every: Duration,
    next_ping: Instant,
    next_ack: u64,
}

impl Client {
    /// Opens a websocket to `base` (`http://host:port`), optionally with a `bubble=<token>`, and
    /// waits until the client is connected to `/`.
    pub async fn connect(base: &str, eio: Eio, token: Option<&str>) -> anyhow::Result<Self> {
        let host = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("ws://"))
            .unwrap_or(base)
            .trim_end_matches('/');
        let v = match eio {
            Eio::V3 => 3,
            Eio::V4 => 4,
        };
        let mut url = format!("ws://{host}/socket.io/?EIO={v}&transport=websocket");
        if let Some(token) = token {
            url.push_str("&bubble=");
            url.push_str(token);
        }
        // list_rooms answers can be tens of megabytes.
        let config = WebSocketConfig::default()
            .max_message_size(Some(1 << 30))
            .max_frame_size(Some(1 << 30));
        let (ws, _) = tokio_tungstenite::connect_async_with_config(&url, Some(config), true)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let mut client = Client {
            ws,
            eio,
            sid: String::new(),
            ping_every: Duration::from_secs(25),
            next_ping: Instant::now(),
            next_ack: 0,
        };
        let open = client.read_text().await?;
        let Some(open) = open.strip_prefix('0') else {
            bail!("expected an Engine.IO open packet, got {open:?}");
        };
        let open: serde_json::Value = serde_json::from_str(open)?;
        let engine_sid = open["sid"].as_str().unwrap_or_default().to_owned();
        let ping_ms = open["pingInterval"].as_u64().unwrap_or(25_000);
        client.ping_every = Duration::from_millis(ping_ms);
        client.next_ping = Instant::now() + client.ping_every;
        if eio == Eio::V4 {
            client.send("40".into()).await?;
        }
        loop {
            let t = client.read_text().await?;
            if let Some(rest) = t.strip_prefix("40") {
                client.sid = match eio {
                    Eio::V3 => engine_sid,
                    Eio::V4 => serde_json::from_str::<serde_json::Value>(rest)
                        .ok()
                        .and_then(|v| v["sid"].as_str().map(str::to_owned))
                        .unwrap_or(engine_sid),
                };
                return Ok(client);
            }
            if t.starts_with("44") {
                bail!("connection refused: {t}");
            }
            // The server's first ping may come before the connect answer.
            if t.as_str() == "2" {
                client.send("3".into()).await?;
            }
        }
    }

    /// Emits an event; `data` is JSON.
    pub async fn emit(&mut self, event: &str, data: &str) -> anyhow::Result<()> {
        self.send(format!("42[\"{event}\",{data}]")).await
    }

    /// Emits an event asking for an acknowledgement; returns its id.
    pub async fn emit_ack(&mut self, event: &str, data: &str) -> anyhow::Result<u64> {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send(format!("42{id}[\"{event}\",{data}]")).await?;
        Ok(id)
    }

    /// Emits and waits for the acknowledgement, ignoring events meanwhile.
    pub async fn call(&mut self, event: &str, data: &str) -> anyhow::Result<Utf8Bytes> {
        let id = self.emit_ack(event, data).await?;
        loop {
            if let Incoming::Ack(got, packet) = self.recv().await?
                && got == id
            {
                return Ok(packet);
            }
        }
    }

    /// The next event or acknowledgement. Answers the server's pings (v4) and sends the client's
    /// own (v3) on the way. Cancel-safe as far as a load generator needs: a cancelled call loses
    /// nothing that was read.
    pub async fn recv(&mut self) -> anyhow::Result<Incoming> {
        loop {
            let ping_due = self.next_ping;
            let text = if self.eio == Eio::V3 {
                tokio::select! {
                    t = self.read_text() => t?,
                    _ = tokio::time::sleep_until(ping_due) => {
                        self.next_ping += self.ping_every;
                        self.send("2".into()).await?;
                        continue;
                    }
                }
            } else {
                self.read_text().await?
            };
            let bytes = text.as_bytes();
            match bytes.first() {
                Some(b'2') => self.send("3".into()).await?,
                Some(b'3') => {}
                Some(b'1') => bail!("server closed the session: {text}"),
                Some(b'4') => match bytes.get(1) {
                    Some(b'2') => return Ok(Incoming::Event(text)),
                    Some(b'3') => {
                        let digits = bytes[2..].iter().take_while(|b| b.is_ascii_digit());
                        let id = digits.fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                        return Ok(Incoming::Ack(id, text));
                    }
                    Some(b'1') => bail!("disconnected by the server"),
                    Some(b'4') => bail!("connect error: {text}"),
                    _ => {}
                },
                _ => {}
            }
        }
    }

    async fn read_text(&mut self) -> anyhow::Result<Utf8Bytes> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => return Ok(t),
                Some(Ok(Message::Close(_))) | None => bail!("websocket closed"),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    async fn send(&mut self, text: String) -> anyhow::Result<()> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// Closes the websocket politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// The payload (first argument) of an event or acknowledgement packet as JSON, parsed (for setup answers, not the hot path).
pub fn first_arg(packet: &str) -> Option<serde_json::Value> {
    let start = packet.find('[')?;
    let args: Vec<serde_json::Value> = serde_json::from_str(&packet[start..]).ok()?;
    let mut args = args.into_iter();
    if packet.starts_with("42") {
        args.next();
    }
    args.next()
}

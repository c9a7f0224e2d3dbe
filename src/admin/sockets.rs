//! Sockets as the Admin UI lists them (`SerializedSocket` of `@socket.io/admin-ui`).
//!
//! What would let someone act as a client is not shown: the handshake's `auth` object, the
//! `Authorization` header and the query's `token` are left out or masked. Of the headers, only
//! those the server keeps after the handshake are known (see `KEPT_HEADERS` in `lib.rs`); so the
//! address is the TCP peer's, and `xdomain` (whether an `Origin` header came) is always false.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use socketioxide::adapter::Adapter;
use socketioxide::socket::Socket;
use socketioxide::{SocketIo, TransportType};

use super::feed::Watched;

/// What replaces a value that is not shown.
const MASKED: &str = "(hidden)";

/// Query parameters whose value is not shown.
const SECRET_PARAMS: [&str; 1] = ["token"];

/// One socket of one namespace.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SerializedSocket {
    pub id: String,
    /// The engine.io connection's id, shortened as the reference server does: the same for
    /// every namespace a client connects to.
    pub client_id: String,
    pub transport: &'static str,
    pub nsp: String,
    pub handshake: Handshake,
    pub rooms: Vec<String>,
    /// What the application keeps about the socket: nothing is shown.
    pub data: Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct Handshake {
    pub address: String,
    pub headers: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    /// When the socket was accepted, in milliseconds since the epoch.
    pub issued: i64,
    pub secure: bool,
    /// `issued`, as a date.
    pub time: String,
    pub url: String,
    pub xdomain: bool,
}

/// Socket `s` of this node, as it is now.
pub fn serialize<A: Adapter>(s: &Socket<A>) -> SerializedSocket {
    let parts = s.req_parts();
    let issued = s
        .extensions
        .get::<Arc<Watched>>()
        .map_or_else(Utc::now, |w| w.issued);
    let address = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip().to_string())
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            let value = if name == http::header::AUTHORIZATION {
                MASKED.to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), value)
        })
        .collect();
    let query = masked_query(parts.uri.query().unwrap_or(""));
    let mut url = parts.uri.path().to_owned();
    if !query.is_empty() {
        url.push('?');
        let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        url.push_str(&pairs.join("&"));
    }
    let sid = s.id.to_string();
    SerializedSocket {
        client_id: sid.chars().take(12).collect(),
        id: sid,
        transport: match s.transport_type() {
            TransportType::Polling => "polling",
            TransportType::Websocket => "websocket",
        },
        nsp: s.ns().to_owned(),
        handshake: Handshake {
            address,
            headers,
            query,
            issued: issued.timestamp_millis(),
            secure: parts.uri.scheme_str() == Some("https"),
            time: time(issued),
            url,
            xdomain: false,
        },
        rooms: s.rooms().into_iter().map(|room| room.to_string()).collect(),
        data: Map::new(),
    }
}

/// Every socket of this node, on every namespace in `namespaces`.
pub fn all<A: Adapter>(io: &SocketIo<A>, namespaces: &[&str]) -> Vec<SerializedSocket> {
    namespaces
        .iter()
        .filter_map(|ns| io.of(ns))
        .flat_map(|op| op.local().sockets())
        .map(|s| serialize(&s))
        .collect()
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A query string's parameters as written, those in [`SECRET_PARAMS`] masked.
fn masked_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = if SECRET_PARAMS.contains(&key) {
                MASKED
            } else {
                value
            };
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_the_query_are_masked() {
        let query = masked_query("EIO=4&transport=polling&bubble=ab&token=secret&flag");
        assert_eq!(query["EIO"], "4");
        assert_eq!(query["bubble"], "ab");
        assert_eq!(query["token"], MASKED);
        assert_eq!(query["flag"], "");
        assert!(masked_query("").is_empty());
    }
}

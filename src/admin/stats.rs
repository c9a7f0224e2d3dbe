//! `server_stats`, which the Admin UI receives from every server every 2 seconds, computed as
//! the reference server computes them, from this node's own sockets.
//!
//! socketioxide does not show its engine.io connections, so a client is counted by the id its
//! sockets share (a socket's id is its engine.io session's): `clientsCount` is how many
//! clients have a socket on some namespace, `pollingClientsCount` how many of them are still on
//! HTTP long-polling.
use std::collections::HashSet;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::{SocketIo, TransportType};

/// One namespace and how many sockets of this node it has.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceDetails {
    pub name: &'static str,
    pub sockets_count: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerStats {
    pub server_id: String,
    pub hostname: String,
    pub pid: u32,
    /// Seconds since the server started.
    pub uptime: f64,
    pub clients_count: usize,
    pub polling_clients_count: usize,
    /// The counts of `connection`, `disconnection` and packets, by second (see
    /// [`Feed::take_counts`](super::feed::Feed::take_counts)).
    pub aggregated_events: Vec<Value>,
    pub namespaces: Vec<NamespaceDetails>,
}

/// Who this server is to the Admin UI.
pub struct Identity {
    pub server_id: String,
    pub hostname: String,
    pub pid: u32,
    pub started: Instant,
}

impl Identity {
    /// This process. One of several linked nodes is `hostname#pid`, as a worker of a Node.js
    /// cluster is in the reference server, so that nodes on one host are told apart; a lone
    /// server is its host's name.
    pub fn this_process(linked: bool) -> Self {
        let hostname = hostname();
        let pid = std::process::id();
        let server_id = if linked {
            format!("{hostname}#{pid}")
        } else {
            hostname.clone()
        };
        Identity {
            server_id,
            hostname,
            pid,
            started: Instant::now(),
        }
    }
}

/// The stats of this node, with the `aggregated` counts.
pub fn compute<A: Adapter>(
    io: &SocketIo<A>,
    who: &Identity,
    namespaces: &[&'static str],
    aggregated: Vec<Value>,
) -> ServerStats {
    let mut clients = HashSet::new();
    let mut polling = HashSet::new();
    let mut details = Vec::with_capacity(namespaces.len());
    for &name in namespaces {
        let sockets = io
            .of(name)
            .map(|op| op.local().sockets())
            .unwrap_or_default();
        for s in &sockets {
            clients.insert(s.id);
            if s.transport_type() == TransportType::Polling {
                polling.insert(s.id);
            }
        }
        details.push(NamespaceDetails {
            name,
            sockets_count: sockets.len(),
        });
    }
    ServerStats {
        server_id: who.server_id.clone(),
        hostname: who.hostname.clone(),
        pid: who.pid,
        uptime: who.started.elapsed().as_secs_f64(),
        clients_count: clients.len(),
        polling_clients_count: polling.len(),
        aggregated_events: aggregated,
        namespaces: details,
    }
}

/// The machine's name, or `localhost` when it cannot be read.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`, which outlives the call.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if ok && !name.is_empty() => name.to_owned(),
        _ => "localhost".to_owned(),
    }
}

//! Liveness of the nodes of a cluster.
//!
//! Every node stamps its row in the shared presence each heartbeat and, on the same tick, looks
//! for nodes whose stamp is older than the timeout. The first survivor to delete a dead node's row
//! removes that node's presence and tells the rooms, as the dead node's sockets would have on
//! disconnecting: others hear `exit_room` for every person who is now gone from a room, numbers
//! in room replies drop, and its counsellors are no longer matched. A node that finds its own row
//! gone (it stalled past the timeout and was declared dead) disconnects its sockets, so that
//! they reconnect and come back into their rooms.
//!
//! What the rooms and sockets make of it is the caller's (see [`Membership`]): this module knows
//! the shared presence, not the protocols.
use std::time::Duration;

use tokio::sync::watch;

use crate::store::{Departed, SharedPresence};

/// What a node's comings and goings mean to the rest of the server.
pub trait Membership: Send + Sync + 'static {
    /// This node was taken for dead and is out of the shared presence: its sockets should
    /// reconnect, which puts them back.
    fn taken_for_dead(&self) -> impl Future<Output = ()> + Send;
    /// A node's presence was removed (a dead one's, or this node's on leaving): the rooms it was
    /// in should hear its sockets go.
    fn departed(&self, departed: Departed) -> impl Future<Output = ()> + Send;
    /// This node recorded itself alive.
    fn alive(&self) {}
}

/// Runs until `stop` turns true, then takes this node out of the shared presence.
pub async fn run(
    membership: impl Membership,
    shared: SharedPresence,
    heartbeat: Duration,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
    let mut every = tokio::time::interval(heartbeat);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => break,
        }
        match shared.heartbeat().await {
            Ok(true) => membership.alive(),
            Ok(false) => {
                tracing::warn!(
                    node = shared.node(),
                    "this node was taken for dead; its sockets reconnect to restore presence"
                );
                membership.taken_for_dead().await;
            }
            Err(e) => tracing::warn!(error = %e, "node heartbeat failed"),
        }
        let dead = match shared.dead_nodes(timeout_ms).await {
            Ok(dead) => dead,
            Err(e) => {
                tracing::warn!(error = %e, "looking for dead nodes failed");
                continue;
            }
        };
        for node in dead {
            remove(&membership, &shared, &node).await;
        }
    }
    remove(&membership, &shared, shared.node()).await;
}

/// Removes a node's presence and tells its rooms.
async fn remove(membership: &impl Membership, shared: &SharedPresence, node: &str) {
    match shared.remove_node(node).await {
        Ok(departed) => {
            tracing::info!(node, sockets = departed.sockets.len(), "node removed");
            membership.departed(departed).await;
        }
        Err(e) => tracing::error!(node, error = %e, "removing a dead node's presence failed"),
    }
}

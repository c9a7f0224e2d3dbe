//! Liveness of the nodes of a cluster.
//!
//! Every node stamps its row in the shared presence each heartbeat and, on the same tick, looks
//! for nodes whose stamp is older than the timeout. The first survivor to delete a dead node's row
//! removes that node's presence and tells the rooms, as the dead node's sockets would have on
//! disconnecting: others hear `exit_room` for every person who is now gone from a room, numbers
//! in room replies drop, and its counsellors are no longer matched. A node that finds its own row
//! gone (it stalled past the timeout and was declared dead) disconnects its sockets, so that
//! they reconnect and come back into their rooms.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::AppState;
use crate::store::SharedPresence;

/// Runs until `stop` turns true, then takes this node out of the shared presence.
pub async fn run(
    app: Arc<AppState>,
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
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    node = shared.node(),
                    "this node was taken for dead; its sockets reconnect to restore presence"
                );
                app.io.disconnect_local().await;
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
            remove(&app, &shared, &node).await;
        }
    }
    remove(&app, &shared, shared.node()).await;
}

/// Removes a node's presence and tells its rooms.
async fn remove(app: &AppState, shared: &SharedPresence, node: &str) {
    match shared.remove_node(node).await {
        Ok(departed) => {
            tracing::info!(node, sockets = departed.sockets.len(), "node removed");
            crate::bubble::announce_departures(app, departed).await;
        }
        Err(e) => tracing::error!(node, error = %e, "removing a dead node's presence failed"),
    }
}

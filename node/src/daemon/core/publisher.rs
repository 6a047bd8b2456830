//! Hands each round's envelopes to the network layer on a task of its own, so that the core
//! goes on with the next round (and answers this one) while the network task stores and
//! gossips them. Rounds go out one after another, in order; when a round is out, the core
//! is told, and only then forgets the copies kept for a crash (the engine's kept outputs,
//! the node's outbox): until that moment a stop publishes them again at the next start.

use std::sync::Arc;

use ds_p2p::engine::PublishReceipt;
use gossip::Topic;
use gossip::net::NodeHandle;
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::store::OutboxEntry;

/// A round's envelopes, in order, and what to forget once they are out.
pub(super) struct Round {
    pub envelopes: Vec<OutboxEntry>,
    pub done: Published,
}

/// What the core forgets once a round is out.
pub struct Published {
    pub receipt: PublishReceipt,
    /// The round's outbox entries (the node's own envelopes).
    pub outbox: Vec<u64>,
}

/// Rounds given to the publisher and not yet taken by it. A core that outruns the network
/// task waits here (as it waited for each round before the publisher existed), so rounds do
/// not pile up in memory.
const ROUNDS_QUEUED: usize = 64;

/// Starts the publishing task; it ends when the returned sender is dropped, after the rounds
/// already given to it.
pub(super) fn start(
    net: NodeHandle,
    metrics: Arc<Metrics>,
) -> (mpsc::Sender<Round>, mpsc::UnboundedReceiver<Published>) {
    let (rounds_tx, mut rounds) = mpsc::channel::<Round>(ROUNDS_QUEUED);
    let (done_tx, done) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(round) = rounds.recv().await {
            publish_all(&net, &metrics, round.envelopes).await;
            if done_tx.send(round.done).is_err() {
                break;
            }
        }
    });
    (rounds_tx, done)
}

/// Hands envelopes to the network layer, in order, in one request.
pub(super) async fn publish_all(net: &NodeHandle, metrics: &Metrics, entries: Vec<OutboxEntry>) {
    let mut envelopes = Vec::with_capacity(entries.len());
    for entry in entries {
        match Topic::new(entry.topic.clone()) {
            Ok(topic) => envelopes.push((topic, entry.envelope)),
            Err(_) => tracing::error!(topic = %entry.topic, "engine produced an invalid topic"),
        }
    }
    let topics: Vec<Topic> = envelopes.iter().map(|(t, _)| t.clone()).collect();
    match net.publish_many(envelopes).await {
        Ok(results) => {
            for (topic, result) in topics.iter().zip(results) {
                match result {
                    Ok(_) => {
                        metrics.envelopes_published.inc();
                    }
                    Err(e) => tracing::warn!(%topic, error = %e, "publish failed"),
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "publish failed: the network task is gone"),
    }
}

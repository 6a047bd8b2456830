//! A peer that publishes garbage: it is rejected by the validator on pubsub and on sync,
//! never stored or delivered by honest nodes, its score drops, and honest traffic flows on.

use crate::support::{TestNode, connect, honest, topic};
use gossip::net::Via;

/// What the bad node accepts: everything (so its own log holds its garbage and it serves it
/// on sync).
fn anything(_: &gossip::Topic, _: &[u8]) -> bool {
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_rejected_and_honest_nodes_keep_working() {
    let mut a = TestNode::start(honest).await;
    let mut b = TestNode::start(honest).await;
    let mut m = TestNode::start(anything).await;
    for node in [&a, &b, &m] {
        node.join().await;
    }
    connect(&mut a, &mut b).await;
    connect(&mut m, &mut a).await;
    connect(&mut m, &mut b).await;

    // Two pieces of garbage (a third would push M below the graylist threshold, after which
    // A would ignore M altogether — also fine, but then nothing more would be observable).
    let garbage = [b"garbage #1".to_vec(), b"garbage #2".to_vec()];
    for envelope in &garbage {
        let published = m.handle.publish(&topic(), envelope.clone()).await.unwrap();
        assert!(published.gossiped, "M knows A and B are on the topic");
    }
    let (pm, pa) = (m.peer_id(), a.peer_id());
    for node in [&mut a, &mut b] {
        node.wait_until("M's garbage rejected on pubsub", |seen| {
            seen.rejected
                .iter()
                .filter(|(from, via, _)| *from == pm && *via == Via::Gossip)
                .count()
                >= garbage.len()
        })
        .await;
        let score = node
            .handle
            .peer_score(pm)
            .await
            .unwrap()
            .expect("scoring is on");
        assert!(score < 0.0, "M's score is {score}");
    }

    // Sync both ways with M. A does not fetch M's garbage (it remembers refusing it);
    // M pushes it to A, and A refuses it again, before answering M.
    a.sync_all().await;
    m.sync_all().await;
    assert!(m.seen.synced.iter().any(|s| s.0 == pa), "{:?}", m.seen);
    a.drain();
    let refused_on_sync = a
        .seen
        .rejected
        .iter()
        .filter(|(from, via, _)| *from == pm && *via == Via::Sync)
        .count();
    assert!(refused_on_sync >= garbage.len(), "{:?}", a.seen);

    // Honest traffic still flows, both ways.
    let from_a = b"chorus: still here".to_vec();
    let from_b = b"chorus: me too".to_vec();
    a.publish(&from_a).await;
    b.publish(&from_b).await;
    b.wait_until("a's envelope", |seen| seen.got(&from_a)).await;
    a.wait_until("b's envelope", |seen| seen.got(&from_b)).await;

    for node in [&mut a, &mut b] {
        node.drain();
        node.seen.assert_no_duplicates();
        for envelope in &garbage {
            assert!(
                !node.seen.got(envelope),
                "garbage delivered: {:?}",
                node.seen
            );
            let id = gossip::EnvelopeId::of(envelope);
            assert!(
                !node.handle.has(&topic(), id).await.unwrap(),
                "garbage stored"
            );
        }
    }
}

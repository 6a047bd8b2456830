//! Live delivery: what one node publishes reaches the others, each envelope once.

use gossip::log::LogConfig;
use gossip::net::{NetConfig, NetError};

use crate::support::{TestNode, connect, connected_pair, honest, topic};

/// Two connected nodes on a topic receive each other's envelopes, once each, and never
/// their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_published_envelopes() {
    let (mut a, mut b) = connected_pair().await;

    let from_a = b"chorus: hello from a".to_vec();
    let from_b = b"chorus: hello from b".to_vec();
    a.publish(&from_a).await;
    b.publish(&from_b).await;

    b.wait_until("a's envelope", |seen| seen.got(&from_a)).await;
    a.wait_until("b's envelope", |seen| seen.got(&from_b)).await;

    // A sync round after the fact moves nothing and delivers nothing again.
    a.sync_all().await;
    b.sync_all().await;
    a.drain();
    b.drain();
    for node in [&a, &b] {
        node.seen.assert_no_duplicates();
        assert_eq!(node.seen.received.len(), 1, "{:?}", node.seen);
    }
    assert_eq!(a.seen.received[0].2, b.peer_id());
    assert_eq!(b.seen.received[0].2, a.peer_id());
}

/// In a line A - B - C, envelopes travel end to end through the middle node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_in_a_line_relay_through_the_middle() {
    // Kademlia in client mode: in server mode, A's automatic DHT bootstrap would learn C
    // from B and connect to it, and the line would not stay a line.
    let config = || NetConfig {
        kad_server: false,
        ..NetConfig::loopback()
    };
    let mut a = TestNode::start_with(config(), honest).await;
    let mut b = TestNode::start_with(config(), honest).await;
    let mut c = TestNode::start_with(config(), honest).await;
    for node in [&a, &b, &c] {
        node.join().await;
    }
    connect(&mut a, &mut b).await;
    connect(&mut c, &mut b).await;

    let sent: Vec<Vec<u8>> = (0..3)
        .map(|i| format!("chorus: from a #{i}").into_bytes())
        .collect();
    for envelope in &sent {
        a.publish(envelope).await;
    }
    let from_c = b"chorus: from c".to_vec();
    c.publish(&from_c).await;

    c.wait_until("all of a's envelopes", |seen| {
        sent.iter().all(|e| seen.got(e))
    })
    .await;
    a.wait_until("c's envelope", |seen| seen.got(&from_c)).await;
    b.wait_until("everything", |seen| {
        seen.got(&from_c) && sent.iter().all(|e| seen.got(e))
    })
    .await;
    for node in [&mut a, &mut b, &mut c] {
        node.drain();
        node.seen.assert_no_duplicates();
    }
    assert!(!a.handle.peers().await.unwrap().contains(&c.peer_id()));
}

/// `publish_many` stores and gossips each envelope as `publish` would, in order, and answers
/// for each: an oversized one is refused without holding up the others, and one already
/// published is reported as not newly stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_many_answers_each_envelope_in_order() {
    let (a, mut b) = connected_pair().await;

    let first = b"chorus: first of a round".to_vec();
    let second = b"chorus: second of a round".to_vec();
    let oversized = vec![7u8; LogConfig::default().max_envelope_bytes + 1];
    let results = a
        .handle
        .publish_many(vec![
            (topic(), first.clone()),
            (topic(), oversized),
            (topic(), second.clone()),
            (topic(), first.clone()),
        ])
        .await
        .expect("the node is running");
    assert_eq!(results.len(), 4, "{results:?}");
    let first_id = results[0].as_ref().expect("first published").id;
    assert!(results[0].as_ref().unwrap().stored);
    assert!(
        matches!(results[1], Err(NetError::EnvelopeTooLarge { .. })),
        "{:?}",
        results[1]
    );
    assert!(results[2].as_ref().expect("second published").stored);
    let again = results[3].as_ref().expect("a duplicate is not an error");
    assert_eq!(again.id, first_id);
    assert!(!again.stored);

    b.wait_until("both envelopes", |seen| {
        seen.got(&first) && seen.got(&second)
    })
    .await;
    b.drain();
    b.seen.assert_no_duplicates();
    assert_eq!(b.seen.received.len(), 2, "{:?}", b.seen);
}

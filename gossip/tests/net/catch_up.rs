//! Store-and-forward: a node that was not there gets what it missed through sync, once.

use std::collections::HashSet;

use gossip::net::Via;

use crate::support::{TestNode, connect, connected_pair, honest, topic};

/// C starts after A and B exchanged envelopes; on connecting it gets every one of them
/// through sync (gossipsub does not replay), each delivered once. Then C stops, A publishes
/// more, and C, restarted over the same log, gets exactly the new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_and_returning_nodes_catch_up_through_sync_once() {
    let (mut a, mut b) = connected_pair().await;

    let first: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("chorus: before c #{i}").into_bytes())
        .collect();
    for envelope in &first {
        a.publish(envelope).await;
    }
    b.wait_until("a's envelopes", |seen| first.iter().all(|e| seen.got(e)))
        .await;

    // C was not running while that happened.
    let mut c = TestNode::start(honest).await;
    c.join().await;
    connect(&mut c, &mut a).await;
    c.wait_until("everything it missed", |seen| {
        first.iter().all(|e| seen.got(e))
    })
    .await;
    c.sync_all().await;
    c.drain();
    c.seen.assert_no_duplicates();
    assert_eq!(c.seen.received.len(), first.len(), "{:?}", c.seen);
    assert!(
        c.seen
            .received
            .iter()
            .all(|(_, _, _, via)| *via == Via::Sync)
    );

    // C goes away; A publishes while it is gone.
    let (store, keypair, before) = c.stop().await;
    let while_away: Vec<Vec<u8>> = (0..3)
        .map(|i| format!("chorus: while c was away #{i}").into_bytes())
        .collect();
    for envelope in &while_away {
        a.publish(envelope).await;
    }

    // C comes back over the same log: it gets the new envelopes, and the old ones are not
    // delivered again.
    let mut c = TestNode::start_over(store, keypair, honest).await;
    for envelope in &first {
        let id = gossip::EnvelopeId::of(envelope);
        assert!(c.handle.has(&topic(), id).await.unwrap(), "log kept {id:?}");
    }
    c.join().await;
    connect(&mut c, &mut a).await;
    c.wait_until("what it missed while away", |seen| {
        while_away.iter().all(|e| seen.got(e))
    })
    .await;
    c.sync_all().await;
    c.drain();
    c.seen.assert_no_duplicates();
    let old: HashSet<_> = before.received.iter().map(|r| r.0).collect();
    assert!(c.seen.received.iter().all(|r| !old.contains(&r.0)));
    assert_eq!(c.seen.received.len(), while_away.len(), "{:?}", c.seen);
}

/// A node publishing with no peer at all keeps the envelope, and the first peer to connect
/// gets it through sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_published_alone_are_delivered_on_first_contact() {
    let mut a = TestNode::start(honest).await;
    a.join().await;
    let lonely = b"chorus: anyone there?".to_vec();
    let published = a
        .handle
        .publish(&topic(), lonely.clone())
        .await
        .expect("publish without peers");
    assert!(published.stored);
    assert!(!published.gossiped);

    let mut b = TestNode::start(honest).await;
    b.join().await;
    connect(&mut b, &mut a).await;
    b.wait_until("the envelope published before it came", |seen| {
        seen.got(&lonely)
    })
    .await;
    assert!(b.handle.has(&topic(), published.id).await.unwrap());
}

/// Routine anti-entropy rounds reconcile only recent envelopes; a full session (here on
/// demand) reconciles the whole log. An hour-old envelope appears in A's log behind its back
/// (as one a third peer brought would): B's routine rounds with A, after their first (full)
/// one, do not hand it over, and `sync_now` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routine_rounds_reconcile_recent_envelopes_and_full_sessions_all() {
    let routine = || {
        let mut config = gossip::net::NetConfig::loopback();
        config.sync.anti_entropy_interval = std::time::Duration::from_millis(200);
        config.sync.recent_window_ms = 60_000;
        config.sync.full_sync_interval = std::time::Duration::from_secs(3600);
        config
    };
    let mut a = TestNode::start_with(routine(), honest).await;
    let mut b = TestNode::start_with(routine(), honest).await;
    a.join().await;
    b.join().await;
    connect(&mut a, &mut b).await;
    // Each side's first routine round is a full one: wait until later rounds have ended.
    let (pa, pb) = (a.peer_id(), b.peer_id());
    let (a_first, b_first) = (a.seen.sessions_with(pb), b.seen.sessions_with(pa));
    b.wait_until("two routine rounds with a", |seen| {
        seen.sessions_with(pa) >= b_first + 2
    })
    .await;
    a.wait_until("two routine rounds with b", |seen| {
        seen.sessions_with(pb) >= a_first + 2
    })
    .await;

    let old = b"chorus: from an hour ago".to_vec();
    let an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 3_600_000;
    let appended = gossip::Log::open(
        std::sync::Arc::clone(&a.store),
        gossip::LogConfig::default(),
    )
    .unwrap()
    .append(&topic(), &old, an_hour_ago)
    .unwrap();
    assert!(matches!(appended, gossip::Appended::Stored { .. }));

    let after = b.seen.sessions_with(pa);
    b.wait_until("five more routine rounds with a", |seen| {
        seen.sessions_with(pa) >= after + 5
    })
    .await;
    assert!(
        !b.seen.got(&old),
        "a routine round handed over an hour-old envelope: {:?}",
        b.seen
    );
    b.sync_all().await;
    b.drain();
    assert!(b.seen.got(&old), "a full session did not: {:?}", b.seen);
    b.seen.assert_no_duplicates();
}

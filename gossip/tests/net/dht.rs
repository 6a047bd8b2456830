//! DHT records through `NodeHandle::put_record` and `get_record`, between real nodes whose
//! Kademlia runs in server mode (`NetConfig::loopback`).

use std::time::Duration;

use gossip::net::{MAX_RECORD_KEY_BYTES, MAX_RECORD_VALUE_BYTES, NetConfig, NetError, PeerId};
use tokio::time::Instant;

use crate::support::{TIMEOUT, TestNode, honest};

/// Waits until `node`'s Kademlia routing table holds every one of `peers` (learnt through
/// identify once connected). Polls, failing the test after [`TIMEOUT`].
async fn wait_for_routing(node: &TestNode, peers: &[PeerId]) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let known = node.handle.dht_peers().await.expect("running");
        if peers.iter().all(|p| known.contains(p)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "routing table of {} never held {peers:?}; it holds {known:?}",
            node.peer_id()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// In a line A - B - C (A and C are not dialled to each other), what A puts C gets through
/// the DHT, still after A has gone (so the put reached other nodes), and a key nobody put is
/// answered `None` well within the query timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_put_at_one_end_of_a_line_is_found_at_the_other() {
    let a = TestNode::start(honest).await;
    let b = TestNode::start(honest).await;
    let c = TestNode::start(honest).await;
    let (pa, pb, pc) = (a.peer_id(), b.peer_id(), c.peer_id());
    a.handle.dial(b.addr.clone()).await.expect("dial");
    c.handle.dial(b.addr.clone()).await.expect("dial");
    wait_for_routing(&a, &[pb]).await;
    wait_for_routing(&b, &[pa, pc]).await;
    wait_for_routing(&c, &[pb]).await;

    let key = b"chorus/test/record".to_vec();
    let value = b"a value from a".to_vec();
    a.handle
        .put_record(key.clone(), value.clone())
        .await
        .expect("put");
    let found = c.handle.get_record(key.clone()).await.expect("get");
    assert_eq!(found, Some(value.clone()));

    a.handle.shutdown().await.expect("shutdown");
    let found = c.handle.get_record(key).await.expect("get without a");
    assert_eq!(
        found,
        Some(value),
        "the record lives on B or C, not only on A"
    );

    let started = Instant::now();
    let missing = c.handle.get_record(b"nobody put this".to_vec()).await;
    assert!(matches!(missing, Ok(None)), "{missing:?}");
    assert!(started.elapsed() < NetConfig::loopback().kad_query_timeout);
}

/// A node without peers stores locally (the put succeeds) and finds its own record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_node_keeps_its_record_locally() {
    let a = TestNode::start(honest).await;
    a.handle
        .put_record(b"key".to_vec(), b"value".to_vec())
        .await
        .expect("put without peers");
    let found = a.handle.get_record(b"key".to_vec()).await.expect("get");
    assert_eq!(found, Some(b"value".to_vec()));
    let missing = a.handle.get_record(b"other".to_vec()).await.expect("get");
    assert_eq!(missing, None);
}

/// Keys and values over the limits are refused with their error and go nowhere (not even
/// the local store); records at the limits travel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_records_are_refused_and_records_at_the_limits_travel() {
    let a = TestNode::start(honest).await;
    let b = TestNode::start(honest).await;
    a.handle.dial(b.addr.clone()).await.expect("dial");
    wait_for_routing(&a, &[b.peer_id()]).await;
    wait_for_routing(&b, &[a.peer_id()]).await;

    let long_key = vec![7u8; MAX_RECORD_KEY_BYTES + 1];
    let put = a.handle.put_record(long_key.clone(), b"v".to_vec()).await;
    assert!(
        matches!(put, Err(NetError::RecordKeyTooLarge { len, max })
            if len == MAX_RECORD_KEY_BYTES + 1 && max == MAX_RECORD_KEY_BYTES),
        "{put:?}"
    );
    let get = a.handle.get_record(long_key).await;
    assert!(
        matches!(get, Err(NetError::RecordKeyTooLarge { .. })),
        "{get:?}"
    );

    let key = b"too large".to_vec();
    let big_value = vec![1u8; MAX_RECORD_VALUE_BYTES + 1];
    let put = a.handle.put_record(key.clone(), big_value).await;
    assert!(
        matches!(put, Err(NetError::RecordValueTooLarge { len, max })
            if len == MAX_RECORD_VALUE_BYTES + 1 && max == MAX_RECORD_VALUE_BYTES),
        "{put:?}"
    );
    assert_eq!(a.handle.get_record(key.clone()).await.expect("get"), None);
    assert_eq!(b.handle.get_record(key).await.expect("get"), None);

    // At the limits: B is A's only peer, so the put succeeding means B stored it.
    let key = vec![9u8; MAX_RECORD_KEY_BYTES];
    let value = vec![3u8; MAX_RECORD_VALUE_BYTES];
    a.handle
        .put_record(key.clone(), value.clone())
        .await
        .expect("put at the limits");
    a.handle.shutdown().await.expect("shutdown");
    assert_eq!(b.handle.get_record(key).await.expect("get"), Some(value));
}

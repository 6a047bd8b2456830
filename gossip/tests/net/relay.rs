//! NAT traversal, the part loopback can show: a node that listens through a relay is
//! reachable at its circuit address. (Hole punching needs real NATs and public addresses;
//! relayed connections are limited, so gossip and sync wait for the direct connection that
//! DCUtR makes there.)

use gossip::net::{Multiaddr, NetConfig};
use libp2p::multiaddr::Protocol;

use crate::support::{TestNode, honest};

fn is_circuit(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_listening_through_a_relay_is_reachable_there() {
    let relay = TestNode::start_with(
        NetConfig {
            relay_server: true,
            ..NetConfig::loopback()
        },
        honest,
    )
    .await;
    // A relay serves only once it knows an address others reach it at.
    relay
        .handle
        .add_external_address(relay.addr.clone())
        .await
        .unwrap();
    let relay_addr = relay.addr.clone().with(Protocol::P2p(relay.peer_id()));

    let mut a = TestNode::start_with(
        NetConfig {
            relays: vec![relay_addr.clone()],
            ..NetConfig::loopback()
        },
        honest,
    )
    .await;
    a.wait_until("a reservation at the relay", |seen| {
        seen.listening.iter().any(is_circuit)
    })
    .await;

    let mut b = TestNode::start(honest).await;
    let circuit = relay_addr
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(a.peer_id()));
    b.handle
        .dial(circuit)
        .await
        .expect("dial through the relay");
    let pa = a.peer_id();
    b.wait_until("a connection to A through the relay", |seen| {
        seen.connected.contains(&pa)
    })
    .await;
    let pb = b.peer_id();
    a.wait_until("B's connection through the relay", |seen| {
        seen.connected.contains(&pb)
    })
    .await;
}

//! The network layer with real libp2p swarms on loopback: live delivery, catching up through
//! sync after being away, hostile peers, reaching a node through a relay, and DHT records.
//! One test binary, so libp2p is linked once.

mod catch_up;
mod dht;
mod exchange;
mod hostile;
mod relay;
mod support;

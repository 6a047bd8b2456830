//! The network layer with real libp2p swarms on loopback: live delivery, catching up through
//! sync after being away, hostile peers, and reaching a node through a relay. One test binary, so libp2p is linked once.

mod catch_up;
mod exchange;
mod hostile;
mod relay;
mod support;

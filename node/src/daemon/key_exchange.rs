//! Getting a contact's KeyPackage to invite them: a request on their inbox topic, answered by
//! their node with a fresh one-time KeyPackage on the requester's inbox topic.
//!
//! Both travel as `KeyPackage` envelopes (which the group engine does not take); the payload is
//! [`KeyPackageMessage`]. A node answers at most [`MAX_OFFERS_PER_MINUTE`] requests a minute,
//! so a stranger cannot drain it of KeyPackages or CPU.

use ds_p2p::wire::{Envelope, EnvelopeKind, GroupRef};
use serde::{Deserialize, Serialize};

pub const MAX_OFFERS_PER_MINUTE: usize = 30;
const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyPackageMessage {
    /// "Send me one of your KeyPackages": `reply_to` is the requester's credential identity,
    /// whose inbox topic the offer goes to.
    Request { nonce: [u8; 16], reply_to: Vec<u8> },
    /// A fresh KeyPackage (RFC 9420 bytes) answering the request with this nonce.
    Offer {
        nonce: [u8; 16],
        key_package: Vec<u8>,
    },
}

impl KeyPackageMessage {
    pub fn envelope(&self) -> Vec<u8> {
        let payload = identity_tofu::codec::encode(self).expect("key package messages encode");
        Envelope::new(EnvelopeKind::KeyPackage, GroupRef([0; 16]), payload)
            .encode()
            .expect("a key package envelope is within limits")
    }

    pub fn from_payload(payload: &[u8]) -> Result<Self, identity_tofu::codec::CodecError> {
        identity_tofu::codec::decode(payload, MAX_MESSAGE)
    }
}

/// Counts offers in the current minute.
#[derive(Debug, Default)]
pub struct OfferBudget {
    minute: u64,
    used: usize,
}

impl OfferBudget {
    /// True (and counted) if another offer may go out at `now_ms`.
    pub fn take(&mut self, now_ms: u64) -> bool {
        let minute = now_ms / 60_000;
        if minute != self.minute {
            self.minute = minute;
            self.used = 0;
        }
        if self.used >= MAX_OFFERS_PER_MINUTE {
            return false;
        }
        self.used += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let m = KeyPackageMessage::Request {
            nonce: [3; 16],
            reply_to: vec![1, 2, 3],
        };
        let env = Envelope::decode(&m.envelope(), &Default::default()).unwrap();
        assert_eq!(KeyPackageMessage::from_payload(&env.payload).unwrap(), m);
        assert!(KeyPackageMessage::from_payload(b"\xff\x00junk").is_err());
    }

    #[test]
    fn the_offer_budget_refills_each_minute() {
        let mut b = OfferBudget::default();
        for _ in 0..MAX_OFFERS_PER_MINUTE {
            assert!(b.take(1_000));
        }
        assert!(!b.take(59_000));
        assert!(b.take(60_000));
    }
}

//! A redelivery: several of one sender's own messages sent again in one MLS application
//! message. After a heal every member of the winning side re-sends what it sent since the
//! fork; one MLS message (one encryption, one gossip message) per re-send rather than one per
//! message. Its authenticated data lists the ids it carries, so a member that has them all
//! drops it unread, as it drops a single replayed message by its id. The same form carries a
//! batch of new messages (`Engine::send_many`: the sends an embedder has at once): to a
//! receiver a bundle is a bundle, each message in it read once by its id.
//!
//! A redelivery request asks the senders of messages a member could not read (they came for
//! a state it no longer holds) to send them again: an MLS application message with no body
//! whose authenticated data lists the ids. Only the sender of a message keeps it, so only it
//! answers.

use serde::{Deserialize, Serialize};

use super::WireLimits;
use super::application::{ApplicationPayload, MessageId};
use super::envelope::{WireError, decode_limited, encode};

/// Messages in one redelivery at most; more go in several.
pub const MAX_REDELIVERY_MESSAGES: usize = 64;

/// The first byte of a redelivery's authenticated data; the ids follow. A single message's
/// authenticated data is its 16-byte id, and `1 + 16 n` is never 16.
const REDELIVERY_TAG: u8 = b'R';
/// The first byte of a redelivery request's authenticated data; the ids follow.
const REQUEST_TAG: u8 = b'Q';

/// The plaintext of a redelivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redelivery {
    pub messages: Vec<ApplicationPayload>,
}

/// What an application message's authenticated data says it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarriedIds {
    One(MessageId),
    Redelivery(Vec<MessageId>),
    /// Not a message: a request to send these again.
    Request(Vec<MessageId>),
}

impl CarriedIds {
    /// Reads authenticated data: a 16-byte id, or a redelivery's (or a request's) tag and ids.
    pub fn parse(aad: &[u8]) -> Option<Self> {
        if let Ok(id) = <[u8; 16]>::try_from(aad) {
            return Some(Self::One(MessageId(id)));
        }
        let (&tag, ids) = aad.split_first()?;
        if ids.is_empty()
            || !ids.len().is_multiple_of(16)
            || ids.len() / 16 > MAX_REDELIVERY_MESSAGES
        {
            return None;
        }
        let ids = ids
            .chunks_exact(16)
            .map(|c| MessageId(c.try_into().expect("chunks of 16")))
            .collect();
        match tag {
            REDELIVERY_TAG => Some(Self::Redelivery(ids)),
            REQUEST_TAG => Some(Self::Request(ids)),
            _ => None,
        }
    }

    /// The ids of the messages carried (none for a request).
    pub fn ids(&self) -> &[MessageId] {
        match self {
            Self::One(id) => std::slice::from_ref(id),
            Self::Redelivery(ids) => ids,
            Self::Request(_) => &[],
        }
    }

    /// The authenticated data of a request for `ids` (at most [`MAX_REDELIVERY_MESSAGES`]).
    pub fn request_aad(ids: &[MessageId]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(1 + 16 * ids.len());
        aad.push(REQUEST_TAG);
        for id in ids.iter().take(MAX_REDELIVERY_MESSAGES) {
            aad.extend_from_slice(&id.0);
        }
        aad
    }
}

impl Redelivery {
    /// The authenticated data that goes with it: the tag, then the ids in order.
    pub fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(1 + 16 * self.messages.len());
        aad.push(REDELIVERY_TAG);
        for m in &self.messages {
            aad.extend_from_slice(&m.id.0);
        }
        aad
    }

    /// Cuts `messages` into redeliveries that fit: at most [`MAX_REDELIVERY_MESSAGES`] each,
    /// and bodies of at most a quarter of an envelope in total (a message alone may be larger:
    /// it fits on its own, as it did when it was first sent).
    pub fn chunks(messages: Vec<ApplicationPayload>, limits: &WireLimits) -> Vec<Self> {
        let budget = limits.max_envelope_bytes / 4;
        let mut out: Vec<Self> = Vec::new();
        let mut bytes = 0;
        for m in messages {
            let full = out.last().is_none_or(|r| {
                r.messages.len() >= MAX_REDELIVERY_MESSAGES || bytes + m.body.len() > budget
            });
            if full {
                out.push(Self {
                    messages: Vec::new(),
                });
                bytes = 0;
            }
            bytes += m.body.len();
            out.last_mut().expect("pushed above").messages.push(m);
        }
        out
    }

    /// The encoded bytes (the MLS plaintext).
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        encode("redelivery", self)
    }

    /// Decodes a decrypted plaintext, bounded by the envelope limit; every body by the body
    /// limit; and the ids must be the ones `carried` (the authenticated data) lists, in order.
    pub fn decode(
        bytes: &[u8],
        limits: &WireLimits,
        carried: &[MessageId],
    ) -> Result<Self, WireError> {
        let redelivery: Self = decode_limited("redelivery", bytes, limits.max_envelope_bytes)?;
        if let Some(m) = redelivery
            .messages
            .iter()
            .find(|m| m.body.len() > limits.max_body_bytes)
        {
            return Err(WireError::TooLarge {
                what: "message body",
                len: m.body.len(),
                max: limits.max_body_bytes,
            });
        }
        if !redelivery
            .messages
            .iter()
            .map(|m| m.id)
            .eq(carried.iter().copied())
        {
            return Err(WireError::Invalid {
                what: "redelivery",
                why: "its ids are not the ones its authenticated data lists".into(),
            });
        }
        Ok(redelivery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(n: u8, body_len: usize) -> ApplicationPayload {
        ApplicationPayload {
            id: MessageId([n; 16]),
            sent_at_ms: u64::from(n),
            body: vec![n; body_len],
        }
    }

    #[test]
    fn a_redelivery_round_trips_with_its_authenticated_data() {
        let r = Redelivery {
            messages: vec![message(1, 10), message(2, 0), message(3, 300)],
        };
        let carried = CarriedIds::parse(&r.aad()).unwrap();
        assert_eq!(
            carried.ids(),
            &[MessageId([1; 16]), MessageId([2; 16]), MessageId([3; 16])]
        );
        let back = Redelivery::decode(&r.encode().unwrap(), &WireLimits::default(), carried.ids());
        assert_eq!(back.unwrap(), r);
    }

    #[test]
    fn a_single_id_is_not_a_redelivery_and_junk_is_neither() {
        assert_eq!(
            CarriedIds::parse(&[9; 16]),
            Some(CarriedIds::One(MessageId([9; 16])))
        );
        assert_eq!(CarriedIds::parse(&[]), None);
        assert_eq!(CarriedIds::parse(&[REDELIVERY_TAG]), None);
        assert_eq!(CarriedIds::parse(&[REDELIVERY_TAG, 1, 2, 3]), None);
        assert_eq!(CarriedIds::parse(&[b'X'; 17]), None);
        let ids = [MessageId([4; 16]), MessageId([5; 16])];
        let request = CarriedIds::parse(&CarriedIds::request_aad(&ids)).unwrap();
        assert_eq!(request, CarriedIds::Request(ids.to_vec()));
        assert!(request.ids().is_empty(), "a request carries no message");
        let too_many = [REDELIVERY_TAG]
            .into_iter()
            .chain(std::iter::repeat_n(0, 16 * (MAX_REDELIVERY_MESSAGES + 1)))
            .collect::<Vec<_>>();
        assert_eq!(CarriedIds::parse(&too_many), None);
    }

    #[test]
    fn ids_other_than_the_authenticated_ones_are_refused() {
        let r = Redelivery {
            messages: vec![message(1, 1), message(2, 1)],
        };
        let bytes = r.encode().unwrap();
        let limits = WireLimits::default();
        for carried in [
            vec![MessageId([2; 16]), MessageId([1; 16])],
            vec![MessageId([1; 16])],
            vec![MessageId([1; 16]), MessageId([2; 16]), MessageId([3; 16])],
        ] {
            let err = Redelivery::decode(&bytes, &limits, &carried).unwrap_err();
            assert!(matches!(err, WireError::Invalid { .. }), "{err}");
        }
    }

    #[test]
    fn a_body_over_the_limit_is_refused() {
        let r = Redelivery {
            messages: vec![message(1, 1), message(2, 17)],
        };
        let limits = WireLimits {
            max_body_bytes: 16,
            ..WireLimits::default()
        };
        let err = Redelivery::decode(
            &r.encode().unwrap(),
            &limits,
            &r.aad()[1..]
                .chunks(16)
                .map(|c| MessageId(c.try_into().unwrap()))
                .collect::<Vec<_>>(),
        )
        .unwrap_err();
        assert!(matches!(err, WireError::TooLarge { len: 17, .. }), "{err}");
    }

    #[test]
    fn chunks_keep_the_order_and_both_bounds() {
        let limits = WireLimits {
            max_envelope_bytes: 4000,
            ..WireLimits::default()
        };
        let messages: Vec<_> = (0..150).map(|n| message(n, 10)).collect();
        let chunks = Redelivery::chunks(messages.clone(), &limits);
        assert_eq!(
            chunks.iter().map(|c| c.messages.len()).collect::<Vec<_>>(),
            vec![64, 64, 22]
        );
        let flat: Vec<_> = chunks.into_iter().flat_map(|c| c.messages).collect();
        assert_eq!(flat, messages);
        // A quarter of 4,000 bytes is 1,000: two 600-byte bodies do not share one.
        let big = vec![
            message(1, 600),
            message(2, 600),
            message(3, 300),
            message(4, 2000),
        ];
        let sizes: Vec<_> = Redelivery::chunks(big, &limits)
            .iter()
            .map(|c| c.messages.len())
            .collect();
        assert_eq!(sizes, vec![1, 2, 1]);
        assert!(Redelivery::chunks(Vec::new(), &limits).is_empty());
    }
}

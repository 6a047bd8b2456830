//! Envelopes the engine queued for publishing and the embedder has not yet confirmed sent,
//! kept so that a crash between the engine's step and the embedder's own write loses nothing.
//!
//! A step that makes a commit or encrypts a message stores the new state at once; the
//! embedder (the node) publishes the envelope later, when its round is durable. Killed in
//! between, the node would restart in an epoch — or past a ratchet generation — that no one
//! else will ever hear of: its own commit wins the tie-break on its side only, and the group
//! stays split for good. With [`EngineConfig::confirm_publish`](super::EngineConfig) on, every
//! envelope queued inside a step is stored in that step's batch; the embedder calls
//! [`Engine::confirm_published`] once it has handed the envelopes it polled to the network,
//! and at start [`Engine::take_unpublished`] gives back what a stopped run never sent.
//!
//! ```text
//! o <group ref 16> <sequence 8, big-endian>   -> KeptOutput
//! ```

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, Output};
use crate::storage::{StagedStore, StorageError};
use crate::wire::GroupRef;

const KEPT_OUTPUT: u8 = b'o';
/// An envelope is bounded by the wire limits; this bounds a damaged value.
const MAX_KEPT_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KeptOutput {
    topic: String,
    envelope: Vec<u8>,
}

fn key(group: &GroupRef, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(KEPT_OUTPUT);
    key.extend_from_slice(&group.0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn storage(e: identity_tofu::kv::KvError) -> EngineError {
    EngineError::Storage(StorageError::from(e))
}

/// Kept envelopes an embedder has taken to publish, confirmed together once the network
/// holds them (see [`Engine::publish_receipt`]).
#[derive(Debug, Default)]
#[must_use = "a receipt not confirmed leaves its envelopes kept, published again at the next start"]
pub struct PublishReceipt(Vec<Vec<u8>>);

impl PublishReceipt {
    /// How many kept envelopes it covers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Which queued outputs are kept in the store, by their place in the output stream.
#[derive(Debug, Default)]
pub(crate) struct OutputLedger {
    /// Outputs handed to the embedder so far (this process).
    polled: u64,
    /// The next sequence number for a kept envelope.
    next_seq: u64,
    /// Kept envelopes still queued or just polled: (place in the output stream, store key).
    kept: VecDeque<(u64, Vec<u8>)>,
    /// Kept envelopes the embedder has taken: the next confirmation forgets them.
    taken: Vec<Vec<u8>>,
}

impl OutputLedger {
    /// The ledger of an engine opening `staged`: sequence numbers go on after the kept
    /// envelopes a previous run left.
    pub(crate) fn resume(staged: &StagedStore) -> Result<Self, EngineError> {
        let mut next_seq = 0;
        for (k, _) in staged.scan_prefix(&[KEPT_OUTPUT]).map_err(storage)? {
            next_seq = next_seq.max(seq_of(&k)? + 1);
        }
        Ok(Self {
            next_seq,
            ..Self::default()
        })
    }

    /// Notes that the embedder took one more output.
    pub(crate) fn polled_one(&mut self) {
        self.polled += 1;
        while self
            .kept
            .front()
            .is_some_and(|(place, _)| *place < self.polled)
        {
            if let Some((_, key)) = self.kept.pop_front() {
                self.taken.push(key);
            }
        }
    }

    /// Forgets kept envelopes queued from `queued_before` on (a failed step withdrew those
    /// outputs; its store writes were rolled back with it).
    pub(crate) fn withdraw_from(&mut self, queued_before: usize) {
        let from = self.polled + queued_before as u64;
        while self.kept.back().is_some_and(|(place, _)| *place >= from) {
            self.kept.pop_back();
        }
    }
}

fn seq_of(key: &[u8]) -> Result<u64, EngineError> {
    key.get(17..)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt(format!("key {}", hex::encode(key))))
}

impl Engine {
    /// Queues an envelope for publishing; with `confirm_publish` it is also stored (in the
    /// open step's batch, or at once outside a step) until confirmed.
    pub(crate) fn queue_publish(
        &mut self,
        group: GroupRef,
        topic: String,
        envelope: Vec<u8>,
    ) -> Result<(), EngineError> {
        if self.config.confirm_publish {
            let place = self.ledger.polled + self.outputs.len() as u64;
            let seq = self.ledger.next_seq;
            let key = key(&group, seq);
            let value = identity_tofu::codec::encode(&KeptOutput {
                topic: topic.clone(),
                envelope: envelope.clone(),
            })
            .map_err(|e| EngineError::Refused(format!("an envelope cannot be encoded: {e}")))?;
            self.provider
                .mls_storage()
                .staged()
                .put(key.clone(), value)
                .map_err(storage)?;
            self.ledger.next_seq += 1;
            self.ledger.kept.push_back((place, key));
        }
        self.outputs.push_back(Output::Publish { topic, envelope });
        Ok(())
    }

    /// The embedder has handed every envelope it polled so far to the network: forget them
    /// here.
    pub fn confirm_published(&mut self) -> Result<(), EngineError> {
        let receipt = self.publish_receipt();
        self.confirm_receipt(receipt)
    }

    /// The envelopes polled so far and not yet confirmed, for an embedder that hands a round
    /// to the network and goes on with the next before the network has it: it confirms this
    /// receipt ([`Engine::confirm_receipt`]) once the network holds these envelopes, and
    /// later ones stay kept until their own receipt is confirmed.
    pub fn publish_receipt(&mut self) -> PublishReceipt {
        PublishReceipt(std::mem::take(&mut self.ledger.taken))
    }

    /// The network holds the envelopes of `receipt`: forget them here.
    pub fn confirm_receipt(&mut self, receipt: PublishReceipt) -> Result<(), EngineError> {
        let done = receipt.0;
        if done.is_empty() {
            return Ok(());
        }
        let result = self.step(None, |engine| {
            let staged = engine.provider.mls_storage().staged();
            for key in &done {
                staged.delete(key.clone()).map_err(storage)?;
            }
            Ok(())
        });
        if result.is_err() {
            // Harmless to keep: the next start publishes them again and the network drops an
            // envelope it has. The next confirmation tries again.
            self.ledger.taken.extend(done);
        }
        result
    }

    /// Envelopes a previous run queued and never confirmed sent, oldest first. They count as
    /// taken: [`Engine::confirm_published`] forgets them once the embedder has sent them.
    pub fn take_unpublished(&mut self) -> Result<Vec<(String, Vec<u8>)>, EngineError> {
        let staged: &StagedStore = self.provider.mls_storage().staged();
        let mut found = Vec::new();
        for (k, value) in staged.scan_prefix(&[KEPT_OUTPUT]).map_err(storage)? {
            let seq = seq_of(&k)?;
            let kept: KeptOutput = identity_tofu::codec::decode(&value, MAX_KEPT_BYTES)
                .map_err(|e| corrupt(format!("{}: {e}", hex::encode(&k))))?;
            found.push((seq, k, kept));
        }
        found.sort_by_key(|(seq, _, _)| *seq);
        let mut out = Vec::with_capacity(found.len());
        for (_, k, kept) in found {
            if !self.ledger.taken.contains(&k) {
                self.ledger.taken.push(k);
            }
            out.push((kept.topic, kept.envelope));
        }
        Ok(out)
    }
}

fn corrupt(detail: String) -> EngineError {
    EngineError::Storage(StorageError::Corrupt {
        what: "kept envelope",
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_follows_polls_and_withdrawn_steps() {
        let mut ledger = OutputLedger::default();
        // Outputs 0 and 2 are kept envelopes (1 is an event); a failed step queued 3 and 4.
        for place in [0, 2, 3, 4] {
            ledger.kept.push_back((place, vec![place as u8]));
        }
        ledger.withdraw_from(3);
        assert_eq!(ledger.kept.len(), 2, "the failed step's envelopes are gone");
        ledger.polled_one();
        assert_eq!(ledger.taken, [vec![0]]);
        ledger.polled_one();
        assert_eq!(ledger.taken, [vec![0]], "output 1 was an event");
        ledger.polled_one();
        assert_eq!(ledger.taken, [vec![0], vec![2]]);
        assert!(ledger.kept.is_empty());
    }
}

//! Delivered messages the embedder has not confirmed yet, kept so that a crash between the
//! engine's step and the embedder's own write loses nothing.
//!
//! Reading an application message is one atomic step: the ratchet moves past its key and its
//! id goes into `seen`. The embedder (the node) stores the message in its history after that,
//! in a write of its own. Killed in between, the node would restart with an engine that has
//! read the message — and will never read it again (the key is gone, the id is seen) — and a
//! history without it. With [`EngineConfig::confirm_delivery`](super::EngineConfig) on, the
//! step that reads a message also stores it here; the embedder calls
//! [`Engine::confirm_delivered`] once its own copy is durable, and at start
//! [`Engine::undelivered`] hands back what was read and never confirmed.
//!
//! ```text
//! u <group ref 16> <message id 16>   -> UndeliveredMessage
//! ```

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, Event};
use crate::storage::{StagedStore, StorageError};
use crate::wire::{GroupRef, MessageId};

const UNDELIVERED: u8 = b'u';
/// An application message body is bounded by the wire limits; this bounds a damaged value.
const MAX_UNDELIVERED_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UndeliveredMessage {
    sender: Vec<u8>,
    sent_at_ms: u64,
    body: Vec<u8>,
}

fn key(group: &GroupRef, id: &MessageId) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(UNDELIVERED);
    key.extend_from_slice(&group.0);
    key.extend_from_slice(&id.0);
    key
}

fn corrupt(detail: String) -> EngineError {
    EngineError::Storage(StorageError::Corrupt {
        what: "undelivered message",
        detail,
    })
}

/// Stages a message read in the current step as not yet confirmed.
pub(crate) fn stage(
    staged: &StagedStore,
    group: &GroupRef,
    id: &MessageId,
    sender: &[u8],
    sent_at_ms: u64,
    body: &[u8],
) -> Result<(), EngineError> {
    let value = identity_tofu::codec::encode(&UndeliveredMessage {
        sender: sender.to_vec(),
        sent_at_ms,
        body: body.to_vec(),
    })
    .map_err(|e| EngineError::Refused(format!("a delivered message cannot be encoded: {e}")))?;
    staged
        .put(key(group, id), value)
        .map_err(|e| EngineError::Storage(StorageError::from(e)))
}

impl Engine {
    /// Stages this member's own message as not yet confirmed, in the step that sends or
    /// queues it: the embedder's history cannot then miss a message that went out.
    pub(crate) fn stage_own(
        &self,
        group: &GroupRef,
        id: &MessageId,
        sent_at_ms: u64,
        body: &[u8],
    ) -> Result<(), EngineError> {
        stage(
            self.provider.mls_storage().staged(),
            group,
            id,
            self.credential.credential.serialized_content(),
            sent_at_ms,
            body,
        )
    }

    /// The embedder has its own durable copy of these messages: forget them here.
    pub fn confirm_delivered(
        &mut self,
        delivered: &[(GroupRef, MessageId)],
    ) -> Result<(), EngineError> {
        if delivered.is_empty() {
            return Ok(());
        }
        self.step(None, |engine| {
            let staged = engine.provider.mls_storage().staged();
            for (group, id) in delivered {
                staged
                    .delete(key(group, id))
                    .map_err(|e| EngineError::Storage(StorageError::from(e)))?;
            }
            Ok(())
        })
    }

    /// Messages read and not confirmed (by a run that stopped before confirming), as the
    /// [`Event::Message`]s they were, oldest send time first. They stay stored until
    /// confirmed.
    pub fn undelivered(&self) -> Result<Vec<Event>, EngineError> {
        let staged = self.provider.mls_storage().staged();
        let pairs = staged
            .scan_prefix(&[UNDELIVERED])
            .map_err(|e| EngineError::Storage(StorageError::from(e)))?;
        let mut events = Vec::with_capacity(pairs.len());
        for (k, value) in pairs {
            let (Ok(group), Ok(id)) = (
                <[u8; 16]>::try_from(k.get(1..17).unwrap_or_default()),
                <[u8; 16]>::try_from(k.get(17..).unwrap_or_default()),
            ) else {
                return Err(corrupt(format!("key {}", hex::encode(&k))));
            };
            let m: UndeliveredMessage = identity_tofu::codec::decode(&value, MAX_UNDELIVERED_BYTES)
                .map_err(|e| corrupt(format!("{}: {e}", hex::encode(&k))))?;
            events.push(Event::Message {
                group: GroupRef(group),
                id: MessageId(id),
                sender: m.sender,
                sent_at_ms: m.sent_at_ms,
                body: m.body,
            });
        }
        events.sort_by_key(|e| match e {
            Event::Message { sent_at_ms, .. } => *sent_at_ms,
            _ => 0,
        });
        Ok(events)
    }
}

//! The member's own application messages still inside the window, kept so that they can be
//! re-sent if the branch they were sent on loses.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{StepJournal, sent_key};
use crate::engine::EngineError;
use crate::engine::record::SentMessage;
use crate::storage::{StagedStore, StorageError};
use crate::wire::{GroupRef, MessageId};

/// The stored key of a message, (sent at, id).
type Key = (u64, MessageId);

fn key_of(m: &SentMessage) -> Key {
    (m.sent_at_ms, m.id)
}

/// How to undo one change.
#[derive(Debug, Clone)]
enum Undo {
    /// A message was appended.
    Pushed(Key),
    /// Messages were taken out: (index before the change, message), ascending.
    Removed(Vec<(usize, SentMessage)>),
}

/// Own messages in the order they were (last) sent, and the changes not saved yet. Reads go
/// through `Deref` to the slice; changes through the methods, which keep the journal.
#[derive(Debug, Clone, Default)]
pub struct SentList {
    messages: Vec<SentMessage>,
    /// The ids in `messages`: a send asks whether its id is there already (a re-send), and
    /// the list holds a whole window of a fast sender's messages — a scan per send made
    /// sending quadratic in the window.
    ids: BTreeSet<MessageId>,
    /// Keys of messages added or removed since the last save.
    dirty: BTreeSet<Key>,
    /// The open step's changes (`None` outside steps).
    step: Option<StepJournal<Undo, Key>>,
}

impl SentList {
    /// Appends a message, replacing an earlier copy with the same id (a re-send).
    pub fn put(&mut self, message: SentMessage) {
        let id = message.id;
        if self.ids.contains(&id) {
            self.retain(|m| m.id != id);
        }
        let key = key_of(&message);
        self.ids.insert(id);
        self.messages.push(message);
        self.changed(key, Undo::Pushed(key));
    }

    /// Keeps the messages for which `keep` holds (asked once per message, in order).
    pub fn retain(&mut self, keep: impl FnMut(&SentMessage) -> bool) {
        let keep: Vec<bool> = self.messages.iter().map(keep).collect();
        if keep.iter().all(|k| *k) {
            return;
        }
        let mut removed = Vec::new();
        let mut kept = Vec::with_capacity(self.messages.len());
        let messages = std::mem::take(&mut self.messages);
        for ((index, message), keep) in messages.into_iter().enumerate().zip(keep) {
            if keep {
                kept.push(message);
            } else {
                self.dirty.insert(key_of(&message));
                self.ids.remove(&message.id);
                removed.push((index, message));
            }
        }
        self.messages = kept;
        if let Some(step) = self.step.as_mut() {
            step.undo.push(Undo::Removed(removed));
        }
    }

    /// Whether the id index holds exactly the listed ids (for tests of the journal).
    #[cfg(test)]
    pub(crate) fn index_matches(&self) -> bool {
        self.ids.len() == self.messages.len()
            && self.messages.iter().all(|m| self.ids.contains(&m.id))
    }

    /// Forgets every message.
    pub fn clear(&mut self) {
        self.retain(|_| false);
    }

    fn changed(&mut self, key: Key, undo: Undo) {
        self.dirty.insert(key);
        if let Some(step) = self.step.as_mut() {
            step.undo.push(undo);
        }
    }

    /// Messages read from the store (already saved), in key order; those the list holds
    /// already (inline in a record stored before this layout) are skipped.
    pub(super) fn add_stored(&mut self, stored: Vec<SentMessage>) {
        for message in stored {
            if self.ids.insert(message.id) {
                self.messages.push(message);
            }
        }
    }

    /// Stages the messages added or removed since the last save.
    pub(super) fn save(
        &mut self,
        staged: &StagedStore,
        group: &GroupRef,
    ) -> Result<(), EngineError> {
        for key @ (at, id) in std::mem::take(&mut self.dirty) {
            let stored_key = sent_key(group, at, &id);
            // The newest messages are at the end, and they are what a step changes; a removed
            // one is known from the index without a scan (a prune removes thousands at once).
            let listed = self.ids.contains(&id);
            match listed
                .then(|| self.messages.iter().rev().find(|m| key_of(m) == key))
                .flatten()
            {
                Some(message) => {
                    let bytes = identity_tofu::codec::encode(message).map_err(|e| {
                        EngineError::Refused(format!("a sent message cannot be encoded: {e}"))
                    })?;
                    staged.put(stored_key, bytes)
                }
                None => staged.delete(stored_key),
            }
            .map_err(StorageError::from)?;
        }
        Ok(())
    }

    /// A step begins: its changes are journalled until [`end_step`](Self::end_step).
    pub(crate) fn begin_step(&mut self) {
        self.step = Some(StepJournal {
            undo: Vec::new(),
            dirty_before: self.dirty.clone(),
        });
    }

    /// The step ended. If it failed, what it saved never reached the store, so every message
    /// it changed waits for the next save again; with `undo`, its changes are also taken back.
    pub(crate) fn end_step(&mut self, failed: bool, undo: bool) {
        let Some(step) = self.step.take() else {
            return;
        };
        if !failed {
            return;
        }
        self.dirty.extend(step.dirty_before);
        for change in step.undo.into_iter().rev() {
            match change {
                Undo::Pushed(key) => {
                    self.dirty.insert(key);
                    if undo && let Some(popped) = self.messages.pop() {
                        self.ids.remove(&popped.id);
                    }
                }
                Undo::Removed(removed) => {
                    self.dirty.extend(removed.iter().map(|(_, m)| key_of(m)));
                    if undo {
                        self.put_back(removed);
                    }
                }
            }
        }
    }

    /// Puts removed messages back at the indices they had.
    fn put_back(&mut self, removed: Vec<(usize, SentMessage)>) {
        self.ids.extend(removed.iter().map(|(_, m)| m.id));
        let total = self.messages.len() + removed.len();
        let mut kept = std::mem::take(&mut self.messages).into_iter();
        let mut removed = removed.into_iter().peekable();
        self.messages = (0..total)
            .filter_map(|index| match removed.peek() {
                Some((at, _)) if *at == index => removed.next().map(|(_, m)| m),
                _ => kept.next(),
            })
            .collect();
    }
}

impl std::ops::Deref for SentList {
    type Target = [SentMessage];

    fn deref(&self) -> &Self::Target {
        &self.messages
    }
}

impl PartialEq for SentList {
    fn eq(&self, other: &Self) -> bool {
        self.messages == other.messages
    }
}

impl Eq for SentList {}

impl FromIterator<SentMessage> for SentList {
    /// Messages not saved yet: the next save writes them all.
    fn from_iter<T: IntoIterator<Item = SentMessage>>(iter: T) -> Self {
        let messages: Vec<SentMessage> = iter.into_iter().collect();
        Self {
            dirty: messages.iter().map(key_of).collect(),
            ids: messages.iter().map(|m| m.id).collect(),
            messages,
            step: None,
        }
    }
}

/// Encoded as the list alone, as records stored before this layout held it inline.
impl Serialize for SentList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.messages.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SentList {
    /// An inline list (a record stored before this layout) is not stored one key per entry
    /// yet: all of it waits for the next save.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<SentMessage>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

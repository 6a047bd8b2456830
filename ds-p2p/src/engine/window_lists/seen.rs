//! The ids of the application messages a group has delivered (or this member sent), with
//! when each was first seen: replays are refused by them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{StepJournal, seen_key};
use crate::engine::EngineError;
use crate::storage::{StagedStore, StorageError};
use crate::wire::{GroupRef, MessageId};

/// How to undo one change.
#[derive(Debug, Clone)]
enum Undo {
    Inserted(MessageId),
    Removed(Vec<(MessageId, u64)>),
}

/// Message ids with when they were first seen, and the changes not saved yet. Reads go
/// through `Deref` to the map; changes through the methods, which keep the journal.
#[derive(Debug, Clone, Default)]
pub struct SeenIds {
    ids: BTreeMap<MessageId, u64>,
    /// Ids added or removed since the last save.
    dirty: BTreeSet<MessageId>,
    /// The open step's changes (`None` outside steps).
    step: Option<StepJournal<Undo, MessageId>>,
}

impl SeenIds {
    /// Remembers `id` as seen at `at_ms` unless it is known already; whether it was new.
    pub fn insert_if_absent(&mut self, id: MessageId, at_ms: u64) -> bool {
        if self.ids.contains_key(&id) {
            return false;
        }
        self.ids.insert(id, at_ms);
        self.changed(id, Undo::Inserted(id));
        true
    }

    /// Keeps the ids for which `keep(id, first seen at)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&MessageId, u64) -> bool) {
        let mut removed = Vec::new();
        self.ids.retain(|id, at| {
            let kept = keep(id, *at);
            if !kept {
                removed.push((*id, *at));
            }
            kept
        });
        if removed.is_empty() {
            return;
        }
        self.dirty.extend(removed.iter().map(|(id, _)| *id));
        if let Some(step) = self.step.as_mut() {
            step.undo.push(Undo::Removed(removed));
        }
    }

    fn changed(&mut self, id: MessageId, undo: Undo) {
        self.dirty.insert(id);
        if let Some(step) = self.step.as_mut() {
            step.undo.push(undo);
        }
    }

    /// Ids read from the store (already saved).
    pub(super) fn add_stored(&mut self, stored: Vec<(MessageId, u64)>) {
        for (id, at) in stored {
            self.ids.entry(id).or_insert(at);
        }
    }

    /// Stages the ids added or removed since the last save.
    pub(super) fn save(
        &mut self,
        staged: &StagedStore,
        group: &GroupRef,
    ) -> Result<(), EngineError> {
        for id in std::mem::take(&mut self.dirty) {
            let key = seen_key(group, &id);
            match self.ids.get(&id) {
                Some(at) => staged.put(key, at.to_be_bytes().to_vec()),
                None => staged.delete(key),
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

    /// The step ended. If it failed, what it saved never reached the store, so every id it
    /// changed waits for the next save again; with `undo`, its changes are also taken back.
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
                Undo::Inserted(id) => {
                    self.dirty.insert(id);
                    if undo {
                        self.ids.remove(&id);
                    }
                }
                Undo::Removed(removed) => {
                    for (id, at) in removed {
                        self.dirty.insert(id);
                        if undo {
                            self.ids.insert(id, at);
                        }
                    }
                }
            }
        }
    }
}

impl std::ops::Deref for SeenIds {
    type Target = BTreeMap<MessageId, u64>;

    fn deref(&self) -> &Self::Target {
        &self.ids
    }
}

impl PartialEq for SeenIds {
    fn eq(&self, other: &Self) -> bool {
        self.ids == other.ids
    }
}

impl Eq for SeenIds {}

impl FromIterator<(MessageId, u64)> for SeenIds {
    /// Ids not saved yet: the next save writes them all.
    fn from_iter<T: IntoIterator<Item = (MessageId, u64)>>(iter: T) -> Self {
        let ids: BTreeMap<MessageId, u64> = iter.into_iter().collect();
        Self {
            dirty: ids.keys().copied().collect(),
            ids,
            step: None,
        }
    }
}

/// Encoded as the map alone, as records stored before this layout held it inline.
impl Serialize for SeenIds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.ids.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SeenIds {
    /// An inline list (a record stored before this layout) is not stored one key per entry
    /// yet: all of it waits for the next save.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(BTreeMap::<MessageId, u64>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

//! What the node itself keeps beside the engine's MLS state: the names the user gave groups,
//! contacts, and every delivered message (for `messages` and `chat` scrollback).
//!
//! ```text
//! g <group_ref 16>            -> GroupMeta
//! m <group_ref 16> <seq u64>  -> StoredMessage   (seq: delivery order on this node)
//! c <contact name>            -> ContactRecord
//! o <seq u64>                 -> OutboxEntry     (envelopes of a synced round not yet published)
//! ```
//! Records are versioned bincode through identity-tofu's codec; a record that does not decode
//! is an error naming its key, never a panic.

use std::sync::Arc;

use ds_p2p::wire::GroupRef;
use identity_tofu::codec;
use identity_tofu::kv::{KvError, KvStore, WriteBatch};
use serde::{Deserialize, Serialize};

const MAX_RECORD: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMeta {
    pub name: String,
    pub joined_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The application message id, hex.
    pub id: String,
    pub sender_handle: String,
    pub sender_fingerprint: String,
    pub sent_at_ms: u64,
    pub received_at_ms: u64,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRecord {
    /// The petname (defaults to the handle in the certificate).
    pub name: String,
    /// How the contact was added: the TOFU address (`invite:…`, `handle:…`, `dns:…`).
    pub address: identity_tofu::Address,
    /// Encoded signed device certificate (their MLS credential identity).
    pub certificate: Vec<u8>,
    pub peer_id: String,
    pub addrs: Vec<String>,
    pub added_at_ms: u64,
}

/// An envelope a round produced, kept until the network layer has it (see
/// [`NodeStore::write_round`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub topic: String,
    pub envelope: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error("corrupt node record under key {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// Every group's record, in key order.
pub type GroupList = Vec<(GroupRef, GroupMeta)>;

/// The node's own records over one column family.
#[derive(Clone)]
pub struct NodeStore {
    kv: Arc<dyn KvStore>,
    /// The next message sequence number per group, once known: a group's messages are scanned
    /// once per process, not on every delivery.
    next_seq: Arc<std::sync::Mutex<std::collections::BTreeMap<GroupRef, u64>>>,
    /// The next outbox sequence number, once known (found from the records, as messages').
    next_outbox: Arc<std::sync::Mutex<Option<u64>>>,
    /// The group records, once read: every API call that names a group looks it up by name,
    /// and reading them opens (decrypts) each. Only this store writes them.
    groups: Arc<std::sync::Mutex<Option<GroupList>>>,
}

impl NodeStore {
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        Self {
            kv,
            next_seq: Arc::default(),
            next_outbox: Arc::default(),
            groups: Arc::default(),
        }
    }

    fn read<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
        codec::decode(bytes, MAX_RECORD).map_err(|e| StoreError::Corrupt {
            key: hex::encode(key),
            reason: e.to_string(),
        })
    }

    fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        codec::encode(value).expect("node records always encode")
    }

    pub fn put_group(&self, group: GroupRef, meta: &GroupMeta) -> Result<(), StoreError> {
        let mut cached = self.groups.lock().expect("groups lock");
        self.kv.put(&group_key(group), &Self::encode(meta))?;
        // Updated only once written, so the cache never shows what the store lacks.
        if let Some(groups) = cached.as_mut() {
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, m)) => *m = meta.clone(),
                None => {
                    groups.push((group, meta.clone()));
                    groups.sort_by_key(|(g, _)| group_key(*g));
                }
            }
        }
        Ok(())
    }

    pub fn group(&self, group: GroupRef) -> Result<Option<GroupMeta>, StoreError> {
        let key = group_key(group);
        match self.kv.get(&key)? {
            Some(bytes) => Ok(Some(Self::read(&key, &bytes)?)),
            None => Ok(None),
        }
    }

    pub fn groups(&self) -> Result<GroupList, StoreError> {
        let mut cached = self.groups.lock().expect("groups lock");
        if let Some(groups) = cached.as_ref() {
            return Ok(groups.clone());
        }
        let groups = self.read_groups()?;
        *cached = Some(groups.clone());
        Ok(groups)
    }

    fn read_groups(&self) -> Result<GroupList, StoreError> {
        let mut out = Vec::new();
        for (key, value) in self.kv.scan_prefix(b"g")? {
            let Ok(raw) = <[u8; 16]>::try_from(&key[1..]) else {
                continue;
            };
            out.push((GroupRef(raw), Self::read(&key, &value)?));
        }
        Ok(out)
    }

    /// Appends a delivered message at once; returns its sequence number on this node. The
    /// daemon stages its appends instead and writes them with its round ([`Self::write_round`]).
    pub fn append_message(&self, group: GroupRef, msg: &StoredMessage) -> Result<u64, StoreError> {
        let seq = self.reserve_seq(group)?;
        self.write_round(&[(group, seq, msg.clone())], &[])?;
        Ok(seq)
    }

    /// The sequence number the next message of `group` gets on this node. Reserved, not
    /// written: a round whose write fails stops the node, and the next process finds the
    /// sequence from the records again, so a reserved number that was never written leaves
    /// no gap.
    pub fn reserve_seq(&self, group: GroupRef) -> Result<u64, StoreError> {
        let mut next = self.next_seq.lock().expect("sequence lock");
        let seq = match next.get(&group) {
            Some(seq) => *seq,
            None => self.scan_next_seq(group)?,
        };
        next.insert(group, seq + 1);
        Ok(seq)
    }

    /// Writes a round's history appends (numbered by [`Self::reserve_seq`]) and the envelopes
    /// it publishes in one batch, before the round's fsync. One batch, because a message in
    /// the sender's history whose envelope is not kept would never reach anyone (and an
    /// envelope kept without its history entry would reach everyone but the sender): after a
    /// crash or a full disk, both are there or neither is. The outbox entries stay until
    /// [`NodeStore::delete_outbox`], so that a node killed after the fsync and before the
    /// network layer took them publishes them when it starts again. Returns the entries' keys.
    pub fn write_round(
        &self,
        messages: &[(GroupRef, u64, StoredMessage)],
        outbox: &[OutboxEntry],
    ) -> Result<Vec<u64>, StoreError> {
        if messages.is_empty() && outbox.is_empty() {
            // Most rounds: only engine envelopes (kept by the engine) and events.
            return Ok(Vec::new());
        }
        let mut batch = WriteBatch::default();
        for (group, seq, msg) in messages {
            batch.put(&message_key(*group, *seq), &Self::encode(msg));
        }
        let mut next = self.next_outbox.lock().expect("outbox lock");
        let first = match (*next, outbox.is_empty()) {
            (_, true) => 0,
            (Some(seq), false) => seq,
            (None, false) => self
                .kv
                .scan_prefix(b"o")?
                .last()
                .map_or(0, |(k, _)| seq_of(&k[1..]) + 1),
        };
        let seqs: Vec<u64> = (first..).take(outbox.len()).collect();
        for (seq, entry) in seqs.iter().zip(outbox) {
            batch.put(&outbox_key(*seq), &Self::encode(entry));
        }
        self.kv.write(batch)?;
        if !outbox.is_empty() {
            *next = Some(first + outbox.len() as u64);
        }
        Ok(seqs)
    }

    /// The envelopes kept and not yet handed to the network layer, oldest first.
    pub fn outbox(&self) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
        self.kv
            .scan_prefix(b"o")?
            .into_iter()
            .map(|(key, value)| Ok((seq_of(&key[1..]), Self::read(&key, &value)?)))
            .collect()
    }

    /// Forgets outbox entries the network layer has taken (its log holds them now).
    pub fn delete_outbox(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for seq in seqs {
            batch.delete(&outbox_key(*seq));
        }
        Ok(self.kv.write(batch)?)
    }

    fn scan_next_seq(&self, group: GroupRef) -> Result<u64, StoreError> {
        // No second counter is stored that could disagree with the records: the first append
        // of a process finds the last sequence number from the records themselves.
        let prefix = message_prefix(group);
        let last = self
            .kv
            .scan_prefix(&prefix)?
            .last()
            .map(|(k, _)| seq_of(&k[prefix.len()..]));
        Ok(last.map_or(0, |s| s + 1))
    }

    /// Messages of a group with seq ≥ `from`, in delivery order.
    pub fn messages(
        &self,
        group: GroupRef,
        from: u64,
    ) -> Result<Vec<(u64, StoredMessage)>, StoreError> {
        let prefix = message_prefix(group);
        let mut out = Vec::new();
        for (key, value) in self.kv.scan_prefix(&prefix)? {
            let seq = seq_of(&key[prefix.len()..]);
            if seq >= from {
                out.push((seq, Self::read(&key, &value)?));
            }
        }
        Ok(out)
    }

    pub fn put_contact(&self, contact: &ContactRecord) -> Result<(), StoreError> {
        Ok(self
            .kv
            .put(&contact_key(&contact.name), &Self::encode(contact))?)
    }

    pub fn contacts(&self) -> Result<Vec<ContactRecord>, StoreError> {
        self.kv
            .scan_prefix(b"c")?
            .into_iter()
            .map(|(k, v)| Self::read(&k, &v))
            .collect()
    }
}

/// The layout for encryption at rest ([`identity_tofu::kv::SealedKv`]): group refs and contact
/// names are stored as keyed hashes; outbox sequence numbers stay plain.
pub fn sealed_layout() -> identity_tofu::kv::KeySchema {
    use identity_tofu::kv::{KeyRule, KeySchema};
    KeySchema::new(vec![
        KeyRule::starting_with(b"g").secret(16).plain_rest(),
        KeyRule::starting_with(b"m").secret(16).plain_rest(),
        KeyRule::starting_with(b"c").secret_rest(),
        KeyRule::starting_with(b"o").plain_rest(),
    ])
}

fn group_key(group: GroupRef) -> Vec<u8> {
    let mut k = vec![b'g'];
    k.extend_from_slice(&group.0);
    k
}

fn message_prefix(group: GroupRef) -> Vec<u8> {
    let mut k = vec![b'm'];
    k.extend_from_slice(&group.0);
    k
}

fn message_key(group: GroupRef, seq: u64) -> Vec<u8> {
    let mut k = message_prefix(group);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn seq_of(bytes: &[u8]) -> u64 {
    let mut raw = [0u8; 8];
    let n = bytes.len().min(8);
    raw[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(raw)
}

fn outbox_key(seq: u64) -> Vec<u8> {
    let mut k = vec![b'o'];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn contact_key(name: &str) -> Vec<u8> {
    let mut k = vec![b'c'];
    k.extend_from_slice(name.as_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_tofu::kv::MemoryStore;

    fn msg(text: &str) -> StoredMessage {
        StoredMessage {
            id: "00".into(),
            sender_handle: "ann".into(),
            sender_fingerprint: "ff".into(),
            sent_at_ms: 1,
            received_at_ms: 2,
            text: text.into(),
        }
    }

    #[test]
    fn the_group_list_follows_writes_and_matches_a_fresh_read() {
        let kv = Arc::new(MemoryStore::new());
        let store = NodeStore::new(kv.clone());
        let meta = |name: &str| GroupMeta {
            name: name.into(),
            joined_at_ms: 1,
        };
        store.put_group(GroupRef([2; 16]), &meta("b")).unwrap();
        assert_eq!(
            store.groups().unwrap().len(),
            1,
            "read once, kept from now on"
        );
        store.put_group(GroupRef([1; 16]), &meta("a")).unwrap();
        store.put_group(GroupRef([2; 16]), &meta("b2")).unwrap();
        let fresh = NodeStore::new(kv).groups().unwrap();
        assert_eq!(store.groups().unwrap(), fresh);
        let names: Vec<_> = fresh.iter().map(|(_, m)| m.name.as_str()).collect();
        assert_eq!(names, ["a", "b2"]);
    }

    #[test]
    fn messages_keep_delivery_order_per_group() {
        let store = NodeStore::new(Arc::new(MemoryStore::new()));
        let (a, b) = (GroupRef([1; 16]), GroupRef([2; 16]));
        assert_eq!(store.append_message(a, &msg("one")).unwrap(), 0);
        assert_eq!(store.append_message(b, &msg("other")).unwrap(), 0);
        assert_eq!(store.append_message(a, &msg("two")).unwrap(), 1);
        let texts: Vec<_> = store
            .messages(a, 0)
            .unwrap()
            .into_iter()
            .map(|(_, m)| m.text)
            .collect();
        assert_eq!(texts, ["one", "two"]);
        assert_eq!(store.messages(a, 1).unwrap().len(), 1);
    }

    #[test]
    fn a_reopened_store_continues_the_sequence() {
        let kv: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let a = GroupRef([1; 16]);
        let first = NodeStore::new(kv.clone());
        first.append_message(a, &msg("one")).unwrap();
        first.append_message(a, &msg("two")).unwrap();
        let reopened = NodeStore::new(kv);
        assert_eq!(reopened.append_message(a, &msg("three")).unwrap(), 2);
        assert_eq!(reopened.messages(a, 0).unwrap().len(), 3);
    }

    #[test]
    fn the_outbox_keeps_entries_in_order_across_a_reopen_until_deleted() {
        let kv: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let entry = |n: u8| OutboxEntry {
            topic: format!("t{n}"),
            envelope: vec![n; 3],
        };
        let first = NodeStore::new(kv.clone());
        let a = first.write_round(&[], &[entry(1), entry(2)]).unwrap();
        first.delete_outbox(&a[..1]).unwrap();
        let reopened = NodeStore::new(kv);
        let b = reopened.write_round(&[], &[entry(3)]).unwrap();
        assert!(b[0] > a[1], "a reopened store does not reuse keys");
        let kept: Vec<_> = reopened
            .outbox()
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        assert_eq!(kept, [entry(2), entry(3)]);
        reopened.delete_outbox(&[a[1], b[0]]).unwrap();
        assert!(reopened.outbox().unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_record_is_an_error() {
        let kv = Arc::new(MemoryStore::new());
        let store = NodeStore::new(kv.clone());
        let a = GroupRef([1; 16]);
        kv.put(&group_key(a), b"\xff\xff garbage").unwrap();
        assert!(matches!(store.group(a), Err(StoreError::Corrupt { .. })));
    }
}

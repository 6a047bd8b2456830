//! The atomic write batch shared by every [`KvStore`](super::KvStore) implementation.

/// One operation of a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Store a value under a key.
    Put { key: Vec<u8>, value: Vec<u8> },
    /// Delete one key.
    Delete { key: Vec<u8> },
    /// Delete every key that starts with the prefix.
    DeletePrefix { prefix: Vec<u8> },
}

/// Operations applied together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
}

impl WriteBatch {
    /// Adds a put.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.ops.push(BatchOp::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        });
    }

    /// Adds a delete of one key.
    pub fn delete(&mut self, key: &[u8]) {
        self.ops.push(BatchOp::Delete { key: key.to_vec() });
    }

    /// Adds a delete of every key under `prefix`.
    pub fn delete_prefix(&mut self, prefix: &[u8]) {
        self.ops.push(BatchOp::DeletePrefix {
            prefix: prefix.to_vec(),
        });
    }

    /// Appends every operation of `other`, keeping their order.
    pub fn extend(&mut self, other: WriteBatch) {
        self.ops.extend(other.ops);
    }

    /// The operations, in the order they are applied.
    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    /// Consumes the batch, giving its operations.
    pub fn into_ops(self) -> Vec<BatchOp> {
        self.ops
    }

    /// True when the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The smallest key greater than every key that starts with `prefix`, or `None` when no such
/// key exists (the prefix is empty or all `0xff`), i.e. the range is unbounded above.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

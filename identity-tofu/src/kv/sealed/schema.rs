//! Which parts of a column's keys name a group or a contact, and where a branch namespace ends.
//!
//! A [`SealedKv`](super::SealedKv) stores each key with its secret parts replaced by a keyed
//! hash, so that the key bytes on disk say nothing about groups or contacts, while every prefix
//! scan the owner makes still finds its keys: a secret part maps to the same hash wherever it
//! appears, and the plain parts around it keep their bytes (and so their order) unchanged.
//!
//! Each owner describes its layout as a [`KeySchema`]: rules tried in order, each a sequence of
//! [`Part`]s. A key that matches no rule is refused (an error, never stored in the clear), so a
//! new key layout cannot leak by being forgotten here. A prefix may end at any part boundary,
//! inside a literal or inside a plain part; a prefix that ends inside a fixed-length secret part
//! matches nothing (the hash of half a group id is not a prefix of the hash of the whole).

/// Longest fixed-length secret part: one keyed hash output.
pub const MAX_SECRET_LEN: usize = 32;

/// One part of a key layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// These exact bytes (a tag, a store prefix). Stored as they are.
    Literal(Vec<u8>),
    /// `n` bytes that name a group or contact: stored as their keyed hash, `n` bytes long.
    Secret(usize),
    /// `n` bytes stored as they are (a branch id, a timestamp, a sequence number).
    Plain(usize),
    /// Everything that is left names a contact: stored as its keyed hash (32 bytes). A prefix
    /// that reaches into it must hold all of it.
    SecretRest,
    /// Everything but the last `n` bytes names a contact (hashed to 32 bytes); the last `n` are
    /// stored as they are. As a prefix, all of the remainder is the secret.
    SecretRestThenPlain(usize),
    /// Everything that is left, stored as it is.
    PlainRest,
}

/// One key layout: parts in order, and optionally how many leading parts name a namespace with
/// its own data key (crypto-shredding: deleting the namespace destroys the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRule {
    parts: Vec<Part>,
    namespace_parts: Option<usize>,
}

impl KeyRule {
    /// A rule starting with the literal `tag`.
    pub fn starting_with(tag: &[u8]) -> Self {
        Self {
            parts: vec![Part::Literal(tag.to_vec())],
            namespace_parts: None,
        }
    }

    /// Appends a literal.
    pub fn literal(mut self, bytes: &[u8]) -> Self {
        self.parts.push(Part::Literal(bytes.to_vec()));
        self
    }

    /// Appends a fixed-length secret part (at most [`MAX_SECRET_LEN`] bytes).
    pub fn secret(mut self, len: usize) -> Self {
        assert!(
            len <= MAX_SECRET_LEN,
            "a secret key part is at most 32 bytes"
        );
        self.parts.push(Part::Secret(len));
        self
    }

    /// Appends a fixed-length plain part.
    pub fn plain(mut self, len: usize) -> Self {
        self.parts.push(Part::Plain(len));
        self
    }

    /// Ends the rule with a secret remainder.
    pub fn secret_rest(mut self) -> Self {
        self.parts.push(Part::SecretRest);
        self
    }

    /// Ends the rule with a secret remainder followed by `plain_len` plain bytes.
    pub fn secret_rest_then_plain(mut self, plain_len: usize) -> Self {
        self.parts.push(Part::SecretRestThenPlain(plain_len));
        self
    }

    /// Ends the rule with a plain remainder.
    pub fn plain_rest(mut self) -> Self {
        self.parts.push(Part::PlainRest);
        self
    }

    /// Marks the parts so far as a namespace with its own data key. Only literals and
    /// fixed-length parts may come before, so that the namespace of a stored key can be found
    /// from the stored bytes alone.
    pub fn namespace(mut self) -> Self {
        assert!(
            self.parts
                .iter()
                .all(|p| matches!(p, Part::Literal(_) | Part::Secret(_) | Part::Plain(_))),
            "a namespace is made of literals and fixed-length parts"
        );
        self.namespace_parts = Some(self.parts.len());
        self
    }
}

/// The layout of one column: rules tried in order (put the more specific first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySchema {
    rules: Vec<KeyRule>,
}

/// A key mapped to its stored form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MappedKey {
    pub stored: Vec<u8>,
    /// How many leading bytes of `stored` name the key's namespace, if it has one.
    pub namespace_len: Option<usize>,
}

impl KeySchema {
    /// A schema of these rules.
    pub fn new(rules: Vec<KeyRule>) -> Self {
        Self { rules }
    }

    /// Adds the rules of `other` after these (several owners sharing one column).
    pub fn and(mut self, other: KeySchema) -> Self {
        self.rules.extend(other.rules);
        self
    }

    /// The stored form of a whole key, or `None` when no rule matches it.
    pub(crate) fn map_key(
        &self,
        key: &[u8],
        hash: &dyn Fn(&[u8], usize) -> Vec<u8>,
    ) -> Option<MappedKey> {
        self.rules.iter().find_map(|rule| map_key(rule, key, hash))
    }

    /// The stored form of a scan or delete prefix, or `None` when no rule admits it.
    pub(crate) fn map_prefix(
        &self,
        prefix: &[u8],
        hash: &dyn Fn(&[u8], usize) -> Vec<u8>,
    ) -> Option<Vec<u8>> {
        self.rules
            .iter()
            .find_map(|rule| map_prefix(rule, prefix, hash))
    }

    /// How many leading bytes of a *stored* key name its namespace, if it has one.
    pub(crate) fn stored_namespace_len(&self, stored: &[u8]) -> Option<usize> {
        self.rules.iter().find_map(|rule| {
            let count = rule.namespace_parts?;
            let mut at = 0;
            for part in &rule.parts[..count] {
                match part {
                    Part::Literal(bytes) => {
                        if !stored[at..].starts_with(bytes) {
                            return None;
                        }
                        at += bytes.len();
                    }
                    Part::Secret(n) | Part::Plain(n) => {
                        if stored.len() < at + n {
                            return None;
                        }
                        at += n;
                    }
                    _ => return None,
                }
            }
            Some(at)
        })
    }
}

fn map_key(
    rule: &KeyRule,
    key: &[u8],
    hash: &dyn Fn(&[u8], usize) -> Vec<u8>,
) -> Option<MappedKey> {
    let mut out = Vec::with_capacity(key.len() + MAX_SECRET_LEN);
    let mut rest = key;
    let mut namespace_len = None;
    for (i, part) in rule.parts.iter().enumerate() {
        if rule.namespace_parts == Some(i) {
            namespace_len = Some(out.len());
        }
        match part {
            Part::Literal(bytes) => {
                rest = rest.strip_prefix(bytes.as_slice())?;
                out.extend_from_slice(bytes);
            }
            Part::Secret(n) => {
                let (secret, tail) = split(rest, *n)?;
                out.extend_from_slice(&hash(secret, *n));
                rest = tail;
            }
            Part::Plain(n) => {
                let (plain, tail) = split(rest, *n)?;
                out.extend_from_slice(plain);
                rest = tail;
            }
            Part::SecretRest => {
                out.extend_from_slice(&hash(rest, MAX_SECRET_LEN));
                rest = &[];
            }
            Part::SecretRestThenPlain(n) => {
                let cut = rest.len().checked_sub(*n)?;
                out.extend_from_slice(&hash(&rest[..cut], MAX_SECRET_LEN));
                out.extend_from_slice(&rest[cut..]);
                rest = &[];
            }
            Part::PlainRest => {
                out.extend_from_slice(rest);
                rest = &[];
            }
        }
    }
    if rule.namespace_parts == Some(rule.parts.len()) {
        namespace_len = Some(out.len());
    }
    rest.is_empty().then_some(MappedKey {
        stored: out,
        namespace_len,
    })
}

fn map_prefix(
    rule: &KeyRule,
    prefix: &[u8],
    hash: &dyn Fn(&[u8], usize) -> Vec<u8>,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(prefix.len() + MAX_SECRET_LEN);
    let mut rest = prefix;
    for part in &rule.parts {
        if rest.is_empty() {
            return Some(out);
        }
        match part {
            Part::Literal(bytes) => {
                if bytes.starts_with(rest) {
                    // The prefix ends inside the literal.
                    out.extend_from_slice(rest);
                    return Some(out);
                }
                rest = rest.strip_prefix(bytes.as_slice())?;
                out.extend_from_slice(bytes);
            }
            Part::Secret(n) => {
                let (secret, tail) = split(rest, *n)?;
                out.extend_from_slice(&hash(secret, *n));
                rest = tail;
            }
            Part::Plain(n) => {
                let take = rest.len().min(*n);
                out.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
            }
            Part::SecretRest | Part::SecretRestThenPlain(_) => {
                out.extend_from_slice(&hash(rest, MAX_SECRET_LEN));
                return Some(out);
            }
            Part::PlainRest => {
                out.extend_from_slice(rest);
                return Some(out);
            }
        }
    }
    rest.is_empty().then_some(out)
}

fn split(bytes: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    (bytes.len() >= n).then(|| bytes.split_at(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_hash(secret: &[u8], len: usize) -> Vec<u8> {
        let mut out = vec![0xAA; len];
        for (i, b) in secret.iter().enumerate() {
            out[i % len] ^= b.wrapping_add(1);
        }
        out
    }

    fn branches() -> KeySchema {
        KeySchema::new(vec![
            KeyRule::starting_with(b"g")
                .secret(4)
                .literal(b"B")
                .plain(2)
                .namespace()
                .plain_rest(),
            KeyRule::starting_with(b"g").secret(4).plain_rest(),
            KeyRule::starting_with(b"c").secret_rest(),
            KeyRule::starting_with(b"o").secret_rest_then_plain(2),
        ])
    }

    #[test]
    fn keys_and_their_prefixes_map_alike() {
        let schema = branches();
        let key = b"gWXYZB\x00\x01label\x00item";
        let mapped = schema.map_key(key, &fake_hash).unwrap();
        assert_eq!(mapped.namespace_len, Some(1 + 4 + 1 + 2));
        assert!(!mapped.stored.windows(4).any(|w| w == b"WXYZ"));
        for cut in [0, 1, 5, 6, 7, 8, 12, key.len()] {
            let prefix = schema.map_prefix(&key[..cut], &fake_hash).unwrap();
            assert!(mapped.stored.starts_with(&prefix), "cut {cut}");
        }
        // Half a secret part is no prefix of anything.
        assert_eq!(schema.map_prefix(b"gWX", &fake_hash), None);
        assert_eq!(
            schema.stored_namespace_len(&mapped.stored),
            mapped.namespace_len
        );
        let pointer = schema.map_key(b"gWXYZA", &fake_hash).unwrap();
        assert_eq!(pointer.namespace_len, None);
        assert_eq!(schema.stored_namespace_len(&pointer.stored), None);
        assert!(
            pointer
                .stored
                .starts_with(&schema.map_prefix(b"gWXYZ", &fake_hash).unwrap())
        );
    }

    #[test]
    fn secret_remainders_hide_the_whole_name() {
        let schema = branches();
        let contact = schema.map_key(b"calice", &fake_hash).unwrap().stored;
        assert_eq!(contact.len(), 1 + MAX_SECRET_LEN);
        let observation = schema
            .map_key(b"oalice\x00\x07", &fake_hash)
            .unwrap()
            .stored;
        let prefix = schema.map_prefix(b"oalice", &fake_hash).unwrap();
        assert!(observation.starts_with(&prefix));
        assert!(observation.ends_with(b"\x00\x07"));
    }

    #[test]
    fn keys_matching_no_rule_are_refused() {
        let schema = branches();
        assert_eq!(schema.map_key(b"x123", &fake_hash), None);
        assert_eq!(schema.map_key(b"gWX", &fake_hash), None);
        assert_eq!(schema.map_prefix(b"x", &fake_hash), None);
    }
}

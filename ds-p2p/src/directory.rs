//! The KeyPackage directory (issue 3, item 3): what a node serves on behalf of people so
//! that they can be invited while away. Sans-IO; the network layer answers requests with it
//! and keeps it on disk through [`Directory::export`] / [`Directory::import`].
//!
//! Rules:
//! - A published [`KeyPackageBundle`] is checked whole before it replaces the owner's previous
//!   one: every KeyPackage parses and verifies, is for the Chorus ciphersuite, carries the
//!   owner's credential (a valid device certificate for its signature key), and only the
//!   designated one is marked last-resort.
//! - [`Directory::take`] hands out each fresh KeyPackage at most once (it is removed before
//!   it is returned), skipping expired ones, and falls back to the last-resort KeyPackage
//!   when none is left — reporting which it was, so the owner can be told to refill.

use std::collections::{BTreeMap, VecDeque};

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use openmls_rust_crypto::RustCrypto;
use serde::{Deserialize, Serialize};

use crate::engine::credentials::check_credential;
use crate::engine::{CIPHERSUITE, KeyPackageBundle};

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("KeyPackage {index}: {reason}")]
    BadKeyPackage { index: usize, reason: String },
    #[error("bundle has {count} fresh KeyPackages, the limit is {max}")]
    TooMany { count: usize, max: usize },
    #[error("bundle is older than the one already published")]
    Stale,
}

/// What `take` handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handed {
    /// The KeyPackage (RFC 9420 bytes).
    pub key_package: Vec<u8>,
    /// It was the last-resort one: no fresh KeyPackage was left.
    pub last_resort: bool,
    /// Fresh KeyPackages still held for this owner.
    pub remaining: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Held {
    fresh: VecDeque<(u64, Vec<u8>)>,
    last_resort: (u64, Vec<u8>),
    created_at_ms: u64,
}

/// KeyPackages held for their owners, keyed by credential identity.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    owners: BTreeMap<Vec<u8>, Held>,
}

/// The most fresh KeyPackages one bundle may carry.
pub const MAX_FRESH_PER_BUNDLE: usize = 256;

impl Directory {
    /// Checks `bundle` and makes it the owner's current one.
    pub fn publish(&mut self, bundle: &KeyPackageBundle) -> Result<(), DirectoryError> {
        if bundle.fresh.len() > MAX_FRESH_PER_BUNDLE {
            return Err(DirectoryError::TooMany {
                count: bundle.fresh.len(),
                max: MAX_FRESH_PER_BUNDLE,
            });
        }
        if let Some(held) = self.owners.get(&bundle.owner)
            && held.created_at_ms > bundle.created_at_ms
        {
            return Err(DirectoryError::Stale);
        }
        let mut fresh = VecDeque::new();
        for (index, bytes) in bundle.fresh.iter().enumerate() {
            let not_after = check(bytes, &bundle.owner, false)
                .map_err(|reason| DirectoryError::BadKeyPackage { index, reason })?;
            fresh.push_back((not_after, bytes.clone()));
        }
        let index = bundle.fresh.len();
        let not_after = check(&bundle.last_resort, &bundle.owner, true)
            .map_err(|reason| DirectoryError::BadKeyPackage { index, reason })?;
        self.owners.insert(
            bundle.owner.clone(),
            Held {
                fresh,
                last_resort: (not_after, bundle.last_resort.clone()),
                created_at_ms: bundle.created_at_ms,
            },
        );
        Ok(())
    }

    /// One KeyPackage of `owner` for an inviter: a fresh one (consumed), else the last-resort
    /// one. `None` when the directory holds nothing valid for `owner`.
    pub fn take(&mut self, owner: &[u8], now_ms: u64) -> Option<Handed> {
        let held = self.owners.get_mut(owner)?;
        let now_s = now_ms / 1000;
        while let Some((not_after, bytes)) = held.fresh.pop_front() {
            if not_after >= now_s {
                return Some(Handed {
                    key_package: bytes,
                    last_resort: false,
                    remaining: held.fresh.len(),
                });
            }
        }
        let (not_after, bytes) = &held.last_resort;
        (*not_after >= now_s).then(|| Handed {
            key_package: bytes.clone(),
            last_resort: true,
            remaining: 0,
        })
    }

    /// Fresh KeyPackages held for `owner`.
    pub fn remaining(&self, owner: &[u8]) -> usize {
        self.owners.get(owner).map_or(0, |h| h.fresh.len())
    }

    /// The directory as bytes, for storage.
    pub fn export(&self) -> Vec<u8> {
        identity_tofu::codec::encode(self).unwrap_or_default()
    }

    /// A directory read back from [`export`](Self::export)ed bytes.
    pub fn import(bytes: &[u8]) -> Result<Self, identity_tofu::codec::CodecError> {
        identity_tofu::codec::decode(bytes, identity_tofu::codec::MAX_DECODE_LEN)
    }
}

/// The credential identity of a KeyPackage someone handed over, once its signature and
/// contents verify: an inviter checks it is the contact's before adding it (anyone who saw
/// the request on the public inbox topic could answer with a KeyPackage of their own).
pub fn key_package_owner(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let kp = validated_key_package(bytes)?;
    Ok(kp.leaf_node().credential().serialized_content().to_vec())
}

/// A KeyPackage from its wire bytes, with its signature and contents verified.
fn validated_key_package(bytes: &[u8]) -> Result<KeyPackage, String> {
    let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| e.to_string())?;
    let MlsMessageBodyIn::KeyPackage(kp) = message.extract() else {
        return Err("not a KeyPackage".into());
    };
    kp.validate(&RustCrypto::default(), ProtocolVersion::Mls10)
        .map_err(|e| e.to_string())
}

/// Verifies one KeyPackage of `owner`; returns its `not_after` (seconds).
fn check(bytes: &[u8], owner: &[u8], last_resort: bool) -> Result<u64, String> {
    let kp = validated_key_package(bytes)?;
    if kp.ciphersuite() != CIPHERSUITE {
        return Err(format!("ciphersuite {:?}", kp.ciphersuite()));
    }
    let leaf = kp.leaf_node();
    if leaf.credential().serialized_content() != owner {
        return Err("credential is not the bundle owner's".into());
    }
    check_credential(leaf.credential(), leaf.signature_key().as_slice())
        .map_err(|e| e.to_string())?;
    if kp.last_resort() != last_resort {
        return Err(if last_resort {
            "the last-resort KeyPackage is not marked last-resort".into()
        } else {
            "a one-time KeyPackage is marked last-resort".into()
        });
    }
    Ok(kp.life_time().not_after())
}

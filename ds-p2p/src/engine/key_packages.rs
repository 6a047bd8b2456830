//! KeyPackages, owner side (issue 3, item 3): one-time KeyPackages with a lifetime and one
//! last-resort KeyPackage, published together as a [`KeyPackageBundle`]; the directory that
//! serves them is [`crate::directory`].
//!
//! Lifetimes are computed from `now_ms` (never the system clock), so a seeded run replays
//! byte for byte. openmls checks a KeyPackage's lifetime against the wall clock when it is
//! added, so `now_ms` must be real time (simulations start their clock at a real date).

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use serde::{Deserialize, Serialize};

use super::api::Event;
use super::{CIPHERSUITE, Engine, EngineError, mls_err};

/// What an owner publishes: fresh one-time KeyPackages and the last-resort one, each the
/// RFC 9420 `MLSMessage` bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPackageBundle {
    /// The owner's credential identity (encoded device certificate).
    pub owner: Vec<u8>,
    /// One-time KeyPackages, each handed out at most once.
    pub fresh: Vec<Vec<u8>>,
    /// Handed out when no fresh one is left; may be used by several inviters.
    pub last_resort: Vec<u8>,
    /// When the bundle was made, ms since the Unix epoch.
    pub created_at_ms: u64,
}

/// An hour of slack before `now`, for peers whose clocks run behind (as openmls does).
const NOT_BEFORE_SLACK_S: u64 = 3600;

impl Engine {
    /// A fresh one-time KeyPackage (RFC 9420 bytes), valid from `now_ms` for the configured
    /// lifetime.
    pub fn key_package(&mut self, now_ms: u64) -> Result<Vec<u8>, EngineError> {
        self.build_key_package(now_ms, false)
            .map(|(bytes, _)| bytes)
    }

    /// `count` fresh KeyPackages and a new last-resort one, to publish.
    pub fn key_package_bundle(
        &mut self,
        now_ms: u64,
        count: usize,
    ) -> Result<KeyPackageBundle, EngineError> {
        let fresh = (0..count)
            .map(|_| self.key_package(now_ms))
            .collect::<Result<Vec<_>, _>>()?;
        let (last_resort, reference) = self.build_key_package(now_ms, true)?;
        self.last_resort_refs.push(reference);
        Ok(KeyPackageBundle {
            owner: self.identity().to_vec(),
            fresh,
            last_resort,
            created_at_ms: now_ms,
        })
    }

    /// The lifetime of a leaf made at `now_ms` (from `now_ms`, not the system clock).
    pub(crate) fn leaf_lifetime(&self, now_ms: u64) -> Lifetime {
        let now_s = now_ms / 1000;
        Lifetime::init(
            now_s.saturating_sub(NOT_BEFORE_SLACK_S),
            now_s + self.config.key_package_lifetime_ms / 1000,
        )
    }

    fn build_key_package(
        &mut self,
        now_ms: u64,
        last_resort: bool,
    ) -> Result<(Vec<u8>, Vec<u8>), EngineError> {
        use openmls_traits::OpenMlsProvider as _;
        self.provider.mls_storage().set_group_scope(None)?;
        let lifetime = self.leaf_lifetime(now_ms);
        // Every KeyPackage advertises the last-resort extension, so the last-resort one is
        // valid (RFC 9420 requires a leaf to support the extensions its KeyPackage carries).
        let capabilities =
            Capabilities::new(None, None, Some(&[ExtensionType::LastResort]), None, None);
        let mut builder = KeyPackage::builder()
            .key_package_lifetime(lifetime)
            .leaf_node_capabilities(capabilities);
        if last_resort {
            builder = builder.mark_as_last_resort();
        }
        let bundle = builder
            .build(
                CIPHERSUITE,
                &self.provider,
                &self.signer,
                self.credential.clone(),
            )
            .map_err(mls_err)?;
        let reference = bundle
            .key_package()
            .hash_ref(self.provider.crypto())
            .map_err(mls_err)?
            .as_slice()
            .to_vec();
        let out = MlsMessageOut::from(bundle.key_package().clone());
        let bytes = out.tls_serialize_detached().map_err(mls_err)?;
        Ok((bytes, reference))
    }

    /// Reports when a Welcome used this member's last-resort KeyPackage: it has been seen
    /// by an inviter, so the owner should publish a new bundle with a new one.
    pub(crate) fn note_key_package_used(&mut self, used: &[Vec<u8>]) {
        if used.iter().any(|r| self.last_resort_refs.contains(r)) {
            self.emit(Event::LastResortKeyPackageUsed);
        }
    }
}

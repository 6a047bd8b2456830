//! The TOFU trust store: which identity key each address is pinned to, and what was seen.
//!
//! Trust on first use: the first identity key seen for an [`Address`] is pinned. Afterwards
//!
//! - the pinned identity with a known device is [`Outcome::Known`];
//! - the pinned identity with a device never seen before is [`Outcome::NewDevice`]: accepted,
//!   because the identity key certified it, and reported so the user can see it;
//! - a *different* identity key is [`Outcome::KeyChanged`]: **refused**. It is recorded as a
//!   pending key change, every further sighting is refused too, until the user calls
//!   [`TrustStore::accept_key_change`] naming that very key.
//!
//! A contact becomes [`TrustLevel::Verified`] once the user typed in the safety number of
//! (own identity, pinned identity) correctly; accepting a key change resets it to unverified.
//! Device rotation keeps the level: a new device is a certificate, not a new identity.
//!
//! # Storage
//!
//! Records live in the [`KvStore`] it is given, under a prefix (default
//! [`DEFAULT_PREFIX`]), so it can share a store or own a RocksDB column family:
//!
//! ```text
//! <prefix> "c" <address>            -> StoredContact   (one per address)
//! <prefix> "o" <address> <seq u64 BE> -> StoredObservation (the last MAX_OBSERVATIONS)
//! ```
//!
//! `<address>` is the codec encoding of the normalized address, which is self-delimiting, so
//! the observations of one address are exactly one prefix scan. Every change that touches more
//! than one key is one atomic [`WriteBatch`]. Records are versioned bincode (see
//! [`codec`]); a record that does not decode is reported as [`TrustError::Corrupt`] and left
//! untouched, never a panic.
//!
//! One `TrustStore` per store: it serializes its own read-modify-write cycles with a mutex,
//! which two instances over the same keys would not share.

use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::address::{Address, AddressError};
use crate::codec::{self, CodecError};
use crate::fingerprint::Fingerprint;
use crate::keys::{DevicePublicKey, IdentityPublicKey};
use crate::kv::{KvError, KvStore, WriteBatch};
use crate::safety_number::{SafetyNumber, SafetyNumberParseError};

/// The prefix keys live under unless another is given.
pub const DEFAULT_PREFIX: &[u8] = b"tofu/";

/// Observations kept per address; older ones are deleted as new ones arrive.
pub const MAX_OBSERVATIONS: u64 = 64;

/// Device keys remembered per contact; beyond that the least recently seen is forgotten (and
/// would be reported as a new device again if it came back).
pub const MAX_DEVICES: usize = 64;

/// Largest stored record accepted when reading back.
const MAX_RECORD_LEN: usize = 32 * 1024;

/// The layout of a trust store under `prefix` for encryption at rest
/// ([`crate::kv::SealedKv`]): addresses name contacts, so they are stored as keyed hashes.
pub fn sealed_layout(prefix: &[u8]) -> crate::kv::KeySchema {
    use crate::kv::{KeyRule, KeySchema};
    KeySchema::new(vec![
        KeyRule::starting_with(prefix)
            .literal(&[CONTACT_TAG])
            .secret_rest(),
        KeyRule::starting_with(prefix)
            .literal(&[OBSERVATION_TAG])
            .secret_rest_then_plain(8),
    ])
}

const RECORD_VERSION: u16 = 1;
const CONTACT_TAG: u8 = b'c';
const OBSERVATION_TAG: u8 = b'o';

/// How much the user has checked a contact's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrustLevel {
    /// Pinned on first use; nobody compared safety numbers.
    Unverified,
    /// The user compared safety numbers for the pinned key.
    Verified,
}

/// A device key seen for a contact's pinned identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSeen {
    /// The device key.
    pub device_key: DevicePublicKey,
    /// First sighting, ms since the Unix epoch.
    pub first_seen_ms: u64,
    /// Latest sighting.
    pub last_seen_ms: u64,
}

/// A different identity key offered for a pinned address, refused until the user accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingKeyChange {
    /// The identity key that was offered.
    pub offered: IdentityPublicKey,
    /// The device key it came with.
    pub device_key: DevicePublicKey,
    /// When this key was first offered.
    pub first_seen_ms: u64,
    /// When it was last offered.
    pub last_seen_ms: u64,
    /// How many times it was offered (and refused).
    pub times_refused: u64,
}

/// What the trust store knows about one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The address (normalized).
    pub address: Address,
    /// The pinned identity key.
    pub identity_key: IdentityPublicKey,
    /// Whether safety numbers were compared for the pinned key.
    pub level: TrustLevel,
    /// Device keys seen for the pinned identity, ordered by key.
    pub devices: Vec<DeviceSeen>,
    /// A refused different identity key, if one was offered since the pin.
    pub pending_key_change: Option<PendingKeyChange>,
    /// When the current key was pinned (first sight or accepted key change).
    pub pinned_at_ms: u64,
    /// Latest sighting of the pinned identity.
    pub last_seen_ms: u64,
    /// When the contact was marked verified, if it is.
    pub verified_at_ms: Option<u64>,
}

impl Contact {
    /// The fingerprint of the pinned identity.
    pub fn fingerprint(&self) -> Fingerprint {
        self.identity_key.fingerprint()
    }

    /// True when the user verified the pinned key.
    pub fn is_verified(&self) -> bool {
        self.level == TrustLevel::Verified
    }
}

/// The TOFU decision for one sighting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The address was unknown; the identity is now pinned to it.
    FirstSight,
    /// The pinned identity, with a device seen before.
    Known,
    /// The pinned identity with a device not seen before: accepted, worth reporting.
    NewDevice,
    /// A different identity key than the pinned one: **refused**, recorded as pending.
    KeyChanged {
        /// The pinned identity key (still in force).
        pinned: IdentityPublicKey,
        /// The identity key that was offered and refused.
        offered: IdentityPublicKey,
    },
}

/// One recorded sighting of an (identity, device) pair at an address.
#[must_use = "a KeyChanged observation is a refusal that must be reported"]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// When it was seen, ms since the Unix epoch.
    pub at_ms: u64,
    /// Where (normalized).
    pub address: Address,
    /// The identity key presented.
    pub identity_key: IdentityPublicKey,
    /// The device key presented.
    pub device_key: DevicePublicKey,
    /// The decision.
    pub outcome: Outcome,
}

impl Observation {
    /// False exactly when the sighting was refused (a key change).
    pub fn is_accepted(&self) -> bool {
        !matches!(self.outcome, Outcome::KeyChanged { .. })
    }
}

/// Errors of the trust store.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The underlying store failed.
    #[error("trust store storage: {0}")]
    Storage(#[from] KvError),
    /// A stored record does not decode or does not belong under its key. Nothing was changed.
    #[error("corrupt trust record under key {key}: {reason}")]
    Corrupt {
        /// The key, hex.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The address is not acceptable.
    #[error("invalid address: {0}")]
    InvalidAddress(#[from] AddressError),
    /// No contact is pinned at this address.
    #[error("no contact at {0}")]
    UnknownAddress(Address),
    /// `accept_key_change` was called but no key change is pending.
    #[error("no key change is pending for {0}")]
    NoPendingKeyChange(Address),
    /// `accept_key_change` named another key than the one pending (a newer key was offered
    /// since the user looked): nothing was accepted.
    #[error("the pending key for this address is {pending}, not {given}")]
    PendingKeyMismatch {
        /// The key actually pending.
        pending: IdentityPublicKey,
        /// The key the caller tried to accept.
        given: IdentityPublicKey,
    },
    /// The typed safety number is not a safety number at all.
    #[error("not a safety number: {0}")]
    InvalidSafetyNumber(#[from] SafetyNumberParseError),
    /// The typed safety number is not the one of (own identity, pinned identity). Nothing was
    /// changed; the contact stays at its level.
    #[error("safety number does not match; the contact stays unverified")]
    SafetyNumberMismatch,
    /// One of our own records could not be encoded.
    #[error("cannot encode trust record: {0}")]
    Encode(#[source] CodecError),
}

/// What is stored per address.
#[derive(Serialize, Deserialize)]
struct StoredContact {
    version: u16,
    contact: Contact,
    /// Sequence number of the next observation of this address.
    next_observation: u64,
}

/// What is stored per observation.
#[derive(Serialize, Deserialize)]
struct StoredObservation {
    version: u16,
    observation: Observation,
}

/// The TOFU trust store over a [`KvStore`].
pub struct TrustStore<S: KvStore> {
    store: S,
    prefix: Vec<u8>,
    /// Serializes read-modify-write cycles.
    lock: Mutex<()>,
}

impl<S: KvStore> std::fmt::Debug for TrustStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .finish_non_exhaustive()
    }
}

impl<S: KvStore> TrustStore<S> {
    /// A trust store keeping its records under [`DEFAULT_PREFIX`] in `store`.
    pub fn new(store: S) -> Self {
        Self::with_prefix(store, DEFAULT_PREFIX)
    }

    /// A trust store keeping its records under `prefix` in `store`.
    pub fn with_prefix(store: S, prefix: &[u8]) -> Self {
        Self {
            store,
            prefix: prefix.to_vec(),
            lock: Mutex::new(()),
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Records a sighting of `identity_key` with `device_key` at `address`, and decides it.
    ///
    /// The caller must already have verified that the identity key certified the device key
    /// ([`validate_credential`](crate::validate::validate_credential) does both). The result
    /// is `Ok` for every decision, including the refusal [`Outcome::KeyChanged`]: check
    /// [`Observation::is_accepted`].
    pub fn observe(
        &self,
        address: &Address,
        identity_key: &IdentityPublicKey,
        device_key: &DevicePublicKey,
        now_ms: u64,
    ) -> Result<Observation, TrustError> {
        let address = address.normalized()?;
        let _guard = self.guard();
        let existing = self.load(&address)?;
        let (outcome, stored) = match existing {
            None => {
                let contact = Contact {
                    address: address.clone(),
                    identity_key: *identity_key,
                    level: TrustLevel::Unverified,
                    devices: vec![DeviceSeen {
                        device_key: *device_key,
                        first_seen_ms: now_ms,
                        last_seen_ms: now_ms,
                    }],
                    pending_key_change: None,
                    pinned_at_ms: now_ms,
                    last_seen_ms: now_ms,
                    verified_at_ms: None,
                };
                let stored = StoredContact {
                    version: RECORD_VERSION,
                    contact,
                    next_observation: 0,
                };
                (Outcome::FirstSight, stored)
            }
            Some(mut stored) => {
                let contact = &mut stored.contact;
                let outcome = if contact.identity_key == *identity_key {
                    contact.last_seen_ms = contact.last_seen_ms.max(now_ms);
                    if note_device(&mut contact.devices, device_key, now_ms) {
                        Outcome::NewDevice
                    } else {
                        Outcome::Known
                    }
                } else {
                    note_key_change(contact, identity_key, device_key, now_ms);
                    Outcome::KeyChanged {
                        pinned: contact.identity_key,
                        offered: *identity_key,
                    }
                };
                (outcome, stored)
            }
        };
        let observation = Observation {
            at_ms: now_ms,
            address,
            identity_key: *identity_key,
            device_key: *device_key,
            outcome,
        };
        self.save_with_observation(stored, &observation)?;
        log_observation(&observation);
        Ok(observation)
    }

    /// The user accepts the pending key change at `address` to `offered` (the key reported in
    /// the [`Outcome::KeyChanged`] they saw). It becomes the pin, unverified, with the device
    /// it came with. Naming the key makes sure the user accepts what they were shown, not a
    /// newer key offered in the meantime.
    pub fn accept_key_change(
        &self,
        address: &Address,
        offered: &IdentityPublicKey,
        now_ms: u64,
    ) -> Result<Contact, TrustError> {
        let address = address.normalized()?;
        let _guard = self.guard();
        let mut stored = self
            .load(&address)?
            .ok_or_else(|| TrustError::UnknownAddress(address.clone()))?;
        let contact = &mut stored.contact;
        let pending = contact
            .pending_key_change
            .take()
            .ok_or_else(|| TrustError::NoPendingKeyChange(address.clone()))?;
        if pending.offered != *offered {
            return Err(TrustError::PendingKeyMismatch {
                pending: pending.offered,
                given: *offered,
            });
        }
        let previous = contact.identity_key;
        contact.identity_key = pending.offered;
        contact.level = TrustLevel::Unverified;
        contact.verified_at_ms = None;
        contact.devices = vec![DeviceSeen {
            device_key: pending.device_key,
            first_seen_ms: pending.first_seen_ms,
            last_seen_ms: pending.last_seen_ms,
        }];
        contact.pinned_at_ms = now_ms;
        contact.last_seen_ms = pending.last_seen_ms;
        let contact = contact.clone();
        let mut batch = WriteBatch::default();
        batch.put(&self.contact_key(&address)?, &encode(&stored)?);
        self.store.write(batch)?;
        tracing::warn!(
            %address,
            previous = %previous.fingerprint().short_hex(),
            now_pinned = %contact.fingerprint().short_hex(),
            "user accepted identity key change"
        );
        Ok(contact)
    }

    /// Marks the contact at `address` verified if `typed` is the safety number of
    /// (`own_identity`, pinned identity). A mismatch or unparsable number is an error and
    /// changes nothing.
    pub fn verify(
        &self,
        address: &Address,
        typed: &str,
        own_identity: &IdentityPublicKey,
        now_ms: u64,
    ) -> Result<Contact, TrustError> {
        let address = address.normalized()?;
        let typed: SafetyNumber = typed.parse()?;
        let _guard = self.guard();
        let mut stored = self
            .load(&address)?
            .ok_or_else(|| TrustError::UnknownAddress(address.clone()))?;
        if SafetyNumber::new(own_identity, &stored.contact.identity_key) != typed {
            tracing::warn!(%address, "safety number mismatch");
            return Err(TrustError::SafetyNumberMismatch);
        }
        stored.contact.level = TrustLevel::Verified;
        stored.contact.verified_at_ms = Some(now_ms);
        self.store
            .put(&self.contact_key(&address)?, &encode(&stored)?)?;
        tracing::info!(%address, "contact verified");
        Ok(stored.contact)
    }

    /// Takes the verified mark off the contact at `address` (the user no longer vouches).
    pub fn mark_unverified(&self, address: &Address) -> Result<Contact, TrustError> {
        let address = address.normalized()?;
        let _guard = self.guard();
        let mut stored = self
            .load(&address)?
            .ok_or_else(|| TrustError::UnknownAddress(address.clone()))?;
        stored.contact.level = TrustLevel::Unverified;
        stored.contact.verified_at_ms = None;
        self.store
            .put(&self.contact_key(&address)?, &encode(&stored)?)?;
        Ok(stored.contact)
    }

    /// The contact pinned at `address`, if any.
    pub fn contact(&self, address: &Address) -> Result<Option<Contact>, TrustError> {
        let address = address.normalized()?;
        Ok(self.load(&address)?.map(|stored| stored.contact))
    }

    /// Every contact, ordered by stored address key.
    pub fn contacts(&self) -> Result<Vec<Contact>, TrustError> {
        let mut prefix = self.prefix.clone();
        prefix.push(CONTACT_TAG);
        self.store
            .scan_prefix(&prefix)?
            .into_iter()
            .map(|(key, value)| {
                let stored = decode_contact(&key, &value)?;
                if self.contact_key(&stored.contact.address)? != key {
                    return Err(corrupt(&key, "record is for another address"));
                }
                Ok(stored.contact)
            })
            .collect()
    }

    /// Every contact whose pinned identity is `identity_key` (one person, several addresses).
    pub fn contacts_with_identity(
        &self,
        identity_key: &IdentityPublicKey,
    ) -> Result<Vec<Contact>, TrustError> {
        Ok(self
            .contacts()?
            .into_iter()
            .filter(|c| c.identity_key == *identity_key)
            .collect())
    }

    /// The recorded observations of `address`, oldest first (at most [`MAX_OBSERVATIONS`]).
    pub fn observations(&self, address: &Address) -> Result<Vec<Observation>, TrustError> {
        let address = address.normalized()?;
        self.store
            .scan_prefix(&self.observation_prefix(&address)?)?
            .into_iter()
            .map(|(key, value)| {
                let stored: StoredObservation = codec::decode(&value, MAX_RECORD_LEN)
                    .map_err(|e| corrupt(&key, &e.to_string()))?;
                if stored.version != RECORD_VERSION {
                    return Err(corrupt(&key, "unknown record version"));
                }
                if stored.observation.address != address {
                    return Err(corrupt(&key, "observation is for another address"));
                }
                Ok(stored.observation)
            })
            .collect()
    }

    /// Forgets everything about `address` (pin, devices, observations) in one batch. Returns
    /// whether a contact was pinned there.
    pub fn forget(&self, address: &Address) -> Result<bool, TrustError> {
        let address = address.normalized()?;
        let _guard = self.guard();
        let key = self.contact_key(&address)?;
        let existed = self.store.get(&key)?.is_some();
        let mut batch = WriteBatch::default();
        batch.delete(&key);
        batch.delete_prefix(&self.observation_prefix(&address)?);
        self.store.write(batch)?;
        if existed {
            tracing::info!(%address, "contact forgotten");
        }
        Ok(existed)
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        // The mutex guards no data, only ordering; a panic elsewhere leaves nothing to repair.
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn address_bytes(address: &Address) -> Result<Vec<u8>, TrustError> {
        codec::encode(address).map_err(TrustError::Encode)
    }

    fn contact_key(&self, address: &Address) -> Result<Vec<u8>, TrustError> {
        let mut key = self.prefix.clone();
        key.push(CONTACT_TAG);
        key.extend(Self::address_bytes(address)?);
        Ok(key)
    }

    fn observation_prefix(&self, address: &Address) -> Result<Vec<u8>, TrustError> {
        let mut key = self.prefix.clone();
        key.push(OBSERVATION_TAG);
        key.extend(Self::address_bytes(address)?);
        Ok(key)
    }

    fn observation_key(&self, address: &Address, seq: u64) -> Result<Vec<u8>, TrustError> {
        let mut key = self.observation_prefix(address)?;
        key.extend(seq.to_be_bytes());
        Ok(key)
    }

    fn load(&self, address: &Address) -> Result<Option<StoredContact>, TrustError> {
        let key = self.contact_key(address)?;
        let Some(value) = self.store.get(&key)? else {
            return Ok(None);
        };
        let stored = decode_contact(&key, &value)?;
        if stored.contact.address != *address {
            return Err(corrupt(&key, "record is for another address"));
        }
        Ok(Some(stored))
    }

    /// Writes the contact record, appends the observation and drops the one that falls out of
    /// the window, atomically.
    fn save_with_observation(
        &self,
        mut stored: StoredContact,
        observation: &Observation,
    ) -> Result<(), TrustError> {
        let address = &observation.address;
        let seq = stored.next_observation;
        stored.next_observation = seq.saturating_add(1);
        let mut batch = WriteBatch::default();
        batch.put(&self.contact_key(address)?, &encode(&stored)?);
        let record = StoredObservation {
            version: RECORD_VERSION,
            observation: observation.clone(),
        };
        batch.put(&self.observation_key(address, seq)?, &encode(&record)?);
        if let Some(old) = seq.checked_sub(MAX_OBSERVATIONS) {
            batch.delete(&self.observation_key(address, old)?);
        }
        self.store.write(batch)?;
        Ok(())
    }
}

/// Adds or refreshes `device_key` in `devices`; true when it was not there before.
fn note_device(devices: &mut Vec<DeviceSeen>, device_key: &DevicePublicKey, now_ms: u64) -> bool {
    match devices.binary_search_by(|d| d.device_key.cmp(device_key)) {
        Ok(i) => {
            devices[i].last_seen_ms = devices[i].last_seen_ms.max(now_ms);
            false
        }
        Err(i) => {
            devices.insert(
                i,
                DeviceSeen {
                    device_key: *device_key,
                    first_seen_ms: now_ms,
                    last_seen_ms: now_ms,
                },
            );
            if devices.len() > MAX_DEVICES
                && let Some(stalest) = devices
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.device_key != *device_key)
                    .min_by_key(|(_, d)| d.last_seen_ms)
                    .map(|(i, _)| i)
            {
                devices.remove(stalest);
            }
            true
        }
    }
}

/// Records a refused different identity key as the pending key change.
fn note_key_change(
    contact: &mut Contact,
    offered: &IdentityPublicKey,
    device_key: &DevicePublicKey,
    now_ms: u64,
) {
    match &mut contact.pending_key_change {
        Some(pending) if pending.offered == *offered => {
            pending.last_seen_ms = pending.last_seen_ms.max(now_ms);
            pending.device_key = *device_key;
            pending.times_refused = pending.times_refused.saturating_add(1);
        }
        // No pending change, or a third key: the latest offer is what the user gets to judge.
        slot => {
            *slot = Some(PendingKeyChange {
                offered: *offered,
                device_key: *device_key,
                first_seen_ms: now_ms,
                last_seen_ms: now_ms,
                times_refused: 1,
            });
        }
    }
}

fn log_observation(observation: &Observation) {
    let address = &observation.address;
    let fingerprint = observation.identity_key.fingerprint().short_hex();
    match &observation.outcome {
        Outcome::FirstSight => tracing::info!(%address, %fingerprint, "pinned on first sight"),
        Outcome::Known => tracing::debug!(%address, %fingerprint, "known identity"),
        Outcome::NewDevice => tracing::info!(
            %address, %fingerprint, device = %observation.device_key, "new device of pinned identity"
        ),
        Outcome::KeyChanged { pinned, offered } => tracing::warn!(
            %address,
            pinned = %pinned.fingerprint().short_hex(),
            offered = %offered.fingerprint().short_hex(),
            "identity key changed: refused until the user accepts it"
        ),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, TrustError> {
    codec::encode(value).map_err(TrustError::Encode)
}

fn corrupt(key: &[u8], reason: &str) -> TrustError {
    TrustError::Corrupt {
        key: hex::encode(key),
        reason: reason.to_string(),
    }
}

fn decode_contact(key: &[u8], value: &[u8]) -> Result<StoredContact, TrustError> {
    let stored: StoredContact =
        codec::decode(value, MAX_RECORD_LEN).map_err(|e| corrupt(key, &e.to_string()))?;
    if stored.version != RECORD_VERSION {
        return Err(corrupt(key, "unknown record version"));
    }
    Ok(stored)
}

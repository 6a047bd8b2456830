//! A tiny MLS client over `ChorusProvider`, for the storage tests. Messages travel as the
//! RFC 9420 bytes a real network would carry.

#![allow(dead_code)]

pub mod fork;
pub mod net;
pub mod scenario;

use std::sync::Arc;

use ds_p2p::storage::ChorusProvider;
use ds_p2p::storage::kv::{Durability, KvStore, MemoryStore, RocksDb};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;

pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

pub struct Client {
    pub name: String,
    pub provider: ChorusProvider,
    pub signer: SignatureKeyPair,
    pub credential: CredentialWithKey,
    pub group: Option<MlsGroup>,
}

pub fn memory_kv() -> Arc<dyn KvStore> {
    Arc::new(MemoryStore::new())
}

pub fn rocks_kv(dir: &std::path::Path) -> (Arc<RocksDb>, Arc<dyn KvStore>) {
    let db = RocksDb::open(dir, &["mls"], Durability::ProcessCrashSafe).unwrap();
    let store = db.store("mls").unwrap();
    (db, Arc::new(store))
}

pub fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .build()
}

impl Client {
    pub fn new(name: &str, kv: Arc<dyn KvStore>) -> Self {
        let provider = ChorusProvider::new(kv);
        let signer = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).unwrap();
        signer.store(provider.storage()).unwrap();
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.public().into(),
        };
        Self {
            name: name.into(),
            provider,
            signer,
            credential,
            group: None,
        }
    }

    /// The same client after a restart: a new provider over the same store, the signer read
    /// back from storage and the group loaded from its active branch.
    pub fn reopen(
        name: &str,
        kv: Arc<dyn KvStore>,
        signer_public: &[u8],
        group_id: &GroupId,
    ) -> Self {
        let provider = ChorusProvider::new(kv);
        let signer = SignatureKeyPair::read(
            provider.storage(),
            signer_public,
            CIPHERSUITE.signature_algorithm(),
        )
        .expect("signer survives the restart");
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.public().into(),
        };
        let group = MlsGroup::load(provider.storage(), group_id).unwrap();
        assert!(group.is_some(), "group survives the restart");
        Self {
            name: name.into(),
            provider,
            signer,
            credential,
            group,
        }
    }

    pub fn group(&mut self) -> &mut MlsGroup {
        self.group.as_mut().expect("client is in a group")
    }

    pub fn group_id(&self) -> GroupId {
        self.group.as_ref().unwrap().group_id().clone()
    }

    pub fn create_group(&mut self) {
        let group = MlsGroup::builder()
            .ciphersuite(CIPHERSUITE)
            .use_ratchet_tree_extension(true)
            .with_wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .build(&self.provider, &self.signer, self.credential.clone())
            .unwrap();
        self.group = Some(group);
    }

    pub fn key_package(&self) -> KeyPackage {
        KeyPackage::builder()
            .build(
                CIPHERSUITE,
                &self.provider,
                &self.signer,
                self.credential.clone(),
            )
            .unwrap()
            .key_package()
            .clone()
    }

    /// Adds the members and merges; returns (commit bytes, welcome bytes).
    pub fn add(&mut self, key_packages: &[KeyPackage]) -> (Vec<u8>, Vec<u8>) {
        let provider = &self.provider;
        let group = self.group.as_mut().unwrap();
        let (commit, welcome, _) = group
            .add_members(provider, &self.signer, key_packages)
            .unwrap();
        group.merge_pending_commit(provider).unwrap();
        (wire(&commit), wire(&welcome))
    }

    pub fn join(&mut self, welcome: &[u8]) {
        let message = MlsMessageIn::tls_deserialize_exact(welcome).unwrap();
        let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
            panic!("not a welcome");
        };
        let group = StagedWelcome::new_from_welcome(&self.provider, &join_config(), welcome, None)
            .unwrap()
            .into_group(&self.provider)
            .unwrap();
        self.group = Some(group);
    }

    /// Creates a self-update commit without merging it (the commit is pending).
    pub fn self_update_pending(&mut self) -> Vec<u8> {
        let provider = &self.provider;
        let group = self.group.as_mut().unwrap();
        let bundle = group
            .self_update(provider, &self.signer, LeafNodeParameters::default())
            .unwrap();
        wire(bundle.commit())
    }

    /// Merges this client's own pending commit.
    pub fn merge_pending(&mut self) {
        let provider = &self.provider;
        self.group
            .as_mut()
            .unwrap()
            .merge_pending_commit(provider)
            .unwrap();
    }

    pub fn send(&mut self, text: &str) -> Vec<u8> {
        let provider = &self.provider;
        let group = self.group.as_mut().unwrap();
        wire(
            &group
                .create_message(provider, &self.signer, text.as_bytes())
                .unwrap(),
        )
    }

    /// Processes a message; merges a commit; returns the application text if it was one.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Option<String>, String> {
        let provider = &self.provider;
        let group = self.group.as_mut().unwrap();
        let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| e.to_string())?;
        let protocol = message
            .try_into_protocol_message()
            .map_err(|e| e.to_string())?;
        let processed = group
            .process_message(provider, protocol)
            .map_err(|e| e.to_string())?;
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => {
                Ok(Some(String::from_utf8(app.into_bytes()).unwrap()))
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                group
                    .merge_staged_commit(provider, *staged)
                    .map_err(|e| e.to_string())?;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Loads the group again from the active branch (after activate()).
    pub fn reload(&mut self) {
        let id = self.group_id();
        self.group = MlsGroup::load(self.provider.storage(), &id).unwrap();
    }

    pub fn epoch(&self) -> u64 {
        self.group.as_ref().unwrap().epoch().as_u64()
    }

    pub fn epoch_authenticator(&self) -> Vec<u8> {
        self.group
            .as_ref()
            .unwrap()
            .epoch_authenticator()
            .as_slice()
            .to_vec()
    }

    /// The branch id of DESIGN §4: an exporter secret equal for members of one branch.
    pub fn branch_id(&self) -> Vec<u8> {
        self.group
            .as_ref()
            .unwrap()
            .export_secret(self.provider.crypto(), "chorus branch", &[], 16)
            .unwrap()
    }
}

pub fn wire(message: &MlsMessageOut) -> Vec<u8> {
    message.tls_serialize_detached().unwrap()
}

/// How a secret's bytes look inside a stored openmls value: as they are (values are bincode,
/// which writes a byte string's length and then its bytes).
pub fn stored_probe(bytes: &[u8]) -> Vec<u8> {
    bytes.to_vec()
}

/// True if any regular file under `dir` contains `needle`.
pub fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                return true;
            }
        }
    }
    false
}

//! `MlsStorage`: the openmls `StorageProvider`, written once over [`KvStore`] through a
//! [`StagedStore`], with every group's state kept per branch (see [`super::branches`]).
//!
//! openmls hands us typed values that are serde-serialisable; [`super::value_codec`] says how
//! they are encoded (bincode, with a few JSON exceptions). Keys that embed an openmls value (a
//! group id, a KeyPackage ref) encode it as JSON, as they always have, so stored state is
//! found again.

use std::sync::{Arc, Mutex, MutexGuard};

use identity_tofu::kv::KvError;
use openmls_traits::storage::{CURRENT_VERSION, StorageProvider, traits};
use serde::{Serialize, de::DeserializeOwned};

use super::layout::{BranchId, GroupToken, client_key, decode_branch, label};
use super::staged::{StagedStore, TxnError};
use super::value_codec::{decode_value, encode_value};

/// Errors of the MLS storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key-value store failed.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// A value handed to us could not be serialised.
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
    /// A stored value could not be read back: the store is damaged or was written by
    /// something else. Nothing was changed.
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// The branch does not exist for this group.
    #[error("group has no branch {0}")]
    UnknownBranch(BranchId),
    /// The active branch cannot be pruned; switch to another first.
    #[error("branch {0} is the active branch and cannot be pruned")]
    PruneActive(BranchId),
    /// The group has no state in this store.
    #[error("no such group in storage")]
    UnknownGroup,
    /// Transaction misuse or failure.
    #[error(transparent)]
    Txn(#[from] TxnError),
}

/// Encodes an openmls value that becomes part of a key (JSON: the key layout predates the
/// binary value encoding and must not change).
fn encode_key<T: Serialize + ?Sized>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(value).map_err(|e| StorageError::Encode {
        what,
        detail: e.to_string(),
    })
}

/// The openmls storage of one client (one device), over one key-value store.
///
/// Clones share the store, the open transaction and the group scope.
#[derive(Clone, Debug)]
pub struct MlsStorage {
    pub(crate) store: StagedStore,
    /// The group the engine is working on, if any. Standalone encryption key pairs (made for
    /// update proposals) are written into that group's active branch, so that a checkpoint
    /// holds them and pruning a branch deletes them; openmls does not tell us the group.
    scope: Arc<Mutex<Option<GroupToken>>>,
}

impl MlsStorage {
    /// Deletes (and scrubs) the KeyPackages consumed by joins, which are kept aside until
    /// the fork window has passed so that a displaced Add can be re-done. Returns how many.
    pub fn purge_retired_key_packages(&self) -> Result<usize, StorageError> {
        let prefix = client_key(label::RETIRED_KEY_PACKAGE, &[]);
        let count = self.store.scan_prefix(&prefix)?.len();
        if count > 0 {
            self.store.delete_prefix(prefix, true)?;
        }
        Ok(count)
    }

    /// MLS storage over `store` (for a node: the `mls` column family).
    pub fn new(store: StagedStore) -> Self {
        Self {
            store,
            scope: Arc::new(Mutex::new(None)),
        }
    }

    /// The staged store underneath (to open and commit transactions).
    pub fn staged(&self) -> &StagedStore {
        &self.store
    }

    fn scope_lock(&self) -> MutexGuard<'_, Option<GroupToken>> {
        self.scope.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the group whose branch receives standalone encryption key pairs; `None` for work
    /// outside any group (creating key packages).
    pub fn set_group_scope(
        &self,
        group_id: Option<&openmls::group::GroupId>,
    ) -> Result<(), StorageError> {
        let token = group_id.map(group_token).transpose()?;
        *self.scope_lock() = token;
        Ok(())
    }

    pub(crate) fn active_branch_of(
        &self,
        token: &GroupToken,
    ) -> Result<Option<BranchId>, StorageError> {
        match self.store.get(&token.active_key())? {
            None => Ok(None),
            Some(bytes) => decode_branch(&bytes)
                .map(Some)
                .ok_or(StorageError::Corrupt {
                    what: "active branch pointer",
                    detail: format!("{} bytes", bytes.len()),
                }),
        }
    }

    /// The active branch, creating branch 0 for a group seen for the first time.
    fn active_or_create(&self, token: &GroupToken) -> Result<BranchId, StorageError> {
        if let Some(branch) = self.active_branch_of(token)? {
            return Ok(branch);
        }
        let first = BranchId(0);
        self.store
            .put(token.active_key(), first.0.to_be_bytes().to_vec())?;
        self.store
            .put(token.next_key(), 1u64.to_be_bytes().to_vec())?;
        self.store.put(token.marker_key(first), Vec::new())?;
        Ok(first)
    }

    fn read_group<V: DeserializeOwned>(
        &self,
        group_id: &impl Serialize,
        what: &'static str,
        item: &[u8],
    ) -> Result<Option<V>, StorageError> {
        let token = token_of(group_id)?;
        let Some(branch) = self.active_branch_of(&token)? else {
            return Ok(None);
        };
        match self.store.get(&token.item_key(branch, what, item))? {
            None => Ok(None),
            Some(bytes) => decode_value(what, &bytes).map(Some),
        }
    }

    fn write_group<V: Serialize + ?Sized>(
        &self,
        group_id: &impl Serialize,
        what: &'static str,
        item: &[u8],
        value: &V,
    ) -> Result<(), StorageError> {
        let token = token_of(group_id)?;
        let branch = self.active_or_create(&token)?;
        self.store.put(
            token.item_key(branch, what, item),
            encode_value(what, value)?,
        )?;
        Ok(())
    }

    fn delete_group_item(
        &self,
        group_id: &impl Serialize,
        what: &'static str,
        item: &[u8],
    ) -> Result<(), StorageError> {
        let token = token_of(group_id)?;
        if let Some(branch) = self.active_branch_of(&token)? {
            self.store.delete(token.item_key(branch, what, item))?;
        }
        Ok(())
    }

    fn read_list(
        &self,
        group_id: &impl Serialize,
        what: &'static str,
    ) -> Result<Vec<serde_json::Value>, StorageError> {
        Ok(self.read_group(group_id, what, &[])?.unwrap_or_default())
    }

    fn read_client<V: DeserializeOwned>(
        &self,
        what: &'static str,
        key: &impl Serialize,
    ) -> Result<Option<V>, StorageError> {
        match self.store.get(&client_key(what, &encode_key(what, key)?))? {
            None => Ok(None),
            Some(bytes) => decode_value(what, &bytes).map(Some),
        }
    }

    fn write_client<V: Serialize>(
        &self,
        what: &'static str,
        key: &impl Serialize,
        value: &V,
    ) -> Result<(), StorageError> {
        self.store.put(
            client_key(what, &encode_key(what, key)?),
            encode_value(what, value)?,
        )?;
        Ok(())
    }

    fn delete_client(&self, what: &'static str, key: &impl Serialize) -> Result<(), StorageError> {
        self.store
            .delete(client_key(what, &encode_key(what, key)?))?;
        Ok(())
    }

    /// The key of a standalone encryption key pair: in the scoped group's active branch if a
    /// group is in scope, else per client.
    fn scoped_key_pair_key(&self, public_key: &impl Serialize) -> Result<Vec<u8>, StorageError> {
        let item = encode_key(label::ENCRYPTION_KEY_PAIR, public_key)?;
        let scope = *self.scope_lock();
        if let Some(token) = scope {
            let branch = self.active_or_create(&token)?;
            return Ok(token.item_key(branch, label::ENCRYPTION_KEY_PAIR, &item));
        }
        Ok(client_key(label::ENCRYPTION_KEY_PAIR, &item))
    }
}

/// The storage token of a group id (as openmls serialises it).
pub fn group_token(group_id: &openmls::group::GroupId) -> Result<GroupToken, StorageError> {
    token_of(group_id)
}

fn token_of(group_id: &impl Serialize) -> Result<GroupToken, StorageError> {
    Ok(GroupToken::from_serialized_group_id(&encode_key(
        "group id", group_id,
    )?))
}

fn epoch_item(epoch: &impl Serialize, leaf_index: u32) -> Result<Vec<u8>, StorageError> {
    encode_key(label::EPOCH_KEY_PAIRS, &(epoch, leaf_index))
}

impl StorageProvider<CURRENT_VERSION> for MlsStorage {
    type Error = StorageError;

    fn write_mls_join_config<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MlsGroupJoinConfig: traits::MlsGroupJoinConfig<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        config: &MlsGroupJoinConfig,
    ) -> Result<(), Self::Error> {
        self.write_group(group_id, label::JOIN_CONFIG, &[], config)
    }

    fn append_own_leaf_node<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        leaf_node: &LeafNode,
    ) -> Result<(), Self::Error> {
        let mut list = self.read_list(group_id, label::OWN_LEAF_NODES)?;
        list.push(to_value(label::OWN_LEAF_NODES, leaf_node)?);
        self.write_group(group_id, label::OWN_LEAF_NODES, &[], &list)
    }

    fn queue_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
        proposal: &QueuedProposal,
    ) -> Result<(), Self::Error> {
        let item = encode_key(label::PROPOSAL, proposal_ref)?;
        self.write_group(group_id, label::PROPOSAL, &item, proposal)?;
        let mut refs = self.read_list(group_id, label::PROPOSAL_REFS)?;
        let new_ref = to_value(label::PROPOSAL_REFS, proposal_ref)?;
        if !refs.contains(&new_ref) {
            refs.push(new_ref);
        }
        self.write_group(group_id, label::PROPOSAL_REFS, &[], &refs)
    }

    fn write_tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        TreeSync: traits::TreeSync<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        tree: &TreeSync,
    ) -> Result<(), Self::Error> {
        self.write_group(group_id, label::TREE, &[], tree)
    }

    fn write_interim_transcript_hash<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        InterimTranscriptHash: traits::InterimTranscriptHash<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        interim_transcript_hash: &InterimTranscriptHash,
    ) -> Result<(), Self::Error> {
        self.write_group(
            group_id,
            label::INTERIM_TRANSCRIPT_HASH,
            &[],
            interim_transcript_hash,
        )
    }

    fn write_context<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupContext: traits::GroupContext<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_context: &GroupContext,
    ) -> Result<(), Self::Error> {
        self.write_group(group_id, label::CONTEXT, &[], group_context)
    }

    fn write_confirmation_tag<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ConfirmationTag: traits::ConfirmationTag<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        confirmation_tag: &ConfirmationTag,
    ) -> Result<(), Self::Error> {
        self.write_group(group_id, label::CONFIRMATION_TAG, &[], confirmation_tag)
    }

    fn write_group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_state: &GroupState,
    ) -> Result<(), Self::Error> {
        self.write_group(group_id, label::GROUP_STATE, &[], group_state)
    }

    fn write_message_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MessageSecrets: traits::MessageSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        message_secrets: &MessageSecrets,
    ) -> Result<(), Self::Error> {
        self.write_group(group_id, label::MESSAGE_SECRETS, &[], message_secrets)
    }

    fn write_resumption_psk_store<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ResumptionPskStore: traits::ResumptionPskStore<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        resumption_psk_store: &ResumptionPskStore,
    ) -> Result<(), Self::Error> {
        self.write_group(
            group_id,
            label::RESUMPTION_PSK_STORE,
            &[],
            resumption_psk_store,
        )
    }

    fn write_own_leaf_index<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNodeIndex: traits::LeafNodeIndex<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        own_leaf_index: &LeafNodeIndex,
    ) -> Result<(), Self::Error> {
        self.write_group(group_id, label::OWN_LEAF_INDEX, &[], own_leaf_index)
    }

    fn write_group_epoch_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupEpochSecrets: traits::GroupEpochSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_epoch_secrets: &GroupEpochSecrets,
    ) -> Result<(), Self::Error> {
        self.write_group(group_id, label::EPOCH_SECRETS, &[], group_epoch_secrets)
    }

    fn write_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
        signature_key_pair: &SignatureKeyPair,
    ) -> Result<(), Self::Error> {
        self.write_client(label::SIGNATURE_KEY_PAIR, public_key, signature_key_pair)
    }

    fn write_encryption_key_pair<
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
        key_pair: &HpkeKeyPair,
    ) -> Result<(), Self::Error> {
        let key = self.scoped_key_pair_key(public_key)?;
        self.store
            .put(key, encode_value(label::ENCRYPTION_KEY_PAIR, key_pair)?)?;
        Ok(())
    }

    fn write_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
        key_pairs: &[HpkeKeyPair],
    ) -> Result<(), Self::Error> {
        let item = epoch_item(epoch, leaf_index)?;
        self.write_group(group_id, label::EPOCH_KEY_PAIRS, &item, key_pairs)
    }

    fn write_key_package<
        HashReference: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &HashReference,
        key_package: &KeyPackage,
    ) -> Result<(), Self::Error> {
        self.write_client(label::KEY_PACKAGE, hash_ref, key_package)
    }

    fn write_psk<
        PskId: traits::PskId<CURRENT_VERSION>,
        PskBundle: traits::PskBundle<CURRENT_VERSION>,
    >(
        &self,
        psk_id: &PskId,
        psk: &PskBundle,
    ) -> Result<(), Self::Error> {
        self.write_client(label::PSK, psk_id, psk)
    }

    fn mls_group_join_config<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MlsGroupJoinConfig: traits::MlsGroupJoinConfig<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<MlsGroupJoinConfig>, Self::Error> {
        self.read_group(group_id, label::JOIN_CONFIG, &[])
    }

    fn own_leaf_nodes<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<LeafNode>, Self::Error> {
        Ok(self
            .read_group(group_id, label::OWN_LEAF_NODES, &[])?
            .unwrap_or_default())
    }

    fn queued_proposal_refs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<ProposalRef>, Self::Error> {
        Ok(self
            .read_group(group_id, label::PROPOSAL_REFS, &[])?
            .unwrap_or_default())
    }

    fn queued_proposals<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<(ProposalRef, QueuedProposal)>, Self::Error> {
        let refs: Vec<ProposalRef> = self.queued_proposal_refs(group_id)?;
        let mut out = Vec::with_capacity(refs.len());
        for proposal_ref in refs {
            let item = encode_key(label::PROPOSAL, &proposal_ref)?;
            let proposal = self.read_group(group_id, label::PROPOSAL, &item)?.ok_or(
                StorageError::Corrupt {
                    what: label::PROPOSAL,
                    detail: "queued reference without its proposal".into(),
                },
            )?;
            out.push((proposal_ref, proposal));
        }
        Ok(out)
    }

    fn tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        TreeSync: traits::TreeSync<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<TreeSync>, Self::Error> {
        self.read_group(group_id, label::TREE, &[])
    }

    fn group_context<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupContext: traits::GroupContext<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupContext>, Self::Error> {
        self.read_group(group_id, label::CONTEXT, &[])
    }

    fn interim_transcript_hash<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        InterimTranscriptHash: traits::InterimTranscriptHash<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<InterimTranscriptHash>, Self::Error> {
        self.read_group(group_id, label::INTERIM_TRANSCRIPT_HASH, &[])
    }

    fn confirmation_tag<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ConfirmationTag: traits::ConfirmationTag<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<ConfirmationTag>, Self::Error> {
        self.read_group(group_id, label::CONFIRMATION_TAG, &[])
    }

    fn group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupState>, Self::Error> {
        self.read_group(group_id, label::GROUP_STATE, &[])
    }

    fn message_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MessageSecrets: traits::MessageSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<MessageSecrets>, Self::Error> {
        self.read_group(group_id, label::MESSAGE_SECRETS, &[])
    }

    fn resumption_psk_store<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ResumptionPskStore: traits::ResumptionPskStore<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<ResumptionPskStore>, Self::Error> {
        self.read_group(group_id, label::RESUMPTION_PSK_STORE, &[])
    }

    fn own_leaf_index<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNodeIndex: traits::LeafNodeIndex<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<LeafNodeIndex>, Self::Error> {
        self.read_group(group_id, label::OWN_LEAF_INDEX, &[])
    }

    fn group_epoch_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupEpochSecrets: traits::GroupEpochSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupEpochSecrets>, Self::Error> {
        self.read_group(group_id, label::EPOCH_SECRETS, &[])
    }

    fn signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<Option<SignatureKeyPair>, Self::Error> {
        self.read_client(label::SIGNATURE_KEY_PAIR, public_key)
    }

    fn encryption_key_pair<
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<Option<HpkeKeyPair>, Self::Error> {
        let scoped = self.scoped_key_pair_key(public_key)?;
        if let Some(bytes) = self.store.get(&scoped)? {
            return decode_value(label::ENCRYPTION_KEY_PAIR, &bytes).map(Some);
        }
        self.read_client(label::ENCRYPTION_KEY_PAIR, public_key)
    }

    fn encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<Vec<HpkeKeyPair>, Self::Error> {
        let item = epoch_item(epoch, leaf_index)?;
        Ok(self
            .read_group(group_id, label::EPOCH_KEY_PAIRS, &item)?
            .unwrap_or_default())
    }

    fn key_package<
        KeyPackageRef: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<Option<KeyPackage>, Self::Error> {
        match self.read_client(label::KEY_PACKAGE, hash_ref)? {
            Some(found) => Ok(Some(found)),
            // A consumed KeyPackage is retained for the fork window: a displaced Add is
            // re-done with the same KeyPackage (see `retire_key_package`).
            None => self.read_client(label::RETIRED_KEY_PACKAGE, hash_ref),
        }
    }

    fn psk<PskBundle: traits::PskBundle<CURRENT_VERSION>, PskId: traits::PskId<CURRENT_VERSION>>(
        &self,
        psk_id: &PskId,
    ) -> Result<Option<PskBundle>, Self::Error> {
        self.read_client(label::PSK, psk_id)
    }

    fn remove_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
    ) -> Result<(), Self::Error> {
        let mut refs = self.read_list(group_id, label::PROPOSAL_REFS)?;
        let gone = to_value(label::PROPOSAL_REFS, proposal_ref)?;
        refs.retain(|r| *r != gone);
        self.write_group(group_id, label::PROPOSAL_REFS, &[], &refs)?;
        let item = encode_key(label::PROPOSAL, proposal_ref)?;
        self.delete_group_item(group_id, label::PROPOSAL, &item)
    }

    fn delete_own_leaf_nodes<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_group_item(group_id, label::OWN_LEAF_NODES, &[])
    }

    fn delete_group_config<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_group_item(group_id, label::JOIN_CONFIG, &[])
    }

    fn delete_tree<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_group_item(group_id, label::TREE, &[])
    }

    fn delete_confirmation_tag<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_group_item(group_id, label::CONFIRMATION_TAG, &[])
    }

    fn delete_group_state<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_group_item(group_id, label::GROUP_STATE, &[])
    }

    fn delete_context<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_group_item(group_id, label::CONTEXT, &[])
    }

    fn delete_interim_transcript_hash<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_group_item(group_id, label::INTERIM_TRANSCRIPT_HASH, &[])
    }

    fn delete_message_secrets<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_group_item(group_id, label::MESSAGE_SECRETS, &[])
    }

    fn delete_all_resumption_psk_secrets<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_group_item(group_id, label::RESUMPTION_PSK_STORE, &[])
    }

    fn delete_own_leaf_index<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_group_item(group_id, label::OWN_LEAF_INDEX, &[])
    }

    fn delete_group_epoch_secrets<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        self.delete_group_item(group_id, label::EPOCH_SECRETS, &[])
    }

    fn clear_proposal_queue<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<(), Self::Error> {
        let refs: Vec<ProposalRef> = self.queued_proposal_refs(group_id)?;
        for proposal_ref in &refs {
            let item = encode_key(label::PROPOSAL, proposal_ref)?;
            self.delete_group_item(group_id, label::PROPOSAL, &item)?;
        }
        self.delete_group_item(group_id, label::PROPOSAL_REFS, &[])
    }

    fn delete_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<(), Self::Error> {
        self.delete_client(label::SIGNATURE_KEY_PAIR, public_key)
    }

    fn delete_encryption_key_pair<EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>>(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<(), Self::Error> {
        let scoped = self.scoped_key_pair_key(public_key)?;
        self.store.delete(scoped)?;
        self.delete_client(label::ENCRYPTION_KEY_PAIR, public_key)
    }

    fn delete_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<(), Self::Error> {
        let item = epoch_item(epoch, leaf_index)?;
        self.delete_group_item(group_id, label::EPOCH_KEY_PAIRS, &item)
    }

    fn delete_key_package<KeyPackageRef: traits::HashReference<CURRENT_VERSION>>(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<(), Self::Error> {
        // openmls deletes a KeyPackage when it joins with it; keep it aside instead, until
        // `purge_retired_key_packages` (the engine calls it once the fork window has passed).
        let key = client_key(
            label::KEY_PACKAGE,
            &encode_key(label::KEY_PACKAGE, hash_ref)?,
        );
        if let Some(value) = self.store.get(&key)? {
            let item = encode_key(label::RETIRED_KEY_PACKAGE, hash_ref)?;
            self.store
                .put(client_key(label::RETIRED_KEY_PACKAGE, &item), value)?;
        }
        self.delete_client(label::KEY_PACKAGE, hash_ref)
    }

    fn delete_psk<PskKey: traits::PskId<CURRENT_VERSION>>(
        &self,
        psk_id: &PskKey,
    ) -> Result<(), Self::Error> {
        self.delete_client(label::PSK, psk_id)
    }
}

fn to_value(what: &'static str, v: &impl Serialize) -> Result<serde_json::Value, StorageError> {
    serde_json::to_value(v).map_err(|e| StorageError::Encode {
        what,
        detail: e.to_string(),
    })
}

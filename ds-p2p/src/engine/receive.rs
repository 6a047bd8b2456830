//! What arrives from the network: commits, application messages, Welcomes, beacons.

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;

use super::api::Event;
use super::fork_tree::{ForkTree, HeldState};
use super::group_state::{Buffered, GroupRuntime, Retry, branch_id, load_active, newest_state_at};
use super::record::GroupRecord;
use super::redelivery_asks::Ask;
use super::tie_break::CommitFacts;
use super::{Engine, EngineError, mls_err};
use crate::storage::{BranchId, StorageError};
use crate::wire::{
    ApplicationPayload, Beacon, CarriedIds, CommitRef, Envelope, GroupRef, Redelivery,
    WelcomeBundle,
};

/// How a received commit was handled.
pub(crate) enum CommitOutcome {
    /// Applied to a held state, creating a new one.
    Applied,
    /// It did not decrypt or verify on this state; another may fit.
    NotThisState(String),
}

/// Why a message for a state's own epoch still cannot be read there: its sender's ratchet is
/// past it. `None` for any other failure (a message of another branch or epoch, which another
/// state may read). The secret tree is only consulted once the sender data decrypted, i.e. on
/// the message's own branch.
fn ratchet_window<E>(error: &ProcessMessageError<E>, tolerance: u32) -> Option<String> {
    use openmls::framing::errors::{MessageDecryptionError, SecretTreeError};
    let ProcessMessageError::ValidationError(ValidationError::UnableToDecrypt(
        MessageDecryptionError::SecretTreeError(e),
    )) = error
    else {
        return None;
    };
    match e {
        SecretTreeError::TooDistantInThePast => Some(format!(
            "it arrived after more than {} newer messages of its sender in that epoch (the \
             out-of-order tolerance), whose keys are deleted for forward secrecy",
            tolerance
        )),
        SecretTreeError::SecretReuseError => {
            Some("its key was already used: a second message for the same key".into())
        }
        _ => None,
    }
}

/// A joiner's first log: the adder's recent log below the Add (entries before the Add's epoch,
/// one per epoch, as many as a beacon carries), then the Add.
fn welcome_log(bundle: &WelcomeBundle, joined_epoch: u64) -> Vec<(u64, CommitRef)> {
    let made_on = joined_epoch.saturating_sub(1);
    let mut log: Vec<(u64, CommitRef)> = Vec::new();
    for entry in &bundle.history {
        if entry.0 < made_on && log.last().is_none_or(|last| last.0 < entry.0) {
            log.push(*entry);
        }
    }
    let mut log = super::commit::recent_log(&log);
    log.push((made_on, bundle.commit_ref));
    log
}

/// The MLS authenticated data of an application message in envelope bytes, if that is what
/// they are.
pub(crate) fn application_aad(raw: &[u8]) -> Option<Vec<u8>> {
    let limits = crate::wire::WireLimits {
        max_envelope_bytes: raw.len(),
        ..Default::default()
    };
    let envelope = Envelope::decode(raw, &limits).ok()?;
    match protocol_message(&envelope.payload).ok()? {
        ProtocolMessage::PrivateMessage(private)
            if matches!(private.content_type(), ContentType::Application) =>
        {
            Some(private.aad().to_vec())
        }
        _ => None,
    }
}

/// The authenticated data of a private message (a public one has none).
fn private_aad(message: &ProtocolMessage) -> &[u8] {
    match message {
        ProtocolMessage::PrivateMessage(private) => private.aad(),
        ProtocolMessage::PublicMessage(_) => &[],
    }
}

fn protocol_message(payload: &[u8]) -> Result<ProtocolMessage, EngineError> {
    let message = MlsMessageIn::tls_deserialize_exact(payload).map_err(mls_err)?;
    message.try_into_protocol_message().map_err(mls_err)
}

impl Engine {
    fn known_group(&self, group: GroupRef) -> Result<&GroupRuntime, EngineError> {
        self.groups
            .get(&group)
            .ok_or_else(|| EngineError::UnknownGroup(hex::encode(group.0)))
    }

    /// Held states at `epoch`, those on the active path first, then by storage id.
    fn candidates(record: &GroupRecord, epoch: u64) -> Vec<BranchId> {
        let mut ids: Vec<(bool, BranchId)> = record
            .tree
            .at_epoch(epoch)
            .map(|s| {
                (
                    !record.tree.is_ancestor_or_self(s.storage, record.active),
                    s.storage,
                )
            })
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// A held state below `epoch` off the active path: another Welcome this member holds
    /// (or a state grown from one), from which a commit at `epoch` may still be reached.
    fn other_join_below(record: &GroupRecord, epoch: u64) -> bool {
        record
            .tree
            .states()
            .any(|s| s.epoch < epoch && !record.tree.is_ancestor_or_self(s.storage, record.active))
    }

    pub(crate) fn receive_handshake(
        &mut self,
        now_ms: u64,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), EngineError> {
        let group = envelope.group_ref;
        let rt = self.known_group(group)?;
        if rt.own_envelopes.contains(&Envelope::id_of(raw)) {
            return Ok(());
        }
        let commit_ref = CommitRef::of(&envelope.payload);
        if rt.record.tree.by_commit(&commit_ref).is_some()
            || rt.record.known.contains(&commit_ref)
            || rt.record.log.iter().any(|(_, r)| *r == commit_ref)
        {
            return Ok(()); // already applied (or our own, coming back)
        }
        let message = protocol_message(&envelope.payload)?;
        if message.group_id() != &rt.group_id() {
            return Err(EngineError::Refused("message is for another group".into()));
        }
        let epoch = message.epoch().as_u64();
        if super::leave::is_proposal(&message) {
            if epoch > rt.group.epoch().as_u64() {
                return self.buffer(group, epoch, raw, Retry::OnAnyChange);
            }
            return self.receive_proposal(now_ms, group, &envelope.payload);
        }
        if !matches!(message.content_type(), ContentType::Commit) {
            return Err(EngineError::Refused("not a commit or proposal".into()));
        }
        let candidates = Self::candidates(&rt.record, epoch);
        if candidates.is_empty() {
            let newest = rt.record.tree.states().map(|s| s.epoch).max().unwrap_or(0);
            if epoch > newest {
                return self.buffer(group, epoch, raw, Retry::OnAnyChange);
            }
            if rt.record.joined_epoch > epoch
                && (Self::other_join_below(&rt.record, epoch)
                    || rt.record.log_differs_at(epoch, &commit_ref))
            {
                // Before the join this member follows, but it also holds another Welcome's
                // state below this epoch, whose lineage may be the one the group goes on
                // with (its Add won) — or the commit is from a branch that parted from the
                // join's below it, whose Welcome to this member (the Add made there too, or
                // re-done there) may still come. Keep the commit, or a switch to that join
                // would find it gone (the log holds it, so sync never hands it over again).
                return self.buffer(group, epoch, raw, Retry::OnAnyChange);
            }
            if epoch < rt.record.joined_epoch || rt.record.before_log(epoch) {
                return Ok(()); // before this member joined, or older than it remembers
            }
            self.emit(Event::ForkBeyondWindow { group, epoch });
            return self.offer_heal(now_ms, group);
        }
        let mut last_error = String::new();
        for candidate in candidates {
            match self.apply_commit(now_ms, group, candidate, &envelope.payload, commit_ref)? {
                CommitOutcome::Applied => {
                    self.after_commit(now_ms, group)?;
                    return self.resend_after_rejoin(now_ms, group);
                }
                CommitOutcome::NotThisState(e) => last_error = e,
            }
        }
        // It may grow from a state this member has not reached yet (a branch whose earlier
        // commits are still on their way): keep it until states change.
        tracing::debug!("commit for epoch {epoch} fits no held state yet: {last_error}");
        self.buffer(group, epoch, raw, Retry::OnAnyChange)
    }

    /// Processes a commit against a copy of `parent`, as one storage step.
    fn apply_commit(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        parent: BranchId,
        payload: &[u8],
        commit_ref: CommitRef,
    ) -> Result<CommitOutcome, EngineError> {
        // Only a commit on the active state is processed on the in-memory group (in place).
        let in_place = parent == self.known_group(group)?.record.active;
        let attempt = self.step_with(Some(group), in_place, |engine| {
            let group_id = engine.known_group(group)?.group_id();
            let new = engine
                .provider
                .mls_storage()
                .checkpoint(&group_id, parent)?;
            // On the active state (the common case) the in-memory group goes on over the
            // checkpoint: no load. It is then the new state's group until the switch that
            // follows decides (`GroupRuntime::holds`). Another parent is loaded.
            let mut loaded = if in_place {
                engine.provider.mls_storage().activate(&group_id, new)?;
                None
            } else {
                Some(load_active(&engine.provider, &group_id, new)?)
            };
            let processed = {
                let rt = engine
                    .groups
                    .get_mut(&group)
                    .ok_or(StorageError::UnknownGroup)?;
                let copy = loaded.as_mut().unwrap_or(&mut rt.group);
                let processed = copy
                    .process_message(&engine.provider, protocol_message(payload)?)
                    .map_err(|e| EngineError::NotThisState(e.to_string()))?;
                let external = matches!(processed.sender(), Sender::NewMemberCommit);
                let rejoin_fork = external
                    .then(|| super::heal::fork_epoch_of_rejoin(processed.aad()))
                    .flatten();
                let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content()
                else {
                    return Err(EngineError::Refused("not a commit".into()));
                };
                if external {
                    // A member rejoining after a split (see `heal`): only a member of this
                    // branch may, every member judging alike.
                    super::heal::check_rejoin(copy, &staged)?;
                }
                (staged, external, rejoin_fork)
            };
            let (staged, external, rejoin_fork) = processed;
            engine.check_commit_credentials(group, &staged, now_ms)?;
            let provider = &engine.provider;
            let storage = provider.mls_storage();
            let rt = engine
                .groups
                .get_mut(&group)
                .ok_or(StorageError::UnknownGroup)?;
            // A rejoin replaces its committer's own leaf: not a removal to the policies.
            let facts = CommitFacts {
                commit_ref,
                removes: (staged.remove_proposals().count() as u32)
                    .saturating_sub(u32::from(external)),
                adds: staged.add_proposals().count() as u32,
            };
            let copy = loaded.as_mut().unwrap_or(&mut rt.group);
            copy.merge_staged_commit(provider, *staged)
                .map_err(mls_err)?;
            let epoch = copy.epoch().as_u64();
            let siblings: Vec<CommitRef> = rt
                .record
                .tree
                .states()
                .filter(|s| s.parent == Some(parent))
                .filter_map(|s| s.via.as_ref().map(|f| f.commit_ref))
                .collect();
            rt.record.know_commit(commit_ref);
            rt.record.tree.insert(HeldState {
                storage: new,
                epoch,
                parent: Some(parent),
                via: Some(facts),
                branch_id: branch_id(copy, provider)?,
                inactive_since_ms: Some(now_ms),
                evicted: !copy.is_active(),
                vouched_at_ms: None,
                shown_at: None,
            });
            // Keep openmls pointed at the active state until the policy says otherwise.
            storage.activate(&group_id, rt.record.active)?;
            rt.save(provider)?;
            match loaded {
                Some(copy) => rt.just_applied = Some((new, copy)),
                None => rt.holds = Some(new),
            }
            if let Some(fork) = rejoin_fork {
                rt.heal.note_rejoin(fork);
            }
            if !siblings.is_empty() {
                let mut commits = siblings;
                commits.push(commit_ref);
                commits.sort();
                engine.emit(Event::ForkDetected {
                    group,
                    epoch: epoch - 1,
                    commits,
                });
            }
            Ok(())
        });
        match attempt {
            Ok(()) => Ok(CommitOutcome::Applied),
            Err(EngineError::NotThisState(reason)) => Ok(CommitOutcome::NotThisState(reason)),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn receive_application(
        &mut self,
        now_ms: u64,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), EngineError> {
        let group = envelope.group_ref;
        let rt = self.known_group(group)?;
        if rt.own_envelopes.contains(&Envelope::id_of(raw)) {
            return Ok(());
        }
        let message = protocol_message(&envelope.payload)?;
        if message.group_id() != &rt.group_id() {
            return Err(EngineError::Refused("message is for another group".into()));
        }
        if !matches!(message.content_type(), ContentType::Application) {
            return Err(EngineError::Refused("not an application message".into()));
        }
        // Dropped unread when everything it says it carries was delivered: after a heal,
        // most members already have every message of a redelivery.
        if let ProtocolMessage::PrivateMessage(private) = &message
            && let Some(carried) = CarriedIds::parse(private.aad())
            && !carried.ids().is_empty()
            && carried
                .ids()
                .iter()
                .all(|id| rt.record.seen.contains_key(id))
        {
            return Err(EngineError::Refused(format!(
                "replay of message {} (already delivered)",
                carried.ids()[0]
            )));
        }
        let epoch = message.epoch().as_u64();
        let oldest = rt.record.tree.states().map(|s| s.epoch).min().unwrap_or(0);
        let active_epoch = rt.group.epoch().as_u64();
        let mut candidates = vec![rt.record.active];
        candidates.extend(
            Self::candidates(&rt.record, epoch)
                .into_iter()
                .filter(|c| *c != rt.record.active),
        );
        if epoch > active_epoch && candidates.len() == 1 {
            return self.buffer_unreadable(group, epoch, raw);
        }
        let mut last_error = String::new();
        let mut too_late = None;
        for candidate in candidates {
            match self.decrypt_on(now_ms, group, candidate, &envelope.payload) {
                Ok(None) => return Ok(()),
                Ok(Some(ask)) => return self.answer_request(now_ms, group, ask),
                Err(EngineError::NotThisState(reason)) => last_error = reason,
                // Another held state may still have the key (its own copy of that epoch's
                // ratchets): try the rest before giving up.
                Err(EngineError::OutsideRatchetWindow(reason)) => too_late = Some(reason),
                Err(e) => return Err(e),
            }
        }
        if let Some(reason) = too_late {
            // Buffering would only hide it: no later state reads a message its sender's
            // ratchet has passed. Say so, and ask for it again (a copy sent now is readable).
            self.want_unreadable(now_ms, group, epoch, private_aad(&message));
            return Err(EngineError::Refused(format!(
                "application message for epoch {epoch} cannot be read: {reason}"
            )));
        }
        if epoch >= oldest {
            // Perhaps from a branch this member has not reached yet; keep it until it has.
            tracing::debug!("application message for epoch {epoch} waits: {last_error}");
            return self.buffer_unreadable(group, epoch, raw);
        }
        // Made on a state pruned here since (it came later than the window): its sender
        // keeps it, and sends it again when asked.
        self.want_unreadable(now_ms, group, epoch, private_aad(&message));
        Err(EngineError::Refused(format!(
            "application message for epoch {epoch} decrypts on no held state: {last_error}"
        )))
    }

    /// Decrypts an application message with one held state and delivers what it carries
    /// once; for a redelivery request, returns the ask instead.
    fn decrypt_on(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        state: BranchId,
        payload: &[u8],
    ) -> Result<Option<Ask>, EngineError> {
        let limits = self.config.limits;
        let tolerance = self.config.out_of_order_tolerance;
        let confirm_delivery = self.config.confirm_delivery;
        let active = self.known_group(group)?.record.active;
        // Only a message for the active state works on the in-memory group.
        self.step_with(Some(group), state == active, |engine| {
            let provider = &engine.provider;
            let rt = engine
                .groups
                .get_mut(&group)
                .ok_or(StorageError::UnknownGroup)?;
            let group_id = rt.group_id();
            let active = rt.record.active;
            let mut other;
            let mls = if state == active {
                &mut rt.group
            } else {
                other = load_active(provider, &group_id, state)?;
                &mut other
            };
            let message = protocol_message(payload)?;
            // openmls gives the same error for an epoch whose secrets this state does not
            // have: only on the state's own epoch does it mean the sender's ratchet.
            let own_epoch = message.epoch() == mls.epoch();
            let processed = mls.process_message(provider, message).map_err(|e| {
                match ratchet_window(&e, tolerance).filter(|_| own_epoch) {
                    Some(why) => EngineError::OutsideRatchetWindow(why),
                    None => EngineError::NotThisState(e.to_string()),
                }
            })?;
            let aad = processed.aad().to_vec();
            let sender = processed.credential().serialized_content().to_vec();
            let ProcessedMessageContent::ApplicationMessage(app) = processed.into_content() else {
                return Err(EngineError::Refused("not an application message".into()));
            };
            let plaintext = app.into_bytes();
            let payloads = match CarriedIds::parse(&aad) {
                Some(CarriedIds::One(id)) => {
                    let payload = ApplicationPayload::decode(&plaintext, &limits)?;
                    if payload.id != id {
                        return Err(EngineError::Refused(
                            "message id does not match its authenticated data".into(),
                        ));
                    }
                    vec![payload]
                }
                Some(CarriedIds::Redelivery(ids)) => {
                    Redelivery::decode(&plaintext, &limits, &ids)?.messages
                }
                Some(CarriedIds::Request(ids)) => {
                    if !plaintext.is_empty() {
                        return Err(EngineError::Refused(
                            "a redelivery request carries no body".into(),
                        ));
                    }
                    if state != active {
                        provider.mls_storage().activate(&group_id, active)?;
                    }
                    rt.save(provider)?;
                    return Ok(Some(Ask { ids, asker: sender }));
                }
                None => {
                    return Err(EngineError::Refused(
                        "authenticated data is neither a message id nor a redelivery's ids".into(),
                    ));
                }
            };
            if state != active {
                provider.mls_storage().activate(&group_id, active)?;
            }
            let fresh: Vec<ApplicationPayload> = payloads
                .into_iter()
                .filter(|p| rt.record.seen.insert_if_absent(p.id, now_ms))
                .collect();
            rt.save(provider)?;
            if confirm_delivery {
                for payload in &fresh {
                    super::delivery::stage(
                        provider.mls_storage().staged(),
                        &group,
                        &payload.id,
                        &sender,
                        payload.sent_at_ms,
                        &payload.body,
                    )?;
                }
            }
            for payload in fresh {
                engine.emit(Event::Message {
                    group,
                    id: payload.id,
                    sender: sender.clone(),
                    sent_at_ms: payload.sent_at_ms,
                    body: payload.body,
                });
            }
            Ok(None)
        })
    }

    pub(crate) fn receive_welcome(
        &mut self,
        now_ms: u64,
        envelope: &Envelope,
    ) -> Result<(), EngineError> {
        let group = envelope.group_ref;
        let bundle: WelcomeBundle =
            identity_tofu::codec::decode(&envelope.payload, self.config.limits.max_envelope_bytes)
                .map_err(|e| EngineError::Refused(format!("malformed welcome bundle: {e}")))?;
        if let Some(rt) = self.groups.get(&group)
            && (rt.record.tree.by_commit(&bundle.commit_ref).is_some()
                || rt.record.known.contains(&bundle.commit_ref)
                || rt.record.log.iter().any(|(_, r)| *r == bundle.commit_ref)
                || rt.record.welcomes.contains(&bundle.commit_ref))
        {
            return Ok(()); // a Welcome already used
        }
        let message = MlsMessageIn::tls_deserialize_exact(&bundle.welcome[..]).map_err(mls_err)?;
        let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
            return Err(EngineError::Refused("not a Welcome".into()));
        };
        let used: Vec<Vec<u8>> = welcome
            .secrets()
            .iter()
            .map(|s| s.new_member().as_slice().to_vec())
            .collect();
        let join_config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .max_past_epochs(self.config.max_past_epochs)
            .sender_ratchet_configuration(self.config.sender_ratchet())
            .build();
        let existing = self.groups.contains_key(&group);
        let beacon_interval = self.config.beacon_interval_ms;
        self.step(existing.then_some(group), |engine| {
            if let Some(rt) = engine.groups.get(&group) {
                // A second Welcome (a displaced Add re-done): the new state goes on a fresh,
                // empty branch, made active first because openmls refuses to stage a Welcome
                // for a group it can already see.
                let storage = engine.provider.mls_storage();
                let group_id = rt.group_id();
                let fresh = storage.fresh_branch(&group_id)?;
                storage.activate(&group_id, fresh)?;
            }
            let provider = &engine.provider;
            let staged = StagedWelcome::new_from_welcome(provider, &join_config, welcome, None)
                .map_err(mls_err)?;
            let leaves: Vec<(Credential, Vec<u8>)> = staged
                .members()
                .map(|m| (m.credential, m.signature_key))
                .collect();
            for (credential, key) in &leaves {
                engine.check_leaf(Some(group), credential, key, now_ms)?;
            }
            let provider = &engine.provider;
            let group_id = staged.group_context().group_id().clone();
            if GroupRef::of(group_id.as_slice()) != group {
                return Err(EngineError::Refused(
                    "welcome is for another group than its envelope says".into(),
                ));
            }
            let storage = provider.mls_storage();
            storage.set_group_scope(Some(&group_id))?;
            let joined = staged.into_group(provider).map_err(mls_err)?;
            let state_id = storage
                .active_branch(&group_id)?
                .ok_or(StorageError::UnknownGroup)?;
            let state = HeldState {
                storage: state_id,
                epoch: joined.epoch().as_u64(),
                parent: None,
                via: Some(CommitFacts {
                    commit_ref: bundle.commit_ref,
                    removes: bundle.removes,
                    adds: bundle.adds,
                }),
                branch_id: branch_id(&joined, provider)?,
                inactive_since_ms: if existing { Some(now_ms) } else { None },
                evicted: false,
                vouched_at_ms: None,
                shown_at: None,
            };
            let epoch = state.epoch;
            if existing {
                let rt = engine
                    .groups
                    .get_mut(&group)
                    .ok_or(StorageError::UnknownGroup)?;
                rt.record.tree.insert(state);
                rt.record.welcomes.push(bundle.commit_ref);
                storage.activate(&group_id, rt.record.active)?;
                rt.save(provider)?;
            } else {
                let mut tree = ForkTree::default();
                tree.insert(state);
                let mut runtime = GroupRuntime {
                    group_ref: group,
                    record: GroupRecord {
                        group_id: group_id.as_slice().to_vec(),
                        tree,
                        active: state_id,
                        sent: Default::default(),
                        intents: Vec::new(),
                        reissues: Vec::new(),
                        seen: Default::default(),
                        // The Add that brought this member in is the last entry of its
                        // branch's log, after what the adder knew of the branch below it
                        // (see `join_lost`).
                        log: welcome_log(&bundle, epoch),
                        known: Vec::new(),
                        next_beacon_ms: now_ms + beacon_interval,
                        pending_leaves: Vec::new(),
                        joined_epoch: epoch,
                        welcomes: vec![bundle.commit_ref],
                    },
                    group: joined,
                    own_envelopes: Default::default(),
                    buffered: Default::default(),
                    just_applied: None,
                    holds: None,
                    heal: Default::default(),
                    member_keys: Default::default(),
                };
                runtime.save(provider)?;
                engine.groups.insert(group, runtime);
                engine.emit(Event::GroupJoined { group, epoch });
            }
            Ok(())
        })?;
        self.note_key_package_used(&used);
        self.retired_purge_due = Some(now_ms + self.config.window_ms);
        if existing {
            self.after_commit(now_ms, group)?;
        } else {
            self.replay_buffered(now_ms, group);
        }
        Ok(())
    }

    pub(crate) fn receive_beacon(
        &mut self,
        now_ms: u64,
        envelope: &Envelope,
    ) -> Result<(), EngineError> {
        let group = envelope.group_ref;
        // Everything below acts on what the beacon claims: only a member's word counts.
        let beacon = self.authenticate_beacon(envelope)?;
        self.vouch_roots(now_ms, group, &beacon)?;
        // Before the same-branch shortcut: a beacon from this member's own branch is what
        // takes back a lost-join mark.
        if self.join_lost(now_ms, group, &beacon)? {
            // The mark changes which Welcome root is preferred (a lost one ranks last): one
            // held beside it — this member added again on the branch the group went on with —
            // must be followed now, not at some later commit that may never come while the
            // state it grows from expires.
            return self.after_commit(now_ms, group);
        }
        let rt = self.known_group(group)?;
        let known_branch = rt
            .record
            .tree
            .states()
            .any(|s| s.branch_id == beacon.branch_id);
        if known_branch {
            return Ok(());
        }
        if self.removal_vouched(now_ms, group, &beacon)? {
            return Ok(());
        }
        let rt = self.known_group(group)?;
        if beacon.epoch < rt.record.joined_epoch {
            // Sync hands a joiner the group's older log: a beacon from before this member
            // joined is history it was never part of, not a fork.
            return Ok(());
        }
        let active_epoch = rt.group.epoch().as_u64();
        let oldest = rt.record.tree.states().map(|s| s.epoch).min().unwrap_or(0);
        // A beacon naming a commit this member applied on a branch it left shows a fork it
        // saw itself: usually old news the window resolved (a beacon replayed at a restart
        // or synced late), not a split to tell the user of (across a split, the other side's
        // commits were never seen here). It still offers a heal, quietly: a member that came
        // back from a crash on its own losing branch, past the window, is brought over by it
        // (the offers' logs decide; if all agree, nothing happens).
        let stale = beacon.recent_commits.iter().any(|(_, r)| {
            rt.record.known.contains(r) && !rt.record.log.iter().any(|(_, m)| m == r)
        });
        // The sender's log parts from this member's below every state it holds (and after it
        // joined): a split older than the window, even if both sides share recent history.
        if let Some(parted) = super::heal::first_difference(&rt.record.log, &beacon.recent_commits)
            && parted >= rt.record.joined_epoch
            && parted < oldest
        {
            if !stale {
                self.emit(Event::ForkBeyondWindow {
                    group,
                    epoch: parted,
                });
            }
            return self.offer_heal(now_ms, group);
        }
        let same_lineage = beacon.recent_commits.iter().any(|(_, r)| {
            rt.record.log.iter().any(|(_, mine)| mine == r) || rt.record.tree.by_commit(r).is_some()
        });
        if same_lineage && beacon.epoch < active_epoch {
            return Ok(()); // a member behind on this branch; it will catch up through sync
        }
        if beacon.epoch == active_epoch {
            self.emit(Event::ForkDetected {
                group,
                epoch: beacon.epoch,
                commits: Vec::new(),
            });
        } else if beacon.epoch < oldest {
            if !stale {
                self.emit(Event::ForkBeyondWindow {
                    group,
                    epoch: beacon.epoch,
                });
            }
            return self.offer_heal(now_ms, group);
        }
        Ok(())
    }

    /// A member that joined by a Welcome learns from a beacon that the group went on from
    /// another commit at the epoch its Add was made on: its Add lost, and unless the adder
    /// re-does it (a second Welcome), it is not in the group. Its active state is marked
    /// evicted (reversible: a beacon showing the group on the Add's branch after all, or a
    /// commit that grows its branch, or a new Welcome, brings it back). The Add is found in
    /// the public log of the active branch, so this holds however many epochs the member has
    /// seen on top of its Welcome.
    fn join_lost(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        beacon: &Beacon,
    ) -> Result<bool, EngineError> {
        let (head, welcome_root, lost) = {
            let rt = self.known_group(group)?;
            let Some((made_on, add)) = rt
                .record
                .log
                .iter()
                .rev()
                .find(|(_, r)| rt.record.welcomes.contains(r))
                .copied()
            else {
                return Ok(false);
            };
            let Some(head) = rt.record.tree.get(rt.record.active) else {
                return Ok(false);
            };
            let confirms = beacon.recent_commits.iter().any(|(_, r)| *r == add);
            // Below the Add, the log holds what the adder's Welcome told of its branch (only
            // for the first Welcome: a later one's root takes over whatever the log held).
            // A commit there that differs from the sender's at the same epoch shows the
            // sender on a branch that forked off before the Add — even one that has not gone
            // past the Add's epoch since, which the check at the Add's own epoch cannot see.
            let forked_below = rt.record.welcomes.first() == Some(&add)
                && beacon.recent_commits.iter().any(|(on, r)| {
                    *on < made_on
                        && !rt.record.log.contains(&(*on, *r))
                        && rt.record.log.iter().any(|(mine_on, _)| mine_on == on)
                });
            // A sender that shares a later commit of this branch is on it (its own log may
            // still hold an older entry from a branch it left once the fork point was gone).
            let shares_later = beacon
                .recent_commits
                .iter()
                .any(|entry| entry.0 > made_on && rt.record.log.contains(entry));
            let displaces_add = beacon.epoch > made_on
                && beacon
                    .recent_commits
                    .iter()
                    .any(|(on, r)| *on == made_on && *r != add);
            let displaces = !shares_later && !confirms && (displaces_add || forked_below);
            // Only a mark this function made is taken back: a removal is not, nor a removal
            // on the winning side of a split.
            let marked_lost = head.evicted && rt.group.is_active() && !rt.heal.removed_by_split;
            let lost = if displaces && !head.evicted {
                true
            } else if confirms && marked_lost {
                false
            } else {
                return Ok(false);
            };
            // The mark goes on the Welcome root too: that is what ranks it behind another
            // root held beside it (`ForkTree::compare`), when the member has gone on past
            // its Welcome on this branch and the head is no longer the root.
            let root = rt.record.tree.root_of(head.storage);
            let welcome_root = rt
                .record
                .tree
                .get(root)
                .filter(|r| {
                    r.parent.is_none() && r.via.as_ref().is_some_and(|v| v.commit_ref == add)
                })
                .map(|r| r.storage);
            (head.storage, welcome_root, lost)
        };
        let rt = self.runtime(group)?;
        for id in std::iter::once(head).chain(welcome_root) {
            if let Some(state) = rt.record.tree.get_mut(id) {
                state.evicted = lost;
            }
        }
        self.save_group(group)?;
        if lost {
            // The adder re-does a lost Add once it has seen the race decided: keep the used
            // KeyPackage (its private key is what a new Welcome is sealed to) a window longer.
            self.retired_purge_due = Some(now_ms + self.config.window_ms);
            self.emit(Event::JoinLost { group });
        }
        Ok(lost)
    }

    /// A removed member may hold the state it was removed in beside a branch of its own that
    /// looks deeper to it (it cannot read the commits after its removal). A beacon whose log
    /// holds the removing commit shows how far the group went on from it: the highest such
    /// epoch is kept as that state's depth (see `ForkTree::depth_of`), and the policy decides
    /// with it. Not "first seen wins": a beacon from a member that has not yet switched away
    /// from the removal's branch is only evidence of its depth then.
    fn removal_vouched(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        beacon: &Beacon,
    ) -> Result<bool, EngineError> {
        let rt = self.runtime(group)?;
        let shown: Vec<BranchId> = rt
            .record
            .tree
            .states()
            .filter(|s| s.evicted && s.parent.is_some())
            .filter(|s| {
                s.via.as_ref().is_some_and(|v| {
                    beacon.epoch >= s.epoch
                        && beacon
                            .recent_commits
                            .iter()
                            .any(|(_, r)| *r == v.commit_ref)
                })
            })
            .map(|s| s.storage)
            .collect();
        if shown.is_empty() {
            return Ok(false);
        }
        let mut deeper = false;
        for id in shown {
            if let Some(state) = rt.record.tree.get_mut(id)
                && state.shown_at.is_none_or(|e| beacon.epoch > e)
            {
                state.shown_at = Some(beacon.epoch);
                deeper = true;
            }
        }
        if deeper {
            self.save_group(group)?;
            self.after_commit(now_ms, group)?;
        }
        Ok(deeper)
    }

    /// Notes, on each held root whose commit a beacon's log holds, that the group was shown
    /// going on from it now (see `ForkTree::compare`); with more than one root held, this can
    /// change the preferred head. A lost-join mark on a Welcome root is taken back by it.
    fn vouch_roots(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        beacon: &Beacon,
    ) -> Result<(), EngineError> {
        let rt = self.runtime(group)?;
        if rt.record.tree.roots().count() < 2 {
            return Ok(());
        }
        let active_root = rt.record.tree.root_of(rt.record.active);
        // (root, whether this beacon can change the ranking): a root shown for the first time,
        // a lost join shown after all, or another root than the active one's shown again.
        let shown: Vec<(BranchId, bool)> = rt
            .record
            .tree
            .roots()
            .filter(|s| {
                s.via.as_ref().is_some_and(|v| {
                    beacon
                        .recent_commits
                        .iter()
                        .any(|(_, r)| *r == v.commit_ref)
                })
            })
            .map(|s| {
                let lost_join = s.evicted && s.parent.is_none();
                let reranks = s.vouched_at_ms.is_none() || lost_join || s.storage != active_root;
                (s.storage, reranks)
            })
            .collect();
        if shown.is_empty() {
            return Ok(());
        }
        let reranks = shown.iter().any(|(_, reranks)| *reranks);
        for (id, _) in shown {
            if let Some(state) = rt.record.tree.get_mut(id) {
                state.vouched_at_ms = Some(now_ms);
                // A Welcome root is evicted only by a lost-join mark (`join_lost`), which a
                // beacon showing the group on its Add takes back, whichever root is active.
                if state.parent.is_none() {
                    state.evicted = false;
                }
            }
        }
        self.save_group(group)?;
        if reranks {
            self.after_commit(now_ms, group)?;
        }
        Ok(())
    }

    /// Keeps an application message that no held state reads yet, to be tried again once a
    /// new state is held at its epoch.
    fn buffer_unreadable(
        &mut self,
        group: GroupRef,
        epoch: u64,
        raw: &[u8],
    ) -> Result<(), EngineError> {
        let newest_tried = newest_state_at(&self.known_group(group)?.record.tree, epoch);
        self.buffer(group, epoch, raw, Retry::OnNewStateAt { newest_tried })
    }

    /// Keeps a message that arrived before the commit that makes it readable.
    fn buffer(
        &mut self,
        group: GroupRef,
        epoch: u64,
        raw: &[u8],
        retry: Retry,
    ) -> Result<(), EngineError> {
        let max = self.config.max_buffered;
        let rt = self.runtime(group)?;
        let id = Envelope::id_of(raw);
        if rt.buffered.iter().any(|b| b.id == id) {
            return Ok(());
        }
        rt.buffered.push_back(Buffered {
            epoch,
            id,
            raw: raw.to_vec(),
            retry,
        });
        let mut dropped = 0;
        while rt.buffered.len() > max {
            rt.buffered.pop_front();
            dropped += 1;
        }
        if dropped > 0 {
            self.emit(Event::Dropped {
                group,
                count: dropped,
            });
        }
        Ok(())
    }

    /// Feeds buffered messages again, now that the group may have reached their epoch.
    pub(crate) fn replay_buffered(&mut self, now_ms: u64, group: GroupRef) {
        let Some(rt) = self.groups.get_mut(&group) else {
            return;
        };
        let tree = &rt.record.tree;
        let newest = tree.states().map(|s| s.epoch).max().unwrap_or(0);
        let (ready, waiting): (Vec<_>, Vec<_>) =
            rt.buffered.drain(..).partition(|b| match b.retry {
                Retry::OnAnyChange => b.epoch <= newest,
                Retry::OnNewStateAt { newest_tried } => {
                    newest_state_at(tree, b.epoch) > newest_tried
                }
            });
        rt.buffered.extend(waiting);
        for b in ready {
            self.handle_envelope(now_ms, &b.raw);
        }
    }
}

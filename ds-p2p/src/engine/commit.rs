//! This member's own actions: create a group, send, and commit (add, remove, update).
//!
//! Every action is one storage step: a commit is made on a *copy* of the active state, so the
//! state it was made on stays held for the window (DESIGN §4 item 1), and the copy's
//! post-commit state is what this member holds as its own branch (item 3: openmls cannot
//! process its own commit when it comes back from the network).

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;

use super::api::Event;
use super::consistency::OwnCommit;
use super::fork_tree::{ForkTree, HeldState};
use super::group_state::{GroupRuntime, branch_id, load_active, members, own_leaf_hash};
use super::record::{GroupRecord, Intent, IntentKind, SentMessage};
use super::tie_break::CommitFacts;
use super::{CIPHERSUITE, Engine, EngineError, mls_err, wire_bytes};
use crate::storage::StorageError;
use crate::wire::{
    ApplicationPayload, CommitRef, EnvelopeKind, GroupRef, MessageId, Redelivery, WelcomeBundle,
    inbox_topic,
};

/// Whether a message goes out for the first time, or again (queued by a settle, re-sent after
/// a branch switch or a heal): only a first send is new to the embedder's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sending {
    New,
    Again,
}

/// A membership change to commit.
pub(crate) enum CommitOp {
    Add(Box<KeyPackage>),
    Remove(LeafNodeIndex),
    Update,
}

impl Engine {
    /// Runs `f` as one storage step for `group`: everything it stores lands together, or, if
    /// it fails, nothing does, the group's record and `MlsGroup` are restored, and the outputs
    /// it queued are withdrawn.
    pub(crate) fn step<T>(
        &mut self,
        group: Option<GroupRef>,
        f: impl FnOnce(&mut Self) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        self.step_with(group, true, f)
    }

    /// [`step`](Self::step) for work that never touches the in-memory group of the active
    /// branch (it loads the state it works on): if it fails, that group is still what the
    /// store holds, so it is not loaded again. Trying a message on a held state that does not
    /// fit is common (buffered messages are retried on every change), and a load decodes the
    /// whole group state.
    pub(crate) fn step_with<T>(
        &mut self,
        group: Option<GroupRef>,
        reload_on_error: bool,
        f: impl FnOnce(&mut Self) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let staged = self.provider.mls_storage().staged().clone();
        staged.begin().map_err(StorageError::from)?;
        let outputs_before = self.outputs.len();
        // The record's two window lists journal their own changes (putting them back is
        // cheap, copying them is not: they hold the whole window); the rest is copied.
        for rt in self.groups.values_mut() {
            rt.record.sent.begin_step();
            rt.record.seen.begin_step();
        }
        let record_before = group.and_then(|g| {
            self.groups
                .get_mut(&g)
                .map(|rt| rt.record.with_lists_apart(|r| r.clone()))
        });
        let scope = group.and_then(|g| self.groups.get(&g).map(|rt| rt.group_id()));
        let result = self
            .provider
            .mls_storage()
            .set_group_scope(scope.as_ref())
            .map_err(EngineError::from)
            .and_then(|()| f(self));
        let result = match result {
            Ok(value) => staged
                .commit()
                .map(|()| value)
                .map_err(|e| EngineError::Storage(StorageError::from(e))),
            Err(e) => {
                let _ = staged.rollback();
                Err(e)
            }
        };
        // A rolled-back step's saves never reached the store: the lists save what it changed
        // again next time. The record of the step's group is put back as it was.
        let failed = result.is_err();
        for (g, rt) in self.groups.iter_mut() {
            let undo = failed && group == Some(*g);
            rt.record.sent.end_step(failed, undo);
            rt.record.seen.end_step(failed, undo);
        }
        if failed {
            self.outputs.truncate(outputs_before);
            self.ledger.withdraw_from(outputs_before);
            if let (Some(g), Some(mut record)) = (group, record_before)
                && let Some(rt) = self.groups.get_mut(&g)
            {
                std::mem::swap(&mut record.sent, &mut rt.record.sent);
                std::mem::swap(&mut record.seen, &mut rt.record.seen);
                rt.record = record;
                // The in-memory group may have run ahead of the store: load it again.
                if reload_on_error
                    && let Ok(group) = load_active(&self.provider, &rt.group_id(), rt.record.active)
                {
                    rt.group = group;
                }
            }
        }
        result
    }

    /// Stores the record of `group` as it is now (outside a step: one write).
    pub(crate) fn save_group(&mut self, group: GroupRef) -> Result<(), EngineError> {
        self.groups
            .get_mut(&group)
            .ok_or(StorageError::UnknownGroup)?
            .save(&self.provider)
    }

    pub(crate) fn runtime(&mut self, group: GroupRef) -> Result<&mut GroupRuntime, EngineError> {
        self.groups
            .get_mut(&group)
            .ok_or_else(|| EngineError::UnknownGroup(hex::encode(group.0)))
    }

    /// Creates a group with this member alone in it.
    pub fn create_group(&mut self, now_ms: u64) -> Result<GroupRef, EngineError> {
        let group_id = self.random_bytes::<16>().to_vec();
        let group_ref = GroupRef::of(&group_id);
        self.step(None, |engine| {
            let mls_id = GroupId::from_slice(&group_id);
            engine
                .provider
                .mls_storage()
                .set_group_scope(Some(&mls_id))?;
            let group = MlsGroup::builder()
                .with_group_id(mls_id.clone())
                .ciphersuite(CIPHERSUITE)
                .use_ratchet_tree_extension(true)
                .with_wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
                .max_past_epochs(engine.config.max_past_epochs)
                .sender_ratchet_configuration(engine.config.sender_ratchet())
                .lifetime(engine.leaf_lifetime(now_ms))
                .build(&engine.provider, &engine.signer, engine.credential.clone())
                .map_err(mls_err)?;
            let active = engine
                .provider
                .mls_storage()
                .active_branch(&mls_id)?
                .ok_or(StorageError::UnknownGroup)?;
            let mut tree = ForkTree::default();
            tree.insert(HeldState {
                storage: active,
                epoch: group.epoch().as_u64(),
                parent: None,
                via: None,
                branch_id: branch_id(&group, &engine.provider)?,
                inactive_since_ms: None,
                evicted: false,
                vouched_at_ms: None,
                shown_at: None,
            });
            let mut runtime = GroupRuntime {
                group_ref,
                record: GroupRecord {
                    group_id: group_id.clone(),
                    tree,
                    active,
                    sent: Default::default(),
                    intents: Vec::new(),
                    reissues: Vec::new(),
                    seen: Default::default(),
                    log: Vec::new(),
                    known: Vec::new(),
                    next_beacon_ms: now_ms + engine.config.beacon_interval_ms,
                    pending_leaves: Vec::new(),
                    joined_epoch: 0,
                    welcomes: Vec::new(),
                },
                group,
                own_envelopes: Default::default(),
                buffered: Default::default(),
                just_applied: None,
                holds: None,
                heal: Default::default(),
                member_keys: Default::default(),
            };
            runtime.save(&engine.provider)?;
            let epoch = runtime.group.epoch().as_u64();
            engine.groups.insert(group_ref, runtime);
            engine.emit(Event::GroupJoined {
                group: group_ref,
                epoch,
            });
            Ok(group_ref)
        })
    }

    /// Sends an application message on the active branch and returns its id (what
    /// [`Command::Send`](super::Command::Send) does, for callers that show their own messages).
    pub fn send(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        body: Vec<u8>,
    ) -> Result<MessageId, EngineError> {
        if body.len() > self.config.limits.max_body_bytes {
            return Err(EngineError::Refused(format!(
                "message of {} bytes exceeds the limit of {}",
                body.len(),
                self.config.limits.max_body_bytes
            )));
        }
        let id = MessageId(self.random_bytes());
        let Some(body) = self.queue_if_settling(now_ms, group, id, body)? else {
            return Ok(id); // goes out when the settle ends
        };
        self.send_payload(now_ms, group, id, now_ms, body, Sending::New)?;
        Ok(id)
    }

    /// Sends several application messages on the active branch and returns their ids, in
    /// order. Under load an embedder has many sends at once (a round of API calls): they go
    /// out together as one bundle — the wire form of redeliveries, up to 64 messages per MLS
    /// message — so that the group pays one encryption, one signature, one envelope and one
    /// decryption per member for all of them. A single body is sent as by [`Engine::send`].
    /// Bodies over the limit refuse the whole call before anything is sent; a failure after
    /// the first bundle (more than 64 messages) leaves the earlier bundles sent.
    pub fn send_many(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        mut bodies: Vec<Vec<u8>>,
    ) -> Result<Vec<MessageId>, EngineError> {
        let limit = self.config.limits.max_body_bytes;
        if let Some(body) = bodies.iter().find(|b| b.len() > limit) {
            return Err(EngineError::Refused(format!(
                "message of {} bytes exceeds the limit of {limit}",
                body.len()
            )));
        }
        if bodies.len() <= 1 {
            return match bodies.pop() {
                Some(body) => Ok(vec![self.send(now_ms, group, body)?]),
                None => Ok(Vec::new()),
            };
        }
        let mut ids = Vec::with_capacity(bodies.len());
        let mut now = Vec::with_capacity(bodies.len());
        for body in bodies {
            let id = MessageId(self.random_bytes());
            ids.push(id);
            // A settling group queues each of them, as it would one send.
            if let Some(body) = self.queue_if_settling(now_ms, group, id, body)? {
                now.push(ApplicationPayload {
                    id,
                    sent_at_ms: now_ms,
                    body,
                });
            }
        }
        let keep_for_history = self.config.confirm_delivery;
        for bundle in Redelivery::chunks(now, &self.config.limits) {
            self.step(Some(group), |engine| {
                if keep_for_history {
                    for m in &bundle.messages {
                        engine.stage_own(&group, &m.id, m.sent_at_ms, &m.body)?;
                    }
                }
                if let [single] = &bundle.messages[..] {
                    // The last of a long run alone: a plain message, as `send` makes it.
                    let plaintext = single.encode()?;
                    let aad = single.id.0.to_vec();
                    return engine.send_sealed(now_ms, group, aad, &plaintext, bundle.messages);
                }
                let plaintext = bundle.encode()?;
                let aad = bundle.aad();
                engine.send_sealed(now_ms, group, aad, &plaintext, bundle.messages)
            })?;
        }
        Ok(ids)
    }

    /// Sends (or re-sends, with the same id and time) a message on the active branch.
    pub(crate) fn send_payload(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        id: MessageId,
        sent_at_ms: u64,
        body: Vec<u8>,
        sending: Sending,
    ) -> Result<(), EngineError> {
        let keep_for_history = sending == Sending::New && self.config.confirm_delivery;
        self.step(Some(group), |engine| {
            if keep_for_history {
                engine.stage_own(&group, &id, sent_at_ms, &body)?;
            }
            let payload = ApplicationPayload {
                id,
                sent_at_ms,
                body,
            };
            let plaintext = payload.encode()?;
            engine.send_sealed(now_ms, group, id.0.to_vec(), &plaintext, vec![payload])
        })
    }

    /// Sends again, as redeliveries (one MLS message per [`Redelivery::chunks`] chunk rather
    /// than one per message), own messages that were sent before.
    pub(crate) fn send_redeliveries(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        messages: Vec<ApplicationPayload>,
    ) -> Result<(), EngineError> {
        for chunk in Redelivery::chunks(messages, &self.config.limits) {
            self.step(Some(group), |engine| {
                let plaintext = chunk.encode()?;
                let aad = chunk.aad();
                engine.send_sealed(now_ms, group, aad, &plaintext, chunk.messages)
            })?;
        }
        Ok(())
    }

    /// Encrypts `plaintext` (which carries `carried`, own messages) on the active state with
    /// `aad`, notes each message as sent on it (kept for a heal, listed for the window, seen),
    /// and publishes it. Runs inside the caller's step.
    fn send_sealed(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        aad: Vec<u8>,
        plaintext: &[u8],
        carried: Vec<ApplicationPayload>,
    ) -> Result<(), EngineError> {
        let provider = &self.provider;
        let signer = &self.signer;
        let rt = self
            .groups
            .get_mut(&group)
            .ok_or_else(|| EngineError::UnknownGroup(hex::encode(group.0)))?;
        // Removed on the active state, or holding only states it was evicted from (a lost
        // join, a removal on the winning side of a split): nobody in the group would read it.
        if !rt.is_member_on_active() {
            return Err(EngineError::Refused(
                "this member was removed from the group".into(),
            ));
        }
        rt.group.set_aad(aad);
        let message = rt
            .group
            .create_message(provider, signer, plaintext)
            .map_err(mls_err)?;
        let bytes = wire_bytes(&message)?;
        let on = rt.record.active;
        let epoch = rt.group.epoch().as_u64();
        let group_now = &rt.group;
        rt.heal.asks.note_roster(epoch, on.0, || members(group_now));
        for payload in carried {
            let kept = super::heal::KeptMessage {
                id: payload.id,
                sent_at_ms: payload.sent_at_ms,
                epoch,
                body: payload.body.clone(),
            };
            rt.heal
                .keep(provider.mls_storage().staged(), &group, &kept)?;
            rt.record.seen.insert_if_absent(payload.id, now_ms);
            rt.record.sent.put(SentMessage {
                id: payload.id,
                sent_at_ms: payload.sent_at_ms,
                body: payload.body,
                on,
            });
        }
        rt.save(provider)?;
        self.publish_own(group, EnvelopeKind::Application, bytes)
    }

    pub(crate) fn invite(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        key_package: Vec<u8>,
    ) -> Result<(), EngineError> {
        let kp = parse_key_package(&key_package, &self.provider)?;
        let leaf = kp.leaf_node();
        let key_changed = self.check_leaf(
            Some(group),
            leaf.credential(),
            leaf.signature_key().as_slice(),
            now_ms,
        )?;
        if key_changed {
            return Err(EngineError::Refused(format!(
                "{}'s identity key changed; compare safety numbers and accept the new key first",
                super::credentials::display_name(leaf.credential().serialized_content())
            )));
        }
        self.commit(
            now_ms,
            group,
            CommitOp::Add(Box::new(kp)),
            IntentKind::Add { key_package },
        )
        .map(|_| ())
    }

    pub(crate) fn remove(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        member: Vec<u8>,
    ) -> Result<(), EngineError> {
        let rt = self.runtime(group)?;
        let leaf = rt
            .group
            .members()
            .find(|m| m.credential.serialized_content() == member.as_slice())
            .map(|m| m.index)
            .ok_or_else(|| EngineError::Refused("no such member in the group".into()))?;
        self.commit(
            now_ms,
            group,
            CommitOp::Remove(leaf),
            IntentKind::Remove { member },
        )
        .map(|_| ())
    }

    pub(crate) fn self_update(&mut self, now_ms: u64, group: GroupRef) -> Result<(), EngineError> {
        self.commit(now_ms, group, CommitOp::Update, IntentKind::Update)
            .map(|_| ())
    }

    /// Commits `op` on a copy of the active state and makes the result the active head (or,
    /// under a holding consistency mode, a held state beside it). `None`: deferred until
    /// the group's settle ends.
    pub(crate) fn commit(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        op: CommitOp,
        intent: IntentKind,
    ) -> Result<Option<CommitRef>, EngineError> {
        if self.defer_commit_if_settling(now_ms, group, &intent)? {
            return Ok(None); // made when the settle ends, if still needed then
        }
        let effect = self.own_commit_effect(group);
        let hold = effect == OwnCommit::Hold;
        let commit_ref = self.step(Some(group), |engine| {
            let provider = &engine.provider;
            let signer = &engine.signer;
            let storage = provider.mls_storage();
            let rt = engine
                .groups
                .get_mut(&group)
                .ok_or_else(|| EngineError::UnknownGroup(hex::encode(group.0)))?;
            if !rt.group.is_active() {
                return Err(EngineError::Refused(
                    "this member was removed from the group".into(),
                ));
            }
            let group_id = rt.group_id();
            let old = rt.record.active;
            let leaf_before = own_leaf_hash(&rt.group);
            // The log is the path to `old` now: what the joiner of an Add is told of it.
            let history = recent_log(&rt.record.log);
            let new = storage.checkpoint(&group_id, old)?;
            // The checkpoint holds exactly what the in-memory group holds, so the group goes
            // on in place with storage pointed at the copy; the old state stays behind under
            // `old`. (Loading the copy would cost ~70 ms at 1000 members.) If the step fails,
            // `step` rolls storage back and reloads the group.
            storage.activate(&group_id, new)?;
            let copy = &mut rt.group;
            let (commit, welcome, removes, adds) = match &op {
                CommitOp::Add(kp) => {
                    let (c, w, _) = copy
                        .add_members(provider, signer, std::slice::from_ref(kp.as_ref()))
                        .map_err(mls_err)?;
                    (c, Some(w), 0, 1)
                }
                CommitOp::Remove(leaf) => {
                    let (c, w, _) = copy
                        .remove_members(provider, signer, &[*leaf])
                        .map_err(mls_err)?;
                    (c, w, 1, 0)
                }
                CommitOp::Update => {
                    let bundle = copy
                        .self_update(provider, signer, LeafNodeParameters::default())
                        .map_err(mls_err)?;
                    let (c, w, _) = bundle.into_messages();
                    (c, w, 0, 0)
                }
            };
            copy.merge_pending_commit(provider).map_err(mls_err)?;
            let commit_bytes = wire_bytes(&commit)?;
            let commit_ref = CommitRef::of(&commit_bytes);
            let facts = CommitFacts {
                commit_ref,
                removes,
                adds,
            };
            let epoch = copy.epoch().as_u64();
            if let Some(state) = rt.record.tree.get_mut(old) {
                state.inactive_since_ms = Some(now_ms);
            }
            rt.record.tree.insert(HeldState {
                storage: new,
                epoch,
                parent: Some(old),
                via: Some(facts),
                branch_id: branch_id(copy, provider)?,
                inactive_since_ms: None,
                evicted: false,
                vouched_at_ms: None,
                shown_at: None,
            });
            rt.record.know_commit(commit_ref);
            if let IntentKind::Remove { .. } | IntentKind::Add { .. } = &intent {
                // Kept beyond the window: re-applied if a split's losing side had it.
                rt.heal.keep_change(
                    provider.mls_storage().staged(),
                    &group,
                    &super::heal::KeptChange {
                        made_on: epoch - 1,
                        made_at_ms: now_ms,
                        commit_ref,
                        kind: intent.clone(),
                        readd_with: None,
                    },
                )?;
            }
            rt.record.intents.push(Intent {
                kind: intent,
                on: new,
                made_at_ms: now_ms,
                leaf_before,
            });
            if hold {
                // The mode decides later whether this commit takes effect: the state it was
                // made on stays the active head (and the group in memory goes back to it).
                if let Some(state) = rt.record.tree.get_mut(old) {
                    state.inactive_since_ms = None;
                }
                rt.group = load_active(provider, &group_id, old)?;
                rt.save(provider)?;
                let payload = welcome_for_add(&welcome, &op, commit_ref, removes, adds, history)?;
                engine.publish_own(group, EnvelopeKind::Handshake, commit_bytes)?;
                if let Some((topic, payload)) = payload {
                    if hold {
                        let envelope =
                            crate::wire::Envelope::new(EnvelopeKind::Welcome, group, payload)
                                .encode()?;
                        engine
                            .consistency_mut(group)
                            .held_welcomes
                            .push((new, topic, envelope));
                        // In this step: the Add and its Welcome are stored together.
                        engine.persist_mode(group)?;
                    } else {
                        engine.publish_to(topic, group, EnvelopeKind::Welcome, payload)?;
                    }
                }
                return Ok(commit_ref);
            }
            rt.record.log_commit((epoch - 1, commit_ref));
            rt.record.active = new;
            rt.save(provider)?;
            let branch = rt
                .record
                .tree
                .get(new)
                .map(|s| s.branch_id)
                .unwrap_or_default();
            let roster = members(&rt.group);
            engine.publish_own(group, EnvelopeKind::Handshake, commit_bytes)?;
            if let Some((topic, payload)) =
                welcome_for_add(&welcome, &op, commit_ref, removes, adds, history)?
            {
                engine.publish_to(topic, group, EnvelopeKind::Welcome, payload)?;
            }
            engine.emit(Event::EpochChanged {
                group,
                epoch,
                branch_id: branch,
            });
            if removes + adds > 0 {
                engine.emit(Event::MembershipChanged {
                    group,
                    members: roster,
                });
            }
            Ok(commit_ref)
        })?;
        self.after_own_commit(now_ms, group, effect)?;
        Ok(Some(commit_ref))
    }
}

/// The Welcome of an own Add as (inbox topic, envelope payload), if `op` is an Add.
fn welcome_for_add(
    welcome: &Option<MlsMessageOut>,
    op: &CommitOp,
    commit_ref: CommitRef,
    removes: u32,
    adds: u32,
    history: Vec<(u64, CommitRef)>,
) -> Result<Option<(String, Vec<u8>)>, EngineError> {
    let (Some(welcome), CommitOp::Add(kp)) = (welcome, op) else {
        return Ok(None);
    };
    let bundle = WelcomeBundle {
        commit_ref,
        removes,
        adds,
        welcome: wire_bytes(welcome)?,
        history,
    };
    let payload = identity_tofu::codec::encode(&bundle)
        .map_err(|e| EngineError::Refused(format!("welcome cannot be encoded: {e}")))?;
    let topic = inbox_topic(kp.leaf_node().credential().serialized_content());
    Ok(Some((topic, payload)))
}

/// The newest entries of a public log, as many as a beacon carries, oldest first.
pub(crate) fn recent_log(log: &[(u64, CommitRef)]) -> Vec<(u64, CommitRef)> {
    let keep = super::timers::BEACON_LOG_ENTRIES;
    log[log.len().saturating_sub(keep)..].to_vec()
}

/// Parses and verifies a KeyPackage received from someone.
pub(crate) fn parse_key_package(
    bytes: &[u8],
    provider: &crate::storage::ChorusProvider,
) -> Result<KeyPackage, EngineError> {
    use openmls_traits::OpenMlsProvider as _;
    let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(mls_err)?;
    let MlsMessageBodyIn::KeyPackage(kp) = message.extract() else {
        return Err(EngineError::Refused("not a KeyPackage".into()));
    };
    kp.validate(provider.crypto(), ProtocolVersion::Mls10)
        .map_err(mls_err)
}

//! The daemon's core: owns the engine, the node's records and the trust store, and runs every
//! API call, network envelope and engine timer on one task, one at a time. One task means the
//! engine and the trust store see no concurrent steps (TOFU's read-modify-write cycles are
//! serialized by construction, though the engine and the contact commands hold two handles
//! to the one trust column family).
//!
//! Group commit: the daemon runs a round of steps (whatever inputs are ready, up to a bound),
//! then calls [`Core::commit`], which fsyncs the database once and only then lets the round's
//! effects out — API answers, events, and envelopes to publish. Nothing leaves the node before
//! the state that produced it is durable: a ciphertext published before its ratchet state was
//! synced could be produced again with the same key after a power cut. The envelopes go to
//! the network layer through [`publisher`], so the next round does not wait for them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ds_p2p::engine::credentials::SharedTrustStore;
use ds_p2p::engine::{Command, Engine, Event, Output};
use ds_p2p::wire::{Envelope, EnvelopeKind, GroupRef, MessageId, WireLimits, inbox_topic};
use gossip::Topic;
use gossip::net::{NetEvent, NodeHandle, PeerId};
use identity_tofu::{LocalIdentity, SignedDeviceCertificate};
use tokio::sync::{broadcast, oneshot};

use super::key_exchange::{KeyPackageMessage, OfferBudget};
use super::lookups::{self, Found};
use super::present::{self, group_hex};
use crate::api::routes::Route;
use crate::api::views::{EventView, GroupStatusView, IdView, MessageView, PeerView, StatusView};
use crate::api::{ApiError, ApiResult};
use crate::invite_code::InviteCode;
use crate::store::{GroupMeta, NodeStore, OutboxEntry, StoredMessage};

mod contacts;
mod mode_meter;
mod publisher;
mod sends;

pub use publisher::Published;
mod split;

/// How long an invite waits for the contact's node to send a KeyPackage.
pub const INVITE_TIMEOUT_MS: u64 = 30_000;
/// After this long without an answer, the contact's last-resort KeyPackage is looked up in
/// the DHT as well (their node may be away).
pub const INVITE_DHT_FALLBACK_MS: u64 = 5_000;

/// An invite waiting for the contact's KeyPackage.
pub(super) struct PendingInvite {
    group: GroupRef,
    /// The contact's credential identity: the KeyPackage must be theirs.
    contact: Vec<u8>,
    deadline_ms: u64,
    /// When to ask the DHT; `None` once asked.
    dht_at_ms: Option<u64>,
    reply: oneshot::Sender<ApiResult>,
}

pub struct Core {
    pub engine: Engine,
    pub net: NodeHandle,
    pub store: NodeStore,
    pub trust: SharedTrustStore,
    pub me: LocalIdentity,
    pub events: broadcast::Sender<EventView>,
    pub limits: WireLimits,
    pub shutdown: bool,
    pending_invites: BTreeMap<[u8; 16], PendingInvite>,
    offers: OfferBudget,
    split: split::Splits,
    /// Messages staged for the history since the engine was last told
    /// (`confirm_delivered`, once the round has written them).
    delivered: Vec<(GroupRef, MessageId)>,
    subscribed: BTreeSet<String>,
    peers: BTreeSet<PeerId>,
    /// Where `contact add <dns-name>` looks up `_chorus.<name>` TXT records.
    pub dns: crate::lookup::DnsResolverConfig,
    /// Reads the node's memory figures for `status` (set by the daemon; absent in tests).
    pub memory: Option<super::memory::MemoryProbe>,
    /// Lookups running on other tasks report here (the daemon loop feeds them to `on_found`).
    found: tokio::sync::mpsc::UnboundedSender<Found>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The consistency-mode figures of `metrics.modes`, kept up at the end of each round.
    meter: mode_meter::ModeMeter,
    /// Makes the round's writes durable (the database's fsync); see the module comment.
    sync: Box<dyn Fn() -> anyhow::Result<()> + Send>,
    /// The round's effects, held until [`Core::commit`].
    held: HeldEffects,
    /// Send calls held for their group's batch (see `sends`).
    pending_sends: Vec<sends::PendingSend>,
    /// Hands each round's envelopes to the network layer (`None` once shutting down).
    publisher: Option<tokio::sync::mpsc::Sender<publisher::Round>>,
    /// Rounds the network layer has taken: see [`Core::next_published`].
    published: tokio::sync::mpsc::UnboundedReceiver<Published>,
    /// True while [`Core::replay`] feeds the log's envelopes again: refusals then mean
    /// "already read", not a peer's fault, and are not shown.
    replaying: bool,
}

/// Who keeps an envelope until it has been handed to the network layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeptBy {
    Engine,
    Outbox,
}

/// What a round produced that must not leave the node before its state is durable.
#[derive(Default)]
struct HeldEffects {
    /// History appends, numbered: written in one batch with the node's own envelopes (see
    /// [`NodeStore::write_round`]).
    history: Vec<(GroupRef, u64, StoredMessage)>,
    /// Envelopes to publish, in order, and who keeps each until it is out: the engine
    /// (`EngineConfig::confirm_publish`, stored in the step that made it) or the node's outbox
    /// (what the node makes itself: KeyPackage offers and requests).
    publish: Vec<(String, Vec<u8>, KeptBy)>,
    events: Vec<EventView>,
    answers: Vec<(oneshot::Sender<ApiResult>, ApiResult)>,
}

impl HeldEffects {
    fn is_empty(&self) -> bool {
        self.history.is_empty()
            && self.publish.is_empty()
            && self.events.is_empty()
            && self.answers.is_empty()
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Engine,
        net: NodeHandle,
        store: NodeStore,
        trust: SharedTrustStore,
        me: LocalIdentity,
        events: broadcast::Sender<EventView>,
        limits: WireLimits,
        metrics: Arc<crate::metrics::Metrics>,
        found: tokio::sync::mpsc::UnboundedSender<Found>,
        sync: Box<dyn Fn() -> anyhow::Result<()> + Send>,
    ) -> Self {
        let (publisher, published) = publisher::start(net.clone(), metrics.clone());
        Self {
            engine,
            net,
            store,
            trust,
            me,
            events,
            limits,
            shutdown: false,
            pending_invites: BTreeMap::new(),
            offers: OfferBudget::default(),
            split: split::Splits::default(),
            delivered: Vec::new(),
            subscribed: BTreeSet::new(),
            peers: BTreeSet::new(),
            dns: crate::lookup::DnsResolverConfig::System,
            memory: None,
            found,
            metrics,
            meter: Default::default(),
            sync,
            held: HeldEffects::default(),
            pending_sends: Vec::new(),
            publisher: Some(publisher),
            published,
            replaying: false,
        }
    }

    /// Ends a round: fsyncs what the round wrote, then hands its envelopes to the publisher,
    /// emits its events and sends its API answers. A failed sync is fatal — the state on disk is
    /// unknown, so nothing of the round may be acknowledged.
    pub async fn commit(&mut self) -> anyhow::Result<()> {
        self.flush_sends(now_ms()).await;
        self.meter
            .observe(&self.engine, now_ms(), &self.metrics.modes);
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        // The node's own envelopes go into the outbox inside the round, so the fsync covers
        // them: killed after it and before the network layer has them, the node publishes
        // them at its next start (`publish_outbox`). The engine's are kept by the engine
        // already, from the step that made them (`publish_unsent`). The history appends share
        // the outbox's batch: a full disk refusing it leaves neither.
        let outbox: Vec<OutboxEntry> = held
            .publish
            .iter()
            .filter(|(_, _, by)| *by == KeptBy::Outbox)
            .map(|(topic, envelope, _)| OutboxEntry {
                topic: topic.clone(),
                envelope: envelope.clone(),
            })
            .collect();
        let kept = self
            .store
            .write_round(&held.history, &outbox)
            .map_err(|e| {
                anyhow::anyhow!(
                    "the history and outbox could not be written ({e}); stopping the node"
                )
            })?;
        (self.sync)().map_err(|e| {
            anyhow::anyhow!("the database could not be synced ({e}); stopping the node")
        })?;
        self.metrics.commits.inc();
        // Only now: told before the history holds them, the engine would not offer them again
        // after a crash.
        self.confirm_delivered();
        let envelopes: Vec<OutboxEntry> = held
            .publish
            .into_iter()
            .map(|(topic, envelope, _)| OutboxEntry { topic, envelope })
            .collect();
        let done = Published {
            receipt: self.engine.publish_receipt(),
            outbox: kept,
        };
        if !envelopes.is_empty() || !done.receipt.is_empty() || !done.outbox.is_empty() {
            self.hand_to_publisher(publisher::Round { envelopes, done })
                .await;
        }
        for event in held.events {
            let _ = self.events.send(event);
        }
        for (reply, result) in held.answers {
            let _ = reply.send(result);
        }
        Ok(())
    }

    /// Gives a round to the publishing task; without one (shutting down), publishes it here.
    async fn hand_to_publisher(&mut self, round: publisher::Round) {
        let round = match self.publisher.as_ref() {
            Some(publisher) => match publisher.send(round).await {
                Ok(()) => return,
                Err(tokio::sync::mpsc::error::SendError(round)) => round,
            },
            None => round,
        };
        publisher::publish_all(&self.net, &self.metrics, round.envelopes).await;
        self.on_published(round.done);
    }

    /// A round the publisher handed to the network layer.
    pub async fn next_published(&mut self) -> Option<Published> {
        self.published.recv().await
    }

    /// The network layer holds a round's envelopes: the copies kept for a crash go.
    pub fn on_published(&mut self, done: Published) {
        if let Err(e) = self.engine.confirm_receipt(done.receipt) {
            // Harmless: they are published again at the next start, and the log and every
            // peer drop an envelope they already hold.
            tracing::warn!(error = %e, "published envelopes stay kept by the engine");
        }
        if !done.outbox.is_empty()
            && let Err(e) = self.store.delete_outbox(&done.outbox)
        {
            // Harmless: the entries are published again at the next start, and the log and
            // every peer drop an envelope they already hold.
            tracing::warn!(error = %e, "published envelopes stay in the outbox");
        }
    }

    /// Stopping: waits until the publisher has handed every round to the network layer,
    /// so that a clean stop leaves nothing to publish again at the next start.
    pub async fn finish_publishing(&mut self) {
        self.publisher = None;
        while let Some(done) = self.published.recv().await {
            self.on_published(done);
        }
    }

    /// Answers an API call when the round commits.
    pub(super) fn answer(&mut self, reply: oneshot::Sender<ApiResult>, result: ApiResult) {
        self.held.answers.push((reply, result));
    }

    /// Subscribes to the topics this node follows: its inbox, its contacts' inboxes (so that
    /// it holds their Welcomes and KeyPackage traffic for them while they are away — every
    /// node is part of the DS) and its groups.
    pub async fn subscribe_all(&mut self) -> anyhow::Result<()> {
        self.subscribe(inbox_topic(self.me.credential_identity()))
            .await?;
        for contact in self.store.contacts()? {
            self.subscribe(inbox_topic(&contact.certificate)).await?;
        }
        let groups: Vec<_> = self.engine.groups().collect();
        for group in groups {
            self.subscribe(group.topic()).await?;
        }
        Ok(())
    }

    async fn subscribe(&mut self, topic: String) -> anyhow::Result<()> {
        if self.subscribed.contains(&topic) {
            return Ok(());
        }
        let t = Topic::new(topic.clone())?;
        self.net.subscribe(&t).await?;
        self.subscribed.insert(topic);
        Ok(())
    }

    // ---- network ----------------------------------------------------------------------

    pub async fn on_net(&mut self, event: NetEvent) {
        self.flush_sends(now_ms()).await;
        match event {
            NetEvent::Received {
                topic, envelope, ..
            } => {
                self.metrics.envelopes_received.inc();
                let now = now_ms();
                match Envelope::decode(&envelope, &self.limits) {
                    Ok(e) if e.kind == EnvelopeKind::KeyPackage => {
                        self.on_key_package(now, topic.as_str(), &e.payload).await;
                    }
                    _ => {
                        self.engine.handle_envelope(now, &envelope);
                        self.drain(now).await;
                    }
                }
            }
            NetEvent::Rejected { from, reason, .. } => {
                self.metrics.envelopes_rejected.inc();
                tracing::warn!(peer = %from, reason, "refused an envelope from a peer");
            }
            NetEvent::PeerConnected { peer } => {
                self.peers.insert(peer);
                self.metrics.peers.set(self.peers.len() as i64);
                self.emit(EventView::PeerConnected {
                    peer_id: peer.to_string(),
                });
            }
            NetEvent::PeerDisconnected { peer } => {
                self.peers.remove(&peer);
                self.metrics.peers.set(self.peers.len() as i64);
                self.emit(EventView::PeerDisconnected {
                    peer_id: peer.to_string(),
                });
            }
            NetEvent::SyncCompleted { .. } => {
                self.metrics.syncs.inc();
            }
            _ => {}
        }
    }

    async fn on_key_package(&mut self, now: u64, topic: &str, payload: &[u8]) {
        let own_inbox = inbox_topic(self.me.credential_identity());
        let message = match KeyPackageMessage::from_payload(payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "undecodable KeyPackage message");
                return;
            }
        };
        match message {
            KeyPackageMessage::Request { nonce, reply_to } if topic == own_inbox => {
                if reply_to == self.me.credential_identity() {
                    return;
                }
                if !self.offers.take(now) {
                    tracing::warn!("KeyPackage requests over budget; one refused");
                    return;
                }
                let key_package = match self.engine.key_package(now) {
                    Ok(kp) => kp,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot make a KeyPackage");
                        return;
                    }
                };
                let offer = KeyPackageMessage::Offer { nonce, key_package };
                self.publish(inbox_topic(&reply_to), offer.envelope());
                tracing::info!("sent a KeyPackage to a requester");
            }
            KeyPackageMessage::Offer { nonce, key_package } if topic == own_inbox => {
                let Some(pending) = self.pending_invites.get(&nonce) else {
                    return;
                };
                // The request went out on a public topic: anyone could answer it. Only the
                // contact's own KeyPackage counts; the invite keeps waiting for it.
                match ds_p2p::directory::key_package_owner(&key_package) {
                    Ok(owner) if owner == pending.contact => {}
                    Ok(_) => {
                        tracing::warn!("refused a KeyPackage offer that is not the contact's");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "refused an invalid KeyPackage offer");
                        return;
                    }
                }
                let pending = self.pending_invites.remove(&nonce).expect("checked above");
                self.finish_invite(now, pending, key_package).await;
            }
            // Traffic for a contact's inbox: kept in the log for them, nothing to do here.
            _ => {}
        }
    }

    pub async fn on_timer(&mut self) {
        let now = now_ms();
        self.flush_sends(now).await;
        self.engine.handle_timeout(now);
        self.drain(now).await;
        let due: Vec<_> = self
            .pending_invites
            .iter_mut()
            .filter(|(_, p)| p.dht_at_ms.is_some_and(|at| at <= now))
            .map(|(n, p)| {
                p.dht_at_ms = None;
                (*n, p.contact.clone())
            })
            .collect();
        for (nonce, contact) in due {
            let Ok(cert) = SignedDeviceCertificate::decode(&contact) else {
                continue;
            };
            let key = lookups::bundle_key(&cert.certificate().fingerprint());
            let (net, found) = (self.net.clone(), self.found.clone());
            tokio::spawn(async move {
                let record = net.get_record(key).await.ok().flatten();
                let _ = found.send(Found::Bundle { nonce, record });
            });
        }
        let expired: Vec<_> = self
            .pending_invites
            .iter()
            .filter(|(_, p)| p.deadline_ms <= now)
            .map(|(n, _)| *n)
            .collect();
        for nonce in expired {
            if let Some(p) = self.pending_invites.remove(&nonce) {
                self.answer(
                    p.reply,
                    Err(ApiError::timeout(
                        "the contact's node did not send a KeyPackage in time: it may be \
                         offline (try again when it is online; its node answers within seconds)",
                    )),
                );
            }
        }
    }

    /// When the core next needs `on_timer`.
    pub fn next_timer(&self) -> Option<u64> {
        let invites = self
            .pending_invites
            .values()
            .map(|p| p.dht_at_ms.unwrap_or(p.deadline_ms).min(p.deadline_ms))
            .min();
        match (self.engine.poll_timeout(), invites) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- engine outputs -----------------------------------------------------------------

    /// Carries out everything the engine asked for; returns the refusals it reported.
    async fn drain(&mut self, now: u64) -> Vec<String> {
        let mut refusals = Vec::new();
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Publish { topic, envelope } => {
                    if topic.starts_with("chorus/g/")
                        && let Err(e) = self.subscribe(topic.clone()).await
                    {
                        tracing::warn!(%topic, error = %e, "cannot subscribe");
                    }
                    self.held.publish.push((topic, envelope, KeptBy::Engine));
                }
                Output::Event(event) => {
                    if let Some(reason) = self.on_engine_event(now, event).await {
                        refusals.push(reason);
                    }
                }
            }
        }
        refusals
    }

    /// Tells the engine which delivered messages the history now holds (see
    /// `EngineConfig::confirm_delivery`).
    fn confirm_delivered(&mut self) {
        let stored = std::mem::take(&mut self.delivered);
        if let Err(e) = self.engine.confirm_delivered(&stored) {
            // Harmless: at the next start they are offered again and found in the history.
            tracing::warn!(error = %e, "delivered messages stay unconfirmed");
        }
    }

    /// Stores the messages the engine read in an earlier run whose history write never
    /// happened (the node was killed between the two), skipping those the history has.
    pub fn deliver_unconfirmed(&mut self) -> anyhow::Result<usize> {
        let events = self.engine.undelivered()?;
        let mut known: BTreeMap<GroupRef, BTreeSet<String>> = BTreeMap::new();
        let mut stored = 0;
        for event in events {
            let Event::Message {
                group,
                id,
                sender,
                sent_at_ms,
                body,
            } = event
            else {
                continue;
            };
            let ids = match known.entry(group) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => v.insert(
                    self.store
                        .messages(group, 0)?
                        .into_iter()
                        .map(|(_, m)| m.id)
                        .collect(),
                ),
            };
            let hex_id = hex::encode(id.0);
            if !ids.contains(&hex_id) {
                let who = present::member(&sender);
                let message = StoredMessage {
                    id: hex_id.clone(),
                    sender_handle: who.handle,
                    sender_fingerprint: who.fingerprint,
                    sent_at_ms,
                    received_at_ms: now_ms(),
                    text: String::from_utf8_lossy(&body).into_owned(),
                };
                if self.store_message(group, message) {
                    ids.insert(hex_id);
                    stored += 1;
                }
            }
            if ids.contains(&hex::encode(id.0)) {
                self.delivered.push((group, id));
            }
        }
        if stored > 0 {
            tracing::info!(
                messages = stored,
                "stored messages read before a crash and missing from the history"
            );
        }
        Ok(stored)
    }

    /// Gives the engine envelopes the log already held at start (see
    /// `recent_log_envelopes`): those it read before are dropped by it, those a crash kept
    /// from it are read now.
    pub async fn replay(&mut self, envelopes: Vec<(String, Vec<u8>)>) {
        let count = envelopes.len();
        let own_inbox = inbox_topic(self.me.credential_identity());
        self.replaying = true;
        for (topic, envelope) in envelopes {
            let kind = Envelope::decode(&envelope, &self.limits).map(|e| e.kind);
            let ours = topic.starts_with("chorus/g/") || topic == own_inbox;
            if ours && !matches!(kind, Ok(EnvelopeKind::KeyPackage)) {
                let now = now_ms();
                self.engine.handle_envelope(now, &envelope);
                self.drain(now).await;
            }
        }
        self.replaying = false;
        tracing::debug!(envelopes = count, "replayed the log's recent envelopes");
    }

    /// Publishes what a previous run of the node kept in its outbox and did not hand to the
    /// network layer (it was stopped between a round's fsync and its publishing).
    pub async fn publish_outbox(&mut self) -> anyhow::Result<usize> {
        let kept = self.store.outbox()?;
        let seqs: Vec<u64> = kept.iter().map(|(seq, _)| *seq).collect();
        let entries = kept.into_iter().map(|(_, entry)| entry).collect();
        publisher::publish_all(&self.net, &self.metrics, entries).await;
        if !seqs.is_empty() {
            self.store.delete_outbox(&seqs)?;
            tracing::info!(
                envelopes = seqs.len(),
                "published what the last run left in its outbox"
            );
        }
        Ok(seqs.len())
    }

    /// Publishes an envelope the node made itself when the round commits (kept in the
    /// outbox until then).
    fn publish(&mut self, topic: String, envelope: Vec<u8>) {
        self.held.publish.push((topic, envelope, KeptBy::Outbox));
    }

    /// Publishes, when the round commits, what the engine queued in an earlier run and that
    /// run never handed to the network layer (killed between the engine's step and its
    /// round's end): an own commit or message nobody else would ever see.
    pub fn publish_unsent(&mut self) -> anyhow::Result<usize> {
        let unsent = self.engine.take_unpublished()?;
        let count = unsent.len();
        for (topic, envelope) in unsent {
            self.held.publish.push((topic, envelope, KeptBy::Engine));
        }
        if count > 0 {
            tracing::info!(
                envelopes = count,
                "publishing what the engine made before the last stop and never sent"
            );
        }
        Ok(count)
    }

    async fn on_engine_event(&mut self, now: u64, event: Event) -> Option<String> {
        if !self.split.on_event(&event) {
            // What is left of a healed split (its side's commits and beacons arriving late):
            // not a new split, and not shown as one.
            tracing::debug!(event = ?event, "fork beyond the window below the last heal");
            return None;
        }
        let mut refusal = None;
        match &event {
            Event::Message {
                group,
                id,
                sender,
                sent_at_ms,
                body,
            } => {
                self.metrics.messages_delivered.inc();
                let who = present::member(sender);
                let stored = StoredMessage {
                    id: hex::encode(id.0),
                    sender_handle: who.handle,
                    sender_fingerprint: who.fingerprint,
                    sent_at_ms: *sent_at_ms,
                    received_at_ms: now,
                    text: String::from_utf8_lossy(body).into_owned(),
                };
                if self.store_message(*group, stored) {
                    self.delivered.push((*group, *id));
                }
            }
            Event::GroupJoined { group, .. } => {
                if let Err(e) = self.subscribe(group.topic()).await {
                    tracing::warn!(error = %e, "cannot subscribe to a joined group");
                }
                if matches!(self.store.group(*group), Ok(None)) {
                    let meta = GroupMeta {
                        name: format!("g-{}", &group_hex(*group)[..8]),
                        joined_at_ms: now,
                    };
                    let _ = self.store.put_group(*group, &meta);
                }
            }
            Event::ForkDetected { .. } => {
                self.metrics.forks.inc();
            }
            Event::BranchSwitched {
                resent, reissued, ..
            } => {
                self.metrics.branch_switches.inc();
                let modes = &self.metrics.modes;
                modes.resent_messages.inc_by(resent.len() as u64);
                modes.reissued_intents.inc_by(*reissued as u64);
            }
            Event::Readded {
                resent, reissued, ..
            } => {
                let modes = &self.metrics.modes;
                modes.resent_messages.inc_by(resent.len() as u64);
                modes.reissued_intents.inc_by(*reissued as u64);
            }
            Event::EpochChanged { group, epoch, .. } => {
                self.meter
                    .epoch_changed(*group, *epoch, now, &self.metrics.modes);
            }
            Event::Rejected { reason, .. } if self.replaying => {
                tracing::debug!(reason, "replayed envelope dropped");
                return None;
            }
            Event::Rejected { reason, .. } | Event::InvalidCredential { reason, .. } => {
                refusal = Some(reason.clone());
            }
            Event::KeyChanged {
                handle, offered, ..
            } => {
                refusal = Some(format!(
                    "{handle} now shows a different identity key ({offered}); compare safety \
                     numbers, then `chorus contact accept-key {handle}`"
                ));
            }
            Event::LastResortKeyPackageUsed => self.publish_records(now).await,
            _ => {}
        }
        match &event {
            // Not the body: it is the user's text, and formatting it byte by byte cost more
            // than the rest of the delivery.
            Event::Message {
                group, id, body, ..
            } => tracing::info!(
                group = %group_hex(*group),
                id = %hex::encode(id.0),
                bytes = body.len(),
                "message delivered"
            ),
            other => tracing::info!(event = ?other, "engine event"),
        }
        if let Some(view) = present::event_view(&event) {
            self.emit(view);
        }
        refusal
    }

    /// Stages a delivered message for the history (written when the round commits); whether
    /// it was staged.
    fn store_message(&mut self, group: GroupRef, stored: StoredMessage) -> bool {
        match self.stage_message(group, stored) {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = %e, "cannot store a delivered message");
                false
            }
        }
    }

    /// Numbers a message, stages it for the round's history write and emits it.
    fn stage_message(
        &mut self,
        group: GroupRef,
        stored: StoredMessage,
    ) -> Result<MessageView, crate::store::StoreError> {
        let seq = self.store.reserve_seq(group)?;
        let message = message_view(seq, stored.clone());
        self.held.history.push((group, seq, stored));
        self.emit(EventView::Message {
            group: group_hex(group),
            message: message.clone(),
        });
        Ok(message)
    }

    /// Emits when the round commits.
    fn emit(&mut self, event: EventView) {
        self.held.events.push(event);
    }

    /// Runs a command and reports the engine's refusal of it as an error.
    async fn run_command(&mut self, now: u64, command: Command) -> Result<(), ApiError> {
        // An own commit: its latency runs until the active epoch moves past this one.
        let commit_on = match &command {
            Command::Invite { group, .. }
            | Command::Remove { group, .. }
            | Command::SelfUpdate { group } => self
                .engine
                .group_status(*group)
                .map(|status| (*group, status.epoch)),
            _ => None,
        };
        if let Some((group, epoch)) = commit_on {
            self.meter.intent(group, epoch, now, &self.metrics.modes);
        }
        self.engine.handle_command(now, command);
        let refusals = self.drain(now).await;
        match refusals.into_iter().next() {
            Some(reason) => {
                if let Some((group, epoch)) = commit_on {
                    self.meter.withdraw(group, epoch, now);
                }
                Err(ApiError::conflict(reason))
            }
            None => Ok(()),
        }
    }

    // ---- API ----------------------------------------------------------------------------

    /// Runs one API call. Invites answer later (when the KeyPackage arrives).
    pub async fn on_api(&mut self, route: Route, reply: oneshot::Sender<ApiResult>) {
        let now = now_ms();
        // Consecutive sends wait to go out together; anything else sends them first.
        if !matches!(route, Route::Send { .. }) {
            self.flush_sends(now).await;
        }
        let result = match route {
            Route::Id => self.id_view().await.map(|v| json(&v)),
            Route::Status => self.status_view().await.map(|v| json(&v)),
            Route::Contacts => self.contact_views().map(|v| json(&v)),
            Route::AddContact { address, name } => {
                self.start_add_contact(now, &address, name, reply).await;
                return;
            }
            Route::Verify {
                contact,
                safety_number,
            } => self.verify(now, &contact, safety_number).map(|v| json(&v)),
            Route::AcceptKey { contact } => self.accept_key(now, &contact).map(|v| json(&v)),
            Route::Groups => self.group_views().map(|v| json(&v)),
            Route::CreateGroup { name } => self.create_group(now, name).await.map(|v| json(&v)),
            Route::GroupStatus { group } => self
                .resolve_group(&group)
                .and_then(|g| self.group_view(g))
                .map(|v| json(&v)),
            Route::Invite { group, contact } => {
                match self.start_invite(now, &group, &contact).await {
                    Ok((nonce, group, contact)) => {
                        self.pending_invites.insert(
                            nonce,
                            PendingInvite {
                                group,
                                contact,
                                deadline_ms: now + INVITE_TIMEOUT_MS,
                                dht_at_ms: Some(now + INVITE_DHT_FALLBACK_MS),
                                reply,
                            },
                        );
                        return;
                    }
                    Err(e) => Err(e),
                }
            }
            Route::Remove { group, member } => self.remove(now, &group, &member).await,
            Route::Update { group } => match self.resolve_group(&group) {
                Ok(g) => self
                    .run_command(now, Command::SelfUpdate { group: g })
                    .await
                    .and_then(|_| self.group_view(g).map(|v| json(&v))),
                Err(e) => Err(e),
            },
            Route::Leave { group } => match self.resolve_group(&group) {
                Ok(g) => self
                    .run_command(now, Command::Leave { group: g })
                    .await
                    .map(|_| serde_json::json!({ "ok": true, "note": "leave requested: another member commits your removal" })),
                Err(e) => Err(e),
            },
            Route::Messages { group, from } => self
                .resolve_group(&group)
                .and_then(|g| self.messages(g, from))
                .map(|v| json(&v)),
            Route::Send { group, text } => return self.queue_send(&group, text, reply),
            Route::Events => Err(ApiError::bad("the event stream is served by the API task")),
            Route::Shutdown => {
                self.shutdown = true;
                Ok(serde_json::json!({ "ok": true }))
            }
        };
        self.answer(reply, result);
    }

    async fn id_view(&self) -> Result<IdView, ApiError> {
        let addrs: Vec<String> = self
            .net
            .listen_addrs()
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .map(|a| a.to_string())
            .collect();
        let code = InviteCode {
            certificate: self.me.credential_identity().to_vec(),
            peer_id: self.net.peer_id().to_string(),
            addrs: addrs.clone(),
        };
        Ok(IdView {
            handle: self.me.handle().to_string(),
            fingerprint: self.me.fingerprint().to_hex(),
            peer_id: self.net.peer_id().to_string(),
            addrs,
            invite_code: code.encode(),
        })
    }

    async fn status_view(&self) -> Result<StatusView, ApiError> {
        let mut peers = Vec::new();
        for p in &self.peers {
            peers.push(PeerView {
                peer_id: p.to_string(),
                score: self.net.peer_score(*p).await.ok().flatten(),
            });
        }
        Ok(StatusView {
            id: self.id_view().await?,
            peers,
            groups: self.group_views()?,
            memory: self.memory.as_ref().map(|probe| probe()),
        })
    }

    fn group_views(&self) -> Result<Vec<GroupStatusView>, ApiError> {
        self.engine
            .groups()
            .map(|g| self.group_view(g))
            .collect::<Result<Vec<_>, _>>()
    }

    fn group_view(&self, group: GroupRef) -> Result<GroupStatusView, ApiError> {
        let status = self
            .engine
            .group_status(group)
            .ok_or_else(|| ApiError::not_found(format!("not in group {}", group_hex(group))))?;
        let name = self
            .store
            .group(group)
            .map_err(ApiError::internal)?
            .map(|m| m.name)
            .unwrap_or_else(|| group_hex(group));
        let mut view = present::status_view(group, &name, &status, self.split.contains(&group));
        self.mark_online(&mut view.members)?;
        Ok(view)
    }

    /// Marks yourself and the members who are contacts with whether their node is connected.
    fn mark_online(&self, members: &mut [crate::api::views::MemberView]) -> Result<(), ApiError> {
        let me = self.me.fingerprint().to_hex();
        let contacts = self.store.contacts().map_err(ApiError::internal)?;
        for m in members.iter_mut() {
            if m.fingerprint == me {
                m.online = Some(true);
                continue;
            }
            let peer = contacts
                .iter()
                .find(|c| present::member(&c.certificate).fingerprint == m.fingerprint)
                .and_then(|c| c.peer_id.parse::<PeerId>().ok());
            m.online = peer.map(|p| self.peers.contains(&p));
        }
        Ok(())
    }

    /// A group by its name, or by a prefix (≥ 4 hex digits) of its id.
    fn resolve_group(&self, text: &str) -> Result<GroupRef, ApiError> {
        let metas = self.store.groups().map_err(ApiError::internal)?;
        let in_engine: BTreeSet<GroupRef> = self.engine.groups().collect();
        if let Some((g, _)) = metas
            .iter()
            .find(|(g, m)| m.name == text && in_engine.contains(g))
        {
            return Ok(*g);
        }
        let lower = text.to_ascii_lowercase();
        if lower.len() >= 4 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<_> = in_engine
                .iter()
                .filter(|g| group_hex(**g).starts_with(&lower))
                .collect();
            if let [one] = hits.as_slice() {
                return Ok(**one);
            }
            if hits.len() > 1 {
                return Err(ApiError::bad(format!(
                    "{text} matches {} groups; give more digits",
                    hits.len()
                )));
            }
        }
        Err(ApiError::not_found(format!(
            "no group named {text:?} (see `chorus group list`)"
        )))
    }

    async fn create_group(&mut self, now: u64, name: String) -> Result<GroupStatusView, ApiError> {
        check_name("group name", &name)?;
        if self
            .store
            .groups()
            .map_err(ApiError::internal)?
            .iter()
            .any(|(_, m)| m.name == name)
        {
            return Err(ApiError::conflict(format!(
                "a group named {name:?} exists already"
            )));
        }
        let group = self
            .engine
            .create_group(now)
            .map_err(|e| ApiError::internal(format!("cannot create the group: {e}")))?;
        self.store
            .put_group(
                group,
                &GroupMeta {
                    name,
                    joined_at_ms: now,
                },
            )
            .map_err(ApiError::internal)?;
        self.drain(now).await;
        self.group_view(group)
    }

    async fn start_invite(
        &mut self,
        now: u64,
        group: &str,
        contact: &str,
    ) -> Result<([u8; 16], GroupRef, Vec<u8>), ApiError> {
        let group = self.resolve_group(group)?;
        let contact = self.resolve_contact(contact)?;
        if let Some(pending) = self
            .trust
            .contact(&contact.address)
            .map_err(ApiError::internal)?
            .and_then(|c| c.pending_key_change)
        {
            return Err(ApiError::conflict(format!(
                "{} offered a new identity key ({}); compare safety numbers and run \
                 `chorus contact accept-key {}` before inviting",
                contact.name,
                pending.offered.fingerprint(),
                contact.name
            )));
        }
        let nonce: [u8; 16] = rand::random();
        let request = KeyPackageMessage::Request {
            nonce,
            reply_to: self.me.credential_identity().to_vec(),
        };
        let topic = inbox_topic(&contact.certificate);
        self.subscribe(topic.clone())
            .await
            .map_err(ApiError::internal)?;
        self.publish(topic, request.envelope());
        tracing::info!(contact = %contact.name, at = now, "asked for a KeyPackage");
        Ok((nonce, group, contact.certificate))
    }

    async fn remove(&mut self, now: u64, group: &str, member: &str) -> ApiResult {
        let group = self.resolve_group(group)?;
        let status = self
            .engine
            .group_status(group)
            .ok_or_else(|| ApiError::not_found("not in that group"))?;
        let contact_cert = self.resolve_contact(member).ok().map(|c| c.certificate);
        let lower = member.to_ascii_lowercase();
        let hits: Vec<&Vec<u8>> = status
            .members
            .iter()
            .filter(|m| {
                let view = present::member(m);
                Some(*m) == contact_cert.as_ref()
                    || view.handle == member
                    || (lower.len() >= 8 && view.fingerprint.starts_with(&lower))
            })
            .collect();
        let target = match hits.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(ApiError::not_found(format!(
                    "no member {member:?} in this group (name a handle, contact or fingerprint)"
                )));
            }
            _ => {
                return Err(ApiError::bad(format!(
                    "{member:?} matches {} members; give their fingerprint",
                    hits.len()
                )));
            }
        };
        self.run_command(
            now,
            Command::Remove {
                group,
                member: target,
            },
        )
        .await?;
        self.group_view(group).map(|v| json(&v))
    }

    fn messages(&self, group: GroupRef, from: u64) -> Result<Vec<MessageView>, ApiError> {
        Ok(self
            .store
            .messages(group, from)
            .map_err(ApiError::internal)?
            .into_iter()
            .map(|(seq, m)| message_view(seq, m))
            .collect())
    }
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("views serialize")
}

fn message_view(seq: u64, m: StoredMessage) -> MessageView {
    MessageView {
        seq,
        id: m.id,
        sender: m.sender_handle,
        sender_fingerprint: m.sender_fingerprint,
        sent_at_ms: m.sent_at_ms,
        received_at_ms: m.received_at_ms,
        text: m.text,
        queued: false,
    }
}

/// Names are path segments and table cells: keep them printable and short.
pub(super) fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > 64 {
        return Err(ApiError::bad(format!("{what} must be 1–64 characters")));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || "-_.".contains(c))
    {
        return Err(ApiError::bad(format!(
            "{what} {name:?} may hold letters, digits, '-', '_' and '.' only"
        )));
    }
    Ok(())
}

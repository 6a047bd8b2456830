//! Anti-entropy: when sync sessions start, and how the node's task drives them and serves
//! its peers' sessions.
//!
//! A session starts when a peer subscribes to a topic we are on (which happens right after
//! a connection opens), when we subscribe to a topic peers are on, on every anti-entropy
//! tick with one random peer per topic, and on `sync_now`. At most one session runs per
//! (peer, topic), and at most `max_sessions` in all.
//!
//! A tick's session reconciles only the recent envelopes (`recent_window_ms`), except one
//! tick per topic every `full_sync_interval`; every other session reconciles the whole
//! window (see [`Scope`]).

use identity_tofu::kv::KvStore;
use libp2p::PeerId;
use libp2p::gossipsub::TopicHash;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use rand::seq::SliceRandom;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::admit::{Admission, admit};
use super::driver::{Driver, now_ms};
use super::event::{NetEvent, Via};
use super::sync::SyncError;
use super::sync::serve::{ServeContext, serve};
use super::sync::session::{Next, Outgoing};
use super::sync::{SyncRequest, SyncResponse, WireEnvelope};
use crate::envelope_id::EnvelopeId;
use crate::topic::Topic;

/// How far back a session reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// The whole sync window: what a peer that was away or cut off brings can be old.
    Full,
    /// Only the recent envelopes, for a routine round: gossip's losses are recent, and the
    /// cost of a session grows with the envelopes it reads.
    Recent,
}

impl<S: KvStore + 'static> Driver<S> {
    /// Connected peers that told us they are on `topic`.
    pub(super) fn topic_peers(&self, topic: &Topic) -> Vec<PeerId> {
        let hash = TopicHash::from_raw(topic.as_str());
        self.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// Starts a session with `peer` on `topic` over `scope` unless we are not on the topic,
    /// one runs already, or too many do. True if it started.
    pub(super) fn start_sync(&mut self, peer: PeerId, topic: Topic, scope: Scope) -> bool {
        let key = (peer, topic);
        if !self.subscribed.contains(&key.1)
            || self.sync.sessions.contains_key(&key)
            || self.sync.sessions.len() >= self.config.sync.max_sessions
            || !self.swarm.is_connected(&peer)
        {
            return false;
        }
        let window = match scope {
            Scope::Full => self.config.sync.window_ms,
            Scope::Recent => self
                .config
                .sync
                .recent_window_ms
                .min(self.config.sync.window_ms),
        };
        let since = now_ms().saturating_sub(window);
        let salt = rand::random();
        let (session, request) = match Outgoing::open(
            key.1.clone(),
            peer,
            &self.log,
            &self.config.sync,
            salt,
            since,
        ) {
            Ok(opened) => opened,
            Err(e) => {
                warn!(%peer, topic = %key.1, error = %e, "sync: cannot open a session");
                return false;
            }
        };
        debug!(%peer, topic = %key.1, ?scope, "sync: session started");
        self.send_sync(key, session, request);
        true
    }

    /// Like [`Driver::start_sync`], but if a session with `peer` on `topic` runs already,
    /// another one starts when it ends. True if a session started or was queued.
    pub(super) fn request_sync(&mut self, peer: PeerId, topic: Topic) -> bool {
        let key = (peer, topic);
        if self.sync.sessions.contains_key(&key) {
            self.sync.again.insert(key);
            return true;
        }
        self.start_sync(key.0, key.1, Scope::Full)
    }

    /// Starts the session queued behind the one that just ended, if any.
    fn after_session(&mut self, peer: PeerId, topic: Topic) {
        let key = (peer, topic);
        if self.sync.again.remove(&key) {
            self.start_sync(key.0, key.1, Scope::Full);
        }
    }

    /// One anti-entropy round: each subscribed topic with one random peer on it, over the
    /// recent envelopes, or over the whole window if that is due for the topic.
    pub(super) fn anti_entropy_tick(&mut self) {
        let topics: Vec<Topic> = self.subscribed.iter().cloned().collect();
        let mut rng = rand::thread_rng();
        let now = Instant::now();
        for topic in topics {
            let Some(peer) = self.topic_peers(&topic).choose(&mut rng).copied() else {
                continue;
            };
            let full_due =
                self.sync.last_full.get(&topic).is_none_or(|at| {
                    now.duration_since(*at) >= self.config.sync.full_sync_interval
                });
            let scope = if full_due { Scope::Full } else { Scope::Recent };
            if self.start_sync(peer, topic.clone(), scope) && full_due {
                self.sync.last_full.insert(topic, now);
            }
        }
    }

    pub(super) fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.serve_sync(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => self.on_sync_response(request_id, response),
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(session) = self.take_session(request_id) {
                    self.fail(session, SyncError::Transport(error.to_string()));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "sync: serving a request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn serve_sync(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) {
        let mut ctx = ServeContext {
            log: &mut self.log,
            validator: &*self.validator,
            responder: &self.sync.responder,
            config: &self.config.sync,
            subscribed: &self.subscribed,
            now_ms: now_ms(),
        };
        let topic = Topic::new(request.topic()).ok();
        let (response, effects) = serve(&mut ctx, request);
        for stored in effects.stored {
            self.emit(NetEvent::Received {
                topic: stored.topic,
                id: stored.id,
                envelope: stored.envelope,
                timestamp_ms: stored.timestamp_ms,
                from: peer,
                via: Via::Sync,
            });
        }
        if let Some(topic) = topic {
            for (id, reason) in effects.rejected {
                self.reject(topic.clone(), id, peer, Via::Sync, reason);
            }
        }
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response)
            .is_err()
        {
            debug!(%peer, "sync: requester went away before the response");
        }
    }

    fn on_sync_response(&mut self, request_id: OutboundRequestId, response: SyncResponse) {
        let Some(mut session) = self.take_session(request_id) else {
            return;
        };
        let refused = &self.sync.refused;
        let envelopes = match session.handle(response, &|id| refused.contains(id)) {
            Ok(envelopes) => envelopes,
            Err(e) => return self.fail(session, e),
        };
        let mut stored = 0;
        for envelope in envelopes {
            if self.admit_pulled(&session, envelope) {
                stored += 1;
            }
        }
        session.count_pulled(stored);
        match session.next(&self.log, &self.config.sync) {
            Ok(Next::Send(request)) => {
                let key = (session.peer(), session.topic().clone());
                self.send_sync(key, session, request);
            }
            Ok(Next::Done(summary)) => {
                debug!(peer = %session.peer(), topic = %session.topic(), ?summary, "sync: done");
                self.emit(NetEvent::SyncCompleted {
                    topic: session.topic().clone(),
                    peer: session.peer(),
                    pulled: summary.pulled,
                    pushed: summary.pushed,
                });
                self.after_session(session.peer(), session.topic().clone());
            }
            Err(e) => self.fail(session, e),
        }
    }

    /// Admits an envelope a peer served; true if newly stored (and delivered).
    fn admit_pulled(&mut self, session: &Outgoing, envelope: WireEnvelope) -> bool {
        let topic = session.topic();
        match admit(
            &mut self.log,
            &*self.validator,
            topic,
            &envelope.envelope,
            envelope.timestamp_ms,
            now_ms(),
        ) {
            Admission::Stored { id, timestamp_ms } => {
                self.emit(NetEvent::Received {
                    topic: topic.clone(),
                    id,
                    envelope: envelope.envelope,
                    timestamp_ms,
                    from: session.peer(),
                    via: Via::Sync,
                });
                true
            }
            Admission::Duplicate | Admission::Expired => false,
            Admission::Invalid(reason) => {
                debug!(peer = %session.peer(), %topic, reason, "sync: refused a served envelope");
                let id = EnvelopeId::of(&envelope.envelope);
                self.reject(topic.clone(), id, session.peer(), Via::Sync, reason);
                false
            }
            Admission::Failed(e) => {
                warn!(%topic, error = %e, "sync: cannot store a served envelope");
                false
            }
        }
    }

    /// Reports a refused envelope and remembers its id, so that sync does not fetch it again.
    pub(super) fn reject(
        &mut self,
        topic: Topic,
        id: EnvelopeId,
        from: PeerId,
        via: Via,
        reason: &'static str,
    ) {
        self.sync.remember_refused(id);
        self.emit(NetEvent::Rejected {
            topic,
            from,
            via,
            reason,
        });
    }

    fn send_sync(&mut self, key: (PeerId, Topic), session: Outgoing, request: SyncRequest) {
        let request_id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&key.0, request);
        self.sync.in_flight.insert(request_id, key.clone());
        self.sync.sessions.insert(key, session);
    }

    fn take_session(&mut self, request_id: OutboundRequestId) -> Option<Outgoing> {
        let key = self.sync.in_flight.remove(&request_id)?;
        self.sync.sessions.remove(&key)
    }

    fn fail(&mut self, session: Outgoing, error: SyncError) {
        debug!(peer = %session.peer(), topic = %session.topic(), %error, "sync: failed");
        self.emit(NetEvent::SyncFailed {
            topic: session.topic().clone(),
            peer: session.peer(),
            reason: error.to_string(),
        });
        self.after_session(session.peer(), session.topic().clone());
    }
}

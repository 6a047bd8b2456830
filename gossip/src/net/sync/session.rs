//! One sync session as initiator: reconcile, then fetch what I lack, then push what the peer
//! lacks. One request is in flight at a time; every step is checked, and a peer that breaks
//! the protocol ends the session with an error (the envelopes already admitted stay).
//!
//! The session never touches the network or the consumer: the node sends the requests it
//! returns, and admits the envelopes it hands back through the same gate as pubsub.

use std::collections::{HashSet, VecDeque};

use identity_tofu::kv::KvStore;
use libp2p::PeerId;

use super::wire::{Refusal, SyncRequest, SyncResponse, WireEnvelope};
use crate::envelope_id::EnvelopeId;
use crate::log::{Log, LogError};
use crate::net::config::{SYNC_OVERHEAD_BYTES, SyncConfig};
use crate::reconcile::{Initiator, Progress, ReconcileError, Session};
use crate::topic::Topic;

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The reconciliation failed (a malformed or hostile reply, or too many rounds).
    #[error("reconciliation: {0}")]
    Reconcile(#[from] ReconcileError),
    /// The local log failed.
    #[error("log: {0}")]
    Log(#[from] LogError),
    /// The peer refused a request.
    #[error("peer refused: {0}")]
    Refused(Refusal),
    /// The peer answered with something that does not fit the request.
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// The request failed in transport (timeout, closed connection, unsupported protocol).
    #[error("request failed: {0}")]
    Transport(String),
}

/// What a finished session did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncSummary {
    /// Envelopes newly stored from the peer.
    pub pulled: usize,
    /// Envelopes the peer said it newly stored from us.
    pub pushed: usize,
}

#[derive(Debug)]
enum State {
    /// A reconciliation request is in flight.
    Reconciling(Initiator),
    /// A fetch of these ids is in flight.
    Fetching(Vec<EnvelopeId>),
    /// A push is in flight.
    Pushing,
    /// Between requests, or finished.
    Idle,
}

/// An initiator's session with one peer on one topic.
#[derive(Debug)]
pub struct Outgoing {
    topic: Topic,
    peer: PeerId,
    state: State,
    /// The next reconciliation round, waiting for [`Outgoing::next`].
    reconcile_request: Option<SyncRequest>,
    to_fetch: VecDeque<EnvelopeId>,
    to_push: VecDeque<EnvelopeId>,
    summary: SyncSummary,
}

/// What to do after a response.
#[derive(Debug)]
pub enum Next {
    /// Send this request.
    Send(SyncRequest),
    /// The session is over.
    Done(SyncSummary),
}

impl Outgoing {
    /// Opens a session over my items of `topic` in the window since `since_ms`, with a fresh
    /// `salt`; returns it with its first request.
    pub fn open<S: KvStore>(
        topic: Topic,
        peer: PeerId,
        log: &Log<S>,
        config: &SyncConfig,
        salt: [u8; 16],
        since_ms: u64,
    ) -> Result<(Self, SyncRequest), SyncError> {
        let items = log.items_since(&topic, since_ms)?;
        let mut initiator = Initiator::new(
            items,
            Session::new(salt, since_ms),
            config.reconcile.clone(),
        )?;
        let message = initiator.start()?;
        let request = SyncRequest::Reconcile {
            topic: topic.as_str().to_owned(),
            message,
        };
        let session = Self {
            topic,
            peer,
            state: State::Reconciling(initiator),
            reconcile_request: None,
            to_fetch: VecDeque::new(),
            to_push: VecDeque::new(),
            summary: SyncSummary::default(),
        };
        Ok((session, request))
    }

    /// The topic.
    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// The peer.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// Handles the response to the request in flight. Returns the envelopes the peer sent,
    /// each checked to be one that was asked for: the caller admits them through the gate
    /// and reports how many were stored with [`Outgoing::count_pulled`], then asks for
    /// [`Outgoing::next`]. `skip` names ids never to fetch (envelopes refused before).
    pub fn handle(
        &mut self,
        response: SyncResponse,
        skip: &dyn Fn(&EnvelopeId) -> bool,
    ) -> Result<Vec<WireEnvelope>, SyncError> {
        let state = std::mem::replace(&mut self.state, State::Idle);
        match (state, response) {
            (_, SyncResponse::Refused(refusal)) => Err(SyncError::Refused(refusal)),
            (State::Reconciling(mut initiator), SyncResponse::Reconcile { message }) => {
                match initiator.handle_reply(&message)? {
                    Progress::Continue(next) => {
                        self.state = State::Reconciling(initiator);
                        self.pending_reconcile(next);
                    }
                    Progress::Done(outcome) => {
                        self.to_fetch =
                            outcome.request.into_iter().filter(|id| !skip(id)).collect();
                        self.to_push = outcome.send.into_iter().collect();
                    }
                }
                Ok(Vec::new())
            }
            (State::Fetching(asked), SyncResponse::Envelopes { envelopes }) => {
                self.check_fetched(asked, &envelopes)?;
                Ok(envelopes)
            }
            (State::Pushing, SyncResponse::Pushed { stored }) => {
                self.summary.pushed += stored as usize;
                Ok(Vec::new())
            }
            _ => Err(SyncError::Protocol("response does not match the request")),
        }
    }

    /// Adds envelopes newly stored from the last fetch to the summary.
    pub fn count_pulled(&mut self, stored: usize) {
        self.summary.pulled += stored;
    }

    /// The next request, or the end of the session.
    pub fn next<S: KvStore>(
        &mut self,
        log: &Log<S>,
        config: &SyncConfig,
    ) -> Result<Next, SyncError> {
        if let Some(request) = self.reconcile_request.take() {
            return Ok(Next::Send(request));
        }
        if !self.to_fetch.is_empty() {
            let take = self.to_fetch.len().min(config.max_fetch_ids);
            let ids: Vec<EnvelopeId> = self.to_fetch.drain(..take).collect();
            self.state = State::Fetching(ids.clone());
            return Ok(Next::Send(SyncRequest::Fetch {
                topic: self.topic.as_str().to_owned(),
                ids,
            }));
        }
        let budget = config.max_message_bytes - SYNC_OVERHEAD_BYTES;
        let mut envelopes = Vec::new();
        let mut size = 0;
        while let Some(id) = self.to_push.front() {
            // Evicted since the reconciliation: nothing to send.
            let Some(entry) = log.get(&self.topic, id)? else {
                self.to_push.pop_front();
                continue;
            };
            let envelope = WireEnvelope {
                timestamp_ms: entry.timestamp_ms,
                envelope: entry.envelope,
            };
            if !envelopes.is_empty() && size + envelope.encoded_len_bound() > budget {
                break;
            }
            size += envelope.encoded_len_bound();
            envelopes.push(envelope);
            self.to_push.pop_front();
        }
        if !envelopes.is_empty() {
            self.state = State::Pushing;
            return Ok(Next::Send(SyncRequest::Push {
                topic: self.topic.as_str().to_owned(),
                envelopes,
            }));
        }
        Ok(Next::Done(self.summary))
    }

    fn pending_reconcile(&mut self, message: Vec<u8>) {
        self.reconcile_request = Some(SyncRequest::Reconcile {
            topic: self.topic.as_str().to_owned(),
            message,
        });
    }

    /// Every envelope returned was asked for, once; ids asked for and not returned are
    /// asked again if the reply made progress (it was full), and dropped if it did not
    /// (the peer no longer holds them).
    fn check_fetched(
        &mut self,
        asked: Vec<EnvelopeId>,
        envelopes: &[WireEnvelope],
    ) -> Result<(), SyncError> {
        if envelopes.len() > asked.len() {
            return Err(SyncError::Protocol("more envelopes than asked for"));
        }
        let mut outstanding: HashSet<EnvelopeId> = asked.iter().copied().collect();
        for envelope in envelopes {
            if !outstanding.remove(&EnvelopeId::of(&envelope.envelope)) {
                return Err(SyncError::Protocol("an envelope that was not asked for"));
            }
        }
        if !envelopes.is_empty() {
            let rest = asked.into_iter().filter(|id| outstanding.contains(id));
            for id in rest.rev() {
                self.to_fetch.push_front(id);
            }
        }
        Ok(())
    }
}

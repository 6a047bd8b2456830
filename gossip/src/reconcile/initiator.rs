//! The side that opens a session, drives it round by round, and learns the outcome.

use tracing::{debug, trace};

use super::bound::Bound;
use super::config::ReconcileConfig;
use super::error::ReconcileError;
use super::exchange::{Resolved, answer, expand, resolve};
use super::fingerprint::fingerprint;
use super::item::{Item, SortedItems};
use super::message::{Message, Mode, Range, Sender};
use super::session::Session;
use super::writer::Writer;
use crate::envelope_id::EnvelopeId;

/// What a session found, from the initiator's side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Ids I hold that the responder lacks: send these envelopes.
    pub send: Vec<EnvelopeId>,
    /// Ids the responder holds that I lack: request these envelopes.
    pub request: Vec<EnvelopeId>,
    /// Replies handled (request-response round trips).
    pub rounds: u32,
    /// Bytes of all requests sent.
    pub bytes_sent: u64,
    /// Bytes of all replies received.
    pub bytes_received: u64,
}

impl Outcome {
    /// Bytes exchanged both ways.
    pub fn bytes_total(&self) -> u64 {
        self.bytes_sent + self.bytes_received
    }
}

/// The next step of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Send these bytes to the responder and hand its reply to
    /// [`Initiator::handle_reply`].
    Continue(Vec<u8>),
    /// Nothing is left to compare.
    Done(Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    AwaitingReply,
    Finished,
}

/// The initiator of a reconciliation session.
///
/// ```text
/// let mut session = Initiator::new(items, Session::new(salt, since_ms), config)?;
/// let mut request = session.start()?;
/// loop {
///     let reply = /* send `request`, receive the reply */;
///     match session.handle_reply(&reply)? {
///         Progress::Continue(next) => request = next,
///         Progress::Done(outcome) => break outcome, // transfer outcome.send / outcome.request
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Initiator {
    config: ReconcileConfig,
    session: Session,
    /// My items in the session's window; they do not change during the session.
    items: Vec<Item>,
    state: State,
    resolved: Resolved,
    rounds: u32,
    bytes_sent: u64,
    bytes_received: u64,
}

impl Initiator {
    /// A session over my `items` with a timestamp at or after `session.since_ms`.
    pub fn new(
        items: SortedItems,
        session: Session,
        config: ReconcileConfig,
    ) -> Result<Self, ReconcileError> {
        config.validate()?;
        let skip = items.len() - items.since(session.since_ms).len();
        let mut items = items.into_vec();
        items.drain(..skip);
        Ok(Self {
            config,
            session,
            items,
            state: State::Ready,
            resolved: Resolved::default(),
            rounds: 0,
            bytes_sent: 0,
            bytes_received: 0,
        })
    }

    /// The session parameters.
    pub fn session(&self) -> Session {
        self.session
    }

    /// The opening request: my whole window as one fingerprint, or as an id list when I
    /// hold so few items that listing them is as cheap as a round.
    pub fn start(&mut self) -> Result<Vec<u8>, ReconcileError> {
        if self.state != State::Ready {
            return Err(ReconcileError::UnexpectedReply);
        }
        let ranges = if self.items.len() <= self.config.id_list_threshold {
            expand(&self.items, Bound::End, &self.session.salt, &self.config)
        } else {
            vec![Range {
                upper: Bound::End,
                mode: Mode::Fingerprint {
                    count: self.items.len() as u64,
                    fingerprint: fingerprint(&self.session.salt, &self.items),
                },
            }]
        };
        let mut writer = Writer::new(self.session, &self.config);
        if !writer.try_extend(ranges) {
            return Err(ReconcileError::Encode(
                "opening request does not fit".into(),
            ));
        }
        let bytes = writer.finish()?;
        self.bytes_sent += bytes.len() as u64;
        self.state = State::AwaitingReply;
        debug!(
            items = self.items.len(),
            bytes = bytes.len(),
            "reconcile: opening"
        );
        Ok(bytes)
    }

    /// Handles the responder's reply: either the next request or the outcome. After an
    /// error the session is over; further replies are refused.
    pub fn handle_reply(&mut self, reply: &[u8]) -> Result<Progress, ReconcileError> {
        if self.state != State::AwaitingReply {
            return Err(ReconcileError::UnexpectedReply);
        }
        let result = self.step(reply);
        if !matches!(result, Ok(Progress::Continue(_))) {
            self.state = State::Finished;
        }
        result
    }

    fn step(&mut self, reply: &[u8]) -> Result<Progress, ReconcileError> {
        self.rounds += 1;
        self.bytes_received += reply.len() as u64;
        let message = Message::decode(reply, Sender::Responder, &self.config)?;
        if message.session != self.session {
            return Err(ReconcileError::SessionMismatch);
        }
        resolve(&message, &self.items, &mut self.resolved)?;
        let writer = answer(&message, Sender::Responder, &self.items, &self.config);
        if writer.is_all_skip() {
            let outcome = self.outcome();
            debug!(
                rounds = outcome.rounds,
                send = outcome.send.len(),
                request = outcome.request.len(),
                bytes = outcome.bytes_total(),
                "reconcile: done"
            );
            return Ok(Progress::Done(outcome));
        }
        if self.rounds >= self.config.max_rounds {
            return Err(ReconcileError::TooManyRounds(self.rounds));
        }
        let bytes = writer.finish()?;
        self.bytes_sent += bytes.len() as u64;
        trace!(
            round = self.rounds,
            bytes = bytes.len(),
            "reconcile: next request"
        );
        Ok(Progress::Continue(bytes))
    }

    fn outcome(&mut self) -> Outcome {
        let mut resolved = std::mem::take(&mut self.resolved);
        // An envelope whose timestamp differs between the peers sits in different ranges on
        // each side and may look missing on both; never request what I already hold.
        if !resolved.request.is_empty() {
            for item in &self.items {
                resolved.request.remove(&item.id);
            }
        }
        Outcome {
            send: resolved.send.into_iter().collect(),
            request: resolved.request.into_iter().collect(),
            rounds: self.rounds,
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
        }
    }
}

//! The side that answers: stateless between messages, so serving many peers costs no
//! per-session memory.

use tracing::trace;

use super::config::ReconcileConfig;
use super::error::ReconcileError;
use super::exchange::answer;
use super::item::SortedItems;
use super::message::{Message, Sender};
use super::session::Session;

/// A decoded, checked request.
#[derive(Debug, Clone)]
pub struct Request {
    message: Message,
}

impl Request {
    /// The session it belongs to.
    pub fn session(&self) -> Session {
        self.message.session
    }

    /// The window start: load my items from here before replying.
    pub fn since_ms(&self) -> u64 {
        self.message.session.since_ms
    }
}

/// Answers reconciliation requests.
///
/// Every request carries the session's salt and window, so the responder keeps nothing
/// between messages; bounding the requests a peer may make per session is the network
/// layer's job (the initiator bounds rounds on its side).
///
/// ```text
/// let request = responder.decode_request(&bytes)?;
/// let items = log.items_since(&topic, request.since_ms())?;
/// let reply = responder.reply(&request, &items)?;
/// ```
#[derive(Debug, Clone)]
pub struct Responder {
    config: ReconcileConfig,
}

impl Responder {
    /// A responder with these limits.
    pub fn new(config: ReconcileConfig) -> Result<Self, ReconcileError> {
        config.validate()?;
        Ok(Self { config })
    }

    /// Decodes and checks a request, refusing oversized input before decoding.
    pub fn decode_request(&self, bytes: &[u8]) -> Result<Request, ReconcileError> {
        Ok(Request {
            message: Message::decode(bytes, Sender::Initiator, &self.config)?,
        })
    }

    /// The reply to `request`, given my items (those before the window are ignored).
    pub fn reply(&self, request: &Request, items: &SortedItems) -> Result<Vec<u8>, ReconcileError> {
        let own = items.since(request.since_ms());
        let bytes = answer(&request.message, Sender::Initiator, own, &self.config).finish()?;
        trace!(items = own.len(), bytes = bytes.len(), "reconcile: reply");
        Ok(bytes)
    }

    /// Decodes `request` and replies to it in one step, for callers that hold their items.
    pub fn respond(&self, request: &[u8], items: &SortedItems) -> Result<Vec<u8>, ReconcileError> {
        let request = self.decode_request(request)?;
        self.reply(&request, items)
    }
}

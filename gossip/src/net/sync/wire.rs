//! The messages of `/chorus/sync/1`.
//!
//! A session is a series of independent request-response exchanges, all initiated by one
//! side: reconciliation rounds (the opaque messages of [`crate::reconcile`]), then fetches of
//! what the initiator lacks and pushes of what the responder lacks. The responder keeps no
//! state between them, so serving sync costs no memory per peer.

use serde::{Deserialize, Serialize};

use crate::envelope_id::EnvelopeId;

/// The protocol name, negotiated by multistream-select. A new wire format gets a new name.
pub const SYNC_PROTOCOL: &str = "/chorus/sync/1";

/// An envelope with the timestamp its holder files it under, so that both peers file it
/// under the same one (which keeps later reconciliations cheap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEnvelope {
    /// The holder's timestamp for it, clamped by the receiver to its clock.
    pub timestamp_ms: u64,
    /// The envelope.
    pub envelope: Vec<u8>,
}

impl WireEnvelope {
    /// An upper bound of its encoded size.
    pub(crate) fn encoded_len_bound(&self) -> usize {
        9 + 9 + self.envelope.len()
    }
}

/// From the initiator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// A reconciliation round for `topic`.
    Reconcile {
        /// The topic name.
        topic: String,
        /// The reconciliation message.
        message: Vec<u8>,
    },
    /// Send me these envelopes of `topic`.
    Fetch {
        /// The topic name.
        topic: String,
        /// The ids, at most the responder's fetch limit.
        ids: Vec<EnvelopeId>,
    },
    /// Here are envelopes of `topic` you lack.
    Push {
        /// The topic name.
        topic: String,
        /// The envelopes.
        envelopes: Vec<WireEnvelope>,
    },
}

impl SyncRequest {
    /// The topic name the request is about.
    pub fn topic(&self) -> &str {
        match self {
            SyncRequest::Reconcile { topic, .. }
            | SyncRequest::Fetch { topic, .. }
            | SyncRequest::Push { topic, .. } => topic,
        }
    }
}

/// From the responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The reply to a reconciliation round.
    Reconcile {
        /// The reconciliation message.
        message: Vec<u8>,
    },
    /// Requested envelopes that I hold, in the order asked, as many as fit in one message;
    /// ids I do not hold are left out.
    Envelopes {
        /// The envelopes.
        envelopes: Vec<WireEnvelope>,
    },
    /// How many pushed envelopes I stored (duplicates and refused ones are not counted).
    Pushed {
        /// The count.
        stored: u32,
    },
    /// I will not answer this.
    Refused(Refusal),
}

/// Why a responder refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// I am not subscribed to that topic (I only serve and accept topics I am on).
    #[error("not subscribed to the topic")]
    NotSubscribed,
    /// The request breaks the protocol (bad topic name, bad reconciliation message, too
    /// many ids).
    #[error("bad request")]
    BadRequest,
    /// I cannot answer right now (my store failed).
    #[error("unavailable")]
    Unavailable,
}

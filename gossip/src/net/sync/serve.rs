//! The responder side of `/chorus/sync/1`: answers each request on its own, keeping nothing
//! between requests. Only topics this node is subscribed to are served or accepted, so a
//! peer can neither probe what else the log holds nor fill it with topics nobody here reads.

use std::collections::BTreeSet;

use identity_tofu::kv::KvStore;
use tracing::{debug, warn};

use super::wire::{Refusal, SyncRequest, SyncResponse, WireEnvelope};
use crate::envelope_id::EnvelopeId;
use crate::log::Log;
use crate::net::admit::{Admission, admit};
use crate::net::config::{SYNC_OVERHEAD_BYTES, SyncConfig};
use crate::net::validator::Validator;
use crate::reconcile::Responder;
use crate::topic::Topic;

/// What serving needs from the node.
pub(crate) struct ServeContext<'a, S> {
    pub log: &'a mut Log<S>,
    pub validator: &'a dyn Validator,
    pub responder: &'a Responder,
    pub config: &'a SyncConfig,
    pub subscribed: &'a BTreeSet<Topic>,
    pub now_ms: u64,
}

/// What serving one request did besides answering it.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Pushed envelopes newly stored: the node delivers them to the consumer.
    pub stored: Vec<Stored>,
    /// Why each refused pushed envelope was refused.
    pub rejected: Vec<(EnvelopeId, &'static str)>,
}

/// An envelope a push newly stored.
#[derive(Debug)]
pub(crate) struct Stored {
    pub topic: Topic,
    pub id: EnvelopeId,
    pub timestamp_ms: u64,
    pub envelope: Vec<u8>,
}

/// The answer to `request`, and what it changed.
pub(crate) fn serve<S: KvStore>(
    ctx: &mut ServeContext<'_, S>,
    request: SyncRequest,
) -> (SyncResponse, Effects) {
    let Ok(topic) = Topic::new(request.topic()) else {
        return (
            SyncResponse::Refused(Refusal::BadRequest),
            Effects::default(),
        );
    };
    if !ctx.subscribed.contains(&topic) {
        return (
            SyncResponse::Refused(Refusal::NotSubscribed),
            Effects::default(),
        );
    }
    match request {
        SyncRequest::Reconcile { message, .. } => {
            (reconcile(ctx, &topic, &message), Effects::default())
        }
        SyncRequest::Fetch { ids, .. } => (fetch(ctx, &topic, &ids), Effects::default()),
        SyncRequest::Push { envelopes, .. } => push(ctx, topic, envelopes),
    }
}

fn reconcile<S: KvStore>(ctx: &ServeContext<'_, S>, topic: &Topic, message: &[u8]) -> SyncResponse {
    let request = match ctx.responder.decode_request(message) {
        Ok(request) => request,
        Err(e) => {
            debug!(%topic, error = %e, "sync: bad reconciliation request");
            return SyncResponse::Refused(Refusal::BadRequest);
        }
    };
    let items = match ctx.log.items_since(topic, request.since_ms()) {
        Ok(items) => items,
        Err(e) => {
            warn!(%topic, error = %e, "sync: cannot read the log");
            return SyncResponse::Refused(Refusal::Unavailable);
        }
    };
    match ctx.responder.reply(&request, &items) {
        Ok(message) => SyncResponse::Reconcile { message },
        Err(e) => {
            debug!(%topic, error = %e, "sync: cannot reply to reconciliation");
            SyncResponse::Refused(Refusal::BadRequest)
        }
    }
}

/// The asked envelopes I hold, in order, as many as fit one message.
fn fetch<S: KvStore>(ctx: &ServeContext<'_, S>, topic: &Topic, ids: &[EnvelopeId]) -> SyncResponse {
    if ids.len() > ctx.config.max_fetch_ids {
        return SyncResponse::Refused(Refusal::BadRequest);
    }
    let budget = ctx.config.max_message_bytes - SYNC_OVERHEAD_BYTES;
    let mut envelopes = Vec::new();
    let mut size = 0;
    for id in ids {
        let entry = match ctx.log.get(topic, id) {
            Ok(Some(entry)) => entry,
            Ok(None) => continue,
            Err(e) => {
                warn!(%topic, error = %e, "sync: cannot read the log");
                return SyncResponse::Refused(Refusal::Unavailable);
            }
        };
        let envelope = WireEnvelope {
            timestamp_ms: entry.timestamp_ms,
            envelope: entry.envelope,
        };
        if size + envelope.encoded_len_bound() > budget {
            break;
        }
        size += envelope.encoded_len_bound();
        envelopes.push(envelope);
    }
    SyncResponse::Envelopes { envelopes }
}

/// Admits pushed envelopes through the same gate as pubsub.
fn push<S: KvStore>(
    ctx: &mut ServeContext<'_, S>,
    topic: Topic,
    envelopes: Vec<WireEnvelope>,
) -> (SyncResponse, Effects) {
    let mut effects = Effects::default();
    for WireEnvelope {
        timestamp_ms,
        envelope,
    } in envelopes
    {
        match admit(
            ctx.log,
            ctx.validator,
            &topic,
            &envelope,
            timestamp_ms,
            ctx.now_ms,
        ) {
            Admission::Stored { id, timestamp_ms } => effects.stored.push(Stored {
                topic: topic.clone(),
                id,
                timestamp_ms,
                envelope,
            }),
            Admission::Duplicate | Admission::Expired => {}
            Admission::Invalid(reason) => {
                debug!(%topic, reason, "sync: refused a pushed envelope");
                effects.rejected.push((EnvelopeId::of(&envelope), reason));
            }
            Admission::Failed(e) => {
                warn!(%topic, error = %e, "sync: cannot store a pushed envelope");
                return (SyncResponse::Refused(Refusal::Unavailable), effects);
            }
        }
    }
    let count = u32::try_from(effects.stored.len()).unwrap_or(u32::MAX);
    (SyncResponse::Pushed { stored: count }, effects)
}

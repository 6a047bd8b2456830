//! Sends, batched: consecutive send calls of a round go out together.
//!
//! Each `POST /v1/groups/{g}/messages` is held until the core handles anything else (another
//! call, a network event, a timer) or the round ends; then the held sends of each group go to
//! the engine in one [`Engine::send_many`](ds_p2p::engine::Engine::send_many), which encrypts
//! them as one bundle. Under load (many sends in flight) a group pays one MLS encryption and
//! signature, one envelope, one log append and one decryption per member for a whole round of
//! messages instead of one each. A lone send is a plain message, as before. The order of
//! effects is unchanged: anything else the core handles first sends what is held.

use ds_p2p::wire::GroupRef;
use tokio::sync::oneshot;

use super::{Core, json};
use crate::api::views::MessageView;
use crate::api::{ApiError, ApiResult};
use crate::store::StoredMessage;

/// A send call waiting for its group's batch.
pub(super) struct PendingSend {
    group: GroupRef,
    text: String,
    reply: oneshot::Sender<ApiResult>,
}

impl Core {
    /// Holds a send call for the batch of its group (answered when the batch goes out).
    pub(super) fn queue_send(
        &mut self,
        group: &str,
        text: String,
        reply: oneshot::Sender<ApiResult>,
    ) {
        let group = match self.resolve_group(group) {
            Ok(group) => group,
            Err(e) => return self.answer(reply, Err(e)),
        };
        if text.len() > self.limits.max_body_bytes {
            let e = ApiError::conflict(format!(
                "message of {} bytes exceeds the limit of {}",
                text.len(),
                self.limits.max_body_bytes
            ));
            return self.answer(reply, Err(e));
        }
        self.pending_sends.push(PendingSend { group, text, reply });
    }

    /// Sends every held send call, one batch per group, and answers them.
    pub(super) async fn flush_sends(&mut self, now: u64) {
        let mut held = std::mem::take(&mut self.pending_sends);
        while !held.is_empty() {
            let group = held[0].group;
            let (batch, rest): (Vec<PendingSend>, Vec<PendingSend>) =
                held.into_iter().partition(|p| p.group == group);
            held = rest;
            self.send_batch(now, group, batch).await;
        }
    }

    async fn send_batch(&mut self, now: u64, group: GroupRef, batch: Vec<PendingSend>) {
        // The engine queues sends while the group settles (the same test it makes).
        let queued = self
            .engine
            .consistency_status(group, now)
            .is_some_and(|s| s.sends_paused);
        let bodies = batch.iter().map(|p| p.text.clone().into_bytes()).collect();
        let sent = self.engine.send_many(now, group, bodies);
        self.drain(now).await;
        let ids = match sent {
            Ok(ids) => ids,
            Err(e) => {
                for p in batch {
                    self.answer(p.reply, Err(ApiError::conflict(e.to_string())));
                }
                return;
            }
        };
        for (p, id) in batch.into_iter().zip(ids) {
            self.metrics.messages_sent.inc();
            let stored = StoredMessage {
                id: hex::encode(id.0),
                sender_handle: self.me.handle().to_string(),
                sender_fingerprint: self.me.fingerprint().to_hex(),
                sent_at_ms: now,
                received_at_ms: now,
                text: p.text,
            };
            let result = self
                .stage_message(group, stored)
                .map(|view| json(&MessageView { queued, ..view }))
                .map_err(ApiError::internal);
            // The engine kept it for the history in the step that sent it: confirmed once
            // the round has written it.
            self.delivered.push((group, id));
            self.answer(p.reply, result);
        }
    }
}

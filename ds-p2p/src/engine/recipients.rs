//! Who reads an own message sent again: [`ResendPolicy`] applied to the re-sends after a
//! branch switch, after a heal and on a member's ask.
//!
//! A re-send goes out on the group's active state of the moment. Under
//! [`ResendPolicy::MembersAtSend`] a message goes out again only if every member of that state
//! was in the group when the message was sent on its epoch (the rosters `redelivery_asks`
//! notes at every send); the rest are withheld and reported in one
//! [`Event::ResendWithheld`]. An epoch whose roster this member no longer has (older than its
//! last 64, or from before a restart) cannot be shown safe, so its messages are withheld too.

use super::api::{Event, ResendPolicy};
use super::group_state::members;
use super::{Engine, EngineError};
use crate::wire::{GroupRef, MessageId};

impl Engine {
    /// Of `messages`, those that may be sent again on `group`'s active state under the
    /// configured policy; `sent` gives a message's id and the epoch it was sent on.
    pub(crate) fn resendable<T>(
        &mut self,
        group: GroupRef,
        messages: Vec<T>,
        sent: impl Fn(&T) -> (MessageId, u64),
    ) -> Result<Vec<T>, EngineError> {
        if self.config.resend_policy == ResendPolicy::Everyone || messages.is_empty() {
            return Ok(messages);
        }
        let rt = self.runtime(group)?;
        let now: Vec<Vec<u8>> = members(&rt.group);
        let (allowed, withheld): (Vec<T>, Vec<T>) = messages
            .into_iter()
            .partition(|m| rt.heal.asks.all_were_members(sent(m).1, &now));
        if !withheld.is_empty() {
            let ids = withheld.iter().map(|m| sent(m).0).collect();
            tracing::info!(
                "{} own messages not sent again: the group has members that were not in it when they were sent",
                withheld.len()
            );
            self.emit(Event::ResendWithheld { group, ids });
        }
        Ok(allowed)
    }
}

//! When a member on the losing side of a split rejoins (see `heal`, step 3).
//!
//! Every loser learns that it lost from the same offers, at about the same moment. Rejoining
//! at once made all of them commit at the same epoch of the winning branch: the tie-breaker
//! keeps one external commit, every other loser sees its commit lose and tries again, one
//! more wins, and so on — O(losers²) commits, each with a re-send of the loser's messages. In
//! `chorus-sim` (`large-group-split.toml`: 4 groups of 50, a 234 s split) each loser rejoined
//! about 7 times and a group was still on 25 states a minute after the heal.
//!
//! So the losers take turns. The clock is cut into slots of [`REJOIN_SLOT_MS`], dealt round
//! the members of the loser's own (losing) state in the order of their signature keys, which
//! every member of that state sees alike; a loser waits for its next slot and then rejoins
//! with the newest offer it has (clocks skewed by less than half a slot keep turns apart). A
//! loser woken more than half a slot late (a busy node) waits for its next turn instead. A member that has just
//! rejoined publishes its own offer (its GroupInfo now includes its rejoin), so the next in
//! turn rejoins on top of it rather than racing it. A loser whose rejoin lost anyway (two
//! turns overlapped, or a turn's holder is away) tries again after a random wait of up to
//! [`RETRY_SLOTS`] slots. The turn is kept in memory only: after a restart the member finds
//! the split again from the next offer or beacon.

use rand::RngCore as _;

use super::heal::{HealVerdict, heal_verdict};
use super::{Engine, EngineError};
use crate::wire::{GroupRef, HealOffer};

/// One turn of the losers' rejoins: enough for a rejoin to reach the group and the rejoiner's
/// fresh offer to reach the next loser (a few round trips).
pub const REJOIN_SLOT_MS: u64 = 1_000;
/// A rejoin retried after a lost race waits a random time of up to this many slots.
pub const RETRY_SLOTS: u64 = 4;

/// A rejoin waiting for its turn.
#[derive(Debug, Clone)]
pub(crate) struct ScheduledRejoin {
    pub due_ms: u64,
    /// (rank, members) of a turn on the clock's slots; `None` for a retry's random wait.
    pub turn: Option<(u64, u64)>,
    /// The newest offer of the winning side seen so far.
    pub offer: HealOffer,
}

/// The start of the next turn, at or after `now_ms`, of the member ranked `rank` among
/// `members`. Turns are slots of the clock itself — slot k (from `k × REJOIN_SLOT_MS`) belongs
/// to rank `k mod members` — so members that learn of the split at different moments still
/// keep out of each other's turns (a wait counted from the moment each learned of it would
/// not: two losers a second apart in rank and in learning collide).
fn turn_at(now_ms: u64, rank: u64, members: u64) -> u64 {
    let members = members.max(1);
    let first = now_ms.div_ceil(REJOIN_SLOT_MS);
    let ahead = (rank % members + members - first % members) % members;
    (first + ahead).saturating_mul(REJOIN_SLOT_MS)
}

impl Engine {
    /// A winning side's `offer` says this member lost: rejoin at its turn (see the module
    /// docs), with the newest such offer seen by then.
    pub(crate) fn schedule_rejoin(
        &mut self,
        now_ms: u64,
        group: GroupRef,
        offer: HealOffer,
    ) -> Result<(), EngineError> {
        let window = self.config.window_ms;
        let jitter = self.rng.next_u64();
        let own_key = self.signer.public().to_vec();
        // Only an offer the rejoin will take: signed by a member of this side (see `rejoin`).
        // A member added on the winning side during the split signs offers too, and the
        // newest offer is often its.
        self.check_signed_on_this_side(group, &offer.group_info)?;
        let rt = self.runtime(group)?;
        if let Some(waiting) = &mut rt.heal.scheduled_rejoin {
            if offer.epoch > waiting.offer.epoch {
                waiting.offer = offer;
            }
            return Ok(());
        }
        let retry = rt
            .heal
            .last_rejoin
            .is_some_and(|(_, at)| now_ms < at.saturating_add(window));
        let (due_ms, turn) = if retry {
            (
                now_ms.saturating_add(jitter % (RETRY_SLOTS * REJOIN_SLOT_MS)),
                None,
            )
        } else {
            let mut keys: Vec<Vec<u8>> = rt.group.members().map(|m| m.signature_key).collect();
            keys.sort();
            let rank = keys.iter().position(|k| *k == own_key).unwrap_or(0) as u64;
            let members = keys.len() as u64;
            (turn_at(now_ms, rank, members), Some((rank, members)))
        };
        rt.heal.scheduled_rejoin = Some(ScheduledRejoin {
            due_ms,
            turn,
            offer,
        });
        if due_ms <= now_ms {
            return self.rejoin_if_due(now_ms, group);
        }
        Ok(())
    }

    /// Rejoins `group` if this member's turn has come and its newest offer still wins over
    /// what it holds now.
    pub(crate) fn rejoin_if_due(
        &mut self,
        now_ms: u64,
        group: GroupRef,
    ) -> Result<(), EngineError> {
        let rt = self.runtime(group)?;
        if rt
            .heal
            .scheduled_rejoin
            .as_ref()
            .is_none_or(|s| s.due_ms > now_ms)
        {
            return Ok(());
        }
        let Some(ScheduledRejoin {
            due_ms,
            turn,
            offer,
        }) = rt.heal.scheduled_rejoin.take()
        else {
            return Ok(());
        };
        if let Some((rank, members)) = turn
            && now_ms >= due_ms.saturating_add(REJOIN_SLOT_MS / 2)
        {
            // Woken too late (a busy node): the turn is over and another's has begun. Wait
            // for the next one rather than race it.
            rt.heal.scheduled_rejoin = Some(ScheduledRejoin {
                due_ms: turn_at(now_ms, rank, members),
                turn,
                offer,
            });
            return Ok(());
        }
        let HealVerdict::Decided(decision) = heal_verdict(&rt.record.log, &offer.log) else {
            return Ok(()); // rejoined or re-added meanwhile
        };
        let held = rt
            .record
            .tree
            .states()
            .any(|s| s.epoch <= decision.fork_epoch);
        if !decision.they_win || held {
            return Ok(());
        }
        self.rejoin(now_ms, group, offer, decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_slots_of_the_clock_dealt_round_by_rank() {
        let slot = REJOIN_SLOT_MS;
        // Five members: slot k belongs to rank k mod 5.
        assert_eq!(turn_at(0, 0, 5), 0);
        assert_eq!(turn_at(1, 0, 5), 5 * slot);
        assert_eq!(turn_at(7 * slot, 2, 5), 7 * slot);
        assert_eq!(turn_at(7 * slot + 1, 2, 5), 12 * slot);
        assert_eq!(turn_at(7 * slot + 1, 3, 5), 8 * slot);
        // Whenever two members start waiting, their turns never share a slot.
        for a_start in [0, 1_234, 9 * slot] {
            for b_start in [0, 777, 3 * slot + 5] {
                assert_ne!(
                    turn_at(a_start, 1, 5) / slot % 5,
                    turn_at(b_start, 2, 5) / slot % 5
                );
            }
        }
    }
}

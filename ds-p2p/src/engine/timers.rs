//! Time-driven work: pruning states past the window (forward secrecy) and beacons.

use super::Engine;
use super::api::Event;
use crate::storage::BranchId;
use crate::wire::{Beacon, EnvelopeKind, GroupRef, SignedBeacon};

/// Delivered message ids always remembered per group, however old (dedup of late re-sends).
const MIN_SEEN_KEPT: usize = 1024;

/// How many (epoch, commit ref) entries a beacon carries.
pub(crate) const BEACON_LOG_ENTRIES: usize = 8;

impl Engine {
    /// When the engine next needs [`handle_timeout`](Self::handle_timeout), if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        let groups = self
            .groups
            .values()
            .flat_map(|rt| {
                let expiry = rt
                    .record
                    .tree
                    .next_expiry(self.config.window_ms, rt.record.active);
                let leave = rt.record.pending_leaves.iter().map(|p| p.due_ms).min();
                let reissue = rt.record.reissues.iter().map(|r| r.due_ms).min();
                let rejoin = rt.heal.scheduled_rejoin.as_ref().map(|r| r.due_ms);
                let ask = rt.heal.asks.next_due();
                [
                    expiry,
                    Some(rt.record.next_beacon_ms),
                    leave,
                    reissue,
                    rejoin,
                    ask,
                ]
            })
            .flatten()
            .min();
        groups
            .into_iter()
            .chain(self.retired_purge_due)
            .chain(self.consistency_due())
            .min()
    }

    /// Does what is due at `now_ms`: prunes expired states, rejoins at this member's turn
    /// after a split, publishes beacons.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if self.retired_purge_due.is_some_and(|due| due <= now_ms) {
            match self.provider.mls_storage().purge_retired_key_packages() {
                Ok(_) => self.retired_purge_due = None,
                Err(e) => self.emit(Event::Rejected {
                    group: None,
                    reason: format!("deleting used KeyPackages failed: {e}"),
                }),
            }
        }
        let groups: Vec<GroupRef> = self.groups.keys().copied().collect();
        for group in groups {
            if let Err(e) = self.consistency_timeout(now_ms, group) {
                self.emit(Event::Rejected {
                    group: Some(group),
                    reason: format!("ending a settle failed: {e}"),
                });
            }
            if let Err(e) = self.prune_expired(now_ms, group) {
                self.emit(Event::Rejected {
                    group: Some(group),
                    reason: format!("pruning failed: {e}"),
                });
            }
            if let Err(e) = self.settle_leaves(now_ms, group) {
                self.emit(Event::Rejected {
                    group: Some(group),
                    reason: format!("committing a leave failed: {e}"),
                });
            }
            if let Err(e) = self.reissue_due(now_ms, group) {
                self.emit(Event::Rejected {
                    group: Some(group),
                    reason: format!("re-issuing a lost change failed: {e}"),
                });
            }
            if let Err(e) = self.rejoin_if_due(now_ms, group) {
                self.emit(Event::Rejected {
                    group: Some(group),
                    reason: format!("rejoining after a split failed: {e}"),
                });
            }
            if let Err(e) = self.ask_if_due(now_ms, group) {
                self.emit(Event::Rejected {
                    group: Some(group),
                    reason: format!("asking for unreadable messages failed: {e}"),
                });
            }
            if let Err(e) = self.beacon_if_due(now_ms, group) {
                self.emit(Event::Rejected {
                    group: Some(group),
                    reason: format!("beacon failed: {e}"),
                });
            }
        }
    }

    /// Deletes held states past the window or beyond the bound (never the active head), and
    /// forgets own messages and intents that can no longer be lost.
    pub(crate) fn prune_expired(
        &mut self,
        now_ms: u64,
        group: GroupRef,
    ) -> Result<(), super::EngineError> {
        let (window, max_held) = (self.config.window_ms, self.config.max_held);
        let rt = self.runtime(group)?;
        let expired = rt
            .record
            .tree
            .expired(now_ms, window, max_held, rt.record.active);
        let doomed = rt
            .record
            .tree
            .with_decided_losers(&expired, rt.record.active);
        let mut tree = rt.record.tree.clone();
        for id in &doomed {
            tree.remove(*id);
        }
        let active = rt.record.active;
        // A message or intent can still be lost while the state it was made on is held and
        // some state it depends on could still be displaced: it is on a branch other than the
        // active path, or its parent is still held (a competing commit could still arrive).
        let at_risk = |on: BranchId| {
            tree.get(on).is_some_and(|state| {
                !tree.is_ancestor_or_self(on, active)
                    || state.parent.is_some_and(|p| tree.get(p).is_some())
            })
        };
        // Which own messages stay, in list order (the list does not change before the step).
        let keep_sent: Vec<bool> = rt.record.sent.iter().map(|m| at_risk(m.on)).collect();
        let intents_after: Vec<_> = rt
            .record
            .intents
            .iter()
            .filter(|i| at_risk(i.on))
            .cloned()
            .collect();
        let seen_horizon = now_ms.saturating_sub(window.saturating_mul(2));
        let stale_seen = rt.record.seen.len() > MIN_SEEN_KEPT
            && rt.record.seen.values().any(|t| *t < seen_horizon);
        if doomed.is_empty()
            && !stale_seen
            && keep_sent.iter().all(|keep| *keep)
            && intents_after.len() == rt.record.intents.len()
        {
            return Ok(());
        }
        self.step(Some(group), |engine| {
            let provider = &engine.provider;
            let rt = engine
                .groups
                .get_mut(&group)
                .ok_or(crate::storage::StorageError::UnknownGroup)?;
            let group_id = rt.group_id();
            for id in &doomed {
                provider.mls_storage().prune(&group_id, *id)?;
            }
            let mut keep_sent = keep_sent.into_iter();
            rt.record.sent.retain(|_| keep_sent.next().unwrap_or(true));
            rt.record.tree = tree;
            rt.record.intents = intents_after;
            // A re-sent copy of a message can arrive long after the first (a member back
            // from a partition), so besides the time horizon the newest ids are always kept.
            if rt.record.seen.len() > MIN_SEEN_KEPT {
                let mut times: Vec<u64> = rt.record.seen.values().copied().collect();
                times.sort_unstable();
                let newest_cut = times[times.len() - MIN_SEEN_KEPT];
                let keep_from = seen_horizon.min(newest_cut);
                rt.record.seen.retain(|_, t| t >= keep_from);
            }
            rt.save(provider)
        })?;
        // Messages waiting for a state older than every held one can never be read now.
        let rt = self.runtime(group)?;
        let oldest = rt.record.tree.states().map(|s| s.epoch).min().unwrap_or(0);
        let before = rt.buffered.len();
        let (kept, too_old): (Vec<_>, Vec<_>) =
            rt.buffered.drain(..).partition(|b| b.epoch >= oldest);
        rt.buffered = kept.into();
        let dropped = before - rt.buffered.len();
        for b in too_old {
            if let Some(aad) = super::receive::application_aad(&b.raw) {
                self.want_unreadable(now_ms, group, b.epoch, &aad);
            }
        }
        if dropped > 0 {
            self.emit(Event::Dropped {
                group,
                count: dropped,
            });
        }
        Ok(())
    }

    /// Applies the bound on held states (`max_held`) at once rather than at the next timer:
    /// a member that processes many commits in a row (a catch-up, a burst of Adds) would
    /// otherwise hold a state per commit until then. Called after every input.
    pub(crate) fn enforce_max_held(&mut self, now_ms: u64, group: GroupRef) {
        let max_held = self.config.max_held.max(1);
        let over = self
            .groups
            .get(&group)
            .is_some_and(|rt| rt.record.tree.len() > max_held);
        if over && let Err(e) = self.prune_expired(now_ms, group) {
            self.emit(Event::Rejected {
                group: Some(group),
                reason: format!("pruning failed: {e}"),
            });
        }
    }

    fn beacon_if_due(&mut self, now_ms: u64, group: GroupRef) -> Result<(), super::EngineError> {
        let interval = self.config.beacon_interval_ms;
        let rt = self.runtime(group)?;
        if now_ms < rt.record.next_beacon_ms {
            return Ok(());
        }
        rt.record.next_beacon_ms = now_ms + interval;
        let Some(active) = rt.record.tree.get(rt.record.active) else {
            return Ok(());
        };
        if active.evicted {
            return Ok(()); // not a member on this branch: nothing to vouch for
        }
        let beacon = Beacon {
            epoch: active.epoch,
            branch_id: active.branch_id,
            recent_commits: rt
                .record
                .log
                .iter()
                .rev()
                .take(BEACON_LOG_ENTRIES)
                .rev()
                .copied()
                .collect(),
        };
        // Signed, so that nobody but a member can speak for the group (see `wire::beacon`).
        let signed = SignedBeacon::sign(group, beacon, &self.signer, self.signer.public())?;
        self.publish(group, EnvelopeKind::Beacon, signed.encode()?)
    }
}

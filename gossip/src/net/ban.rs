//! Graylisted peers are cut off. Gossipsub ignores a graylisted peer's messages but still
//! reads and decodes every RPC it sends, so a flooding attacker keeps costing the node even
//! after scoring has found it out. A peer whose score is at or below the graylist threshold
//! is disconnected and refused (libp2p's block list) for `NetConfig::ban_graylisted_for`;
//! then it may connect again — with the score gossipsub keeps for it, so one that is still
//! below the threshold is cut off again at the next check.

use std::collections::BTreeMap;
use std::time::Duration;

use libp2p::PeerId;
use libp2p::gossipsub::PeerScoreThresholds;
use tokio::time::Instant;

/// How often every connected peer's score is looked at (a peer is also looked at the moment
/// one of its messages is rejected).
pub(super) const CHECK_EVERY: Duration = Duration::from_millis(500);

/// Peers cut off, each until when.
#[derive(Debug, Default)]
pub(super) struct Bans {
    until: BTreeMap<PeerId, Instant>,
}

/// What one check decided.
#[derive(Debug, Default, PartialEq)]
pub(super) struct BanChanges {
    pub banned: Vec<(PeerId, f64)>,
    pub lifted: Vec<PeerId>,
}

impl Bans {
    /// Decides from the connected peers' scores (`None`: scoring does not know the peer)
    /// which to cut off now and which bans are over.
    pub fn check(
        &mut self,
        scores: impl IntoIterator<Item = (PeerId, Option<f64>)>,
        now: Instant,
        ban_for: Duration,
    ) -> BanChanges {
        let threshold = PeerScoreThresholds::default().graylist_threshold;
        let mut changes = BanChanges::default();
        for (peer, score) in scores {
            if let Some(score) = score
                && score <= threshold
                && !self.until.contains_key(&peer)
            {
                self.until.insert(peer, now + ban_for);
                changes.banned.push((peer, score));
            }
        }
        self.until.retain(|peer, until| {
            let over = *until <= now;
            if over {
                changes.lifted.push(*peer);
            }
            !over
        });
        changes
    }

    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.until.contains_key(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_graylisted_peer_is_banned_for_a_while_and_others_never() {
        let (bad, good, unknown) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut bans = Bans::default();
        let start = Instant::now();
        let ban_for = Duration::from_secs(600);
        let scores = || [(bad, Some(-85.0)), (good, Some(3.0)), (unknown, None)];
        let changes = bans.check(scores(), start, ban_for);
        assert_eq!(changes.banned, [(bad, -85.0)]);
        assert!(bans.is_banned(&bad) && !bans.is_banned(&good) && !bans.is_banned(&unknown));
        // Still banned: not banned twice.
        let changes = bans.check(scores(), start + Duration::from_secs(60), ban_for);
        assert_eq!(changes, BanChanges::default());
        // Over: lifted, and — still graylisted when it comes back — banned again next check.
        let later = start + ban_for;
        let changes = bans.check([], later, ban_for);
        assert_eq!(changes.lifted, [bad]);
        assert!(!bans.is_banned(&bad));
        assert_eq!(bans.check(scores(), later, ban_for).banned.len(), 1);
    }

    #[test]
    fn exactly_at_the_threshold_is_graylisted() {
        let peer = PeerId::random();
        let threshold = PeerScoreThresholds::default().graylist_threshold;
        let mut bans = Bans::default();
        let changes = bans.check([(peer, Some(threshold))], Instant::now(), CHECK_EVERY);
        assert_eq!(changes.banned.len(), 1);
    }
}

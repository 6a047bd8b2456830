//! Turning engine state and events into what the API shows.

use ds_p2p::engine::{Event, GroupStatus};
use ds_p2p::wire::GroupRef;
use identity_tofu::SignedDeviceCertificate;

use crate::api::views::{EventView, GroupStatusView, MemberView};

/// Handle and fingerprint of a credential identity (an encoded device certificate).
pub fn member(identity: &[u8]) -> MemberView {
    match SignedDeviceCertificate::decode(identity) {
        Ok(cert) => MemberView {
            handle: cert.certificate().handle.clone(),
            fingerprint: cert.certificate().fingerprint().to_hex(),
            online: None,
        },
        Err(_) => MemberView {
            handle: "?".into(),
            fingerprint: hex::encode(identity),
            online: None,
        },
    }
}

pub fn group_hex(group: GroupRef) -> String {
    hex::encode(group.0)
}

pub fn status_view(
    group: GroupRef,
    name: &str,
    status: &GroupStatus,
    split: bool,
) -> GroupStatusView {
    let fork = if split {
        "split"
    } else if status.off_branch > 0 {
        "resolving"
    } else {
        "settled"
    };
    GroupStatusView {
        group_id: group_hex(group),
        name: name.to_string(),
        epoch: status.epoch,
        branch_id: hex::encode(status.branch_id),
        members: status.members.iter().map(|m| member(m)).collect(),
        held_branches: status.held_states,
        fork: fork.into(),
        removed: status.evicted,
    }
}

/// The API event for an engine event (messages are built by the caller, who stores them).
pub fn event_view(event: &Event) -> Option<EventView> {
    let g = |group: &GroupRef| group_hex(*group);
    let og = |group: &Option<GroupRef>| group.map(group_hex);
    Some(match event {
        // Repair traffic (asks for, and re-sends of, messages that came too late to be read)
        // is no news to the user: the messages themselves arrive as messages.
        Event::Message { .. }
        | Event::LastResortKeyPackageUsed
        | Event::Dropped { .. }
        | Event::RedeliveryAsked { .. }
        | Event::RedeliveryAnswered { .. } => {
            return None;
        }
        Event::GroupJoined { group, epoch } => EventView::GroupJoined {
            group: g(group),
            epoch: *epoch,
        },
        Event::EpochChanged {
            group,
            epoch,
            branch_id,
        } => EventView::EpochChanged {
            group: g(group),
            epoch: *epoch,
            branch_id: hex::encode(branch_id),
        },
        Event::MembershipChanged { group, members } => EventView::MembershipChanged {
            group: g(group),
            members: members.iter().map(|m| member(m)).collect(),
        },
        Event::ForkDetected {
            group,
            epoch,
            commits,
        } => EventView::ForkDetected {
            group: g(group),
            epoch: *epoch,
            commits: commits.len(),
        },
        Event::ForkBeyondWindow { group, epoch } => EventView::ForkBeyondWindow {
            group: g(group),
            epoch: *epoch,
        },
        Event::BranchSwitched {
            group,
            epoch,
            resent,
            reissued,
            ..
        } => EventView::BranchSwitched {
            group: g(group),
            epoch: *epoch,
            resent: resent.len(),
            reissued: *reissued,
        },
        Event::Readded {
            group,
            epoch,
            branch_id,
            resent,
            reissued,
        } => EventView::Readded {
            group: g(group),
            epoch: *epoch,
            branch_id: hex::encode(branch_id),
            resent: resent.len(),
            reissued: *reissued,
        },
        Event::SplitHealed {
            group,
            fork_epoch,
            epoch,
            branch_id,
            redelivered,
            reapplied,
        } => EventView::SplitHealed {
            group: g(group),
            fork_epoch: *fork_epoch,
            epoch: *epoch,
            branch_id: hex::encode(branch_id),
            redelivered: redelivered.len(),
            reapplied: *reapplied,
        },
        Event::ResendWithheld { group, ids } => EventView::ResendWithheld {
            group: g(group),
            withheld: ids.len(),
        },
        Event::SplitRejoined {
            group,
            fork_epoch,
            epoch,
            redelivered,
        } => EventView::SplitRejoined {
            group: g(group),
            fork_epoch: *fork_epoch,
            epoch: *epoch,
            redelivered: redelivered.len(),
        },
        Event::JoinLost { group } => EventView::JoinLost { group: g(group) },
        Event::Removed { group } => EventView::Removed { group: g(group) },
        Event::KeyChanged {
            group,
            handle,
            pinned,
            offered,
        } => EventView::KeyChanged {
            group: og(group),
            handle: handle.clone(),
            pinned: pinned.clone(),
            offered: offered.clone(),
        },
        Event::InvalidCredential { group, reason } => EventView::InvalidCredential {
            group: og(group),
            reason: reason.clone(),
        },
        Event::Rejected { group, reason } => EventView::Rejected {
            group: og(group),
            reason: reason.clone(),
        },
    })
}

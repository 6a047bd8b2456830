//! Healing forks that outlive the window (DESIGN §4 item 8, issue 6): a partition far longer
//! than the fork window, traffic and commits on both sides; after it ends, every member is
//! on one branch, every message reached every member exactly once, and only members of the
//! winning branch could rejoin it.

mod support;

use ds_p2p::engine::{Command, Event, TieBreak};
use ds_p2p::wire::{
    CommitRef, Envelope, EnvelopeKind, GroupRef, HealOffer, SignedBeacon, WireLimits,
};
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use openmls_rust_crypto::OpenMlsRustCrypto;
use support::net::Net;
use support::scenario::*;
use support::wire;

const WINDOW_MS: u64 = 60_000;
const SIDE_A: [&str; 3] = ["alice", "bob", "carol"];
const SIDE_B: [&str; 2] = ["dave", "erin"];
const MEMBERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

fn split_healed(net: &Net, name: &str) -> usize {
    net.nodes[net.index(name)]
        .events
        .iter()
        .filter(|e| matches!(e, Event::SplitHealed { .. }))
        .count()
}

/// The five members split into {alice, bob, carol} and {dave, erin} for `windows` fork
/// windows; every window each member sends a message and each side commits (self-updates,
/// by different members). Then the partition ends.
fn long_split(windows: u64, seed: u64) -> (Net, GroupRef, Vec<(String, String)>) {
    // zed is removed before the split: it must stay out, whichever side wins.
    let mut nodes = MEMBERS.to_vec();
    nodes.push("zed");
    let (mut net, group) = group_of(&nodes, TieBreak::LowestRef, seed);
    let zed = net.identity("zed");
    net.command("alice", Command::Remove { group, member: zed });
    net.deliver_all();
    net.sync();
    net.advance(WINDOW_MS + 1);
    net.sync();
    let mut side_a = SIDE_A.to_vec();
    side_a.push("zed");
    net.partition(&[&side_a, &SIDE_B]);
    let bodies = talk_apart(&mut net, group, &MEMBERS, windows);
    settle(&mut net);
    (net, group, bodies)
}

/// `windows` fork windows of a partition: every window each of `speakers` sends a message
/// and each side commits (self-updates, by its members in turn). Returns (sender, body).
fn talk_apart(
    net: &mut Net,
    group: GroupRef,
    speakers: &[&str],
    windows: u64,
) -> Vec<(String, String)> {
    let mut bodies = Vec::new();
    for round in 0..windows {
        for name in speakers.iter().copied() {
            let body = format!("{name} says {round}");
            say(net, name, group, &body);
            bodies.push((name.to_string(), body));
        }
        let (a, b) = (
            SIDE_A[round as usize % SIDE_A.len()],
            SIDE_B[round as usize % SIDE_B.len()],
        );
        net.command(a, Command::SelfUpdate { group });
        net.command(b, Command::SelfUpdate { group });
        net.deliver_all();
        net.advance(WINDOW_MS / 2);
        net.sync();
        net.advance(WINDOW_MS / 2);
        net.sync();
    }
    bodies
}

/// What every heal scenario must show.
fn assert_healed(net: &Net, group: GroupRef, bodies: &[(String, String)]) {
    assert_converged(net, group, &MEMBERS);
    let bodies: Vec<(&str, String)> = bodies
        .iter()
        .map(|(s, b)| (s.as_str(), b.clone()))
        .collect();
    assert_delivered_once(net, &MEMBERS, &bodies);
    // One side lost and rejoined (each of its members at least once: a rejoin that lost a
    // race is done again), the other did not move.
    let healed_a = SIDE_A.iter().filter(|n| split_healed(net, n) > 0).count();
    let healed_b = SIDE_B.iter().filter(|n| split_healed(net, n) > 0).count();
    assert!(
        (healed_a, healed_b) == (SIDE_A.len(), 0) || (healed_a, healed_b) == (0, SIDE_B.len()),
        "rejoined: {healed_a} of side A, {healed_b} of side B\n{}",
        net.story()
    );
    // The winning side heard of it: each of its members applied a rejoin from the other.
    let winners: &[&str] = if healed_a == 0 { &SIDE_A } else { &SIDE_B };
    for name in winners {
        let rejoined = net.nodes[net.index(name)]
            .events
            .iter()
            .any(|e| matches!(e, Event::SplitRejoined { .. }));
        assert!(
            rejoined,
            "{name} won but never saw a rejoin\n{}",
            net.story()
        );
    }
    assert_eq!(split_healed(net, "zed"), 0, "a removed member rejoined");
    assert!(
        !net.status("alice", group)
            .members
            .contains(&net.identity("zed")),
        "the member removed before the split is back"
    );
}

#[test]
fn a_split_of_2_windows_heals() {
    // Several seeds: either side can hold the lower commit at the fork point.
    let mut losers = Vec::new();
    for seed in 1..=4 {
        let (net, group, bodies) = long_split(2, seed);
        assert_healed(&net, group, &bodies);
        losers.push(split_healed(&net, "alice") > 0);
    }
    println!("side A lost: {losers:?}");
}

/// The same on sealed stores (encryption at rest, as the node keeps them): the records kept
/// for healing must be declared in the storage layout, or the sealed store refuses them.
#[test]
fn a_split_heals_on_sealed_stores() {
    support::net::seal_stores_on_this_thread();
    let (net, group, bodies) = long_split(2, 2);
    assert_healed(&net, group, &bodies);
}

#[test]
fn a_split_of_10_windows_heals() {
    let (net, group, bodies) = long_split(10, 10);
    assert_healed(&net, group, &bodies);
}

#[test]
fn a_split_of_100_windows_heals() {
    let (net, group, bodies) = long_split(100, 100);
    assert_healed(&net, group, &bodies);
}

/// An external commit made by `name` (with its own device key and credential) from
/// `group_info`, as the envelope a node would publish.
fn forge_rejoin(net: &Net, name: &str, group: GroupRef, group_info: &[u8]) -> Vec<u8> {
    let provider = OpenMlsRustCrypto::default();
    let signer = net.signer_of(name);
    let credential = CredentialWithKey {
        credential: BasicCredential::new(net.identity(name)).into(),
        signature_key: signer.public().into(),
    };
    let MlsMessageBodyIn::GroupInfo(info) = MlsMessageIn::tls_deserialize_exact(group_info)
        .unwrap()
        .extract()
    else {
        panic!("not a GroupInfo");
    };
    let (_, bundle) = MlsGroup::external_commit_builder()
        .with_aad(0u64.to_be_bytes().to_vec())
        .build_group(&provider, info, credential)
        .unwrap()
        .load_psks(provider.storage())
        .unwrap()
        .build(provider.rand(), provider.crypto(), &signer, |_| true)
        .unwrap()
        .finalize(&provider)
        .unwrap();
    Envelope::new(EnvelopeKind::Handshake, group, wire(bundle.commit()))
        .encode()
        .unwrap()
}

#[test]
fn only_a_member_of_the_branch_may_rejoin_it() {
    let (mut net, group) = group_among(
        &["alice", "bob", "carol", "mallory"],
        &["alice", "bob", "carol"],
        TieBreak::LowestRef,
        7,
    );
    let carol = net.identity("carol");
    net.command(
        "alice",
        Command::Remove {
            group,
            member: carol,
        },
    );
    net.deliver_all();
    net.sync();
    let info = net.engine("alice").group_info(group).unwrap();
    let epoch = net.status("alice", group).epoch;
    // Carol (removed) and Mallory (never a member) are refused by every member alike.
    for intruder in ["carol", "mallory"] {
        let envelope = forge_rejoin(&net, intruder, group, &info);
        for member in ["alice", "bob"] {
            let seen = net.nodes[net.index(member)].events.len();
            net.inject(member, &envelope);
            let node = &net.nodes[net.index(member)];
            assert!(
                node.events[seen..].iter().any(|e| matches!(
                    e,
                    Event::Rejected { reason, .. } if reason.contains("external commit refused")
                )),
                "{member} did not refuse {intruder}: {:?}",
                &node.events[seen..]
            );
            let status = net.status(member, group);
            assert_eq!(status.epoch, epoch, "{member} applied {intruder}'s commit");
            assert!(!status.members.contains(&net.identity(intruder)));
        }
    }
    // A member of the branch rejoining (replacing its own leaf) is accepted: the refusals
    // above are about who, not about external commits as such.
    let envelope = forge_rejoin(&net, "bob", group, &info);
    net.inject("alice", &envelope);
    let status = net.status("alice", group);
    assert_eq!(status.epoch, epoch + 1, "alice refused bob's rejoin");
    assert_eq!(status.members.len(), 2);
    assert!(status.members.contains(&net.identity("bob")));
}

/// A Remove made on either side of a long split stays in force: on the winning side it is
/// there anyway; on the losing side its maker re-does it after rejoining.
#[test]
fn removals_made_on_either_side_stay_in_force() {
    let names = ["alice", "bob", "carol", "dave", "erin", "frank"];
    let stay = ["alice", "bob", "dave", "erin"];
    for seed in [21, 22, 23] {
        let (mut net, group) = group_of(&names, TieBreak::LowestRef, seed);
        net.advance(WINDOW_MS + 1);
        net.sync();
        net.partition(&[&["alice", "bob", "carol"], &["dave", "erin", "frank"]]);
        for (remover, removed) in [("alice", "carol"), ("dave", "frank")] {
            let member = net.identity(removed);
            net.command(remover, Command::Remove { group, member });
        }
        net.deliver_all();
        net.sync();
        let mut bodies = Vec::new();
        for round in 0..10 {
            for name in stay {
                let body = format!("{name} says {round}");
                say(&mut net, name, group, &body);
                bodies.push((name, body));
            }
            net.command(["bob", "alice"][round % 2], Command::SelfUpdate { group });
            net.command(["erin", "dave"][round % 2], Command::SelfUpdate { group });
            net.deliver_all();
            net.advance(WINDOW_MS);
            net.sync();
        }
        settle(&mut net);
        println!(
            "seed {seed}: side A lost: {}",
            split_healed(&net, "alice") > 0
        );
        assert_converged(&net, group, &stay);
        assert_delivered_once(&net, &stay, &bodies);
        let reapplied: usize = ["alice", "dave"]
            .iter()
            .flat_map(|n| net.nodes[net.index(n)].events.iter())
            .filter_map(|e| match e {
                Event::SplitHealed { reapplied, .. } => Some(*reapplied),
                _ => None,
            })
            .sum();
        assert!(
            reapplied >= 1,
            "the losing side's Remove was not re-applied"
        );
        for removed in ["carol", "frank"] {
            assert_eq!(split_healed(&net, removed), 0, "{removed} rejoined");
        }
    }
}

/// A heal offer that says the other side wins, from `name`'s last beacon log with its newest
/// commit replaced by the lowest possible ref, carrying `group_info`.
fn offer_that_wins_over(net: &Net, name: &str, group: GroupRef, group_info: Vec<u8>) -> Vec<u8> {
    let beacon = net
        .published_by(name)
        .into_iter()
        .filter_map(|(_, bytes)| Envelope::decode(&bytes, &WireLimits::default()).ok())
        .rfind(|e| e.kind == EnvelopeKind::Beacon)
        .expect("a beacon");
    let beacon = SignedBeacon::decode(&beacon.payload).unwrap().beacon;
    let mut log = beacon.recent_commits;
    assert!(log.len() >= 2, "a log with a common entry below the fork");
    log.last_mut().unwrap().1 = CommitRef([0; 32]);
    let MlsMessageBodyIn::GroupInfo(info) = MlsMessageIn::tls_deserialize_exact(&group_info[..])
        .unwrap()
        .extract()
    else {
        panic!("not a GroupInfo");
    };
    let offer = HealOffer {
        epoch: info.epoch().as_u64(),
        log,
        group_info,
        readd_with: None,
    };
    let payload = identity_tofu::codec::encode(&offer).unwrap();
    Envelope::new(EnvelopeKind::GroupInfo, group, payload)
        .encode()
        .unwrap()
}

/// Anyone on the group topic can read the group id (it is in the clear in every MLS message)
/// and make up a GroupInfo for it, with a tree of their own and a log that wins: no member
/// takes it. The same offer with a GroupInfo a member signed is taken.
#[test]
fn a_made_up_group_info_moves_no_one() {
    let (mut net, group) = group_among(
        &["alice", "bob", "mallory"],
        &["alice", "bob"],
        TieBreak::LowestRef,
        9,
    );
    net.command("bob", Command::SelfUpdate { group });
    net.deliver_all();
    net.advance(WINDOW_MS + 1);
    net.sync();
    let group_id = net
        .published_by("bob")
        .into_iter()
        .filter_map(|(_, bytes)| Envelope::decode(&bytes, &WireLimits::default()).ok())
        .find(|e| e.kind == EnvelopeKind::Handshake)
        .map(|e| {
            MlsMessageIn::tls_deserialize_exact(&e.payload[..])
                .unwrap()
                .try_into_protocol_message()
                .unwrap()
                .group_id()
                .clone()
        })
        .expect("a commit of bob's");
    let provider = OpenMlsRustCrypto::default();
    let signer = net.signer_of("mallory");
    let made_up = MlsGroup::builder()
        .with_group_id(group_id)
        .ciphersuite(support::CIPHERSUITE)
        .use_ratchet_tree_extension(true)
        .build(
            &provider,
            &signer,
            CredentialWithKey {
                credential: BasicCredential::new(net.identity("mallory")).into(),
                signature_key: signer.public().into(),
            },
        )
        .unwrap();
    let made_up_info = wire(
        &made_up
            .export_group_info(provider.crypto(), &signer, true)
            .unwrap(),
    );
    let before = net.status("alice", group);
    let seen = net.nodes[net.index("alice")].events.len();
    let forged = offer_that_wins_over(&net, "alice", group, made_up_info);
    net.inject("alice", &forged);
    let events = &net.nodes[net.index("alice")].events[seen..];
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Rejected { reason, .. } if reason.contains("not signed by a member")
        )),
        "alice took a made-up GroupInfo: {events:?}"
    );
    assert_eq!(net.status("alice", group), before);
    // Control: the same offer with bob's GroupInfo is taken (alice rejoins bob's branch).
    let genuine = net.engine("bob").group_info(group).unwrap();
    let offer = offer_that_wins_over(&net, "alice", group, genuine);
    net.inject("alice", &offer);
    // Alice rejoins at her turn (slots of 1 s dealt round her state's two members).
    net.advance(3_000);
    assert_eq!(
        split_healed(&net, "alice"),
        1,
        "the genuine offer was not taken"
    );
}

/// Each side adds a newcomer during a split of `windows` windows (alice adds fay on side A,
/// dave adds gus on side B); both newcomers and the old members talk on their side. Whichever
/// side loses, its newcomer was added on a branch that is gone: its adder must add it again
/// on the winning branch (with a fresh KeyPackage the newcomer sends), and the newcomer must
/// re-send what it said on the losing side.
fn long_split_with_adds(windows: u64, seed: u64) -> (Net, GroupRef, Vec<(String, String)>) {
    let mut nodes = MEMBERS.to_vec();
    nodes.extend(["fay", "gus"]);
    let (mut net, group) = group_among(&nodes, &MEMBERS, TieBreak::LowestRef, seed);
    net.advance(WINDOW_MS + 1);
    net.sync();
    let side_a = ["alice", "bob", "carol", "fay"];
    let side_b = ["dave", "erin", "gus"];
    net.partition(&[&side_a, &side_b]);
    for (adder, newcomer) in [("alice", "fay"), ("dave", "gus")] {
        let key_package = net.key_package(newcomer);
        net.command(adder, Command::Invite { group, key_package });
    }
    net.deliver_all();
    net.sync();
    let bodies = talk_apart(&mut net, group, &nodes, windows);
    settle(&mut net);
    (net, group, bodies)
}

#[test]
fn members_added_on_the_losing_side_are_added_again() {
    let everyone = ["alice", "bob", "carol", "dave", "erin", "fay", "gus"];
    let mut left_out = Vec::new();
    for seed in 1..=4 {
        let (net, group, bodies) = long_split_with_adds(2, seed);
        assert_converged(&net, group, &everyone);
        assert_pruned(&net, group, &everyone);
        let (newcomer, adder, losing_side): (&str, &str, &[&str]) =
            if split_healed(&net, "alice") > 0 {
                ("fay", "alice", &["alice", "bob", "carol", "fay"])
            } else {
                ("gus", "dave", &["dave", "erin", "gus"])
            };
        let node = &net.nodes[net.index(newcomer)];
        assert!(
            node.events
                .iter()
                .any(|e| matches!(e, Event::JoinLost { .. }))
                && split_healed(&net, newcomer) > 0,
            "{newcomer} (added by {adder} on the losing side) was not added again\n{}",
            net.story()
        );
        let bodies: Vec<(&str, String)> = bodies
            .iter()
            .map(|(s, b)| (s.as_str(), b.clone()))
            .collect();
        // Every member that was on the winning branch all along reads every message
        // exactly once: the losing side's (the newcomer's too) are re-sent after the heal.
        let stayed: Vec<&str> = everyone
            .iter()
            .copied()
            .filter(|n| *n != newcomer)
            .collect();
        assert_delivered_once(&net, &stayed, &bodies);
        // The newcomer, added again after the heal, reads what its side said during the
        // split (not what the winning side said before the re-add: it was not in that branch
        // then), and nothing twice.
        let its_side: Vec<(&str, String)> = bodies
            .iter()
            .filter(|(s, _)| losing_side.contains(s))
            .cloned()
            .collect();
        assert_delivered_once(&net, &[newcomer], &its_side);
        left_out.push(newcomer);
    }
    println!("newcomer added on the losing side, per seed: {left_out:?}");
}

/// Twelve members split six against six, each side commits and talks for two windows. Every
/// loser learns it lost from the same offers at the same moment; rejoining at once made their
/// external commits race at one epoch, so most rejoined several times (O(losers²) commits,
/// each with a re-send). They take turns now (`heal_schedule`): each loser rejoins exactly
/// once, on top of the one before it.
#[test]
fn the_losers_of_a_split_take_turns_and_rejoin_once_each() {
    const TWELVE: [&str; 12] = [
        "m00", "m01", "m02", "m03", "m04", "m05", "m06", "m07", "m08", "m09", "m10", "m11",
    ];
    let (side_a, side_b) = TWELVE.split_at(6);
    for seed in 1..=2 {
        let (mut net, group) = group_of(&TWELVE, TieBreak::LowestRef, seed);
        net.advance(WINDOW_MS + 1);
        net.sync();
        net.partition(&[side_a, side_b]);
        let mut bodies = Vec::new();
        for round in 0..2u64 {
            for name in TWELVE {
                let body = format!("{name} says {round}");
                say(&mut net, name, group, &body);
                bodies.push((name, body));
            }
            net.command(side_a[round as usize], Command::SelfUpdate { group });
            net.command(side_b[round as usize], Command::SelfUpdate { group });
            net.deliver_all();
            net.advance(WINDOW_MS);
            net.sync();
        }
        settle(&mut net);
        assert_converged(&net, group, &TWELVE);
        assert_delivered_once(&net, &TWELVE, &bodies);
        let rejoins: Vec<usize> = TWELVE.iter().map(|n| split_healed(&net, n)).collect();
        let losers: &[&str] = if rejoins[0] > 0 { side_a } else { side_b };
        for name in TWELVE {
            let expected = usize::from(losers.contains(&name));
            assert_eq!(
                split_healed(&net, name),
                expected,
                "seed {seed}: {name} rejoined {} times (all: {rejoins:?})\n{}",
                split_healed(&net, name),
                net.story()
            );
        }
    }
}

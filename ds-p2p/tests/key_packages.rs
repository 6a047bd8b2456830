//! KeyPackages and the directory: one-time use, the last-resort fallback and its rotation,
//! refusal of bundles that are not the owner's, and inviting through the directory.

mod support;

use ds_p2p::directory::{Directory, DirectoryError};
use ds_p2p::engine::{Command, Event, TieBreak};
use support::net::Net;
use support::scenario::group_among;

fn bundle(net: &mut Net, name: &str, fresh: usize) -> ds_p2p::engine::KeyPackageBundle {
    let i = net.index(name);
    let now = net.now;
    net.nodes[i]
        .engine
        .key_package_bundle(now, fresh)
        .expect("bundle")
}

#[test]
fn fresh_key_packages_are_handed_out_once_then_the_last_resort() {
    let mut net = Net::with_policy(&["ann", "ben"], TieBreak::LowestRef, 3);
    let published = bundle(&mut net, "ben", 2);
    let mut directory = Directory::default();
    directory.publish(&published).unwrap();
    let ben = net.identity("ben");
    let first = directory.take(&ben, net.now).unwrap();
    let second = directory.take(&ben, net.now).unwrap();
    assert!(!first.last_resort && !second.last_resort);
    assert_ne!(
        first.key_package, second.key_package,
        "a one-time KeyPackage came twice"
    );
    assert_eq!(second.remaining, 0);
    let third = directory.take(&ben, net.now).unwrap();
    let fourth = directory.take(&ben, net.now).unwrap();
    assert!(third.last_resort && fourth.last_resort);
    assert_eq!(third.key_package, published.last_resort);
    assert_eq!(directory.take(&net.identity("ann"), net.now), None);
    // Survives a round trip through storage.
    let restored = Directory::import(&directory.export()).unwrap();
    assert_eq!(restored, directory);
}

#[test]
fn a_bundle_with_someone_elses_key_package_is_refused() {
    let mut net = Net::with_policy(&["ann", "ben"], TieBreak::LowestRef, 4);
    let mut forged = bundle(&mut net, "ben", 1);
    let anns = bundle(&mut net, "ann", 1);
    forged.fresh.push(anns.fresh[0].clone());
    let mut directory = Directory::default();
    let err = directory.publish(&forged).unwrap_err();
    assert!(
        matches!(err, DirectoryError::BadKeyPackage { index: 1, .. }),
        "{err}"
    );
    // Swapping the last-resort for a one-time KeyPackage is caught too.
    let mut swapped = bundle(&mut net, "ben", 1);
    swapped.last_resort = swapped.fresh[0].clone();
    assert!(directory.publish(&swapped).is_err());
    // Garbage.
    let mut garbage = bundle(&mut net, "ben", 0);
    garbage.last_resort = b"not a key package".to_vec();
    assert!(directory.publish(&garbage).is_err());
    assert_eq!(directory.take(&net.identity("ben"), net.now), None);
}

#[test]
fn inviting_with_the_last_resort_key_package_tells_the_owner_to_rotate() {
    let (mut net, group) = group_among(&["ann", "ben", "cat"], &["ann"], TieBreak::LowestRef, 5);
    let mut directory = Directory::default();
    let published = bundle(&mut net, "ben", 0);
    directory.publish(&published).unwrap();
    let handed = directory.take(&net.identity("ben"), net.now).unwrap();
    assert!(handed.last_resort);
    net.command(
        "ann",
        Command::Invite {
            group,
            key_package: handed.key_package,
        },
    );
    net.deliver_all();
    net.sync();
    assert_eq!(net.status("ben", group).members.len(), 2, "ben joined");
    let ben = &net.nodes[net.index("ben")];
    assert!(
        ben.events
            .iter()
            .any(|e| matches!(e, Event::LastResortKeyPackageUsed)),
        "ben was not told to rotate his last-resort KeyPackage"
    );
    // The rotated bundle replaces the old one.
    net.advance(1);
    let rotated = bundle(&mut net, "ben", 1);
    directory.publish(&rotated).unwrap();
    assert!(
        directory
            .publish(&published)
            .is_err_and(|e| e == DirectoryError::Stale)
    );
}

#[test]
fn an_invite_with_an_invalid_credential_is_refused() {
    // A KeyPackage whose credential is not a device certificate: the raw-name client of the
    // storage tests makes one.
    let (mut net, group) = group_among(&["ann", "ben"], &["ann", "ben"], TieBreak::LowestRef, 6);
    let raw = support::Client::new("mallory", support::memory_kv());
    let key_package = support::wire(&raw.key_package().into());
    net.command("ann", Command::Invite { group, key_package });
    let ann = &net.nodes[net.index("ann")];
    assert!(
        matches!(ann.events.last(), Some(Event::InvalidCredential { .. })),
        "{:?}",
        ann.events.last()
    );
    assert_eq!(net.status("ann", group).members.len(), 2);
}

/// An inviter checks whose KeyPackage it was handed before adding it: the owner is the
/// credential inside, once it verifies; anything else is an error, not a panic.
#[test]
fn a_key_package_names_its_owner_and_garbage_names_nobody() {
    let mut net = Net::with_policy(&["alice", "bob"], TieBreak::LowestRef, 11);
    let bob_kp = net.key_package("bob");
    assert_eq!(
        ds_p2p::directory::key_package_owner(&bob_kp),
        Ok(net.identity("bob"))
    );
    assert_ne!(
        ds_p2p::directory::key_package_owner(&bob_kp),
        Ok(net.identity("alice"))
    );
    assert!(ds_p2p::directory::key_package_owner(b"not a key package").is_err());
    let mut tampered = bob_kp.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(ds_p2p::directory::key_package_owner(&tampered).is_err());
}

//! Determinism at the openmls level: with providers built by `ChorusProvider::with_seed`,
//! creating a group and adding a member by KeyPackage gives byte-identical KeyPackage, commit
//! and Welcome messages for the same seeds, and different ones for a different seed.

use std::sync::Arc;

use ds_p2p::engine::CIPHERSUITE;
use ds_p2p::storage::ChorusProvider;
use ds_p2p::storage::kv::MemoryStore;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;

const ALICE: [u8; 32] = [0xA1; 32];
const BOB: [u8; 32] = [0xB0; 32];

/// Leaf lifetimes default to "now", which would make the bytes depend on the clock; a fixed
/// window keeps this test about randomness only.
fn lifetime() -> Lifetime {
    Lifetime::init(0, u64::MAX)
}

struct Member {
    provider: ChorusProvider,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

/// A member whose provider and signature key both follow from `seed`.
fn member(name: &str, seed: [u8; 32]) -> Member {
    let provider = ChorusProvider::with_seed(Arc::new(MemoryStore::new()), seed);
    let scheme = CIPHERSUITE.signature_algorithm();
    let (private, public) = provider.crypto().signature_key_gen(scheme).unwrap();
    let signer = SignatureKeyPair::from_raw(scheme, private, public);
    signer.store(provider.storage()).unwrap();
    let credential = CredentialWithKey {
        credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
        signature_key: signer.public().into(),
    };
    Member {
        provider,
        signer,
        credential,
    }
}

/// The bytes one run puts on the wire.
#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    key_package: Vec<u8>,
    commit: Vec<u8>,
    welcome: Vec<u8>,
    group_id: Vec<u8>,
}

/// Alice creates a group and adds Bob by his KeyPackage; Bob joins from the Welcome.
fn run(alice_seed: [u8; 32], bob_seed: [u8; 32]) -> Transcript {
    let alice = member("alice", alice_seed);
    let bob = member("bob", bob_seed);

    let mut alice_group = MlsGroup::builder()
        .ciphersuite(CIPHERSUITE)
        .use_ratchet_tree_extension(true)
        .with_wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .lifetime(lifetime())
        .build(&alice.provider, &alice.signer, alice.credential.clone())
        .unwrap();

    let key_package = KeyPackage::builder()
        .key_package_lifetime(lifetime())
        .build(
            CIPHERSUITE,
            &bob.provider,
            &bob.signer,
            bob.credential.clone(),
        )
        .unwrap()
        .key_package()
        .clone();

    let (commit, welcome, _) = alice_group
        .add_members(
            &alice.provider,
            &alice.signer,
            std::slice::from_ref(&key_package),
        )
        .unwrap();
    alice_group.merge_pending_commit(&alice.provider).unwrap();
    let commit = commit.tls_serialize_detached().unwrap();
    let welcome = welcome.tls_serialize_detached().unwrap();

    // The seeded messages are valid MLS: Bob joins and agrees on the epoch.
    let MlsMessageBodyIn::Welcome(welcome_in) = MlsMessageIn::tls_deserialize_exact(&welcome)
        .unwrap()
        .extract()
    else {
        panic!("not a Welcome");
    };
    let join_config = MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .build();
    let bob_group = StagedWelcome::new_from_welcome(&bob.provider, &join_config, welcome_in, None)
        .unwrap()
        .into_group(&bob.provider)
        .unwrap();
    assert_eq!(
        bob_group.epoch_authenticator().as_slice(),
        alice_group.epoch_authenticator().as_slice()
    );

    Transcript {
        key_package: key_package.tls_serialize_detached().unwrap(),
        commit,
        welcome,
        group_id: alice_group.group_id().as_slice().to_vec(),
    }
}

#[test]
fn determinism_same_seeds_give_identical_commit_and_welcome() {
    let first = run(ALICE, BOB);
    let second = run(ALICE, BOB);
    assert_eq!(first.key_package, second.key_package);
    assert_eq!(first.group_id, second.group_id);
    assert_eq!(first.commit, second.commit);
    assert_eq!(first.welcome, second.welcome);
}

#[test]
fn determinism_different_seed_gives_different_messages() {
    let first = run(ALICE, BOB);
    // Only the committer's seed changes: Bob's KeyPackage stays, everything Alice draws moves.
    let other = run([0xA2; 32], BOB);
    assert_eq!(first.key_package, other.key_package);
    assert_ne!(first.group_id, other.group_id);
    assert_ne!(first.commit, other.commit);
    assert_ne!(first.welcome, other.welcome);
}

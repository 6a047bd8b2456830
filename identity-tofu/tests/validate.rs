//! The credential validation every MLS credential goes through.

use identity_tofu::certificate::CertificateError;
use identity_tofu::kv::MemoryStore;
use identity_tofu::validate::validate_credential;
use identity_tofu::{
    Address, CredentialError, DeviceKey, LocalIdentity, Outcome, SignedDeviceCertificate,
    TrustStore,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

const NOW: u64 = 1_700_000_000_000;

fn identity(handle: &str, seed: u64) -> LocalIdentity {
    LocalIdentity::create(handle, &mut StdRng::seed_from_u64(seed), NOW).unwrap()
}

#[test]
fn valid_credential_passes_first_sight_then_known() {
    let trust = TrustStore::new(MemoryStore::new());
    let alice = identity("alice", 1);
    let sig_key = alice.device_public();

    let first = validate_credential(
        &trust,
        alice.credential_identity(),
        sig_key.as_bytes(),
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(first.observation.outcome, Outcome::FirstSight);
    assert_eq!(first.fingerprint, alice.fingerprint());
    assert_eq!(first.certificate.handle, "alice");
    // No address given: pinned under the certificate's handle.
    assert_eq!(first.observation.address, Address::Handle("alice".into()));

    let second = validate_credential(
        &trust,
        alice.credential_identity(),
        sig_key.as_bytes(),
        None,
        NOW + 1,
    )
    .unwrap();
    assert_eq!(second.observation.outcome, Outcome::Known);
}

#[test]
fn signature_key_other_than_the_certified_device_key_is_refused() {
    let trust = TrustStore::new(MemoryStore::new());
    let alice = identity("alice", 2);
    let mallory_device = DeviceKey::generate(&mut StdRng::seed_from_u64(3)).public();
    let err = validate_credential(
        &trust,
        alice.credential_identity(),
        mallory_device.as_bytes(),
        None,
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(err, CredentialError::SignatureKeyMismatch { certified, presented }
            if certified == alice.device_public() && presented == mallory_device),
        "{err}"
    );
    let err = validate_credential(&trust, alice.credential_identity(), &[1, 2, 3], None, NOW)
        .unwrap_err();
    assert!(matches!(err, CredentialError::BadSignatureKey(3)), "{err}");
    // Refused credentials never reach the trust store.
    assert!(trust.contacts().unwrap().is_empty());
}

#[test]
fn key_change_is_an_unmistakable_refusal() {
    let trust = TrustStore::new(MemoryStore::new());
    let alice = identity("alice", 4);
    let impostor = identity("alice", 5);
    validate_credential(
        &trust,
        alice.credential_identity(),
        alice.device_public().as_bytes(),
        None,
        NOW,
    )
    .unwrap();
    for _ in 0..2 {
        let err = validate_credential(
            &trust,
            impostor.credential_identity(),
            impostor.device_public().as_bytes(),
            None,
            NOW,
        )
        .unwrap_err();
        match err {
            CredentialError::KeyChanged {
                pinned, offered, ..
            } => {
                assert_eq!(pinned, alice.identity_public());
                assert_eq!(offered, impostor.identity_public());
            }
            other => panic!("expected KeyChanged, got {other}"),
        }
    }
    // Under another address the impostor is simply someone new.
    let petname = Address::Petname("the other alice".into());
    let ok = validate_credential(
        &trust,
        impostor.credential_identity(),
        impostor.device_public().as_bytes(),
        Some(&petname),
        NOW,
    )
    .unwrap();
    assert_eq!(ok.observation.outcome, Outcome::FirstSight);
}

#[test]
fn rotated_device_is_a_new_device_not_a_key_change() {
    let trust = TrustStore::new(MemoryStore::new());
    let mut alice = identity("alice", 6);
    let check = |alice: &LocalIdentity, now| {
        validate_credential(
            &trust,
            alice.credential_identity(),
            alice.device_public().as_bytes(),
            None,
            now,
        )
    };
    check(&alice, NOW).unwrap();
    alice
        .rotate_device(&mut StdRng::seed_from_u64(60), NOW + 10)
        .unwrap();
    assert_eq!(
        check(&alice, NOW + 20).unwrap().observation.outcome,
        Outcome::NewDevice
    );
}

#[test]
fn bad_certificates_are_refused_before_the_trust_store() {
    let trust = TrustStore::new(MemoryStore::new());
    let alice = identity("alice", 7);
    let sig_key = alice.device_public();
    let expires = alice.certificate().certificate().expires_at_ms;
    assert!(matches!(
        validate_credential(
            &trust,
            alice.credential_identity(),
            sig_key.as_bytes(),
            None,
            expires
        ),
        Err(CredentialError::Certificate(
            CertificateError::Expired { .. }
        ))
    ));
    assert!(matches!(
        validate_credential(&trust, b"garbage", sig_key.as_bytes(), None, NOW),
        Err(CredentialError::Certificate(CertificateError::Malformed(_)))
    ));
    // A certificate altered after signing (handle swapped).
    let mut cert = alice.certificate().certificate().clone();
    cert.handle = "bob".into();
    let altered =
        SignedDeviceCertificate::from_parts(cert, *alice.certificate().signature()).unwrap();
    assert!(matches!(
        validate_credential(&trust, altered.encoded(), sig_key.as_bytes(), None, NOW),
        Err(CredentialError::Certificate(CertificateError::Forged))
    ));
    assert!(trust.contacts().unwrap().is_empty());
}

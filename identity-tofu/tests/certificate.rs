//! Device certificates: round trip, and every way a certificate must be refused.

use ed25519_dalek::Signature;
use identity_tofu::certificate::{
    CertificateError, CertificatePolicy, DEFAULT_MAX_CLOCK_SKEW_MS, MAX_CERTIFICATE_LEN,
};
use identity_tofu::codec::CodecError;
use identity_tofu::{DeviceCertificate, DeviceKey, IdentityKey, SignedDeviceCertificate};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

const NOW: u64 = 1_700_000_000_000;
const DAY: u64 = 24 * 60 * 60 * 1000;

struct Fixture {
    identity: IdentityKey,
    device: DeviceKey,
    signed: SignedDeviceCertificate,
}

fn fixture(seed: u64) -> Fixture {
    let mut rng = StdRng::seed_from_u64(seed);
    let identity = IdentityKey::generate(&mut rng);
    let device = DeviceKey::generate(&mut rng);
    let signed =
        SignedDeviceCertificate::issue(&identity, "alice", device.public(), NOW, 30 * DAY).unwrap();
    Fixture {
        identity,
        device,
        signed,
    }
}

#[test]
fn round_trip_encode_decode_verify() {
    let f = fixture(1);
    let bytes = f.signed.encode();
    assert!(bytes.len() <= MAX_CERTIFICATE_LEN);
    let decoded = SignedDeviceCertificate::decode(&bytes).unwrap();
    assert_eq!(decoded, f.signed);
    assert_eq!(decoded.encoded(), &bytes[..]);
    let cert = decoded.verify(NOW + DAY).unwrap();
    assert_eq!(cert.handle, "alice");
    assert_eq!(cert.identity_key, f.identity.public());
    assert_eq!(cert.device_key, f.device.public());
    assert_eq!(cert.created_at_ms, NOW);
    assert_eq!(cert.expires_at_ms, NOW + 30 * DAY);
    assert_eq!(cert.fingerprint(), f.identity.fingerprint());
}

#[test]
fn forged_certificate_signed_by_another_identity_is_rejected() {
    let f = fixture(2);
    let mallory = IdentityKey::generate(&mut StdRng::seed_from_u64(99));
    // Mallory signs a certificate that claims to be from Alice's identity key.
    let genuine = f.signed.certificate().clone();
    let by_mallory = SignedDeviceCertificate::issue(
        &mallory,
        &genuine.handle,
        genuine.device_key,
        genuine.created_at_ms,
        genuine.expires_at_ms - genuine.created_at_ms,
    )
    .unwrap();
    let forged = SignedDeviceCertificate::from_parts(genuine, *by_mallory.signature()).unwrap();
    let decoded = SignedDeviceCertificate::decode(forged.encoded()).unwrap();
    assert!(matches!(decoded.verify(NOW), Err(CertificateError::Forged)));
}

/// A change made to a certificate after it was signed.
type Alteration = Box<dyn Fn(&mut DeviceCertificate)>;

#[test]
fn fields_changed_after_signing_are_rejected() {
    let f = fixture(3);
    let other_device = DeviceKey::generate(&mut StdRng::seed_from_u64(100)).public();
    let alterations: Vec<(&str, Alteration)> = vec![
        (
            "device key swapped",
            Box::new(move |c: &mut DeviceCertificate| c.device_key = other_device),
        ),
        (
            "handle swapped",
            Box::new(|c: &mut DeviceCertificate| c.handle = "mallory".into()),
        ),
        (
            "expiry extended",
            Box::new(|c: &mut DeviceCertificate| c.expires_at_ms += 365 * DAY),
        ),
        (
            "creation moved",
            Box::new(|c: &mut DeviceCertificate| c.created_at_ms -= 1),
        ),
    ];
    for (what, alter) in alterations {
        let mut cert = f.signed.certificate().clone();
        alter(&mut cert);
        let altered = SignedDeviceCertificate::from_parts(cert, *f.signed.signature()).unwrap();
        let decoded = SignedDeviceCertificate::decode(altered.encoded()).unwrap();
        assert!(
            matches!(decoded.verify(NOW), Err(CertificateError::Forged)),
            "{what} was accepted"
        );
    }
}

#[test]
fn flipping_any_signature_bit_is_rejected() {
    let f = fixture(4);
    let good = f.signed.signature().to_bytes();
    for bit in [0usize, 7, 100, 255, 256, 511] {
        let mut sig = good;
        sig[bit / 8] ^= 1 << (bit % 8);
        let altered = SignedDeviceCertificate::from_parts(
            f.signed.certificate().clone(),
            Signature::from_bytes(&sig),
        )
        .unwrap();
        assert!(altered.verify(NOW).is_err(), "bit {bit}");
    }
}

#[test]
fn validity_window_is_enforced() {
    let f = fixture(5);
    let expires = f.signed.certificate().expires_at_ms;
    assert!(f.signed.verify(expires - 1).is_ok());
    assert!(matches!(
        f.signed.verify(expires),
        Err(CertificateError::Expired { .. })
    ));
    assert!(matches!(
        f.signed.verify(expires + DAY),
        Err(CertificateError::Expired { .. })
    ));
    // Created slightly in the future: tolerated clock skew.
    assert!(f.signed.verify(NOW - DEFAULT_MAX_CLOCK_SKEW_MS).is_ok());
    // Created absurdly far in the future.
    assert!(matches!(
        f.signed.verify(NOW - DEFAULT_MAX_CLOCK_SKEW_MS - 1),
        Err(CertificateError::NotYetValid { .. })
    ));
    let strict = CertificatePolicy {
        max_clock_skew_ms: 0,
    };
    assert!(f.signed.verify_with(NOW, &strict).is_ok());
    assert!(matches!(
        f.signed.verify_with(NOW - 1, &strict),
        Err(CertificateError::NotYetValid { .. })
    ));
}

#[test]
fn issuing_refuses_what_verifiers_would_refuse() {
    let f = fixture(6);
    let device = f.device.public();
    assert!(matches!(
        SignedDeviceCertificate::issue(&f.identity, "", device, NOW, DAY),
        Err(CertificateError::InvalidHandle(_))
    ));
    assert!(matches!(
        SignedDeviceCertificate::issue(&f.identity, "a\u{202e}b", device, NOW, DAY),
        Err(CertificateError::InvalidHandle(_))
    ));
    assert!(matches!(
        SignedDeviceCertificate::issue(&f.identity, "alice", device, NOW, 0),
        Err(CertificateError::InvalidValidity { .. })
    ));
}

#[test]
fn signed_bad_handle_is_still_rejected_on_verify() {
    // A certificate with a control character in the handle, correctly signed by its own
    // identity key (built by hand, since `issue` refuses it): verify must refuse the handle.
    let f = fixture(7);
    let mut cert = f.signed.certificate().clone();
    cert.handle = "ali\nce".into();
    let unsigned = SignedDeviceCertificate::from_parts(cert, *f.signed.signature()).unwrap();
    assert!(matches!(
        unsigned.verify(NOW),
        Err(CertificateError::InvalidHandle(_))
    ));
}

#[test]
fn truncated_oversized_and_trailing_bytes_are_errors() {
    let f = fixture(8);
    let bytes = f.signed.encode();
    for len in 0..bytes.len() {
        assert!(
            SignedDeviceCertificate::decode(&bytes[..len]).is_err(),
            "truncated to {len} bytes"
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        SignedDeviceCertificate::decode(&trailing),
        Err(CertificateError::Malformed(
            CodecError::TrailingBytes { .. }
        ))
    ));
    let oversized = vec![0u8; MAX_CERTIFICATE_LEN + 1];
    assert!(matches!(
        SignedDeviceCertificate::decode(&oversized),
        Err(CertificateError::Malformed(CodecError::TooLong { .. }))
    ));
}

#[test]
fn unsupported_version_is_rejected() {
    let f = fixture(9);
    let mut cert = f.signed.certificate().clone();
    cert.version = 2;
    let signed = SignedDeviceCertificate::from_parts(cert, *f.signed.signature()).unwrap();
    assert!(matches!(
        signed.verify(NOW),
        Err(CertificateError::UnsupportedVersion(2))
    ));
}

#[test]
fn random_and_mutated_bytes_never_panic_and_never_verify() {
    let seed: u64 = std::env::var("CHORUS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c3a7);
    println!("random_and_mutated_bytes seed = {seed} (set CHORUS_TEST_SEED to replay)");
    let mut rng = StdRng::seed_from_u64(seed);
    let f = fixture(10);
    let genuine = f.signed.encode();
    for i in 0..2000 {
        let bytes = if i % 2 == 0 {
            let mut b = vec![0u8; rng.gen_range(0..=MAX_CERTIFICATE_LEN + 8)];
            rng.fill_bytes(&mut b);
            b
        } else {
            // Flip 1..4 random bytes of a genuine certificate.
            let mut b = genuine.clone();
            for _ in 0..rng.gen_range(1..=4) {
                let at = rng.gen_range(0..b.len());
                b[at] ^= rng.gen_range(1..=255u8);
            }
            b
        };
        if bytes == genuine {
            continue; // two flips of the same byte cancelled out
        }
        if let Ok(cert) = SignedDeviceCertificate::decode(&bytes) {
            assert!(
                cert.verify(NOW).is_err(),
                "seed {seed}, case {i}: altered certificate verified: {bytes:?}"
            );
        }
    }
}

//! Key files and the local identity: owner-only files, refusal of readable ones, round trips.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use identity_tofu::keyfile::{
    KeyFileError, read_device_key, read_identity_key, write_device_key, write_identity_key,
};
use identity_tofu::local_identity::{DEVICE_KEY_FILE, IDENTITY_KEY_FILE};
use identity_tofu::{IdentityKey, LocalIdentity};
use rand::SeedableRng;
use rand::rngs::StdRng;

const NOW: u64 = 1_700_000_000_000;

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn key_files_are_created_0600_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let key = IdentityKey::generate(&mut StdRng::seed_from_u64(1));
    let path = dir.path().join("id.key");
    write_identity_key(&path, &key).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(read_identity_key(&path).unwrap().public(), key.public());
    // Overwriting keeps 0600 and leaves no temporary file behind.
    let other = IdentityKey::generate(&mut StdRng::seed_from_u64(2));
    write_identity_key(&path, &other).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(read_identity_key(&path).unwrap().public(), other.public());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn group_or_world_accessible_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = IdentityKey::generate(&mut StdRng::seed_from_u64(3));
    let path = dir.path().join("id.key");
    write_identity_key(&path, &key).unwrap();
    for loose in [0o644, 0o640, 0o604, 0o660, 0o601] {
        fs::set_permissions(&path, fs::Permissions::from_mode(loose)).unwrap();
        let err = read_identity_key(&path).unwrap_err();
        assert!(
            matches!(err, KeyFileError::InsecurePermissions { mode, .. } if mode == loose),
            "{loose:o}: {err}"
        );
        let message = err.to_string();
        assert!(message.contains("chmod 600"), "{message}");
        assert!(message.contains(&format!("{loose:04o}")), "{message}");
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    assert!(read_identity_key(&path).is_ok());
}

#[test]
fn wrong_kind_and_garbage_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalIdentity::create("alice", &mut StdRng::seed_from_u64(4), NOW).unwrap();
    let id_path = dir.path().join("id.key");
    let dev_path = dir.path().join("dev.key");
    write_identity_key(&id_path, local.identity_key()).unwrap();
    write_device_key(&dev_path, local.device_key(), local.certificate()).unwrap();
    assert!(matches!(
        read_device_key(&id_path),
        Err(KeyFileError::WrongKind { .. })
    ));
    assert!(matches!(
        read_identity_key(&dev_path),
        Err(KeyFileError::WrongKind { .. })
    ));
    let (device, cert) = read_device_key(&dev_path).unwrap();
    assert_eq!(device.public(), local.device_public());
    assert_eq!(&cert, local.certificate());

    let garbage = dir.path().join("garbage.key");
    let contents: [&[u8]; 4] = [
        b"",
        b"chorus-key\0",
        b"chorus-key\0\x01\x00\x07",
        &[0u8; 4096],
    ];
    for content in contents {
        fs::write(&garbage, content).unwrap();
        fs::set_permissions(&garbage, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read_identity_key(&garbage),
            Err(KeyFileError::NotAKeyFile { .. })
        ));
    }
    assert!(matches!(
        read_identity_key(&dir.path().join("absent.key")),
        Err(KeyFileError::Io { .. })
    ));
    // A certificate for another device key is refused when writing.
    let other = LocalIdentity::create("bob", &mut StdRng::seed_from_u64(5), NOW).unwrap();
    assert!(matches!(
        write_device_key(&dev_path, local.device_key(), other.certificate()),
        Err(KeyFileError::Mismatch { .. })
    ));
}

#[test]
fn local_identity_save_load_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("identity");
    let mut rng = StdRng::seed_from_u64(6);
    let mut local = LocalIdentity::create("alice", &mut rng, NOW).unwrap();
    assert!(!LocalIdentity::exists(&home));
    local.save(&home).unwrap();
    assert!(LocalIdentity::exists(&home));
    assert_eq!(mode(&home), 0o700);
    assert_eq!(mode(&home.join(IDENTITY_KEY_FILE)), 0o600);
    assert_eq!(mode(&home.join(DEVICE_KEY_FILE)), 0o600);

    let loaded = LocalIdentity::load(&home).unwrap();
    assert_eq!(loaded.identity_public(), local.identity_public());
    assert_eq!(loaded.device_public(), local.device_public());
    assert_eq!(loaded.credential_identity(), local.credential_identity());
    assert_eq!(loaded.handle(), "alice");

    // Rotation: new device key and certificate, same identity.
    let old_device = local.device_public();
    local.rotate_device(&mut rng, NOW + 1000).unwrap();
    assert_ne!(local.device_public(), old_device);
    let cert = local.certificate().verify(NOW + 2000).unwrap();
    assert_eq!(cert.identity_key, loaded.identity_public());
    assert_eq!(cert.device_key, local.device_public());
    assert_eq!(cert.handle, "alice");
    local.save(&home).unwrap();
    let reloaded = LocalIdentity::load(&home).unwrap();
    assert_eq!(reloaded.device_public(), local.device_public());
    assert_eq!(reloaded.identity_public(), local.identity_public());

    // Renewal keeps the device key and moves the validity window.
    assert!(!local.needs_renewal(NOW + 2000, 1000));
    let expires = local.certificate().certificate().expires_at_ms;
    assert!(local.needs_renewal(expires - 10, 1000));
    local.renew_certificate(expires - 10).unwrap();
    assert_eq!(local.device_public(), reloaded.device_public());
    assert!(local.certificate().verify(expires + 10).is_ok());
}

#[test]
fn load_refuses_a_device_file_from_another_identity() {
    let dir = tempfile::tempdir().unwrap();
    let alice = LocalIdentity::create("alice", &mut StdRng::seed_from_u64(7), NOW).unwrap();
    let bob = LocalIdentity::create("bob", &mut StdRng::seed_from_u64(8), NOW).unwrap();
    alice.save(dir.path()).unwrap();
    write_device_key(
        &dir.path().join(DEVICE_KEY_FILE),
        bob.device_key(),
        bob.certificate(),
    )
    .unwrap();
    assert!(matches!(
        LocalIdentity::load(dir.path()),
        Err(KeyFileError::Mismatch { .. })
    ));
}

#[test]
fn secrets_never_appear_in_debug_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalIdentity::create("alice", &mut StdRng::seed_from_u64(9), NOW).unwrap();
    let secrets = [
        hex::encode(*local.identity_key().to_secret_bytes()),
        hex::encode(*local.device_key().to_secret_bytes()),
    ];
    local.save(dir.path()).unwrap();
    let path = dir.path().join(IDENTITY_KEY_FILE);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let texts = [
        format!("{local:?}"),
        format!("{:?}", local.identity_key()),
        format!("{:?}", local.device_key()),
        format!("{:?}", LocalIdentity::load(dir.path()).unwrap_err()),
        LocalIdentity::load(dir.path()).unwrap_err().to_string(),
    ];
    for text in &texts {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "secret in {text}");
            assert!(!text.contains(&secret.to_uppercase()), "secret in {text}");
        }
    }
    assert!(texts[0].contains(&local.device_public().to_string()));
    // The file itself does hold the secret (as raw bytes), or the round trip would be magic.
    let raw = fs::read(dir.path().join(IDENTITY_KEY_FILE)).unwrap();
    let seed = local.identity_key().to_secret_bytes();
    assert!(raw.windows(32).any(|w| w == &seed[..]));
}

/// Key files sealed under a key from the master key: they load with that key only, and
/// nothing in them is readable (not even the handle in the certificate).
#[test]
fn sealed_identity_files_open_with_their_key_only() {
    use identity_tofu::LocalIdentity;
    use identity_tofu::kv::MasterKey;
    use rand::SeedableRng;

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(42);
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let me = LocalIdentity::create("sealed-handle", &mut rng, 1_000).unwrap();
    let seal = MasterKey::generate(&mut rng).derive("key files");
    me.save_sealed(&keys, &seal, &mut rng).unwrap();

    let loaded = LocalIdentity::load_sealed(&keys, Some(&seal)).unwrap();
    assert_eq!(loaded.fingerprint(), me.fingerprint());
    assert_eq!(loaded.handle(), "sealed-handle");
    for entry in std::fs::read_dir(&keys).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(13).any(|w| w == b"sealed-handle"));
    }
    let other = MasterKey::generate(&mut rng).derive("key files");
    let wrong = LocalIdentity::load_sealed(&keys, Some(&other)).unwrap_err();
    assert!(wrong.to_string().contains("does not open"), "{wrong}");
    let missing = LocalIdentity::load(&keys).unwrap_err();
    assert!(missing.to_string().contains("sealed"), "{missing}");
}

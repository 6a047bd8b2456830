//! The TOFU trust store: pinning, device changes, key changes, verification, persistence.

use identity_tofu::kv::{Durability, KvStore, MemoryStore, RocksDb};
use identity_tofu::trust::{MAX_OBSERVATIONS, TrustStore};
use identity_tofu::{
    Address, DeviceKey, DevicePublicKey, IdentityKey, IdentityPublicKey, Outcome, SafetyNumber,
    TrustError, TrustLevel,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

const T0: u64 = 1_700_000_000_000;

fn keys(seed: u64) -> (IdentityPublicKey, DevicePublicKey) {
    let mut rng = StdRng::seed_from_u64(seed);
    (
        IdentityKey::generate(&mut rng).public(),
        DeviceKey::generate(&mut rng).public(),
    )
}

fn device(seed: u64) -> DevicePublicKey {
    DeviceKey::generate(&mut StdRng::seed_from_u64(seed)).public()
}

fn alice() -> Address {
    Address::Handle("alice".into())
}

#[test]
fn first_sight_pins_then_known() {
    let trust = TrustStore::new(MemoryStore::new());
    let (id, dev) = keys(1);
    assert_eq!(trust.contact(&alice()).unwrap(), None);

    let first = trust.observe(&alice(), &id, &dev, T0).unwrap();
    assert_eq!(first.outcome, Outcome::FirstSight);
    assert!(first.is_accepted());
    let contact = trust.contact(&alice()).unwrap().unwrap();
    assert_eq!(contact.identity_key, id);
    assert_eq!(contact.level, TrustLevel::Unverified);
    assert_eq!(contact.devices.len(), 1);
    assert_eq!(contact.pinned_at_ms, T0);

    let again = trust.observe(&alice(), &id, &dev, T0 + 1).unwrap();
    assert_eq!(again.outcome, Outcome::Known);
    assert_eq!(
        trust.contact(&alice()).unwrap().unwrap().last_seen_ms,
        T0 + 1
    );
}

#[test]
fn new_device_of_pinned_identity_is_accepted_and_reported() {
    let trust = TrustStore::new(MemoryStore::new());
    let (id, dev) = keys(2);
    let dev2 = device(200);
    let _ = trust.observe(&alice(), &id, &dev, T0).unwrap();
    let obs = trust.observe(&alice(), &id, &dev2, T0 + 1).unwrap();
    assert_eq!(obs.outcome, Outcome::NewDevice);
    assert!(obs.is_accepted());
    // Seen once, the second device is known afterwards, and so is the first.
    assert_eq!(
        trust.observe(&alice(), &id, &dev2, T0 + 2).unwrap().outcome,
        Outcome::Known
    );
    assert_eq!(
        trust.observe(&alice(), &id, &dev, T0 + 3).unwrap().outcome,
        Outcome::Known
    );
    let contact = trust.contact(&alice()).unwrap().unwrap();
    let mut seen: Vec<DevicePublicKey> = contact.devices.iter().map(|d| d.device_key).collect();
    seen.sort();
    let mut expected = vec![dev, dev2];
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(contact.identity_key, id);
}

#[test]
fn key_change_is_refused_until_accepted() {
    let trust = TrustStore::new(MemoryStore::new());
    let (id, dev) = keys(3);
    let (mallory, mallory_dev) = keys(4);
    let _ = trust.observe(&alice(), &id, &dev, T0).unwrap();

    let changed = trust
        .observe(&alice(), &mallory, &mallory_dev, T0 + 1)
        .unwrap();
    assert_eq!(
        changed.outcome,
        Outcome::KeyChanged {
            pinned: id,
            offered: mallory
        }
    );
    assert!(!changed.is_accepted());
    // Repeated sightings stay refused; the pin does not move.
    for i in 2..5 {
        let again = trust
            .observe(&alice(), &mallory, &mallory_dev, T0 + i)
            .unwrap();
        assert!(matches!(again.outcome, Outcome::KeyChanged { .. }));
    }
    let contact = trust.contact(&alice()).unwrap().unwrap();
    assert_eq!(contact.identity_key, id);
    let pending = contact.pending_key_change.unwrap();
    assert_eq!(pending.offered, mallory);
    assert_eq!(pending.times_refused, 4);
    // The pinned identity is still accepted meanwhile.
    assert_eq!(
        trust.observe(&alice(), &id, &dev, T0 + 10).unwrap().outcome,
        Outcome::Known
    );

    // Accepting another key than the pending one does nothing.
    let (other, _) = keys(5);
    assert!(matches!(
        trust.accept_key_change(&alice(), &other, T0 + 11),
        Err(TrustError::PendingKeyMismatch { .. })
    ));
    assert_eq!(trust.contact(&alice()).unwrap().unwrap().identity_key, id);

    let accepted = trust
        .accept_key_change(&alice(), &mallory, T0 + 12)
        .unwrap();
    assert_eq!(accepted.identity_key, mallory);
    assert_eq!(accepted.level, TrustLevel::Unverified);
    assert_eq!(accepted.pending_key_change, None);
    assert_eq!(accepted.devices.len(), 1);
    assert_eq!(accepted.devices[0].device_key, mallory_dev);
    assert_eq!(
        trust
            .observe(&alice(), &mallory, &mallory_dev, T0 + 13)
            .unwrap()
            .outcome,
        Outcome::Known
    );
    // And now the old key is the changed one.
    assert!(matches!(
        trust.observe(&alice(), &id, &dev, T0 + 14).unwrap().outcome,
        Outcome::KeyChanged { .. }
    ));
    // Nothing pending after accepting means accepting again is an error.
    let fresh = Address::Petname("fresh".into());
    let _ = trust.observe(&fresh, &id, &dev, T0).unwrap();
    assert!(matches!(
        trust.accept_key_change(&fresh, &mallory, T0),
        Err(TrustError::NoPendingKeyChange(_))
    ));
}

#[test]
fn verify_needs_the_right_safety_number() {
    let trust = TrustStore::new(MemoryStore::new());
    let (me, _) = keys(6);
    let (id, dev) = keys(7);
    let _ = trust.observe(&alice(), &id, &dev, T0).unwrap();

    let right = SafetyNumber::new(&id, &me); // order does not matter
    let wrong = SafetyNumber::new(&me, &keys(8).0);
    assert!(matches!(
        trust.verify(&alice(), &wrong.to_string(), &me, T0 + 1),
        Err(TrustError::SafetyNumberMismatch)
    ));
    assert_eq!(
        trust.contact(&alice()).unwrap().unwrap().level,
        TrustLevel::Unverified
    );
    assert!(matches!(
        trust.verify(&alice(), "12345", &me, T0 + 1),
        Err(TrustError::InvalidSafetyNumber(_))
    ));
    assert!(matches!(
        trust.verify(
            &Address::Petname("nobody".into()),
            &right.to_string(),
            &me,
            T0
        ),
        Err(TrustError::UnknownAddress(_))
    ));

    // Typed without spaces still matches.
    let verified = trust.verify(&alice(), right.digits(), &me, T0 + 2).unwrap();
    assert_eq!(verified.level, TrustLevel::Verified);
    assert_eq!(verified.verified_at_ms, Some(T0 + 2));
    // A new device keeps the verification; a later wrong number does not undo it.
    let _ = trust.observe(&alice(), &id, &device(300), T0 + 3).unwrap();
    assert!(
        trust
            .verify(&alice(), &wrong.to_string(), &me, T0 + 4)
            .is_err()
    );
    assert!(trust.contact(&alice()).unwrap().unwrap().is_verified());
}

#[test]
fn accepting_a_key_change_resets_verification() {
    let trust = TrustStore::new(MemoryStore::new());
    let (me, _) = keys(9);
    let (id, dev) = keys(10);
    let (new_id, new_dev) = keys(11);
    let _ = trust.observe(&alice(), &id, &dev, T0).unwrap();
    trust
        .verify(&alice(), &SafetyNumber::new(&me, &id).to_string(), &me, T0)
        .unwrap();
    let _ = trust.observe(&alice(), &new_id, &new_dev, T0 + 1).unwrap();
    // Still verified for the old key while the change is pending.
    assert!(trust.contact(&alice()).unwrap().unwrap().is_verified());
    let contact = trust.accept_key_change(&alice(), &new_id, T0 + 2).unwrap();
    assert_eq!(contact.level, TrustLevel::Unverified);
    assert_eq!(contact.verified_at_ms, None);
}

#[test]
fn addresses_are_pinned_separately() {
    let trust = TrustStore::new(MemoryStore::new());
    let (id, dev) = keys(12);
    let (other, other_dev) = keys(13);
    let petname = Address::Petname("Alice from work".into());
    let dns = Address::DnsName("alice.example.org".into());
    let _ = trust.observe(&alice(), &id, &dev, T0).unwrap();
    let _ = trust.observe(&petname, &id, &dev, T0).unwrap();
    assert_eq!(
        trust.observe(&dns, &other, &other_dev, T0).unwrap().outcome,
        Outcome::FirstSight
    );
    // DNS names are case-insensitive: the same pin.
    assert_eq!(
        trust
            .observe(
                &Address::DnsName("ALICE.example.org.".into()),
                &other,
                &other_dev,
                T0
            )
            .unwrap()
            .outcome,
        Outcome::Known
    );
    assert_eq!(trust.contacts().unwrap().len(), 3);
    assert_eq!(trust.contacts_with_identity(&id).unwrap().len(), 2);
}

#[test]
fn observation_log_is_recorded_and_bounded() {
    let trust = TrustStore::new(MemoryStore::new());
    let (id, dev) = keys(14);
    let (mallory, mallory_dev) = keys(15);
    let _ = trust.observe(&alice(), &id, &dev, T0).unwrap();
    let _ = trust.observe(&alice(), &id, &dev, T0 + 1).unwrap();
    let _ = trust
        .observe(&alice(), &mallory, &mallory_dev, T0 + 2)
        .unwrap();
    let log = trust.observations(&alice()).unwrap();
    let outcomes: Vec<&Outcome> = log.iter().map(|o| &o.outcome).collect();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0], &Outcome::FirstSight);
    assert_eq!(outcomes[1], &Outcome::Known);
    assert!(matches!(outcomes[2], Outcome::KeyChanged { .. }));
    assert_eq!(log[2].at_ms, T0 + 2);
    assert_eq!(log[2].identity_key, mallory);

    for i in 0..(2 * MAX_OBSERVATIONS) {
        let _ = trust.observe(&alice(), &id, &dev, T0 + 10 + i).unwrap();
    }
    let log = trust.observations(&alice()).unwrap();
    assert_eq!(log.len() as u64, MAX_OBSERVATIONS);
    // Oldest first, and the newest is the last one made.
    assert_eq!(
        log.last().unwrap().at_ms,
        T0 + 10 + 2 * MAX_OBSERVATIONS - 1
    );
    assert!(log.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    // Other addresses' logs are separate.
    assert!(
        trust
            .observations(&Address::Handle("alic".into()))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn forget_removes_pin_and_log_atomically() {
    let store = MemoryStore::new();
    let trust = TrustStore::new(store.clone());
    let (id, dev) = keys(16);
    let bob = Address::Handle("bob".into());
    let _ = trust.observe(&alice(), &id, &dev, T0).unwrap();
    let _ = trust.observe(&bob, &id, &dev, T0).unwrap();
    assert!(trust.forget(&alice()).unwrap());
    assert!(!trust.forget(&alice()).unwrap());
    assert_eq!(trust.contact(&alice()).unwrap(), None);
    assert!(trust.observations(&alice()).unwrap().is_empty());
    // Only bob's contact and his one observation are left.
    assert_eq!(store.len(), 2);
    assert_eq!(
        trust
            .observe(&alice(), &keys(17).0, &dev, T0)
            .unwrap()
            .outcome,
        Outcome::FirstSight
    );
}

#[test]
fn invalid_address_is_an_error() {
    let trust = TrustStore::new(MemoryStore::new());
    let (id, dev) = keys(18);
    assert!(matches!(
        trust.observe(&Address::Petname(String::new()), &id, &dev, T0),
        Err(TrustError::InvalidAddress(_))
    ));
    assert!(matches!(
        trust.observe(&Address::Handle("bad\u{0}handle".into()), &id, &dev, T0),
        Err(TrustError::InvalidAddress(_))
    ));
}

#[test]
fn corrupted_record_is_an_error_not_a_panic() {
    let store = MemoryStore::new();
    let trust = TrustStore::new(store.clone());
    let (id, dev) = keys(19);
    let _ = trust.observe(&alice(), &id, &dev, T0).unwrap();
    let contact_keys: Vec<Vec<u8>> = store
        .scan_prefix(b"tofu/c")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(contact_keys.len(), 1);
    let garbage: [&[u8]; 4] = [b"", b"\xff\xff\xff\xff garbage", &[1u8; 3], &[0u8; 100_000]];
    for value in garbage {
        store.put(&contact_keys[0], value).unwrap();
        assert!(matches!(
            trust.contact(&alice()),
            Err(TrustError::Corrupt { .. })
        ));
        assert!(matches!(
            trust.observe(&alice(), &id, &dev, T0 + 1),
            Err(TrustError::Corrupt { .. })
        ));
        assert!(matches!(trust.contacts(), Err(TrustError::Corrupt { .. })));
        assert!(matches!(
            trust.verify(&alice(), &SafetyNumber::new(&id, &id).to_string(), &id, T0),
            Err(TrustError::Corrupt { .. })
        ));
        // The refused operations did not overwrite the garbage.
        assert_eq!(store.get(&contact_keys[0]).unwrap().unwrap(), value);
    }
    // Corrupt observation records too.
    let obs_keys: Vec<Vec<u8>> = store
        .scan_prefix(b"tofu/o")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    store.put(&obs_keys[0], b"not an observation").unwrap();
    assert!(matches!(
        trust.observations(&alice()),
        Err(TrustError::Corrupt { .. })
    ));
    // Forgetting a corrupt contact still works, and the address can be pinned afresh.
    assert!(trust.forget(&alice()).unwrap());
    assert_eq!(
        trust.observe(&alice(), &id, &dev, T0 + 2).unwrap().outcome,
        Outcome::FirstSight
    );
}

#[test]
fn custom_prefix_keeps_stores_apart() {
    let store = MemoryStore::new();
    let a = TrustStore::with_prefix(store.clone(), b"a/");
    let b = TrustStore::with_prefix(store.clone(), b"b/");
    let (id, dev) = keys(20);
    let _ = a.observe(&alice(), &id, &dev, T0).unwrap();
    assert_eq!(b.contact(&alice()).unwrap(), None);
    assert!(store.scan_prefix(b"a/").unwrap().len() == 2);
}

#[test]
fn survives_close_and_reopen_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let (me, _) = keys(21);
    let (id, dev) = keys(22);
    let (mallory, mallory_dev) = keys(23);
    {
        let db = RocksDb::open(dir.path(), &["identity", "mls"], Durability::Synced).unwrap();
        let trust = TrustStore::new(db.store("identity").unwrap());
        let _ = trust.observe(&alice(), &id, &dev, T0).unwrap();
        let _ = trust.observe(&alice(), &id, &device(400), T0 + 1).unwrap();
        trust
            .verify(
                &alice(),
                &SafetyNumber::new(&me, &id).to_string(),
                &me,
                T0 + 2,
            )
            .unwrap();
        let _ = trust
            .observe(&alice(), &mallory, &mallory_dev, T0 + 3)
            .unwrap();
        // Nothing in the other column family.
        assert!(
            db.store("mls")
                .unwrap()
                .scan_prefix(b"")
                .unwrap()
                .is_empty()
        );
    }
    let db = RocksDb::open(dir.path(), &["identity", "mls"], Durability::Synced).unwrap();
    let trust = TrustStore::new(db.store("identity").unwrap());
    let contact = trust.contact(&alice()).unwrap().unwrap();
    assert_eq!(contact.identity_key, id);
    assert_eq!(contact.level, TrustLevel::Verified);
    assert_eq!(contact.devices.len(), 2);
    assert_eq!(
        contact.pending_key_change.as_ref().unwrap().offered,
        mallory
    );
    assert_eq!(trust.observations(&alice()).unwrap().len(), 3);
    // The decisions continue where they were.
    assert_eq!(
        trust.observe(&alice(), &id, &dev, T0 + 4).unwrap().outcome,
        Outcome::Known
    );
    assert!(matches!(
        trust
            .observe(&alice(), &mallory, &mallory_dev, T0 + 5)
            .unwrap()
            .outcome,
        Outcome::KeyChanged { .. }
    ));
    trust.accept_key_change(&alice(), &mallory, T0 + 6).unwrap();
    drop(trust);
    drop(db);
    let db = RocksDb::open(dir.path(), &["identity", "mls"], Durability::Synced).unwrap();
    let trust = TrustStore::new(db.store("identity").unwrap());
    assert_eq!(
        trust.contact(&alice()).unwrap().unwrap().identity_key,
        mallory
    );
}

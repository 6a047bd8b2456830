use std::sync::Arc;

use rand::SeedableRng;

use super::*;
use crate::kv::MemoryStore;

const GROUP_A: &[u8; 8] = b"GROUP-AA";
const GROUP_B: &[u8; 8] = b"GROUP-BB";

fn schema() -> KeySchema {
    KeySchema::new(vec![
        KeyRule::starting_with(b"g")
            .secret(8)
            .literal(b"B")
            .plain(1)
            .namespace()
            .plain_rest(),
        KeyRule::starting_with(b"g").secret(8).plain_rest(),
        KeyRule::starting_with(b"c").secret_rest(),
        KeyRule::starting_with(b"o").plain_rest(),
    ])
}

fn master(seed: u64) -> MasterKey {
    MasterKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

fn sealed(inner: Arc<MemoryStore>, key: &MasterKey) -> SealedKv<Arc<MemoryStore>> {
    SealedKv::open(inner, "test", key, schema(), [7; 32]).unwrap()
}

fn key(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn raw_contains(inner: &MemoryStore, needle: &[u8]) -> bool {
    inner.scan_prefix(b"").unwrap().iter().any(|(k, v)| {
        [k, v]
            .iter()
            .any(|b| b.windows(needle.len()).any(|w| w == needle))
    })
}

#[test]
fn values_round_trip_and_scans_keep_plain_key_order() {
    let inner = Arc::new(MemoryStore::new());
    let kv = sealed(inner.clone(), &master(1));
    kv.put(&key(&[b"g", GROUP_A, b"A"]), b"pointer").unwrap();
    for i in [3u8, 1, 2] {
        kv.put(&key(&[b"g", GROUP_A, b"B", &[i], b"item"]), &[i; 3])
            .unwrap();
    }
    kv.put(&key(&[b"g", GROUP_B, b"A"]), b"other").unwrap();
    kv.put(b"calice", b"contact").unwrap();
    kv.put(b"o\x00\x02", b"two").unwrap();
    kv.put(b"o\x00\x01", b"one").unwrap();

    assert_eq!(
        kv.get(&key(&[b"g", GROUP_A, b"A"])).unwrap().as_deref(),
        Some(&b"pointer"[..])
    );
    assert_eq!(kv.get(b"cbob").unwrap(), None);
    let branches = kv.scan_prefix(&key(&[b"g", GROUP_A, b"B"])).unwrap();
    let expected: Vec<KvPair> = [1u8, 2, 3]
        .iter()
        .map(|&i| (key(&[b"g", GROUP_A, b"B", &[i], b"item"]), vec![i; 3]))
        .collect();
    assert_eq!(branches, expected);
    assert_eq!(kv.scan_prefix(&key(&[b"g", GROUP_A])).unwrap().len(), 4);
    assert_eq!(kv.scan_prefix(b"g").unwrap().len(), 5);
    let outbox: Vec<_> = kv
        .scan_prefix(b"o")
        .unwrap()
        .into_iter()
        .map(|p| p.1)
        .collect();
    assert_eq!(outbox, vec![b"one".to_vec(), b"two".to_vec()]);
    let everything = kv.scan_prefix(b"").unwrap();
    assert!(everything.windows(2).all(|w| w[0].0 < w[1].0));

    kv.delete(b"calice").unwrap();
    assert_eq!(kv.get(b"calice").unwrap(), None);
}

#[test]
fn nothing_stored_reveals_keys_or_values() {
    let inner = Arc::new(MemoryStore::new());
    let kv = sealed(inner.clone(), &master(1));
    kv.put(&key(&[b"g", GROUP_A, b"B\x01label"]), b"message text one")
        .unwrap();
    kv.put(b"calice@example", b"message text two").unwrap();
    for needle in [&GROUP_A[..], b"alice@example", b"message text"] {
        assert!(
            !raw_contains(&inner, needle),
            "{needle:?} is stored readable"
        );
    }
    // The probe works: the same writes to the plain store are found.
    inner.put(b"calice@example", b"message text").unwrap();
    assert!(raw_contains(&inner, b"alice@example"));
}

#[test]
fn a_wrong_master_key_or_an_unsealed_store_is_refused_unchanged() {
    let inner = Arc::new(MemoryStore::new());
    sealed(inner.clone(), &master(1)).put(b"cx", b"y").unwrap();
    let before = inner.scan_prefix(b"").unwrap();
    let wrong = SealedKv::open(inner.clone(), "test", &master(2), schema(), [0; 32]);
    assert!(matches!(wrong, Err(SealedOpenError::WrongKey(_))));
    // Another column's keys do not open it either.
    let other = SealedKv::open(inner.clone(), "other", &master(1), schema(), [0; 32]);
    assert!(matches!(other, Err(SealedOpenError::WrongKey(_))));
    assert_eq!(inner.scan_prefix(b"").unwrap(), before);

    let plain = Arc::new(MemoryStore::new());
    plain.put(b"calice", b"old format").unwrap();
    let old = SealedKv::open(plain.clone(), "test", &master(1), schema(), [0; 32]);
    assert!(matches!(old, Err(SealedOpenError::Unsealed(_))));
    assert_eq!(plain.scan_prefix(b"").unwrap().len(), 1);
}

#[test]
fn keys_outside_the_layout_are_refused_not_stored() {
    let inner = Arc::new(MemoryStore::new());
    let kv = sealed(inner.clone(), &master(1));
    let stored = inner.scan_prefix(b"").unwrap();
    assert!(matches!(kv.put(b"zzz", b"v"), Err(KvError::Sealed(_))));
    assert!(matches!(kv.get(b"gshort"), Err(KvError::Sealed(_))));
    assert!(matches!(kv.scan_prefix(b"gGRO"), Err(KvError::Sealed(_))));
    assert_eq!(inner.scan_prefix(b"").unwrap(), stored);
}

#[test]
fn a_value_moved_to_another_key_does_not_open() {
    let inner = Arc::new(MemoryStore::new());
    let kv = sealed(inner.clone(), &master(1));
    kv.put(b"o1", b"first").unwrap();
    kv.put(b"o2", b"second").unwrap();
    let first = inner.get(b"vo1").unwrap().unwrap();
    inner.put(b"vo2", &first).unwrap();
    assert!(matches!(kv.get(b"o2"), Err(KvError::Sealed(_))));
    assert_eq!(kv.get(b"o1").unwrap().as_deref(), Some(&b"first"[..]));
}

/// Crypto-shredding: the raw bytes of a pruned namespace, kept from before the prune (as a
/// table file not yet compacted would keep them), no longer open with anything the store holds.
#[test]
fn deleting_a_namespace_destroys_its_key() {
    let inner = Arc::new(MemoryStore::new());
    let master = master(1);
    let kv = sealed(inner.clone(), &master);
    let branch = |b: u8| key(&[b"g", GROUP_A, b"B", &[b]]);
    kv.put(&[branch(1), b"secrets".to_vec()].concat(), b"epoch one")
        .unwrap();
    kv.put(&[branch(2), b"secrets".to_vec()].concat(), b"epoch two")
        .unwrap();
    let before_prune = inner.scan_prefix(b"v").unwrap();
    assert_eq!(
        inner.scan_prefix(b"k").unwrap().len(),
        2,
        "one data key per branch"
    );

    let mut prune = WriteBatch::default();
    prune.delete_prefix(&branch(1));
    kv.write(prune).unwrap();
    assert_eq!(inner.scan_prefix(b"k").unwrap().len(), 1);

    // Put the pruned ciphertexts back, as if compaction had not reached them yet; a fresh
    // open (no cached key) must not read them, while the surviving branch still reads.
    for (k, v) in &before_prune {
        inner.put(k, v).unwrap();
    }
    let reopened = SealedKv::open(inner.clone(), "test", &master, schema(), [8; 32]).unwrap();
    assert!(matches!(
        reopened.get(&[branch(1), b"secrets".to_vec()].concat()),
        Err(KvError::Sealed(_))
    ));
    assert_eq!(
        reopened
            .get(&[branch(2), b"secrets".to_vec()].concat())
            .unwrap()
            .as_deref(),
        Some(&b"epoch two"[..])
    );
}

#[test]
fn a_namespace_deleted_and_refilled_in_one_batch_gets_a_new_key() {
    let inner = Arc::new(MemoryStore::new());
    let master = master(1);
    let kv = sealed(inner.clone(), &master);
    let item = key(&[b"g", GROUP_A, b"B\x01item"]);
    kv.put(&item, b"old").unwrap();
    let old_key = inner.scan_prefix(b"k").unwrap();

    // Not cached on this open: the key is read from the store, then destroyed by the batch.
    let kv = SealedKv::open(inner.clone(), "test", &master, schema(), [9; 32]).unwrap();
    let mut batch = WriteBatch::default();
    batch.delete_prefix(&key(&[b"g", GROUP_A]));
    batch.put(&item, b"new");
    kv.write(batch).unwrap();
    assert_eq!(kv.get(&item).unwrap().as_deref(), Some(&b"new"[..]));
    let new_key = inner.scan_prefix(b"k").unwrap();
    assert_eq!(new_key.len(), 1);
    assert_ne!(new_key, old_key);
    let reopened = SealedKv::open(inner.clone(), "test", &master, schema(), [10; 32]).unwrap();
    assert_eq!(reopened.get(&item).unwrap().as_deref(), Some(&b"new"[..]));
}

//! A damaged store gives error values, never a panic, and a failed read changes nothing.

mod support;

use ds_p2p::storage::kv::KvStore;
use openmls::prelude::MlsGroup;
use support::*;

fn overwrite_matching(kv: &dyn KvStore, marker: &[u8], garbage: &[u8]) -> usize {
    let mut hit = 0;
    for (key, _) in kv.scan_prefix(b"").unwrap() {
        if key.windows(marker.len()).any(|w| w == marker) {
            kv.put(&key, garbage).unwrap();
            hit += 1;
        }
    }
    hit
}

#[test]
fn corrupted_group_values_give_errors_not_panics() {
    for (label, garbage) in [
        (&b"tree\0"[..], &b"\xff\x00not json"[..]),
        (b"context\0", b"{\"truncated\": "),
        (b"epoch_secrets\0", b"[]"),
        (b"message_secrets\0", b""),
        (b"group_state\0", b"\"NoSuchState\""),
    ] {
        let kv = memory_kv();
        let mut alice = Client::new("alice", kv.clone());
        let mut bob = Client::new("bob", memory_kv());
        alice.create_group();
        let (_, welcome) = alice.add(&[bob.key_package()]);
        bob.join(&welcome);
        let id = alice.group_id();
        let label_text = String::from_utf8_lossy(label).to_string();
        assert_eq!(overwrite_matching(&*kv, label, garbage), 1, "{label_text}");
        let snapshot = kv.scan_prefix(b"").unwrap();

        let loaded = MlsGroup::load(alice.provider.mls_storage(), &id);
        assert!(
            loaded.is_err(),
            "loading with a corrupt {label_text} succeeded"
        );
        assert_eq!(
            kv.scan_prefix(b"").unwrap(),
            snapshot,
            "a failed load changed the store"
        );
    }
}

#[test]
fn corrupted_branch_pointer_gives_an_error() {
    let kv = memory_kv();
    let mut alice = Client::new("alice", kv.clone());
    alice.create_group();
    let id = alice.group_id();
    let storage = alice.provider.mls_storage();
    let active_key = kv
        .scan_prefix(b"g")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| k.len() == 34 && k[33] == b'A')
        .expect("an active-branch pointer");
    kv.put(&active_key, b"\x01\x02\x03").unwrap();
    assert!(storage.active_branch(&id).is_err());
    assert!(MlsGroup::load(alice.provider.mls_storage(), &id).is_err());
}

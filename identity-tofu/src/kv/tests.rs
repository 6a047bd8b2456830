//! Properties every `KvStore` must have, checked on both implementations.

use super::*;

fn rocks(dir: &tempfile::TempDir) -> RocksStore {
    RocksDb::open(dir.path(), &["a", "b"], Durability::ProcessCrashSafe)
        .unwrap()
        .store("a")
        .unwrap()
}

fn each_store(check: impl Fn(&dyn KvStore)) {
    check(&MemoryStore::new());
    let dir = tempfile::tempdir().unwrap();
    check(&rocks(&dir));
}

#[test]
fn put_get_delete_round_trip() {
    each_store(|s| {
        assert_eq!(s.get(b"k").unwrap(), None);
        s.put(b"k", b"v1").unwrap();
        assert_eq!(s.get(b"k").unwrap(), Some(b"v1".to_vec()));
        s.put(b"k", b"v2").unwrap();
        assert_eq!(s.get(b"k").unwrap(), Some(b"v2".to_vec()));
        s.delete(b"k").unwrap();
        assert_eq!(s.get(b"k").unwrap(), None);
        s.delete(b"absent").unwrap();
    });
}

#[test]
fn prefix_scan_is_ordered_and_bounded() {
    each_store(|s| {
        for key in [
            &b"p/2"[..],
            b"p/1",
            b"p\xff",
            b"q",
            b"p",
            b"o/9",
            b"p/\xff\xff",
        ] {
            s.put(key, key).unwrap();
        }
        let keys: Vec<Vec<u8>> = s
            .scan_prefix(b"p/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            vec![b"p/1".to_vec(), b"p/2".to_vec(), b"p/\xff\xff".to_vec()]
        );
        let all_ff: Vec<Vec<u8>> = s
            .scan_prefix(b"\xff")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(all_ff.is_empty());
        assert_eq!(s.scan_prefix(b"").unwrap().len(), 7);
    });
}

#[test]
fn batch_applies_in_order_and_deletes_prefixes() {
    each_store(|s| {
        s.put(b"g/1/x", b"old").unwrap();
        s.put(b"g/2/x", b"keep").unwrap();
        let mut batch = WriteBatch::default();
        batch.put(b"g/1/y", b"y");
        batch.delete_prefix(b"g/1/");
        batch.put(b"g/1/z", b"z");
        batch.delete(b"g/2/absent");
        s.write(batch).unwrap();
        assert_eq!(s.get(b"g/1/x").unwrap(), None);
        assert_eq!(s.get(b"g/1/y").unwrap(), None);
        assert_eq!(s.get(b"g/1/z").unwrap(), Some(b"z".to_vec()));
        assert_eq!(s.get(b"g/2/x").unwrap(), Some(b"keep".to_vec()));
    });
}

#[test]
fn delete_prefix_without_upper_bound() {
    each_store(|s| {
        s.put(b"\xff\xff", b"1").unwrap();
        s.put(b"\xff\xff\x01", b"2").unwrap();
        s.put(b"\xfe", b"3").unwrap();
        let mut batch = WriteBatch::default();
        batch.delete_prefix(b"\xff\xff");
        s.write(batch).unwrap();
        assert_eq!(
            s.scan_prefix(b"").unwrap(),
            vec![(b"\xfe".to_vec(), b"3".to_vec())]
        );
    });
}

#[test]
fn column_families_are_separate_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = RocksDb::open(dir.path(), &["a", "b"], Durability::Synced).unwrap();
        db.store("a").unwrap().put(b"k", b"in a").unwrap();
        db.store("b").unwrap().put(b"k", b"in b").unwrap();
        assert!(matches!(
            db.store("c"),
            Err(KvError::UnknownColumnFamily(_))
        ));
    }
    let db = RocksDb::open(dir.path(), &["a", "b"], Durability::Synced).unwrap();
    assert_eq!(
        db.store("a").unwrap().get(b"k").unwrap(),
        Some(b"in a".to_vec())
    );
    assert_eq!(
        db.store("b").unwrap().get(b"k").unwrap(),
        Some(b"in b".to_vec())
    );
}

/// Every byte of every regular file under `dir` (table files, write-ahead logs, manifests).
pub(crate) fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                return true;
            }
        }
    }
    false
}

#[test]
fn scrub_removes_deleted_bytes_from_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = RocksDb::open(dir.path(), &["a", "b"], Durability::Synced).unwrap();
    let a = db.store("a").unwrap();
    let b = db.store("b").unwrap();
    let secret = b"SECRET-0123456789-the-doomed-value";
    let kept = b"KEPT-9876543210-the-surviving-value";
    a.put(b"doomed/1", secret).unwrap();
    a.put(b"kept/1", kept).unwrap();
    b.put(b"other", b"unrelated").unwrap();
    // Some of it in a table file, some only in the write-ahead log.
    db.flush_all().unwrap();
    a.put(b"doomed/2", secret).unwrap();
    assert!(
        files_contain(dir.path(), secret),
        "probe must be visible before the scrub"
    );

    let mut batch = WriteBatch::default();
    batch.delete_prefix(b"doomed/");
    a.write(batch).unwrap();
    a.scrub_prefix(b"doomed/").unwrap();

    assert!(
        !files_contain(dir.path(), secret),
        "deleted bytes still on disk"
    );
    assert!(files_contain(dir.path(), kept));
    assert_eq!(a.get(b"kept/1").unwrap(), Some(kept.to_vec()));
    assert_eq!(b.get(b"other").unwrap(), Some(b"unrelated".to_vec()));
}

#[test]
fn group_commit_writes_are_visible_at_once_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = RocksDb::open(dir.path(), &["a"], Durability::GroupCommit).unwrap();
        let store = db.store("a").unwrap();
        store.put(b"before sync", b"1").unwrap();
        // Readable before the sync: the round's later steps see the earlier ones.
        assert_eq!(store.get(b"before sync").unwrap(), Some(b"1".to_vec()));
        db.sync().unwrap();
        store.put(b"after sync", b"2").unwrap();
        // Dropped without a sync: the write-ahead log still holds it (a process crash keeps
        // it; only a power cut could take it).
    }
    let db = RocksDb::open(dir.path(), &["a"], Durability::GroupCommit).unwrap();
    let store = db.store("a").unwrap();
    assert_eq!(store.get(b"before sync").unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.get(b"after sync").unwrap(), Some(b"2".to_vec()));
}

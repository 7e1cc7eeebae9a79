//! Unit tests of the store on a local directory (S3 is tested in tests/store_s3.rs).

use std::fs;

use super::*;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

#[test]
fn blobs_round_trip_and_corruption_is_detected() {
    let (_dir, store) = open();
    let digest = store.put_blob(b"hello world").unwrap();
    assert_eq!(digest, sha256_hex(b"hello world"));
    assert_eq!(store.get_blob(&digest).unwrap(), b"hello world");

    // Replace the blob with a valid zstd frame of other content.
    let other = zstd::bulk::compress(b"hello w0rld", 3).unwrap();
    fs::write(store.local().blob_path(&digest), other).unwrap();
    assert!(matches!(
        store.get_blob(&digest),
        Err(StoreError::Corrupt { .. })
    ));
    // Found corrupt: counted as absent, so the next put writes it again.
    assert!(!store.has_blob(&digest).unwrap());
    store.put_blob(b"hello world").unwrap();
    assert_eq!(store.get_blob(&digest).unwrap(), b"hello world");
    assert!(matches!(
        store.get_blob(&sha256_hex(b"nope")),
        Err(StoreError::Missing(_))
    ));
    assert!(matches!(
        store.get_blob("../../etc/passwd"),
        Err(StoreError::BadDigest(_))
    ));
}

#[test]
fn garbage_is_corrupt_not_an_io_error() {
    let (_dir, store) = open();
    let digest = store.put_blob(&vec![7u8; 100_000]).unwrap();
    let path = store.local().blob_path(&digest);
    let mut bytes = fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        store.get_blob(&digest),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn files_stream_into_blobs_and_back() {
    let (dir, store) = open();
    let src = dir.path().join("src.bin");
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(&src, &content).unwrap();
    let (digest, size) = store.put_file(&src).unwrap();
    assert_eq!(size, content.len() as u64);
    assert_eq!(digest, sha256_hex(&content));
    let out = dir.path().join("out/copy.bin");
    store.get_blob_to_file(&digest, &out).unwrap();
    assert_eq!(fs::read(&out).unwrap(), content);
}

#[test]
fn refs_point_at_digests_and_reject_traversal() {
    let (_dir, store) = open();
    store.set_ref("bundles/base", "abc").unwrap();
    assert_eq!(
        store.get_ref("bundles/base").unwrap().as_deref(),
        Some("abc")
    );
    assert_eq!(
        store.list_refs("bundles").unwrap(),
        vec!["base".to_string()]
    );
    assert!(store.set_ref("../escape", "x").is_err());
    assert!(store.get_ref("bundles/missing").unwrap().is_none());

    assert!(store.create_ref_if_absent("cache/p/k", "one").unwrap());
    assert!(!store.create_ref_if_absent("cache/p/k", "two").unwrap());
    assert_eq!(store.get_ref("cache/p/k").unwrap().as_deref(), Some("one"));
    let all = store.list_refs_recursive("").unwrap();
    let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["bundles/base", "cache/p/k"]);
    store.delete_ref("cache/p/k").unwrap();
    assert!(store.get_ref("cache/p/k").unwrap().is_none());
}

#[test]
fn counters_count_under_concurrency() {
    let (_dir, store) = open();
    let mut handles = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        handles.push(std::thread::spawn(move || {
            (0..25)
                .map(|_| store.next_counter("proj").unwrap())
                .collect::<Vec<_>>()
        }));
    }
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, (1..=200).collect::<Vec<_>>());
}

#[test]
fn specs_parse() {
    assert_eq!(
        StoreSpec::parse(OsStr::new("s3://bucket/a/b/")).unwrap(),
        StoreSpec::S3 {
            bucket: "bucket".into(),
            prefix: "a/b".into()
        }
    );
    assert_eq!(
        StoreSpec::parse(OsStr::new("s3://bucket")).unwrap(),
        StoreSpec::S3 {
            bucket: "bucket".into(),
            prefix: String::new()
        }
    );
    assert!(StoreSpec::parse(OsStr::new("s3://")).is_err());
    assert!(StoreSpec::parse(OsStr::new("gs://x")).is_err());
    assert!(StoreSpec::parse(OsStr::new("s3://b/../x")).is_err());
    assert_eq!(
        StoreSpec::parse(OsStr::new("/tmp/x")).unwrap(),
        StoreSpec::Local("/tmp/x".into())
    );
}

#[test]
fn blob_keys_round_trip() {
    let d = sha256_hex(b"x");
    assert_eq!(digest_of_blob_key(&blob_key(&d)), Some(d.as_str()));
    assert_eq!(digest_of_blob_key("blobs/00/nope.zst"), None);
    assert_eq!(digest_of_blob_key(&format!("blobs/zz/{d}.zst")), None);
}

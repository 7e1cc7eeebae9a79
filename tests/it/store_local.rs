//! The store on a local directory: trees saved and restored, corruption caught by
//! `store verify` and never restored, concurrent saves, a save killed mid-way, gc.

use crate::store_common as common;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use common::{
    Rng, blob_holding, content, flip_byte, save_concurrently, small_tree, snapshot, wasmbuild,
};
use wasmbuild::digest::sha256_hex;
use wasmbuild::store::{
    EntryKind, GcOptions, Selection, Store, StoreError, Tree, TreeEntry, blob_key,
};

fn open(dir: &Path) -> Store {
    Store::open(dir).unwrap()
}

#[test]
fn trees_round_trip_with_modes_symlinks_and_empty_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&tmp.path().join("store"));
    let src = tmp.path().join("src");
    small_tree(&src, 1);
    let (digest, stats) = store.save_tree(&src, &Selection::all()).unwrap();
    assert_eq!(stats.files, 36);
    assert_eq!(stats.symlinks, 1);
    // One pack for the small files (two of them with the same content, kept once), and a
    // blob for the large one.
    assert_eq!((stats.packed, stats.packs), (35, 1));
    assert_eq!(stats.uploaded_blobs, 2);
    let (pack, packed) = blob_holding(&store, &digest, "same-a.txt");
    assert_eq!(packed.len(), 35);
    let tree = store.get_tree(&digest).unwrap();
    let offset = |path: &str| tree.entries.iter().find(|e| e.path == path).unwrap().offset;
    assert_eq!(offset("same-a.txt"), offset("same-b.txt"));
    let pack_size = store.get_blob(&pack).unwrap().len() as u64;
    let files_size: u64 = tree
        .entries
        .iter()
        .filter(|e| e.pack.is_some())
        .map(|e| e.size)
        .sum();
    assert_eq!(
        pack_size,
        files_size - 400 * "identical content\n".len() as u64
    );

    let dest = tmp.path().join("dest");
    let restored = store.restore_tree(&digest, &dest).unwrap();
    assert_eq!(restored.written_files, 36);
    assert!(restored.corrupt.is_empty() && restored.refused.is_empty());
    assert_eq!(snapshot(&src), snapshot(&dest));

    // Saving the same content again gives the same digest and uploads nothing.
    let (again, stats) = store.save_tree(&src, &Selection::all()).unwrap();
    assert_eq!(again, digest);
    assert_eq!(stats.uploaded_blobs, 0);
    // The restored copy hashes to the same tree too (no mtimes in trees).
    let (copy, _) = store.save_tree(&dest, &Selection::all()).unwrap();
    assert_eq!(copy, digest);

    // Once the files are clearly older than a save, the index vouches for them: the next
    // save reads nothing, the pack included.
    std::thread::sleep(Duration::from_millis(100));
    store.save_tree(&src, &Selection::all()).unwrap();
    let (again, stats) = store.save_tree(&src, &Selection::all()).unwrap();
    assert_eq!(again, digest);
    assert_eq!((stats.hashed_bytes, stats.uploaded_blobs), (0, 0));
    assert_eq!(stats.skipped, 36);
}

#[test]
fn selections_save_only_matching_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&tmp.path().join("store"));
    let src = tmp.path().join("src");
    small_tree(&src, 2);
    let selection = Selection::globs(["d1/**/*", "bin"]).unwrap();
    let (digest, _) = store.save_tree(&src, &selection).unwrap();
    let tree = store.get_tree(&digest).unwrap();
    assert!(!tree.entries.is_empty());
    for entry in &tree.entries {
        assert!(
            entry.path.starts_with("d1/") || entry.path == "bin" || entry.path.starts_with("bin/"),
            "{} was not selected",
            entry.path
        );
    }
    assert!(
        tree.entries
            .iter()
            .any(|e| e.path == "bin/tool.sh" && e.mode == 0o755)
    );
}

#[test]
fn restore_writes_only_files_that_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&tmp.path().join("store"));
    let src = tmp.path().join("src");
    small_tree(&src, 3);
    let (digest, _) = store.save_tree(&src, &Selection::all()).unwrap();
    let dest = tmp.path().join("dest");
    store.restore_tree(&digest, &dest).unwrap();

    let stamps = |dir: &Path| -> HashMap<String, (u64, i64, i64)> {
        walkdir::WalkDir::new(dir)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let m = e.metadata().unwrap();
                (
                    e.path().strip_prefix(dir).unwrap().display().to_string(),
                    (m.ino(), m.mtime(), m.mtime_nsec()),
                )
            })
            .collect()
    };
    let before = stamps(&dest);
    std::thread::sleep(Duration::from_millis(20));
    // Change one file (same size), delete one, change the mode of one.
    let changed = "d0/e0/f0.dat";
    let mut bytes = fs::read(dest.join(changed)).unwrap();
    bytes[0] ^= 1;
    fs::write(dest.join(changed), &bytes).unwrap();
    fs::remove_file(dest.join("same-a.txt")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dest.join("bin/tool.sh"), fs::Permissions::from_mode(0o600)).unwrap();

    let stats = store.restore_tree(&digest, &dest).unwrap();
    assert_eq!(stats.written_files, 2, "{stats:?}");
    assert_eq!(stats.unchanged_files, 34);
    let after = stamps(&dest);
    for (path, stamp) in &before {
        if path == "same-a.txt" {
            // Deleted, then written again (its freed inode number may well come back).
            assert!(after.contains_key(path));
        } else if path == changed {
            assert_ne!(after[path].0, stamp.0, "{path} should have been rewritten");
        } else {
            assert_eq!(&after[path], stamp, "{path} should not have been touched");
        }
    }
    assert_eq!(snapshot(&src), snapshot(&dest));

    // A third restore finds everything in place (the index vouches, no hashing needed).
    let stats = store.restore_tree(&digest, &dest).unwrap();
    assert_eq!(stats.written_files, 0);
    assert_eq!(stats.unchanged_files, 36);
}

#[test]
fn packed_files_are_written_only_when_their_bytes_match_the_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&tmp.path().join("store"));
    let pack = store.put_blob(b"first|second").unwrap();
    let packed = |path: &str, content: &[u8], offset: u64| TreeEntry {
        path: path.into(),
        kind: EntryKind::File,
        mode: 0o644,
        size: content.len() as u64,
        digest: Some(sha256_hex(content)),
        target: None,
        pack: Some(pack.clone()),
        offset,
    };
    let tree = Tree::new(vec![
        packed("first", b"first", 0),
        packed("second", b"second", 6),
        // A manifest naming the wrong place, or a place past the pack's end.
        packed("shifted", b"second", 5),
        packed("beyond", b"second", 10),
        packed("huge", b"second", u64::MAX - 2),
    ]);
    let digest = store.put_tree(&tree).unwrap();
    let dest = tmp.path().join("dest");
    let stats = store.restore_tree(&digest, &dest).unwrap();
    assert_eq!(fs::read(dest.join("first")).unwrap(), b"first");
    assert_eq!(fs::read(dest.join("second")).unwrap(), b"second");
    assert_eq!(stats.written_files, 2);
    assert_eq!(stats.corrupt.len(), 3, "{:?}", stats.corrupt);
    for path in ["shifted", "beyond", "huge"] {
        assert!(!dest.join(path).exists(), "{path}");
    }
}

#[test]
fn symlinks_leaving_the_root_and_unsafe_paths_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&tmp.path().join("store"));
    let ok = store.put_blob(b"fine\n").unwrap();
    let file = |path: &str| TreeEntry {
        path: path.into(),
        kind: EntryKind::File,
        mode: 0o644,
        size: 5,
        digest: Some(ok.clone()),
        target: None,
        pack: None,
        offset: 0,
    };
    let link = |path: &str, target: &str| TreeEntry {
        path: path.into(),
        kind: EntryKind::Symlink,
        mode: 0,
        size: 0,
        digest: None,
        target: Some(target.into()),
        pack: None,
        offset: 0,
    };
    let tree = Tree::new(vec![
        file("a/fine.txt"),
        file("../escape.txt"),
        link("a/up", "../fine-too"),
        link("a/passwd", "/etc/passwd"),
        link("a/out", "../../outside"),
    ]);
    let digest = store.put_tree(&tree).unwrap();
    let dest = tmp.path().join("dest");
    let stats = store.restore_tree(&digest, &dest).unwrap();
    assert_eq!(fs::read(dest.join("a/fine.txt")).unwrap(), b"fine\n");
    assert!(dest.join("a/up").symlink_metadata().is_ok());
    assert!(dest.join("a/passwd").symlink_metadata().is_err());
    assert!(dest.join("a/out").symlink_metadata().is_err());
    assert!(!tmp.path().join("escape.txt").exists());
    assert_eq!(stats.refused.len(), 3, "{:?}", stats.refused);

    // A symlink in the destination is never followed to write through it.
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let dest2 = tmp.path().join("dest2");
    fs::create_dir_all(&dest2).unwrap();
    std::os::unix::fs::symlink(&outside, dest2.join("a")).unwrap();
    let stats = store.restore_tree(&digest, &dest2).unwrap();
    assert!(!outside.join("fine.txt").exists());
    assert!(
        stats.refused.iter().any(|r| r.contains("symlink")),
        "{stats:?}"
    );
}

#[test]
fn flipped_bytes_are_caught_by_verify_and_never_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let store = open(&store_dir);
    let src = tmp.path().join("src");
    small_tree(&src, 4);
    let (digest, _) = store.save_tree(&src, &Selection::all()).unwrap();
    store.set_ref("cache/proj/key", &digest).unwrap();

    // The pack holding d1/e1/f1.dat goes bad: none of its files may be restored.
    let (victim_digest, packed) = blob_holding(&store, &digest, "d1/e1/f1.dat");
    assert!(packed.len() > 30);
    flip_byte(&store_dir.join(blob_key(&victim_digest)));

    let out = wasmbuild()
        .arg("--store")
        .arg(&store_dir)
        .args(["store", "verify"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&victim_digest), "{stdout}");
    assert!(stdout.contains("corrupt"), "{stdout}");

    let dest = tmp.path().join("dest");
    let stats = open(&store_dir).restore_tree(&digest, &dest).unwrap();
    for path in &packed {
        assert!(!dest.join(path).exists(), "{path}");
    }
    assert_eq!(stats.corrupt.len(), packed.len());
    assert!(stats.corrupt.iter().any(|c| c.contains("d1/e1/f1.dat")));
    assert_eq!(stats.written_files, 1);
    assert!(dest.join("big/blob.bin").is_file());
    assert!(matches!(
        store.get_blob(&victim_digest),
        Err(StoreError::Corrupt { .. })
    ));
    // No temporary file is left beside the missing one.
    let leftovers: Vec<_> = fs::read_dir(dest.join("d1/e1"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // verify --repair deletes it; a new save puts it back; verify is clean again.
    let out = wasmbuild()
        .arg("--store")
        .arg(&store_dir)
        .args(["store", "verify", "--repair"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let store = open(&store_dir);
    store.save_tree(&src, &Selection::all()).unwrap();
    let status = wasmbuild()
        .arg("--store")
        .arg(&store_dir)
        .args(["store", "verify"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn concurrent_saves_of_the_same_tree_and_key_stay_correct() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let src = tmp.path().join("src");
    small_tree(&src, 5);
    let stores = (0..6).map(|_| open(&store_dir)).collect();
    let creators = save_concurrently(stores, &src, &open(&store_dir), &tmp.path().join("dest"));
    // A local store creates a key with an atomic link: exactly one save wins.
    assert_eq!(creators, 1);
}

#[test]
fn a_save_killed_midway_leaves_the_store_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let src = tmp.path().join("src");
    let mut rng = Rng::new(9);
    for i in 0..60 {
        let dir = src.join(format!("dir{}", i % 6));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("f{i}")), content(&mut rng, 1_500_000)).unwrap();
    }
    fs::write(src.join("big"), content(&mut rng, 120_000_000)).unwrap();

    let mut killed_midway = false;
    for delay_ms in [150u64, 400, 900] {
        let mut child = common::save_tree_in_a_child(&store_dir, &src, "cache/kill/me", |_| {});
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some();
        // SIGKILL: no chance to clean up.
        let _ = child.kill();
        let _ = child.wait();
        if !finished {
            killed_midway = true;
        }
        let store = open(&store_dir);
        let report = store.verify(false).unwrap();
        assert!(report.is_clean(), "after a kill: {:?}", report.problems);
        // Either no reference, or a complete tree behind it.
        if let Some(digest) = store.get_ref("cache/kill/me").unwrap() {
            let dest = tmp.path().join(format!("dest{delay_ms}"));
            let stats = store.restore_tree(&digest, &dest).unwrap();
            assert!(stats.corrupt.is_empty());
        }
    }
    assert!(killed_midway, "the save was never interrupted");
    // A complete save afterwards works and leftovers are gc'd.
    let store = open(&store_dir);
    let (digest, _) = store.save_tree(&src, &Selection::all()).unwrap();
    store.set_ref("cache/kill/me", &digest).unwrap();
    store
        .gc(&GcOptions {
            grace: Duration::ZERO,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(fs::read_dir(store_dir.join("tmp")).unwrap().count(), 0);
    assert!(store.verify(false).unwrap().is_clean());
}

#[test]
fn gc_drops_unreachable_blobs_and_keeps_reachable_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let store = open(&store_dir);
    let src = tmp.path().join("src");
    small_tree(&src, 6);
    let (tree, _) = store.save_tree(&src, &Selection::all()).unwrap();
    store.set_ref("cache/p/one", &tree).unwrap();
    // A manifest in another format (like a bundle manifest) keeps what it names.
    let named = store.put_blob(b"a module").unwrap();
    let manifest = store
        .put_blob(format!("[[files]]\nsha256 = \"{named}\"\n").as_bytes())
        .unwrap();
    store.set_ref("bundles/x", &manifest).unwrap();
    store.next_counter("proj").unwrap();
    let garbage = store.put_blob(b"nobody points here").unwrap();

    // Within the grace period nothing goes.
    let report = store.gc(&GcOptions::default()).unwrap();
    assert_eq!(report.blobs_deleted, 0);
    assert!(store.has_blob(&garbage).unwrap());

    let report = store
        .gc(&GcOptions {
            grace: Duration::ZERO,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(report.blobs_deleted, 1, "{report:?}");
    assert!(!store.has_blob(&garbage).unwrap());
    assert!(store.has_blob(&named).unwrap());
    assert!(store.has_blob(&manifest).unwrap());
    let dest = tmp.path().join("dest");
    let stats = store.restore_tree(&tree, &dest).unwrap();
    assert!(stats.corrupt.is_empty());
    assert_eq!(snapshot(&src), snapshot(&dest));

    // By age: an old cache reference goes, and with it what only it reached.
    let mut rng = Rng::new(7);
    let other = tmp.path().join("other");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("only-here"), content(&mut rng, 10_000)).unwrap();
    let (old_tree, _) = store.save_tree(&other, &Selection::all()).unwrap();
    store.set_ref("cache/p/old", &old_tree).unwrap();
    let old_ref = store_dir.join("refs/cache/p/old");
    fs::File::options()
        .write(true)
        .open(&old_ref)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(10 * 86400))
        .unwrap();
    let out = wasmbuild()
        .arg("--store")
        .arg(&store_dir)
        .args(["store", "gc", "--max-age", "7", "--grace", "0"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("cache/p/old"));
    assert!(store.get_ref("cache/p/old").unwrap().is_none());
    assert!(!store.has_blob(&old_tree).unwrap());
    assert!(store.get_ref("cache/p/one").unwrap().is_some());
    assert!(store.get_ref("bundles/x").unwrap().is_some());

    // By size: the oldest cache references go first until the rest fits.
    let (newer, _) = store.save_tree(&other, &Selection::all()).unwrap();
    store.set_ref("cache/p/newer", &newer).unwrap();
    fs::File::options()
        .write(true)
        .open(store_dir.join("refs/cache/p/one"))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    let report = store
        .gc(&GcOptions {
            max_size: Some(1),
            grace: Duration::ZERO,
            ..Default::default()
        })
        .unwrap();
    assert!(report.refs_dropped.contains(&"cache/p/one".to_string()));
    assert!(store.get_ref("bundles/x").unwrap().is_some());
    assert!(store.verify(false).unwrap().is_clean());
}

#[test]
fn stats_and_bad_specs_on_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let store = open(&store_dir);
    store.put_blob(b"x").unwrap();
    store.set_ref("cache/a/b", &sha256_hex(b"x")).unwrap();
    let out = wasmbuild()
        .arg("--store")
        .arg(&store_dir)
        .args(["store", "stats", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["blobs"], 1);
    assert_eq!(stats["refs"]["cache"], 1);

    let out = wasmbuild()
        .args(["--store", "gs://nope", "store", "stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // WASMBUILD_STORE works like --store.
    let out = wasmbuild()
        .env("WASMBUILD_STORE", &store_dir)
        .args(["store", "stats"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("blobs       1"));
}

#[test]
fn large_files_stream_through_multithreaded_zstd() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(&tmp.path().join("store"));
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let mut rng = Rng::new(11);
    let big = content(&mut rng, 40_000_000);
    fs::write(src.join("big.bin"), &big).unwrap();
    let (digest, stats) = store.save_tree(&src, &Selection::all()).unwrap();
    assert_eq!(stats.uploaded_blobs, 1);
    assert!(stats.uploaded_bytes < big.len() as u64);
    let dest = tmp.path().join("dest");
    store.restore_tree(&digest, &dest).unwrap();
    assert_eq!(fs::read(dest.join("big.bin")).unwrap(), big);
}

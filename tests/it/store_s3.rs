//! The store on a real S3-compatible server (`s3s-fs`, SigV4, on a loopback port, served
//! by the test process): round trips, multipart uploads, trees, corruption caught and never
//! restored, wrong credentials, a stopped server, concurrent saves, an interrupted save, gc,
//! counters.

use crate::store_common as common;

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use common::{
    Rng, S3Server, blob_holding, content, flip_byte, save_concurrently, small_tree, snapshot,
    wasmbuild,
};
use wasmbuild::digest::sha256_hex;
use wasmbuild::store::{GcOptions, Selection, StoreError, blob_key};

#[test]
fn blobs_and_refs_round_trip() {
    let server = S3Server::start();
    let local = tempfile::tempdir().unwrap();
    let store = server.open("rt", local.path());
    assert!(store.is_remote());
    let digest = store.put_blob(b"hello s3").unwrap();
    assert_eq!(digest, sha256_hex(b"hello s3"));
    assert!(server.object_path("rt", &blob_key(&digest)).is_file());
    assert!(store.has_blob(&digest).unwrap());
    assert_eq!(store.get_blob(&digest).unwrap(), b"hello s3");
    assert!(matches!(
        store.get_blob(&sha256_hex(b"absent")),
        Err(StoreError::Missing(_))
    ));

    store.set_ref("bundles/base", &digest).unwrap();
    store.set_ref("bundles/python", &digest).unwrap();
    store.set_ref("bundles/deeper/x", &digest).unwrap();
    assert_eq!(
        store.get_ref("bundles/base").unwrap().as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(store.list_refs("bundles").unwrap(), vec!["base", "python"]);
    assert_eq!(store.list_refs_recursive("bundles/").unwrap().len(), 3);
    assert!(store.get_ref("bundles/none").unwrap().is_none());

    // Immutable keys: the second writer loses (conditional PUT).
    assert!(store.create_ref_if_absent("cache/p/k", "one").unwrap());
    assert!(!store.create_ref_if_absent("cache/p/k", "two").unwrap());
    assert_eq!(store.get_ref("cache/p/k").unwrap().as_deref(), Some("one"));

    // Counters: compare-and-swap on the ETag, from several threads.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| store.next_counter("proj").unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut numbers: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1..=40).collect::<Vec<_>>());
}

#[test]
fn large_blobs_go_up_in_multipart_and_come_back() {
    let server = S3Server::start();
    let local = tempfile::tempdir().unwrap();
    let store = server.open("big", local.path());
    let mut rng = Rng::new(3);
    let data: Vec<u8> = (0..3).flat_map(|_| content(&mut rng, 20_000_000)).collect();
    // Mostly incompressible halves: well above the 16 MiB single-PUT limit once compressed.
    let file = local.path().join("big.bin");
    fs::write(&file, &data).unwrap();
    let (digest, size) = store.put_file(&file).unwrap();
    assert_eq!(size, data.len() as u64);
    let stored = fs::metadata(server.object_path("big", &blob_key(&digest))).unwrap();
    assert!(stored.len() > 16 << 20, "{} bytes", stored.len());

    // Read back through a fresh machine-local directory (no local copy yet).
    let other_local = tempfile::tempdir().unwrap();
    let reader = server.open("big", other_local.path());
    let out = other_local.path().join("copy.bin");
    reader.get_blob_to_file(&digest, &out).unwrap();
    assert_eq!(fs::read(&out).unwrap(), data);
}

#[test]
fn trees_save_and_restore_through_s3() {
    let server = S3Server::start();
    let local = tempfile::tempdir().unwrap();
    let store = server.open("trees", local.path());
    let src = local.path().join("src");
    small_tree(&src, 21);
    let (digest, stats) = store.save_tree(&src, &Selection::all()).unwrap();
    assert_eq!(stats.files, 36);
    assert_eq!(stats.uploaded_blobs, 2);
    assert_eq!((stats.packed, stats.packs), (35, 1));
    store.set_ref("cache/proj/main", &digest).unwrap();

    // Another machine: its own local directory.
    let machine = tempfile::tempdir().unwrap();
    let other = server.open("trees", machine.path());
    let dest = machine.path().join("dest");
    let restored = other.restore_tree(&digest, &dest).unwrap();
    assert_eq!(restored.written_files, 36);
    assert_eq!(snapshot(&src), snapshot(&dest));

    // Saving again uploads nothing; so does a save of the restored copy.
    let (again, stats) = store.save_tree(&src, &Selection::all()).unwrap();
    assert_eq!(again, digest);
    assert_eq!(stats.uploaded_blobs, 0);
    let (copy, stats) = other.save_tree(&dest, &Selection::all()).unwrap();
    assert_eq!(copy, digest);
    assert_eq!(stats.uploaded_blobs, 0);

    let report = store.verify(false).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn flipped_bytes_in_s3_are_caught_by_verify_and_never_restored() {
    let server = S3Server::start();
    let local = tempfile::tempdir().unwrap();
    let store = server.open("flip", local.path());
    let src = local.path().join("src");
    small_tree(&src, 22);
    let (digest, _) = store.save_tree(&src, &Selection::all()).unwrap();
    store.set_ref("cache/proj/main", &digest).unwrap();
    let (victim, packed) = blob_holding(&store, &digest, "d2/e2/f2.dat");
    flip_byte(&server.object_path("flip", &blob_key(&victim)));

    let mut cmd = wasmbuild();
    server.env(&mut cmd, local.path());
    let out = cmd
        .args(["--store", &server.spec("flip"), "store", "verify"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&victim), "{stdout}");

    let machine = tempfile::tempdir().unwrap();
    let other = server.open("flip", machine.path());
    let dest = machine.path().join("dest");
    let stats = other.restore_tree(&digest, &dest).unwrap();
    for path in &packed {
        assert!(!dest.join(path).exists(), "{path}");
    }
    assert_eq!(stats.corrupt.len(), packed.len(), "{stats:?}");
    assert_eq!(stats.written_files, 1);
    // Nor is the bad copy kept on this machine.
    assert!(!machine.path().join(blob_key(&victim)).exists());
}

#[test]
fn wrong_credentials_give_a_clear_error() {
    let server = S3Server::start();
    let local = tempfile::tempdir().unwrap();
    let mut config = server.config();
    config.secret_access_key = Some("not-the-secret".into());
    let store = server.open_with("creds", local.path(), config);
    let err = store.put_blob(b"x").unwrap_err();
    assert!(matches!(err, StoreError::Auth { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("refused the credentials"), "{message}");
    assert!(message.contains("AWS_SECRET_ACCESS_KEY"), "{message}");

    let mut cmd = wasmbuild();
    server.env(&mut cmd, local.path());
    let out = cmd
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .args(["--store", &server.spec("creds"), "store", "stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // No credentials at all: said before any request.
    let mut cmd = wasmbuild();
    server.env(&mut cmd, local.path());
    let out = cmd
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["--store", &server.spec("creds"), "store", "stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no AWS credentials"));
}

#[test]
fn a_stopped_server_gives_a_clear_error_not_a_panic() {
    let mut server = S3Server::start();
    let local = tempfile::tempdir().unwrap();
    let store = server.open("down", local.path());
    let digest = store.put_blob(b"before").unwrap();
    server.stop();
    let err = store.put_blob(b"after").unwrap_err();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot reach the server"), "{err}");
    // Reads of what this machine already has still work; others fail cleanly.
    assert!(store.get_blob(&sha256_hex(b"other")).is_err());
    let src = local.path().join("src");
    small_tree(&src, 23);
    assert!(matches!(
        store.save_tree(&src, &Selection::all()),
        Err(StoreError::Unreachable { .. })
    ));
    let _ = digest;

    let mut cmd = wasmbuild();
    server.env(&mut cmd, local.path());
    let out = cmd
        .args(["--store", &server.spec("down"), "store", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach the server"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn concurrent_saves_of_the_same_key_stay_correct() {
    let server = S3Server::start();
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("src");
    small_tree(&src, 24);
    let locals: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let stores = locals[1..]
        .iter()
        .map(|local| server.open("conc", local.path()))
        .collect();
    let check = server.open("conc", locals[0].path());
    let creators = save_concurrently(stores, &src, &check, &locals[0].path().join("dest"));
    // S3 itself makes `If-None-Match: *` atomic; s3s-fs checks and then writes, so two
    // racing creators may both be told they won. Either way the key holds the one digest.
    assert!(creators >= 1);
}

#[test]
fn an_interrupted_save_leaves_the_store_valid() {
    let server = S3Server::start();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("src");
    let mut rng = Rng::new(25);
    for i in 0..200 {
        let dir = src.join(format!("d{}", i % 10));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("f{i}")), content(&mut rng, 100_000)).unwrap();
    }
    fs::write(src.join("big"), content(&mut rng, 60_000_000)).unwrap();
    let mut interrupted = false;
    for delay_ms in [300u64, 800] {
        let mut child =
            common::save_tree_in_a_child(server.spec("kill"), &src, "cache/kill/me", |cmd| {
                server.env(cmd, local.path())
            });
        std::thread::sleep(Duration::from_millis(delay_ms));
        interrupted |= child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let _ = child.wait();
        let check = tempfile::tempdir().unwrap();
        let store = server.open("kill", check.path());
        let report = store.verify(false).unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        if let Some(digest) = store.get_ref("cache/kill/me").unwrap() {
            let stats = store
                .restore_tree(&digest, &check.path().join("dest"))
                .unwrap();
            assert!(stats.corrupt.is_empty());
        }
    }
    assert!(interrupted, "the save was never interrupted");
    let mut cmd = wasmbuild();
    server.env(&mut cmd, local.path());
    let status = cmd
        .args(["--store", &server.spec("kill"), "store", "verify"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn gc_on_s3_drops_unreachable_blobs_only() {
    let server = S3Server::start();
    let local = tempfile::tempdir().unwrap();
    let store = server.open("gc", local.path());
    let src = local.path().join("src");
    small_tree(&src, 26);
    let (tree, _) = store.save_tree(&src, &Selection::all()).unwrap();
    store.set_ref("cache/p/keep", &tree).unwrap();
    let garbage = store.put_blob(b"unreferenced").unwrap();
    let report = store
        .gc(&GcOptions {
            grace: Duration::ZERO,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(report.blobs_deleted, 1, "{report:?}");
    assert!(!store.has_blob(&garbage).unwrap());
    let machine = tempfile::tempdir().unwrap();
    let other = server.open("gc", machine.path());
    let dest = machine.path().join("dest");
    let stats = other.restore_tree(&tree, &dest).unwrap();
    assert!(stats.corrupt.is_empty());
    assert_eq!(snapshot(&src), snapshot(&dest));
}

//! The compiled-code cache, driven through the library: a module is compiled once per
//! machine, later starts load its machine code from disk, and a damaged cache file is
//! recompiled rather than trusted.

use std::fs;

use wasmbuild::sandbox::{CodeOrigin, GuestCommand, GuestExit, Sandbox, SandboxConfig};

const MODULE: &str = r#"(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (func (export "_start") (call $exit (i32.const 5))))"#;

fn sandbox(cache: &std::path::Path) -> Sandbox {
    Sandbox::new(SandboxConfig {
        code_cache_dir: Some(cache.to_owned()),
        ..SandboxConfig::default()
    })
    .unwrap()
}

fn run(sandbox: &Sandbox, module: &wasmbuild::sandbox::LoadedModule) -> GuestExit {
    sandbox
        .run(module, GuestCommand::bare(vec!["exit5".into()]))
        .unwrap()
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = wat::parse_str(MODULE).unwrap();
    let path = dir.path().join("exit5.wasm");
    fs::write(&path, &bytes).unwrap();
    let digest = wasmbuild::digest::sha256_hex(&bytes);
    (dir, path, digest)
}

#[test]
fn second_start_of_a_module_uses_the_compiled_code_cache() {
    let (dir, path, digest) = setup();
    let cache = dir.path().join("compiled");

    let first = sandbox(&cache);
    let module = first.load("exit5", &path, &digest).unwrap();
    assert_eq!(module.origin(), CodeOrigin::Compiled);
    assert_eq!(run(&first, &module), GuestExit::Exited(5));
    assert_eq!(
        first.load("exit5", &path, &digest).unwrap().origin(),
        CodeOrigin::Memory
    );
    drop(first);

    // A new process (a new engine) finds the machine code on disk, without reading the module.
    fs::remove_file(&path).unwrap();
    let second = sandbox(&cache);
    let module = second.load("exit5", &path, &digest).unwrap();
    assert_eq!(module.origin(), CodeOrigin::CodeCache);
    assert_eq!(run(&second, &module), GuestExit::Exited(5));
}

#[test]
fn corrupt_or_truncated_cache_files_are_recompiled_not_trusted() {
    let (dir, path, digest) = setup();
    let cache = dir.path().join("compiled");
    sandbox(&cache).load("exit5", &path, &digest).unwrap();
    let file = sandbox(&cache).code_cache().unwrap().file(&digest);
    let original = fs::read(&file).unwrap();

    // One flipped bit in the machine code.
    let mut flipped = original.clone();
    let last = flipped.len() - 1;
    flipped[last / 2] ^= 0x10;
    fs::write(&file, &flipped).unwrap();
    let s = sandbox(&cache);
    let module = s.load("exit5", &path, &digest).unwrap();
    assert_eq!(module.origin(), CodeOrigin::Compiled);
    assert_eq!(run(&s, &module), GuestExit::Exited(5));
    assert_eq!(
        fs::read(&file).unwrap(),
        original,
        "the cache file is rewritten whole"
    );

    // Cut in half, and garbage.
    for damaged in [original[..original.len() / 2].to_vec(), b"garbage".to_vec()] {
        fs::write(&file, damaged).unwrap();
        let s = sandbox(&cache);
        let module = s.load("exit5", &path, &digest).unwrap();
        assert_eq!(module.origin(), CodeOrigin::Compiled);
        assert_eq!(run(&s, &module), GuestExit::Exited(5));
    }
}

#[test]
fn a_module_whose_digest_does_not_match_is_refused() {
    let (dir, path, digest) = setup();
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0, 0, 0]); // a custom-section-free tail makes it differ
    fs::write(&path, &bytes).unwrap();
    let err = sandbox(&dir.path().join("compiled"))
        .load("exit5", &path, &digest)
        .err()
        .unwrap();
    assert!(err.to_string().contains("refusing to run it"), "{err}");
}

#[test]
fn a_cache_file_with_the_same_content_in_a_new_state_is_rechecked_and_used() {
    let (dir, path, digest) = setup();
    let cache = dir.path().join("compiled");
    sandbox(&cache).load("exit5", &path, &digest).unwrap();
    let file = sandbox(&cache).code_cache().unwrap().file(&digest);
    // Rewritten with identical bytes: a new inode, mtime and ctime, the same content.
    let bytes = fs::read(&file).unwrap();
    fs::remove_file(&file).unwrap();
    fs::write(&file, &bytes).unwrap();
    let s = sandbox(&cache);
    let module = s.load("exit5", &path, &digest).unwrap();
    assert_eq!(module.origin(), CodeOrigin::CodeCache);
    assert_eq!(run(&s, &module), GuestExit::Exited(5));
}

/// A guest that polls its stdin (a poll WASI's own `poll_oneoff` serves, through the
/// sandbox's poll interposer), then exits with 5.
const POLLS_STDIN: &str = r#"(module
    (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    ;; one subscription at 0: userdata 0, tag 1 (fd_read), fd 0 at 16
    (data (i32.const 8) "\01")
    (func (export "_start")
      (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
      (call $exit (i32.const 5))))"#;

/// Runs guests that need each of the sandbox's helper modules: the descriptor forwarder
/// (every guest), the poll interposer and the deterministic one (made at first use).
fn use_every_helper(sandbox: &Sandbox, dir: &std::path::Path) {
    let bytes = wat::parse_str(POLLS_STDIN).unwrap();
    let path = dir.join("polls.wasm");
    fs::write(&path, &bytes).unwrap();
    let digest = wasmbuild::digest::sha256_hex(&bytes);
    let module = sandbox.load("polls", &path, &digest).unwrap();
    assert_eq!(run(sandbox, &module), GuestExit::Exited(5));
    let mut deterministic = GuestCommand::bare(vec!["polls".into()]);
    deterministic.determinism = Some(wasmbuild::sandbox::Determinism {
        source_date_epoch: 0,
        seed: [0; 32],
    });
    assert_eq!(
        sandbox.run(&module, deterministic).unwrap(),
        GuestExit::Exited(5)
    );
}

// The sandbox's own helper modules (the descriptor forwarder, the poll and determinism
// interposers) are compiled once per machine too: a second sandbox maps the files the first
// one wrote instead of compiling and writing them again (a rewrite is a rename, a new inode).
// Only the forwarder, which every guest needs, is made with the sandbox; the others at their
// first use. A damaged helper file is recompiled, and the sandbox still runs guests.
#[test]
fn the_sandboxs_own_modules_are_compiled_once() {
    use std::os::unix::fs::MetadataExt;
    let (dir, path, digest) = setup();
    let cache = dir.path().join("compiled");
    let polls = wasmbuild::digest::sha256_hex(&wat::parse_str(POLLS_STDIN).unwrap());
    let helpers = || {
        let mut found: Vec<(String, u64)> = fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .flat_map(|engine| fs::read_dir(engine.path()).unwrap().flatten())
            .filter(|f| {
                let name = f.file_name().to_string_lossy().into_owned();
                name.ends_with(".cwasm") && !name.starts_with(&digest) && !name.starts_with(&polls)
            })
            .map(|f| {
                let inode = f.metadata().unwrap().ino();
                (f.file_name().to_string_lossy().into_owned(), inode)
            })
            .collect();
        found.sort();
        found
    };
    let first = sandbox(&cache);
    assert_eq!(helpers().len(), 1, "{:?}", helpers());
    use_every_helper(&first, dir.path());
    drop(first);
    let first = helpers();
    assert_eq!(first.len(), 3, "{first:?}");
    use_every_helper(&sandbox(&cache), dir.path());
    assert_eq!(
        helpers(),
        first,
        "the second sandbox wrote its helpers again"
    );

    let (name, _) = &first[0];
    let engine_dir = fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    fs::write(engine_dir.join(name), b"garbage").unwrap();
    let third = sandbox(&cache);
    use_every_helper(&third, dir.path());
    let module = third.load("exit5", &path, &digest).unwrap();
    assert_eq!(run(&third, &module), GuestExit::Exited(5));
    let rewritten = fs::read(engine_dir.join(name)).unwrap();
    assert!(
        rewritten != b"garbage" && rewritten.len() > 1000,
        "the damaged helper was not recompiled"
    );
    assert_eq!(helpers().len(), 3);
}

//! The buildspec cache through `wasmbuild run` on `fixtures/cache*`: miss then hit, fallback
//! keys, restore-only and save-only, immutable and derived keys, `codebuild-hash-files`, a
//! corrupt cached blob; then the same store used through a real S3-compatible server
//! (`s3s-fs`): cache, build counters, records and artifacts, a server stopped mid-build, and
//! `runtime push|pull`.
//!
//! Every build gets its own project name and `CACHE_SALT`, so tests share the test store
//! without sharing cache entries or blobs.

use crate::{common, store_common};

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmbuild::digest::sha256_hex;

use common::Run;
use store_common::S3Server;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A source directory copied from a fixture, with its project name and cache salt.
struct Project {
    dir: tempfile::TempDir,
    name: String,
    salt: String,
}

impl Project {
    fn new(fixture_name: &str) -> Project {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let project = Project {
            dir: tempfile::tempdir().unwrap(),
            name: format!("cache-test-{}", &id[..12]),
            salt: id[12..24].to_owned(),
        };
        project.copy_from(fixture_name);
        project
    }

    /// Replaces the source with fixture `name` (same project, same salt).
    fn copy_from(&self, name: &str) {
        let from = fixture(name);
        for entry in walkdir::WalkDir::new(&from).min_depth(1) {
            let entry = entry.unwrap();
            let dest = self
                .dir
                .path()
                .join(entry.path().strip_prefix(&from).unwrap());
            if entry.file_type().is_dir() {
                std::fs::create_dir_all(&dest).unwrap();
            } else {
                std::fs::copy(entry.path(), &dest).unwrap();
            }
        }
    }

    fn src(&self) -> &Path {
        self.dir.path()
    }

    fn set_lock(&self, content: &str) {
        std::fs::write(self.src().join("lock.txt"), content).unwrap();
    }

    /// The key `fixtures/cache` computes: `deps-$CACHE_SALT-$(codebuild-hash-files lock.txt)`.
    fn key(&self) -> String {
        let lock = std::fs::read(self.src().join("lock.txt")).unwrap();
        format!("deps-{}-{}", self.salt, hash_files(&[("lock.txt", &lock)]))
    }
}

/// What `codebuild-hash-files` should print: the sha256 of `sha256sum`'s lines.
fn hash_files(files: &[(&str, &[u8])]) -> String {
    let lines: String = files
        .iter()
        .map(|(path, content)| format!("{}  {path}\n", sha256_hex(content)))
        .collect();
    sha256_hex(lines.as_bytes())
}

/// Cache-specific checks of a finished build.
impl Run {
    fn cache(&self) -> Value {
        self.record()["cache"].clone()
    }
    fn number(&self) -> u64 {
        self.record()["buildNumber"].as_u64().unwrap()
    }
    /// Asserts the build succeeded and returns self.
    fn succeeded(self) -> Run {
        assert_eq!(self.status(), 0, "log:\n{}", self.log());
        assert_eq!(self.record()["buildStatus"], "SUCCEEDED");
        self
    }
    fn assert_log(&self, needle: &str) {
        let log = self.log();
        assert!(log.contains(needle), "the log lacks {needle:?}:\n{log}");
    }
    fn assert_not_log(&self, needle: &str) {
        let log = self.log();
        assert!(!log.contains(needle), "the log has {needle:?}:\n{log}");
    }
}

/// `wasmbuild run` of `project` with the test store, plus `-e` pairs.
fn run(project: &Project, env: &[&str]) -> Run {
    common::ensure_bundle("base");
    let mut cmd = store_common::wasmbuild();
    cmd.env("WASMBUILD_STORE", common::store_dir());
    run_with(cmd, project, env)
}

fn run_with(mut cmd: Command, project: &Project, env: &[&str]) -> Run {
    let out = tempfile::tempdir().unwrap();
    cmd.arg("run")
        .arg(project.src())
        .arg("-a")
        .arg(out.path())
        .args(["--project", &project.name])
        .args(["-e", &format!("CACHE_SALT={}", project.salt)]);
    for pair in env {
        cmd.args(["-e", pair]);
    }
    let output = cmd.output().expect("run wasmbuild");
    Run { output, out }
}

/// The test store's reference file `name`.
fn local_ref(name: &str) -> Option<String> {
    std::fs::read_to_string(common::store_dir().join("refs").join(name))
        .ok()
        .map(|s| s.trim().to_owned())
}

#[test]
fn a_miss_then_a_hit_restores_source_and_home_paths() {
    let p = Project::new("cache");
    let key = p.key();
    let first = run(&p, &[]).succeeded();
    first.assert_log(&format!(
        "Cache miss: no entry for key {key} nor fallback keys deps-{}-",
        p.salt
    ));
    first.assert_log("install sees no lib");
    first.assert_log(&format!("Saving cache under key {key}: 2 files"));
    let cache = first.cache();
    assert_eq!(cache["key"], key.as_str());
    assert_eq!(cache["restore"]["hit"], false);
    assert_eq!(cache["save"]["created"], true);
    assert_eq!(cache["save"]["files"], 2);
    let tree = local_ref(&format!("cache/{}/{key}", p.name)).expect("the cache reference");
    assert_eq!(cache["save"]["tree"], tree.as_str());

    let n1 = first.number();
    let second = run(&p, &[]).succeeded();
    second.assert_log(&format!("Restoring cache from key {key}: 2 files"));
    second.assert_log(&format!(
        "install sees lib: lib made by build {n1} ({})",
        p.salt
    ));
    second.assert_log(&format!(
        "install sees home state: state made by build {n1} ("
    ));
    second.assert_log(&format!("Cache key {key} exists: its entry is kept"));
    second.assert_not_log("Cache miss");
    assert_eq!(
        second.artifact("primary/deps/lib.txt"),
        first.artifact("primary/deps/lib.txt")
    );
    assert_eq!(
        second.artifact("primary/home-state.txt"),
        first.artifact("primary/home-state.txt")
    );
    let cache = second.cache();
    assert_eq!(cache["restore"]["hit"], true);
    assert_eq!(cache["restore"]["matchedKey"], key.as_str());
    assert!(cache["restore"].get("fallbackKey").is_none());
    assert_eq!(cache["restore"]["files"], 2);
    assert_eq!(cache["restore"]["writtenFiles"], 2);
    assert_eq!(cache["save"]["created"], false);
    // The restore came before INSTALL, the save after POST_BUILD and before the artifacts.
    let log = second.log();
    let at = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("{needle}:\n{log}"))
    };
    assert!(at("Restoring cache") < at("Entering phase INSTALL"));
    assert!(at("Phase complete: POST_BUILD") < at("Cache key"));
    assert!(at("Cache key") < at("Entering phase UPLOAD_ARTIFACTS"));

    // Only files that differ are written: one already in the source is left alone.
    std::fs::create_dir_all(p.src().join("deps")).unwrap();
    std::fs::write(
        p.src().join("deps/lib.txt"),
        first.artifact("primary/deps/lib.txt"),
    )
    .unwrap();
    let third = run(&p, &[]).succeeded();
    third.assert_log(&format!(
        "Restoring cache from key {key}: 2 files, {} bytes",
        cache["restore"]["bytes"]
    ));
    third.assert_log("(1 written, 1 unchanged)");
    assert_eq!(third.cache()["restore"]["unchangedFiles"], 1);
}

#[test]
fn fallback_keys_restore_the_newest_entry_of_the_prefix() {
    let p = Project::new("cache");
    p.set_lock("v1\n");
    let key1 = p.key();
    let first = run(&p, &[]).succeeded();
    first.assert_log(&format!("Saving cache under key {key1}"));

    p.set_lock("v2\n");
    let key2 = p.key();
    assert_ne!(key1, key2);
    let second = run(&p, &["OVERWRITE=1"]).succeeded();
    second.assert_log(&format!(
        "Restoring cache from key {key1} (fallback key deps-{}-)",
        p.salt
    ));
    second.assert_log(&format!(
        "install sees lib: lib made by build {}",
        first.number()
    ));
    second.assert_log(&format!("Saving cache under key {key2}"));
    let cache = second.cache();
    assert_eq!(cache["restore"]["matchedKey"], key1.as_str());
    assert_eq!(cache["restore"]["fallbackKey"], format!("deps-{}-", p.salt));
    assert_eq!(cache["save"]["created"], true);

    // Two entries match the prefix now: the newer one (key2) wins.
    p.set_lock("v3\n");
    let third = run(&p, &[]).succeeded();
    third.assert_log(&format!("Restoring cache from key {key2} (fallback key"));
    third.assert_log(&format!(
        "install sees lib: lib overwritten by build {}",
        second.number()
    ));
    assert_eq!(third.cache()["restore"]["matchedKey"], key2.as_str());
}

#[test]
fn save_only_and_restore_only_actions() {
    let p = Project::new("cache-save");
    let key = p.key();
    let first = run(&p, &[]).succeeded();
    first.assert_log(&format!(
        "Cache action is save: not restoring the cache (key {key})"
    ));
    first.assert_log(&format!("Saving cache under key {key}"));
    // Save-only never restores, even when the entry exists.
    let second = run(&p, &[]).succeeded();
    second.assert_log("install sees no lib");
    second.assert_not_log("Restoring cache");
    second.assert_log(&format!("Cache key {key} exists: its entry is kept"));
    assert!(second.cache().get("restore").is_none());

    // Restore-only: the same project and key, restored, never saved.
    p.copy_from("cache-restore");
    let third = run(&p, &[]).succeeded();
    third.assert_log(&format!("Restoring cache from key {key}: 2 files"));
    third.assert_log(&format!(
        "install sees lib: lib made by build {}",
        first.number()
    ));
    third.assert_log("Cache action is restore: not saving the cache");
    assert!(third.cache().get("save").is_none());
    p.set_lock("restore-only, new key\n");
    let new_key = p.key();
    let fourth = run(&p, &[]).succeeded();
    fourth.assert_log(&format!("Restoring cache from key {key} (fallback key"));
    fourth.assert_log("Cache action is restore: not saving the cache");
    assert_eq!(local_ref(&format!("cache/{}/{new_key}", p.name)), None);
}

#[test]
fn a_keyed_entry_is_immutable_and_a_derived_one_is_replaced() {
    let p = Project::new("cache");
    let key = p.key();
    let first = run(&p, &[]).succeeded();
    let reference = format!("cache/{}/{key}", p.name);
    let tree = local_ref(&reference).expect("saved");
    let second = run(&p, &["OVERWRITE=1"]).succeeded();
    assert!(
        second
            .artifact("primary/deps/lib.txt")
            .starts_with("lib overwritten")
    );
    second.assert_log(&format!(
        "Cache key {key} exists: its entry is kept (cache keys are immutable)"
    ));
    assert_eq!(local_ref(&reference).as_deref(), Some(tree.as_str()));
    let third = run(&p, &[]).succeeded();
    assert_eq!(
        third.artifact("primary/deps/lib.txt"),
        first.artifact("primary/deps/lib.txt")
    );

    // Without `key`: derived from the project and paths, and replaced by each save.
    let d = Project::new("cache-derived");
    let first = run(&d, &[]).succeeded();
    let cache = first.cache();
    assert_eq!(cache["keyDerived"], true);
    let key = cache["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("{}-", d.name)), "{key}");
    first.assert_log(&format!("Cache miss: no entry for key {key}"));
    let second = run(&d, &["OVERWRITE=1"]).succeeded();
    second.assert_log(&format!("Restoring cache from key {key}: 2 files"));
    second.assert_log(&format!("Saving cache under key {key}"));
    assert_eq!(second.cache()["save"]["created"], true);
    let third = run(&d, &[]).succeeded();
    third.assert_log(&format!(
        "install sees lib: lib overwritten by build {}",
        second.number()
    ));
}

#[test]
fn codebuild_hash_files_matches_sha256sum() {
    let p = Project::new("cache-hash");
    let r = run(&p, &[]).succeeded();
    let log = r.log();
    let value = |name: &str| -> String {
        let prefix = format!("{name}=");
        log.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name}= in the log:\n{log}"))
            .to_owned()
    };
    let read = |path: &str| std::fs::read(fixture("cache-hash").join(path)).unwrap();
    let (a, b, c) = (read("a.txt"), read("sub/b.txt"), read("sub/deeper/c.txt"));
    let all = hash_files(&[("a.txt", &a), ("sub/b.txt", &b), ("sub/deeper/c.txt", &c)]);
    assert_eq!(value("hash-glob"), all);
    assert_eq!(value("sum-glob"), all, "sha256sum in the build agrees");
    let dir = hash_files(&[("sub/b.txt", &b), ("sub/deeper/c.txt", &c)]);
    assert_eq!(value("hash-dir"), dir);
    assert_eq!(value("sum-dir"), dir);
    assert_eq!(
        value("hash-two"),
        hash_files(&[("a.txt", &a), ("sub/deeper/c.txt", &c)]),
        "sorted by path, whatever the order of the arguments"
    );
    assert_eq!(
        value("hash-in-sub"),
        hash_files(&[("b.txt", &b), ("deeper/c.txt", &c)])
    );
    r.assert_log("no match gives status 1");
}

#[test]
fn a_key_that_cannot_be_computed_is_a_warning() {
    let p = Project::new("cache");
    std::fs::remove_file(p.src().join("lock.txt")).unwrap();
    let r = run(&p, &[]).succeeded();
    r.assert_log("codebuild-hash-files: no files match lock.txt");
    r.assert_log("Warning: cache key: expanding");
    r.assert_not_log("Saving cache");
    assert!(!r.cache()["warnings"].as_array().unwrap().is_empty());
    assert!(
        !common::store_dir()
            .join("refs/cache")
            .join(&p.name)
            .exists()
    );
}

/// The blob file of `content` in a local store.
fn blob_file(store: &Path, content: &[u8]) -> PathBuf {
    let digest = sha256_hex(content);
    store
        .join("blobs")
        .join(&digest[..2])
        .join(format!("{digest}.zst"))
}

#[test]
fn a_corrupt_cached_blob_is_reported_and_not_restored() {
    let p = Project::new("cache");
    let first = run(&p, &[]).succeeded();
    let lib = first.artifact("primary/deps/lib.txt");
    let blob = blob_file(&common::store_dir(), lib.as_bytes());
    assert!(blob.is_file(), "{}", blob.display());
    store_common::flip_byte(&blob);

    let second = run(&p, &[]).succeeded();
    second.assert_log("Warning: cache file not restored: src/deps/lib.txt");
    second.assert_log("install sees no lib");
    second.assert_log("install sees home state: state made by build");
    assert_eq!(
        second
            .artifact("primary/deps/lib.txt")
            .lines()
            .next()
            .unwrap(),
        format!("lib made by build {} ({})", second.number(), p.salt)
    );
    let restore = &second.cache()["restore"];
    assert_eq!(restore["hit"], true);
    assert_eq!(restore["writtenFiles"], 1);
    assert_eq!(restore["corrupt"].as_array().unwrap().len(), 1);
}

// ----- S3 ----------------------------------------------------------------------------------

/// This machine's directory for the S3 builds (installed bundles and compiled code kept
/// between tests; cache blobs are unique to each test).
fn s3_local_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cache-s3-local")
}

/// `wasmbuild` using store `prefix` on `server`, with `local` as the machine-local directory.
fn s3_command(server: &S3Server, prefix: &str, local: &Path) -> Command {
    let mut cmd = store_common::wasmbuild();
    server.env(&mut cmd, local);
    cmd.env("WASMBUILD_STORE", server.spec(prefix));
    cmd
}

/// Pushes the test store's `base` bundle to store `prefix` on `server`; returns the output.
fn push_base(server: &S3Server, prefix: &str) -> Output {
    common::ensure_bundle("base");
    let output = s3_command(server, prefix, &common::store_dir())
        .args(["runtime", "push", "base"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "push: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn s3_cache_counters_records_and_artifacts() {
    let server = S3Server::start();
    push_base(&server, "ci");
    let p = Project::new("cache");
    let key = p.key();
    let first = run_with(s3_command(&server, "ci", &s3_local_dir()), &p, &[]).succeeded();
    first.assert_log(&format!("Cache miss: no entry for key {key}"));
    first.assert_log(&format!("Saving cache under key {key}: 2 files"));
    assert_eq!(first.number(), 1, "the counter lives in the fresh S3 store");
    let object = |key: &str| server.object_path("ci", key);
    assert!(object(&format!("refs/cache/{}/{key}", p.name)).is_file());
    assert!(object(&format!("refs/counters/builds/{}", p.name)).is_file());
    // The record and the artifact set are kept in the store.
    let record = std::fs::read_to_string(object(&format!("refs/builds/{}/1", p.name))).unwrap();
    assert!(object(&wasmbuild::store::blob_key(record.trim())).is_file());
    assert!(object(&format!("refs/artifacts/{}/1/primary", p.name)).is_file());
    assert_eq!(first.record()["store"]["location"], server.spec("ci"));

    let second = run_with(s3_command(&server, "ci", &s3_local_dir()), &p, &[]).succeeded();
    assert_eq!(second.number(), 2);
    second.assert_log(&format!("Restoring cache from key {key}: 2 files"));
    second.assert_log(&format!(
        "install sees lib: lib made by build 1 ({})",
        p.salt
    ));
    second.assert_log("install sees home state: state made by build 1");
    second.assert_log(&format!("Cache key {key} exists: its entry is kept"));
    assert_eq!(second.cache()["restore"]["hit"], true);
}

#[test]
fn s3_a_corrupt_cached_blob_is_reported_and_not_restored() {
    let server = S3Server::start();
    push_base(&server, "ci");
    let p = Project::new("cache");
    let first = run_with(s3_command(&server, "ci", &s3_local_dir()), &p, &[]).succeeded();
    let lib = first.artifact("primary/deps/lib.txt");
    let digest = sha256_hex(lib.as_bytes());
    let object = server.object_path("ci", &wasmbuild::store::blob_key(&digest));
    assert!(object.is_file(), "{}", object.display());
    store_common::flip_byte(&object);

    let second = run_with(s3_command(&server, "ci", &s3_local_dir()), &p, &[]).succeeded();
    second.assert_log("Warning: cache file not restored: src/deps/lib.txt");
    second.assert_log("install sees no lib");
    second.assert_log("install sees home state: state made by build 1");
    assert_eq!(
        second.cache()["restore"]["corrupt"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        !blob_file(&s3_local_dir(), lib.as_bytes()).exists(),
        "no local copy kept"
    );
}

#[test]
fn s3_server_stopped_mid_build_is_a_warning_not_a_failure() {
    let mut server = S3Server::start();
    push_base(&server, "ci");
    let p = Project::new("cache");
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = s3_command(&server, "ci", &s3_local_dir())
        .arg("run")
        .arg(p.src())
        .arg("-a")
        .arg(out.path())
        .args(["--project", &p.name])
        .args(["-e", &format!("CACHE_SALT={}", p.salt), "-e", "PAUSE=3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            panic!("the build ended before pausing:\n{seen}");
        }
        seen.push_str(&line);
        if line.trim() == "PAUSING" {
            break;
        }
    }
    assert!(seen.contains("Cache miss"), "{seen}");
    server.stop();
    stdout.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "gave up in time"
    );
    assert_eq!(status.code(), Some(0), "{seen}");
    let run = Run {
        output: Output {
            status,
            stdout: seen.into_bytes(),
            stderr: Vec::new(),
        },
        out,
    };
    let run = run.succeeded();
    run.assert_log(&format!("Warning: cannot look up cache key {}", p.key()));
    run.assert_log("Warning: artifact set primary not kept in the store");
    run.assert_not_log("Saving cache under key");
    assert!(!run.cache()["warnings"].as_array().unwrap().is_empty());
    assert!(
        run.artifact("primary/deps/lib.txt")
            .starts_with("lib made by build 1")
    );
}

#[test]
fn runtime_push_and_pull_round_trip_through_s3() {
    let server = S3Server::start();
    let pushed = push_base(&server, "shared");
    let digest = String::from_utf8(pushed.stdout).unwrap().trim().to_owned();
    assert_eq!(local_ref("bundles/base").as_deref(), Some(digest.as_str()));
    assert!(server.object_path("shared", "refs/bundles/base").is_file());
    let again = push_base(&server, "shared");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains(": 0 blobs copied"), "{stderr}");

    // A fresh machine pulls and installs it.
    let fresh = tempfile::tempdir().unwrap();
    let pull = |local: &Path| {
        s3_command(&server, "shared", local)
            .args(["runtime", "pull", "base"])
            .output()
            .unwrap()
    };
    let pulled = pull(fresh.path());
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&pulled.stdout).trim(), digest);
    let installed = fresh.path().join("bundles").join(&digest);
    let original = common::store_dir().join("bundles").join(&digest);
    let files = store_common::snapshot(&original);
    assert!(!files.is_empty());
    assert_eq!(store_common::snapshot(&installed), files);
    let listed = store_common::wasmbuild()
        .env("WASMBUILD_STORE", fresh.path())
        .args(["runtime", "list", "--json"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["name"], "base");
    assert_eq!(listed[0]["digest"], digest.as_str());

    // A corrupt blob on the server is refused: nothing is installed.
    let module = walkdir::WalkDir::new(&original)
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "wasm"))
        .expect("the bundle's module");
    let module_digest = sha256_hex(&std::fs::read(module.path()).unwrap());
    store_common::flip_byte(
        &server.object_path("shared", &wasmbuild::store::blob_key(&module_digest)),
    );
    let other = tempfile::tempdir().unwrap();
    let refused = pull(other.path());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("corrupt"), "{stderr}");
    assert!(!other.path().join("bundles").join(&digest).exists());
    assert!(!other.path().join("refs/bundles/base").exists());

    // Unknown bundles and local stores are usage errors.
    let missing = s3_command(&server, "shared", other.path())
        .args(["runtime", "pull", "no-such-bundle"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let local = store_common::wasmbuild()
        .env("WASMBUILD_STORE", other.path())
        .args(["runtime", "push", "base"])
        .output()
        .unwrap();
    assert_eq!(local.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&local.stderr).contains("--store s3://"));
}

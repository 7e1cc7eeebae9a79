//! Attacks on the host-side file operations of a build (issue 13, items 2-4 and Deliver
//! 1-2): a hostile buildspec plants symbolic links (guest `ln -s` with climbing relative
//! targets, python, or links in the source) to a host file and directory outside the
//! workspace, each holding a marker, and tries to get the marker into the artifacts, the
//! cache or the output, or to write the host file; crafted store trees bring modes 6777,
//! links leaving the tree and `../` paths. Every test asserts the exit status, the message,
//! that the marker never shows, and that the host file and directory are unchanged.

use crate::common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use wasmbuild::lifecycle::cache::cache_ref;
use wasmbuild::store::{EntryKind, Store, Tree, TreeEntry};

use common::{Run, wasmbuild};

/// Host files outside any workspace, with a marker the build must never see.
struct Host {
    dir: tempfile::TempDir,
    marker: String,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::Builder::new()
            .prefix("attack-host-")
            .tempdir()
            .unwrap();
        let marker = format!("HOST-MARKER-{}", uuid::Uuid::new_v4().simple());
        std::fs::write(dir.path().join("secret.txt"), format!("{marker}\n")).unwrap();
        std::fs::create_dir_all(dir.path().join("hostdir/pub")).unwrap();
        std::fs::write(dir.path().join("hostdir/inner.txt"), format!("{marker}\n")).unwrap();
        std::fs::write(
            dir.path().join("hostdir/pub/page.html"),
            format!("{marker}\n"),
        )
        .unwrap();
        Host { dir, marker }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A relative link target that climbs to `/` from any depth, then to `rel` of the host
    /// directory (what a guest can make: absolute targets are refused in the sandbox).
    fn climb(&self, rel: &str) -> String {
        let abs = self.path(rel);
        format!(
            "{}{}",
            "../".repeat(40),
            abs.to_str().unwrap().trim_start_matches('/')
        )
    }

    /// The host file and directory hold exactly what the test put there.
    fn assert_untouched(&self) {
        let expected = format!("{}\n", self.marker);
        for file in ["secret.txt", "hostdir/inner.txt", "hostdir/pub/page.html"] {
            assert_eq!(
                std::fs::read_to_string(self.path(file)).unwrap(),
                expected,
                "host file {file} was modified"
            );
        }
        let mut names: Vec<String> = walkdir::WalkDir::new(self.dir.path())
            .min_depth(1)
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                e.path()
                    .strip_prefix(self.dir.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "hostdir",
                "hostdir/inner.txt",
                "hostdir/pub",
                "hostdir/pub/page.html",
                "secret.txt"
            ],
            "something was created in the host directory"
        );
        let mode = std::fs::metadata(self.path("secret.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7000, 0, "host file mode changed: {mode:o}");
    }

    /// The marker is nowhere in the build's output: stdout, build.log, build.json, the
    /// artifact files (zips opened), and no exported link leads out of its set.
    fn assert_not_leaked(&self, run: &Run) {
        assert!(
            !run.stdout().contains(&self.marker),
            "marker in stdout:\n{}",
            run.stdout()
        );
        assert!(!run.stderr().contains(&self.marker), "marker in stderr");
        for entry in walkdir::WalkDir::new(run.out.path()).min_depth(1) {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().is_symlink() {
                let target = std::fs::read_link(path).unwrap();
                // Lexically, the link stays inside its artifact set.
                let rel = path.strip_prefix(run.out.path()).unwrap();
                let mut depth = rel.components().count() as i64 - 1;
                for part in target.components() {
                    match part {
                        std::path::Component::ParentDir => depth -= 1,
                        std::path::Component::Normal(_) => depth += 1,
                        _ => {}
                    }
                    assert!(
                        depth >= 1,
                        "exported link {} -> {} climbs out of its set",
                        path.display(),
                        target.display()
                    );
                }
                assert!(
                    !target.is_absolute(),
                    "exported link {} -> {}",
                    path.display(),
                    target.display()
                );
                let resolved = path.parent().unwrap().join(&target);
                if let Ok(real) = resolved.canonicalize() {
                    assert!(
                        real.starts_with(run.out.path().canonicalize().unwrap()),
                        "exported link {} leads out to {}",
                        path.display(),
                        real.display()
                    );
                }
                continue;
            }
            if !entry.file_type().is_file() {
                continue;
            }
            let bytes = std::fs::read(path).unwrap();
            assert!(
                !contains(&bytes, self.marker.as_bytes()),
                "marker in {}",
                path.display()
            );
            if path.extension().is_some_and(|e| e == "zip") {
                let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
                for i in 0..archive.len() {
                    let mut file = archive.by_index(i).unwrap();
                    let mut content = Vec::new();
                    file.read_to_end(&mut content).unwrap();
                    assert!(
                        !contains(&content, self.marker.as_bytes()),
                        "marker in {} of {}",
                        file.name().unwrap_or_default(),
                        path.display()
                    );
                }
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A source directory with `buildspec` (and the test's own files added later).
fn source(buildspec: &str) -> tempfile::TempDir {
    let src = tempfile::Builder::new()
        .prefix("attack-src-")
        .tempdir()
        .unwrap();
    std::fs::write(src.path().join("buildspec.yml"), buildspec).unwrap();
    src
}

fn project(what: &str) -> String {
    format!(
        "attack-files-{what}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn run(src: &Path, project: &str, args: &[&str]) -> Run {
    common::ensure_bundle("base");
    let out = tempfile::tempdir().unwrap();
    let output = wasmbuild()
        .arg("run")
        .arg(src)
        .arg("-a")
        .arg(out.path())
        .args(["--project", project])
        .args(args)
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("run wasmbuild");
    Run { output, out }
}

/// A buildspec whose build phase runs `script` (one multi-line command) and exports
/// `artifacts` (YAML under `artifacts:`, indented by two).
fn spec(script: &str, rest: &str) -> String {
    let mut text = String::from("version: 0.2\nphases:\n  build:\n    commands:\n      - |\n");
    for line in script.lines() {
        text.push_str("        ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(rest);
    text
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .flatten()
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    files.sort();
    files
}

fn store() -> Store {
    Store::open(common::store_dir()).unwrap()
}

/// Every file content of the cache entry `key` of `project` (packs read whole).
fn cache_tree(project: &str, key: &str) -> Option<(Tree, Vec<Vec<u8>>)> {
    let store = store();
    let digest = store.get_ref(&cache_ref(project, key)).unwrap()?;
    let tree = store.get_tree(&digest).unwrap();
    let blobs = tree
        .blob_digests()
        .map(|d| store.get_blob(d).unwrap())
        .collect();
    Some((tree, blobs))
}

fn file_entry(path: &str, mode: u32, content: &[u8]) -> TreeEntry {
    let digest = store().put_blob(content).unwrap();
    TreeEntry {
        path: path.into(),
        kind: EntryKind::File,
        mode,
        size: content.len() as u64,
        digest: Some(digest),
        target: None,
        pack: None,
        offset: 0,
    }
}

fn link_entry(path: &str, target: &str) -> TreeEntry {
    TreeEntry {
        path: path.into(),
        kind: EntryKind::Symlink,
        mode: 0,
        size: 0,
        digest: None,
        target: Some(target.into()),
        pack: None,
        offset: 0,
    }
}

fn dir_entry(path: &str, mode: u32) -> TreeEntry {
    TreeEntry {
        path: path.into(),
        kind: EntryKind::Dir,
        mode,
        size: 0,
        digest: None,
        target: None,
        pack: None,
        offset: 0,
    }
}

/// Puts a crafted tree in the store as cache entry `key` of `project`.
fn plant_cache(project: &str, key: &str, entries: Vec<TreeEntry>) -> String {
    let store = store();
    let digest = store.put_tree(&Tree::new(entries)).unwrap();
    store.set_ref(&cache_ref(project, key), &digest).unwrap();
    digest
}

const MASKED: u32 = 0o7022;

// ----- artifacts (item 2) ------------------------------------------------------------------

// Item 2: a guest link to a host file, and a link planted in the source, are not exported.
#[test]
fn attack_artifact_link_to_host_file() {
    let host = Host::new();
    let src = source(&spec(
        &format!(
            "mkdir -p out\necho guest > out/own.txt\nln -s {} out/secret.txt\nln -s {} top-secret.txt",
            host.climb("secret.txt"),
            host.climb("secret.txt")
        ),
        "artifacts:\n  files:\n    - '**/*'\n",
    ));
    std::os::unix::fs::symlink(host.path("secret.txt"), src.path().join("planted.txt")).unwrap();
    let run = run(src.path(), &project("artlink"), &["--zip"]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(
        log.contains("Warning: skipping symlink out/secret.txt that points outside"),
        "{log}"
    );
    assert!(
        log.contains("Warning: skipping symlink planted.txt that points outside"),
        "{log}"
    );
    host.assert_not_leaked(&run);
    host.assert_untouched();
}

// Item 2: a directory link to a host directory is not entered by `files` globs.
#[test]
fn attack_artifact_dir_link() {
    let host = Host::new();
    let src = source(&spec(
        &format!(
            "mkdir -p d\necho guest > d/own.txt\nln -s {} d/hostdir\nln -s {} hd",
            host.climb("hostdir"),
            host.climb("hostdir")
        ),
        "artifacts:\n  files:\n    - 'd/**/*'\n    - 'hd/**/*'\n    - 'hd/inner.txt'\n",
    ));
    let run = run(src.path(), &project("artdir"), &["--zip"]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let record = run.record();
    let files: Vec<&str> = record["artifacts"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["d/own.txt"], "{}", run.log());
    host.assert_not_leaked(&run);
    host.assert_untouched();
}

// Item 2: a base-directory that is a link to a host directory is not a base directory.
#[test]
fn attack_artifact_base_directory_link() {
    let host = Host::new();
    let src = source(&spec(
        &format!(
            "ln -s {} pub\nmkdir -p a\nln -s {} a/pub",
            host.climb("hostdir/pub"),
            host.climb("hostdir/pub")
        ),
        "artifacts:\n  base-directory: pub\n  files:\n    - '**/*'\n  secondary-artifacts:\n    globbed:\n      base-directory: '*/pub'\n      files:\n        - '**/*'\n",
    ));
    let run = run(src.path(), &project("artbase"), &[]);
    assert_eq!(run.status(), 1, "{}", run.stdout());
    assert_eq!(
        run.phase_status("UPLOAD_ARTIFACTS").as_deref(),
        Some("FAILED")
    );
    let log = run.log();
    assert!(
        log.contains("no matching base directory path found for */pub"),
        "{log}"
    );
    assert!(!log.contains("artifact set primary written"), "{log}");
    host.assert_not_leaked(&run);
    host.assert_untouched();
}

/// A guest python loop swapping 20 files of `race/` between a regular file and a link to
/// `argv[1]`, up to 3000 rounds or 8 seconds.
const SWAP_SCRIPT: &str = r#"
import os, sys, time
target = sys.argv[1]
os.makedirs("race", exist_ok=True)
n = 20
for i in range(n):
    with open(f"race/f{i}.txt", "w") as f:
        f.write("guest\n")
print("swapping", flush=True)
end = time.time() + 8
rounds = links = 0
while rounds < 3000 and time.time() < end:
    for i in range(n):
        p = f"race/f{i}.txt"
        try:
            os.symlink(target, p + ".l")
            os.rename(p + ".l", p)
            links += 1
            with open(p + ".t", "w") as f:
                f.write("guest\n")
            os.rename(p + ".t", p)
        except OSError as e:
            print("swap error", e, flush=True)
            time.sleep(0.01)
    rounds += 1
"#;

// Item 2: the race: a guest background loop swaps files and links to a host file while the
// artifacts are collected; over several builds, the marker never reaches the artifacts.
#[test]
fn attack_artifact_race_swap_file_and_link() {
    common::ensure_bundle("python:3.12");
    let host = Host::new();
    let swap = SWAP_SCRIPT;
    let buildspec = format!(
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.12\n  build:\n    commands:\n      - python swap.py {target} &\n      - sleep 1\n      - ls race | head -n 3\nartifacts:\n  files:\n    - 'race/*.txt'\n",
        target = host.climb("secret.txt")
    );
    let name = project("race");
    for build in 0..5 {
        let src = source(&buildspec);
        std::fs::write(src.path().join("swap.py"), swap).unwrap();
        let run = run(src.path(), &name, &["--zip"]);
        let log = run.log();
        assert!(log.contains("swapping"), "build {build}: {log}");
        assert!(!log.contains("swap error"), "build {build}: {log}");
        if std::env::var_os("ATTACK_SHOW_LOG").is_some() {
            eprintln!("{log}");
        }
        // Depending on who wins, a file may be skipped, or the set may end up empty.
        assert!(
            [0, 1].contains(&run.status()),
            "build {build}: {}",
            run.stdout()
        );
        host.assert_not_leaked(&run);
        host.assert_untouched();
    }
}

// Item 4 / Deliver 2: an exported file of mode 6777 loses setuid, setgid and group/world
// write, in the directory and in the zip.
#[test]
fn attack_artifact_copy_modes_masked() {
    let host = Host::new();
    let src = source(&spec(
        "echo run > tool.sh",
        "artifacts:\n  name: set\n  files:\n    - tool.sh\n    - data.txt\n",
    ));
    std::fs::write(src.path().join("tool.sh"), "#!/bin/sh\n").unwrap();
    std::fs::write(src.path().join("data.txt"), "data\n").unwrap();
    std::fs::set_permissions(
        src.path().join("tool.sh"),
        std::fs::Permissions::from_mode(0o6777),
    )
    .unwrap();
    std::fs::set_permissions(
        src.path().join("data.txt"),
        std::fs::Permissions::from_mode(0o1666),
    )
    .unwrap();
    let run = run(src.path(), &project("artmode"), &["--zip"]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let mode = |p: &str| {
        std::fs::metadata(run.out.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("set/tool.sh"), 0o755);
    assert_eq!(mode("set/data.txt"), 0o644);
    let zip = std::fs::read(run.out.path().join("set.zip")).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    for i in 0..archive.len() {
        let file = archive.by_index(i).unwrap();
        let mode = file.unix_mode().unwrap();
        assert_eq!(
            mode & MASKED,
            0,
            "{} has mode {mode:o}",
            file.name().unwrap_or_default()
        );
    }
    host.assert_untouched();
}

// Item 2: enable-symlinks keeps a link that stays inside, never one that leads out.
#[test]
fn attack_artifact_enable_symlinks_link_out() {
    let host = Host::new();
    let src = source(&spec(
        &format!(
            "mkdir -p l\necho in > l/real.txt\nln -s real.txt l/inside\nln -s {} l/outside\nln -s ../../x l/climb\nmkdir -p l/deep\necho deep > l/deep/own.txt\nln -s ../../buildspec.yml l/deep/up\nln -s own.txt l/deep/same",
            host.climb("secret.txt")
        ),
        "artifacts:\n  name: links\n  enable-symlinks: yes\n  files:\n    - 'l/*'\n  secondary-artifacts:\n    based:\n      base-directory: l/deep\n      enable-symlinks: yes\n      files:\n        - '*'\n    flat:\n      discard-paths: yes\n      enable-symlinks: yes\n      files:\n        - 'l/deep/*'\n",
    ));
    let run = run(src.path(), &project("artsym"), &["--zip"]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    assert_eq!(
        files_under(&run.out.path().join("links")),
        ["l/inside", "l/real.txt"]
    );
    assert_eq!(
        std::fs::read_link(run.out.path().join("links/l/inside")).unwrap(),
        Path::new("real.txt")
    );
    let log = run.log();
    assert!(
        log.contains("skipping symlink l/outside that points outside the source directory"),
        "{log}"
    );
    assert!(log.contains("skipping symlink l/climb"), "{log}");
    // Inside the source, but out of the exported set (base-directory, discard-paths).
    assert_eq!(
        files_under(&run.out.path().join("based")),
        ["own.txt", "same"]
    );
    assert!(
        log.contains("skipping symlink up that points outside"),
        "{log}"
    );
    assert_eq!(
        files_under(&run.out.path().join("flat")),
        ["own.txt", "same"]
    );
    assert!(
        log.contains("skipping symlink l/deep/up that points outside"),
        "{log}"
    );
    host.assert_not_leaked(&run);
    host.assert_untouched();
}

// Item 2: discard-paths does not bring a host file through a link either.
#[test]
fn attack_artifact_discard_paths_link() {
    let host = Host::new();
    let src = source(&spec(
        &format!(
            "mkdir -p a/b\necho own > a/b/own.txt\nln -s {} a/b/secret.txt\nln -s {} a/hd",
            host.climb("secret.txt"),
            host.climb("hostdir")
        ),
        "artifacts:\n  name: flat\n  discard-paths: yes\n  files:\n    - 'a/**/*'\n",
    ));
    let run = run(src.path(), &project("artflat"), &["--zip"]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    assert_eq!(files_under(&run.out.path().join("flat")), ["own.txt"]);
    host.assert_not_leaked(&run);
    host.assert_untouched();
}

// Items 2: `..` in artifact paths and base-directory stays inside the source directory.
#[test]
fn attack_artifact_dotdot_paths() {
    let host = Host::new();
    let rel_to_host = host.climb("secret.txt");
    let src = source(&spec(
        "echo own > own.txt",
        &format!(
            "artifacts:\n  files:\n    - '../**/*'\n    - '{rel_to_host}'\n    - own.txt\n  secondary-artifacts:\n    up:\n      base-directory: '../..'\n      files:\n        - '**/*'\n"
        ),
    ));
    let run = run(src.path(), &project("artdotdot"), &[]);
    assert_eq!(run.status(), 1, "{}", run.stdout());
    let log = run.log();
    assert!(
        log.contains("base-directory ../.. must be a path inside the source directory"),
        "{log}"
    );
    host.assert_not_leaked(&run);
    host.assert_untouched();
}

// ----- cache save (item 3) ----------------------------------------------------------------

// Item 3: cache paths that are guest links to a host directory (in the source, /root and
// /tmp) are saved as links, never walked: no host file is stored nor restored.
#[test]
fn attack_cache_path_link_to_host_dir() {
    let host = Host::new();
    let name = project("cachelink");
    let key = "attack-key";
    let script = format!(
        "if [ -L deps ]; then echo restored-li\"\"nk; fi\nrm -f deps /root/.cache /tmp/hd\nmkdir -p /root\nln -s {hd} deps\nln -s {hd} /root/.cache\nln -s {hd} /tmp/hd\nls deps/ || echo deps-not-listed",
        hd = host.climb("hostdir")
    );
    let buildspec = spec(
        &script,
        &format!(
            "cache:\n  key: {key}\n  paths:\n    - deps\n    - 'deps/**/*'\n    - '/root/.cache/**/*'\n    - /tmp/hd\n    - '/tmp/hd/pub/*'\n"
        ),
    );
    let src = source(&buildspec);
    let first = run(src.path(), &name, &[]);
    assert_eq!(first.status(), 0, "{}", first.stdout());
    let (tree, blobs) = cache_tree(&name, key).expect("the entry was saved");
    for blob in &blobs {
        assert!(!contains(blob, host.marker.as_bytes()), "marker cached");
    }
    for entry in &tree.entries {
        assert!(
            !entry.path.contains("inner.txt") && !entry.path.contains("page.html"),
            "host file listed in the cache: {}",
            entry.path
        );
    }
    assert!(
        tree.entries
            .iter()
            .any(|e| e.path == "src/deps" && e.kind == EntryKind::Symlink),
        "{:?}",
        tree.entries
    );
    // The next build: the links leading out are not restored.
    let second = run(src.path(), &name, &[]);
    assert_eq!(second.status(), 0, "{}", second.stdout());
    let log = second.log();
    assert!(!log.contains("restored-link"), "{log}");
    assert!(
        log.contains("the link points outside the directory"),
        "{log}"
    );
    host.assert_not_leaked(&first);
    host.assert_not_leaked(&second);
    host.assert_untouched();
}

// Items 3, Deliver 1: `..` and absolute paths outside the mounts in cache paths are refused
// with a warning; nothing is saved from outside.
#[test]
fn attack_cache_dotdot_paths() {
    let host = Host::new();
    let name = project("cachedotdot");
    let key = "attack-key";
    let buildspec = spec(
        "echo own > own.txt",
        &format!(
            "cache:\n  key: {key}\n  paths:\n    - '../**/*'\n    - 'a/../../x'\n    - /etc/passwd\n    - '{}'\n    - '{}'\n",
            host.path("hostdir").display(),
            host.climb("hostdir")
        ),
    );
    let src = source(&buildspec);
    let run = run(src.path(), &name, &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(log.contains("climbs out with `..`; ignored"), "{log}");
    assert!(
        log.contains("is outside the source directory, /root and /tmp; ignored"),
        "{log}"
    );
    assert!(cache_tree(&name, key).is_none(), "nothing may be saved");
    host.assert_not_leaked(&run);
    host.assert_untouched();
}

// ----- cache restore (items 3, 4) ---------------------------------------------------------

// Item 3: a restore over links planted in the source replaces them, never writes through:
// the host file stays as it was, a directory link is refused.
#[test]
fn attack_cache_restore_over_planted_link() {
    let host = Host::new();
    let name = project("restorelink");
    let key = "attack-key";
    plant_cache(
        &name,
        key,
        vec![
            dir_entry("src", 0o755),
            file_entry("src/out.txt", 0o644, b"from the cache\n"),
            file_entry("src/deps/lib.txt", 0o644, b"lib from the cache\n"),
            file_entry("tmp/t.txt", 0o644, b"tmp from the cache\n"),
        ],
    );
    let buildspec = spec(
        "cat out.txt\ncat /tmp/t.txt\nls deps || echo deps-refused",
        &format!("cache:\n  key: {key}\n  action: restore\n  paths:\n    - out.txt\n"),
    );
    let src = source(&buildspec);
    std::os::unix::fs::symlink(host.path("secret.txt"), src.path().join("out.txt")).unwrap();
    std::os::unix::fs::symlink(host.path("hostdir"), src.path().join("deps")).unwrap();
    let run = run(src.path(), &name, &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(log.contains("from the cache\n"), "{log}");
    assert!(log.contains("tmp from the cache\n"), "{log}");
    assert!(
        log.contains("cache entry not restored: src/deps/lib.txt: a symbolic link is on its path"),
        "{log}"
    );
    assert!(!host.path("hostdir/lib.txt").exists());
    host.assert_not_leaked(&run);
    host.assert_untouched();
}

// Item 4 / Deliver 2: a crafted cache entry of mode 6777 (and a directory of mode 7777) is
// restored without setuid, setgid, sticky or group/world write, and exported so.
#[test]
fn attack_cache_mode_6777_masked() {
    let host = Host::new();
    let name = project("mode");
    let key = "attack-key";
    plant_cache(
        &name,
        key,
        vec![
            dir_entry("src/bin", 0o7777),
            file_entry("src/bin/tool", 0o6777, b"#!/bin/sh\necho tool\n"),
            file_entry("src/data.txt", 0o2666, b"data\n"),
        ],
    );
    let buildspec = spec(
        "cat bin/tool",
        &format!(
            "artifacts:\n  name: set\n  files:\n    - 'bin/*'\n    - data.txt\ncache:\n  key: {key}\n  action: restore\n  paths:\n    - bin\n"
        ),
    );
    let src = source(&buildspec);
    let run = run(src.path(), &name, &["--zip"]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    assert!(run.log().contains("echo tool"), "{}", run.log());
    let mode = |p: &str| {
        std::fs::metadata(run.out.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("set/bin/tool"), 0o755);
    assert_eq!(mode("set/data.txt"), 0o644);
    // The restore itself, straight into a directory.
    let digest = store().get_ref(&cache_ref(&name, key)).unwrap().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let stats = store().restore_tree(&digest, dest.path()).unwrap();
    assert_eq!(stats.files, 2);
    let restored = |p: &str| {
        std::fs::metadata(dest.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(restored("src/bin/tool"), 0o755);
    assert_eq!(restored("src/data.txt"), 0o644);
    assert_eq!(restored("src/bin"), 0o755);
    // Restoring again over a file whose content matches fixes a wider mode too.
    std::fs::set_permissions(
        dest.path().join("src/data.txt"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let again = store().restore_tree(&digest, dest.path()).unwrap();
    assert_eq!(again.unchanged_files, 2);
    assert_eq!(restored("src/data.txt"), 0o644);
    host.assert_untouched();
}

// Deliver 2: a restored link leading out of the tree (absolute, or climbing with `..`) is
// skipped with a warning; one staying inside is restored.
#[test]
fn attack_cache_restored_link_out_of_tree_skipped() {
    let host = Host::new();
    let name = project("restoredlinks");
    let key = "attack-key";
    let secret = host.path("secret.txt");
    plant_cache(
        &name,
        key,
        vec![
            file_entry("src/real.txt", 0o644, b"real\n"),
            link_entry("src/inside", "real.txt"),
            link_entry("src/abs", secret.to_str().unwrap()),
            link_entry("src/climb", &host.climb("secret.txt")),
            link_entry("src/up", "../../x"),
        ],
    );
    let buildspec = spec(
        "cat inside\nfor l in abs climb up; do if [ -L $l ]; then echo \"present-$l\"; fi; done",
        &format!("cache:\n  key: {key}\n  action: restore\n  paths:\n    - src\n"),
    );
    let src = source(&buildspec);
    let run = run(src.path(), &name, &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(log.contains("real\n"), "{log}");
    for link in ["abs", "climb", "up"] {
        assert!(!log.contains(&format!("present-{link}")), "{log}");
    }
    for link in ["src/abs", "src/climb", "src/up"] {
        assert!(
            log.contains(&format!("cache entry not restored: {link} -> ")),
            "{link}: {log}"
        );
    }
    host.assert_not_leaked(&run);
    host.assert_untouched();
}

// Item 3 / Deliver 2: crafted trees with `../` and absolute paths are refused; nothing is
// written outside the destination.
#[test]
fn attack_cache_crafted_tree_paths_refused() {
    let host = Host::new();
    let name = project("crafted");
    let key = "attack-key";
    let outside = host.path("hostdir/escaped.txt");
    let rel_out = format!(
        "{}{}",
        "../".repeat(40),
        outside.to_str().unwrap().trim_start_matches('/')
    );
    plant_cache(
        &name,
        key,
        vec![
            file_entry("src/ok.txt", 0o644, b"ok\n"),
            file_entry(&rel_out, 0o644, b"escaped\n"),
            file_entry(outside.to_str().unwrap(), 0o644, b"escaped\n"),
            file_entry("src/../../escaped.txt", 0o644, b"escaped\n"),
            link_entry(&format!("src/{}", "x/../y"), "ok.txt"),
        ],
    );
    let buildspec = spec(
        "cat ok.txt",
        &format!("cache:\n  key: {key}\n  action: restore\n  paths:\n    - src\n"),
    );
    let src = source(&buildspec);
    let run = run(src.path(), &name, &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(log.contains("ok\n"), "{log}");
    assert!(log.contains("not a safe relative path"), "{log}");
    assert!(!outside.exists());
    // Straight into a directory: nothing lands beside it.
    let digest = store().get_ref(&cache_ref(&name, key)).unwrap().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let dest = parent.path().join("dest");
    let stats = store().restore_tree(&digest, &dest).unwrap();
    assert_eq!(stats.refused.len(), 4, "{:?}", stats.refused);
    assert_eq!(files_under(parent.path()), ["dest/src/ok.txt"]);
    host.assert_not_leaked(&run);
    host.assert_untouched();
}

// ----- the shell (Deliver 1) --------------------------------------------------------------

// Deliver 1: redirections through a guest link to a host file neither write nor read it:
// `>`, `>>`, `<`, and `test` does not see it as a file.
#[test]
fn attack_redirection_through_link() {
    let host = Host::new();
    let script = format!(
        "ln -s {f} out\nln -s {d} hd\necho pwned > out || echo refused-\"write\"\necho pwned >> out || echo refused-\"append\"\necho pwned > hd/new.txt || echo refused-\"new\"\ncat < out || echo refused-\"read\"\nif test -f out; then echo test-f-tr\"\"ue; fi\nif [ -r out ] || [ -s out ] || [ -e hd/inner.txt ]; then echo test-tr\"\"ue; fi\nread line < out || echo refused-\"read-builtin\"\necho \"line=$line\"",
        f = host.climb("secret.txt"),
        d = host.climb("hostdir")
    );
    let src = source(&spec(&script, ""));
    let run = run(src.path(), &project("redirect"), &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    for expected in [
        "refused-write",
        "refused-append",
        "refused-new",
        "refused-read",
        "refused-read-builtin",
        "line=\n",
    ] {
        assert!(log.contains(expected), "{expected}: {log}");
    }
    assert!(!log.contains("test-f-true"), "{log}");
    assert!(!log.contains("test-true"), "{log}");
    host.assert_not_leaked(&run);
    host.assert_untouched();
}

// Deliver 1: a redirection onto a link planted in the source (absolute target) is refused.
#[test]
fn attack_redirection_through_planted_absolute_link() {
    let host = Host::new();
    let src = source(&spec(
        "echo pwned > planted || echo refused-\"write\"\ncat planted || echo refused-\"cat\"\nsource ./planted || echo refused-\"source\"",
        "",
    ));
    std::os::unix::fs::symlink(host.path("secret.txt"), src.path().join("planted")).unwrap();
    let run = run(src.path(), &project("planted"), &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(log.contains("refused-write"), "{log}");
    assert!(log.contains("refused-cat"), "{log}");
    assert!(log.contains("refused-source"), "{log}");
    host.assert_not_leaked(&run);
    host.assert_untouched();
}

// Deliver 1: `codebuild-hash-files` does not read host files through links or `..`.
#[test]
fn attack_hash_files_through_link() {
    let host = Host::new();
    let script = format!(
        "ln -s {f} lock\nln -s {d} hd\necho own > own.txt\ncodebuild-hash-files lock; echo \"status-lock=$?\"\ncodebuild-hash-files 'hd/**'; echo \"status-dir=$?\"\ncodebuild-hash-files '../../../**/secret.txt'; echo \"status-up=$?\"\ncodebuild-hash-files own.txt lock; echo \"status-mixed=$?\"",
        f = host.climb("secret.txt"),
        d = host.climb("hostdir")
    );
    let src = source(&spec(&script, ""));
    let run = run(src.path(), &project("hash"), &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(log.contains("status-lock=1"), "{log}");
    assert!(log.contains("status-dir=1"), "{log}");
    assert!(log.contains("status-up=2"), "{log}");
    assert!(log.contains("patterns may not contain `..`"), "{log}");
    // The host file's digest is never computed into the key.
    let secret_digest = wasmbuild::digest::sha256_hex(format!("{}\n", host.marker).as_bytes());
    let own_only = {
        let own = wasmbuild::digest::sha256_hex(b"own\n");
        wasmbuild::digest::sha256_hex(format!("{own}  own.txt\n").as_bytes())
    };
    assert!(!log.contains(&secret_digest), "{log}");
    assert!(
        log.contains(&format!("{own_only}\nstatus-mixed=0")),
        "only own.txt is hashed: {log}"
    );
    host.assert_not_leaked(&run);
    host.assert_untouched();
}

// Item 3: the race at cache save: the guest loop swaps files and links to a host file while
// the cache paths are saved; over several builds, no saved entry holds the marker.
#[test]
fn attack_cache_race_swap_file_and_link() {
    common::ensure_bundle("python:3.12");
    let host = Host::new();
    let buildspec = format!(
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.12\n  build:\n    commands:\n      - python swap.py {target} &\n      - sleep 1\ncache:\n  key: race-$CODEBUILD_BUILD_NUMBER\n  action: save\n  paths:\n    - 'race/**/*'\n",
        target = host.climb("secret.txt")
    );
    let name = project("cacherace");
    for build in 1..=4 {
        let src = source(&buildspec);
        std::fs::write(src.path().join("swap.py"), SWAP_SCRIPT).unwrap();
        let run = run(src.path(), &name, &[]);
        assert_eq!(run.status(), 0, "build {build}: {}", run.stdout());
        let log = run.log();
        assert!(log.contains("swapping"), "build {build}: {log}");
        if std::env::var_os("ATTACK_SHOW_LOG").is_some() {
            eprintln!("{log}");
        }
        assert!(
            log.contains(&format!("Saving cache under key race-{build}")),
            "build {build}: {log}"
        );
        let (tree, blobs) = cache_tree(&name, &format!("race-{build}")).expect("saved");
        assert!(!tree.entries.is_empty());
        for blob in &blobs {
            assert!(
                !contains(blob, host.marker.as_bytes()),
                "build {build}: marker cached"
            );
        }
        for entry in &tree.entries {
            if let Some(target) = &entry.target {
                assert!(target.starts_with("../"), "{target}");
            }
        }
        host.assert_not_leaked(&run);
        host.assert_untouched();
    }
}

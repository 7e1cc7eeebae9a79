//! Shared set-up of the integration tests: one store under cargo's test scratch directory,
//! holding real runtime bundles built (once) from the recipes in `runtimes/`.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use std::sync::Mutex;

/// The store every integration test uses.
pub fn store_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("store")
}

/// The workspace's target directory; runtime crates (the toolbox) build in `runtimes/` below it.
fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target directory")
        .to_owned()
}

/// `wasmbuild` with the test store.
pub fn wasmbuild() -> assert_cmd::Command {
    assert_cmd::Command::from_std(wasmbuild_process())
}

/// `wasmbuild` with the test store, as a process the test drives itself (its pipes, its
/// wait).
pub fn wasmbuild_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbuild"));
    cmd.env("WASMBUILD_STORE", store_dir())
        .env_remove("RUST_LOG");
    cmd
}

/// `wasmbuild sh --image IMAGE --src SRC [OPTIONS] -c SCRIPT`, with the image's bundles
/// (and `base`) built first.
pub fn sandbox_sh(image: &str, src: &std::path::Path, options: &[&str], script: &str) -> Output {
    ensure_bundle("base");
    if image != "base" {
        ensure_bundle(image);
    }
    wasmbuild()
        .args(["sh", "--image", image, "--src"])
        .arg(src)
        .args(options)
        .args(["-c", script])
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .expect("run wasmbuild sh")
}

/// The digest `wasmbuild runtime list` gives the bundle `name` of `version` in `store`.
pub fn bundle_digest(store: &std::path::Path, name: &str, version: &str) -> String {
    let out = wasmbuild()
        .env("WASMBUILD_STORE", store)
        .args(["runtime", "list"])
        .output()
        .unwrap();
    let list = succeeded(&out);
    list.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|words| words[..2] == [name, version])
        .map(|words| words[2].to_owned())
        .unwrap_or_else(|| panic!("no {name} {version} bundle in\n{list}"))
}

/// The stdout of a run that must have exited 0 (both streams shown if it did not).
pub fn succeeded(out: &Output) -> String {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Builds the bundle `name` (`NAME[:VERSION]`) into the test store unless it is there
/// already.
pub fn ensure_bundle(name: &str) {
    // One lock per bundle: tests of other bundles go on while python 3.13 compiles.
    static LOCKS: Mutex<Vec<(String, std::sync::Arc<Mutex<()>>)>> = Mutex::new(Vec::new());
    let lock = {
        let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
        match locks.iter().find(|(n, _)| n == name) {
            Some((_, lock)) => lock.clone(),
            None => {
                let lock = std::sync::Arc::new(Mutex::new(()));
                locks.push((name.to_owned(), lock.clone()));
                lock
            }
        }
    };
    let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let built = match name.split_once(':') {
        None => store_dir().join("refs/bundles").join(name).is_file(),
        Some((bundle, version)) => {
            std::fs::read_dir(store_dir().join("refs/bundle-versions").join(bundle))
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .any(|e| {
                    let found = e.file_name().to_string_lossy().into_owned();
                    found == version || found.starts_with(&format!("{version}."))
                })
        }
    };
    if built {
        return;
    }
    let status = Command::new(env!("CARGO_BIN_EXE_wasmbuild"))
        .args(["runtime", "build", name])
        .env("WASMBUILD_STORE", store_dir())
        .env("CARGO_TARGET_DIR", target_dir().join("runtimes"))
        .status()
        .expect("run wasmbuild runtime build");
    assert!(status.success(), "wasmbuild runtime build {name} failed");
}

/// Compiles WebAssembly text to a module file in `dir` and returns its file name.
pub fn write_wat(dir: &std::path::Path, name: &str, wat: &str) -> String {
    let bytes = wat::parse_str(wat).expect("valid WAT");
    std::fs::write(dir.join(name), bytes).expect("write module");
    name.to_owned()
}

/// A finished build: its output, and the artifacts directory with build.json and build.log.
pub struct Run {
    pub output: Output,
    pub out: tempfile::TempDir,
}

impl Run {
    pub fn status(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn record(&self) -> Value {
        let text =
            std::fs::read_to_string(self.out.path().join("build.json")).unwrap_or_else(|e| {
                panic!(
                    "build.json: {e}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                )
            });
        serde_json::from_str(&text).expect("build.json is JSON")
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.out.path().join("build.log")).expect("build.log")
    }
    pub fn artifact(&self, path: &str) -> String {
        std::fs::read_to_string(self.out.path().join(path))
            .unwrap_or_else(|e| panic!("artifact {path}: {e}\nlog:\n{}", self.log()))
    }
    /// `(phaseType, phaseStatus)` of every phase of the record, in order.
    pub fn phases(&self) -> Vec<(String, String)> {
        self.record()["phases"]
            .as_array()
            .expect("phases")
            .iter()
            .map(|p| {
                (
                    p["phaseType"].as_str().unwrap_or_default().to_owned(),
                    p["phaseStatus"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
    pub fn phase_status(&self, name: &str) -> Option<String> {
        self.phases()
            .into_iter()
            .find(|(p, _)| p == name)
            .map(|(_, s)| s)
    }
}
/// A module that writes "hello from wasm\n" to stdout and exits 0.
pub const HELLO: &str = r#"(module
    (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 16) "hello from wasm\n")
    (func (export "_start")
      (i32.store (i32.const 0) (i32.const 16))
      (i32.store (i32.const 4) (i32.const 16))
      (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// A recipe directory holding one `hello` bundle (commands `hello` and `hi`) made from
/// [`HELLO`], pinned by `sha256`.
pub fn hello_recipe(recipes: &std::path::Path, sha256: &str) {
    let dir = recipes.join("hello");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello.wasm"), wat::parse_str(HELLO).unwrap()).unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            "name = \"hello\"\nversion = \"1.0\"\ncommands = [\"hello\", \"hi\"]\n\n\
             [source]\nkind = \"file\"\npath = \"hello.wasm\"\nsha256 = \"{sha256}\"\n"
        ),
    )
    .unwrap();
}

/// The sha256 of [`HELLO`] compiled.
pub fn hello_digest() -> String {
    wasmbuild::digest::sha256_hex(&wat::parse_str(HELLO).unwrap())
}

pub mod index;

/// Copies the tree at `from` into `to`.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

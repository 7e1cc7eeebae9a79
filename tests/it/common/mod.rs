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
    let mut cmd = assert_cmd::Command::cargo_bin("wasmbuild").expect("the wasmbuild binary");
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

/// Builds the bundle `name` into the test store unless it is there already.
pub fn ensure_bundle(name: &str) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let reference = store_dir().join("refs/bundles").join(name);
    if reference.is_file() {
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
pub mod index;

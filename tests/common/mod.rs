//! Shared set-up of the integration tests: one store under cargo's test scratch directory,
//! holding real runtime bundles built (once) from the recipes in `runtimes/`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
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

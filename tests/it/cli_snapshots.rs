//! The command line's messages and tables, as a user reads them, checked against
//! snapshots (insta; `cargo insta review` or `INSTA_UPDATE=always` to accept a change).
//! Paths of the scratch directories are replaced by names; nothing here builds a bundle.

use std::path::Path;
use std::process::Output;

use crate::common;

/// A scratch directory with recipes that hold `hello` alone (a WAT module: its digest is
/// fixed) and an empty source directory; the store is made on first use.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        common::hello_recipe(&dir.path().join("recipes"), &common::hello_digest());
        std::fs::create_dir(dir.path().join("src")).unwrap();
        Fixture { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn wasmbuild(&self, args: &[&str]) -> Output {
        assert_cmd::Command::cargo_bin("wasmbuild")
            .unwrap()
            // Nothing of the caller's environment: help shows the variables' values.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("WASMBUILD_STORE", self.path("store"))
            .env("WASMBUILD_RECIPES", self.path("recipes"))
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    /// Status, stdout and stderr of a run, with the fixture's directory named `[DIR]`.
    fn run(&self, args: &[&str]) -> String {
        let out = self.wasmbuild(args);
        let text = format!(
            "status: {}\n--- stdout\n{}--- stderr\n{}",
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = self.dir.path().to_string_lossy().into_owned();
        let canonical = self.dir.path().canonicalize().unwrap();
        text.replace(&dir, "[DIR]")
            .replace(&*canonical.to_string_lossy(), "[DIR]")
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }
}

fn write_buildspec(dir: &Path, text: &str) {
    std::fs::write(dir.join("buildspec.yml"), text).unwrap();
}

#[test]
fn top_level_help() {
    insta::assert_snapshot!(Fixture::new().run(&["--help"]));
}

#[test]
fn a_malformed_buildspec_names_file_line_and_column() {
    let fx = Fixture::new();
    write_buildspec(
        &fx.path("src"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n    on-failure: MAYBE\n",
    );
    insta::assert_snapshot!(fx.run(&["run", "src"]));
}

#[test]
fn strict_refuses_a_buildspec_with_warnings() {
    let fx = Fixture::new();
    write_buildspec(
        &fx.path("src"),
        "version: 0.2\neb_codebuild_settings: {}\nphases:\n  build:\n    commands:\n      - echo hi\n    bogus: 1\n",
    );
    insta::assert_snapshot!(fx.run(&["run", "--strict", "src"]));
}

#[test]
fn a_buildspec_that_is_not_yaml() {
    let fx = Fixture::new();
    write_buildspec(&fx.path("src"), "version: 0.2\nphases: [\n");
    insta::assert_snapshot!(fx.run(&["run", "src"]));
}

#[test]
fn an_unknown_store_scheme() {
    insta::assert_snapshot!(Fixture::new().run(&["--store", "gs://bucket", "store", "stats"]));
}

#[test]
fn an_empty_store_stats_and_verify() {
    let fx = Fixture::new();
    insta::assert_snapshot!("empty_store_stats", fx.run(&["store", "stats"]));
    insta::assert_snapshot!("empty_store_verify", fx.run(&["store", "verify"]));
}

#[test]
fn runtime_list_and_an_unknown_image() {
    let fx = Fixture::new();
    let built = fx.run(&["runtime", "build", "hello"]);
    assert!(built.starts_with("status: 0"), "{built}");
    insta::assert_snapshot!("runtime_list", fx.run(&["runtime", "list"]));
    insta::assert_snapshot!(
        "unknown_image",
        fx.run(&["exec", "--src", "src", "--image", "nope", "--", "true"])
    );
    insta::assert_snapshot!("unknown_recipe", fx.run(&["runtime", "build", "python"]));
}

#[test]
fn bad_options_are_bad_input() {
    let fx = Fixture::new();
    write_buildspec(
        &fx.path("src"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n",
    );
    fx.write("env", "NOT A PAIR\n");
    insta::assert_snapshot!("bad_env_file", fx.run(&["run", "src", "--env-file", "env"]));
    insta::assert_snapshot!("bad_timeout", fx.run(&["run", "src", "--timeout", "0"]));
    insta::assert_snapshot!(
        "bad_image_name",
        fx.run(&["exec", "--image", "../etc", "--", "true"])
    );
}

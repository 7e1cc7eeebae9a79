//! Reproducible builds (issue 6): `wasmbuild verify` and `--deterministic`, on fixtures whose
//! artifacts embed the clock, entropy, directory order and the build id.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn verify(name: &str, args: &[&str]) -> Output {
    common::ensure_bundle("base");
    common::ensure_bundle("python");
    common::wasmbuild()
        .arg("verify")
        .arg(fixture(name))
        .args(args)
        .env_remove("WASMBUILD_DETERMINISTIC")
        .output()
        .expect("run wasmbuild verify")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn clock_entropy_and_listing_order_are_reproducible_under_deterministic() {
    let output = verify("reproducible", &["--deterministic"]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("reproducible: 4 artifact file(s) identical in both builds"),
        "{stdout}"
    );
}

#[test]
fn without_deterministic_each_leaking_file_is_named_with_its_difference() {
    let output = verify("reproducible", &[]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("NOT reproducible"), "{stdout}");
    // Text: a short unified diff; the date moved on by at least a second between builds.
    assert!(
        stdout.contains("primary/out/date.txt: text differs"),
        "{stdout}"
    );
    assert!(stdout.contains("--- first\n"), "{stdout}");
    assert!(stdout.contains("-time_ns "), "{stdout}");
    assert!(stdout.contains("+urandom "), "{stdout}");
    // Binary: the tar embeds file times; reported with the first differing byte and sizes.
    let binary = regex::Regex::new(
        r"primary/out/gen\.tar: binary content differs from byte \d+ \(sizes \d+ and \d+\)",
    )
    .unwrap();
    assert!(binary.is_match(&stdout), "{stdout}");
}

#[test]
fn the_build_id_is_unique_and_reported_with_and_without_deterministic() {
    for args in [&[][..], &["--deterministic"][..]] {
        let output = verify("build-id", args);
        let stdout = text(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stdout}");
        assert!(
            stdout.contains("NOT reproducible: 1 of 2 artifact file(s) differ"),
            "{stdout}"
        );
        assert!(
            stdout.contains("primary/out/id.txt: text differs"),
            "{stdout}"
        );
        assert!(!stdout.contains("constant.txt"), "{stdout}");
    }
}

#[test]
fn json_report_names_each_difference() {
    let output = verify("build-id", &["--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(report["reproducible"], false);
    assert_eq!(report["deterministic"], false);
    assert_ne!(report["first"]["id"], report["second"]["id"]);
    let differences = report["differences"].as_array().expect("differences");
    assert_eq!(differences.len(), 1, "{report:#}");
    assert_eq!(differences[0]["path"], "primary/out/id.txt");
    assert!(
        differences[0]["diff"]
            .as_str()
            .unwrap()
            .contains("+built by build-id:"),
        "{report:#}"
    );
}

#[test]
fn bad_input_exits_2() {
    let output = verify("bad-buildspec", &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("buildspec.yml"));
}

/// `wasmbuild run --deterministic --zip` into a fresh directory, returning the record.
fn deterministic_zip_build(src: &Path) -> Value {
    let out = tempfile::tempdir().unwrap();
    let output = common::wasmbuild()
        .arg("run")
        .arg(src)
        .arg("-a")
        .arg(out.path())
        .args(["--deterministic", "--zip"])
        .output()
        .expect("run wasmbuild");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    serde_json::from_str(&std::fs::read_to_string(out.path().join("build.json")).unwrap()).unwrap()
}

#[test]
fn directory_order_and_file_mtimes_do_not_leak_into_artifact_digests() {
    common::ensure_bundle("base");
    // The same files, created in opposite orders a second apart, listed by the guest and
    // archived by it (`ls -f`, `tar`), and zipped by wasmbuild.
    let make = |names: &[&str]| {
        let src = tempfile::tempdir().unwrap();
        let mut commands = String::from("      - mkdir -p out/files\n");
        for name in names {
            commands.push_str(&format!("      - echo {name} > out/files/{name}\n"));
        }
        commands.push_str("      - ls -f out/files > out/listing.txt\n");
        commands.push_str("      - tar -cf out/files.tar out/files\n");
        std::fs::write(
            src.path().join("buildspec.yml"),
            format!(
                "version: 0.2\nphases:\n  build:\n    commands:\n{commands}artifacts:\n  files:\n    - out/**/*\n"
            ),
        )
        .unwrap();
        src
    };
    let first = make(&["kiwi", "apple", "mango", "fig"]);
    let second = make(&["fig", "mango", "apple", "kiwi"]);
    // Same buildspec text apart from command order, so compare the artifacts, not the seed.
    let a = deterministic_zip_build(first.path());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = deterministic_zip_build(second.path());
    assert_eq!(a["artifacts"]["sha256sum"], b["artifacts"]["sha256sum"]);
    assert!(a["artifacts"]["sha256sum"].as_str().unwrap().len() == 64);
}

//! The differential suite of the build shell: every script of `shell_differential/cases.rs`
//! runs under real bash (with the host's coreutils) in a temp dir and under `wasmbuild sh`
//! (with the base image) on a copy of the same files; stdout and exit status must agree.
//! `SHELL_CASE=name` runs one case.

mod cases;
use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use cases::{CASES, Case};

struct Outcome {
    stdout: String,
    stderr: String,
    status: i32,
}

const SCRIPT_FILE: &str = "script.sh";

/// Creates the case's files (and, for file cases, the script) in `dir`.
fn populate(dir: &Path, case: &Case) {
    for (path, content) in case.files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create fixture directory");
        }
        std::fs::write(&path, content).expect("write fixture file");
        if content.starts_with("#!") || path.extension().is_some_and(|e| e == "sh") {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("make fixture executable");
        }
    }
    if case.from_file {
        std::fs::write(dir.join(SCRIPT_FILE), case.script).expect("write script");
    }
}

fn outcome(output: std::process::Output) -> Outcome {
    Outcome {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        status: output.status.code().unwrap_or(-1),
    }
}

fn run_bash(case: &Case) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    populate(dir.path(), case);
    let mut bash = Command::new("bash");
    bash.current_dir(dir.path())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir.path())
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null());
    if case.from_file {
        bash.arg(SCRIPT_FILE).args(case.args);
    } else {
        bash.arg("-c").arg(case.script);
    }
    outcome(bash.output().expect("run bash"))
}

fn run_wasmbuild(case: &Case) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    populate(dir.path(), case);
    let mut cmd = common::wasmbuild();
    cmd.current_dir(dir.path())
        .args(["sh", "--image", "base", "--src"])
        .arg(dir.path())
        .write_stdin("");
    if case.from_file {
        cmd.arg(SCRIPT_FILE).args(case.args);
    } else {
        cmd.arg("-c").arg(case.script);
    }
    outcome(cmd.output().expect("run wasmbuild sh"))
}

#[test]
fn wasmbuild_sh_agrees_with_bash() {
    common::ensure_bundle("base");
    let only = std::env::var("SHELL_CASE").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in CASES
        .iter()
        .filter(|c| only.as_deref().is_none_or(|o| o == c.name))
    {
        ran += 1;
        let expected = run_bash(case);
        let actual = run_wasmbuild(case);
        if expected.stdout != actual.stdout || expected.status != actual.status {
            failures.push(format!(
                "── {} ──\nscript: {}\nbash (status {}):\n{}\nwasmbuild sh (status {}):\n{}\nwasmbuild stderr:\n{}",
                case.name,
                case.script,
                expected.status,
                expected.stdout,
                actual.status,
                actual.stdout,
                actual.stderr
            ));
        }
    }
    assert!(ran > 0, "no case named {only:?}");
    assert!(
        failures.is_empty(),
        "{} of {ran} scripts differ from bash:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn case_names_are_unique() {
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "two cases share a name");
}

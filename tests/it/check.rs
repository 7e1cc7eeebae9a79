//! `wasmbuild check` end to end: every program the fixtures' buildspecs call is found, all
//! problems of a broken buildspec are listed at once, and a missing program or runtime is
//! reported with its line before anything runs.

use serde_json::Value;

use crate::common;

fn check(args: &[&str]) -> (i32, Value) {
    let output = common::wasmbuild()
        .arg("check")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code().unwrap(), report)
}

fn programs(report: &Value) -> Vec<(String, String)> {
    report["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn check_finds_every_program_of_the_fixtures() {
    common::ensure_bundle("base");
    common::ensure_bundle("python");
    common::ensure_bundle("python:3.12");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let dir = entry.unwrap().path();
        let buildspec = dir.join("buildspec.yml");
        if !buildspec.is_file() || dir.ends_with("bad-buildspec") {
            continue;
        }
        let (status, report) = check(&[dir.to_str().unwrap()]);
        let found = programs(&report);
        assert_eq!(status, 0, "{}: {report:#}", dir.display());
        assert!(!found.is_empty(), "{}: no program found", dir.display());
        for (name, kind) in &found {
            assert_ne!(kind, "missing", "{}: {name}", dir.display());
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} fixtures");

    // The python project: pip is wasmbuild's, pytest comes from a pip install.
    let (_, report) = check(&[fixtures.join("python-project").to_str().unwrap()]);
    let found = programs(&report);
    assert!(
        found.contains(&("pip".into(), "bundle".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&("pytest".into(), "installed".into())),
        "{found:?}"
    );
    assert_eq!(report["runtimes"][0]["status"], "provided", "{report:#}");
}

#[test]
fn check_lists_every_problem_at_once() {
    common::ensure_bundle("base");
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nenv:\n  shell: zsh\nphases:\n  build:\n    on-failure: MAYBE\n    commands: [make]\nartifacts:\n  discard_paths: yes\ncache:\n  action: both\n",
    )
    .unwrap();
    let (status, report) = check(&[src.path().to_str().unwrap()]);
    assert_eq!(status, 2, "{report:#}");
    let errors: Vec<(u64, &str)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["message"].as_str().unwrap()))
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(errors[0].0, 3);
    assert!(errors[0].1.contains("zsh"), "{errors:?}");
    assert_eq!(errors[1].0, 6);
    assert!(errors[1].1.contains("MAYBE"), "{errors:?}");
    assert_eq!(errors[2].0, 11);
    assert!(errors[2].1.contains("both"), "{errors:?}");
    let warning = &report["warnings"][0];
    assert_eq!(
        (warning["line"].as_u64(), warning["column"].as_u64()),
        (Some(9), Some(3))
    );
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `discard-paths`?"),
        "{warning}"
    );
}

#[test]
fn check_says_what_is_missing_before_anything_runs() {
    common::ensure_bundle("base");
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 2.7\n  build:\n    commands:\n      - echo start && bash -c 'echo in bash'\n      - |\n        if true; then\n          VERSION=$(gcc --version | head -1)\n        fi\n      - 'for f in a b; do'\n",
    )
    .unwrap();
    let (status, report) = check(&[src.path().to_str().unwrap()]);
    assert_eq!(status, 1, "{report:#}");
    let gcc = report["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "gcc")
        .expect("gcc found in $( ) inside if");
    assert_eq!(gcc["kind"], "missing");
    let shell = report["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "bash")
        .expect("bash");
    assert_eq!(
        shell["kind"], "builtin",
        "bash runs in the build shell itself"
    );
    assert_eq!(gcc["line"], 11);
    assert_eq!(report["runtimes"][0]["status"], "missing", "{report:#}");
    assert!(report["runtimes"][0]["available"].as_array().is_some());
    // The unfinished `for` fails when it runs: a shell error on its line.
    assert_eq!(report["shell_errors"][0]["line"], 13, "{report:#}");

    // The text form says the same, and --strict turns warnings into exit 2.
    let output = common::wasmbuild()
        .args(["check", src.path().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("gcc") && text.contains("MISSING"), "{text}");
    assert!(text.contains("the build would fail"), "{text}");
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands: [echo hi]\n    comands: [x]\n",
    )
    .unwrap();
    assert_eq!(check(&[src.path().to_str().unwrap()]).0, 0);
    assert_eq!(check(&["--strict", src.path().to_str().unwrap()]).0, 2);
}

#[test]
fn check_refuses_hostile_buildspecs_quickly() {
    let src = tempfile::tempdir().unwrap();
    let mut bomb =
        String::from("version: 0.2\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let hostile = [
        // A billion laughs where a value is read, and where it is ignored.
        format!("{bomb}env:\n  variables:\n    X: *a9\nphases: {{}}\n"),
        format!("{bomb}phases:\n  build:\n    commands: *a9\n"),
        format!("version: 0.2\nphases: {}\n", "[".repeat(100_000)),
        "\u{0}\u{1}\u{2}binary\u{7f}".repeat(1000),
    ];
    for (i, text) in hostile.iter().enumerate() {
        std::fs::write(src.path().join("buildspec.yml"), text).unwrap();
        let started = std::time::Instant::now();
        let (status, report) = check(&[src.path().to_str().unwrap()]);
        assert!(
            started.elapsed().as_secs() < 20,
            "case {i}: {:?}",
            started.elapsed()
        );
        assert_eq!(status, 2, "case {i}: {report:#}");
        assert!(
            report["errors"][0]["line"].as_u64().is_some(),
            "case {i}: {report:#}"
        );
    }
    // Over the size limit: refused before it is read whole.
    let big = std::fs::File::create(src.path().join("buildspec.yml")).unwrap();
    big.set_len(100 << 20).unwrap();
    let (status, report) = check(&[src.path().to_str().unwrap()]);
    assert_eq!(status, 2);
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("over the limit"),
        "{report:#}"
    );
}

#[test]
fn check_expands_a_runtime_version_from_the_buildspecs_variables() {
    common::ensure_bundle("base");
    common::ensure_bundle("python:3.12");
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nenv:\n  variables:\n    PY: \"3.12\"\nphases:\n  install:\n    runtime-versions:\n      python: $PY\n      nodejs: $NODE\n  build:\n    commands: [python --version]\n",
    )
    .unwrap();
    let (status, report) = check(&[src.path().to_str().unwrap()]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(report["runtimes"][0]["request"], "$PY");
    assert_eq!(report["runtimes"][0]["status"], "provided");
    assert_eq!(
        report["runtimes"][1]["status"], "variable",
        "only known when it runs"
    );
}

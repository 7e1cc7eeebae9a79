//! Attacks on the build's inputs and records (issue 13): hostile buildspecs (alias bombs,
//! deep nesting, key floods, bad bytes, names that climb out), hostile numbers on the
//! command line, secrets that try to reach build.json, `--json`, the log, file and store
//! names, and a guest that floods the log. Each case asserts the exit status, the message
//! and that nothing leaked or grew past its limit; each runs under a timeout.

use crate::common;

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Run;
use wasmbuild::buildspec::{Buildspec, BuildspecError, MAX_BUILDSPEC_BYTES, MAX_BUILDSPEC_DEPTH};

/// Every `wasmbuild` run of this file is killed after this long.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// A source directory holding `buildspec.yml` with `text`.
fn source(text: impl AsRef<[u8]>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("source dir");
    std::fs::write(dir.path().join("buildspec.yml"), text).expect("write buildspec");
    dir
}

/// `wasmbuild run SRC -a OUT ARGS…` with `envs`, under [`RUN_TIMEOUT`].
fn run_with(src: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let out = tempfile::tempdir().expect("artifacts dir");
    let mut cmd = common::wasmbuild();
    cmd.arg("run")
        .arg(src)
        .arg("-a")
        .arg(out.path())
        .args(args)
        .timeout(RUN_TIMEOUT);
    for (key, value) in envs {
        cmd.env(key, value);
    }
    let output = cmd.output().expect("run wasmbuild");
    Run { output, out }
}

/// A build that needs the base bundle.
fn build(src: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
    common::ensure_bundle("base");
    run_with(src, args, envs)
}

/// Asserts a run was refused as bad input (exit 2) without a panic, its message holding
/// every needle.
fn assert_bad_input(run: &Run, needles: &[&str]) {
    let stderr = run.stderr();
    assert_eq!(
        run.status(),
        2,
        "stdout:\n{}\nstderr:\n{stderr}",
        run.stdout()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
}

/// Runs `work` on a thread and fails the test if it takes longer than `limit`.
fn within<T: Send + 'static>(limit: Duration, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}

fn invalid(error: BuildspecError) -> (usize, usize, String) {
    match error {
        BuildspecError::Invalid {
            line,
            column,
            message,
            ..
        } => (line, column, message),
        other => panic!("not an Invalid error: {other}"),
    }
}

/// A project name of its own for a build of `src` (a tempdir), so what the store holds
/// for it can be told apart from what other runs left there.
fn project_of(src: &Path) -> String {
    let name = src.file_name().unwrap().to_string_lossy();
    format!("attack-{}", name.trim_start_matches('.'))
}

/// Every path under the store's references that belongs to `project`.
fn store_refs_of(project: &str) -> Vec<String> {
    walkdir::WalkDir::new(common::store_dir().join("refs"))
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().to_string_lossy().into_owned())
        .filter(|p| p.contains(project))
        .collect()
}

/// Every file and directory name under `dir`, recursively.
fn names_under(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

// ---- buildspec parsing (item 10, Deliver 5-6) ----

// Item 10 (holds): a billion-laughs alias bomb (10^8 strings through 8 anchored lists of
// the phases) is refused quickly, as bad input: it is never expanded.
#[test]
fn attack_yaml_alias_bomb_refused_quickly() {
    let mut text = String::from("version: 0.2\nphases:\n");
    let mut anchor = 0;
    for phase in ["install", "pre_build", "build", "post_build"] {
        text.push_str(&format!("  {phase}:\n"));
        for key in ["commands", "finally"] {
            let items = if anchor == 0 {
                vec!["x".to_owned(); 10]
            } else {
                vec![format!("*a{}", anchor - 1); 10]
            };
            text.push_str(&format!("    {key}: &a{anchor} [{}]\n", items.join(", ")));
            anchor += 1;
        }
    }
    let src = source(&text);
    let started = Instant::now();
    let run = run_with(src.path(), &[], &[]);
    assert_bad_input(&run, &["phases.install.finally[0]: invalid type: sequence"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

// Item 10: 100,000 nested `[` are refused at the first one too deep, with line and column.
#[test]
fn attack_deep_flow_nesting_refused_with_location() {
    let src = source(format!("version: 0.2\nphases: {}\n", "[".repeat(100_000)));
    let started = Instant::now();
    let run = run_with(src.path(), &[], &[]);
    // `phases: ` puts the first `[` at column 9 of line 2; the document's mapping is the
    // first level, so the 64th `[` is the first too deep.
    let column = 9 + MAX_BUILDSPEC_DEPTH - 1;
    assert_bad_input(
        &run,
        &[
            &format!("buildspec.yml:2:{column}: "),
            "nested more than 64 deep (MAX_BUILDSPEC_DEPTH)",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

// Item 10: deep block nesting (`- - - …`, 2 bytes a level) and `{a: {a: …` are refused too.
#[test]
fn attack_deep_block_and_mapping_nesting_refused() {
    for body in ["- ".repeat(200_000), "{a: ".repeat(200_000)] {
        let text = format!("version: 0.2\nphases:\n  build:\n    commands:\n      {body}x\n");
        let error = within(Duration::from_secs(10), move || {
            Buildspec::parse(&text, "b.yml").expect_err("too deep")
        });
        let (line, _, message) = invalid(error);
        assert_eq!(line, 5, "{message}");
        assert!(message.contains("MAX_BUILDSPEC_DEPTH"), "{message}");
    }
}

// Item 10: 200,000 keys in a mapping parse in well under a second of work (hashing, not a
// scan per key), and a repeat at the very end is found at its line.
#[test]
fn attack_huge_key_count_is_fast() {
    let mut text = String::from("version: 0.2\nenv:\n  variables:\n");
    for i in 0..200_000 {
        text.push_str(&format!("    K{i}: v\n"));
    }
    text.push_str("phases:\n  build:\n    commands: [true]\n");
    assert!(text.len() < MAX_BUILDSPEC_BYTES);
    let mut repeated = text.replace("phases:", "    K7: again\nphases:");
    // About a second here; the quadratic check it replaces took minutes. The margin is
    // for a loaded machine (CI builds bundles while tests run).
    let (buildspec, took) = within(Duration::from_secs(120), move || {
        let started = Instant::now();
        let parsed = Buildspec::parse(&text, "b.yml").expect("parses");
        (parsed, started.elapsed())
    });
    assert_eq!(buildspec.env.variables.len(), 200_000);
    assert!(took < Duration::from_secs(30), "{took:?}");
    // A repeat takes the last value, as CodeBuild does, with a warning at the repeat.
    let repeated = within(Duration::from_secs(30), move || {
        Buildspec::parse(&std::mem::take(&mut repeated), "b.yml").expect("a repeat is accepted")
    });
    let warning = &repeated.warnings[0];
    assert_eq!((warning.line, warning.column), (200_004, 5), "{warning}");
    assert!(warning.message.contains("`K7` is repeated"), "{warning}");
    assert_eq!(
        repeated.env.variables[7],
        ("K7".to_owned(), "again".to_owned())
    );
    assert_eq!(repeated.env.variables.len(), 200_000);
}

// Deliver 5: a buildspec over the size limit is refused before it is parsed.
#[test]
fn attack_oversized_buildspec_refused() {
    let mut text = String::from("version: 0.2\nphases:\n  build:\n    commands:\n");
    while text.len() <= MAX_BUILDSPEC_BYTES {
        text.push_str("      - echo padding padding padding padding padding padding\n");
    }
    let src = source(&text);
    let run = run_with(src.path(), &[], &[]);
    assert_bad_input(
        &run,
        &[
            "buildspec.yml:1:1: ",
            &format!("over the limit of {MAX_BUILDSPEC_BYTES} bytes (MAX_BUILDSPEC_BYTES)"),
        ],
    );
}

// Item 10 / Deliver 6: invalid UTF-8 is reported with the line and column of the first bad
// byte.
#[test]
fn attack_invalid_utf8_located() {
    let src =
        source(b"version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"h\xc3\xa9\xff\"\n");
    let run = run_with(src.path(), &[], &[]);
    assert_bad_input(&run, &["buildspec.yml:5:17: invalid UTF-8 (byte 0xff)"]);
}

// Holds: a UTF-8 byte-order mark before the buildspec is accepted.
#[test]
fn attack_bom_is_accepted() {
    let parsed = Buildspec::parse(
        "\u{feff}version: 0.2\nphases:\n  build:\n    commands: [echo ok]\n",
        "b.yml",
    )
    .expect("a BOM is fine");
    assert_eq!(
        parsed
            .phases
            .clone()
            .unwrap()
            .build
            .expect("build")
            .commands,
        ["echo ok"]
    );
    let src = source(b"\xef\xbb\xbfversion: 0.2\nphases: [\n");
    let run = run_with(src.path(), &[], &[]);
    assert_bad_input(&run, &["buildspec.yml:"]);
}

// ---- names that climb out (item 12, Deliver 6) ----

// Item 12: `runtime-versions` names and versions with `../` are bad input at their place.
#[test]
fn attack_runtime_versions_traversal_is_bad_input() {
    for (entry, column, needle) in [
        ("python: ../../x", 15, "invalid runtime version \"../../x\""),
        ("../x: 3.12", 7, "invalid runtime name \"../x\""),
        ("\"a/b\": latest", 7, "invalid runtime name \"a/b\""),
    ] {
        let src = source(format!(
            "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      {entry}\n"
        ));
        let run = run_with(src.path(), &[], &[]);
        let at = format!("buildspec.yml:5:{column}: ");
        assert_bad_input(&run, &[&at, needle]);
    }
}

// Item 12: `--image` (and `runtime build`) names with `../`, `/` or odd characters exit 2,
// naming the value; nothing is built or created in the store for them.
#[test]
fn attack_image_traversal_is_bad_input() {
    let src = source("version: 0.2\nphases:\n  build:\n    commands: [true]\n");
    for image in ["../x", "base:../../x", "a/b", "..", "x\ny", ""] {
        let run = run_with(src.path(), &["--image", image], &[]);
        assert_bad_input(&run, &[&format!("image {image:?}")]);
    }
    let output = common::wasmbuild()
        .args(["runtime", "build", "../../etc"])
        .timeout(RUN_TIMEOUT)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("image \"../../etc\""), "{stderr}");
}

// A project name that would climb out of the store's build directories is bad input.
#[test]
fn attack_project_name_traversal_is_bad_input() {
    let src = source("version: 0.2\nphases:\n  build:\n    commands: [true]\n");
    for project in ["..", ".", "a/b", "a\\b", "x\u{1}"] {
        let run = run_with(src.path(), &["--project", project], &[]);
        assert_bad_input(&run, &["project name"]);
    }
}

// ---- numbers on the command line (item 12, Deliver 6) ----

// Item 12: every numeric option out of range exits 2 with a message, never a panic.
#[test]
fn attack_bad_numbers_exit_2_without_panic() {
    let src = source("version: 0.2\nphases:\n  build:\n    commands: [true]\n");
    let cases: &[(&[&str], &str)] = &[
        (&["--timeout", "inf"], "inf"),
        (&["--timeout", "1e19"], "1e19"),
        (&["--timeout", "1.6e17"], "1.6e17"),
        (&["--timeout=-1"], "-1"),
        (&["--timeout", "NaN"], "NaN"),
        (&["--timeout", "0"], "0"),
        (&["--timeout", "1e400"], "1e400"),
        (&["--timeout", "ten"], "ten"),
        (
            &["--deterministic", "--source-date-epoch", "9300000000"],
            "9300000000",
        ),
        (
            &[
                "--deterministic",
                "--source-date-epoch",
                "18446744073709551615",
            ],
            "18446744073709551615",
        ),
        (&["--deterministic", "--source-date-epoch=-5"], "-5"),
        (&["--memory-limit", "0"], "0"),
        (
            &["--memory-limit", "99999999999999999999"],
            "99999999999999999999",
        ),
        (&["--log-limit", "0"], "0"),
    ];
    for (args, value) in cases {
        let run = run_with(src.path(), args, &[]);
        assert_bad_input(&run, &[value]);
    }
    // The same checks guard `exec` and `sh`.
    for args in [
        &["exec", "--timeout", "inf", "--", "true"][..],
        &["exec", "--timeout", "1e300", "--", "true"][..],
        &[
            "sh",
            "--deterministic",
            "--source-date-epoch",
            "99999999999",
            "-c",
            "true",
        ][..],
    ] {
        let output = common::wasmbuild()
            .args(args)
            .timeout(RUN_TIMEOUT)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

// ---- secrets (item 5, Deliver 3) ----

const SECRET: &str = "Sup3r-S3cret-Val";

fn secret_arg() -> String {
    format!("/app/db/password={SECRET}")
}

// Item 5: a secret exported or printed is masked in build.json, in `--json` and in the log.
#[test]
fn attack_secret_masked_in_record_json_and_log() {
    let src = source(
        "version: 0.2\nenv:\n  parameter-store:\n    DB_PASSWORD: /app/db/password\n  \
         exported-variables:\n    - LEAK\n    - PLAIN\nphases:\n  build:\n    commands:\n      \
         - echo \"pw=$DB_PASSWORD\"\n      - export LEAK=\"prefix-$DB_PASSWORD-suffix\"\n      \
         - export PLAIN=visible\n",
    );
    let secret = secret_arg();
    let run = build(src.path(), &["--json", "--secret", &secret], &[]);
    assert_eq!(run.status(), 0, "{}", run.stderr());
    let printed: serde_json::Value = serde_json::from_str(&run.stdout()).expect("--json");
    for record in [printed, run.record()] {
        let text = record.to_string();
        assert!(!text.contains(SECRET), "{text}");
        let exported = record["exportedEnvironmentVariables"].as_array().unwrap();
        assert_eq!(exported[0]["value"], "prefix-***-suffix");
        assert_eq!(exported[1]["value"], "visible");
    }
    let log = run.log();
    assert!(log.contains("pw=***\n"), "{log}");
    assert!(!log.contains(SECRET) && !run.stderr().contains(SECRET));
}

// Item 5: a secret cut by the 8 KiB partial-line flush (8190 bytes, then the secret in two
// writes, no newline) is still masked.
#[test]
fn attack_secret_split_across_partial_line_cut() {
    let (first, second) = SECRET.split_at(7);
    let src = source(format!(
        "version: 0.2\nenv:\n  parameter-store:\n    DB_PASSWORD: /app/db/password\n\
         phases:\n  build:\n    commands:\n      \
         - s=$(printf '%8190s' ''); printf '%s%s' \"$s\" '{first}'; printf '{second}'; printf '!'\n"
    ));
    let secret = secret_arg();
    let run = build(src.path(), &["--secret", &secret], &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(!log.contains(SECRET), "the secret leaked across the cut");
    assert!(
        log.contains("***!"),
        "{}",
        &log[log.len().saturating_sub(400)..]
    );
    assert!(!run.stdout().contains(SECRET));
}

// Item 5: a guest that flushes its output between the two halves of a secret (python
// writing 8190 bytes, flush, the secret's first half, flush, the rest) does not reveal it.
#[test]
fn attack_secret_split_by_guest_flushes() {
    common::ensure_bundle("python:3.12");
    let src = source(
        "version: 0.2\nenv:\n  parameter-store:\n    DB_PASSWORD: /app/db/password\n\
         phases:\n  install:\n    runtime-versions: {python: 3.12}\n  build:\n    commands:\n      \
         - python -c 'import os,sys; w=sys.stdout.buffer; s=os.environ[\"DB_PASSWORD\"].encode(); \
         w.write(b\"a\"*8190); w.flush(); w.write(s[:5]); w.flush(); w.write(s[5:]); w.flush(); \
         w.write(b\"!\")'\n",
    );
    let secret = secret_arg();
    let run = build(src.path(), &["--secret", &secret], &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(
        !log.contains(&SECRET[..5]),
        "the secret's first half leaked"
    );
    assert!(
        log.contains("***!"),
        "{}",
        &log[log.len().saturating_sub(400)..]
    );
    assert!(!run.stdout().contains(&SECRET[..5]));
}

// Item 5: a multi-line secret printed line by line (with other text around each line) is
// masked line by line.
#[test]
fn attack_multi_line_secret_masked_line_by_line() {
    let key = "-----BEGIN TEST KEY-----\nQUJDREVGR0hJSktMTU5PUA==\nUVJTVFVWV1hZWg==\n-----END TEST KEY-----";
    let src = source(
        "version: 0.2\nenv:\n  secrets-manager:\n    KEY: test/key\nphases:\n  build:\n    \
         commands:\n      - printf '%s\\n' \"$KEY\" | while read -r line; do echo \"got=$line\"; done\n",
    );
    let secret = format!("test/key={key}");
    let run = build(src.path(), &["--secret", &secret], &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    for line in key.lines() {
        assert!(!log.contains(line), "{line:?} leaked:\n{log}");
    }
    assert_eq!(log.matches("got=***\n").count(), 4, "{log}");
}

// Item 5: an artifact name made from a secret is refused naming the variable; no file or
// directory is named with it and the upload fails.
#[test]
fn attack_secret_in_artifact_name_refused() {
    let src = source(
        "version: 0.2\nenv:\n  parameter-store:\n    DB_PASSWORD: /app/db/password\n\
         phases:\n  build:\n    commands:\n      - echo hi > a.txt\n\
         artifacts:\n  name: out-$DB_PASSWORD\n  files: [a.txt]\n",
    );
    let secret = secret_arg();
    let project = project_of(src.path());
    let run = build(
        src.path(),
        &["--secret", &secret, "--project", &project],
        &[],
    );
    assert_eq!(run.status(), 1, "{}", run.stdout());
    assert_eq!(
        run.phase_status("UPLOAD_ARTIFACTS").as_deref(),
        Some("FAILED")
    );
    let log = run.log();
    assert!(
        log.contains("holds the value of secret variable DB_PASSWORD"),
        "{log}"
    );
    assert!(!log.contains(SECRET));
    assert!(!run.record().to_string().contains(SECRET));
    let names = names_under(run.out.path());
    assert!(names.iter().all(|n| !n.contains(SECRET)), "{names:?}");
    let refs = store_refs_of(&project);
    assert!(!refs.is_empty(), "the build's record is kept in the store");
    assert!(
        refs.iter().all(|n| !n.contains(SECRET)),
        "a store reference names the secret: {refs:?}"
    );
}

// Item 5: a cache key made from a secret is refused naming the variable: the build fails
// and no store reference is named with it.
#[test]
fn attack_secret_in_cache_key_refused() {
    let src = source(
        "version: 0.2\nenv:\n  parameter-store:\n    DB_PASSWORD: /app/db/password\n\
         phases:\n  build:\n    commands:\n      - mkdir -p cached && echo x > cached/f\n\
         cache:\n  key: k-$DB_PASSWORD\n  fallback-keys:\n    - f-$DB_PASSWORD\n  paths:\n    - cached/**/*\n",
    );
    let secret = secret_arg();
    let project = project_of(src.path());
    let run = build(
        src.path(),
        &["--json", "--secret", &secret, "--project", &project],
        &[],
    );
    assert_eq!(run.status(), 1, "{}", run.stderr());
    let log = run.log();
    assert!(
        log.contains("the cache key holds the value of secret variable DB_PASSWORD"),
        "{log}"
    );
    assert!(!log.contains(SECRET));
    assert!(!run.stdout().contains(SECRET), "--json holds the secret");
    assert!(!run.record().to_string().contains(SECRET));
    let refs = store_refs_of(&project);
    assert!(!refs.is_empty(), "the build's record is kept in the store");
    assert!(
        refs.iter().all(|n| !n.contains(SECRET)),
        "a store reference names the secret: {refs:?}"
    );
}

// ---- log size (item 11, Deliver 5) ----

// Item 11: a guest flooding the log under a small limit: output past it is dropped with
// one line, the build goes on (the next command runs, its status its own), and build.log
// and the console stay bounded.
#[test]
fn attack_log_flood_is_capped() {
    const LIMIT: u64 = 64 << 10;
    let src = source(
        "version: 0.2\nphases:\n  build:\n    commands:\n      \
         - s=$(printf '%1000s' ''); i=0; while [ $i -lt 3000 ]; do echo \"$s\"; i=$((i+1)); done\n      \
         - s=$(printf '%4000s' ''); i=0; while [ $i -lt 500 ]; do printf '%s' \"$s\"; i=$((i+1)); done\n      \
         - echo after > after.txt\n  post_build:\n    commands:\n      - echo post-build-ran\n\
         artifacts:\n  files: [after.txt]\n",
    );
    let run = build(
        src.path(),
        &[],
        &[("WASMBUILD_MAX_LOG_BYTES", &LIMIT.to_string())],
    );
    assert_eq!(run.status(), 0, "{}", run.stderr());
    assert_eq!(run.artifact("primary/after.txt"), "after\n");
    let log = run.log();
    assert_eq!(
        log.matches("log limit of 65536 bytes reached; further output dropped")
            .count(),
        1,
        "{}",
        &log[log.len().saturating_sub(2000)..]
    );
    let size = std::fs::metadata(run.out.path().join("build.log"))
        .unwrap()
        .len();
    assert!(size < LIMIT + (16 << 10), "build.log is {size} bytes");
    assert!((run.output.stdout.len() as u64) < LIMIT + (16 << 10));
    assert!(
        !log.lines().any(|l| l == "post-build-ran"),
        "output after the limit is dropped"
    );
    assert!(
        log.contains("Phase complete: POST_BUILD State: SUCCEEDED"),
        "[Container] lines go on"
    );
    assert!(log.contains("SUCCEEDED\n"));
}

// ---- host environment (holds) ----

// Holds: a host variable is not visible to the build unless passed with -e.
#[test]
fn attack_host_env_does_not_leak() {
    let src = source(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"foo=${WASMBUILD_ATTACK_FOO:-unset}\"\n",
    );
    let run = build(src.path(), &[], &[("WASMBUILD_ATTACK_FOO", "host-value")]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    assert!(run.log().contains("foo=unset\n"), "{}", run.log());
    assert!(!run.log().contains("host-value"));
    let run = build(
        src.path(),
        &["-e", "WASMBUILD_ATTACK_FOO=passed"],
        &[("WASMBUILD_ATTACK_FOO", "host-value")],
    );
    assert!(run.log().contains("foo=passed\n"), "{}", run.log());
}

// Item 12: `store gc` ages that overflow a duration are bad input, not a panic.
#[test]
fn attack_store_gc_numbers_exit_2_without_panic() {
    let store = tempfile::tempdir().unwrap();
    for args in [
        &["--max-age", "1e300"][..],
        &["--grace", "1e300"][..],
        &["--max-age", "inf"][..],
        &["--grace=-1"][..],
    ] {
        let output = common::wasmbuild()
            .arg("--store")
            .arg(store.path())
            .args(["store", "gc", "--dry-run"])
            .args(args)
            .timeout(RUN_TIMEOUT)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

// Item 12: a crafted checkout whose commit time lies past 2262 (the default
// SOURCE_DATE_EPOCH of --deterministic) is bad input, not a panic.
#[test]
fn attack_crafted_commit_time_is_bad_input() {
    use std::io::Write;
    let src = source("version: 0.2\nphases:\n  build:\n    commands: [true]\n");
    let commit = "ab".repeat(20);
    let git = src.path().join(".git");
    let objects = git.join("objects").join(&commit[..2]);
    std::fs::create_dir_all(&objects).unwrap();
    std::fs::write(git.join("HEAD"), format!("{commit}\n")).unwrap();
    let body = format!(
        "tree {}\nauthor A <a@x> 99999999999 +0000\ncommitter A <a@x> 99999999999 +0000\n\nx\n",
        "cd".repeat(20)
    );
    let mut object = format!("commit {}\0", body.len()).into_bytes();
    object.extend_from_slice(body.as_bytes());
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&object).unwrap();
    std::fs::write(objects.join(&commit[2..]), encoder.finish().unwrap()).unwrap();
    let run = build(src.path(), &["--deterministic"], &[]);
    assert_bad_input(&run, &["SOURCE_DATE_EPOCH 99999999999 is out of range"]);
}

// Item 5: a `--secret` given without its name is refused without echoing the value.
#[test]
fn attack_malformed_secret_argument_not_echoed() {
    let src = source("version: 0.2\nphases:\n  build:\n    commands: [true]\n");
    let run = run_with(src.path(), &["--secret", "JustTheValue-7f3a9"], &[]);
    assert_bad_input(&run, &["--secret: expected NAME=VALUE"]);
    assert!(
        !run.stderr().contains("JustTheValue-7f3a9"),
        "{}",
        run.stderr()
    );
}

// Item 5: a file the guest names after a secret is not exported: the upload fails naming
// the variable, and no file in the artifacts directory carries the secret in its name.
#[test]
fn attack_secret_in_artifact_file_name_refused() {
    let src = source(
        "version: 0.2\nenv:\n  parameter-store:\n    DB_PASSWORD: /app/db/password\n\
         phases:\n  build:\n    commands:\n      - mkdir -p out && echo x > \"out/f-$DB_PASSWORD\"\n\
         artifacts:\n  files: ['out/**/*']\n",
    );
    let secret = secret_arg();
    let run = build(src.path(), &["--secret", &secret, "--zip"], &[]);
    assert_eq!(run.status(), 1, "{}", run.stdout());
    assert_eq!(
        run.phase_status("UPLOAD_ARTIFACTS").as_deref(),
        Some("FAILED")
    );
    let log = run.log();
    assert!(
        log.contains("a file path holds the value of secret variable DB_PASSWORD"),
        "{log}"
    );
    assert!(!log.contains(SECRET));
    let names = names_under(run.out.path());
    assert!(names.iter().all(|n| !n.contains(SECRET)), "{names:?}");
    assert!(!run.record().to_string().contains(SECRET));
}

// Deliver 5: a build graph chaining 80,000 tasks is checked without deep recursion (the
// host's stack), and a cycle closing the chain is found and named.
#[test]
fn attack_long_build_graph_chain_does_not_overflow() {
    const TASKS: usize = 80_000;
    let mut text =
        String::from("version: 0.2\nphases: {}\nbatch:\n  build-graph:\n    - {identifier: t0}\n");
    for i in 1..TASKS {
        text.push_str(&format!(
            "    - {{identifier: t{i}, depend-on: [t{}]}}\n",
            i - 1
        ));
    }
    assert!(text.len() < MAX_BUILDSPEC_BYTES, "{}", text.len());
    let last = TASKS - 1;
    let cyclic = text.replacen(
        "- {identifier: t0}",
        &format!("- {{identifier: t0, depend-on: [t{last}]}}"),
        1,
    );
    let parsed = within(Duration::from_secs(60), move || {
        Buildspec::parse(&text, "b.yml")
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    assert_eq!(parsed, Ok(()));
    let error = within(Duration::from_secs(60), move || {
        Buildspec::parse(&cyclic, "b.yml").expect_err("a cycle")
    });
    let (_, _, message) = invalid(error);
    let expected = format!("dependency cycle: t0 -> t{last} -> t{}", last - 1);
    assert!(
        message.contains(&expected),
        "{}",
        &message[..200.min(message.len())]
    );
}

// Item 10 / Deliver 5: a build whose buildspec sets 100,000 variables runs in linear time
// (the environment was assembled with a scan per variable).
#[test]
fn attack_many_variables_build_is_fast() {
    let mut text = String::from("version: 0.2\nenv:\n  variables:\n");
    for i in 0..100_000 {
        text.push_str(&format!("    K{i}: v{i}\n"));
    }
    text.push_str("phases:\n  build:\n    commands:\n      - echo \"last=$K99999\"\n");
    let src = source(&text);
    common::ensure_bundle("base");
    let started = Instant::now();
    let run = build(src.path(), &[], &[]);
    let took = started.elapsed();
    assert_eq!(run.status(), 0, "{}", run.stderr());
    assert!(run.log().contains("last=v99999\n"));
    assert!(took < Duration::from_secs(60), "{took:?}");
}

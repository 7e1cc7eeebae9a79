//! `wasmbuild run` on the projects of `fixtures/`: the lifecycle's rules, the environment,
//! artifacts, the log and the record, checked through the binary as a user runs it.

use crate::common;

use std::path::{Path, PathBuf};

use common::Run;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn run_build(src: &Path, args: &[&str]) -> Run {
    common::ensure_bundle("base");
    let out = tempfile::tempdir().expect("artifacts dir");
    let output = common::wasmbuild()
        .arg("run")
        .arg(src)
        .arg("-a")
        .arg(out.path())
        .args(args)
        .env("USER", "host-user-must-not-leak")
        .output()
        .expect("run wasmbuild");
    Run { output, out }
}

fn run_fixture(name: &str, args: &[&str]) -> Run {
    run_build(&fixture(name), args)
}

fn phase_names(run: &Run) -> Vec<String> {
    run.phases().into_iter().map(|(p, _)| p).collect()
}

#[test]
fn hello_build_succeeds_with_log_record_and_artifact() {
    let run = run_fixture("hello", &[]);
    assert_eq!(run.status(), 0, "{}\n{}", run.stdout(), run.stderr());
    let stdout = run.stdout();
    // The log streams to stdout with CodeBuild's lines and UTC microsecond timestamps.
    let line = regex::Regex::new(
        r"(?m)^\[Container\] \d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\.\d{6} Entering phase BUILD$",
    )
    .unwrap();
    assert!(line.is_match(&stdout), "{stdout}");
    assert!(stdout.contains("Running command echo \"Hello from $CODEBUILD_BUILD_ID\""));
    assert!(stdout.contains("Hello from hello:"), "{stdout}");
    assert!(stdout.contains("Phase complete: BUILD State: SUCCEEDED"));
    assert!(stdout.contains("17\n"), "wc -c output: {stdout}");
    assert_eq!(run.log(), stdout, "build.log holds what was streamed");

    assert_eq!(
        run.artifact("primary/out/greeting.txt"),
        "HELLO, WASMBUILD\n"
    );
    let record = run.record();
    assert_eq!(record["buildStatus"], "SUCCEEDED");
    assert_eq!(record["buildComplete"], true);
    assert!(record["id"].as_str().unwrap().starts_with("hello:"));
    assert_eq!(
        phase_names(&run),
        [
            "SUBMITTED",
            "PROVISIONING",
            "DOWNLOAD_SOURCE",
            "INSTALL",
            "PRE_BUILD",
            "BUILD",
            "POST_BUILD",
            "UPLOAD_ARTIFACTS",
            "FINALIZING",
            "COMPLETED"
        ]
    );
    let file = &record["artifacts"]["files"][0];
    assert_eq!(file["path"], "out/greeting.txt");
    assert_eq!(
        file["sha256"],
        wasmbuild::digest::sha256_hex(b"HELLO, WASMBUILD\n")
    );
    // The user's checkout is never written.
    assert!(!fixture("hello").join("out").exists());
}

#[test]
fn build_numbers_count_per_project() {
    let number = |run: &Run| run.record()["buildNumber"].as_u64().unwrap();
    let first = run_fixture("version-0.1", &["--project", "counted"]);
    let second = run_fixture("version-0.1", &["--project", "counted"]);
    assert_eq!(number(&second), number(&first) + 1);
}

#[test]
fn a_failed_build_still_runs_finally_post_build_and_artifacts() {
    let run = run_fixture("lifecycle", &["-e", "FAIL_IN=BUILD"]);
    assert_eq!(run.status(), 1, "{}", run.stdout());
    assert_eq!(
        run.artifact("primary/phases.txt"),
        "install ran\ninstall finally ran\npre_build ran succeeding=1\nbuild ran\n\
         build finally ran succeeding=0\npost_build ran succeeding=0\n"
    );
    assert_eq!(run.phase_status("BUILD").as_deref(), Some("FAILED"));
    assert_eq!(run.phase_status("POST_BUILD").as_deref(), Some("SUCCEEDED"));
    assert_eq!(
        run.phase_status("UPLOAD_ARTIFACTS").as_deref(),
        Some("SUCCEEDED")
    );
    let record = run.record();
    assert_eq!(record["buildStatus"], "FAILED");
    let build = record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phaseType"] == "BUILD")
        .unwrap();
    assert_eq!(
        build["contexts"][0]["statusCode"],
        "COMMAND_EXECUTION_ERROR"
    );
    assert_eq!(
        build["contexts"][0]["message"],
        "Error while executing command: test \"$FAIL_IN\" != BUILD. Reason: exit status 1"
    );
    let log = run.log();
    assert!(
        log.contains(
            "Command did not exit successfully test \"$FAIL_IN\" != BUILD exit status 1\n"
        )
    );
    assert!(log.contains("Phase complete: BUILD State: FAILED\n"));
    assert!(log.contains(
        "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: test \"$FAIL_IN\" != BUILD. Reason: exit status 1\n"
    ));
}

#[test]
fn a_failed_install_or_pre_build_skips_to_finalizing() {
    for phase in ["INSTALL", "PRE_BUILD"] {
        let run = run_fixture("lifecycle", &["-e", &format!("FAIL_IN={phase}")]);
        assert_eq!(run.status(), 1, "{}", run.stdout());
        let names = phase_names(&run);
        let failed_at = names.iter().position(|p| p == phase).unwrap();
        assert_eq!(
            &names[failed_at..],
            [phase, "FINALIZING", "COMPLETED"],
            "FAIL_IN={phase}"
        );
        assert_eq!(run.phase_status(phase).as_deref(), Some("FAILED"));
        assert!(!run.out.path().join("primary").exists());
        let log = run.log();
        assert!(!log.contains("Entering phase BUILD"));
        if phase == "INSTALL" {
            // finally runs after a failed command
            assert!(log.contains("Running command echo \"install finally ran\" >> phases.txt"));
        }
    }
}

#[test]
fn a_successful_build_exports_variables() {
    let run = run_fixture("lifecycle", &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    assert_eq!(
        run.artifact("primary/phases.txt"),
        "install ran\ninstall finally ran\npre_build ran succeeding=1\nbuild ran\n\
         after the failing command\nbuild finally ran succeeding=1\npost_build ran succeeding=1\n"
    );
    assert_eq!(
        run.record()["exportedEnvironmentVariables"],
        serde_json::json!([{"name": "RESULT", "value": "done-none"}])
    );
}

#[test]
fn on_failure_continue_and_retry() {
    let run = run_fixture("on-failure", &[]);
    // INSTALL failed (CONTINUE goes on), so the build fails; BUILD succeeds on attempt 3.
    assert_eq!(run.status(), 1, "{}", run.stdout());
    assert_eq!(run.phase_status("INSTALL").as_deref(), Some("FAILED"));
    assert_eq!(run.phase_status("BUILD").as_deref(), Some("SUCCEEDED"));
    assert_eq!(run.artifact("primary/attempts"), "3\n");
    let log = run.log();
    assert!(log.contains("Retrying phase BUILD (retry 1 of 2)"), "{log}");
    assert!(log.contains("Retrying phase BUILD (retry 2 of 2)"));
    assert!(log.contains("post_build after 3 attempts"));
}

#[test]
fn environment_precedence_literals_secrets_and_masking() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env.list");
    std::fs::write(
        &env_file,
        "# local agent format\nOVERRIDDEN=from-file\nFROM_FILE=yes\n",
    )
    .unwrap();
    let run = run_fixture(
        "env",
        &[
            "--env-file",
            env_file.to_str().unwrap(),
            "-e",
            "OVERRIDDEN=from-cli",
            "--secret",
            "/app/db/password=s3cr3t-pw",
            "--secret",
            r#"prod/api={"token":"tok-123"}"#,
            "--initiator",
            "tester",
        ],
    );
    assert_eq!(run.status(), 0, "{}\n{}", run.stdout(), run.stderr());
    let log = run.log();
    assert!(log.contains("literal=$HOME/not-expanded\n"), "{log}");
    assert!(log.contains("overridden=from-cli number=42\n"));
    assert!(log.contains("password=*** token=***\n"));
    assert!(log.contains("home=/root src=/codebuild/output/src number="));
    assert!(log.contains("image=base initiator=tester\n"));
    assert!(log.contains("host-user=unset host-path-has-usr=no\n"));
    assert!(!log.contains("s3cr3t-pw") && !log.contains("tok-123"));
    assert!(!run.stdout().contains("s3cr3t-pw"));
    let start = regex::Regex::new(r"start=(\d{13}) ").unwrap();
    assert!(start.is_match(&log), "CODEBUILD_START_TIME in ms: {log}");
    let record = run.record();
    let exported = record["exportedEnvironmentVariables"].as_array().unwrap();
    let number = record["buildNumber"].as_u64().unwrap();
    assert_eq!(exported[0]["name"], "ARTIFACT_VERSION");
    assert_eq!(exported[0]["value"], format!("1.2.{number}"));
    assert_eq!(
        exported[1],
        serde_json::json!({"name": "NUMBER", "value": "42"})
    );

    // Without -e, the env file wins over the buildspec.
    let run = run_fixture(
        "env",
        &[
            "--env-file",
            env_file.to_str().unwrap(),
            "--secret",
            "/app/db/password=hunter2-pw",
            "--secret",
            r#"prod/api={"token":"y"}"#,
        ],
    );
    assert!(run.log().contains("overridden=from-file number=42\n"));
}

#[test]
fn a_missing_secret_fails_provisioning() {
    let run = run_fixture("env", &["--secret", "/app/db/password=hunter2-pw"]);
    assert_eq!(run.status(), 1, "{}", run.stdout());
    assert_eq!(run.phase_status("PROVISIONING").as_deref(), Some("FAILED"));
    let log = run.log();
    assert!(
        log.contains(
            "Phase context status code: SECRETS_MANAGER_ERROR Message: secret prod/api is not known"
        ),
        "{log}"
    );
}

#[test]
fn artifact_rules() {
    let run = run_fixture("artifacts", &["--zip"]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let record = run.record();
    let number = record["buildNumber"].as_u64().unwrap();
    let site = format!("site-{number}");
    let list = |dir: &str| -> Vec<String> {
        let root = run.out.path().join(dir);
        let mut files: Vec<String> = walkdir::WalkDir::new(&root)
            .min_depth(1)
            .into_iter()
            .flatten()
            .filter(|e| !e.file_type().is_dir())
            .map(|e| e.path().strip_prefix(&root).unwrap().display().to_string())
            .collect();
        files.sort();
        files
    };
    // base-directory `pub*` → public/; `**/*` crosses directories; *.tmp excluded; a
    // symlink leading out of the source is not exported.
    assert_eq!(list(&site), ["css/site.css", "index.html"]);
    assert!(run.log().contains("Warning: skipping symlink outside-link"));
    // discard-paths flattens; `docs/*.md` stays within docs/.
    assert_eq!(list("flat"), ["deep.md", "guide.md"]);
    assert_eq!(list("toplevel"), ["docs/guide.md"]);
    // enable-symlinks keeps the link as a link.
    let link = run.out.path().join("links/links/index-link");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("../public/index.html")
    );
    assert_eq!(record["artifacts"]["name"], site.as_str());
    let secondary: Vec<&str> = record["secondaryArtifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["artifactIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(secondary, ["flat", "toplevel", "links"]);
    // --zip: the recorded sha256 is the zip's.
    let zip = std::fs::read(run.out.path().join(format!("{site}.zip"))).unwrap();
    assert_eq!(
        record["artifacts"]["sha256sum"],
        wasmbuild::digest::sha256_hex(&zip)
    );
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut names: Vec<String> = archive
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["css/site.css", "index.html"]);
    let mut index = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("index.html").unwrap(), &mut index).unwrap();
    assert_eq!(index, "<h1>site</h1>\n");
}

#[test]
fn artifacts_that_match_nothing_fail_upload() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo built\nartifacts:\n  files:\n    - missing/**/*\n",
    )
    .unwrap();
    let run = run_build(src.path(), &[]);
    assert_eq!(run.status(), 1);
    assert_eq!(
        run.phase_status("UPLOAD_ARTIFACTS").as_deref(),
        Some("FAILED")
    );
    assert!(run.log().contains(
        "Phase context status code: CLIENT_ERROR Message: no matching artifact paths found for missing/**/*"
    ));
}

#[test]
fn version_0_1_runs_each_command_in_its_own_shell() {
    let run = run_fixture("version-0.1", &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(log.contains("\n/codebuild/output/src/sub\n"), "{log}");
    assert!(log.contains("\n/codebuild/output/src\n"));
    assert!(log.contains("carried=no\n"));
}

#[test]
fn shell_messages_name_the_buildspec_line_and_warnings_reach_the_log() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    discard_paths: yes\n    commands:\n      - echo one\n      - |\n        echo two\n        nosuchprog --flag\n",
    )
    .unwrap();
    let run = run_build(src.path(), &[]);
    assert_eq!(run.status(), 1, "{}", run.stdout());
    let log = run.log();
    // The command's second line is line 9 of the buildspec.
    assert!(
        log.contains("buildspec.yml: line 9: nosuchprog: command not found"),
        "{log}"
    );
    assert!(
        log.contains("Warning: buildspec.yml:4:5: unknown key `discard_paths`"),
        "{log}"
    );
}

#[test]
fn version_0_2_keeps_one_session() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  pre_build:\n    commands:\n      - mkdir -p sub && cd sub\n      - X=kept\n  build:\n    commands:\n      - pwd\n      - echo \"x=$X\"\n",
    )
    .unwrap();
    let run = run_build(src.path(), &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(log.contains("\n/codebuild/output/src/sub\n"), "{log}");
    assert!(log.contains("\nx=kept\n"));
}

#[test]
fn a_bad_buildspec_is_refused_with_file_line_and_column() {
    let run = run_fixture("bad-buildspec", &[]);
    assert_eq!(run.status(), 2);
    let stderr = run.stderr();
    assert!(stderr.contains("buildspec.yml:7:17"), "{stderr}");
    assert!(stderr.contains("SOMETIMES"), "{stderr}");
    assert!(!run.out.path().join("build.json").exists());
}

#[test]
fn the_timeout_ends_the_build_as_timed_out() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - yes > /dev/null\n      - echo never\n",
    )
    .unwrap();
    let run = run_build(src.path(), &["--timeout", "0.05"]);
    assert_eq!(run.status(), 4, "{}\n{}", run.stdout(), run.stderr());
    assert_eq!(run.record()["buildStatus"], "TIMED_OUT");
    assert_eq!(run.phase_status("BUILD").as_deref(), Some("TIMED_OUT"));
    assert!(!run.log().contains("\nnever\n"));
}

#[test]
fn ctrl_c_stops_the_build_and_writes_the_record() {
    common::ensure_bundle("base");
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - yes > /dev/null\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbuild"))
        .env("WASMBUILD_STORE", common::store_dir())
        .arg("run")
        .arg(src.path())
        .arg("-a")
        .arg(out.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the guest to be running, then interrupt.
    let log = out.path().join("build.log");
    let waited = std::time::Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Running command yes")) {
        assert!(waited.elapsed().as_secs() < 60, "the build never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(5));
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("build.json")).unwrap())
            .unwrap();
    assert_eq!(record["buildStatus"], "STOPPED");
}

#[test]
fn json_prints_the_record_on_stdout() {
    let run = run_fixture("hello", &["--json"]);
    assert_eq!(run.status(), 0);
    let printed: Value = serde_json::from_str(&run.stdout()).expect("stdout is the record");
    assert_eq!(printed, run.record());
    assert!(run.stderr().contains("Entering phase BUILD"));
}

#[test]
fn python_package_build_runs_its_unit_tests() {
    common::ensure_bundle("python:3.12");
    let run = run_fixture("python-package", &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(
        log.contains("Selected runtime python 3.12.0 (asked for 3.12)"),
        "{log}"
    );
    assert!(log.contains("Python 3.12.0"));
    assert!(log.contains("Ran 2 tests"));
    assert!(log.contains("OK"));
    let zip = std::fs::read(run.out.path().join("primary/dist/greet.zip")).unwrap();
    let archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    assert!(
        archive
            .file_names()
            .any(|n| n.unwrap().ends_with("greet/__init__.py"))
    );
}

#[test]
fn an_unknown_runtime_version_fails_install_naming_what_exists() {
    common::ensure_bundle("python");
    common::ensure_bundle("python:3.12");
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 2.7\n  build:\n    commands:\n      - echo no\n",
    )
    .unwrap();
    let run = run_build(src.path(), &[]);
    assert_eq!(run.status(), 1, "{}", run.stdout());
    assert_eq!(run.phase_status("INSTALL").as_deref(), Some("FAILED"));
    let log = run.log();
    assert!(log.contains("unknown runtime version python: 2.7"), "{log}");
    assert!(log.contains("python 3.12.0"));
    // 3.12.0 and 3.13.5 are in the store: none shares a component with 2.7, and the newest
    // is the nearest.
    assert!(log.contains("the nearest is python 3.1"), "{log}");
}

#[test]
fn the_default_image_has_python_on_path_as_codebuilds_does() {
    // No runtime-versions: CodeBuild's standard image has python3, python and pip anyway,
    // and real buildspecs rely on it (`python setup.py develop`).
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - python3 -c 'print(6 * 7)'\n      - python --version\n      - pip --version\n      - command -v python3\n",
    )
    .unwrap();
    let run = run_build(src.path(), &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(log.contains("\n42\n"), "{log}");
    assert!(log.contains("Python 3.13.5"), "{log}");
    assert!(log.contains("/opt/runtimes/python/bin/python3"), "{log}");
}

#[test]
fn a_git_checkout_is_copied_with_its_commit_and_never_modified() {
    let src = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(src.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("git runs");
        assert!(status.status.success(), "git {args:?}");
        String::from_utf8(status.stdout).unwrap().trim().to_owned()
    };
    std::fs::write(src.path().join("file.txt"), "original\n").unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nrun-as: builder\nphases:\n  build:\n    commands:\n      \
         - echo \"commit=$CODEBUILD_RESOLVED_SOURCE_VERSION\"\n      - test -d .git\n      \
         - echo changed > file.txt\n      - rm buildspec.yml\n",
    )
    .unwrap();
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "first"]);
    let head = git(&["rev-parse", "HEAD"]);

    let run = run_build(src.path(), &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    assert!(log.contains(&format!("commit={head}\n")), "{log}");
    assert!(
        log.contains("run-as"),
        "run-as is accepted with a warning: {log}"
    );
    // The build changed its workspace copy only.
    assert_eq!(
        std::fs::read_to_string(src.path().join("file.txt")).unwrap(),
        "original\n"
    );
    assert!(src.path().join("buildspec.yml").exists());
    assert_eq!(git(&["status", "--porcelain"]), "");
}

// A build whose INSTALL selects python by a written version gets that version's bundle; the
// default python is not built or renewed for it (on a fresh machine, minutes of CPython
// 3.13's build). Here the recipes say the default bundle is out of date: a run that looked
// at it would build it again.
#[test]
fn a_build_that_pins_python_leaves_the_default_python_alone() {
    common::ensure_bundle("python:3.12");
    let recipes = tempfile::tempdir().unwrap();
    common::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("runtimes"),
        recipes.path(),
    );
    let recipe = recipes.path().join("python/recipe.toml");
    let text = std::fs::read_to_string(&recipe).unwrap();
    std::fs::write(
        &recipe,
        format!("{text}\n[env]\nWASMBUILD_NOT_BUILT = \"1\"\n"),
    )
    .unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.12\n  \
         build:\n    commands:\n      - python --version\n",
    )
    .unwrap();
    let run = run_build(src.path(), &["--recipes", recipes.path().to_str().unwrap()]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    assert!(run.log().contains("Python 3.12.0"), "{}", run.log());
    let said = run.stderr() + &run.stdout();
    assert!(
        !said.contains("bundle python"),
        "the default python was touched: {said}"
    );
}

#[test]
fn runtime_versions_expand_the_builds_variables() {
    common::ensure_bundle("python:3.12");
    let src = tempfile::tempdir().unwrap();
    let buildspec = |variables: &str| {
        format!(
            "version: 0.2\nenv:\n  variables:\n{variables}phases:\n  install:\n    \
             runtime-versions:\n      python: $PYTHON_VERSION\n  build:\n    commands:\n      \
             - python3 --version\n"
        )
    };
    std::fs::write(
        src.path().join("buildspec.yml"),
        buildspec("    PYTHON_VERSION: \"3.12\"\n"),
    )
    .unwrap();
    let run = run_build(src.path(), &[]);
    assert_eq!(run.status(), 0, "{}", run.log());
    assert!(
        run.log()
            .contains("Selected runtime python 3.12.0 (asked for $PYTHON_VERSION, which is 3.12)"),
        "{}",
        run.log()
    );
    assert!(run.log().contains("Python 3.12.0"), "{}", run.log());

    // Unset, or not a version: the INSTALL phase fails naming the runtime and the variable.
    for (variables, needle) in [
        ("    OTHER: x\n", "$PYTHON_VERSION is not set"),
        (
            "    PYTHON_VERSION: \"3 12\"\n",
            "$PYTHON_VERSION is \"3 12\"",
        ),
    ] {
        std::fs::write(src.path().join("buildspec.yml"), buildspec(variables)).unwrap();
        let run = run_build(src.path(), &[]);
        assert_eq!(run.status(), 1, "{}", run.log());
        assert_eq!(run.phase_status("INSTALL").as_deref(), Some("FAILED"));
        assert!(
            run.log()
                .contains(&format!("runtime-versions python: {needle}")),
            "{}",
            run.log()
        );
    }
}

#[test]
fn report_groups_are_made_after_the_build_even_a_failed_one() {
    let src = tempfile::tempdir().unwrap();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/reports");
    std::fs::create_dir(src.path().join("samples")).unwrap();
    for name in [
        "surefire-junit.xml",
        "istanbul-cobertura.xml",
        "nunit3-TestResult.xml",
    ] {
        std::fs::copy(samples.join(name), src.path().join("samples").join(name)).unwrap();
    }
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out/a out/b && cp samples/surefire-junit.xml out/a/ && cp samples/nunit3-TestResult.xml out/b/\n      - printf '<testsuite><testcase' > out/broken.xml\n      - exit 3\nreports:\n  junit:\n    files: ['**/*.xml']\n    base-directory: out/a\n  nunit:\n    files: out/b/*.xml\n    file-format: Nunit3Xml\n  coverage:\n    files: [samples/istanbul-cobertura.xml]\n    discard-paths: yes\n    file-format: COBERTURAXML\n  broken:\n    files: [out/broken.xml]\n  nothing:\n    files: [none/*.xml]\n",
    )
    .unwrap();
    let run = run_build(src.path(), &[]);
    // The build fails by its command; the failed test cases change nothing.
    assert_eq!(run.status(), 1, "{}", run.stdout());
    let record = run.record();
    let reports = record["reports"].as_array().expect("reports");
    let by_name = |name: &str| {
        reports
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no report {name}: {record:#}"))
    };
    let project = record["projectName"].as_str().unwrap().to_owned();
    let junit = by_name("junit");
    assert_eq!(junit["status"], "FAILED");
    assert_eq!(junit["reportGroupArn"], format!("{project}-junit"));
    assert_eq!(junit["files"][0], "surefire-junit.xml");
    assert_eq!(junit["testSummary"]["total"], 3);
    assert_eq!(junit["testSummary"]["statusCounts"]["FAILED"], 1);
    assert!(
        junit.get("testCases").is_none(),
        "build.json keeps summaries"
    );
    assert_eq!(by_name("nunit")["testSummary"]["statusCounts"]["ERROR"], 1);
    let coverage = by_name("coverage");
    assert_eq!(coverage["status"], "SUCCEEDED");
    assert_eq!(coverage["files"][0], "istanbul-cobertura.xml");
    assert_eq!(
        coverage["codeCoverageSummary"]["lineCoveragePercentage"],
        71.43
    );
    let broken = by_name("broken");
    assert_eq!(broken["status"], "INCOMPLETE");
    assert!(
        broken["statusReason"]
            .as_str()
            .unwrap()
            .contains("malformed XML"),
        "{broken}"
    );
    let nothing = by_name("nothing");
    assert_eq!(nothing["status"], "INCOMPLETE");
    assert!(
        nothing["statusReason"]
            .as_str()
            .unwrap()
            .contains("no matching"),
        "{nothing}"
    );

    // The whole report, every case, beside build.json.
    let full: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.out.path().join(format!(
            "reports/{}.json",
            wasmbuild::lifecycle::cache::encode_ref_part(&format!("{project}-junit"))
        )))
        .unwrap(),
    )
    .unwrap();
    let cases = full["testCases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    assert!(
        cases
            .iter()
            .any(|c| c["status"] == "FAILED" && c["name"] == "testFails")
    );
    let log = run.log();
    assert!(
        log.contains(
            "Report junit (JUNITXML): FAILED, 3 test case(s): 1 failed, 1 skipped, 1 succeeded"
        ),
        "{log}"
    );

    // The reports kept in the store, as `wasmbuild reports` shows them.
    let number = record["buildNumber"].as_u64().unwrap();
    let cli = |args: &[&str]| {
        let output = common::wasmbuild()
            .arg("reports")
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let listed: Value = serde_json::from_str(&cli(&["list", &project, "--json"])).unwrap();
    let handle = format!("{project}-junit:{number}");
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["report"] == handle.as_str()),
        "{listed:#}"
    );
    let shown: Value = serde_json::from_str(&cli(&["show", &handle, "--json"])).unwrap();
    assert_eq!(shown, full);
    let text = cli(&["show", &handle]);
    let first_case = text
        .lines()
        .find(|l| l.starts_with("FAILED") || l.starts_with("SUCCEEDED"));
    assert!(
        first_case.unwrap().starts_with("FAILED"),
        "failed first:\n{text}"
    );
    assert!(text.contains("expected: <1> but was: <2>"), "{text}");
    let coverage = cli(&["show", &format!("{project}-coverage:{number}")]);
    assert!(
        coverage.contains("src/util.js") && coverage.contains("66.67%"),
        "{coverage}"
    );
    let trend: Value =
        serde_json::from_str(&cli(&["trend", &format!("{project}-junit"), "--json"])).unwrap();
    assert_eq!(trend[0]["buildNumber"], number);
    assert_eq!(trend[0]["passRate"], 33.33);
}

#[test]
fn chmod_sets_the_bits_a_script_and_the_artifact_keep() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo 'echo ran' > run.sh\n      - chmod 640 run.sh\n      - test -x run.sh || echo not executable\n      - chmod +x run.sh\n      - test -x run.sh && echo executable\n      - ./run.sh\n      - chmod bad run.sh || echo refused\nartifacts:\n  files: run.sh\n",
    )
    .unwrap();
    let run = run_build(src.path(), &[]);
    assert_eq!(run.status(), 0, "{}", run.stdout());
    let log = run.log();
    for line in [
        "\nnot executable\n",
        "\nexecutable\n",
        "\nran\n",
        "\nrefused\n",
    ] {
        assert!(log.contains(line), "{line:?} in {log}");
    }
    assert!(log.contains("chmod: invalid mode: 'bad'"), "{log}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(run.out.path().join("primary/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    // 640 plus x for all but what the umask keeps: 751, as GNU chmod computes it.
    assert_eq!(mode & 0o777, 0o751);
}

//! Attacks on the build shell's host resources (issue 13, items 7-9 and deliver 4): fork
//! bombs, memory bombs in expansions and substitutions, runaway recursion, endless builtin
//! loops and background jobs that try to outlive their phase. Each runs under small limits
//! and a timeout, so that a regression fails the test instead of harming the machine; each
//! checks the exit status, the message naming the limit, and that the host is unharmed.

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Run;

/// No attack may keep wasmbuild running longer than this.
const TIMEOUT: Duration = Duration::from_secs(120);

/// `wasmbuild run` of a buildspec in a fresh source directory, with extra files and
/// environment variables for wasmbuild itself (the limits).
fn build(buildspec: &str, files: &[(&str, &str)], env: &[(&str, &str)], args: &[&str]) -> Run {
    common::ensure_bundle("base");
    let src = tempfile::tempdir().expect("source dir");
    std::fs::write(src.path().join("buildspec.yml"), buildspec).expect("buildspec");
    for (name, text) in files {
        std::fs::write(src.path().join(name), text).expect("file");
    }
    let out = tempfile::tempdir().expect("artifacts dir");
    let mut cmd = common::wasmbuild();
    cmd.arg("run")
        .arg(src.path())
        .arg("-a")
        .arg(out.path())
        .args(args)
        .timeout(TIMEOUT);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().expect("run wasmbuild");
    Run { output, out }
}

/// A buildspec whose build phase runs `commands` (one YAML list item each).
fn spec(commands: &[&str]) -> String {
    let mut text = String::from("version: 0.2\nphases:\n  build:\n    commands:\n");
    for c in commands {
        text.push_str(&format!("      - {}\n", yaml_quote(c)));
    }
    text
}

fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `wasmbuild sh -c SCRIPT` in a fresh source directory (with `files`); status and output.
fn sh(script: &str, files: &[(&str, &str)], env: &[(&str, &str)]) -> (i32, String, String) {
    common::ensure_bundle("base");
    let src = tempfile::tempdir().expect("source dir");
    for (name, text) in files {
        std::fs::write(src.path().join(name), text).expect("file");
    }
    let mut cmd = common::wasmbuild();
    cmd.args(["sh", "--image", "base", "--src"])
        .arg(src.path())
        .arg("-c")
        .arg(script)
        .timeout(TIMEOUT);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().expect("run wasmbuild sh");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The build failed (exit 1, FAILED, a record written), and the log says `message`.
fn assert_failed_with(run: &Run, message: &str) {
    let log = run.log();
    assert_eq!(run.status(), 1, "{}\n{log}", run.stderr());
    assert_eq!(run.record()["buildStatus"], "FAILED", "{log}");
    assert!(log.contains(message), "no {message:?} in the log:\n{log}");
}

/// Threads of a running process, from `/proc` (Linux).
fn threads(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

// Item 7: the classic fork bomb ends the build as FAILED, quickly, and wasmbuild never holds
// many more threads than the process limit.
#[test]
fn attack_fork_bomb_fails_the_build_within_the_process_limit() {
    common::ensure_bundle("base");
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        spec(&["f(){ f | f & }; f", "echo survived"]),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wasmbuild"))
        .env("WASMBUILD_STORE", common::store_dir())
        .env("WASMBUILD_MAX_PROCESSES", "32")
        .arg("run")
        .arg(src.path())
        .arg("-a")
        .arg(out.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("the fork bomb was not stopped in {TIMEOUT:?}");
        }
        if let Some(n) = threads(child.id()) {
            peak = peak.max(n);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(1));
    // 32 shell threads, plus the runtime's own (watchdog, epoch ticker, compiler, tokio).
    assert!(peak < 32 + 48, "peak of {peak} threads");
    let run = Run {
        output: std::process::Output {
            status,
            stdout: Vec::new(),
            stderr: Vec::new(),
        },
        out,
    };
    assert_failed_with(&run, "wasmbuild: too many processes (limit 32)");
    assert_eq!(run.phase_status("BUILD").as_deref(), Some("FAILED"));
    assert!(started.elapsed() < Duration::from_secs(60));
}

// Item 7: `:(){ :|:& };:` under `wasmbuild sh` ends with status 126 and the message.
#[test]
fn attack_colon_fork_bomb_in_sh_ends_with_126() {
    let started = Instant::now();
    let (status, _, err) = sh(":(){ :|:& };:", &[], &[("WASMBUILD_MAX_PROCESSES", "16")]);
    assert_eq!(status, 126, "{err}");
    assert!(
        err.contains("wasmbuild: too many processes (limit 16)"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

// Item 7: a fork bomb made of pipelines inside a script fails that script's command.
#[test]
fn attack_pipeline_recursion_fails_the_command() {
    let run = build(
        &spec(&["f(){ echo x | f | cat; }; f", "echo never"]),
        &[],
        &[("WASMBUILD_MAX_PROCESSES", "24")],
        &[],
    );
    assert_failed_with(&run, "wasmbuild: too many processes (limit 24)");
    assert!(run.log().contains("exit status 126"), "{}", run.log());
    assert!(!run.log().contains("\nnever\n"));
}

// Item 7 (what must keep working): a long pipeline and parallel jobs under the limit.
#[test]
fn attack_legitimate_pipelines_and_jobs_fit_under_the_limit() {
    let run = build(
        &spec(&[
            "echo abc | cat | cat | cat | cat | cat | cat | cat | cat | tr a-z A-Z",
            "for i in 1 2 3 4 5 6 7 8; do echo job$i > out$i.txt & done; wait; cat out*.txt | wc -l",
        ]),
        &[],
        &[("WASMBUILD_MAX_PROCESSES", "16")],
        &[],
    );
    let log = run.log();
    assert_eq!(run.status(), 0, "{log}");
    assert!(log.contains("\nABC\n"), "{log}");
    assert!(log.contains("\n8\n"), "{log}");
}

// Item 8: `x=$(yes)` stops at the substitution limit; the producer is stopped, the build
// fails with the limit's message.
#[test]
fn attack_yes_in_a_command_substitution_fails_at_the_limit() {
    let started = Instant::now();
    let run = build(
        &spec(&["x=$(yes); echo never"]),
        &[],
        &[("WASMBUILD_MAX_CAPTURE_BYTES", "1048576")],
        &[],
    );
    assert_failed_with(
        &run,
        "wasmbuild: command substitution output too large (limit 1048576 bytes)",
    );
    assert!(!run.log().contains("\nnever\n"));
    assert!(started.elapsed() < Duration::from_secs(60));
}

// Item 8: a here-document fed by an endless substitution hits the same limit.
#[test]
fn attack_heredoc_bomb_fails_at_the_limit() {
    let run = build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - |\n        cat <<EOF\n        $(yes)\n        EOF\n",
        &[],
        &[("WASMBUILD_MAX_CAPTURE_BYTES", "1048576")],
        &[],
    );
    assert_failed_with(&run, "command substitution output too large");
}

// Item 8: a here-document whose expansion grows past the expansion limit.
#[test]
fn attack_heredoc_expansion_past_the_limit() {
    let run = build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - |\n        x=$(printf '%300000s' a)\n        cat <<EOF\n        $x$x$x$x$x$x$x$x$x$x\n        EOF\n",
        &[],
        &[("WASMBUILD_MAX_EXPANSION_BYTES", "2097152")],
        &[],
    );
    assert_failed_with(&run, "wasmbuild: expansion too large (limit 2097152 bytes)");
}

// Item 8: the brace product of 8e9 words is refused before anything is built.
#[test]
fn attack_brace_product_is_an_error() {
    let started = Instant::now();
    let run = build(&spec(&["echo {1..2000}{1..2000}{1..2000}"]), &[], &[], &[]);
    assert_failed_with(&run, "brace expansion too large (limit 1048576 words)");
    assert!(started.elapsed() < Duration::from_secs(60));
}

// Item 8: `{1..2000000}` is an error, never silently truncated to 2^20 words.
#[test]
fn attack_brace_range_past_the_limit_is_an_error_not_a_truncation() {
    let run = build(
        &spec(&["set -- {1..2000000}; echo count $#"]),
        &[],
        &[],
        &[],
    );
    assert_failed_with(&run, "brace expansion too large (limit 1048576 words)");
    assert!(!run.log().contains("\ncount "), "{}", run.log());
    // At the limit, every word is there.
    let run = build(
        &spec(&["set -- {1..1048576}; echo count $# last ${1048576}"]),
        &[],
        &[],
        &[],
    );
    assert_eq!(run.status(), 0, "{}", run.log());
    assert!(
        run.log().contains("count 1048576 last 1048576"),
        "{}",
        run.log()
    );
}

// Item 8: a variable doubled in a builtin loop stops at the expansion limit.
#[test]
fn attack_doubling_a_variable_fails_at_the_limit() {
    let run = build(
        &spec(&["x=a; while :; do x=$x$x; done"]),
        &[],
        &[("WASMBUILD_MAX_EXPANSION_BYTES", "4194304")],
        &[],
    );
    assert_failed_with(&run, "wasmbuild: expansion too large (limit 4194304 bytes)");
}

// Item 8: `read` from an endless stdin stops at the limit instead of eating the host.
#[test]
fn attack_reading_dev_zero_is_bounded() {
    let (status, out, err) = sh(
        "read x < /dev/zero; echo status $?",
        &[],
        &[("WASMBUILD_MAX_EXPANSION_BYTES", "1048576")],
    );
    assert_eq!(status, 0, "{err}");
    assert!(err.contains("line too long (limit 1048576 bytes)"), "{err}");
    assert_eq!(out, "status 1\n");
}

// Item 8: an endless loop of builtins only stops at the build's --timeout (TIMED_OUT).
#[test]
fn attack_builtin_loop_is_stopped_by_the_timeout() {
    let started = Instant::now();
    let run = build(
        &spec(&["while :; do :; done", "echo never"]),
        &[],
        &[],
        &["--timeout", "0.05"],
    );
    assert_eq!(run.status(), 4, "{}", run.log());
    assert_eq!(run.record()["buildStatus"], "TIMED_OUT");
    assert!(!run.log().contains("\nnever\n"));
    assert!(started.elapsed() < Duration::from_secs(60));
}

// Item 9: `eval` recursion ends with a message and FAILED, with a record (no abort).
#[test]
fn attack_eval_recursion_fails_cleanly() {
    let run = build(&spec(&[r#"x='eval "$x"'; eval "$x""#]), &[], &[], &[]);
    assert_failed_with(&run, "eval: maximum nesting level exceeded (100)");
}

// Item 9: a file sourcing itself.
#[test]
fn attack_source_recursion_fails_cleanly() {
    let run = build(
        &spec(&[". ./self.sh; echo never"]),
        &[("self.sh", ". ./self.sh\necho unwound\n")],
        &[],
        &[],
    );
    assert_failed_with(&run, "maximum nesting level exceeded (100)");
    assert!(!run.log().contains("unwound"), "{}", run.log());
}

// Item 9: function recursion through heavy frames stops at 1000 calls.
#[test]
fn attack_function_recursion_fails_cleanly() {
    let run = build(
        &spec(&["f(){ while :; do if :; then f; fi; done; }; f"]),
        &[],
        &[],
        &[],
    );
    assert_failed_with(&run, "f: maximum function nesting level exceeded (1000)");
}

// Item 9: a script running itself as a program (`./self.sh`), and through `sh -c`.
#[test]
fn attack_script_self_recursion_fails_cleanly() {
    let run = build(
        &spec(&["./self.sh"]),
        &[("self.sh", "#!/bin/sh\n./self.sh\necho unwound $?\n")],
        &[],
        &[],
    );
    assert_failed_with(&run, "maximum nesting level exceeded (100)");
    assert!(!run.log().contains("unwound"), "{}", run.log());

    let (status, _, err) = sh(r#"export x='sh -c "$x"'; sh -c "$x""#, &[], &[]);
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("maximum nesting level exceeded (100)"),
        "{err}"
    );
}

// Item 9: functions nested in scripts nested in functions: the limits hold across them.
#[test]
fn attack_recursion_across_scripts_and_functions_fails_cleanly() {
    let run = build(
        &spec(&["./a.sh 0"]),
        &[(
            "a.sh",
            "f(){ if [ $1 -lt 600 ]; then f $(($1+1)); else ./a.sh; fi; }\nf 0\n",
        )],
        &[],
        &[],
    );
    assert_eq!(run.status(), 1, "{}", run.log());
    assert!(
        run.log()
            .contains("maximum function nesting level exceeded (1000)"),
        "{}",
        run.log()
    );
}

/// A build whose BUILD phase leaves a job that writes `late.txt` after 2 s; POST_BUILD waits
/// long enough for it and reports whether it appeared; artifacts take everything.
fn job_outliving_phase(job: &str) -> Run {
    let buildspec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - {}\n      - echo started\n  post_build:\n    commands:\n      - sleep 4\n      - 'if [ -e late.txt ]; then echo MARKER-WRITTEN; else echo NO-MARKER; fi'\nartifacts:\n  files:\n    - '**/*'\n",
        yaml_quote(job)
    );
    build(&buildspec, &[], &[("WASMBUILD_JOB_GRACE_MS", "200")], &[])
}

// Deliver 4: a background job is stopped at the end of its phase: it never writes after it,
// not into the next phase, not into the artifacts.
#[test]
fn attack_background_job_outliving_its_phase_is_stopped() {
    let run = job_outliving_phase("(sleep 2; echo late > late.txt; echo LATE-OUTPUT) &");
    let log = run.log();
    assert_eq!(run.status(), 0, "{log}");
    assert!(log.contains("NO-MARKER"), "{log}");
    assert!(!log.contains("\nLATE-OUTPUT\n"), "{log}");
    assert!(
        log.contains("Stopped 1 background job(s) still running at the end of the phase"),
        "{log}"
    );
    assert!(!run.out.path().join("primary/late.txt").exists());
    assert!(!run.out.path().join("late.txt").exists());
}

// Deliver 4: the same for a job started inside a subshell, which nothing ever joined.
#[test]
fn attack_background_job_of_a_subshell_is_stopped() {
    let run = job_outliving_phase("( (sleep 2; echo late > late.txt; echo LATE-OUTPUT) & )");
    let log = run.log();
    assert_eq!(run.status(), 0, "{log}");
    assert!(log.contains("NO-MARKER"), "{log}");
    assert!(!log.contains("\nLATE-OUTPUT\n"), "{log}");
}

// Deliver 4: a busy job (a guest spinning) is stopped at the end of the phase, and the build
// ends without waiting for it.
#[test]
fn attack_busy_background_job_is_stopped_at_the_end_of_the_phase() {
    let started = Instant::now();
    let run = build(
        &spec(&["yes > /dev/null &", "while :; do :; done &", "echo started"]),
        &[],
        &[("WASMBUILD_JOB_GRACE_MS", "200")],
        &[],
    );
    let log = run.log();
    assert_eq!(run.status(), 0, "{log}");
    assert!(log.contains("Stopped 2 background job(s)"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

// Deliver 4 (what must keep working): a job that ends within the grace period is waited for.
#[test]
fn attack_short_job_is_waited_for_not_stopped() {
    let run = build(
        &spec(&["(sleep 1; echo finished-in-time) &"]),
        &[],
        &[("WASMBUILD_JOB_GRACE_MS", "5000")],
        &[],
    );
    let log = run.log();
    assert_eq!(run.status(), 0, "{log}");
    assert!(log.contains("finished-in-time"), "{log}");
    assert!(!log.contains("Stopped"), "{log}");
}

// What already holds: `yes | head -1` ends (head exits, yes sees the closed pipe).
#[test]
fn attack_yes_into_head_ends() {
    let started = Instant::now();
    let (status, out, err) = sh("yes | head -n 1; echo done", &[], &[]);
    assert_eq!((status, out.as_str()), (0, "y\ndone\n"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

// Item 8: a brace range with numbers past 64 bits neither crashes nor expands.
#[test]
fn attack_brace_range_with_huge_numbers_does_not_crash() {
    let (status, out, err) = sh("echo {1..99999999999999999999}; echo ok", &[], &[]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        out, "{1..99999999999999999999}\nok\n",
        "kept literally, as bash does"
    );
    assert!(
        !err.contains("panicked"),
        "a contained panic is silent: {err}"
    );
}

// Item 9: syntax nested 100,000 deep (which overflowed the parser's or the interpreter's
// stack and aborted wasmbuild) is a syntax error naming the limit, with a build record.
#[test]
fn attack_deeply_nested_syntax_is_refused() {
    let deep = format!("{}true{}", "(".repeat(100_000), ")".repeat(100_000));
    let run = build(&spec(&[&deep, "echo never"]), &[], &[], &[]);
    let log = run.log();
    assert_eq!(run.status(), 1, "{}", run.stderr());
    assert_eq!(run.record()["buildStatus"], "FAILED");
    assert!(
        log.contains("nesting too deep (limit 1000 levels)"),
        "{}",
        &log[..2000.min(log.len())]
    );
    assert!(!log.contains("\nnever\n"));

    let deep_ifs = format!(
        "{}echo deep; {}",
        "if true; then ".repeat(5_000),
        "fi; ".repeat(5_000)
    );
    let (status, out, err) = sh(&deep_ifs, &[], &[]);
    assert_eq!(status, 2, "{}", &err[..err.len().min(500)]);
    assert!(
        err.contains("nesting too deep"),
        "{}",
        &err[..err.len().min(500)]
    );
    assert!(out.is_empty());
}

// Item 9: nesting built at run time (a function whose body is 900 groups deep, recursing)
// stops at the interpreter's limit instead of overflowing its stack.
#[test]
fn attack_deep_recursion_through_nested_groups_fails_cleanly() {
    let body = format!("{}f; {}", "{ ".repeat(900), "} ".repeat(900));
    let run = build(&spec(&[&format!("f(){{ {body} }}; f")]), &[], &[], &[]);
    assert_failed_with(
        &run,
        "maximum nesting level exceeded (10000 compound commands)",
    );
}

// Deliver 4: with version 0.1 (a fresh shell per command) the jobs of earlier commands are
// stopped at the end of the phase too.
#[test]
fn attack_background_job_of_a_version_0_1_command_is_stopped() {
    let buildspec = "version: 0.1\nphases:\n  build:\n    commands:\n      - '(sleep 2; echo late > late.txt; echo LATE-OUTPUT) &'\n      - echo next command\n  post_build:\n    commands:\n      - sleep 4\n      - 'if [ -e late.txt ]; then echo MARKER-WRITTEN; else echo NO-MARKER; fi'\n";
    let run = build(buildspec, &[], &[("WASMBUILD_JOB_GRACE_MS", "200")], &[]);
    let log = run.log();
    assert_eq!(run.status(), 0, "{log}");
    assert!(log.contains("NO-MARKER"), "{log}");
    assert!(!log.contains("\nLATE-OUTPUT\n"), "{log}");
    assert!(log.contains("Stopped 1 background job(s)"), "{log}");
}

// Deliver 4 with the deadline: a busy job and a busy foreground under --timeout end the
// build as TIMED_OUT promptly, the grace period cut short by the deadline.
#[test]
fn attack_jobs_past_the_deadline_end_with_the_build() {
    let started = Instant::now();
    let run = build(
        &spec(&["while :; do :; done &", "yes > /dev/null"]),
        &[],
        &[("WASMBUILD_JOB_GRACE_MS", "600000")],
        &["--timeout", "0.05"],
    );
    assert_eq!(run.status(), 4, "{}", run.log());
    assert_eq!(run.record()["buildStatus"], "TIMED_OUT");
    assert!(started.elapsed() < Duration::from_secs(60));
}

//! End-to-end build benchmark (issue 4): `wasmbuild run` on a warm store, side by side with
//! bash running the same commands natively on a copy of the source.
//!
//! - the hello fixture (five commands, one artifact), target under 100 ms warm;
//! - a generated buildspec of 200 commands (a mix of builtins and sandboxed programs),
//!   against the same build with one command, giving the per-command overhead.
//!
//! `cargo bench --bench build` (uses `WASMBUILD_STORE`, or the default store; the base
//! bundle is built there on first use). `BUILD_BENCH_RUNS` sets the number of timed runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn runs() -> usize {
    std::env::var("BUILD_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Median wall time of `wasmbuild run SRC` (after one warm-up run).
fn wasmbuild_run(src: &Path, out: &Path) -> Duration {
    let once = || {
        let started = Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_wasmbuild"))
            .arg("run")
            .arg(src)
            .arg("-a")
            .arg(out)
            .args(["--project", "bench"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run wasmbuild");
        assert!(status.success(), "wasmbuild run {} failed", src.display());
        started.elapsed()
    };
    once();
    median((0..runs()).map(|_| once()).collect())
}

/// Median wall time of native bash running `commands` in a fresh copy of `src`.
fn bash_run(src: &Path, commands: &[String]) -> Duration {
    let script = commands.join("\n");
    let once = || {
        let work = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let status = Command::new("cp")
            .arg("-r")
            .arg(format!("{}/.", src.display()))
            .arg(work.path())
            .status()
            .expect("cp");
        assert!(status.success());
        let status = Command::new("bash")
            .args(["-e", "-c", &script])
            .current_dir(work.path())
            .env("CODEBUILD_BUILD_ID", "bench:1")
            .stdout(Stdio::null())
            .status()
            .expect("bash");
        assert!(status.success(), "bash failed on the same commands");
        started.elapsed()
    };
    once();
    median((0..runs()).map(|_| once()).collect())
}

fn commands_of(buildspec: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(buildspec).unwrap();
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("commands:"))
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("- "))
        .map(|l| l.trim_start()[2..].to_owned())
        .collect()
}

fn generated(dir: &Path, count: usize) -> Vec<String> {
    let commands: Vec<String> = (0..count)
        .map(|i| match i % 4 {
            0 => format!("echo line {i} >> log.txt"),
            1 => "wc -l log.txt".to_owned(),
            2 => format!("mkdir -p d/{i} && touch d/{i}/f"),
            _ => "cat log.txt > /dev/null".to_owned(),
        })
        .collect();
    let mut yaml = String::from("version: 0.2\nphases:\n  build:\n    commands:\n");
    for c in &commands {
        yaml.push_str(&format!("      - {c}\n"));
    }
    std::fs::write(dir.join("buildspec.yml"), yaml).unwrap();
    commands
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let out = tempfile::tempdir().unwrap();
    println!(
        "wasmbuild run, end to end (process start, copy, phases, artifacts, record); median of {} runs",
        runs()
    );
    println!(
        "{:<34} {:>12} {:>12} {:>8}",
        "build", "wasmbuild", "bash", "ratio"
    );

    let hello = fixtures.join("hello");
    let w = wasmbuild_run(&hello, out.path());
    let b = bash_run(&hello, &commands_of(&hello.join("buildspec.yml")));
    println!(
        "{:<34} {:>9.1} ms {:>9.1} ms {:>7.2}x   (target: < 100 ms)",
        "hello (5 commands, 1 artifact)",
        ms(w),
        ms(b),
        ms(w) / ms(b)
    );

    let one = tempfile::tempdir().unwrap();
    let one_commands = generated(one.path(), 1);
    let many = tempfile::tempdir().unwrap();
    let many_commands = generated(many.path(), 200);
    let (w1, b1) = (
        wasmbuild_run(one.path(), out.path()),
        bash_run(one.path(), &one_commands),
    );
    let (w200, b200) = (
        wasmbuild_run(many.path(), out.path()),
        bash_run(many.path(), &many_commands),
    );
    println!(
        "{:<34} {:>9.1} ms {:>9.1} ms {:>7.2}x",
        "1 command",
        ms(w1),
        ms(b1),
        ms(w1) / ms(b1)
    );
    println!(
        "{:<34} {:>9.1} ms {:>9.1} ms {:>7.2}x",
        "200 commands",
        ms(w200),
        ms(b200),
        ms(w200) / ms(b200)
    );
    let per = |a: Duration, b: Duration| (ms(a) - ms(b)) / 199.0;
    println!(
        "{:<34} {:>9.2} ms {:>9.2} ms {:>7.2}x",
        "per command (200 vs 1)",
        per(w200, w1),
        per(b200, b1),
        per(w200, w1) / per(b200, b1)
    );
}

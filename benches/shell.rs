//! The build shell against bash, side by side: a script of 1,000 external `true` commands,
//! and a 10-stage pipeline over 100 MB. wasmbuild runs `wasmbuild sh` with the base image
//! (every program in the sandbox); the baseline is bash with the host's native coreutils.
//! Both disable the `true` builtin (`enable -n true`) so each `true` is a program.
//!
//! Run with `cargo bench --bench shell` (needs the base bundle in the store:
//! `wasmbuild runtime build base`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TRUE_LOOP: &str = "enable -n true; for i in $(seq 1000); do true; done";
const PIPELINE: &str =
    "yes 0123456789abcdef | head -c 100000000 | cat | cat | cat | cat | cat | cat | cat | wc -c";

/// The best of `runs` timings of a command that must succeed (the least disturbed run).
fn best_of(runs: u32, mut command: impl FnMut() -> Command) -> Option<Duration> {
    let mut best: Option<Duration> = None;
    for _ in 0..runs {
        let started = Instant::now();
        let status = command()
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .ok()?;
        let elapsed = started.elapsed();
        if !status.success() {
            eprintln!("command failed with {status}");
            return None;
        }
        best = Some(best.map_or(elapsed, |b| b.min(elapsed)));
    }
    best
}

fn bash(script: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(script).env("LC_ALL", "C");
    cmd
}

fn wasmbuild(script: &str, src: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmbuild"));
    cmd.args(["sh", "--image", "base", "--src"])
        .arg(src)
        .arg("-c")
        .arg(script);
    cmd
}

fn row(name: &str, ours: Option<Duration>, baseline: Option<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    match (ours, baseline) {
        (Some(o), Some(b)) => println!(
            "{name:<34} wasmbuild sh {:>9.1} ms   bash {:>9.1} ms   ratio {:>6.2}x",
            ms(o),
            ms(b),
            ms(o) / ms(b)
        ),
        (o, b) => println!("{name:<34} wasmbuild sh {o:?}   bash {b:?}   (a run failed)"),
    }
}

fn main() {
    let src = tempfile::tempdir().expect("a scratch source directory");
    println!("build shell vs bash (best of 3 runs)");
    for (name, script) in [
        ("1,000 external `true` commands", TRUE_LOOP),
        ("10-stage pipeline over 100 MB", PIPELINE),
    ] {
        let ours = best_of(3, || wasmbuild(script, src.path()));
        let baseline = best_of(3, || bash(script));
        row(name, ours, baseline);
    }
}

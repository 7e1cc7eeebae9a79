//! The build shell against bash, side by side: a script of 1,000 external `true` commands,
//! and a 10-stage pipeline over 100 MB. wasmbuild runs `wasmbuild sh` with the base image
//! (every program in the sandbox); the baseline is bash with the host's native coreutils.
//! Both disable the `true` builtin (`enable -n true`) so each `true` is a program.
//!
//!
//! Then programs started by programs (issue 15): `find -exec … \;` over a tree of 2,000
//! files, each match starting a child — the toolbox's find through `/dev/process` against
//! the host's GNU find starting host programs. `-exec true` runs the build shell's `true`
//! (as a buildspec command would); `-exec cat` and `xargs -n 1 cat` start a toolbox program
//! in its own sandbox per file.
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

/// Files of the tree the `find -exec` rows walk.
const FILES: usize = 2000;

const FIND_EXEC: [(&str, &str); 3] = [
    (
        "find -exec true {} \\; (2,000 files)",
        "find tree -type f -exec true {} \\;",
    ),
    (
        "find -exec cat {} \\; (2,000 files)",
        "find tree -type f -exec cat {} \\;",
    ),
    (
        "find | xargs -n 1 cat (2,000 files)",
        "find tree -type f | xargs -n 1 cat",
    ),
];

fn bash(script: &str, src: &std::path::Path) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .current_dir(src)
        .env("LC_ALL", "C");
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
            "{name:<38} wasmbuild sh {:>9.1} ms   bash {:>9.1} ms   ratio {:>6.2}x",
            ms(o),
            ms(b),
            ms(o) / ms(b)
        ),
        (o, b) => println!("{name:<38} wasmbuild sh {o:?}   bash {b:?}   (a run failed)"),
    }
}

fn main() {
    let src = tempfile::tempdir().expect("a scratch source directory");
    println!("build shell vs bash (best of 3 runs)");
    for i in 0..FILES {
        let dir = src.path().join(format!("tree/d{}", i % 40));
        std::fs::create_dir_all(&dir).expect("a directory of the tree");
        std::fs::write(dir.join(format!("f{i}.txt")), format!("{i}\n")).expect("a file");
    }
    let rows = [
        ("1,000 external `true` commands", TRUE_LOOP),
        ("10-stage pipeline over 100 MB", PIPELINE),
    ];
    for (name, script) in rows.into_iter().chain(FIND_EXEC) {
        let ours = best_of(3, || wasmbuild(script, src.path()));
        let baseline = best_of(3, || bash(script, src.path()));
        row(name, ours, baseline);
    }
}

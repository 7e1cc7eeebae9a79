//! Programs started by programs (issue 15), side by side with the host: `find -exec … \;`
//! over a tree of 2,000 files, each match starting a child. wasmbuild runs `wasmbuild sh`
//! with the base image (the toolbox's find, its children through `/dev/process`); the
//! baseline is the host's GNU find starting the host's programs.
//!
//! Rows: `-exec true {} \;` (the child is the build shell's `true`, as a command of the
//! buildspec would be), and `-exec cat {} \;` (each child a toolbox program in its own
//! sandbox), and `xargs -n 1` over the same files.
//!
//! Run with `cargo bench --bench processes` (needs the base bundle in the store:
//! `wasmbuild runtime build base`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FILES: usize = 2000;

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

fn native(script: &str, src: &Path) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .current_dir(src)
        .env("LC_ALL", "C");
    cmd
}

fn wasmbuild(script: &str, src: &Path) -> Command {
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
            "{name:<34} wasmbuild {:>9.1} ms   native {:>9.1} ms   ratio {:>6.2}x",
            ms(o),
            ms(b),
            ms(o) / ms(b)
        ),
        (o, b) => println!("{name:<34} wasmbuild {o:?}   native {b:?}   (a run failed)"),
    }
}

fn main() {
    let src = tempfile::tempdir().expect("a scratch source directory");
    for i in 0..FILES {
        let dir = src.path().join(format!("tree/d{}", i % 40));
        std::fs::create_dir_all(&dir).expect("a directory of the tree");
        std::fs::write(dir.join(format!("f{i}.txt")), format!("{i}\n")).expect("a file");
    }
    println!("programs starting programs, {FILES} files (best of 3 runs)");
    for (name, script) in [
        (
            "find -exec true {} \\;",
            "find tree -type f -exec true {} \\;",
        ),
        (
            "find -exec cat {} \\;",
            "find tree -type f -exec cat {} \\;",
        ),
        (
            "find | xargs -n 1 cat",
            "find tree -type f | xargs -n 1 cat",
        ),
    ] {
        let ours = best_of(3, || wasmbuild(script, src.path()));
        let baseline = best_of(3, || native(script, src.path()));
        row(name, ours, baseline);
    }
}

//! Python projects (issue 14), side by side in one run:
//!
//! - `pip install` of a 10-package lock (a requirements file with `--hash=` lines) in a
//!   build, from a warm store, against the host's `pip install` of the same file from a warm
//!   pip cache into a fresh venv (target: ≤ 1.0×);
//! - pytest on `fixtures/python-project`'s suite in the sandbox against native pytest,
//!   without and with `--cov`, on the default python, 3.13 built here (target: ≤ 2×), and on
//!   the 3.12 bundle (goal for CPU-bound guest Python: ≤ 3×), each build installing its
//!   packages with pip.
//!
//! The sandbox side runs builds through the `wasmbuild` binary (`wasmbuild run`) and times
//! the command from the build log's own timestamps (`Running command …` to the next log
//! line), so process start and the other phases are not counted; the native side times the
//! same command run by the host's `python3` tools. If the sandbox side fails (for instance
//! before `pip` works in builds), its column says why and the native column still prints.
//!
//! `cargo bench --bench python` (uses `WASMBUILD_STORE`, or the default store; the python
//! bundles are built there on first use). `PYTHON_BENCH_RUNS` sets the
//! number of timed runs (default 3), after one warm-up run on each side.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The lock: ten pure-Python wheels (pytest and its dependencies on 3.11+, and six more),
/// each pinned by the sha256 the index publishes for its `py3-none-any` wheel.
const LOCK: &[(&str, &str)] = &[
    (
        "pytest==8.3.4",
        "50e16d954148559c9a74109af1eaf0c945ba2d8f30f0a3d3335edde19788b6f6",
    ),
    (
        "iniconfig==2.0.0",
        "b6a85871a79d2e3b22d2d1b94ac2824226a63c6b741c88f7ae975f18b6778374",
    ),
    (
        "packaging==24.2",
        "09abb1bccd265c01f4a3aa3f7a7db064b36514d2cba19a2f694fe6150451a759",
    ),
    (
        "pluggy==1.5.0",
        "44e1ad92c8ca002de6377e165f3e0f1be63266ab4d554740532335b9d75ea669",
    ),
    (
        "attrs==24.2.0",
        "81921eb96de3191c8258c199618104dd27ac608d9366f5e35d011eae1867ede2",
    ),
    (
        "six==1.17.0",
        "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
    ),
    (
        "idna==3.10",
        "946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3",
    ),
    (
        "toolz==1.0.0",
        "292c8f1c4e7516bf9086f8850935c799a874039c8bcf959d47b600e4c44a6236",
    ),
    (
        "more-itertools==10.5.0",
        "037b0d3203ce90cca8ab1defbbdac29d5f993fc20131f3664dc8d6acfa872aef",
    ),
    (
        "sortedcontainers==2.4.0",
        "a163dcaede0f1c021485e957a39245190e74249897e2ae4b2aa38595db237ee0",
    ),
];

fn runs() -> usize {
    std::env::var("PYTHON_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn locked_requirements() -> String {
    LOCK.iter()
        .map(|(pin, sha)| format!("{pin} --hash=sha256:{sha}\n"))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success(), "cp -r {}", from.display());
}

/// The time of the first command of the log that starts with `command`: from its `Running
/// command` line to the next `[Container]` line (CodeBuild's timestamps, in microseconds).
fn command_time(log: &str, command: &str) -> Option<Duration> {
    let stamp = |line: &str| -> Option<f64> {
        // [Container] 2026/11/24 10:00:00.123456 …
        let time = line.strip_prefix("[Container] ")?.split(' ').nth(1)?;
        let mut parts = time.split(':');
        let h: f64 = parts.next()?.parse().ok()?;
        let m: f64 = parts.next()?.parse().ok()?;
        let s: f64 = parts.next()?.parse().ok()?;
        Some(h * 3600.0 + m * 60.0 + s)
    };
    let mut lines = log.lines();
    let start = lines
        .by_ref()
        .find(|l| {
            l.starts_with("[Container] ") && l.contains(&format!("Running command {command}"))
        })
        .and_then(stamp)?;
    let end = lines
        .find(|l| l.starts_with("[Container] "))
        .and_then(stamp)?;
    let secs = end - start;
    (secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// One `wasmbuild run` of `src`; the time of `command` in its log, or why there is none.
fn sandbox_once(src: &Path, command: &str) -> Result<Duration, String> {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wasmbuild"))
        .arg("run")
        .arg(src)
        .arg("-a")
        .arg(out.path())
        .args(["--project", "bench"])
        .stdin(Stdio::null())
        .output()
        .expect("run wasmbuild");
    let log = std::fs::read_to_string(out.path().join("build.log"))
        .unwrap_or_else(|_| String::from_utf8_lossy(&output.stdout).into_owned());
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // The failed command's last line of output says more than its exit status.
        let lines: Vec<&str> = log.lines().collect();
        let why = lines
            .iter()
            .position(|l| l.contains("Command did not exit successfully"))
            .and_then(|i| {
                lines[..i]
                    .iter()
                    .rev()
                    .find(|l| !l.starts_with("[Container] ") && !l.trim().is_empty())
            })
            .copied()
            .or_else(|| stderr.lines().last())
            .unwrap_or("no reason given");
        return Err(format!("build failed: {}", why.trim()));
    }
    command_time(&log, command).ok_or_else(|| format!("no `{command}` in the build log"))
}

/// Median time of `command` over the timed runs, after one warm-up build (which fills the
/// store with the lock's files).
fn sandbox(src: &Path, command: &str) -> Result<Duration, String> {
    sandbox_once(src, command)?;
    let mut samples = Vec::new();
    for _ in 0..runs() {
        samples.push(sandbox_once(src, command)?);
    }
    Ok(median(samples))
}

/// A venv with the host's python3 (created outside any timing).
fn venv(dir: &Path) -> PathBuf {
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .expect("the host's python3 runs");
    assert!(status.success(), "python3 -m venv");
    dir.join("bin")
}

fn native_pip(bin: &Path, args: &[&str], cwd: &Path, cache: &Path) -> Duration {
    let started = Instant::now();
    let output = Command::new(bin.join("pip"))
        .args(["install", "--quiet"])
        .args(args)
        .current_dir(cwd)
        .env("PIP_CACHE_DIR", cache)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .output()
        .expect("pip runs");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "native pip install {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

/// Native `pip install -r requirements.txt` of the lock into a fresh venv each time, from a
/// warm pip cache (the warm-up run fills it).
fn native_install(src: &Path, cache: &Path) -> Duration {
    let once = || {
        let env = tempfile::tempdir().unwrap();
        let bin = venv(env.path());
        native_pip(&bin, &["-r", "requirements.txt"], src, cache)
    };
    once();
    median((0..runs()).map(|_| once()).collect())
}

/// Native pytest on a copy of the fixture, installed as its buildspec does.
fn native_pytest(fixture: &Path, cache: &Path, args: &[&str]) -> Duration {
    let env = tempfile::tempdir().unwrap();
    let bin = venv(env.path());
    let work = tempfile::tempdir().unwrap();
    copy_dir(fixture, work.path());
    native_pip(&bin, &["-r", "requirements.txt"], work.path(), cache);
    native_pip(&bin, &["-e", "."], work.path(), cache);
    let once = || {
        let started = Instant::now();
        let output = Command::new(bin.join("pytest"))
            .args(args)
            .current_dir(work.path())
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .expect("pytest runs");
        let elapsed = started.elapsed();
        assert!(
            output.status.success(),
            "native pytest: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        elapsed
    };
    once();
    median((0..runs()).map(|_| once()).collect())
}

fn row(what: &str, sandbox: &Result<Duration, String>, native: Duration, target: &str) {
    let n = native.as_secs_f64();
    match sandbox {
        Ok(w) => {
            let w = w.as_secs_f64();
            println!(
                "{what:<38} {w:>9.2} s {n:>9.2} s {:>7.2}x   ({target})",
                w / n
            );
        }
        Err(why) => println!("{what:<38} {:>11} {n:>9.2} s {:>8}   ({why})", "n/a", "n/a"),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/python-project");
    let cache = tempfile::tempdir().unwrap();
    println!(
        "Python projects: the sandbox (wasmbuild run, command time from the build log) vs the host's python3; median of {} runs",
        runs()
    );
    println!(
        "{:<38} {:>11} {:>11} {:>8}",
        "command", "wasmbuild", "native", "ratio"
    );

    // (a) pip install of the 10-package lock.
    let lock_src = tempfile::tempdir().unwrap();
    std::fs::write(
        lock_src.path().join("requirements.txt"),
        locked_requirements(),
    )
    .unwrap();
    std::fs::write(
        lock_src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.12\n    commands:\n      - pip install -r requirements.txt\n  build:\n    commands:\n      - pytest --version\n",
    )
    .unwrap();
    let w = sandbox(lock_src.path(), "pip install -r requirements.txt");
    let n = native_install(lock_src.path(), cache.path());
    row(
        "pip install, 10-package lock (warm)",
        &w,
        n,
        "target: <= 1.0x",
    );

    // (b) pytest on the fixture's suite, without and with coverage, on 3.12 and on the
    // default 3.13 built here (pip installs for each).
    for (label, command) in [
        (
            "pytest, fixture suite (35 tests)",
            "pytest -q -p no:cacheprovider",
        ),
        (
            "pytest --cov, fixture suite",
            "pytest -q -p no:cacheprovider --cov=minicalc --cov-report=xml",
        ),
    ] {
        let args: Vec<&str> = command.split(' ').skip(1).collect();
        let n = native_pytest(&fixture, cache.path(), &args);
        for (version, target) in [("3.12", "goal: <= 3x"), ("3.13", "target: <= 2.0x")] {
            let src = tempfile::tempdir().unwrap();
            copy_dir(&fixture, src.path());
            std::fs::write(
                src.path().join("buildspec.yml"),
                format!(
                    "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: {version}\n    commands:\n      - pip install -r requirements.txt\n      - pip install -e .\n  build:\n    commands:\n      - {command}\n"
                ),
            )
            .unwrap();
            let w = sandbox(src.path(), command);
            row(&format!("{label}, {version}"), &w, n, target);
        }
    }
}

//! What each engine setting costs (issue 21): CPython in the sandbox (`wasmbuild exec
//! --image python`) on a CPU-bound script — integer loops, dicts, strings, recursion — and
//! on `python -c pass`, whole processes, once per engine variation (`WASMBUILD_ENGINE`, see
//! `sandbox::engine`), side by side with the host's native CPython 3.12 (else `python3`) on the
//! same script; then the interpreters with the default engine: the default image's 3.13,
//! built here (runtimes/python), from its snapshot and started cold, and 3.12
//! (runtimes/python@3.12).
//!
//! Printed: a table of median wall times, each variation's ratio to the default engine and
//! to native CPython. Each variation runs once untimed first (its code compiled into the
//! code cache, which is keyed by the engine's settings); the timed runs then go round the
//! rows, native CPython's among them, so every row meets the machine in the same states:
//! first the script's rounds, then `-c pass`'s (five starts of a row in a row).
//! `cargo bench --bench engine` (uses
//! `WASMBUILD_STORE`, or the default store; the python bundle is built there on first
//! use). `ENGINE_BENCH_RUNS` sets the timed runs (default 5); `ENGINE_BENCH_PYTHON` the native
//! interpreter.
//!
//! Last, where a default `-c pass` start's time goes: the median of each of its phases
//! (`wasmbuild::startup`), from the parent's spawn to its reaping of the process.

use std::process::Command;

#[path = "common/command.rs"]
mod command;
mod common;
use command::run;
use common::median;

/// About 0.1 s of native CPython.
const SCRIPT: &str = r#"
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

total = 0
for i in range(400000):
    total += i * i % 7
table = {}
for i in range(120000):
    table[str(i)] = i
size = 0
for key, value in table.items():
    size += len(key) + value
parts = [f"{i:05d}" for i in range(60000)]
words = ",".join(parts).split(",")
upper = sum(1 for w in words if w.upper() == w)
print(total, size, len(words), upper, fib(22))
"#;

/// `-c pass` runs of a row taken one after another in each round.
const PASS_BLOCK: usize = 5;

const VARIATIONS: &[(&str, &str)] = &[
    ("default (what builds run with)", ""),
    ("epoch interruption off", "epoch=off"),
    ("cranelift opt none", "opt=none"),
    ("cranelift opt speed_and_size", "opt=size"),
    (
        "reservation 64 MiB, guard 0 (bounds checks)",
        "reservation=64M,guard=0",
    ),
    ("reservation 4 GiB, guard 2 GiB", "reservation=4G,guard=2G"),
    ("copy-on-write images off", "cow=off"),
    ("simd off", "simd=off"),
    ("pooling allocator on (as for builds)", "pool=on"),
    ("tables initialised lazily", "lazy_tables=on"),
];

/// The interpreters compared with the default engine: label, image, environment.
const INTERPRETERS: &[(&str, &str, &[&str])] = &[
    (
        "python 3.13.5 (the default), from its snapshot",
        "python",
        &[],
    ),
    (
        "python 3.13.5, cold start",
        "python",
        // The allocator the snapshot fixed, named: such a run starts cold.
        &["PYTHONMALLOC=pymalloc"],
    ),
    ("python 3.12.0", "python:3.12", &[]),
];

/// One measured configuration: engine settings, image, guest environment.
struct Row {
    label: &'static str,
    /// The host's interpreter, measured in the same round as the others.
    native: bool,
    settings: &'static str,
    image: &'static str,
    env: &'static [&'static str],
}

/// The command of `row` running `code`: `python` itself for the native row.
fn command(row: &Row, python: &str, code: &str) -> Command {
    if row.native {
        let mut command = Command::new(python);
        command.args(["-c", code]);
        return command;
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmbuild"));
    command.args(["exec", "--image", row.image]);
    for pair in row.env {
        command.args(["-e", pair]);
    }
    command
        .args(["--", "python", "-c", code])
        .env("WASMBUILD_ENGINE", row.settings);
    command
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs: usize = std::env::var("ENGINE_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    // The baseline is native CPython 3.12 where the host has it:
    // `ENGINE_BENCH_PYTHON`, else `python3.12`, else `python3`; and the interpreter itself, not
    // a launcher script in front of it (pyenv's shims).
    let executable = |program: &str| {
        Command::new(program)
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|path| !path.is_empty())
    };
    let python = std::env::var("ENGINE_BENCH_PYTHON")
        .ok()
        .and_then(|p| executable(&p))
        .or_else(|| executable("python3.12"))
        .or_else(|| executable("python3"))
        .unwrap_or_else(|| "python3".to_owned());
    let version = Command::new(&python)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let show = |r: &Result<f64, String>| match r {
        Ok(ms) => format!("{ms:>8.1} ms"),
        Err(e) => format!("failed: {e}"),
    };
    let native = Row {
        label: "native",
        native: true,
        settings: "",
        image: "",
        env: &[],
    };
    let rows: Vec<Row> = std::iter::once(native)
        .chain(VARIATIONS.iter().map(|(label, settings)| Row {
            label,
            native: false,
            settings,
            image: "python",
            env: &[],
        }))
        .chain(INTERPRETERS.iter().map(|(label, image, env)| Row {
            label,
            native: false,
            settings: "",
            image,
            env,
        }))
        .collect();
    // Every row warmed (compiled, its bundle built) first, then the timed runs taken
    // round-robin, so a slow moment of the machine falls on all of them alike.
    let mut scripts: Vec<Result<Vec<f64>, String>> = Vec::new();
    let mut passes: Vec<Result<Vec<f64>, String>> = Vec::new();
    // One run of `row` on `code`: its wall time in ms.
    let time = |row: &Row, code: &str| run(&mut command(row, &python, code)).map(|(ms, _)| ms);
    for row in &rows {
        scripts.push(time(row, SCRIPT).map(|_| Vec::new()));
        passes.push(time(row, "pass").map(|_| Vec::new()));
    }
    // The scripts' rounds, then the starts': each row's in a block of `PASS_BLOCK` in a row,
    // as a build starts the same interpreter again and again (and as `perf stat -r` or
    // hyperfine time a start), the blocks going round the rows. A start that follows another
    // program meets caches that program filled, which the larger process pays more for.
    for (all, code, block) in [(&mut scripts, SCRIPT, 1), (&mut passes, "pass", PASS_BLOCK)] {
        for _ in 0..runs {
            for (row, samples) in rows.iter().zip(all.iter_mut()) {
                for _ in 0..block {
                    if let Ok(list) = samples {
                        match time(row, code) {
                            Ok(ms) => list.push(ms),
                            Err(e) => *samples = Err(e),
                        }
                    }
                }
            }
        }
    }
    let medians = |all: Vec<Result<Vec<f64>, String>>| -> Vec<Result<f64, String>> {
        all.into_iter().map(|r| r.map(median)).collect()
    };
    let (scripts, passes) = (medians(scripts), medians(passes));
    let (native_script, native_pass) = (scripts[0].clone(), passes[0].clone());
    let default_script = scripts[1].as_ref().ok().copied();
    let ratio = |a: &Result<f64, String>, b: Option<f64>| match (a, b) {
        (Ok(a), Some(b)) => format!("{:>8.2}×", a / b),
        _ => format!("{:>9}", "-"),
    };
    println!(
        "native {version} ({python}): CPU-bound script {}, -c pass {}  (medians of {runs} \
         runs and {} starts, in the same rounds as the rows below)",
        show(&native_script),
        show(&native_pass),
        runs * PASS_BLOCK
    );
    let heading = |first: &str| {
        println!(
            "{first:<46} {:>11} {:>9} {:>9}   {:>11} {:>9}",
            "script", "÷default", "÷native", "-c pass", "÷native"
        )
    };
    for (i, ((row, script), pass)) in rows.iter().zip(&scripts).zip(&passes).enumerate() {
        if i == 0 {
            continue;
        } else if i == 1 {
            heading("engine (python 3.13, from its snapshot)");
        } else if i == 1 + VARIATIONS.len() {
            println!();
            heading("interpreter (default engine)");
        }
        match script {
            Ok(_) => println!(
                "{:<46} {} {} {}   {} {}",
                row.label,
                show(script),
                ratio(script, default_script),
                ratio(script, native_script.as_ref().ok().copied()),
                show(pass),
                ratio(pass, native_pass.as_ref().ok().copied()),
            ),
            Err(e) => println!("{:<46} failed: {e}", row.label),
        }
    }
    println!();
    phases(&command(&rows[1], &python, "pass"), runs * PASS_BLOCK);
}

/// Prints the median duration of each start-up phase of `starts` runs like `like`.
fn phases(like: &Command, starts: usize) {
    let mut runs: Vec<Vec<(String, f64)>> = Vec::new();
    for _ in 0..starts {
        let mut command = Command::new(like.get_program());
        command.args(like.get_args());
        for (key, value) in like.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command.env(wasmbuild::startup::VARIABLE, "1");
        let spawned = wasmbuild::startup::monotonic_seconds();
        let Ok(output) = command.output() else {
            println!("start-up phases: the command cannot be started");
            return;
        };
        let reaped = wasmbuild::startup::monotonic_seconds();
        let mut marks: Vec<(String, f64)> = Vec::new();
        let mut main_at = None;
        for line in String::from_utf8_lossy(&output.stderr).lines() {
            let Some(rest) = line.strip_prefix("wasmbuild startup ") else {
                continue;
            };
            let Some((ms, phase)) = rest.split_once(' ') else {
                continue;
            };
            let Ok(ms) = ms.parse::<f64>() else { continue };
            let phase = match phase.strip_prefix(wasmbuild::startup::MAIN) {
                Some(clock) if main_at.is_none() => {
                    main_at = clock.trim().parse::<f64>().ok();
                    wasmbuild::startup::MAIN
                }
                _ => phase,
            };
            marks.push((phase.to_owned(), ms));
        }
        let (Some(main_at), Some(&(_, last))) = (main_at, marks.last()) else {
            println!("start-up phases: the command printed none");
            return;
        };
        let mut durations = vec![("binary loaded, main".to_owned(), (main_at - spawned) * 1e3)];
        durations.extend(marks.windows(2).map(|w| (w[1].0.clone(), w[1].1 - w[0].1)));
        durations.push(("exited, reaped".to_owned(), (reaped - main_at) * 1e3 - last));
        runs.push(durations);
    }
    let names: Vec<String> = runs[0].iter().map(|(name, _)| name.clone()).collect();
    let alike: Vec<&Vec<(String, f64)>> = runs
        .iter()
        .filter(|run| run.iter().map(|(n, _)| n).eq(names.iter()))
        .collect();
    println!(
        "where a default `-c pass` start goes (medians of {} starts; each phase ends at its mark)",
        alike.len()
    );
    let mut total = 0.0;
    for (i, name) in names.iter().enumerate() {
        let ms = median(alike.iter().map(|run| run[i].1).collect());
        total += ms;
        println!("  {name:<44} {ms:>7.3} ms");
    }
    println!("  {:<44} {total:>7.3} ms", "sum of the medians");
}

//! Compiled tools against GNU (issue 21): the base image's toolbox in the sandbox
//! (`wasmbuild exec --image base`) and the host's GNU coreutils on the same files, whole
//! processes, side by side: `sort -n` of 2 M integers, `sort` of the same lines as text,
//! and `sha256sum` of 200 MB. GNU sorts on every core it has; `sort --parallel=1` is shown
//! beside it (the guest has one thread). Each pair's outputs are compared before timing.
//!
//! Printed: median wall times and the ratio to GNU. `cargo bench --bench tools` (uses
//! `WASMBUILD_STORE`, or the default store; the base bundle is built there on first use).
//! `TOOLS_BENCH_RUNS` sets the timed runs (default 5).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;

#[path = "common/command.rs"]
mod command;
mod common;
use command::run;
use common::median;

const LINES: usize = 2_000_000;
const BYTES: usize = 200_000_000;

/// One compared command: its label, the toolbox's arguments, GNU's arguments and the file
/// each writes its output to (`None`: standard output is the result).
struct Case {
    label: &'static str,
    guest: &'static [&'static str],
    host: &'static [&'static str],
    output: Option<(&'static str, &'static str)>,
}

const CASES: &[Case] = &[
    Case {
        label: "sort -n, 2 M integers",
        guest: &["sort", "-n", "numbers.txt", "-o", "sorted.guest"],
        host: &["sort", "-n", "numbers.txt", "-o", "sorted.host"],
        output: Some(("sorted.guest", "sorted.host")),
    },
    Case {
        label: "  (GNU with --parallel=1)",
        guest: &["sort", "-n", "numbers.txt", "-o", "sorted.guest"],
        host: &[
            "sort",
            "-n",
            "--parallel=1",
            "numbers.txt",
            "-o",
            "sorted.host",
        ],
        output: Some(("sorted.guest", "sorted.host")),
    },
    Case {
        label: "sort, the same lines as text",
        guest: &["sort", "numbers.txt", "-o", "text.guest"],
        host: &["sort", "numbers.txt", "-o", "text.host"],
        output: Some(("text.guest", "text.host")),
    },
    Case {
        label: "sha256sum, 200 MB",
        guest: &["sha256sum", "random.bin"],
        host: &["sha256sum", "random.bin"],
        output: None,
    },
];

/// xorshift64*: the same inputs on every machine, without a dependency.
struct Numbers(u64);

impl Numbers {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn write_inputs(dir: &Path) -> std::io::Result<()> {
    let mut numbers = Numbers(0x9e37_79b9_7f4a_7c15);
    let mut lines = BufWriter::new(fs::File::create(dir.join("numbers.txt"))?);
    for _ in 0..LINES {
        // Signed, of every width up to ten digits, as a log or a measurement file has.
        let value = numbers.next();
        let width = 1 + value % 10;
        let magnitude = (value >> 8) % 10u64.pow(width as u32);
        let sign = if value & 0x80 == 0 { "" } else { "-" };
        writeln!(lines, "{sign}{magnitude}")?;
    }
    lines.flush()?;
    let mut random = BufWriter::new(fs::File::create(dir.join("random.bin"))?);
    for _ in 0..BYTES / 8 {
        random.write_all(&numbers.next().to_le_bytes())?;
    }
    random.flush()
}

/// A row's timings so far (toolbox, GNU), or why it failed.
type Samples = Result<(Vec<f64>, Vec<f64>), String>;

fn guest(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmbuild"));
    command
        .args(["exec", "--image", "base", "--src"])
        .arg(dir)
        .arg("--")
        .args(args);
    command
}

fn host(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(args[0]);
    command.args(&args[1..]).current_dir(dir).env("LC_ALL", "C");
    command
}

/// Checks that both sides of `case` give the same result (its warm-up run).
fn agree(dir: &Path, case: &Case) -> Result<(), String> {
    let (_, guest_out) = run(&mut guest(dir, case.guest))?;
    let (_, host_out) = run(&mut host(dir, case.host))?;
    let same = match case.output {
        None => guest_out == host_out,
        Some((g, h)) => {
            fs::read(dir.join(g)).map_err(|e| e.to_string())?
                == fs::read(dir.join(h)).map_err(|e| e.to_string())?
        }
    };
    if same {
        Ok(())
    } else {
        Err("the toolbox and GNU disagree".to_owned())
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs: usize = std::env::var("TOOLS_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-tools");
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).expect("scratch directory");
    write_inputs(&scratch).expect("inputs");
    let mut samples: Vec<Samples> = CASES
        .iter()
        .map(|case| agree(&scratch, case).map(|()| (Vec::new(), Vec::new())))
        .collect();
    // Round-robin, so a slow moment of the machine falls on every row alike.
    for _ in 0..runs {
        for (case, row) in CASES.iter().zip(&mut samples) {
            if let Ok((guest_ms, host_ms)) = row {
                match (
                    run(&mut guest(&scratch, case.guest)),
                    run(&mut host(&scratch, case.host)),
                ) {
                    (Ok((g, _)), Ok((h, _))) => {
                        guest_ms.push(g);
                        host_ms.push(h);
                    }
                    (Err(e), _) | (_, Err(e)) => *row = Err(e),
                }
            }
        }
    }
    println!(
        "{:<32} {:>12} {:>12} {:>8}   ({runs} runs, median)",
        "work", "toolbox", "GNU", "ratio"
    );
    for (case, row) in CASES.iter().zip(samples) {
        match row {
            Ok((g, h)) => {
                let (g, h) = (median(g), median(h));
                println!(
                    "{:<32} {:>9.0} ms {:>9.0} ms {:>7.2}×",
                    case.label,
                    g,
                    h,
                    g / h
                );
            }
            Err(e) => println!("{:<32} failed: {e}", case.label),
        }
    }
    let _ = fs::remove_dir_all(&scratch);
}

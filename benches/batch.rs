//! Batch benchmark (issue 19): a 2×3 build matrix of short builds (each sleeps 0.4 s in
//! the sandbox, then writes an artifact) run as one batch with `--jobs 2`, side by side with
//! the ideal schedule — the builds' own durations, taken from their records, divided by the
//! parallelism (the matrix has no dependencies, so no chain is longer than one build) — and
//! with the same six builds as six `wasmbuild run` processes one after another.
//!
//! Printed: the batch's wall time, the ideal, their ratio (target ≤ 1.2: no idle gaps), and
//! the batch's own cost per build (wall × jobs − Σ build durations, over the builds; target
//! under 20 ms). `cargo bench --bench batch` (uses `WASMBUILD_STORE`, or the default store;
//! the base bundle is built there on first use). `BATCH_BENCH_RUNS` sets the runs (median).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::median;

const BUILDSPEC: &str = "version: 0.2
phases:
  build:
    commands:
      - sleep 0.4
      - mkdir -p out && echo \"$SUITE $SHARD\" > out/result.txt
artifacts:
  files: out/result.txt
batch:
  build-matrix:
    dynamic:
      env:
        variables:
          SUITE: [unit, integration]
          SHARD: [a, b, c]
";

fn wasmbuild(args: &[&str], src: &Path, out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_wasmbuild"))
        .arg("run")
        .arg(src)
        .arg("-a")
        .arg(out)
        .args(["--project", "bench-batch"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run wasmbuild");
    assert!(status.success(), "wasmbuild run {args:?} failed");
}

fn timestamp(text: &str) -> jiff::Timestamp {
    text.parse().expect("a record time")
}

/// Σ of the batch's build durations, from their records.
fn build_durations(out: &Path) -> Duration {
    let batch: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("build-batch.json")).unwrap())
            .unwrap();
    let mut total = Duration::ZERO;
    for group in batch["buildGroups"].as_array().unwrap() {
        let dir = group["currentBuildSummary"]["location"].as_str().unwrap();
        let record: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(Path::new(dir).join("build.json")).unwrap(),
        )
        .unwrap();
        let span = timestamp(record["endTime"].as_str().unwrap())
            .duration_since(timestamp(record["startTime"].as_str().unwrap()));
        total += Duration::try_from(span).unwrap();
    }
    total
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs: usize = std::env::var("BATCH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let jobs = 2.0;
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("buildspec.yml"), BUILDSPEC).unwrap();
    // Warm-up: bundles built, code compiled and cached.
    wasmbuild(
        &["--batch", "--jobs", "2"],
        src.path(),
        tempfile::tempdir().unwrap().path(),
    );

    let (mut walls, mut ideals, mut overheads, mut sequential) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let out = tempfile::tempdir().unwrap();
        let started = Instant::now();
        wasmbuild(&["--batch", "--jobs", "2"], src.path(), out.path());
        let wall = started.elapsed().as_secs_f64();
        let builds = build_durations(out.path()).as_secs_f64();
        walls.push(wall);
        ideals.push(builds / jobs);
        overheads.push((wall * jobs - builds) / 6.0);

        // The same six builds as six processes, one after another.
        let started = Instant::now();
        for suite in ["unit", "integration"] {
            for shard in ["a", "b", "c"] {
                let out = tempfile::tempdir().unwrap();
                wasmbuild(
                    &[
                        "-e",
                        &format!("SUITE={suite}"),
                        "-e",
                        &format!("SHARD={shard}"),
                    ],
                    src.path(),
                    out.path(),
                );
            }
        }
        sequential.push(started.elapsed().as_secs_f64());
    }
    let (wall, ideal) = (median(walls), median(ideals));
    println!("2×3 build matrix, 6 builds of ~0.4 s, --jobs 2; {runs} run(s), median");
    println!("{:<40} {:>9}", "", "seconds");
    println!("{:<40} {wall:>9.3}", "wasmbuild run --batch --jobs 2");
    println!("{:<40} {ideal:>9.3}", "ideal (Σ build durations / 2)");
    println!(
        "{:<40} {:>9.3}",
        "6 × wasmbuild run, one after another",
        median(sequential)
    );
    let overhead_ms = median(overheads) * 1000.0;
    println!(
        "batch / ideal: {:.2}x (target ≤ 1.2: {}); batch cost per build: {overhead_ms:.1} ms (target < 20 ms: {})",
        wall / ideal,
        if wall / ideal <= 1.2 { "met" } else { "MISSED" },
        if overhead_ms < 20.0 { "met" } else { "MISSED" },
    );
}

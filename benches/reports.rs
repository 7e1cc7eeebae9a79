//! Report benchmark: a JUnit XML file of 100,000 test cases (about 50 MB, the shape of
//! Surefire's output with failures, messages and system-out) read by wasmbuild's JUnit
//! reader, side by side with Python's `xml.etree.ElementTree.iterparse` counting the
//! same test cases (a streaming reader most CI tools' report plugins resemble). Each
//! reader runs in a process of its own so its peak memory (VmHWM) is its own.
//!
//! `cargo bench --bench reports` (`REPORTS_BENCH_CASES` for another size,
//! `REPORTS_BENCH_RUNS` for more runs; the median is shown). Targets: under 1 s and
//! under 100 MB.

use std::fmt::Write as _;
use std::io::BufReader;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use wasmbuild::reports::{Gathered, read_file};

mod common;
use common::median;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn junit(cases: usize) -> String {
    let mut xml = String::with_capacity(cases * 520);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for suite in 0..cases.div_ceil(100) {
        let _ = writeln!(
            xml,
            "<testsuite name=\"com.example.suite{suite}.GeneratedTest\" tests=\"100\" failures=\"5\" time=\"1.5\">"
        );
        for case in 0..100.min(cases - suite * 100) {
            let _ = write!(
                xml,
                "  <testcase name=\"testCase{case}WithADescriptiveName\" classname=\"com.example.suite{suite}.GeneratedTest\" time=\"0.{case:03}\">"
            );
            if case % 20 == 7 {
                let _ = write!(
                    xml,
                    "<failure message=\"expected: &lt;{case}&gt; but was: &lt;{}&gt;\" type=\"org.opentest4j.AssertionFailedError\">org.opentest4j.AssertionFailedError: expected: &lt;{case}&gt;\n\tat com.example.suite{suite}.GeneratedTest.testCase{case}(GeneratedTest.java:{case})\n\tat java.base/java.lang.reflect.Method.invoke(Method.java:580)\n</failure>",
                    case + 1
                );
            }
            let _ = writeln!(
                xml,
                "<system-out><![CDATA[running case {case} of suite {suite}; a line of output that tests print while they run\nsetting up fixtures for case {case}: database, cache, temporary directory, clock\nteardown of case {case}: closing connections, removing the temporary directory and its files\nDEBUG com.example.suite{suite}.GeneratedTest - case {case} done]]></system-out></testcase>"
            );
        }
        xml.push_str("</testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// Peak resident memory of this process so far, in bytes (Linux).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

const PYTHON: &str = "
import resource, sys, time, xml.etree.ElementTree as ET
start = time.perf_counter()
n = 0
failed = 0
for event, elem in ET.iterparse(sys.argv[1], events=('end',)):
    if elem.tag == 'testcase':
        n += 1
        if elem.find('failure') is not None:
            failed += 1
        elem.clear()
took = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(n, failed, took, peak)
";

/// (cases, failed, seconds, peak bytes) of one reader run.
fn run_child(reader: &str, file: &Path) -> (u64, u64, f64, u64) {
    let output = if reader == "wasmbuild" {
        Command::new(std::env::current_exe().unwrap())
            .arg("--read")
            .arg(file)
            .output()
            .unwrap()
    } else {
        Command::new("python3")
            .args(["-c", PYTHON])
            .arg(file)
            .output()
            .unwrap()
    };
    assert!(output.status.success(), "{reader}: {output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    (
        fields[0].parse().unwrap(),
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
        fields[3].parse().unwrap(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--read") {
        let file = std::fs::File::open(&args[at + 1]).unwrap();
        let started = Instant::now();
        let mut gathered = Gathered::default();
        read_file("JUNITXML", "bench.xml", BufReader::new(file), &mut gathered).unwrap();
        let took = started.elapsed().as_secs_f64();
        let failed = gathered.counts.get("FAILED").copied().unwrap_or(0);
        println!("{} {failed} {took} {}", gathered.total(), peak_rss());
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let cases = env_number("REPORTS_BENCH_CASES", 100_000);
    let runs = env_number("REPORTS_BENCH_RUNS", 3);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("TEST-generated.xml");
    std::fs::write(&file, junit(cases)).unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    println!(
        "JUnit XML: {cases} test cases, {:.1} MB; {runs} run(s), median",
        size as f64 / 1e6
    );
    let mut rows = Vec::new();
    for reader in ["wasmbuild", "python-iterparse"] {
        let mut times = Vec::new();
        let mut peaks = Vec::new();
        for _ in 0..runs {
            let (n, failed, took, peak) = run_child(reader, &file);
            assert_eq!(n as usize, cases, "{reader} counted {n}");
            assert_eq!(failed as usize, cases / 20, "{reader} failures");
            times.push(took);
            peaks.push(peak as f64);
        }
        rows.push((reader, median(times), median(peaks)));
    }
    println!("{:<18} {:>10} {:>12}", "reader", "seconds", "peak MB");
    for (reader, took, peak) in &rows {
        println!("{reader:<18} {took:>10.3} {:>12.1}", peak / 1e6);
    }
    let (ours, theirs) = (&rows[0], &rows[1]);
    println!(
        "wasmbuild / python: time {:.2}x, memory {:.2}x; targets: {} (< 1 s), {} (< 100 MB)",
        ours.1 / theirs.1,
        ours.2 / theirs.2,
        if Duration::from_secs_f64(ours.1) < Duration::from_secs(1) {
            "met"
        } else {
            "MISSED"
        },
        if ours.2 < 100e6 { "met" } else { "MISSED" },
    );
}

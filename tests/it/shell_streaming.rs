//! Pipelines of `wasmbuild sh` stream: a producer of more bytes than the process's peak
//! memory passes through `| wc -c`, and the peak resident size stays far below the data.

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

const BYTES: u64 = 256 << 20;
const PEAK_LIMIT_KIB: u64 = 160 << 10;

/// Peak resident set size of a running process, from `/proc` (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn a_pipeline_larger_than_memory_streams_through_wc() {
    common::ensure_bundle("base");
    let src = tempfile::tempdir().expect("temp dir");
    let script = format!("yes 0123456789abcdef | head -c {BYTES} | wc -c");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmbuild"))
        .env("WASMBUILD_STORE", common::store_dir())
        .args(["sh", "--image", "base", "--src"])
        .arg(src.path())
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start wasmbuild sh");
    let pid = child.id();
    let mut peak = 0;
    while child.try_wait().expect("poll wasmbuild sh").is_none() {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    assert_eq!(stdout.trim(), BYTES.to_string());
    assert!(
        peak < PEAK_LIMIT_KIB,
        "peak RSS {peak} KiB for {BYTES} bytes through the pipeline"
    );
}

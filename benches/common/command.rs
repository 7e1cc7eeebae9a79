//! A timed run of a command, for the benchmarks that start programs.

use std::process::{Command, Stdio};
use std::time::Instant;

/// Runs `command` to its end and returns its wall time in ms and its standard output, or
/// the last line of its standard error when it fails.
pub fn run(command: &mut Command) -> Result<(f64, Vec<u8>), String> {
    let started = Instant::now();
    let out = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(stderr.lines().last().unwrap_or("failed").to_owned());
    }
    Ok((elapsed, out.stdout))
}

//! Web console benchmark (issue 20), two figures against their targets, side by side:
//!
//! 1. **History page of a project with 10,000 builds** (target < 100 ms): a store holding
//!    10,000 build records shaped as `wasmbuild run` writes them (ten phases, environment,
//!    artifacts; every tenth FAILED), served by the console in this process, fetched over
//!    loopback HTTP: the first page cold (no summary cached), warm, page 200, the JSON
//!    twin, and filtered by status (FAILED; the first filtered request reads every record).
//! 2. **Live log latency** (target < 200 ms): a real `wasmbuild run` whose guest prints a
//!    line every 300 ms; each line's arrival on the build's console (the moment the guest
//!    wrote it, give or take a pipe) against its arrival at an SSE client of the console.
//!
//! `cargo bench --bench serve` (the live part uses `WASMBUILD_STORE`, or the default store;
//! the base bundle is built there on first use).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rayon::prelude::*;

mod common;
use common::median;

const BUILDS: u64 = 10_000;

fn record(number: u64) -> serde_json::Value {
    let phases: Vec<serde_json::Value> = [
        "SUBMITTED",
        "PROVISIONING",
        "DOWNLOAD_SOURCE",
        "INSTALL",
        "PRE_BUILD",
        "BUILD",
        "POST_BUILD",
        "UPLOAD_ARTIFACTS",
        "FINALIZING",
    ]
    .iter()
    .enumerate()
    .map(|(i, phase)| {
        serde_json::json!({
            "phaseType": phase, "phaseStatus": "SUCCEEDED",
            "startTime": format!("2026-12-01T10:00:0{i}.000000Z"),
            "endTime": format!("2026-12-01T10:00:0{}.000000Z", i + 1),
            "durationInSeconds": 1,
        })
    })
    .collect();
    let status = if number.is_multiple_of(10) {
        "FAILED"
    } else {
        "SUCCEEDED"
    };
    serde_json::json!({
        "id": format!("bench:{number:08}-0000-4000-8000-000000000000"),
        "arn": format!("arn:aws:codebuild:local:000000000000:build/bench:{number}"),
        "buildNumber": number, "projectName": "bench", "initiator": "bench",
        "startTime": "2026-12-01T10:00:00.000000Z", "endTime": "2026-12-01T10:00:09.000000Z",
        "currentPhase": "COMPLETED", "buildStatus": status, "buildComplete": true,
        "timeoutInMinutes": 60, "resolvedSourceVersion": format!("{number:040x}"),
        "source": "/src/bench", "buildspec": "buildspec.yml",
        "environment": {"type": "WASI_CONTAINER", "image": "default", "runtimes": ["base 1"],
            "environmentVariables": [{"name": "A", "value": "1", "type": "PLAINTEXT"}]},
        "phases": phases, "exportedEnvironmentVariables": [],
        "logs": {"location": "/out/build.log"},
        "store": {"location": "/store", "record": format!("builds/bench/{number}"),
            "artifacts": [{"name": "primary", "value": format!("artifacts/bench/{number}/primary")}]},
    })
}

async fn timed(client: &reqwest::Client, url: &str) -> f64 {
    let started = Instant::now();
    let response = client.get(url).send().await.expect("GET");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    let body = response.bytes().await.expect("body");
    assert!(!body.is_empty());
    started.elapsed().as_secs_f64() * 1e3
}

fn row(what: &str, ms: f64, target: f64) {
    println!(
        "{what:<44} {ms:>9.2} ms   target {target:>5.0} ms   ratio {:.3}",
        ms / target
    );
}

fn history(runtime: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let store = wasmbuild::store::Store::open(dir.path()).unwrap();
    let started = Instant::now();
    (1..=BUILDS).into_par_iter().for_each(|n| {
        let digest = store.put_blob(record(n).to_string().as_bytes()).unwrap();
        store
            .set_ref(&format!("builds/bench/{n}"), &digest)
            .unwrap();
    });
    println!(
        "history: {BUILDS} records written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = wasmbuild::serve::router(store, None);
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let page = format!("{base}/projects/bench");
        row("history page 1, cold", timed(&client, &page).await, 100.0);
        let mut warm = Vec::new();
        for _ in 0..30 {
            warm.push(timed(&client, &page).await);
        }
        row("history page 1, warm (median of 30)", median(warm), 100.0);
        row(
            "history page 200 (oldest builds), cold",
            timed(&client, &format!("{page}?page=200")).await,
            100.0,
        );
        let mut api = Vec::new();
        for _ in 0..30 {
            api.push(timed(&client, &format!("{base}/api/projects/bench/builds")).await);
        }
        row("its JSON twin (median of 30)", median(api), 100.0);
        row(
            "status=FAILED, page 40 (scans all), cold",
            timed(&client, &format!("{page}?status=FAILED&page=40")).await,
            100.0,
        );
        let mut filtered = Vec::new();
        for _ in 0..30 {
            filtered.push(timed(&client, &format!("{page}?status=FAILED&page=40")).await);
        }
        row(
            "status=FAILED, page 40, warm (median)",
            median(filtered),
            100.0,
        );
        row(
            "projects page",
            timed(&client, &format!("{base}/")).await,
            100.0,
        );
    });
}

const LIVE_BUILDSPEC: &str = "version: 0.2
phases:
  build:
    commands:
      - for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo live-mark-$i; sleep 0.3; done
";

fn live(runtime: &tokio::runtime::Runtime) {
    let store = std::env::var_os("WASMBUILD_STORE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(wasmbuild::store::Store::default_root);
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("buildspec.yml"), LIVE_BUILDSPEC).unwrap();
    let out = tempfile::tempdir().unwrap();
    let project = format!("bench-live-{}", std::process::id());
    // Warm: the base bundle built and compiled once, outside the measurement.
    let warm = Command::new(env!("CARGO_BIN_EXE_wasmbuild"))
        .args(["exec", "--image", "base", "--", "true"])
        .env("WASMBUILD_STORE", &store)
        .status()
        .unwrap();
    assert!(warm.success());
    let opened = wasmbuild::store::Store::open(&store).unwrap();
    let console_seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let sse_seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = wasmbuild::serve::router(opened, None);
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasmbuild"))
            .args(["run", "--project", &project, "-a"])
            .arg(out.path())
            .arg(src.path())
            .env("WASMBUILD_STORE", &store)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let seen = console_seen.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("live-mark-") {
                    seen.lock().unwrap().insert(line, Instant::now());
                }
            }
        });
        let client = reqwest::Client::new();
        // The build's record appears at its start; then its live stream is followed.
        let url = format!("{base}/api/projects/{project}/builds/1/log/stream");
        let mut response = loop {
            let response = client.get(&url).send().await.unwrap();
            if response.status().is_success() {
                break response;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut pending = String::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            let now = Instant::now();
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                if event.contains("event: end") || event.contains("event:end") {
                    break;
                }
                for data in event.lines().filter_map(|l| l.strip_prefix("data:")) {
                    let text: String = serde_json::from_str(data.trim()).unwrap_or_default();
                    for line in text.lines().filter(|l| l.starts_with("live-mark-")) {
                        sse_seen
                            .lock()
                            .unwrap()
                            .entry(line.to_owned())
                            .or_insert(now);
                    }
                }
            }
            if sse_seen.lock().unwrap().len() == 20 {
                break;
            }
        }
        assert!(child.wait().unwrap().success());
        reader.join().unwrap();
    });
    let console = console_seen.lock().unwrap();
    let sse = sse_seen.lock().unwrap();
    let latencies: Vec<f64> = console
        .iter()
        .filter_map(|(line, at)| {
            let arrived = sse.get(line)?;
            Some(arrived.saturating_duration_since(*at).as_secs_f64() * 1e3)
        })
        .collect();
    assert_eq!(latencies.len(), 20, "every line reached both");
    let max = latencies.iter().copied().fold(0.0, f64::max);
    row(
        "live log: guest line → SSE client, median",
        median(latencies),
        200.0,
    );
    row("live log: guest line → SSE client, worst of 20", max, 200.0);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // reqwest takes the process's rustls provider (wasmbuild's own clients install it).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    history(&runtime);
    live(&runtime);
}

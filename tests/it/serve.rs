//! The web console, `wasmbuild serve`, on real builds: the JSON API and its safety (names,
//! paths, symlinks, escaping, tokens, a damaged record, a store that goes away), and the
//! pages in a real browser — Debian's chromium, driven through chromedriver (WebDriver).
//!
//! The browser test needs `chromium` and `chromium-driver` (Debian's packages; `.ci/run`
//! installs them). Where they are missing it fails if `WASMBUILD_REQUIRE_BROWSER` is set
//! (as `.ci/run` sets it) and otherwise says so and passes, so a bare `cargo test` on a
//! fresh clone needs nothing installed. Screenshots of the main pages are saved under
//! `target/screenshots/` (the README shows them).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{ensure_bundle, store_dir, wasmbuild};
use crate::store_common::{self, S3Server};

/// A `wasmbuild serve` on a loopback port, stopped when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(store: &Path, extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmbuild"));
        cmd.env("WASMBUILD_STORE", store);
        Server::start_with(cmd, extra)
    }

    /// `cmd` (a `wasmbuild` with its store's environment) serving.
    fn start_with(mut cmd: Command, extra: &[&str]) -> Server {
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("WASMBUILD_SERVE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start wasmbuild serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the serve banner");
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .to_owned();
        Server { child, base }
    }

    /// `GET path` over a plain socket, exactly as written (no client normalizes it):
    /// the status and the body.
    fn get_raw(&self, path: &str, headers: &[&str]) -> (u16, String) {
        let address = self.base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.get_raw(path, &[])
    }

    fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(chunked_body(&body).as_str())
            .unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A body sent with `Transfer-Encoding: chunked`, joined (or the body as it is).
fn chunked_body(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_owned();
        };
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if size == 0 {
            return out;
        }
        if after.len() < size {
            return body.to_owned();
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
}

/// The build every console test looks at: a failed command with `<script>` in it, a
/// JUnit report with `<script>` in a test name, an artifact set. Run once.
struct Fixture {
    project: String,
    number: u64,
    _src: tempfile::TempDir,
}

const BUILDSPEC: &str = r#"version: 0.2
env:
  variables:
    GREETING: hello
phases:
  build:
    commands:
      - echo building the console fixture
      - mkdir -p out/sub reports
      - echo first > out/a.txt
      - echo second > out/sub/b.txt
      - printf '<testsuite name="suite" tests="2" failures="1"><testcase classname="console" name="&lt;script&gt;alert(1)&lt;/script&gt;" time="0.5"><failure message="boom &lt;b&gt;bold&lt;/b&gt;">trace</failure></testcase><testcase classname="console" name="passes" time="0.25"/></testsuite>' > reports/junit.xml
      - echo '<script>alert(2)</script>' && false
reports:
  unit:
    files:
      - reports/junit.xml
artifacts:
  files:
    - 'out/**/*'
"#;

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        ensure_bundle("base");
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("buildspec.yml"), BUILDSPEC).unwrap();
        let project = "console-fixture".to_owned();
        let out = tempfile::tempdir().unwrap();
        let run = wasmbuild()
            .args(["run", "--project", &project, "-a"])
            .arg(out.path())
            .arg(src.path())
            .timeout(Duration::from_secs(600))
            .output()
            .unwrap();
        assert_eq!(
            run.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let record: Value =
            serde_json::from_slice(&std::fs::read(out.path().join("build.json")).unwrap()).unwrap();
        Fixture {
            project,
            number: record["buildNumber"].as_u64().unwrap(),
            _src: src,
        }
    })
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn api_mirrors_the_pages_and_escapes_what_builds_wrote() {
    let f = fixture();
    let server = Server::start(&store_dir(), &[]);
    let history = server.json(&format!("/api/projects/{}/builds", f.project));
    let builds = history["builds"].as_array().unwrap();
    assert_eq!(
        builds[0]["buildNumber"], f.number,
        "newest first: {history}"
    );
    assert_eq!(builds[0]["buildStatus"], "FAILED");

    let build = server.json(&format!("/api/projects/{}/builds/{}", f.project, f.number));
    let phases: Vec<(&str, &str)> = build["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["phase"].as_str().unwrap(), p["status"].as_str().unwrap()))
        .collect();
    assert!(phases.contains(&("BUILD", "FAILED")), "{phases:?}");
    assert!(
        phases.contains(&("UPLOAD_ARTIFACTS", "SUCCEEDED")),
        "{phases:?}"
    );
    let files: Vec<&str> = build["artifacts"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["out/a.txt", "out/sub/b.txt"]);
    assert_eq!(build["reports"][0]["result"], "1/2 passed");

    // The log kept whole in the store, its failed command marked.
    let log = server.json(&format!(
        "/api/projects/{}/builds/{}/log",
        f.project, f.number
    ));
    assert_eq!(log["complete"], true);
    let lines = log["lines"].as_array().unwrap();
    assert!(lines.iter().any(|l| {
        l["class"] == "failed"
            && l["text"]
                .as_str()
                .unwrap()
                .contains("Command did not exit successfully")
    }));
    assert!(
        lines
            .iter()
            .any(|l| l["text"] == "<script>alert(2)</script>")
    );

    // The page has the same text, escaped: no markup from the build reaches it.
    let (status, page) = server.get(&format!("/projects/{}/builds/{}", f.project, f.number));
    assert_eq!(status, 200);
    // (minijinja escapes `/` too.)
    assert!(
        page.contains("&lt;script&gt;alert(2)&lt;&#x2f;script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains(r#"class="timeline""#));
    assert!(page.contains(r#"data-phase="BUILD" data-status="FAILED""#));
    let (_, report) = server.get(&format!("/reports/console-fixture-unit/{}", f.number));
    assert!(
        report.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{report}"
    );
    assert!(!report.contains("<script>alert"));
    assert!(!report.contains("<b>bold"));
    // Failed first.
    let api = server.json(&format!("/api/reports/console-fixture-unit/{}", f.number));
    assert_eq!(api["report"]["testCases"][0]["status"], "FAILED");
    assert_eq!(api["report"]["testCases"][1]["name"], "passes");

    // A file of the set, as a download, and the set as a zip holding both files.
    let (status, body) = server.get(&format!(
        "/projects/{}/builds/{}/files/primary/out/sub/b.txt",
        f.project, f.number
    ));
    assert_eq!((status, body.as_str()), (200, "second\n"));
    let (status, zip) = server.get(&format!(
        "/projects/{}/builds/{}/zip/primary",
        f.project, f.number
    ));
    assert_eq!(status, 200);
    assert!(zip.starts_with("PK"), "a zip");
}

/// A real batch (the four-build graph fixture): its page draws the graph, each build
/// coloured by status and linked to its page, dependencies as arrows.
#[test]
fn a_batch_is_drawn_as_its_graph() {
    ensure_bundle("base");
    let out = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/batch-graph");
    let run = wasmbuild()
        .args(["run", "--project", "console-batch", "-a"])
        .arg(out.path())
        .arg(&fixture)
        .timeout(Duration::from_secs(600))
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let record: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("build-batch.json")).unwrap())
            .unwrap();
    let number = record["buildBatchNumber"].as_u64().unwrap();
    let server = Server::start(&store_dir(), &[]);
    let batch = server.json(&format!("/api/projects/console-batch/batches/{number}"));
    assert_eq!(batch["status"], "SUCCEEDED");
    let nodes = batch["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    let package = nodes.iter().find(|n| n["identifier"] == "package").unwrap();
    assert_eq!(package["dependsOn"], serde_json::json!(["test", "lint"]));
    let (status, page) = server.get(&format!("/projects/console-batch/batches/{number}"));
    assert_eq!(status, 200);
    assert_eq!(
        page.matches(r#"class="node" data-status="SUCCEEDED""#)
            .count(),
        4,
        "{page}"
    );
    assert_eq!(page.matches("marker-end").count(), 3, "{page}");
    // Each node links to its build's page, which exists.
    let build = package["buildNumber"].as_u64().unwrap();
    assert!(page.contains(&format!("/projects/console-batch/builds/{build}")));
    assert_eq!(
        server
            .get(&format!("/projects/console-batch/builds/{build}"))
            .0,
        200
    );
    // The history lists the batch.
    let history = server.json("/api/projects/console-batch/builds");
    assert!(
        history["batches"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(number))
    );
}

/// Over S3 (a real S3 implementation on loopback): the console lists the projects (S3's
/// common prefixes) and shows a build's kept log.
#[test]
fn over_s3_the_console_shows_builds_and_logs() {
    let s3 = S3Server::start();
    let local = tempfile::tempdir().unwrap();
    let command = || {
        let mut cmd = store_common::wasmbuild();
        s3.env(&mut cmd, local.path());
        cmd.env("WASMBUILD_STORE", s3.spec("console"));
        cmd
    };
    ensure_bundle("base");
    let mut push = command();
    s3.env(&mut push, &store_dir());
    let pushed = push.args(["runtime", "push", "base"]).output().unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hello from s3\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let built = command()
        .args(["run", "--project", "on-s3", "-a"])
        .arg(out.path())
        .arg(src.path())
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let server = Server::start_with(command(), &[]);
    let projects = server.json("/api/projects");
    assert_eq!(projects["projects"][0]["project"], "on-s3", "{projects}");
    assert_eq!(
        projects["projects"][0]["latest"]["buildStatus"],
        "SUCCEEDED"
    );
    let log = server.json("/api/projects/on-s3/builds/1/log");
    assert_eq!(log["complete"], true);
    assert!(
        log["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["text"] == "hello from s3"),
        "{log}"
    );
    // The live stream was dropped once the log was kept.
    assert!(
        !s3.object_path("console", "streams/logs/on-s3/1/0000000000")
            .exists()
    );
}

#[test]
fn names_and_paths_from_urls_never_leave_the_store() {
    let f = fixture();
    let server = Server::start(&store_dir(), &[]);
    for path in [
        "/projects/..%2F..%2Fetc/builds/1".to_owned(),
        "/projects/../builds/1".to_owned(),
        "/projects/%2e%2e/builds/1".to_owned(),
        "/api/projects/..%2Frefs/builds".to_owned(),
        "/reports/..%2F..%2Fbuilds/1".to_owned(),
        format!(
            "/projects/{}/builds/{}/files/primary/../../../etc/passwd",
            f.project, f.number
        ),
        format!(
            "/projects/{}/builds/{}/files/primary/out/..%2F..%2Fetc%2Fpasswd",
            f.project, f.number
        ),
        format!(
            "/projects/{}/builds/{}/files/primary/%2Fetc%2Fpasswd",
            f.project, f.number
        ),
        "/static/../../Cargo.toml".to_owned(),
    ] {
        let (status, body) = server.get(&path);
        assert!([400, 404].contains(&status), "{path}: {status} {body}");
        assert!(!body.contains("root:"), "{path}: {body}");
    }
    let (status, body) = server.get("/projects/no-such-project");
    assert_eq!(status, 404);
    assert!(body.contains("no project no-such-project"), "{body}");
    let (status, _) = server.get(&format!("/projects/{}/builds/999999", f.project));
    assert_eq!(status, 404);
}

/// A store made by hand: a record that is not JSON, an artifact set with a symlink out
/// of it, and then the store's directory taken away and given back.
#[test]
fn damaged_records_symlinks_and_a_store_that_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = wasmbuild::store::Store::open(&root).unwrap();
    let good = serde_json::json!({
        "buildNumber": 1, "buildStatus": "SUCCEEDED", "buildComplete": true,
        "currentPhase": "COMPLETED", "initiator": "tester",
        "startTime": "2026-12-01T10:00:00.000000Z", "endTime": "2026-12-01T10:00:02.500000Z",
        "phases": [], "environment": {"environmentVariables": [
            {"name": "TOKEN", "value": "/prod/token", "type": "PARAMETER_STORE"}]},
        "store": {"artifacts": [{"name": "set", "value": "artifacts/p/1/set"}]}
    });
    let digest = store.put_blob(good.to_string().as_bytes()).unwrap();
    store.set_ref("builds/p/1", &digest).unwrap();
    let damaged = store.put_blob(b"{ not json").unwrap();
    store.set_ref("builds/p/2", &damaged).unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("inside.txt"), "inside\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", files.join("escape")).unwrap();
    let (tree, _) = store
        .save_tree(&files, &wasmbuild::store::Selection::all())
        .unwrap();
    store.set_ref("artifacts/p/1/set", &tree).unwrap();

    let server = Server::start(&root, &[]);
    let history = server.json("/api/projects/p/builds");
    assert_eq!(history["builds"][0]["buildStatus"], "DAMAGED");
    assert!(
        history["builds"][0]["damaged"]
            .as_str()
            .unwrap()
            .contains("not a build record")
    );
    assert_eq!(history["builds"][1]["durationSeconds"], 2.5);
    let (status, page) = server.get("/projects/p/builds/2");
    assert_eq!(status, 500);
    assert!(page.contains("not a build record"), "{page}");
    let build = server.json("/api/projects/p/builds/1");
    assert_eq!(build["environment"][0]["secret"], true);
    let (status, body) = server.get("/projects/p/builds/1/files/set/escape");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("not followed") && !body.contains("root:"),
        "{body}"
    );
    let (status, body) = server.get("/projects/p/builds/1/files/set/inside.txt");
    assert_eq!((status, body.as_str()), (200, "inside\n"));

    // The store goes away: errors, the server stays up; back: it answers again.
    let moved = dir.path().join("moved");
    std::fs::rename(&root, &moved).unwrap();
    let (status, body) = server.get("/api/projects/p/builds");
    assert_eq!(status, 503, "{body}");
    std::fs::rename(&moved, &root).unwrap();
    assert_eq!(server.json("/api/projects")["projects"][0]["builds"], 2);
}

/// A build whose process was killed stays IN_PROGRESS in the store; its live log ends
/// once the build's timeout has passed instead of being followed for ever.
#[test]
fn a_live_log_of_a_build_long_gone_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store = wasmbuild::store::Store::open(dir.path()).unwrap();
    let record = serde_json::json!({
        "buildNumber": 1, "buildStatus": "IN_PROGRESS", "buildComplete": false,
        "currentPhase": "BUILD", "startTime": "2026-01-01T00:00:00.000000Z",
        "timeoutInMinutes": 5, "phases": [], "store": {}
    });
    let digest = store.put_blob(record.to_string().as_bytes()).unwrap();
    store.set_ref("builds/killed/1", &digest).unwrap();
    store
        .put_stream_chunk("logs/killed/1", 0, b"last words\n")
        .unwrap();
    let server = Server::start(dir.path(), &[]);
    let (status, body) = server.get("/api/projects/killed/builds/1/log/stream");
    assert_eq!(status, 200);
    assert!(body.contains("last words"), "{body}");
    assert!(
        body.contains("event: failure") && body.contains("has not ended by its timeout"),
        "{body}"
    );
}

#[test]
fn a_token_guards_everything_and_off_loopback_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--token", "s3cret-token"]);
    let (status, _) = server.get("/api/projects");
    assert_eq!(status, 401);
    let (status, _) = server.get_raw("/api/projects", &["Authorization: Bearer wrong"]);
    assert_eq!(status, 401);
    let (status, body) = server.get_raw("/api/projects", &["Authorization: Bearer s3cret-token"]);
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.get_raw("/", &["Cookie: wasmbuild_token=s3cret-token"]);
    assert_eq!(status, 200);

    let out = wasmbuild()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env("WASMBUILD_STORE", dir.path())
        .env_remove("WASMBUILD_SERVE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --token"));
}

// ----- the browser -----------------------------------------------------------------------

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// chromium and chromedriver, or why not.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let chromium = find_program(&["/usr/bin/chromium", "/usr/bin/chromium-browser"])
        .ok_or("chromium is not installed (Debian: apt-get install chromium)")?;
    let driver = find_program(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])
        .ok_or("chromedriver is not installed (Debian: apt-get install chromium-driver)")?;
    Ok((chromium, driver))
}

fn start_driver(driver: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

const LIVE_BUILDSPEC: &str = r#"version: 0.2
phases:
  build:
    commands:
      - echo live-first-line
      - sleep 6
      - echo live-second-line
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_in_a_real_browser() {
    let (chromium, driver) = match browser() {
        Ok(found) => found,
        Err(why) if std::env::var_os("WASMBUILD_REQUIRE_BROWSER").is_some() => {
            panic!("{why}; WASMBUILD_REQUIRE_BROWSER is set, so this test must run")
        }
        Err(why) => {
            eprintln!("SKIPPED pages_in_a_real_browser: {why} (.ci/run installs it)");
            return;
        }
    };
    let f = tokio::task::spawn_blocking(fixture).await.unwrap();
    let server = Server::start(&store_dir(), &[]);
    let driver = start_driver(&driver);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = fantoccini::ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session");
    use fantoccini::Locator;
    let shots = screenshots();

    // The history lists the fixture's build, newest first.
    client
        .goto(&format!("{}/projects/{}", server.base, f.project))
        .await
        .unwrap();
    let rows = client.find_all(Locator::Css("tr.build")).await.unwrap();
    assert!(!rows.is_empty());
    let first = rows[0].text().await.unwrap();
    assert!(
        first.contains(&format!("#{}", f.number)) && first.contains("FAILED"),
        "{first}"
    );
    std::fs::write(
        shots.join("history.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    // The build: the timeline with BUILD failed, the failed command marked in the log, the
    // build's `<script>` shown as text and never run.
    client
        .goto(&format!(
            "{}/projects/{}/builds/{}",
            server.base, f.project, f.number
        ))
        .await
        .unwrap();
    client
        .find(Locator::Css(
            r#"svg.timeline g.phase[data-phase="BUILD"][data-status="FAILED"]"#,
        ))
        .await
        .expect("the timeline shows BUILD failed");
    let failed = client
        .find_all(Locator::Css("#log span.failed"))
        .await
        .unwrap();
    let mut failed_text = String::new();
    for line in failed {
        failed_text.push_str(&line.text().await.unwrap());
    }
    assert!(
        failed_text.contains(
            "Command did not exit successfully echo '<script>alert(2)</script>' && false"
        ),
        "{failed_text}"
    );
    let scripts = client
        .execute("return document.scripts.length", vec![])
        .await
        .unwrap();
    assert_eq!(
        scripts,
        serde_json::json!(0),
        "no script on a finished build's page"
    );
    assert!(client.get_alert_text().await.is_err(), "no alert ran");
    std::fs::write(shots.join("build.png"), client.screenshot().await.unwrap()).unwrap();

    // The report: failed first, the test named `<script>` as text.
    client
        .goto(&format!(
            "{}/reports/console-fixture-unit/{}",
            server.base, f.number
        ))
        .await
        .unwrap();
    let cases = client.find_all(Locator::Css("tr.case")).await.unwrap();
    assert_eq!(cases.len(), 2);
    let first = cases[0].text().await.unwrap();
    assert!(
        first.contains("FAILED") && first.contains("<script>alert(1)</script>"),
        "{first}"
    );
    client
        .find(Locator::Css("svg.trend circle"))
        .await
        .expect("the trend chart");
    std::fs::write(shots.join("report.png"), client.screenshot().await.unwrap()).unwrap();

    // At 360 px wide the history still shows its table (scrolling inside it, not the page).
    client.set_window_size(360, 800).await.unwrap();
    client
        .goto(&format!("{}/projects/{}", server.base, f.project))
        .await
        .unwrap();
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(overflow, serde_json::json!(true), "the page fits 360 px");
    std::fs::write(
        shots.join("history-360.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client.set_window_size(1280, 1000).await.unwrap();

    // A live build: its first line reaches the page while the build still runs.
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("buildspec.yml"), LIVE_BUILDSPEC).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut build = Command::new(env!("CARGO_BIN_EXE_wasmbuild"))
        .args(["run", "--project", "console-live", "-a"])
        .arg(out.path())
        .arg(src.path())
        .env("WASMBUILD_STORE", store_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let number = {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, body) = server.get("/api/projects/console-live/builds?status=IN_PROGRESS");
            if status == 200 {
                let history: Value = serde_json::from_str(&chunked_body(&body)).unwrap();
                if let Some(n) = history["builds"][0]["buildNumber"].as_u64() {
                    break n;
                }
            }
            assert!(Instant::now() < deadline, "the live build never showed");
            assert!(
                build.try_wait().unwrap().is_none(),
                "the build ended before it showed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    client
        .goto(&format!(
            "{}/projects/console-live/builds/{number}",
            server.base
        ))
        .await
        .unwrap();
    let log = client.find(Locator::Id("log")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = log.text().await.unwrap();
        if text.contains("live-first-line") {
            assert!(!text.contains("live-second-line"), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the live log never showed: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        build.try_wait().unwrap().is_none(),
        "the line must arrive while the build runs"
    );
    client
        .execute("document.getElementById('log').scrollIntoView()", vec![])
        .await
        .unwrap();
    std::fs::write(shots.join("live.png"), client.screenshot().await.unwrap()).unwrap();
    // Then the rest, and the end (the page reloads as a finished build).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = client
            .find(Locator::Css("#build-status"))
            .await
            .ok()
            .map(|e| async move { e.text().await.unwrap_or_default() });
        let status = match done {
            Some(text) => text.await,
            None => String::new(),
        };
        if status == "SUCCEEDED" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the live build never ended: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = client
        .find(Locator::Id("log"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("live-second-line"), "{text}");
    assert!(build.wait().unwrap().success());
    client.close().await.unwrap();
}

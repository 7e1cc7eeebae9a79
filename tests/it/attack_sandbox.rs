//! Attacks on the sandbox (issue 13): a hostile guest tries to reach the host through the
//! working directory, links, traversal and absolute paths, to see /proc, /dev or the host's
//! environment, to open sockets, to exhaust memory, to outlive its deadline, and to have a
//! tampered bundle file run. Each case asserts containment (the host file outside is unread
//! and untouched), the exit status and the message.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{ensure_bundle, wasmbuild};

/// A source directory and, next to it, a host directory the guest must never reach, with a
/// secret in it.
struct Host {
    _root: tempfile::TempDir,
    src: PathBuf,
    outside: PathBuf,
}

const SECRET: &str = "host-secret-7f3a";

impl Host {
    fn new() -> Host {
        let root = tempfile::tempdir().unwrap();
        let src = root.path().join("src");
        let outside = root.path().join("outside");
        fs::create_dir(&src).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret.txt"), SECRET).unwrap();
        Host {
            _root: root,
            src,
            outside,
        }
    }

    /// Asserts the outside directory holds exactly the secret, unchanged.
    fn assert_outside_untouched(&self) {
        let mut names: Vec<String> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["secret.txt"], "the guest wrote outside its mounts");
        assert_eq!(
            fs::read_to_string(self.outside.join("secret.txt")).unwrap(),
            SECRET
        );
    }

    /// The relative link from `src/<depth levels>` to the outside directory.
    fn climb_to_outside(levels: usize) -> String {
        format!("{}outside", "../".repeat(levels))
    }
}

/// `wasmbuild sh --image IMAGE --src SRC -c SCRIPT`.
fn sh(image: &str, src: &Path, script: &str) -> std::process::Output {
    common::sandbox_sh(image, src, &[], script)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A python program that does not run `site` (so it never calls `os.chdir`): its relative
/// paths go through the `.` preopen itself. It reads `secret.txt` and tries to create
/// `pwned` in its working directory, and reports both.
const PYTHON_USES_DOT: &str = "python -S -c \"\
import os
try:
    print('READ', open('secret.txt').read())
except OSError as e:
    print('read refused')
try:
    open('pwned', 'w').write('x')
    print('WROTE')
except OSError as e:
    print('write refused')
\"";

/// Runs `setup` (shell lines that end in the working directory under attack), then the
/// python program above, and checks that the host outside was neither read nor written.
fn assert_cwd_attack_contained(host: &Host, setup: &str) -> String {
    let script = format!("{setup}\n{PYTHON_USES_DOT}\necho done");
    let out = sh("python", &host.src, &script);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !stdout.contains(SECRET) && !stdout.contains("WROTE"),
        "the guest reached the host through its working directory:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("read refused"), "{stdout}\n{stderr}");
    assert!(stdout.contains("write refused"), "{stdout}\n{stderr}");
    assert!(stdout.ends_with("done\n"), "{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    host.assert_outside_untouched();
    stderr
}

// Item 1: `cd d`, then a guest swaps d for a relative link climbing out to a host directory.
#[test]
fn attack_cwd_swapped_for_relative_link_after_cd() {
    let host = Host::new();
    let setup = format!(
        "mkdir d\ncd d\nrm -r $CODEBUILD_SRC_DIR/d\nln -s {} $CODEBUILD_SRC_DIR/d",
        Host::climb_to_outside(1)
    );
    let stderr = assert_cwd_attack_contained(&host, &setup);
    assert!(
        stderr.contains("working directory /codebuild/output/src/d cannot be entered"),
        "{stderr}"
    );
}

// Item 1: the swapped-in link climbs far above the host's root (`../../../../..`).
#[test]
fn attack_cwd_swapped_for_link_to_host_root() {
    let host = Host::new();
    let out = sh(
        "python",
        &host.src,
        "mkdir d\ncd d\nrm -r $CODEBUILD_SRC_DIR/d\nln -s ../../../../../../../../../.. $CODEBUILD_SRC_DIR/d\n\
         python -S -c \"\
import os
for p in ('etc/passwd', 'proc/self/environ'):
    try:
        print('READ', open(p).read()[:40])
    except OSError:
        print('refused')
try:
    print(sorted(os.listdir('.')))
except OSError:
    print('listing refused')
\"",
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout,
        "refused\nrefused\nlisting refused\n",
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("cannot be entered"));
}

// Item 1: the swapped-in link is absolute (a host path).
#[test]
fn attack_cwd_swapped_for_absolute_link() {
    let host = Host::new();
    let setup = format!(
        "mkdir d\ncd d\nrm -r $CODEBUILD_SRC_DIR/d\nln -s {} $CODEBUILD_SRC_DIR/d",
        host.outside.display()
    );
    assert_cwd_attack_contained(&host, &setup);
}

// Item 1: a chain of links, each inside the workspace but the last, leads out.
#[test]
fn attack_cwd_swapped_for_link_chain() {
    let host = Host::new();
    let setup = format!(
        "mkdir -p d x/y\ncd d\nrm -r $CODEBUILD_SRC_DIR/d\n\
         ln -s x/y/hop2 $CODEBUILD_SRC_DIR/d\n\
         ln -s ../../hop3 $CODEBUILD_SRC_DIR/x/y/hop2\n\
         ln -s {} $CODEBUILD_SRC_DIR/hop3",
        Host::climb_to_outside(1)
    );
    assert_cwd_attack_contained(&host, &setup);
}

// Item 1: a directory higher up the working directory's path is the one swapped.
#[test]
fn attack_cwd_parent_swapped_for_link() {
    let host = Host::new();
    // The outside directory gets the same shape so that `a/b` exists there.
    fs::create_dir_all(host.outside.join("b")).unwrap();
    fs::write(host.outside.join("b/secret.txt"), SECRET).unwrap();
    let setup = format!(
        "mkdir -p a/b\ncd a/b\nrm -r $CODEBUILD_SRC_DIR/a\nln -s {} $CODEBUILD_SRC_DIR/a",
        Host::climb_to_outside(1)
    );
    let script = format!("{setup}\n{PYTHON_USES_DOT}\necho done");
    let out = sh("python", &host.src, &script);
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains(SECRET) && !stdout.contains("WROTE"),
        "{stdout}"
    );
    assert!(stdout.ends_with("done\n"), "{stdout}");
    assert!(!host.outside.join("b/pwned").exists());
    assert_eq!(
        fs::read_to_string(host.outside.join("b/secret.txt")).unwrap(),
        SECRET
    );
}

// Item 1: `cd` into a link that leads out (made by the guest), then run programs there.
#[test]
fn attack_cd_into_escaping_link_then_run_program() {
    let host = Host::new();
    let setup = format!(
        "ln -s {} l\ncd l\ncat secret.txt\nls\ntouch pwned",
        Host::climb_to_outside(1)
    );
    let script = format!("{setup}\n{PYTHON_USES_DOT}\necho done");
    let out = sh("python", &host.src, &script);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!stdout.contains(SECRET), "{stdout}\n{stderr}");
    assert!(stdout.contains("read refused"), "{stdout}\n{stderr}");
    assert!(stdout.ends_with("done\n"), "{stdout}\n{stderr}");
    host.assert_outside_untouched();
}

// Item 1: a link that stays inside the workspace still works as a working directory.
#[test]
fn attack_cwd_through_inner_link_still_works() {
    let host = Host::new();
    fs::create_dir(host.src.join("real")).unwrap();
    fs::write(host.src.join("real/inner.txt"), "inner").unwrap();
    std::os::unix::fs::symlink("real", host.src.join("alias")).unwrap();
    let out = sh(
        "python",
        &host.src,
        "cd alias\npython -S -c \"print(open('inner.txt').read()); open('made', 'w').write('m')\"\ncat inner.txt",
    );
    assert_eq!(text(&out.stdout), "inner\ninner", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(fs::read_to_string(host.src.join("real/made")).unwrap(), "m");
}

/// `wasmbuild exec --workdir WORKDIR --src SRC -- python -S -c CODE` reading secret.txt.
fn exec_workdir(src: &Path, workdir: &str) -> std::process::Output {
    ensure_bundle("base");
    ensure_bundle("python");
    wasmbuild()
        .args(["exec", "--image", "python", "--workdir", workdir, "--src"])
        .arg(src)
        .args([
            "--",
            "python",
            "-S",
            "-c",
            "print(open('secret.txt').read()); open('pwned', 'w').write('x')",
        ])
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run wasmbuild exec")
}

// Item 1: `exec --workdir` through a relative link in the source that leads out.
#[test]
fn attack_exec_workdir_through_relative_link() {
    let host = Host::new();
    std::os::unix::fs::symlink(Host::climb_to_outside(1), host.src.join("l")).unwrap();
    let out = exec_workdir(&host.src, "l");
    assert!(!text(&out.stdout).contains(SECRET));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("--workdir l: /codebuild/output/src/l is not a directory the guest can see"),
        "{}",
        text(&out.stderr)
    );
    host.assert_outside_untouched();
}

// Item 1: `exec --workdir` through an absolute link, and through a link below a directory.
#[test]
fn attack_exec_workdir_through_absolute_link() {
    let host = Host::new();
    fs::create_dir(host.src.join("sub")).unwrap();
    std::os::unix::fs::symlink(&host.outside, host.src.join("sub/l")).unwrap();
    for workdir in ["sub/l", "/codebuild/output/src/sub/l"] {
        let out = exec_workdir(&host.src, workdir);
        assert!(!text(&out.stdout).contains(SECRET));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("is not a directory the guest can see"),
            "{}",
            text(&out.stderr)
        );
    }
    host.assert_outside_untouched();
}

/// `wasmbuild exec --image IMAGE --timeout SECS [extra...] --src SRC -- ARGV`, timed.
fn exec_timed(
    image: &str,
    src: &Path,
    extra: &[&str],
    argv: &[&str],
) -> (std::process::Output, Duration) {
    ensure_bundle("base");
    if image != "base" {
        ensure_bundle(image);
    }
    let started = Instant::now();
    let out = wasmbuild()
        .args(["exec", "--image", image])
        .args(extra)
        .arg("--src")
        .arg(src)
        .arg("--")
        .args(argv)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run wasmbuild exec");
    (out, started.elapsed())
}

// Item 6: a guest asleep in a host call (`sleep 300`) stops at its deadline.
#[test]
fn attack_deadline_stops_sleep() {
    let host = Host::new();
    let (out, took) = exec_timed("base", &host.src, &["--timeout", "0.5"], &["sleep", "300"]);
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("sleep: stopped: deadline exceeded"),
        "{}",
        text(&out.stderr)
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

// Item 6: python's sleep (an absolute monotonic timeout) stops at the deadline too.
#[test]
fn attack_deadline_stops_python_sleep() {
    let host = Host::new();
    let (out, took) = exec_timed(
        "python",
        &host.src,
        &["--timeout", "1"],
        &[
            "python",
            "-c",
            "import time; time.sleep(300); print('slept')",
        ],
    );
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("slept"));
    assert!(
        text(&out.stderr).contains("stopped: deadline exceeded"),
        "{}",
        text(&out.stderr)
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

// Item 6: the deterministic (virtual clock) mode sleeps as asked and stops at the deadline.
#[test]
fn attack_deadline_stops_sleep_with_virtual_clocks() {
    let host = Host::new();
    let (out, took) = exec_timed(
        "python",
        &host.src,
        &["--deterministic", "--timeout", "10"],
        &[
            "python",
            "-c",
            "import time; time.sleep(0.3); print('slept')",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "slept\n");
    assert!(
        took >= Duration::from_millis(300),
        "returned early: {took:?}"
    );
    let (out, took) = exec_timed(
        "base",
        &host.src,
        &["--deterministic", "--timeout", "0.5"],
        &["sleep", "300"],
    );
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

// Item 6: a short sleep still lasts as long as asked (the slices add up).
#[test]
fn attack_sleep_is_not_cut_short() {
    let host = Host::new();
    let (out, took) = exec_timed("base", &host.src, &["--timeout", "30"], &["sleep", "0.4"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        took >= Duration::from_millis(400),
        "returned early: {took:?}"
    );
}

// Item 6: a guest blocked reading a stdin that never ends stops at its deadline.
#[test]
fn attack_deadline_stops_blocked_stdin_read() {
    ensure_bundle("base");
    let host = Host::new();
    let started = Instant::now();
    let mut child = std::process::Command::new(
        std::env::var_os("CARGO_BIN_EXE_wasmbuild")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_wasmbuild"))),
    )
    .env("WASMBUILD_STORE", common::store_dir())
    .args(["exec", "--timeout", "0.5", "--src"])
    .arg(&host.src)
    .args(["--", "cat"])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Holds the write end open and silent: the read can only end by the deadline.
    let stdin = child.stdin.take();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("cat blocked on stdin outlived its deadline");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(124), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cat: stopped: deadline exceeded"),
        "{}",
        text(&out.stderr)
    );
}

// Item 6: a guest spinning in WebAssembly stops at its deadline.
#[test]
fn attack_deadline_stops_cpu_loop() {
    let host = Host::new();
    common::write_wat(
        &host.src,
        "spin.wasm",
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#,
    );
    let (out, took) = exec_timed("base", &host.src, &["--timeout", "0.5"], &["./spin.wasm"]);
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("./spin.wasm: stopped: deadline exceeded"));
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

/// `wasmbuild run SRC -a OUT ARGS` on a buildspec, timed.
fn run_build(buildspec: &str, args: &[&str]) -> (common::Run, Duration) {
    ensure_bundle("base");
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("buildspec.yml"), buildspec).unwrap();
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = wasmbuild()
        .env("WASMBUILD_ATTACK_CANARY", SECRET)
        .arg("run")
        .arg(src.path())
        .arg("-a")
        .arg(out.path())
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run wasmbuild");
    (common::Run { output, out }, started.elapsed())
}

// Item 6: a build whose command sleeps past `--timeout` ends TIMED_OUT, quickly, recorded.
#[test]
fn attack_build_timeout_stops_sleep() {
    let (run, took) = run_build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300\n      - echo after-sleep\n",
        // 0.05 minutes: 3 seconds.
        &["--timeout", "0.05"],
    );
    assert_eq!(run.status(), 4, "{}\n{}", run.stdout(), run.stderr());
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(run.record()["buildStatus"], "TIMED_OUT", "{}", run.record());
    assert!(!run.log().contains("\nafter-sleep"), "{}", run.log());
}

// Item 6: Ctrl-C (cancel) stops a build asleep in a guest; the build ends STOPPED.
#[test]
fn attack_cancel_stops_sleep() {
    ensure_bundle("base");
    let src = tempfile::tempdir().unwrap();
    fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo sleeping\n      - sleep 300\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(
        std::env::var_os("CARGO_BIN_EXE_wasmbuild")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_wasmbuild"))),
    )
    .env("WASMBUILD_STORE", common::store_dir())
    .arg("run")
    .arg(src.path())
    .arg("-a")
    .arg(out.path())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    // Waits until the build is in its sleep, then interrupts it once.
    let started = Instant::now();
    while !fs::read_to_string(out.path().join("build.log"))
        .unwrap_or_default()
        .contains("Running command sleep 300")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the build never slept"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let interrupted = Instant::now();
    // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if interrupted.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the sleeping guest ignored the cancel");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(5));
    let record: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.path().join("build.json")).unwrap()).unwrap();
    assert_eq!(record["buildStatus"], "STOPPED", "{record}");
}

// Item 6: Ctrl-C during `exec` and `sh` stops the blocked or looping guest or shell
// (status 130) and removes the scratch directories instead of leaving them behind.
#[test]
fn attack_ctrl_c_stops_exec_and_sh_and_leaves_no_scratch() {
    /// Kills the child if the test fails before it ends.
    struct Reaped(Option<std::process::Child>);
    impl Drop for Reaped {
        fn drop(&mut self) {
            if let Some(child) = &mut self.0 {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    ensure_bundle("base");
    ensure_bundle("python");
    for args in [
        &["exec", "--", "sleep", "300"][..],
        // Computing, with no deadline: nothing but the signal moves the epoch.
        &[
            "exec",
            "--image",
            "python",
            "--",
            "python",
            "-c",
            "while True: pass",
        ][..],
        &["sh", "-c", "sleep 300; echo never"][..],
        &["sh", "-c", "while :; do :; done; echo never"][..],
    ] {
        let scratch = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        let mut child = Reaped(Some(
            std::process::Command::new(env!("CARGO_BIN_EXE_wasmbuild"))
                .env("WASMBUILD_STORE", common::store_dir())
                .env("TMPDIR", scratch.path())
                .current_dir(src.path())
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        ));
        // Waits until the guest's scratch directories exist, then lets it run a little.
        let started = Instant::now();
        while fs::read_dir(scratch.path()).unwrap().count() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{args:?} never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(500));
        let pid = child.0.as_ref().unwrap().id();
        // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
        let interrupted = Instant::now();
        let status = loop {
            if let Some(status) = child.0.as_mut().unwrap().try_wait().unwrap() {
                break status;
            }
            assert!(
                interrupted.elapsed() < Duration::from_secs(20),
                "{args:?} ignored Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.0.take().unwrap().stdout.unwrap(), &mut stdout)
            .unwrap();
        assert_eq!(status.code(), Some(130), "{args:?}");
        assert!(!stdout.contains("never"), "{args:?}: {stdout}");
        let left: Vec<_> = fs::read_dir(scratch.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}

/// A store of its own for a test that tampers with installed bundles: the shared test
/// store's blobs, compiled code and references (blobs and code hard-linked: they are never
/// written in place), so that other tests never see the tampering.
struct PrivateStore {
    dir: tempfile::TempDir,
}

impl PrivateStore {
    fn new() -> PrivateStore {
        ensure_bundle("base");
        ensure_bundle("python");
        let dir = tempfile::tempdir().unwrap();
        let shared = common::store_dir();
        for (part, flags) in [
            ("blobs", "-al"),
            ("compiled", "-al"),
            ("refs", "-a"),
            ("index", "-a"),
            ("counters", "-a"),
        ] {
            if shared.join(part).exists() {
                let status = std::process::Command::new("cp")
                    .arg(flags)
                    .arg(shared.join(part))
                    .arg(dir.path().join(part))
                    .status()
                    .unwrap();
                assert!(status.success(), "copy {part}");
            }
        }
        PrivateStore { dir }
    }

    fn wasmbuild(&self) -> assert_cmd::Command {
        let mut cmd = wasmbuild();
        cmd.env("WASMBUILD_STORE", self.dir.path())
            .timeout(Duration::from_secs(120));
        cmd
    }

    /// Runs python once (installing the bundles) and returns its output.
    fn python(&self, src: &Path, code: &str) -> std::process::Output {
        self.wasmbuild()
            .args(["exec", "--image", "python", "--src"])
            .arg(src)
            .args(["--", "python", "-c", code])
            .output()
            .unwrap()
    }

    /// The install directory of bundle `name`.
    fn installed(&self, name: &str) -> PathBuf {
        let digest = fs::read_to_string(self.dir.path().join("refs/bundles").join(name)).unwrap();
        self.dir.path().join("bundles").join(digest.trim())
    }
}

const TAMPER_MARK: &str = "TAMPERED-BUNDLE-CODE-RAN";

// Item 13: an installed sitecustomize.py changed on disk is not run: the bundle is reinstalled.
#[test]
fn attack_tampered_sitecustomize_is_reinstalled() {
    let store = PrivateStore::new();
    let host = Host::new();
    let out = store.python(&host.src, "print('ok')");
    assert_eq!(text(&out.stdout), "ok\n", "{}", text(&out.stderr));
    let site = store.installed("python").join("lib/sitecustomize.py");
    let original = fs::read_to_string(&site).unwrap();
    fs::write(&site, format!("{original}\nprint({TAMPER_MARK:?})\n")).unwrap();

    let out = store.python(&host.src, "print('ok')");
    assert_eq!(text(&out.stdout), "ok\n", "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "installed bundle python was changed on disk (lib/sitecustomize.py: changed on disk"
        ) && text(&out.stderr).contains("reinstalling it from the store"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fs::read_to_string(&site).unwrap(), original);
}

// Item 13: a same-size change with the modification time put back is still caught.
#[test]
fn attack_tampered_bundle_file_with_restored_mtime_is_caught() {
    let store = PrivateStore::new();
    let host = Host::new();
    assert!(store.python(&host.src, "pass").status.success());
    let site = store.installed("python").join("lib/sitecustomize.py");
    let original = fs::read(&site).unwrap();
    let mtime = fs::metadata(&site).unwrap().modified().unwrap();
    // Same length: the first line becomes a print of the mark (padded with a comment).
    let payload = format!("print({TAMPER_MARK:?})#");
    assert!(payload.len() < original.len());
    let mut tampered = original.clone();
    tampered[..payload.len()].copy_from_slice(payload.as_bytes());
    fs::write(&site, &tampered).unwrap();
    fs::File::options()
        .write(true)
        .open(&site)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let out = store.python(&host.src, "print('ok')");
    assert!(
        !text(&out.stdout).contains(TAMPER_MARK),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("lib/sitecustomize.py: changed on disk"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fs::read(&site).unwrap(), original);
}

// Item 13: a module dropped into an installed bundle is not importable: the install is redone.
#[test]
fn attack_file_added_to_installed_bundle_is_removed() {
    let store = PrivateStore::new();
    let host = Host::new();
    assert!(store.python(&host.src, "pass").status.success());
    let evil = store.installed("python").join("lib/evil.py");
    fs::write(&evil, format!("print({TAMPER_MARK:?})\n")).unwrap();
    let out = store.python(
        &host.src,
        "try:\n    import evil\nexcept ImportError:\n    print('no evil')",
    );
    assert_eq!(text(&out.stdout), "no evil\n", "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("lib/evil.py: is not part of the bundle"),
        "{}",
        text(&out.stderr)
    );
    assert!(!evil.exists());
}

// Item 13: the base bundle's module replaced on disk is reinstalled before a program runs.
#[test]
fn attack_tampered_base_module_is_reinstalled() {
    let store = PrivateStore::new();
    let host = Host::new();
    assert!(store.python(&host.src, "pass").status.success());
    let module = store.installed("base").join("bin/toolbox.wasm");
    let original = fs::read(&module).unwrap();
    fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    fs::write(host.src.join("f.txt"), "content").unwrap();
    let out = store
        .wasmbuild()
        .args(["exec", "--src"])
        .arg(&host.src)
        .args(["--", "cat", "f.txt"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "content", "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("installed bundle base was changed on disk (bin/toolbox.wasm"),
        "{}",
        text(&out.stderr)
    );
    assert!(fs::read(&module).unwrap() == original);
}

// Item 13: when the store cannot supply the file again, the run is refused, naming it.
#[test]
fn attack_tampered_bundle_file_not_in_store_is_refused() {
    let store = PrivateStore::new();
    let host = Host::new();
    assert!(store.python(&host.src, "pass").status.success());
    let site = store.installed("python").join("lib/sitecustomize.py");
    let original = fs::read(&site).unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&original));
    let blob = store
        .dir
        .path()
        .join("blobs")
        .join(&digest[..2])
        .join(format!("{digest}.zst"));
    assert!(blob.exists(), "{}", blob.display());
    fs::remove_file(&blob).unwrap();
    fs::write(&site, format!("print({TAMPER_MARK:?})\n")).unwrap();
    let out = store.python(&host.src, "print('ok')");
    assert!(!text(&out.stdout).contains(TAMPER_MARK));
    assert!(!text(&out.stdout).contains("ok"));
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("lib/sitecustomize.py")
            && text(&out.stderr).contains("cannot be reinstalled from the store"),
        "{}",
        text(&out.stderr)
    );
}

// Item 13: `store verify` reads installed bundle files and names a tampered one; --repair
// removes the install, and the next run reinstalls it intact.
#[test]
fn attack_store_verify_names_tampered_installed_file() {
    let store = PrivateStore::new();
    let host = Host::new();
    assert!(store.python(&host.src, "pass").status.success());
    let out = store
        .wasmbuild()
        .args(["store", "verify"])
        .output()
        .unwrap();
    // (The shared test store may hold blobs other tests corrupted on purpose: only the
    // installed bundles' lines matter here.)
    assert!(
        !text(&out.stdout).contains("tampered"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("2 installed bundles"),
        "{}",
        text(&out.stdout)
    );
    let site = store.installed("python").join("lib/sitecustomize.py");
    let original = fs::read_to_string(&site).unwrap();
    fs::write(&site, format!("{original}\nprint({TAMPER_MARK:?})\n")).unwrap();

    let out = store
        .wasmbuild()
        .args(["store", "verify"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("tampered ")
            && stdout.contains("installed bundle python")
            && stdout.contains("lib/sitecustomize.py: changed on disk"),
        "{stdout}"
    );
    let out = store
        .wasmbuild()
        .args(["store", "verify", "--repair"])
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("removed 1 tampered installed bundles"));
    assert!(!site.exists());
    let out = store.python(&host.src, "print('ok')");
    assert_eq!(text(&out.stdout), "ok\n", "{}", text(&out.stderr));
    assert_eq!(fs::read_to_string(&site).unwrap(), original);
    let out = store
        .wasmbuild()
        .args(["store", "verify"])
        .output()
        .unwrap();
    assert!(
        !text(&out.stdout).contains("tampered"),
        "{}",
        text(&out.stdout)
    );
}

/// `wasmbuild exec --image python --src SRC -- python -c CODE`, with a canary in the host env.
fn python_exec(src: &Path, code: &str) -> std::process::Output {
    ensure_bundle("base");
    ensure_bundle("python");
    wasmbuild()
        .env("WASMBUILD_ATTACK_CANARY", SECRET)
        .args(["exec", "--image", "python", "--src"])
        .arg(src)
        .args(["--", "python", "-c", code])
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run wasmbuild exec")
}

// Already holds: `..` traversal out of the workspace, from python and from the toolbox.
#[test]
fn attack_dotdot_traversal_out_of_workspace() {
    let host = Host::new();
    let out = python_exec(
        &host.src,
        "import os\n\
         for p in ('../outside/secret.txt', '../../outside/secret.txt', \
         '/codebuild/output/src/../outside/secret.txt', '/codebuild/output/../../outside/secret.txt'):\n\
         \x20   try:\n\
         \x20       print('READ', open(p).read())\n\
         \x20   except OSError:\n\
         \x20       print('refused')\n\
         try:\n\
         \x20   open('../outside/pwned', 'w').write('x')\n\
         \x20   print('WROTE')\n\
         except OSError:\n\
         \x20   print('refused')\n",
    );
    assert_eq!(
        text(&out.stdout),
        "refused\n".repeat(5),
        "{}",
        text(&out.stderr)
    );
    let out = sh(
        "base",
        &host.src,
        "cat ../outside/secret.txt ../../../../../../../etc/passwd; echo status=$?",
    );
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains(SECRET) && !stdout.contains("root:"),
        "{stdout}"
    );
    assert!(stdout.contains("status=1"), "{stdout}");
    host.assert_outside_untouched();
}

// Already holds: absolute host paths (/etc/passwd, the host path of a secret) do not exist.
#[test]
fn attack_absolute_host_paths_are_not_visible() {
    let host = Host::new();
    let secret = host.outside.join("secret.txt");
    let out = sh(
        "base",
        &host.src,
        &format!("cat /etc/passwd {} ; echo status=$?", secret.display()),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !stdout.contains("root:") && !stdout.contains(SECRET),
        "{stdout}"
    );
    assert!(stdout.contains("status=1"), "{stdout}");
    assert!(stderr.contains("/etc/passwd"), "{stderr}");
}

// Already holds: / holds only the mounts: no /proc, /etc, /home of the host, and of /dev
// only the sandbox's own devices (issue 14: tests/guest_posix.rs), none of the host's.
#[test]
fn attack_proc_and_dev_are_not_visible() {
    let host = Host::new();
    let out = python_exec(
        &host.src,
        "import os\n\
         print(sorted(os.listdir('/')))\n\
         for p in ('/proc/self/environ', '/proc/1/cmdline', '/dev/sda', '/dev/tty', '/sys/kernel', '/etc/hostname'):\n\
         \x20   try:\n\
         \x20       open(p, 'rb').read(16)\n\
         \x20       print('OPENED', p)\n\
         \x20   except OSError:\n\
         \x20       print('absent')\n",
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout,
        format!(
            // `/` itself is no directory of the host: it lists nothing.
            "[]\n{}",
            "absent\n".repeat(6)
        ),
        "{}",
        text(&out.stderr)
    );
}

// Already holds: nothing of the host's environment reaches a guest, by exec or by a build.
#[test]
fn attack_host_env_not_leaked() {
    let host = Host::new();
    let out = python_exec(
        &host.src,
        "import os; print([k for k, v in os.environ.items() if 'host-secret' in v or k == 'WASMBUILD_ATTACK_CANARY'])",
    );
    assert_eq!(text(&out.stdout), "[]\n", "{}", text(&out.stderr));
    let (run, _) = run_build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - env\n",
        &[],
    );
    assert_eq!(run.status(), 0, "{}", run.stderr());
    assert!(!run.log().contains(SECRET), "{}", run.log());
}

// Already holds: python has no sockets (no network for a guest).
#[test]
fn attack_python_cannot_open_sockets() {
    let host = Host::new();
    let out = python_exec(
        &host.src,
        "import socket\n\
         for attempt in (lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(('127.0.0.1', 22)),\n\
         \x20               lambda: socket.create_connection(('example.invalid', 80), timeout=1),\n\
         \x20               lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(('0.0.0.0', 0))):\n\
         \x20   try:\n\
         \x20       attempt()\n\
         \x20       print('CONNECTED')\n\
         \x20   except (OSError, AttributeError):\n\
         \x20       print('refused')\n",
    );
    assert_eq!(
        text(&out.stdout),
        "refused\n".repeat(3),
        "{}",
        text(&out.stderr)
    );
}

// Already holds: a guest growing its memory without end is trapped with 137, the host unharmed.
#[test]
fn attack_memory_bomb_is_trapped_with_137() {
    let host = Host::new();
    common::write_wat(
        &host.src,
        "bomb.wasm",
        r#"(module
            (memory (export "memory") 1)
            (func (export "_start")
              (loop $grow
                (br_if $grow (i32.ne (memory.grow (i32.const 1024)) (i32.const -1))))
              unreachable))"#,
    );
    let (out, took) = exec_timed(
        "base",
        &host.src,
        &["--memory-limit", "64", "--timeout", "30"],
        &["./bomb.wasm"],
    );
    assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("./bomb.wasm: out of memory (limit 64 MiB)"),
        "{}",
        text(&out.stderr)
    );
    assert!(took < Duration::from_secs(20));
    // Python's own allocations hit the same limit: a clean MemoryError, not a host crash.
    let (out, _) = exec_timed(
        "python",
        &host.src,
        &["--memory-limit", "64", "--timeout", "30"],
        &[
            "python",
            "-c",
            "x = bytearray(256 << 20); print('ALLOCATED')",
        ],
    );
    assert!(!text(&out.stdout).contains("ALLOCATED"));
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("MemoryError") || text(&out.stderr).contains("out of memory"),
        "{}",
        text(&out.stderr)
    );
}

// Already holds: the bundle mounts are read-only to the toolbox too; the host files stay.
#[test]
fn attack_read_only_bundle_mount_cannot_be_written() {
    ensure_bundle("base");
    let host = Host::new();
    let base_digest = fs::read_to_string(common::store_dir().join("refs/bundles/base")).unwrap();
    let module = common::store_dir()
        .join("bundles")
        .join(base_digest.trim())
        .join("bin/toolbox.wasm");
    let before = fs::read(&module).unwrap();
    let out = sh(
        "base",
        &host.src,
        "touch /opt/runtimes/base/new; echo touch=$?\n\
         rm -f /opt/runtimes/base/bin/toolbox.wasm; echo rm=$?\n\
         cp /opt/runtimes/base/bin/toolbox.wasm /opt/runtimes/base/bin/copy.wasm; echo cp=$?\n\
         mkdir /opt/runtimes/base/dir; echo mkdir=$?\n\
         ln -s x /opt/runtimes/base/link; echo ln=$?",
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout,
        "touch=1\nrm=1\ncp=1\nmkdir=1\nln=1\n",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fs::read(&module).unwrap(), before);
    let dir = module.parent().unwrap().parent().unwrap();
    assert!(!dir.join("new").exists() && !dir.join("dir").exists());
    assert!(!dir.join("bin/copy.wasm").exists() && !dir.join("link").exists());
}

// Already holds: links a guest makes pointing out (`ln -s /etc x; cat x/passwd`, relative
// climbs, hard links to host files) are never followed to the host.
#[test]
fn attack_guest_made_links_are_not_followed_out() {
    let host = Host::new();
    let out = sh(
        "base",
        &host.src,
        &format!(
            "ln -s /etc x; cat x/passwd; echo cat1=$?\n\
             ln -s ../outside y; cat y/secret.txt; echo cat2=$?\n\
             ln -s {} z; cat z/secret.txt; echo cat3=$?\n\
             ln /etc/passwd h; echo hard=$?\n\
             ln -s ../outside/secret.txt w; echo data > w; echo write=$?",
            host.outside.display()
        ),
    );
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains("root:") && !stdout.contains(SECRET),
        "{stdout}"
    );
    for status in ["cat1=1", "cat2=1", "cat3=1", "hard=1", "write=1"] {
        assert!(
            stdout.contains(status),
            "{status} in {stdout}\n{}",
            text(&out.stderr)
        );
    }
    host.assert_outside_untouched();
}

// Already holds: a module run by path through a link that leads out is not found.
#[test]
fn attack_module_through_escaping_link_is_not_run() {
    let host = Host::new();
    common::write_wat(
        &host.outside,
        "outside.wasm",
        r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
    );
    std::os::unix::fs::symlink("../outside/outside.wasm", host.src.join("tool.wasm")).unwrap();
    let (out, _) = exec_timed("base", &host.src, &[], &["./tool.wasm"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("./tool.wasm: no such file"),
        "{}",
        text(&out.stderr)
    );
}

// Item 1 (race): a background loop swaps the working directory between a directory and a
// link out while programs keep starting in it; none ever reaches the host.
#[test]
fn attack_cwd_swap_race() {
    let host = Host::new();
    let script = format!(
        "mkdir d\ncd d\n\
         for i in {{1..400}}; do rm -rf $CODEBUILD_SRC_DIR/d; ln -s {link} $CODEBUILD_SRC_DIR/d; rm $CODEBUILD_SRC_DIR/d; mkdir $CODEBUILD_SRC_DIR/d; done &\n\
         for i in {{1..40}}; do {PYTHON_USES_DOT}; done 2>/dev/null\n\
         wait\necho done",
        link = Host::climb_to_outside(1)
    );
    let out = sh("python", &host.src, &script);
    let stdout = text(&out.stdout);
    // (`WROTE` is fine when d was a real directory at that moment: the write lands in the
    // workspace. What must never happen is the secret read or a file outside.)
    assert!(!stdout.contains(SECRET), "{stdout}");
    assert!(
        stdout.ends_with("done\n"),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    host.assert_outside_untouched();
}

/// A module that polls: subscription 0 a clock (relative, `$first` ns, userdata 1), and
/// subscription 1 either stdin readable (`fd`) or a second clock of 10 s (userdata 2). It
/// exits with `10 * nevents + userdata of the first event` (or 100 + errno).
fn poll_module(second_is_stdin: bool, first_nanos: u64) -> String {
    let second = if second_is_stdin {
        // tag 1 = fd_read, fd 0.
        "(i64.store (i32.const 48) (i64.const 2)) (i32.store8 (i32.const 56) (i32.const 1)) \
         (i32.store (i32.const 64) (i32.const 0))"
    } else {
        "(i64.store (i32.const 48) (i64.const 2)) (i32.store8 (i32.const 56) (i32.const 0)) \
         (i32.store (i32.const 64) (i32.const 1)) (i64.store (i32.const 72) (i64.const 10000000000))"
    };
    format!(
        r#"(module
          (import "wasi_snapshot_preview1" "poll_oneoff"
            (func $poll (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start") (local $errno i32)
            (i64.store (i32.const 0) (i64.const 1))
            (i32.store8 (i32.const 8) (i32.const 0))
            (i32.store (i32.const 16) (i32.const 1))
            (i64.store (i32.const 24) (i64.const {first_nanos}))
            {second}
            (local.set $errno (call $poll (i32.const 0) (i32.const 128) (i32.const 2) (i32.const 256)))
            (if (local.get $errno) (then (call $exit (i32.add (i32.const 100) (local.get $errno)))))
            (call $exit (i32.add
              (i32.mul (i32.load (i32.const 256)) (i32.const 10))
              (i32.wrap_i64 (i64.load (i32.const 128)))))))"#
    )
}

// Item 6: polls that are not pure sleeps still go to WASI's own poll_oneoff (stdin ready at
// once), and a sleep on two clocks ends with the earlier one, not before it.
#[test]
fn attack_poll_with_stdin_and_clocks_behaves() {
    let host = Host::new();
    common::write_wat(&host.src, "mixed.wasm", &poll_module(true, 10_000_000_000));
    let (out, took) = exec_timed("base", &host.src, &["--timeout", "30"], &["./mixed.wasm"]);
    assert_eq!(out.status.code(), Some(12), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(8), "took {took:?}");
    common::write_wat(&host.src, "clocks.wasm", &poll_module(false, 300_000_000));
    let (out, took) = exec_timed("base", &host.src, &["--timeout", "30"], &["./clocks.wasm"]);
    assert_eq!(out.status.code(), Some(11), "{}", text(&out.stderr));
    assert!(
        took >= Duration::from_millis(300),
        "returned early: {took:?}"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
    // The same two-clock sleep, with the short one 300 s: stopped by the deadline.
    common::write_wat(&host.src, "long.wasm", &poll_module(false, 300_000_000_000));
    let (out, took) = exec_timed("base", &host.src, &["--timeout", "0.5"], &["./long.wasm"]);
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

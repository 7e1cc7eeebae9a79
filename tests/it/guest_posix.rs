//! The guest behaves like a POSIX box where it matters (issue 14, item 3): `/dev` with
//! null, zero, random, urandom, stdin, stdout, stderr and fd/ for every guest program;
//! `os.dup`/`os.dup2` with shared offsets, so pytest's default fd capture and faulthandler
//! work; the build user is root. And nothing else of the host's `/dev` is reachable.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{ensure_bundle, wasmbuild};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `wasmbuild exec --image python [OPTIONS] --src SRC -- python -c CODE`.
fn python(src: &Path, options: &[&str], code: &str) -> Output {
    ensure_bundle("base");
    ensure_bundle("python");
    wasmbuild()
        .args(["exec", "--image", "python"])
        .args(options)
        .arg("--src")
        .arg(src)
        .args(["--", "python", "-c", code])
        .timeout(Duration::from_secs(300))
        .output()
        .expect("run wasmbuild exec")
}

/// `python -c CODE` that must succeed: its stdout.
fn python_ok(src: &Path, code: &str) -> String {
    common::succeeded(&python(src, &[], code))
}

/// `wasmbuild sh --image base --src SRC -c SCRIPT` (the toolbox's programs).
fn toolbox(src: &Path, script: &str) -> Output {
    common::sandbox_sh("base", src, &[], script)
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const DEV_LISTING: &str =
    "['fd', 'null', 'process', 'random', 'stderr', 'stdin', 'stdout', 'urandom', 'zero']";

#[test]
fn dev_files_exist_and_behave_for_python() {
    let src = tempfile::tempdir().unwrap();
    let stdout = python_ok(
        src.path(),
        "import os, stat, sys\n\
         sys.stdout.reconfigure(line_buffering=True)\n\
         for p in ('/dev/null', '/dev/zero', '/dev/urandom', '/dev/random', '/dev/stdin', '/dev/stdout', '/dev/stderr', '/dev/fd'):\n\
         \x20   print(p, os.path.exists(p))\n\
         print('empty files', all(stat.S_ISREG(os.stat(p).st_mode) and os.stat(p).st_size == 0 for p in ('/dev/null', '/dev/zero', '/dev/urandom', '/dev/random')))\n\
         print('dir', stat.S_ISDIR(os.stat('/dev').st_mode), os.path.isdir('/dev/fd'))\n\
         with open('/dev/null', 'w') as f:\n\
         \x20   for _ in range(64):\n\
         \x20       f.write('x' * (1 << 20))\n\
         fd = os.open('/dev/null', os.O_WRONLY)\n\
         print('write', os.write(fd, b'y' * 100000))\n\
         os.close(fd)\n\
         print('null reads', open('/dev/null', 'rb').read())\n\
         print('zero', open('/dev/zero', 'rb').read(100000) == bytes(100000))\n\
         r = open('/dev/urandom', 'rb').read(4096)\n\
         print('urandom', len(r), len(set(r)) > 200)\n\
         print('random', len(open('/dev/random', 'rb').read(64)))\n\
         print('listing', sorted(os.listdir('/dev')))\n\
         print('fds', [n for n in sorted(os.listdir('/dev/fd'), key=int) if int(n) < 3])\n\
         with open('/dev/stdout', 'w') as f:\n\
         \x20   f.write('via /dev/stdout\\n')\n\
         with open('/dev/stderr', 'w') as f:\n\
         \x20   f.write('via /dev/stderr\\n')\n\
         print('seek', open('/dev/zero', 'rb').seek(4096))\n",
    );
    let expected = format!(
        "/dev/null True\n/dev/zero True\n/dev/urandom True\n/dev/random True\n\
         /dev/stdin True\n/dev/stdout True\n/dev/stderr True\n/dev/fd True\n\
         empty files True\ndir True True\nwrite 100000\nnull reads b''\nzero True\n\
         urandom 4096 True\nrandom 64\nlisting {DEV_LISTING}\nfds ['0', '1', '2']\n\
         via /dev/stdout\nseek 0\n"
    );
    assert_eq!(stdout, expected);
    // 64 MiB went to /dev/null: nothing of it is stored in the workspace.
    assert!(names(src.path()).is_empty(), "{:?}", names(src.path()));
}

#[test]
fn dev_stderr_reaches_stderr() {
    let src = tempfile::tempdir().unwrap();
    let out = python(
        src.path(),
        &[],
        "open('/dev/stderr', 'w').write('to-stderr\\n'); open('/dev/stdout', 'w').write('to-stdout\\n')",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "to-stdout\n");
    assert_eq!(text(&out.stderr), "to-stderr\n");
}

#[test]
fn dev_files_exist_and_behave_for_the_toolbox() {
    let src = tempfile::tempdir().unwrap();
    let out = toolbox(
        src.path(),
        "cat /dev/null; echo cat=$?\n\
         head -c 16 /dev/zero | od -An -tx1\n\
         head -c 100000 /dev/urandom | wc -c\n\
         ls /dev | tr '\\n' ' '; echo\n\
         ls -l /dev/null | cut -c1\n\
         cp /dev/null empty.txt; wc -c < empty.txt\n\
         echo through-dev-stdout | tee /dev/stdout | cat\n\
         head -c 5 /dev/stdin <<EOF\n\
         stdin-text\n\
         EOF\n\
         echo\n\
         head -c 3000000 /dev/zero | tee /dev/null | wc -c\n",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "cat=0\n 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n100000\n\
         fd null process random stderr stdin stdout urandom zero \n-\n0\n\
         through-dev-stdout\nthrough-dev-stdout\nstdin\n3000000\n",
        "{stderr}"
    );
}

#[test]
fn urandom_differs_between_runs_and_repeats_under_deterministic() {
    let src = tempfile::tempdir().unwrap();
    let code = "import os\n\
                print(open('/dev/urandom', 'rb').read(32).hex())\n\
                print(open('/dev/random', 'rb').read(32).hex())\n\
                print(os.urandom(8).hex())\n";
    let run = |options: &[&str]| {
        let out = python(src.path(), options, code);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert_eq!(stdout.lines().count(), 3, "{stdout}");
        stdout
    };
    let (a, b) = (run(&[]), run(&[]));
    assert_ne!(a, b, "two ordinary runs read the same 'random' bytes");
    let lines: Vec<&str> = a.lines().collect();
    assert_ne!(lines[0], lines[1]);
    let (c, d) = (run(&["--deterministic"]), run(&["--deterministic"]));
    assert_eq!(c, d, "two deterministic runs read different bytes");
    assert_ne!(a, c);
}

#[test]
fn dup_and_dup2_round_trip_stdout_through_a_file() {
    let src = tempfile::tempdir().unwrap();
    let stdout = python_ok(
        src.path(),
        "import os, errno\n\
         f = open('/tmp/capture.bin', 'w+b', buffering=0)\n\
         saved = os.dup(1)\n\
         print('saved is a new number', saved > 2, flush=True)\n\
         os.dup2(f.fileno(), 1)\n\
         os.write(1, b'into the file\\n')\n\
         shared = f.tell()\n\
         os.dup2(saved, 1)\n\
         os.close(saved)\n\
         os.write(1, b'back on stdout\\n')\n\
         print('offset shared', shared)\n\
         f.seek(0)\n\
         print('file holds', f.read())\n\
         g = os.dup(f.fileno())\n\
         os.lseek(g, 3, os.SEEK_SET)\n\
         print('dup shares offset', f.tell())\n\
         os.close(g)\n\
         f.seek(0); f.truncate(); os.write(f.fileno(), b'ab')\n\
         print('after truncate', open('/tmp/capture.bin', 'rb').read())\n\
         for bad in (99, -1):\n\
         \x20   try:\n\
         \x20       os.dup(bad)\n\
         \x20   except OSError as e:\n\
         \x20       print('dup', bad, errno.errorcode[e.errno])\n\
         try:\n\
         \x20   os.dup2(99, 5)\n\
         except OSError as e:\n\
         \x20   print('dup2 99', errno.errorcode[e.errno])\n\
         print('dup2 returns', os.dup2(1, 1))\n",
    );
    assert_eq!(
        stdout,
        "saved is a new number True\nback on stdout\noffset shared 14\n\
         file holds b'into the file\\n'\ndup shares offset 3\nafter truncate b'ab'\n\
         dup 99 EBADF\ndup -1 EBADF\ndup2 99 EBADF\n\
         dup2 returns 1\n"
    );
}

#[test]
fn dup2_of_a_closed_fd_and_closing_the_original_keeps_the_duplicate() {
    let src = tempfile::tempdir().unwrap();
    let stdout = python_ok(
        src.path(),
        "import os\n\
         d = os.dup(1)\n\
         os.close(1)\n\
         os.write(d, b'stdout still open through the duplicate\\n')\n\
         os.dup2(d, 1)\n\
         os.close(d)\n\
         os.write(1, b'and back on 1\\n')\n\
         n = os.open('/dev/null', os.O_WRONLY)\n\
         os.dup2(n, 1)\n\
         os.write(1, b'swallowed\\n')\n",
    );
    assert_eq!(
        stdout,
        "stdout still open through the duplicate\nand back on 1\n"
    );
}

#[test]
fn faulthandler_enables_on_a_dup_of_stderr() {
    let src = tempfile::tempdir().unwrap();
    let out = python(
        src.path(),
        &[],
        "import faulthandler, os\n\
         fd = os.dup(2)\n\
         faulthandler.enable(file=fd)\n\
         print('enabled', faulthandler.is_enabled())\n\
         faulthandler.dump_traceback(file=fd)\n\
         faulthandler.disable()\n\
         os.close(fd)\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "enabled True\n");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Current thread") || stderr.contains("Stack (most recent call first)"),
        "{stderr}"
    );
    assert!(stderr.contains("File \"<string>\", line 5"), "{stderr}");
}

#[test]
fn the_build_user_is_root() {
    let src = tempfile::tempdir().unwrap();
    let stdout = python_ok(
        src.path(),
        "import os, pwd, grp, getpass, pathlib, tempfile\n\
         print(os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups())\n\
         p = pwd.getpwuid(os.getuid())\n\
         print(p.pw_name, p.pw_uid, p.pw_gid, p.pw_dir, p[0], pwd.getpwnam('root') == p)\n\
         print(grp.getgrgid(os.getgid()).gr_name)\n\
         print(getpass.getuser(), pathlib.Path.home(), os.path.expanduser('~'))\n\
         print(tempfile.gettempdir())\n\
         with tempfile.TemporaryFile() as t:\n\
         \x20   t.write(b'abc'); t.seek(0); print(t.read())\n\
         old = os.umask(0o077); print(oct(old), oct(os.umask(old)))\n\
         try:\n\
         \x20   pwd.getpwuid(1000)\n\
         except KeyError:\n\
         \x20   print('no other user')\n",
    );
    assert_eq!(
        stdout,
        "0 0 0 0 [0]\nroot 0 0 /root root True\nroot\nroot /root /root\n/tmp\nb'abc'\n\
         0o22 0o77\nno other user\n"
    );
}

#[test]
fn host_dev_entries_are_not_reachable() {
    let src = tempfile::tempdir().unwrap();
    let stdout = python_ok(
        src.path(),
        "import os\n\
         for p in ('/dev/sda', '/dev/tty', '/dev/mem', '/dev/shm', '/dev/shm/x', '/dev/pts/0', '/dev/../etc/passwd', '/dev/fd/../../etc/passwd', '/dev/fd/99', '/dev/null/x'):\n\
         \x20   try:\n\
         \x20       open(p, 'rb').read(1)\n\
         \x20       print('OPENED', p)\n\
         \x20   except OSError:\n\
         \x20       print('absent')\n\
         for p in ('/dev/shm', '/dev/pts', '/dev/disk'):\n\
         \x20   try:\n\
         \x20       print('LISTED', os.listdir(p))\n\
         \x20   except OSError:\n\
         \x20       print('absent')\n\
         for make in (lambda: open('/dev/new', 'w'), lambda: os.mkdir('/dev/shm'), lambda: os.unlink('/dev/null'), lambda: os.rename('/dev/zero', '/dev/z'), lambda: os.symlink('/etc', '/dev/etc')):\n\
         \x20   try:\n\
         \x20       make()\n\
         \x20       print('MADE')\n\
         \x20   except OSError:\n\
         \x20       print('refused')\n\
         print(sorted(os.listdir('/dev')))\n",
    );
    let expected = format!(
        "{}{}{}{DEV_LISTING}\n",
        "absent\n".repeat(10),
        "absent\n".repeat(3),
        "refused\n".repeat(5)
    );
    assert_eq!(stdout, expected);
    let out = toolbox(
        src.path(),
        "ls /dev/shm; echo shm=$?; cat /dev/tty; echo tty=$?; ls /dev/sda; echo sda=$?",
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("shm=1") || stdout.contains("shm=2"),
        "{stdout}"
    );
    assert!(stdout.contains("tty=1"), "{stdout}");
    assert!(
        stdout.contains("sda=1") || stdout.contains("sda=2"),
        "{stdout}"
    );
    assert!(names(src.path()).is_empty());
}

// ---------------------------------------------------------------------------------------
// pytest with its default options (fd capture, faulthandler, logging) in the guest.

/// Pinned pure-Python wheels of pytest and its dependencies.
const PYTEST_WHEELS: [&str; 4] = [
    "pytest==8.3.4",
    "iniconfig==2.0.0",
    "packaging==24.2",
    "pluggy==1.5.0",
];

/// The wheels, downloaded once with the host's pip into the test scratch directory (kept
/// there, so later runs need no network).
fn pytest_wheels() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pytest-wheels");
    let find = |dir: &Path| -> Vec<PathBuf> {
        PYTEST_WHEELS
            .iter()
            .filter_map(|pin| {
                let (name, version) = pin.split_once("==").unwrap();
                let prefix = format!("{name}-{version}-");
                fs::read_dir(dir).ok()?.find_map(|e| {
                    let path = e.ok()?.path();
                    let file = path.file_name()?.to_str()?.to_owned();
                    (file.starts_with(&prefix) && file.ends_with(".whl")).then_some(path)
                })
            })
            .collect()
    };
    let found = find(&dir);
    if found.len() == PYTEST_WHEELS.len() {
        return found;
    }
    fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            "-d",
        ])
        .arg(&dir)
        .args(PYTEST_WHEELS)
        .status()
        .expect("run the host's pip to fetch pytest's wheels");
    assert!(status.success(), "pip download of {PYTEST_WHEELS:?} failed");
    let found = find(&dir);
    assert_eq!(found.len(), PYTEST_WHEELS.len(), "{found:?}");
    found
}

/// Unpacks `wheels` into `dir`.
fn unpack(wheels: &[PathBuf], dir: &Path) {
    for wheel in wheels {
        let file = fs::File::open(wheel).unwrap();
        let mut archive = zip::ZipArchive::new(file).unwrap();
        archive.extract(dir).unwrap();
    }
}

const PYTEST_SUITE: &str = r#"import os, sys, logging

def test_passes():
    print("captured-pass-output")
    os.write(1, b"fd-level-pass-output\n")
    os.write(2, b"fd-level-pass-stderr\n")
    logging.getLogger(__name__).warning("logged-pass-warning")

def test_fails():
    print("shown-on-failure")
    os.write(1, b"fd-level-fail-output\n")
    assert 1 == 2
"#;

#[test]
fn pytest_runs_with_default_fd_capture_and_faulthandler() {
    let src = tempfile::tempdir().unwrap();
    unpack(&pytest_wheels(), &src.path().join("site"));
    fs::create_dir(src.path().join("tests")).unwrap();
    fs::write(src.path().join("tests/test_demo.py"), PYTEST_SUITE).unwrap();

    ensure_bundle("base");
    ensure_bundle("python");
    let out = wasmbuild()
        .args(["exec", "--image", "python", "--src"])
        .arg(src.path())
        .args([
            "-e",
            "PYTHONPATH=/codebuild/output/src/site:/opt/runtimes/python/lib",
            "--",
            "python",
            "-m",
            "pytest",
            "tests",
        ])
        .timeout(Duration::from_secs(600))
        .output()
        .expect("run pytest in the guest");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "{context}");
    assert!(stdout.contains("1 failed, 1 passed"), "{context}");
    // The failing test's output, from print and from fd 1 alike, is captured and shown.
    assert!(stdout.contains("Captured stdout call"), "{context}");
    assert!(stdout.contains("shown-on-failure"), "{context}");
    assert!(stdout.contains("fd-level-fail-output"), "{context}");
    // The passing test's output is captured and not shown, on stdout or stderr.
    for hidden in [
        "captured-pass-output",
        "fd-level-pass-output",
        "fd-level-pass-stderr",
        "logged-pass-warning",
    ] {
        assert!(
            !stdout.contains(hidden) && !stderr.contains(hidden),
            "{hidden} leaked: {context}"
        );
    }
    assert!(!stderr.contains("Traceback"), "{context}");

    // The same suite under the host's CPython shows the same sections (when it can run).
    let native = std::process::Command::new("python3")
        .args(["-m", "pytest", "-p", "no:cacheprovider", "tests"])
        .env("PYTHONPATH", src.path().join("site"))
        .current_dir(src.path())
        .output();
    if let Ok(native) = native {
        let native_stdout = text(&native.stdout);
        if native_stdout.contains("passed") {
            for marker in [
                "1 failed, 1 passed",
                "Captured stdout call",
                "shown-on-failure",
                "fd-level-fail-output",
                "captured-pass-output",
                "fd-level-pass-output",
            ] {
                assert_eq!(
                    stdout.contains(marker),
                    native_stdout.contains(marker),
                    "{marker}: guest and native pytest differ\nnative:\n{native_stdout}\n{context}"
                );
            }
        }
    }
}

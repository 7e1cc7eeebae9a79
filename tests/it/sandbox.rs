//! The sandbox seen through `wasmbuild exec`: argv, env, exit statuses, streaming stdio,
//! the guest's view of the filesystem, limits, traps, and the compiled-code cache. Programs
//! are the real runtime bundles (python, the base toolbox) and small hand-written modules.

use crate::common;

use std::fs;
use std::io::Write;

use common::{ensure_bundle, wasmbuild, write_wat};
use predicates::prelude::*;
use sha2::Digest;

fn python(src: &std::path::Path, code: &str) -> assert_cmd::Command {
    assert_cmd::Command::from_std(python_process(src, code))
}

/// `wasmbuild exec --image python --src SRC -- python -c CODE`.
fn python_process(src: &std::path::Path, code: &str) -> std::process::Command {
    ensure_bundle("python");
    let mut cmd = common::wasmbuild_process();
    cmd.args(["exec", "--image", "python", "--src"])
        .arg(src)
        .args(["--", "python", "-c", code]);
    cmd
}

#[test]
fn argv_reaches_the_guest_exactly() {
    let src = tempfile::tempdir().unwrap();
    python(src.path(), "import sys; print(sys.argv[1:])")
        .args(["a b", "", "--flag", "ü"])
        .assert()
        .success()
        .stdout("['a b', '', '--flag', 'ü']\n");
}

// `exec` exits as soon as its program has, leaving the engine to the exit: its output is
// all there, its status is the program's, and the guest's scratch /tmp and home are gone.
#[test]
fn exec_exits_with_the_programs_status_and_leaves_no_scratch_behind() {
    let src = tempfile::tempdir().unwrap();
    let host_tmp = tempfile::tempdir().unwrap();
    python(
        src.path(),
        "import os, sys\n\
         open('/tmp/t', 'w').write('x'); open(os.environ['HOME'] + '/h', 'w').write('y')\n\
         sys.stdout.write('out ' * 5000); sys.stderr.write('err'); sys.exit(7)",
    )
    .env("TMPDIR", host_tmp.path())
    .assert()
    .code(7)
    .stdout("out ".repeat(5000))
    .stderr("err");
    let left: Vec<_> = fs::read_dir(host_tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "left in the host's temporary directory: {left:?}"
    );
}

// `exec`'s address space is freed by a child that outlives it by a moment (`wasmbuild::exit`):
// that child holds none of its descriptors, so once `exec` has exited its output is whole
// (the last line had no newline: flushed, not lost) and already ended, with nothing else
// still able to write to it.
#[test]
fn once_exec_has_exited_its_output_is_whole_and_ended() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    ensure_bundle("python");
    let src = tempfile::tempdir().unwrap();
    for _ in 0..5 {
        let mut child = python_process(src.path(), "print('whole'); print('line', end='')")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        assert!(child.wait().unwrap().success());
        let mut stdout = child.stdout.take().unwrap();
        // SAFETY: the pipe's reading end, owned by `stdout`; only its flags change.
        unsafe {
            let fd = stdout.as_raw_fd();
            let flags = libc::fcntl(fd, libc::F_GETFL);
            assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK), 0);
        }
        // A writer still holding the pipe would make this read fail with `WouldBlock`.
        let mut out = String::new();
        stdout
            .read_to_string(&mut out)
            .expect("the output has ended");
        assert_eq!(out, "whole\nline");
    }
}

// `exec` runs its program on its one thread: WASI's calls complete there (no Tokio runtime
// thread, which wasmtime-wasi's own would be: `tokio-rt-worker`), no thread advances the
// epoch (the program has no deadline and no parent) and none waits for Ctrl-C (a signal
// handler does); calls that wait (a stat, output, a sleep) still work. (Reading a stdin
// that nothing of wasmbuild's ends starts a reader thread, so that the read can give up.)
#[test]
fn exec_runs_its_program_on_one_thread() {
    ensure_bundle("python");
    let src = tempfile::tempdir().unwrap();
    let mut child = python_process(
        src.path(),
        "import os, time\n\
         print(os.path.isdir('.'), flush=True)\n\
         time.sleep(1.5)\n\
         print('woke')",
    )
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // The guest has made its calls once its line is out; it then sleeps.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "True\n");
    let names: Vec<String> = fs::read_dir(format!("/proc/{}/task", child.id()))
        .unwrap()
        .filter_map(|task| fs::read_to_string(task.unwrap().path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest, "woke\n");
    assert_eq!(names, ["wasmbuild"]);
}

#[test]
fn guest_env_is_exactly_what_wasmbuild_sets_and_never_the_hosts() {
    ensure_bundle("base");
    ensure_bundle("python");
    let src = tempfile::tempdir().unwrap();
    wasmbuild()
        .env("WASMBUILD_LEAK_CANARY", "secret")
        .args(["exec", "--image", "python", "-e", "FOO=bar=baz", "-e", "HOME=/elsewhere", "--src"])
        .arg(src.path())
        .args(["--", "python", "-c", "import os; print(sorted(os.environ.items()))"])
        .assert()
        .success()
        .stdout(
            "[('CODEBUILD_SRC_DIR', '/codebuild/output/src'), ('FOO', 'bar=baz'), ('HOME', '/elsewhere'), \
             ('PATH', '/opt/runtimes/python/bin:/opt/runtimes/base/bin:/root/.local/bin'), ('PWD', '/codebuild/output/src'), \
             ('PYTHONPATH', '/opt/runtimes/python/lib')]\n",
        );
}

#[test]
fn exit_status_of_the_guest_is_the_exit_status_of_exec() {
    let src = tempfile::tempdir().unwrap();
    python(src.path(), "import sys; sys.exit(42)")
        .assert()
        .code(42);
    python(src.path(), "raise SystemExit(0)").assert().code(0);
    python(src.path(), "1/0")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("ZeroDivisionError"));
}

#[test]
fn proc_exit_sets_the_status() {
    ensure_bundle("python");
    let src = tempfile::tempdir().unwrap();
    let module = write_wat(
        src.path(),
        "exit7.wasm",
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (func (export "_start") (call $exit (i32.const 7))))"#,
    );
    wasmbuild()
        .args(["exec", "--image", "python", "--src"])
        .arg(src.path())
        .args(["--", &format!("./{module}")])
        .assert()
        .code(7);
}

// A script run by a relative path knows where it is, as natively: `__file__` absolute (and
// `sys.path[0]` its directory), a data file beside it found through `__file__`, a sibling
// module imported, in the default 3.13 bundle and in 3.12.
#[test]
fn a_python_script_finds_itself_and_its_siblings() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("tools")).unwrap();
    fs::write(src.path().join("tools/helper.py"), "NAME = 'helper'\n").unwrap();
    fs::write(src.path().join("tools/data.txt"), "beside the script\n").unwrap();
    fs::write(
        src.path().join("tools/run.py"),
        "import os, sys, helper\n\
         print(__file__, os.path.abspath(sys.path[0]), helper.NAME)\n\
         print(open(os.path.join(os.path.dirname(__file__), 'data.txt')).read().strip())\n",
    )
    .unwrap();
    for image in ["python", "python:3.12"] {
        ensure_bundle(image);
        for (workdir, script) in [(".", "tools/run.py"), ("tools", "run.py")] {
            let out = wasmbuild()
                .args(["exec", "--image", image, "--workdir", workdir, "--src"])
                .arg(src.path())
                .args(["--", "python3", script])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                stdout,
                "/codebuild/output/src/tools/run.py /codebuild/output/src/tools helper\n\
                 beside the script\n",
                "{image} {workdir} {script}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn python_getcwd_follows_workdir() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("sub/deeper")).unwrap();
    python(
        src.path(),
        "import os; print(os.getcwd()); open('made-here', 'w').write('x')",
    )
    .args([] as [&str; 0])
    .assert()
    .success();
    ensure_bundle("python");
    wasmbuild()
        .args([
            "exec",
            "--image",
            "python",
            "--workdir",
            "sub/deeper",
            "--src",
        ])
        .arg(src.path())
        .args([
            "--",
            "python",
            "-c",
            "import os; print(os.getcwd()); open('made-here', 'w').write('x')",
        ])
        .assert()
        .success()
        .stdout("/codebuild/output/src/sub/deeper\n");
    assert!(src.path().join("sub/deeper/made-here").is_file());
}

#[test]
fn more_than_64_mib_streams_through_stdin_and_stdout() {
    ensure_bundle("python");
    let src = tempfile::tempdir().unwrap();
    let input_path = src.path().join("input.bin");
    let mut input = fs::File::create(&input_path).unwrap();
    let mut hasher = sha2::Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    for i in 0..80u32 {
        for (j, b) in block.iter_mut().enumerate() {
            *b = (i as usize * 31 + j * 7) as u8;
        }
        hasher.update(&block);
        input.write_all(&block).unwrap();
    }
    drop(input);
    let output_path = src.path().join("output.bin");
    let status = python_process(
        src.path(),
        "import sys, shutil; shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer, 1 << 16)",
    )
    .stdin(fs::File::open(&input_path).unwrap())
    .stdout(fs::File::create(&output_path).unwrap())
    .status()
    .unwrap();
    assert!(status.success());
    let output = fs::read(&output_path).unwrap();
    assert_eq!(output.len(), 80 << 20);
    assert_eq!(sha2::Sha256::digest(&output), hasher.finalize());
}

#[test]
fn bundle_files_cannot_be_written() {
    let src = tempfile::tempdir().unwrap();
    python(
        src.path(),
        "import os\n\
         for attempt in (lambda: open('/opt/runtimes/python/lib/sitecustomize.py', 'a'),\n\
                         lambda: open('/opt/runtimes/python/new-file', 'w'),\n\
                         lambda: os.remove('/opt/runtimes/python/lib/sitecustomize.py'),\n\
                         lambda: os.mkdir('/opt/runtimes/python/dir')):\n\
         \x20   try:\n\
         \x20       attempt()\n\
         \x20       print('WROTE')\n\
         \x20   except OSError as e:\n\
         \x20       print('refused', e.errno != 0)\n",
    )
    .assert()
    .success()
    .stdout("refused True\n".repeat(4));
}

#[test]
fn host_paths_traversal_and_escaping_symlinks_are_refused() {
    let src = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret.txt"), "host secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), src.path().join("escape-dir")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        src.path().join("escape-file"),
    )
    .unwrap();
    let secret = outside.path().join("secret.txt");
    let code = format!(
        "import os\n\
         paths = [{secret:?}, '/etc/passwd', '../../../../etc/passwd', '/codebuild/output/src/../../../../etc/passwd',\n\
         \x20        'escape-dir/secret.txt', 'escape-file']\n\
         for target, name in (({secret:?}, 'made-by-guest-abs'), ('../../../..' + {secret:?}, 'made-by-guest-rel')):\n\
         \x20   try:\n\
         \x20       os.symlink(target, name)\n\
         \x20   except OSError:\n\
         \x20       pass\n\
         paths += ['made-by-guest-abs', 'made-by-guest-rel']\n\
         for p in paths:\n\
         \x20   try:\n\
         \x20       print(open(p).read())\n\
         \x20   except OSError:\n\
         \x20       print('refused')\n",
        secret = secret.to_str().unwrap()
    );
    let out = python(src.path(), &code)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(
        !out.contains("host secret") && !out.contains("root:"),
        "guest read the host: {out}"
    );
    assert_eq!(out, "refused\n".repeat(8));
}

#[test]
fn memory_limit_stops_a_runaway_guest_with_a_clear_message() {
    let src = tempfile::tempdir().unwrap();
    let module = write_wat(
        src.path(),
        "hog.wasm",
        r#"(module
            (memory (export "memory") 1)
            (func (export "_start")
              (loop $grow
                (br_if $grow (i32.ne (memory.grow (i32.const 256)) (i32.const -1))))
              unreachable))"#,
    );
    wasmbuild()
        .args(["exec", "--image", "python", "--memory-limit", "64", "--src"])
        .arg(src.path())
        .args(["--", &format!("./{module}")])
        .assert()
        .code(137)
        .stderr(predicate::str::contains(
            "./hog.wasm: out of memory (limit 64 MiB)",
        ));
}

#[test]
fn deadline_stops_a_guest_that_never_ends() {
    let src = tempfile::tempdir().unwrap();
    let module = write_wat(
        src.path(),
        "spin.wasm",
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#,
    );
    let started = std::time::Instant::now();
    wasmbuild()
        .args(["exec", "--image", "python", "--timeout", "0.3", "--src"])
        .arg(src.path())
        .args(["--", &format!("./{module}")])
        .assert()
        .code(124)
        .stderr(predicate::str::contains(
            "./spin.wasm: stopped: deadline exceeded",
        ));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn a_trap_is_a_message_naming_the_program_not_a_crash() {
    let src = tempfile::tempdir().unwrap();
    let module = write_wat(
        src.path(),
        "trap.wasm",
        r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#,
    );
    wasmbuild()
        .args(["exec", "--image", "python", "--src"])
        .arg(src.path())
        .args(["--", &format!("./{module}")])
        .assert()
        .code(134)
        .stderr(predicate::str::contains(
            "./trap.wasm: trapped: wasm `unreachable` instruction executed",
        ))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn a_file_that_is_not_a_module_is_refused_cleanly() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("fake.wasm"), "not wasm at all").unwrap();
    wasmbuild()
        .args(["exec", "--image", "python", "--src"])
        .arg(src.path())
        .args(["--", "./fake.wasm"])
        .assert()
        .code(126)
        .stderr(predicate::str::contains(
            "./fake.wasm: not a valid WebAssembly module",
        ));
}

/// `WASMBUILD_ENGINE` (engine variations, for measurements) is checked like any input.
#[test]
fn a_bad_engine_setting_is_refused_as_bad_input() {
    let out = crate::common::wasmbuild()
        .env("WASMBUILD_ENGINE", "epoch=sometimes")
        .args(["exec", "--image", "base", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WASMBUILD_ENGINE") && stderr.contains("expected on or off"),
        "{stderr}"
    );
}

//! Guests start programs (issue 15): the toolbox's `xargs` and `find -exec` against GNU's
//! (differential: the same script under the host's bash and tools, and in the sandbox),
//! CPython's subprocess, os.system and os.popen, scripts run as programs from a guest and
//! from the build shell, the per-build cap on programs started by programs (a fork bomb
//! fails the build), deadlines reaching children, and bad input getting POSIX statuses.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{ensure_bundle, sandbox_sh, succeeded, wasmbuild};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The same script under the host's bash and GNU tools, in a copy of `src`.
fn host_sh(src: &Path, script: &str) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(src)
        .env("LC_ALL", "C")
        .output()
        .expect("run the host's bash")
}

/// Runs `script` natively and in the sandbox, each in its own copy of the tree `make`
/// builds, and asserts both print the same (stdout and stderr together, as `2>&1`).
fn differential(make: impl Fn(&Path), script: &str) {
    let native = tempfile::tempdir().unwrap();
    let sandboxed = tempfile::tempdir().unwrap();
    make(native.path());
    common::copy_tree(native.path(), sandboxed.path());
    let wrapped = format!("{{\n{script}\n}} 2>&1");
    let expected = host_sh(native.path(), &wrapped);
    let actual = sandbox_sh("base", sandboxed.path(), &[], &wrapped);
    assert_eq!(
        text(&actual.stdout),
        text(&expected.stdout),
        "sandbox stderr:\n{}",
        text(&actual.stderr)
    );
    assert_eq!(actual.status.code(), expected.status.code());
}

#[test]
fn xargs_behaves_as_gnu_xargs() {
    differential(
        |_| {},
        r#"printf 'a b\nc "d e" f\\ g\n' | xargs echo
printf 'a b\nc "d e" f\\ g\n' | xargs -n 2 echo
printf 'a\0b c\0d\0' | xargs -0 -n1 echo X
printf '1\n2\n3\n4\n5\n' | xargs -I{} echo "item {} done"
printf '1\n2\n3\n' | xargs -i echo "[{}]"
printf 'x y\nz \nw\n' | xargs -L 1 echo L
printf 'a,b,c' | xargs -d, -n1 echo D
printf 'a b STOP c\n' | xargs -E STOP echo
printf '' | xargs echo empty
printf '' | xargs -r echo never
printf '1 2 3 4 5 6\n' | xargs -n 2 -P 3 sh -c 'echo "$@" | wc -w' sh | sort
seq 1 40 | xargs -n 1 -P 0 echo | sort -n | tail -1
printf 'a\nb\n' | xargs -t echo T
printf 'a\n' | xargs sh -c 'exit 3'; echo "status $?"
printf 'a\n' | xargs sh -c 'exit 255'; echo "status $?"
printf 'a\n' | xargs no-such-command-x; echo "status $?"
printf "a 'b\n" | xargs echo 2>/dev/null; echo "status $?"
printf "a 'b\n" | xargs echo >/dev/null; echo "status $?"
printf '1\n2\n3\n' | xargs -n1 -P2 --process-slot-var=SLOT sh -c 'echo slot' | sort"#,
    );
}

fn tree(root: &Path) {
    for i in 1..=3 {
        let a = root.join("tree/a");
        let c = root.join("tree/c");
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&c).unwrap();
        fs::write(a.join(format!("f{i}.txt")), format!("file {i}\n")).unwrap();
        fs::write(c.join(format!("g{i}.py")), format!("x{i}\n")).unwrap();
    }
    fs::create_dir_all(root.join("tree/a/b")).unwrap();
    fs::write(root.join("tree/a/b/deep.txt"), "deep\n").unwrap();
}

#[test]
fn find_exec_behaves_as_gnu_find() {
    differential(
        tree,
        r#"find tree -name '*.txt' -exec echo found {} \; | sort
find tree -type f -exec sha256sum {} + | sort
find tree -name '*.py' -exec grep -q x2 {} \; -print
find tree -name '*.txt' -execdir pwd \; | sed 's#.*/tree#tree#' | sort
find tree -type f -exec sh -c 'echo "$#"' sh {} +
find tree -name 'f1*' -exec mv {} {}.bak \; ; ls tree/a | sort
find tree -name '*.py' | xargs wc -l | sort
find tree -type f -print0 | xargs -0 -n 2 echo | wc -l
find tree -name nothing -exec false {} \; ; echo "status $?"
find tree -name '*.py' -exec false {} + ; echo "status $?"
find tree -name '*.py' -exec no-such-cmd {} \; 2>/dev/null; echo "status $?""#,
    );
}

/// A python script run by the build shell in the python image: its stdout, checked to
/// have succeeded.
fn python_script(src: &Path, name: &str, code: &str) -> String {
    fs::write(src.join(name), code).unwrap();
    succeeded(&sandbox_sh("python", src, &[], &format!("python3 {name}")))
}

#[test]
fn python_starts_programs_with_subprocess_os_system_and_os_popen() {
    let src = tempfile::tempdir().unwrap();
    let stdout = python_script(
        src.path(),
        "sp.py",
        r#"import os, shutil, subprocess, sys
def say(*a): print(*a, flush=True)
say("which", shutil.which("ls"), shutil.which("python3"), shutil.which("no-such"))
r = subprocess.run(["echo", "hi"], capture_output=True, text=True)
say("run", repr(r.stdout), r.returncode)
say("env+cwd", subprocess.check_output(["sh", "-c", "echo $FOO; pwd"], env={**os.environ, "FOO": "bar"}, cwd="/tmp"))
r = subprocess.run(["cat"], input=b"x" * 300000, capture_output=True)
say("input", len(r.stdout), r.returncode)
r = subprocess.run("echo out; echo err >&2; exit 4", shell=True, capture_output=True)
say("shell", r.returncode, r.stdout, r.stderr)
r = subprocess.run("echo both; echo err >&2", shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
say("stderr=STDOUT", sorted(r.stdout.split()))
try:
    subprocess.run(["sleep", "30"], timeout=0.5)
except subprocess.TimeoutExpired as e:
    say("timeout", e.timeout)
p = subprocess.Popen(["sleep", "30"]); p.terminate(); say("terminated", p.wait())
try:
    subprocess.run(["no-such-program"])
except FileNotFoundError as e:
    say("not found", e.filename)
try:
    subprocess.check_call(["false"])
except subprocess.CalledProcessError as e:
    say("check_call", e.returncode)
say("system", os.system("echo from system; exit 2"))
with os.popen("echo one; echo two") as f:
    say("popen", f.read().split())
p1 = subprocess.Popen(["seq", "1", "1000"], stdout=subprocess.PIPE)
p2 = subprocess.Popen(["wc", "-l"], stdin=p1.stdout, stdout=subprocess.PIPE)
p1.stdout.close()
say("pipeline", p2.communicate()[0], p1.wait())
with open("out.txt", "w") as f:
    f.write("head\n"); f.flush()
    subprocess.run(["echo", "to file"], stdout=f)
say("file", open("out.txt").read().split("\n"))
with open("out.txt", "a") as f:
    subprocess.run(["echo", "appended"], stdout=f)
say("append", open("out.txt").read().split("\n"))
with open("out.txt", "rb", buffering=0) as f:
    f.readline()
    say("stdin file", subprocess.run(["cat"], stdin=f, capture_output=True).stdout)
say("devnull", subprocess.run(["echo", "gone"], stdout=subprocess.DEVNULL).returncode)
say("python child", subprocess.check_output([sys.executable, "-c", "import sys; print(sys.argv[1:])", "a", "b c"]))
ps = [subprocess.Popen(["sh", "-c", f"sleep 0.{n}; exit {n}"]) for n in (3, 1, 2)]
say("several", [p.wait() for p in ps])
p = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
say("communicate", repr(p.communicate("line\n")[0]))
"#,
    );
    let expected = "which /opt/runtimes/base/bin/ls /opt/runtimes/python/bin/python3 None\n\
        run 'hi\\n' 0\n\
        env+cwd b'bar\\n/tmp\\n'\n\
        input 300000 0\n\
        shell 4 b'out\\n' b'err\\n'\n\
        stderr=STDOUT [b'both', b'err']\n\
        timeout 0.5\n\
        terminated -15\n\
        not found no-such-program\n\
        check_call 1\n\
        from system\n\
        system 512\n\
        popen ['one', 'two']\n\
        pipeline b'1000\\n' 0\n\
        file ['head', 'to file', '']\n\
        append ['head', 'to file', 'appended', '']\n\
        stdin file b'to file\\nappended\\n'\n\
        devnull 0\n\
        python child b\"['a', 'b c']\\n\"\n\
        several [3, 1, 2]\n\
        communicate 'line\\n'\n";
    assert_eq!(stdout, expected);
}

#[test]
fn scripts_run_as_programs_from_the_build_shell_and_from_guests() {
    let src = tempfile::tempdir().unwrap();
    let scripts = [
        ("plain.sh", "echo plain \"$1\"\n"),
        ("bash.sh", "#!/bin/bash\necho bash \"$1\"\n"),
        ("sh.sh", "#!/bin/sh\necho sh \"$1\"\n"),
        (
            "env.py",
            "#!/usr/bin/env python3\nimport sys\nprint('env python', sys.argv[1])\n",
        ),
        (
            "direct.py",
            "#!/opt/runtimes/python/bin/python3\nimport sys\nprint('python', sys.argv[1])\n",
        ),
    ];
    for (name, body) in scripts {
        fs::write(src.path().join(name), body).unwrap();
    }
    let all = "./plain.sh 1; bash bash.sh 2; ./bash.sh 3; ./sh.sh 4; ./env.py 5; ./direct.py 6";
    let from_shell = sandbox_sh("python", src.path(), &[], all);
    let expected = "plain 1\nbash 2\nbash 3\nsh 4\nenv python 5\npython 6\n";
    assert_eq!(
        text(&from_shell.stdout),
        expected,
        "{}",
        text(&from_shell.stderr)
    );
    let from_python = python_script(
        src.path(),
        "run.py",
        r#"import subprocess
for argv in (["./plain.sh", "1"], ["bash", "bash.sh", "2"], ["./bash.sh", "3"], ["./sh.sh", "4"],
             ["./env.py", "5"], ["./direct.py", "6"]):
    print(subprocess.run(argv, capture_output=True, text=True, check=True).stdout, end="")
"#,
    );
    assert_eq!(from_python, expected);
    // And a guest's `sh -c` runs the build shell's interpreter: builtins, pipes, functions.
    let nested = python_script(
        src.path(),
        "nested.py",
        r#"import subprocess
print(subprocess.check_output(["sh", "-c", "f() { echo fn \"$@\"; }; f a b | tr a-z A-Z; ./plain.sh x"], text=True), end="")
"#,
    );
    assert_eq!(nested, "FN A B\nplain x\n");
}

#[test]
fn bad_programs_get_posix_statuses_and_clear_messages() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir(src.path().join("adir")).unwrap();
    fs::write(
        src.path().join("bad.sh"),
        "#!/usr/bin/no-such-interpreter\necho x\n",
    )
    .unwrap();
    fs::write(src.path().join("blob"), b"\x7fELF\x00\x01binary").unwrap();
    let stdout = python_script(
        src.path(),
        "bad.py",
        r#"import os, subprocess
def status(argv):
    r = subprocess.run(argv, capture_output=True, text=True)
    print(argv[-1], r.returncode, r.stderr.strip().splitlines()[-1:] if r.stderr else "")
print("system missing", os.system("no-such-program-x 2>/dev/null") >> 8)
status(["sh", "-c", "./adir"])
status(["sh", "-c", "./bad.sh"])
status(["sh", "-c", "./blob"])
try:
    subprocess.run(["echo", "x" * (3 << 20)])
except OSError as e:
    print("too large", e.strerror)
# A child filling a pipe its parent reads only after waiting: no deadlock.
p = subprocess.Popen(["sh", "-c", "yes | head -c 5000000"], stdout=subprocess.PIPE)
print("waited", p.wait(), len(p.stdout.read()))
# One that never stops, into a pipe never read: it gets EPIPE, the parent goes on.
p = subprocess.Popen(["yes"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
print("flood", p.wait() != 0)
"#,
    );
    assert_eq!(
        stdout,
        "system missing 127\n\
         ./adir 126 ['sh: line 1: ./adir: Is a directory']\n\
         ./bad.sh 126 ['sh: line 1: ./bad.sh: /usr/bin/no-such-interpreter: bad interpreter: No such file or directory']\n\
         ./blob 126 ['sh: line 1: ./blob: cannot execute binary file: Exec format error']\n\
         too large Argument list too long\n\
         waited 0 5000000\n\
         flood True\n"
    );
}

/// `wasmbuild run [OPTIONS]` of a buildspec with these build commands, in the python image.
fn build(src: &Path, options: &[&str], commands: &[&str]) -> Output {
    ensure_bundle("base");
    ensure_bundle("python");
    let list: String = commands.iter().map(|c| format!("      - {c}\n")).collect();
    fs::write(
        src.join("buildspec.yml"),
        format!("version: 0.2\nphases:\n  build:\n    commands:\n{list}"),
    )
    .unwrap();
    wasmbuild()
        .args(["run", "--image", "python"])
        .args(options)
        .arg(src)
        .timeout(Duration::from_secs(600))
        .output()
        .expect("run wasmbuild run")
}

#[test]
fn a_fork_bomb_fails_the_build_with_a_clear_error() {
    let src = tempfile::tempdir().unwrap();
    fs::write(
        src.path().join("bomb.py"),
        "import subprocess, sys\n\
         ps = [subprocess.Popen([sys.executable, 'bomb.py']) for _ in range(2)]\n\
         for p in ps: p.wait()\n",
    )
    .unwrap();
    let out = build(src.path(), &[], &["python3 bomb.py"]);
    let log = text(&out.stdout) + &text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("Phase complete: BUILD State: FAILED"), "{log}");
    assert!(
        log.contains(
            "wasmbuild: too many processes started by programs (limit 64, WASMBUILD_MAX_CHILDREN)"
        ),
        "{log}"
    );
    assert!(log.contains("BlockingIOError"), "{log}");
    // The shell's own: `f(){ f|f& }; f` from a guest's `sh -c`.
    let out = build(
        src.path(),
        &[],
        &["python3 -c \"import os; os.system('f(){ f|f& }; f')\""],
    );
    let log = text(&out.stdout) + &text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("wasmbuild: too many processes"), "{log}");
}

#[test]
fn a_build_timeout_reaches_every_child() {
    let src = tempfile::tempdir().unwrap();
    fs::write(
        src.path().join("wait.py"),
        "import subprocess\n\
         print('started', flush=True)\n\
         subprocess.run(['sh', '-c', 'sleep 300 | sleep 300'])\n\
         print('never')\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let out = build(src.path(), &["--timeout", "0.05"], &["python3 wait.py"]);
    let log = text(&out.stdout) + &text(&out.stderr);
    assert!(log.contains("started"), "{log}");
    assert!(!log.contains("never"), "{log}");
    assert!(log.contains("TIMED_OUT"), "{log}");
    // Every child stopped with it: nothing kept the build alive to the sleeps' end.
    assert!(started.elapsed() < Duration::from_secs(120));
}

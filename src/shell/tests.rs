//! Unit tests of the interpreter against a test double of the program host: a handful of
//! coreutils written in Rust (`cat`, `wc`, `seq`, `yes`, `head`, `env`, …) so expansion,
//! control flow and pipelines can be checked without the sandbox.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::fs::{GuestFs, normalize};
use super::host::{HostError, Invocation, Program, ProgramHost};
use super::{Session, ShellError, Stdio};
use crate::sandbox::layout::{Layout, Mount, SRC_DIR};

/// A test double of the sandbox: programs implemented natively, reading files through the
/// same `GuestFs` the shell uses.
struct TestDoubleHost {
    fs: GuestFs,
}

const PROGRAMS: &[&str] = &[
    "cat", "wc", "seq", "yes", "head", "env", "printenv", "sleep", "tr", "sort", "argv",
];

impl ProgramHost for TestDoubleHost {
    fn has_program(&self, name: &str) -> bool {
        PROGRAMS.contains(&name)
    }

    fn program_path(&self, name: &str) -> Option<String> {
        self.has_program(name)
            .then(|| format!("/opt/runtimes/test/bin/{name}"))
    }

    fn run(&self, program: Program, mut inv: Invocation) -> Result<i32, HostError> {
        let Program::Image(name) = program else {
            writeln!(inv.stderr, "modules are not run by the test double").ok();
            return Ok(126);
        };
        let args: Vec<String> = inv.argv[1..].to_vec();
        let result: std::io::Result<i32> = (|| match name.as_str() {
            "cat" => {
                if args.is_empty() {
                    std::io::copy(&mut inv.stdin, &mut inv.stdout)?;
                }
                for file in &args {
                    match self.fs.open_read(&normalize(&inv.cwd, file)) {
                        Ok(mut f) => {
                            std::io::copy(&mut f, &mut inv.stdout)?;
                        }
                        Err(_) => {
                            writeln!(inv.stderr, "cat: {file}: No such file or directory")?;
                            return Ok(1);
                        }
                    }
                }
                Ok(0)
            }
            "wc" => {
                let mut bytes = 0u64;
                let mut lines = 0u64;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = inv.stdin.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    bytes += n as u64;
                    lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
                }
                let n = if args.first().is_some_and(|a| a == "-l") {
                    lines
                } else {
                    bytes
                };
                writeln!(inv.stdout, "{n}")?;
                Ok(0)
            }
            "seq" => {
                let nums: Vec<i64> = args.iter().filter_map(|a| a.parse().ok()).collect();
                let (from, to) = match nums.as_slice() {
                    [to] => (1, *to),
                    [from, to, ..] => (*from, *to),
                    _ => return Ok(1),
                };
                for i in from..=to {
                    writeln!(inv.stdout, "{i}")?;
                }
                Ok(0)
            }
            "yes" => {
                let line = format!("{}\n", args.first().map_or("y", String::as_str)).repeat(512);
                loop {
                    if inv.stdout.write_all(line.as_bytes()).is_err() {
                        return Ok(141);
                    }
                }
            }
            "head" => {
                let n: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
                if args.first().is_some_and(|a| a == "-c") {
                    std::io::copy(&mut (&mut inv.stdin).take(n), &mut inv.stdout)?;
                } else {
                    let mut out = Vec::new();
                    let mut byte = [0u8; 1];
                    let mut lines = 0;
                    while lines < n && inv.stdin.read(&mut byte)? == 1 {
                        out.push(byte[0]);
                        if byte[0] == b'\n' {
                            lines += 1;
                        }
                    }
                    inv.stdout.write_all(&out)?;
                }
                Ok(0)
            }
            "env" => {
                for (k, v) in &inv.env {
                    writeln!(inv.stdout, "{k}={v}")?;
                }
                Ok(0)
            }
            "printenv" => match inv.env.iter().find(|(k, _)| Some(k) == args.first()) {
                Some((_, v)) => {
                    writeln!(inv.stdout, "{v}")?;
                    Ok(0)
                }
                None => Ok(1),
            },
            "sleep" => {
                let secs: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0.0);
                std::thread::sleep(std::time::Duration::from_secs_f64(secs));
                Ok(0)
            }
            "tr" => {
                let mut text = String::new();
                inv.stdin.read_to_string(&mut text)?;
                let (from, to) = (args[0].chars().next(), args[1].chars().next());
                if let (Some(f), Some(t)) = (from, to) {
                    text = text.replace(f, &t.to_string());
                }
                inv.stdout.write_all(text.as_bytes())?;
                Ok(0)
            }
            "sort" => {
                let mut text = String::new();
                inv.stdin.read_to_string(&mut text)?;
                let mut lines: Vec<&str> = text.lines().collect();
                lines.sort();
                for line in lines {
                    writeln!(inv.stdout, "{line}")?;
                }
                Ok(0)
            }
            "argv" => {
                for arg in &args {
                    writeln!(inv.stdout, "<{arg}>")?;
                }
                Ok(0)
            }
            _ => Ok(127),
        })();
        Ok(result.unwrap_or(1))
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    session: Session,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout {
            mounts: vec![Mount {
                guest: SRC_DIR.into(),
                host: dir.path().into(),
                writable: true,
            }],
        };
        let fs = GuestFs::open(&layout).unwrap();
        let host = Arc::new(TestDoubleHost { fs: fs.clone() });
        let env = vec![
            ("HOME".to_owned(), "/root".to_owned()),
            ("PATH".to_owned(), "/opt/runtimes/test/bin".to_owned()),
        ];
        let session = Session::new(host, fs, env, SRC_DIR.into());
        Fixture { dir, session }
    }

    fn run(&mut self, script: &str) -> (String, String, i32) {
        let (out, err) = (Buffer::default(), Buffer::default());
        let stdio = Stdio::new(Box::new(out.clone()), Box::new(err.clone()));
        let status = self.session.run_script(script, "test.sh", stdio).unwrap();
        (out.text(), err.text(), status)
    }
}

/// Runs a script in a fresh session; stdout and status.
fn sh(script: &str) -> (String, i32) {
    let (out, _, status) = Fixture::new().run(script);
    (out, status)
}

fn out(script: &str) -> String {
    sh(script).0
}

#[test]
fn quoting_inside_command_substitution() {
    assert_eq!(out(r#"echo "$(echo "a  b")""#), "a  b\n");
    assert_eq!(out(r#"echo $(echo "a  b")"#), "a b\n");
    assert_eq!(
        out(r#"x="$(printf '%s' "it's \"q\"")"; echo "$x""#),
        "it's \"q\"\n"
    );
    assert_eq!(
        out(r#"echo "$(echo "$(echo nested "deep")")""#),
        "nested deep\n"
    );
    assert_eq!(out("echo `echo \\$HOME` `echo \\\\$HOME`"), "/root $HOME\n");
    assert_eq!(out("x=$(printf 'a\\n\\n\\n'); echo \"[$x]\""), "[a]\n");
    assert_eq!(out("echo \"$(echo ')')\""), ")\n");
}

#[test]
fn empty_and_full_positional_parameters() {
    let count = "n() { echo $#; };";
    assert_eq!(out(&format!("{count} set --; n \"$@\"")), "0\n");
    assert_eq!(out(&format!("{count} set --; n \"$@\" x")), "1\n");
    assert_eq!(out(&format!("{count} set --; n \"$*\"")), "1\n");
    assert_eq!(out(&format!("{count} set --; n \"x$@\"")), "1\n");
    assert_eq!(
        out(&format!("{count} set -- 'a b' c; n \"$@\"; n $@; n \"$*\"")),
        "2\n3\n1\n"
    );
    assert_eq!(
        out(&format!("{count} set -- '' ''; n \"$@\"; n $@")),
        "2\n0\n"
    );
    assert_eq!(out("set -- a 'b c'; IFS=,; echo \"$*\""), "a,b c\n");
    assert_eq!(
        out("set -- a b c; for x in \"$@\"; do echo \"<$x>\"; done"),
        "<a>\n<b>\n<c>\n"
    );
    assert_eq!(out("set -- a b c d; echo ${@:2:2} $#"), "b c 4\n");
}

#[test]
fn ifs_field_splitting() {
    let count = "n() { echo $#; };";
    assert_eq!(out(&format!("{count} x='  a   b  '; n $x")), "2\n");
    assert_eq!(out(&format!("{count} IFS=:; x='a::b'; n $x")), "3\n");
    assert_eq!(out(&format!("{count} IFS=:; x='a:b:'; n $x")), "2\n");
    assert_eq!(out(&format!("{count} IFS=' :'; x=' a : b '; n $x")), "2\n");
    assert_eq!(out(&format!("{count} x=' '; n \"\"$x; n $x\"\"")), "1\n1\n");
    assert_eq!(out(&format!("{count} x='a '; n $x\"\"")), "2\n");
    assert_eq!(out(&format!("{count} IFS=; x='a b'; n $x")), "1\n");
    assert_eq!(out(&format!("{count} unset IFS; x='a\tb\nc'; n $x")), "3\n");
    assert_eq!(
        out(&format!("{count} x='a:b'; IFS=:; n a:b; n $x")),
        "1\n2\n"
    );
}

#[test]
fn parameter_operators() {
    assert_eq!(out("unset x; echo ${x:-d} ${x-d} [${x:+a}]"), "d d []\n");
    assert_eq!(
        out("x=; echo [${x:-d}] [${x-d}] [${x:+a}] [${x+a}]"),
        "[d] [] [] [a]\n"
    );
    assert_eq!(out("echo ${x:=set}; echo $x"), "set\nset\n");
    assert_eq!(out("x=hello; echo ${#x}"), "5\n");
    assert_eq!(
        out("p=a/b/c.tar.gz; echo ${p%.*} ${p%%.*} ${p#*/} ${p##*/}"),
        "a/b/c.tar a/b/c b/c.tar.gz c.tar.gz\n"
    );
    assert_eq!(
        out("x=aXbXc; echo ${x/X/-} ${x//X/-} ${x/#a/A} ${x/%c/C}"),
        "a-bXc a-b-c AXbXc aXbXC\n"
    );
    assert_eq!(
        out("x=abcdef; echo ${x:2} ${x:1:3} ${x: -2} ${x:0:-2}"),
        "cdef bcd ef abcd\n"
    );
    assert_eq!(
        out("x=hello; echo ${x^} ${x^^} ${x,,}"),
        "Hello HELLO hello\n"
    );
    assert_eq!(
        out("x='a*b*c'; echo \"${x%\"*\"*}\" \"${x%%\"*\"*}\""),
        "a*b a\n"
    );
    assert_eq!(out("y=x; x=1; echo ${!y}"), "1\n");
    assert_eq!(out("x='a b'; echo ${x:+\"$x\"}"), "a b\n");
    let (stdout, err, status) = Fixture::new().run("echo ${x:?is required}; echo after");
    assert_eq!((stdout.as_str(), status), ("", 1));
    assert!(err.contains("x: is required"), "{err}");
}

#[test]
fn arithmetic() {
    assert_eq!(
        out("echo $((1 + 2 * 3)) $(( (1+2)*3 )) $((7 / 2)) $((7 % 3)) $((2 ** 10))"),
        "7 9 3 1 1024\n"
    );
    assert_eq!(
        out("x=5; echo $((x + 1)) $(($x * 2)); ((x++)); echo $x"),
        "6 10\n6\n"
    );
    assert_eq!(
        out("echo $((0x10)) $((010)) $((2#101)) $((-3 / 2)) $((1 < 2 && 3 > 4))"),
        "16 8 5 -1 0\n"
    );
    assert_eq!(
        out("a=3; b=a; echo $((b + 1)) $((a > 2 ? 10 : 20))"),
        "4 10\n"
    );
    assert_eq!(
        out("i=0; while ((i < 3)); do echo $i; ((i += 1)); done"),
        "0\n1\n2\n"
    );
    assert_eq!(
        out("for ((i=0; i<3; i++)); do printf %s $i; done; echo"),
        "012\n"
    );
    assert_eq!(sh("echo $((1 / 0)); echo after"), (String::new(), 1));
    assert_eq!(sh("(( 0 )); echo $?"), ("1\n".into(), 0));
    assert_eq!(out("echo $(( ~5 ))"), "-6\n");
}

#[test]
fn pipelines_stream_and_report_the_last_status() {
    assert_eq!(out("seq 5 | wc -l"), "5\n");
    assert_eq!(out("yes | head -c 3000000 | wc -c"), "3000000\n");
    assert_eq!(sh("false | true").1, 0);
    assert_eq!(sh("set -o pipefail; false | true").1, 1);
    assert_eq!(out("echo a | { read x; echo got $x; }"), "got a\n");
    assert_eq!(out("x=1; echo | x=2; echo $x"), "1\n");
    assert_eq!(out("! false; echo $?; ! true; echo $?"), "0\n1\n");
    assert_eq!(
        out("seq 3 | while read n; do echo n$n; done"),
        "n1\nn2\nn3\n"
    );
}

#[test]
fn errexit_with_bash_exceptions() {
    assert_eq!(sh("set -e; false; echo no"), (String::new(), 1));
    assert_eq!(out("set -e; if false; then :; fi; echo yes"), "yes\n");
    assert_eq!(
        out("set -e; false || echo or; false && echo no; echo end"),
        "or\nend\n"
    );
    assert_eq!(out("set -e; ! true; echo bang"), "bang\n");
    assert_eq!(out("set -e; x=$(false; echo in); echo \"$x\""), "in\n");
    assert_eq!(sh("set -e; x=$(false); echo no").1, 1);
    assert_eq!(
        out("set -e; f() { false; echo inside; }; f || echo failed"),
        "inside\n"
    );
    assert_eq!(
        sh("set -e; f() { false; echo inside; }; f; echo no"),
        (String::new(), 1)
    );
    assert_eq!(sh("set -e; (false); echo no").1, 1);
    assert_eq!(out("set -e; while false; do :; done; echo loop"), "loop\n");
}

#[test]
fn subshells_groups_functions_and_locals() {
    assert_eq!(
        out("x=1; (x=2; cd /; echo $x $PWD); echo $x $PWD"),
        "2 /\n1 /codebuild/output/src\n"
    );
    assert_eq!(out("x=1; { x=2; }; echo $x"), "2\n");
    assert_eq!(
        out("f() { local x=in; echo $x; g; }; g() { echo g$x; }; x=out; f; echo $x"),
        "in\ngin\nout\n"
    );
    assert_eq!(out("f() { return 3; echo no; }; f; echo $?"), "3\n");
    assert_eq!(out("f() { echo $1 $#; }; f a b; echo $#"), "a 2\n0\n");
    assert_eq!(out("(exit 4); echo $?"), "4\n");
    assert_eq!(sh("exit 5; echo no"), (String::new(), 5));
}

#[test]
fn loops_case_and_conditionals() {
    assert_eq!(
        out("for i in 1 2 3; do if [ $i = 2 ]; then continue; fi; echo $i; done"),
        "1\n3\n"
    );
    assert_eq!(
        out("for i in 1 2; do for j in a b; do break 2; done; done; echo $i$j"),
        "1a\n"
    );
    assert_eq!(
        out("i=0; until [ $i -ge 2 ]; do i=$((i+1)); done; echo $i"),
        "2\n"
    );
    assert_eq!(
        out("case foo.txt in *.md) echo md;; *.txt|*.TXT) echo txt;; esac"),
        "txt\n"
    );
    assert_eq!(
        out("case x in x) echo a;& y) echo b;; z) echo c;; esac"),
        "a\nb\n"
    );
    assert_eq!(
        out("case '*' in \\*) echo star;; esac; case a in '*') echo no;; *) echo any;; esac"),
        "star\nany\n"
    );
    assert_eq!(
        out("if [ -z \"\" ] && [ abc != abd ]; then echo ok; elif true; then echo no; fi"),
        "ok\n"
    );
    assert_eq!(
        out("[[ abc == a* ]] && echo glob; [[ abc == \"a*\" ]] || echo literal"),
        "glob\nliteral\n"
    );
    assert_eq!(
        out("[[ v1.2.3 =~ ^v([0-9]+)\\.([0-9]+) ]] && echo ${BASH_REMATCH[2]}"),
        "2\n"
    );
    assert_eq!(
        out("[ 10 -gt 9 ]; echo $?; test 2 -lt 1; echo $?; [ a = a -a b = b ]; echo $?"),
        "0\n1\n0\n"
    );
}

#[test]
fn redirections_go_through_the_guest_filesystem() {
    let mut f = Fixture::new();
    let (_, _, status) = f.run("echo one > a.txt; echo two >> a.txt; cat < a.txt > b.txt");
    assert_eq!(status, 0);
    assert_eq!(
        std::fs::read_to_string(f.dir.path().join("b.txt")).unwrap(),
        "one\ntwo\n"
    );
    let (stdout, _, _) = f.run("{ echo out; echo err >&2; } 2>&1 > c.txt | cat; cat c.txt");
    assert_eq!(stdout, "err\nout\n");
    let (stdout, _, _) = f.run("echo gone 2>/dev/null >/dev/null; echo hidden &> d.txt; cat d.txt");
    assert_eq!(stdout, "hidden\n");
    let (_, err, status) = f.run("echo x > /etc/passwd");
    assert_eq!(status, 1);
    assert!(
        err.contains("/etc/passwd: No such file or directory"),
        "{err}"
    );
    let (stdout, _, _) =
        f.run("x=v; cat <<EOF\na $x\n\\$x\nEOF\ncat <<'EOF'\nb $x\nEOF\ncat <<-EOF\n\tc\n\tEOF\n");
    assert_eq!(stdout, "a v\n$x\nb $x\nc\n");
    let (stdout, _, _) = f.run("read a b <<< 'one two three'; echo $b");
    assert_eq!(stdout, "two three\n");
    let (stdout, _, _) = f.run("exec 3> e.txt; echo three >&3; exec 3>&-; cat e.txt");
    assert_eq!(stdout, "three\n");
}

#[test]
fn globbing_is_sorted_and_keeps_unmatched_patterns() {
    let mut f = Fixture::new();
    for name in ["b.txt", "a.txt", ".hidden.txt", "c.md"] {
        std::fs::write(f.dir.path().join(name), "").unwrap();
    }
    std::fs::create_dir(f.dir.path().join("sub")).unwrap();
    std::fs::write(f.dir.path().join("sub/x.txt"), "").unwrap();
    let (stdout, _, _) =
        f.run("echo *.txt; echo *.none; echo '*.txt'; echo */*.txt; echo s*/; echo [ab].*");
    assert_eq!(
        stdout,
        "a.txt b.txt\n*.none\n*.txt\nsub/x.txt\nsub/\na.txt b.txt\n"
    );
    let (stdout, _, _) = f.run("echo /codebuild/output/src/*.md; set -f; echo *.md");
    assert_eq!(stdout, "/codebuild/output/src/c.md\n*.md\n");
}

#[test]
fn command_lookup_and_scripts_by_path() {
    let mut f = Fixture::new();
    let (_, err, status) = f.run("no-such-tool --flag");
    assert_eq!(status, 127);
    assert!(err.contains("no-such-tool: command not found"), "{err}");
    std::fs::write(
        f.dir.path().join("s.sh"),
        "#!/bin/bash\necho \"script $1 $X\"\nexit 3\n",
    )
    .unwrap();
    let (stdout, _, status) = f.run("X=exported ./s.sh arg; echo $?");
    assert_eq!((stdout.as_str(), status), ("script arg exported\n3\n", 0));
    std::fs::write(
        f.dir.path().join("plain"),
        "echo no shebang; f 2>/dev/null || echo isolated\n",
    )
    .unwrap();
    let (stdout, _, _) = f.run("f() { :; }; ./plain");
    assert_eq!(stdout, "no shebang\nisolated\n");
    let (stdout, _, _) = f.run(
        "bash -c 'echo $0 $1; exit 4' zero one; echo $?; sh s.sh x; echo 'echo from-stdin' | sh",
    );
    assert_eq!(stdout, "zero one\n4\nscript x \nfrom-stdin\n");
    let (stdout, _, _) =
        f.run("bash -e -c 'false; echo no'; echo $?; bash -o pipefail -c 'false | true'; echo $?");
    assert_eq!(stdout, "1\n1\n");
    std::fs::write(f.dir.path().join("bin.dat"), b"\x7fELF\x00\x01").unwrap();
    assert_eq!(f.run("./bin.dat").2, 126);
    assert_eq!(f.run("./missing.sh").2, 127);
    let (stdout, _, _) = f.run("type cat; command -v echo; type -t f");
    assert!(
        stdout.starts_with("cat is /opt/runtimes/test/bin/cat\necho\n"),
        "{stdout}"
    );
    std::fs::write(
        f.dir.path().join("lib.sh"),
        "LIBVAR=loaded; libf() { echo in lib $1; }\n",
    )
    .unwrap();
    let (stdout, _, _) = f.run(". ./lib.sh; echo $LIBVAR; libf x; source lib.sh; echo ok");
    assert_eq!(stdout, "loaded\nin lib x\nok\n");
}

#[test]
fn session_keeps_state_and_exports_only_exported_variables() {
    let mut f = Fixture::new();
    f.run("mkdir_like() { :; }; A=shell; export B=exported; cd /tmp 2>/dev/null; cd ..; set -e");
    assert_eq!(f.session.cwd(), "/codebuild/output");
    assert!(f.session.options().errexit);
    let (stdout, _, _) = f.run("env");
    assert!(stdout.contains("B=exported\n"), "{stdout}");
    assert!(!stdout.contains("A=shell"), "{stdout}");
    assert!(stdout.contains("PWD=/codebuild/output\n"), "{stdout}");
    let (stdout, _, _) = f.run("echo $A; type -t mkdir_like");
    assert_eq!(stdout, "shell\nfunction\n");
    let (stdout, _, _) = f.run("X=only-here printenv X; printenv X || echo unset");
    assert_eq!(stdout, "only-here\nunset\n");
    assert_eq!(f.run("exit 7").2, 7);
    assert_eq!(f.session.exited(), Some(7));
    assert_eq!(f.run("true").2, 0);
    assert_eq!(f.session.exited(), None);
}

#[test]
fn builtins_read_printf_echo_set() {
    assert_eq!(out("printf '%s=%d\\n' a 1 b 2"), "a=1\nb=2\n");
    assert_eq!(out("printf -v v '%05.1f' 3.14159; echo $v"), "003.1\n");
    assert_eq!(
        out("echo -n a; echo -e 'b\\tc'; echo -E 'd\\n'"),
        "ab\tc\nd\\n\n"
    );
    assert_eq!(
        out("IFS=: read -r a b c <<< 'x:y:z:w'; echo $a-$b-$c"),
        "x-y-z:w\n"
    );
    assert_eq!(
        out("read -r line <<< 'a\\b'; echo \"$line\"; read line <<< 'a\\b'; echo \"$line\""),
        "a\\b\nab\n"
    );
    assert_eq!(
        out("set -- a b c; shift; echo $@; shift 2; echo $#"),
        "b c\n0\n"
    );
    assert_eq!(
        out("set -u; x=1; echo $x; echo ${y:-default}"),
        "1\ndefault\n"
    );
    assert_eq!(sh("set -u; echo $nope; echo after").1, 1);
    let mut f = Fixture::new();
    f.session.set_command_string_mode(true);
    assert_eq!(f.run("set -u; echo $nope; echo after").2, 127);
    assert_eq!(out("eval 'x=1; echo $x'; eval echo \\$x"), "1\n1\n");
    assert_eq!(
        out("while getopts 'ab:' o -a -b val rest; do echo $o$OPTARG; done"),
        "a\nbval\n"
    );
    assert_eq!(out("x=1; unset x; echo ${x-unset}"), "unset\n");
    assert_eq!(sh("readonly r=1; r=2; echo no"), (String::new(), 1));
    assert_eq!(out("readonly r=1; r=2 echo runs; echo $r"), "runs\n1\n");
    assert_eq!(out("let 'a = 2 * 3'; echo $a"), "6\n");
    assert_eq!(
        out("enable -n echo; echo x 2>/dev/null; printf '%s\\n' $?; enable echo; echo back"),
        "127\nback\n"
    );
}

#[test]
fn xtrace_prints_expanded_commands_to_stderr() {
    let (stdout, err, _) = Fixture::new().run("set -x; x='a b'; echo $x \"$x\"");
    assert_eq!(stdout, "a b a b\n");
    assert!(err.contains("+ x='a b'\n+ echo a b 'a b'\n"), "{err}");
}

#[test]
fn background_jobs_and_wait() {
    assert_eq!(
        out("{ sleep 0.05; echo late; } & echo early; wait; echo done"),
        "early\nlate\ndone\n"
    );
}

#[test]
fn cancel_flag_stops_the_session() {
    let mut f = Fixture::new();
    let flag = Arc::new(AtomicBool::new(false));
    f.session.set_cancel_flag(flag.clone());
    flag.store(true, Ordering::Relaxed);
    let stdio = Stdio::new(Box::new(std::io::sink()), Box::new(std::io::sink()));
    let result = f.session.run_script("while true; do :; done", "t", stdio);
    assert!(matches!(result, Err(ShellError::Interrupted)), "{result:?}");
}

#[test]
fn syntax_errors_are_reported_before_running() {
    let mut f = Fixture::new();
    let stdio = Stdio::new(Box::new(Buffer::default()), Box::new(std::io::sink()));
    let result = f
        .session
        .run_script("echo first\nif then fi\n", "build.sh", stdio);
    match result {
        Err(e @ ShellError::Syntax { line: 2, .. }) => assert_eq!(e.exit_status(), 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn exit_trap_runs_at_finish() {
    let mut f = Fixture::new();
    f.run("trap 'echo bye' EXIT; echo hi");
    let buffer = Buffer::default();
    let status = f
        .session
        .finish(Stdio::new(
            Box::new(buffer.clone()),
            Box::new(std::io::sink()),
        ))
        .unwrap();
    assert_eq!((buffer.text().as_str(), status), ("bye\n", 0));
}

// Limits (issue 13, items 7-9 and deliver 4): runaways end with a message and a status,
// never by crashing the host process.

fn with_limits(limits: super::ShellLimits) -> Fixture {
    let mut f = Fixture::new();
    f.session.set_limits(limits);
    f
}

#[test]
fn function_recursion_stops_at_the_limit_through_heavy_frames() {
    // Each level goes through a loop, an `if`, a `case` and a group: the deepest stack per
    // function call the interpreter makes, at the full limit of 1000.
    let (out, err, status) = Fixture::new()
        .run("f(){ while :; do if :; then case a in a) { f; } ;; esac; fi; done; }; f; echo after");
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("f: maximum function nesting level exceeded (1000)"),
        "{err}"
    );
    assert!(!out.contains("after"), "{out}");
}

#[test]
fn eval_and_source_recursion_stop_at_the_nesting_limit() {
    let (_, err, status) = Fixture::new().run(r#"x='eval "$x"'; eval "$x"; echo after"#);
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("eval: maximum nesting level exceeded (100)"),
        "{err}"
    );

    let mut f = Fixture::new();
    std::fs::write(f.dir.path().join("self.sh"), ". ./self.sh\necho after\n").unwrap();
    let (out, err, status) = f.run(". ./self.sh");
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("maximum nesting level exceeded (100)"),
        "{err}"
    );
    assert!(!out.contains("after"), "{out}");

    let mut f = Fixture::new();
    std::fs::write(f.dir.path().join("self.sh"), "./self.sh\necho after $?\n").unwrap();
    let (out, err, status) = f.run("sh ./self.sh; echo status $?");
    assert!(
        err.contains("maximum nesting level exceeded (100)"),
        "{err}"
    );
    assert!(!out.contains("after"), "{out}");
    assert_eq!(status, 1, "{out}");
}

#[test]
fn the_deepest_mix_of_functions_and_evals_fits_the_stack() {
    // 999 heavy function frames, then nested evals, substitutions and sources to the limit.
    let mut f = Fixture::new();
    std::fs::write(f.dir.path().join("s.sh"), r#"echo $(eval "$x")"#).unwrap();
    let (_, err, status) = f.run(
        r#"x='. ./s.sh'
g(){ while :; do if [ "$1" -lt 998 ]; then case a in a) { g $(($1+1)); } ;; esac; else eval "$x"; fi; done; }
g 0"#,
    );
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("maximum nesting level exceeded (100)"),
        "{err}"
    );
}

#[test]
fn a_fork_bomb_fails_at_the_process_limit() {
    let mut f = with_limits(super::ShellLimits {
        max_processes: 16,
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let err = Buffer::default();
    let stdio = Stdio::new(Box::new(std::io::sink()), Box::new(err.clone()));
    let status = f
        .session
        .run_script("f(){ f | f & }; f; wait", "t", stdio)
        .unwrap();
    // The script itself may end before its jobs go over the limit; the end of the phase
    // reports it then.
    let stopped = f.session.stop_jobs();
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(status == 0 || status == 126, "{status}");
    let err = err.text();
    assert_eq!(
        err.matches("wasmbuild: too many processes (limit 16)")
            .count(),
        1,
        "{err}"
    );
    assert_eq!(
        stopped.error.as_deref(),
        Some("wasmbuild: too many processes (limit 16)")
    );
    // A script that trips the limit itself fails with it.
    let (_, err, status) = f.run("f(){ f | f; }; f; echo after");
    assert_eq!(status, 126, "{err}");
    assert!(
        err.contains("wasmbuild: too many processes (limit 16)"),
        "{err}"
    );
    assert!(f.session.stop_jobs().error.is_some());
    // The session is usable again afterwards.
    let (out, _, status) = f.run("echo a | cat; echo b & wait");
    assert_eq!((out.as_str(), status), ("a\nb\n", 0));
}

#[test]
fn jobs_of_subshells_are_stopped_at_the_end_of_a_phase() {
    let mut f = with_limits(super::ShellLimits {
        job_grace: std::time::Duration::from_millis(100),
        ..Default::default()
    });
    let (_, _, status) = f.run("( while :; do :; done & ); { while :; do :; done; } &");
    assert_eq!(status, 0);
    let started = std::time::Instant::now();
    let stopped = f.session.stop_jobs();
    assert_eq!(stopped.stopped, 2);
    assert_eq!(stopped.error, None);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let (out, _, status) = f.run("echo still");
    assert_eq!((out.as_str(), status), ("still\n", 0));
}

fn small_limits() -> super::ShellLimits {
    super::ShellLimits {
        max_capture_bytes: 1 << 20,
        max_expansion_bytes: 4 << 20,
        max_expansion_words: 100_000,
        ..Default::default()
    }
}

#[test]
fn a_command_substitution_stops_at_its_byte_limit() {
    let mut f = with_limits(small_limits());
    let (out, err, status) = f.run("x=$(yes); echo after");
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("wasmbuild: command substitution output too large (limit 1048576 bytes)"),
        "{err}"
    );
    assert!(!out.contains("after"));
    // A builtin producer ends as by SIGPIPE.
    let (_, err, status) = f.run("x=$(while :; do echo yyyyyyyy; done); echo after");
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("output too large"), "{err}");
    // Under the limit nothing changes.
    let (out, _, status) = f.run("x=$(yes | head -n 3); echo $x");
    assert_eq!((out.as_str(), status), ("y y y\n", 0));
}

#[test]
fn brace_expansion_past_its_limit_is_an_error_not_a_truncation() {
    let mut f = with_limits(small_limits());
    let (out, err, status) = f.run("echo {1..2000}{1..2000}{1..2000}; echo after");
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("brace expansion too large (limit 100000 words)"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
    let (_, err, status) = f.run("echo {1..2000000}");
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("brace expansion too large"), "{err}");
    let (_, err, status) = f.run("echo {-9223372036854775807..9223372036854775807}");
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("brace expansion too large"), "{err}");
    // Numbers the parser cannot read leave the word as it is, as in bash; no crash.
    let (out, _, status) = f.run("echo {1..99999999999999999999}; echo ok");
    assert_eq!(status, 0);
    assert!(out.ends_with("ok\n"), "{out}");
    // Under the limit: every word, none lost.
    let (out, _, status) = f.run("set -- {1..100000}; echo $#");
    assert_eq!((out.trim(), status), ("100000", 0));
}

#[test]
fn doubling_a_variable_stops_at_the_expansion_limit() {
    let mut f = with_limits(small_limits());
    let (out, err, status) = f.run("x=a; while :; do x=$x$x; done; echo after");
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("wasmbuild: expansion too large (limit 4194304 bytes)"),
        "{err}"
    );
    assert!(!out.contains("after"));
    let (_, err, status) = f.run("x=$(printf '%1000000s' a); y=${x// /$x}");
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("expansion too large"), "{err}");
    let (_, err, status) = f.run(r#"x=$(printf '%1000000s' a); echo "$x" "$x" "$x" "$x" "$x""#);
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("expansion too large"), "{err}");
}

#[test]
fn reading_an_endless_line_stops_at_the_limit() {
    let mut f = with_limits(small_limits());
    let (_, err, status) = f.run("read x < /dev/zero; echo $?");
    assert!(err.contains("line too long (limit 4194304 bytes)"), "{err}");
    assert_eq!(status, 0);
}

#[test]
fn an_endless_builtin_loop_stops_when_the_session_is_cancelled() {
    let mut f = Fixture::new();
    let flag = Arc::new(AtomicBool::new(false));
    f.session.set_cancel_flag(flag.clone());
    let raise = flag.clone();
    let timer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        raise.store(true, Ordering::Relaxed);
    });
    let started = std::time::Instant::now();
    let stdio = Stdio::new(Box::new(std::io::sink()), Box::new(std::io::sink()));
    let result = f.session.run_script("while :; do :; done", "t", stdio);
    timer.join().unwrap();
    assert!(matches!(result, Err(ShellError::Interrupted)), "{result:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn printf_refuses_a_huge_field_width() {
    let (text, err, status) = Fixture::new().run("printf '%*s' 2000000000 x; echo \" $?\"");
    assert!(
        err.contains("printf: field width or precision too large (limit 1048576)"),
        "{err}"
    );
    assert_eq!(status, 0);
    assert!(text.ends_with(" 1\n"), "{}", text.len());
    assert_eq!(out(r#"printf '%.s|%5s|%-3s|' a b c"#), "|    b|c  |");
}

#[test]
fn a_quadratic_pattern_operation_stops_when_the_session_is_cancelled() {
    let mut f = Fixture::new();
    let flag = Arc::new(AtomicBool::new(false));
    f.session.set_cancel_flag(flag.clone());
    let raise = flag.clone();
    let timer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        raise.store(true, Ordering::Relaxed);
    });
    let started = std::time::Instant::now();
    let stdio = Stdio::new(Box::new(std::io::sink()), Box::new(std::io::sink()));
    // Minutes of work for the naive longest-match search if nothing stopped it.
    let result = f.session.run_script(
        "x=$(printf '%200000s' b); y=${x//*a/c}; z=${x%%*a}",
        "t",
        stdio,
    );
    timer.join().unwrap();
    assert!(matches!(result, Err(ShellError::Interrupted)), "{result:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn deep_syntax_is_refused_before_it_overflows_a_stack() {
    let deep = format!("{}echo deep; {}", "{ ".repeat(1500), "} ".repeat(1500));
    let mut f = Fixture::new();
    let stdio = Stdio::new(Box::new(std::io::sink()), Box::new(std::io::sink()));
    match f.session.run_script(&deep, "t", stdio) {
        Err(ShellError::Syntax { message, .. }) => {
            assert!(
                message.contains("nesting too deep (limit 1000 levels)"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Nesting built at run time: expressions, test arguments, eval and functions.
    let (_, err, status) =
        Fixture::new().run("x=$(printf '(%.0s' $(seq 1 100000)); echo $(( ${x}1 )); echo after");
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("expression nested too deeply"), "{err}");
    let (out, err, _) =
        Fixture::new().run("set -- $(printf '( %.0s' $(seq 1 100000)); [ \"$@\" ]; echo $?");
    assert!(err.contains("expression nested too deeply"), "{err}");
    assert_eq!(out, "2\n");
    let body = format!("{}f; {}", "{ ".repeat(900), "} ".repeat(900));
    let (out, err, status) = Fixture::new().run(&format!("f(){{ {body} }}; f; echo after"));
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("maximum nesting level exceeded (10000 compound commands)"),
        "{err}"
    );
    assert!(!out.contains("after"));
}

#[test]
fn wait_ends_when_the_session_is_cancelled() {
    let mut f = Fixture::new();
    let flag = Arc::new(AtomicBool::new(false));
    f.session.set_cancel_flag(flag.clone());
    let raise = flag.clone();
    let timer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        raise.store(true, Ordering::Relaxed);
    });
    let started = std::time::Instant::now();
    let stdio = Stdio::new(Box::new(std::io::sink()), Box::new(std::io::sink()));
    let result = f.session.run_script("sleep 3 & wait", "t", stdio);
    timer.join().unwrap();
    assert!(matches!(result, Err(ShellError::Interrupted)), "{result:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

//! CPython 3.13, built here from its pinned sources (runtimes/python): the default python,
//! also asked for by `--image python:3.13` and `runtime-versions`, with 3.12 beside it, and
//! started from its pre-initialised snapshot whenever that gives what a cold start gives.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::common::{ensure_bundle, succeeded, wasmbuild};

const IMAGE: &str = "python:3.13";

/// `wasmbuild exec --image python:3.13 --src SRC -e … -- python3 ARGS`.
fn python(src: &Path, env: &[&str], args: &[&str]) -> Output {
    ensure_bundle("base");
    ensure_bundle(IMAGE);
    let mut command = wasmbuild();
    command.args(["exec", "--image", IMAGE, "--src"]).arg(src);
    for pair in env {
        command.args(["-e", pair]);
    }
    command
        .arg("--")
        .arg("python3")
        .args(args)
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .expect("run wasmbuild exec")
}

/// A buildspec on python `version` whose build phase runs `commands`.
fn buildspec(version: &str, commands: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let mut text = format!(
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: {version}\n  build:\n    commands:\n"
    );
    for c in commands {
        text.push_str(&format!(
            "      - {}\n",
            serde_json::to_string(c.as_ref()).unwrap()
        ));
    }
    text
}

/// `wasmbuild run SRC`, pip's index at `index_url`, artifacts into `artifacts`: it must
/// succeed. Its log.
fn run_succeeding(src: &Path, index_url: &str, artifacts: Option<&Path>) -> String {
    let mut command = wasmbuild();
    command.arg("run").arg(src);
    if let Some(dir) = artifacts {
        command.arg("-a").arg(dir);
    }
    let out = command
        .args(["-e", &format!("PIP_INDEX_URL={index_url}")])
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    log
}

#[test]
fn python_3_13_is_the_default_and_runs_beside_3_12_with_its_standard_library() {
    let src = tempfile::tempdir().unwrap();
    let out = python(
        src.path(),
        &[],
        &[
            "-c",
            "import sys, zlib, bz2, socket, json, decimal, hashlib, xml.etree.ElementTree as t\n\
             data = b'wasmbuild' * 100\n\
             assert zlib.decompress(zlib.compress(data)) == data\n\
             assert bz2.decompress(bz2.compress(data)) == data\n\
             try:\n    socket.getaddrinfo('example.com', 80)\nexcept OSError as e:\n    print('no network:', type(e).__name__)\n\
             print(sys.version.split()[0], sys.prefix, hashlib.sha256(data).hexdigest()[:12])",
        ],
    );
    assert_eq!(
        succeeded(&out),
        "no network: gaierror\n3.13.5 /opt/runtimes/python 3bdde8d6af2f\n"
    );
    // The default python is 3.13; 3.12 is there for builds that ask for it.
    for (image, version) in [("python", "(3, 13)\n"), ("python:3.12", "(3, 12)\n")] {
        ensure_bundle(image);
        let out = wasmbuild()
            .args(["exec", "--image", image, "--src"])
            .arg(src.path())
            .args([
                "--",
                "python3",
                "-c",
                "import sys; print(sys.version_info[:2])",
            ])
            .output()
            .unwrap();
        assert_eq!(succeeded(&out), version, "{image}");
    }
}

/// What a run can observe of how its interpreter started.
const PROBE: &str = r#"
import os, sys, locale, time, io
import warnings
print("argv", sys.argv)
print("flags", {k: getattr(sys.flags, k) for k in dir(sys.flags) if not k.startswith("_") and k not in ("count", "index", "n_fields", "n_sequence_fields", "n_unnamed_fields")})
print("path", sys.path)
print("environ", sorted((k, v) for k, v in os.environ.items() if k != "PYTHONMALLOC"))
print("stdout", sys.stdout.encoding, sys.stdout.errors, sys.stdout.line_buffering, type(sys.stdout.buffer).__name__)
print("stdin", sys.stdin.encoding, sys.stderr.errors)
print("site", "site" in sys.modules, "sitecustomize" in sys.modules)
print("shims", "wasmbuild_posix" in sys.modules, os.getuid(), [getattr(f, "__name__", type(f).__name__) for f in sys.meta_path])
print("warnoptions", sys.warnoptions, warnings.filters[:2])
print("cwd", os.getcwd())
print("prefix", sys.prefix, sys.exec_prefix, sys.executable, sys.platlibdir)
print("encodings", sys.getfilesystemencoding(), sys.getfilesystemencodeerrors(), locale.getpreferredencoding(False))
print("bytecode", sys.dont_write_bytecode, sys.pycache_prefix)
print("os", os.__file__, os.path.__name__)
print("time", time.tzname)
print("main", __name__, sorted(k for k in globals() if not k.startswith("__")))
"#;

#[test]
fn a_run_from_the_snapshot_observes_what_a_cold_start_observes() {
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("probe.py"), PROBE).unwrap();
    fs::create_dir(src.path().join("extra")).unwrap();
    // The snapshot holds the bundle's `sitecustomize` imported; one earlier on the path wins.
    fs::write(
        src.path().join("extra/sitecustomize.py"),
        "print('the project sitecustomize')\n",
    )
    .unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &["probe.py"]),
        (&[], &["-c", PROBE]),
        (&[], &["-u", "probe.py", "-O", "-X", "dev"]),
        (&[], &["-S", "probe.py"]),
        (&[], &["-I", "probe.py"]),
        (&[], &["-B", "-E", "-s", "probe.py"]),
        (
            &[],
            &["-W", "error::DeprecationWarning", "-Wignore", "probe.py"],
        ),
        (
            &[
                "PYTHONUNBUFFERED=1",
                "PYTHONIOENCODING=latin-1:replace",
                "PYTHONDONTWRITEBYTECODE=1",
                "PYTHONPATH=/codebuild/output/src/extra",
                "PYTHONWARNINGS=always",
                "LANG=C.UTF-8",
                "TZ=Europe/Paris",
                "HOME=/root",
            ],
            &["probe.py", "one", "two"],
        ),
    ];
    for (env, args) in cases {
        let from_snapshot = succeeded(&python(src.path(), env, args));
        // PYTHONMALLOC names the allocator the core fixed (pymalloc is the default one):
        // this run starts cold.
        let mut cold_env = env.to_vec();
        cold_env.push("PYTHONMALLOC=pymalloc");
        let cold = succeeded(&python(src.path(), &cold_env, args));
        assert_eq!(from_snapshot, cold, "{env:?} {args:?}");
        assert!(from_snapshot.contains("argv"), "{from_snapshot}");
    }
}

#[test]
fn runs_start_from_the_snapshot_whose_strings_hash_as_with_seed_zero() {
    let src = tempfile::tempdir().unwrap();
    let hash = |env: &[&str]| {
        succeeded(&python(
            src.path(),
            env,
            &["-c", "print(hash('wasmbuild'))"],
        ))
    };
    // The reference: a cold start with PYTHONHASHSEED=0.
    let seed_zero = hash(&["PYTHONHASHSEED=0", "PYTHONMALLOC=pymalloc"]);
    // A run that starts from the snapshot hashes with the snapshot's secret.
    assert_eq!(hash(&[]), seed_zero);
    assert_eq!(hash(&["PYTHONPATH=/tmp"]), seed_zero);
    // Cold starts with a random secret (asking for one starts cold).
    let random = [
        hash(&["PYTHONHASHSEED=random"]),
        hash(&["PYTHONMALLOC=pymalloc"]),
    ];
    assert!(
        random.iter().any(|h| *h != seed_zero),
        "{random:?} {seed_zero}"
    );
}

// pip in a 3.13 build resolves for 3.13 (markers, wheel tags, Requires-Python) and installs
// where 3.13 looks: the user site, a venv, bytecode compiled by 3.13 itself.
#[test]
fn pip_installs_for_python_3_13_where_python_3_13_looks() {
    use crate::common::index::{Options, TestIndex, real_wheel};
    ensure_bundle("base");
    ensure_bundle(IMAGE);
    let index = TestIndex::serve(
        &[
            real_wheel("pytest==8.3.4"),
            real_wheel("iniconfig==2.0.0"),
            real_wheel("packaging==24.2"),
            real_wheel("pluggy==1.5.0"),
            real_wheel("attrs==24.2.0"),
        ],
        Options::default(),
    );
    let check = r#"
import importlib.util, sys
for name in ("attrs", "iniconfig", "pytest", "pluggy"):
    spec = importlib.util.find_spec(name)
    cached = importlib.util.cache_from_source(spec.origin)
    data = open(cached, "rb").read()
    assert int.from_bytes(data[4:8], "little") == 0b11, (name, data[4:8])
    print("imported", name, "from", spec.origin, "with", cached.rsplit("/", 1)[1])
"#;
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("check.py"), check).unwrap();
    // A marker only 3.13 meets: a 3.12 resolution would leave attrs out.
    let commands = [
        "pip --version",
        "pip install 'attrs==24.2.0; python_version >= \"3.13\"' pytest==8.3.4",
        "python -B check.py",
        "pytest --version",
        "python3.13 -m pip list --format=freeze",
        "python -m venv .venv",
        "cat .venv/pyvenv.cfg",
        ". .venv/bin/activate && pip install iniconfig==2.0.0 && python -c 'import iniconfig; print(\"venv\", iniconfig.__file__)'",
    ];
    fs::write(
        src.path().join("buildspec.yml"),
        buildspec("3.13", commands),
    )
    .unwrap();
    let log = run_succeeding(src.path(), &index.url, None);
    assert!(log.contains("(host-side; python 3.13)"), "{log}");
    let site = "/root/.local/lib/python3.13/site-packages";
    for name in ["attrs", "iniconfig", "pytest", "pluggy"] {
        assert!(
            log.contains(&format!(
                "imported {name} from {site}/{name}/__init__.py with __init__.cpython-313.pyc"
            )),
            "{name}: {log}"
        );
    }
    assert!(log.contains("pytest 8.3.4"), "{log}");
    assert!(log.contains("iniconfig==2.0.0"), "{log}");
    assert!(log.contains("version = 3.13.5"), "{log}");
    assert!(
        log.contains(
            "venv /codebuild/output/src/.venv/lib/python3.13/site-packages/iniconfig/__init__.py"
        ),
        "{log}"
    );
}

#[test]
fn building_the_bundle_again_takes_the_build_from_the_store_and_gives_the_same_bundle() {
    ensure_bundle(IMAGE);
    let reference = crate::common::store_dir().join("refs/bundle-versions/python/3.13.5");
    let before = fs::read_to_string(&reference).unwrap();
    let out = wasmbuild()
        .args(["runtime", "build", IMAGE])
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("taking the build of python 3.13.5 from the store"),
        "{stderr}"
    );
    // Bytecode and snapshot made again, byte for byte the same.
    assert_eq!(fs::read_to_string(&reference).unwrap(), before);
}

/// The bundle built from its sources again, in another store, on a `PATH` with none of the
/// host's compilers, linkers, makes, Pythons or Perls (only its shell and basic tools):
/// the build makes everything it runs from its inputs, and the bundle has the same bytes
/// as the test store's, built on the host's whole `PATH`.
#[test]
fn the_bundle_builds_from_its_sources_without_the_hosts_compilers_and_gives_the_same_bytes() {
    use wasmbuild::runtime::recipe::{Input, Source};
    ensure_bundle(IMAGE);
    // The inputs (some 150 MB) come from the test store, not the network again.
    let recipes = Path::new(env!("CARGO_MANIFEST_DIR")).join("runtimes");
    let recipe = wasmbuild::runtime::Recipe::load(&recipes, "python").unwrap();
    let Source::Script(source) = &recipe.source else {
        panic!("python 3.13 is built by a script")
    };
    let shared = wasmbuild::store::Store::open(crate::common::store_dir()).unwrap();
    let other = tempfile::tempdir().unwrap();
    let store = wasmbuild::store::Store::open(other.path().join("store")).unwrap();
    for input in &source.inputs {
        let (file, sha256) = Input::pinned(input).unwrap();
        let copy = other.path().join(file);
        shared.get_blob_to_file(sha256, &copy).unwrap();
        assert_eq!(store.put_file(&copy).unwrap().0, sha256);
        fs::remove_file(copy).unwrap();
    }
    // The host's PATH, less what a build could compile, link or script with.
    let tools = other.path().join("tools");
    fs::create_dir(&tools).unwrap();
    let withheld = |name: &str| {
        [
            "cc", "c++", "cpp", "ld", "as", "make", "gmake", "tclsh", "unzip",
        ]
        .contains(&name)
            || [
                "gcc", "g++", "clang", "ld.", "python", "perl", "pip", "x86_64-", "aarch64-",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            || name.ends_with("-gcc")
    };
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap()) {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !withheld(&name) && !tools.join(&name).exists() {
                std::os::unix::fs::symlink(entry.path(), tools.join(&name)).unwrap();
            }
        }
    }
    assert!(tools.join("sh").exists() && !tools.join("cc").exists());
    let out = wasmbuild()
        .env("WASMBUILD_STORE", other.path().join("store"))
        .env("PATH", &tools)
        .args(["runtime", "build", "python"])
        .timeout(std::time::Duration::from_secs(1800))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("building make"), "{stderr}");
    let digest = |store: &Path| crate::common::bundle_digest(store, "python", "3.13.5");
    assert_eq!(
        digest(&other.path().join("store")),
        digest(&crate::common::store_dir())
    );
}

/// The snapshot comes with the pages `python -c pass` writes (the start-up and finalisation
/// every run goes through), which each run copies in before it starts: hundreds of pages,
/// not the whole memory.
#[test]
fn the_snapshot_lists_the_pages_every_run_writes() {
    ensure_bundle(IMAGE);
    let store = wasmbuild::store::Store::open(crate::common::store_dir()).unwrap();
    let digest = store
        .get_ref("bundle-versions/python/3.13.5")
        .unwrap()
        .unwrap();
    let text = String::from_utf8(store.get_blob(&digest).unwrap()).unwrap();
    let manifest = wasmbuild::runtime::BundleManifest::from_toml(&text).unwrap();
    for command in ["python", "python3", "python3.13"] {
        let snapshot = manifest.commands[command].snapshot.as_ref().unwrap();
        let pages = snapshot.prefault.as_ref().map(|runs| runs.pages());
        assert!(pages.is_some_and(|p| (100..4000).contains(&p)), "{pages:?}");
    }
}

/// A payload xz and the guest both compress: text, and bytes that do not repeat.
fn xz_payload() -> Vec<u8> {
    let mut data = b"wasmbuild sqlite3 lzma\n".repeat(2000);
    let mut x: u32 = 0x9e37_79b9;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.push(x as u8);
    }
    data
}

/// Runs the host's `xz` (which .ci/run installs) with `args`, `input` on its stdin.
fn host_xz(args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("xz")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the host's xz (xz-utils)");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "xz {args:?}: {:?}", out.status);
    out.stdout
}

// sqlite3 and lzma, linked in from SQLite and liblzma built with the bundle: a database in
// the workspace outlives the run that wrote it (locked with a `.lock` directory, WASI having
// no file locks, and left unlocked), and the guest's xz and the host's read each other's.
#[test]
fn sqlite3_keeps_a_database_across_runs_and_lzma_agrees_with_the_hosts_xz() {
    let src = tempfile::tempdir().unwrap();
    let payload = xz_payload();
    fs::write(src.path().join("payload.bin"), &payload).unwrap();
    fs::write(src.path().join("host.xz"), host_xz(&["-6", "-c"], &payload)).unwrap();
    let write = r#"
import lzma, os, sqlite3
payload = open("payload.bin", "rb").read()
assert lzma.decompress(open("host.xz", "rb").read()) == payload
open("guest.xz", "wb").write(lzma.compress(payload, preset=6))
with lzma.open("lines.xz", "wt") as f:
    f.write("line\n" * 1000)
con = sqlite3.connect("data/rows.db")
con.execute("create table rows(i integer primary key, s text)")
con.executemany("insert into rows(s) values (?)", ((f"row {i}",) for i in range(10000)))
con.execute("create virtual table docs using fts5(body)")
con.execute("insert into docs values ('sqlite in wasi')")
con.commit()
cur = con.execute("select i from rows")
cur.fetchone()
print("locked while reading", sorted(os.listdir("data")))
cur.fetchall()
con.close()
memory = sqlite3.connect(":memory:")
memory.execute("create table m(a)")
memory.executemany("insert into m values (?)", [(i,) for i in range(1000)])
print("in memory", memory.execute("select sum(a) from m").fetchone()[0])
print("sqlite", sqlite3.sqlite_version, "written", sorted(os.listdir("data")))
"#;
    fs::write(src.path().join("write.py"), write).unwrap();
    fs::create_dir(src.path().join("data")).unwrap();
    let out = succeeded(&python(src.path(), &[], &["write.py"]));
    assert_eq!(
        out,
        "locked while reading ['rows.db', 'rows.db.lock']\n\
         in memory 499500\n\
         sqlite 3.46.1 written ['rows.db']\n"
    );
    // What the guest compressed, the host's xz decompresses.
    let guest = fs::read(src.path().join("guest.xz")).unwrap();
    assert!(guest.starts_with(b"\xfd7zXZ\0"));
    assert!(host_xz(&["-d", "-c"], &guest) == payload);
    let lines = host_xz(
        &["-d", "-c"],
        &fs::read(src.path().join("lines.xz")).unwrap(),
    );
    assert_eq!(lines, "line\n".repeat(1000).into_bytes());

    // A second run opens the database the first one left, changes it and commits.
    let read = r#"
import sqlite3
con = sqlite3.connect("data/rows.db")
print(con.execute("select count(*), max(s) from rows").fetchone())
print(con.execute("select body from docs where docs match 'wasi'").fetchall())
with con:
    con.execute("delete from rows where i % 2 = 0")
print(con.execute("select count(*) from rows").fetchone(), con.execute("pragma integrity_check").fetchone())
"#;
    fs::write(src.path().join("read.py"), read).unwrap();
    let out = succeeded(&python(src.path(), &[], &["read.py"]));
    assert_eq!(
        out,
        "(10000, 'row 9999')\n[('sqlite in wasi',)]\n(5000,) ('ok',)\n"
    );
    let mut left: Vec<String> = fs::read_dir(src.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["rows.db"]);
}

/// A program for coverage.py to measure: lines and arcs of many shapes (loops left early,
/// exceptions, generators, closures, a comprehension, a class, code never run), and the
/// standard library's `threading` and `tokenize` imported once measuring has started.
const MEASURED: &str = r#"
def classify(n):
    if n < 0:
        return "negative"
    elif n == 0:
        return "zero"
    for d in range(2, n):
        if n % d == 0:
            break
    else:
        return "prime"
    return "composite"

def squares(limit):
    i = 0
    while True:
        if i * i > limit:
            return
        yield i * i
        i += 1

def risky(x):
    try:
        return 10 // x
    except ZeroDivisionError:
        return None
    finally:
        pass

class Counter:
    def __init__(self):
        self.seen = {}

    def add(self, word):
        self.seen[word] = self.seen.get(word, 0) + 1
        return self

def never_called():
    return "unreached"

def make_adder(k):
    return lambda x: x + k

import threading, tokenize
kinds = [classify(n) for n in range(-2, 30)]
total = sum(squares(500))
results = [risky(x) for x in (0, 1, 3)]
counter = Counter().add("a").add("b").add("a")
adder = make_adder(3)
print(len(kinds), total, results, sorted(counter.seen.items()), adder(4))
if total > 10 ** 9:
    print("unreachable")
"#;

/// What [`MEASURED`] prints, measured or not.
const MEASURED_PRINTS: &str = "32 3795 [None, 10, 3] [('a', 2), ('b', 1)] 7";

/// A build on python `version` of a source directory holding `measured.py` (and what
/// `setup` adds) that installs coverage 7.18.0 (its pure-Python wheel, the one pip takes
/// where no compiled wheel fits, from a test index) and runs `commands`; the artifacts
/// `kept` are written below the returned directory. The build's log.
fn coverage_build(
    version: &str,
    commands: &[String],
    kept: &[&str],
    setup: impl FnOnce(&Path),
) -> (String, tempfile::TempDir) {
    use crate::common::index::{Options, TestIndex, real_pure_wheel};
    ensure_bundle("base");
    ensure_bundle(&format!("python:{version}"));
    let wheel = real_pure_wheel("coverage==7.18.0");
    let index = TestIndex::serve(&[wheel], Options::default());

    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("measured.py"), MEASURED).unwrap();
    setup(src.path());
    let install = "pip install coverage==7.18.0".to_owned();
    let mut text = buildspec(version, std::iter::once(&install).chain(commands));
    text.push_str(&format!("artifacts:\n  files: {kept:?}\n"));
    fs::write(src.path().join("buildspec.yml"), text).unwrap();
    let artifacts = tempfile::tempdir().unwrap();
    let log = run_succeeding(src.path(), &index.url, Some(artifacts.path()));
    (log, artifacts)
}

/// The `files` of the JSON report `name` among a build's artifacts, after checking that it
/// measured `measured.py` alone (not the standard library's modules, which live in the
/// bundle's zip) with the lines and arcs it runs.
fn measured_files(artifacts: &Path, name: &str) -> serde_json::Value {
    let path = artifacts.join("primary").join(name);
    let report: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let files = report["files"].clone();
    let names: Vec<&String> = files.as_object().unwrap().keys().collect();
    assert_eq!(names, ["measured.py"], "{name}");
    let measured = &files["measured.py"];
    let count = |key: &str| measured[key].as_array().unwrap().len();
    assert_eq!(
        [
            count("executed_lines"),
            count("missing_lines"),
            count("executed_branches"),
            count("missing_branches")
        ],
        [40, 2, 11, 1],
        "{name}: {measured}"
    );
    files
}

/// coverage's C tracer is built into the 3.13 interpreter, one per coverage release the
/// recipe pins, each offered only to its own release: a real coverage measures with it what
/// its Python tracer measures (lines and arcs), and another release gets an ImportError
/// (coverage then runs its Python tracer).
#[test]
fn coverage_measures_with_its_built_in_c_tracer_what_its_python_tracer_measures() {
    let import = |dir: &str| {
        format!(
            "python -c 'import sys; sys.path.insert(0, \"{dir}\")\ntry:\n    import coverage.tracer as t; print(\"{dir}:\", t.CTracer)\nexcept ImportError as e: print(\"{dir}:\", e)'"
        )
    };
    let commands = [
        "COVERAGE_DEBUG_FILE=c.debug coverage run --debug=sys --branch --data-file=.c measured.py"
            .to_owned(),
        "coverage json --data-file=.c -o c.json".to_owned(),
        "grep -E '^ *core:' c.debug | sed 's/^ */c /'".to_owned(),
        "export COVERAGE_CORE=pytrace COVERAGE_DEBUG_FILE=p.debug".to_owned(),
        "coverage run --debug=sys --branch --data-file=.p measured.py".to_owned(),
        "coverage json --data-file=.p -o p.json".to_owned(),
        "grep -E '^ *core:' p.debug | sed 's/^ */p /'".to_owned(),
        import("pinned"),
        import("other"),
    ];
    // Fake coverage packages: one of a pinned release, one of a release without a tracer.
    let fakes = |src: &Path| {
        for (dir, release) in [("pinned", "7.6.9"), ("other", "0.1")] {
            let package = src.join(dir).join("coverage");
            fs::create_dir_all(&package).unwrap();
            fs::write(package.join("__init__.py"), "").unwrap();
            let version = format!("__version__ = {release:?}\n");
            fs::write(package.join("version.py"), version).unwrap();
        }
    };
    let (log, artifacts) = coverage_build("3.13", &commands, &["c.json", "p.json"], fakes);
    assert!(log.contains("c core: CTracer"), "{log}");
    assert!(log.contains("p core: PyTracer"), "{log}");
    assert_eq!(log.matches(MEASURED_PRINTS).count(), 2, "{log}");
    assert!(log.contains("pinned: <class 'coverage.CTracer'>"), "{log}");
    assert!(
        log.contains("other: this interpreter has no C tracer for coverage 0.1"),
        "{log}"
    );
    // Both tracers measured the same lines and arcs (the reports' `meta` differs: the core).
    let c = measured_files(artifacts.path(), "c.json");
    assert_eq!(c, measured_files(artifacts.path(), "p.json"));
}

/// On the 3.12 bundle, whose standard library is a zip of bytecode only, coverage
/// leaves the standard library out as it does natively: measured, its modules made
/// `coverage report` fail ("No source for code").
#[test]
fn coverage_on_python_3_12_measures_the_program_and_reports() {
    let commands = [
        "coverage run --branch measured.py".to_owned(),
        "coverage report".to_owned(),
        "coverage json -o c.json".to_owned(),
        "python -c 'import sysconfig; print(\"stdlib\", sysconfig.get_path(\"stdlib\"))'"
            .to_owned(),
    ];
    let (log, artifacts) = coverage_build("3.12", &commands, &["c.json"], |_| {});
    assert!(log.contains(MEASURED_PRINTS), "{log}");
    assert!(log.contains("stdlib /usr/local/lib/python312.zip"), "{log}");
    assert!(!log.contains("No source for code"), "{log}");
    measured_files(artifacts.path(), "c.json");
}

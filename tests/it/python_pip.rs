//! `pip` inside builds (issue 14): installs go through the host, from a real package index
//! (a loopback one serving real distributions, fetched once with the host's pip), pinned
//! by hash; the lock, `--offline`, hash mismatches, packages that need native code, and
//! what stays installed when a command fails.

use crate::common;

use std::path::{Path, PathBuf};

use common::Run;
use common::index::{Options, TestIndex, real_wheel};
use serde_json::Value;

/// A source directory with `buildspec.yml` (and `files`), for one test.
fn project(buildspec: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("source dir");
    std::fs::write(dir.path().join("buildspec.yml"), buildspec).unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn build(src: &Path, index: Option<&str>, args: &[&str]) -> Run {
    common::ensure_bundle("base");
    common::ensure_bundle("python");
    let out = tempfile::tempdir().expect("artifacts dir");
    let mut cmd = common::wasmbuild();
    cmd.arg("run").arg(src).arg("-a").arg(out.path()).args(args);
    if let Some(url) = index {
        cmd.args(["-e", &format!("PIP_INDEX_URL={url}")]);
    }
    let output = cmd.output().expect("run wasmbuild");
    Run { output, out }
}

fn python_buildspec(commands: &[&str]) -> String {
    let mut text = String::from(
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.12\n  build:\n    commands:\n",
    );
    for c in commands {
        text.push_str(&format!("      - {}\n", serde_json::to_string(c).unwrap()));
    }
    text
}

fn pins(run: &Run) -> Vec<Value> {
    run.record()["python"]["packages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The record's pins without their URLs (a lock names files, not hosts): what was installed.
fn files(run: &Run) -> Vec<(String, String, String, String)> {
    pins(run)
        .iter()
        .map(|p| {
            let field = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
            (
                field("name"),
                field("version"),
                field("file"),
                field("sha256"),
            )
        })
        .collect()
}

fn explain(run: &Run) -> String {
    format!(
        "status {}\nlog:\n{}\nstderr:\n{}",
        run.status(),
        run.log(),
        run.stderr()
    )
}

fn wheels(specs: &[&str]) -> Vec<PathBuf> {
    specs.iter().map(|s| real_wheel(s)).collect()
}

// Item 1: a requirement is resolved and downloaded on the host, checked against the
// index's sha256, installed for the guest (importable, console script on PATH), recorded.
#[test]
fn pip_install_runs_on_the_host_and_installs_for_the_guest() {
    let index = TestIndex::serve(
        &wheels(&[
            "pytest==8.3.4",
            "iniconfig==2.0.0",
            "packaging==24.2",
            "pluggy==1.5.0",
        ]),
        Options::default(),
    );
    let src = project(
        &python_buildspec(&[
            "pip install pytest==8.3.4",
            "python -c 'import iniconfig, pluggy, packaging; print(\"imports ok\")'",
            "pytest --version",
            "pip list --format=freeze",
            "command -v pytest",
        ]),
        &[],
    );
    let run = build(src.path(), Some(&index.url), &[]);
    assert_eq!(run.status(), 0, "{}", explain(&run));
    let log = run.log();
    assert!(log.contains("Successfully installed"), "{log}");
    assert!(log.contains("imports ok"), "{log}");
    assert!(log.contains("pytest 8.3.4"), "{log}");
    assert!(log.contains("pluggy==1.5.0"), "{log}");
    assert!(log.contains("/root/.local/bin/pytest"), "{log}");
    let pins = pins(&run);
    let names: Vec<&str> = pins.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(
        names,
        ["iniconfig", "packaging", "pluggy", "pytest"],
        "{pins:?}"
    );
    for pin in &pins {
        let served = index.served(pin["file"].as_str().unwrap());
        assert_eq!(pin["sha256"].as_str().unwrap(), served.sha256);
    }
}

// Item 1 (lock): `--write-lock` writes the resolved set; a rerun with the lock asks the
// index nothing and installs byte-identical files; `--offline` builds from the store.
#[test]
fn locked_rerun_asks_no_index_and_offline_builds_from_the_store() {
    let served = wheels(&["iniconfig==2.0.0"]);
    let index = TestIndex::serve(&served, Options::default());
    let src = project(
        &python_buildspec(&[
            "pip install iniconfig",
            "python -c 'import iniconfig, importlib.metadata as m; print(m.version(\"iniconfig\"))'",
        ]),
        &[],
    );
    let first = build(src.path(), Some(&index.url), &["--write-lock"]);
    assert_eq!(first.status(), 0, "{}", explain(&first));
    assert!(first.log().contains("\n2.0.0\n"), "{}", explain(&first));
    let lock = std::fs::read_to_string(src.path().join("wasmbuild.lock")).expect("the lock");
    let sha = &index.served("iniconfig-2.0.0-py3-none-any.whl").sha256;
    assert!(lock.contains(sha.as_str()), "{lock}");
    assert!(lock.contains("iniconfig"), "{lock}");
    assert!(index.request_count() > 0);

    // A fresh index that counts: the locked build must not ask it anything.
    let quiet = TestIndex::serve(&served, Options::default());
    let second = build(src.path(), Some(&quiet.url), &[]);
    assert_eq!(second.status(), 0, "{}", explain(&second));
    assert_eq!(
        quiet.request_count(),
        0,
        "{:?}",
        quiet.requests.lock().unwrap()
    );
    assert_eq!(files(&second), files(&first));
    assert_eq!(
        second.record()["python"]["lock"]
            .as_str()
            .map(|l| l.ends_with("wasmbuild.lock")),
        Some(true)
    );

    // Offline, with an index that does not exist: the store has everything.
    let offline = build(
        src.path(),
        Some("http://127.0.0.1:9/simple"),
        &["--offline"],
    );
    assert_eq!(offline.status(), 0, "{}", explain(&offline));
    assert_eq!(files(&offline), files(&first));
}

// Item 1 (offline): a file the store lacks fails the command with a message naming it.
#[test]
fn offline_build_names_the_file_the_store_lacks() {
    let src = project(
        &python_buildspec(&["pip install not-in-store-demo"]),
        &[(
            "wasmbuild.lock",
            "version = 1\n\n[[python]]\nname = \"not-in-store-demo\"\nversion = \"1.0\"\nfile = \"not_in_store_demo-1.0-py3-none-any.whl\"\nurl = \"http://127.0.0.1:9/files/not_in_store_demo-1.0-py3-none-any.whl\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000001\"\n",
        )],
    );
    let run = build(src.path(), None, &["--offline"]);
    assert_eq!(run.status(), 1, "{}", explain(&run));
    let log = run.log();
    assert!(
        log.contains("not_in_store_demo-1.0-py3-none-any.whl is not in the store and --offline forbids downloading it"),
        "{log}"
    );
    let failures = &run.record()["python"]["failures"];
    assert!(
        failures.to_string().contains("not_in_store_demo"),
        "{failures}"
    );
}

// Bad input: a file whose bytes do not match the index's sha256 fails the command naming
// the file and both hashes; nothing is installed and nothing kept in the store.
#[test]
fn hash_mismatch_fails_and_installs_nothing() {
    // A project no other test of the shared store installs, so the store cannot already
    // hold it.
    let served = wheels(&["six==1.16.0"]);
    let index = TestIndex::serve(
        &served,
        Options {
            tampered: vec!["six-1.16.0-py2.py3-none-any.whl".into()],
            ..Options::default()
        },
    );
    let sha = index
        .served("six-1.16.0-py2.py3-none-any.whl")
        .sha256
        .clone();
    let src = project(
        &python_buildspec(&[
            "if pip install six==1.16.0; then echo INSTALLED; exit 1; fi",
            "if python -c 'import six'; then echo IMPORTABLE; exit 1; fi",
            "pip list --format=freeze",
        ]),
        &[],
    );
    let run = build(src.path(), Some(&index.url), &[]);
    assert_eq!(run.status(), 0, "{}", explain(&run));
    let log = run.log();
    assert!(
        log.contains("hash mismatch for six-1.16.0-py2.py3-none-any.whl") && log.contains(&sha),
        "{log}"
    );
    assert!(!log.lines().any(|l| l.trim() == "six==1.16.0"), "{log}");
    let store = common::store_dir();
    assert!(!store.join("refs/python/files").join(&sha).exists());
}

// Bad input: a project that only has platform wheels (native code) is refused in one line.
#[test]
fn platform_only_package_is_refused_with_a_reason() {
    let dir = common::index::dist_cache().join("markupsafe-manylinux");
    if !dir.exists() {
        common::index::download_wheels(
            &dir,
            "markupsafe==2.1.5",
            &[
                "--platform",
                "manylinux2014_x86_64",
                "--python-version",
                "3.12",
            ],
        );
    }
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let index = TestIndex::serve(&files, Options::default());
    let src = project(&python_buildspec(&["pip install markupsafe==2.1.5"]), &[]);
    let run = build(src.path(), Some(&index.url), &[]);
    assert_eq!(run.status(), 1, "{}", explain(&run));
    let log = run.log();
    assert!(
        log.contains("markupsafe 2.1.5 cannot run in the WASI sandbox"),
        "{log}"
    );
    assert!(!log.contains("Traceback"), "{log}");
}

// Bad input: an unknown project is a failed command with a one-line reason, in the record.
#[test]
fn unknown_project_fails_in_one_line() {
    let index = TestIndex::serve(&wheels(&["iniconfig==2.0.0"]), Options::default());
    let src = project(
        &python_buildspec(&["pip install no-such-project-here==1.0"]),
        &[],
    );
    let run = build(src.path(), Some(&index.url), &[]);
    assert_eq!(run.status(), 1, "{}", explain(&run));
    let log = run.log();
    assert!(
        log.contains("ERROR:") && log.contains("no such project: no-such-project-here"),
        "{log}"
    );
    assert!(
        run.record()["python"]["failures"]
            .to_string()
            .contains("no-such-project-here")
    );
}

// Item 2: `python -m venv` works as build scripts use it: activate, pip, console scripts.
#[test]
fn venv_activate_pip_and_scripts_work() {
    let index = TestIndex::serve(&wheels(&["iniconfig==2.0.0"]), Options::default());
    let src = project(
        &python_buildspec(&[
            "python -m venv .venv",
            ". .venv/bin/activate && pip install iniconfig==2.0.0",
            ". .venv/bin/activate && python -c 'import iniconfig, sys; print(\"in venv\", iniconfig.__file__)'",
            "ls .venv/lib/python3.12/site-packages",
        ]),
        &[],
    );
    let run = build(src.path(), Some(&index.url), &[]);
    assert_eq!(run.status(), 0, "{}", explain(&run));
    let log = run.log();
    assert!(
        log.contains("in venv /codebuild/output/src/.venv/lib/python3.12/site-packages/iniconfig"),
        "{log}"
    );
}

// Item 4: the pip cache as CodeBuild users declare it. wasmbuild's pip keeps files in the
// store, not in ~/.cache/pip, so the path holds nothing to save: the builds succeed, the
// second one installs the same files with no download, and the cache step says what it did.
#[test]
fn a_pip_cache_path_in_the_buildspec_works_as_codebuild_users_write_it() {
    let served = wheels(&["iniconfig==2.0.0"]);
    let index = TestIndex::serve(&served, Options::default());
    let mut spec = python_buildspec(&[
        "pip install iniconfig==2.0.0",
        "python -c 'import iniconfig'",
    ]);
    spec.push_str("cache:\n  paths:\n    - '/root/.cache/pip/**/*'\n");
    let src = project(&spec, &[]);
    let first = build(src.path(), Some(&index.url), &[]);
    assert_eq!(first.status(), 0, "{}", explain(&first));
    let files_served = index
        .served("iniconfig-2.0.0-py3-none-any.whl")
        .sha256
        .clone();
    let file_requests = || {
        index
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.contains("/files/"))
            .count()
    };
    let after_first = file_requests();
    let second = build(src.path(), Some(&index.url), &[]);
    assert_eq!(second.status(), 0, "{}", explain(&second));
    assert_eq!(files(&second), files(&first));
    assert_eq!(files(&second)[0].3, files_served);
    assert_eq!(
        file_requests(),
        after_first,
        "the second build downloads nothing"
    );
    for run in [&first, &second] {
        let cache = &run.record()["cache"];
        assert_eq!(
            cache["paths"][0],
            "/root/.cache/pip/**/*",
            "{}",
            run.record()
        );
        assert_eq!(
            cache["restore"]["hit"], false,
            "nothing to save, nothing restored"
        );
    }
}

// pip's other commands, spelled as buildspecs spell them: `python -m pip`, `pip3`,
// `pip download -d`, `pip wheel -w` of a local project (its backend from the index, built in
// the sandbox), `pip freeze`, `pip uninstall -y`, and `pip check` finding what an
// uninstall broke.
#[test]
fn pip_commands_download_wheel_freeze_uninstall_and_check() {
    let index = TestIndex::serve(
        &wheels(&["iniconfig==2.0.0", "tomli==2.0.1", "flit-core==3.10.1"]),
        Options::default(),
    );
    let pyproject = "[build-system]\nrequires = [\"flit_core >=3.2,<4\"]\n\
                     build-backend = \"flit_core.buildapi\"\n\n[project]\nname = \"demo_pkg\"\n\
                     version = \"0.3.0\"\ndescription = \"demo\"\n\
                     dependencies = [\"iniconfig\"]\n";
    let src = project(
        &python_buildspec(&[
            "python -m pip install tomli==2.0.1",
            "pip3 download iniconfig==2.0.0 -d dl",
            "ls dl",
            "pip wheel ./proj -w wheels --no-deps",
            "ls wheels",
            "pip install ./proj",
            "pip freeze",
            "pip check",
            "pip uninstall -y -r uninstall.txt",
            "python -c 'import importlib.util as u; print(\"tomli importable:\", u.find_spec(\"tomli\") is not None)'",
            "pip check || echo \"pip check said $?\"",
        ]),
        &[
            ("proj/pyproject.toml", pyproject),
            (
                "proj/demo_pkg/__init__.py",
                "def hello():\n    return 'hi'\n",
            ),
            ("uninstall.txt", "tomli==2.0.1  # pinned\n\niniconfig\n"),
        ],
    );
    let run = build(src.path(), Some(&index.url), &[]);
    assert_eq!(run.status(), 0, "{}", explain(&run));
    let log = run.log();
    for expected in [
        "Successfully installed tomli-2.0.1",
        "\niniconfig-2.0.0-py3-none-any.whl\n",
        "\ndemo_pkg-0.3.0-py2.py3-none-any.whl\n",
        "\ndemo_pkg==0.3.0\n",
        "\niniconfig==2.0.0\n",
        "\ntomli==2.0.1\n",
        "No broken requirements found.",
        "Successfully uninstalled tomli-2.0.1",
        "Successfully uninstalled iniconfig-2.0.0",
        "tomli importable: False",
        "demo_pkg 0.3.0 requires iniconfig, which is not installed.",
        "pip check said 1",
    ] {
        assert!(
            log.contains(expected),
            "no {expected:?} in\n{}",
            explain(&run)
        );
    }
}

// `--no-deps` holds for local projects too: `pip install --no-deps ./proj` installs the
// project and not what its metadata requires; `pip wheel --no-build-isolation` builds with
// the backend installed in the guest, as pip does.
#[test]
fn no_deps_and_no_build_isolation_hold_for_local_projects() {
    let index = TestIndex::serve(
        &wheels(&["iniconfig==2.0.0", "flit-core==3.10.1"]),
        Options::default(),
    );
    let pyproject = "[build-system]\nrequires = [\"flit_core >=3.2,<4\"]\n\
                     build-backend = \"flit_core.buildapi\"\n\n[project]\nname = \"demo_pkg\"\n\
                     version = \"0.3.0\"\ndescription = \"demo\"\n\
                     dependencies = [\"iniconfig\"]\n";
    let src = project(
        &python_buildspec(&[
            "pip install --no-deps ./proj",
            "pip freeze",
            "if pip wheel --no-build-isolation --no-deps ./proj -w w; then echo BUILT; exit 1; fi",
            "pip install flit-core==3.10.1",
            "pip wheel --no-build-isolation --no-deps ./proj -w w",
        ]),
        &[
            ("proj/pyproject.toml", pyproject),
            (
                "proj/demo_pkg/__init__.py",
                "def hello():\n    return 'hi'\n",
            ),
        ],
    );
    let run = build(src.path(), Some(&index.url), &[]);
    assert_eq!(run.status(), 0, "{}", explain(&run));
    let log = run.log();
    assert!(
        log.contains("Successfully installed demo_pkg-0.3.0\n"),
        "{log}"
    );
    assert!(!log.contains("iniconfig=="), "{log}");
    assert!(
        log.contains("Saved /codebuild/output/src/w/demo_pkg-0.3.0-py2.py3-none-any.whl"),
        "{log}"
    );
}

// Installed wheels come with bytecode: compiled by the guest's own interpreter at the first
// install (checked-hash `.pyc`, there before anything imports the package), kept in the
// store by wheel and interpreter, written by the next build's install from the store, and
// never shadowing a source the build edits. What the build placed where the bytecode goes
// (here a hostile `.pyc` planted before the install) never becomes the kept bytecode: the
// interpreter compiles a private copy of the sources.
#[test]
fn installed_packages_come_with_bytecode_kept_in_the_store() {
    let index = TestIndex::serve(&wheels(&["iniconfig==2.0.0"]), Options::default());
    // What earlier test runs kept in the shared store is forgotten: this build compiles.
    let kept = common::store_dir().join("refs/python-bytecode");
    let _ = std::fs::remove_dir_all(&kept);
    let check = r#"
import hashlib, importlib.machinery, importlib.util
spec = importlib.util.find_spec("iniconfig")
cached = importlib.util.cache_from_source(spec.origin)
data = open(cached, "rb").read()
assert int.from_bytes(data[4:8], "little") == 0b11, data[4:8]  # checked hash
loader = importlib.machinery.SourceFileLoader("iniconfig", spec.origin)
def refuse(*args, **kwargs):
    raise AssertionError("compiled from source")
loader.source_to_code = refuse
used = loader.get_code("iniconfig")
assert used == compile(open(spec.origin, "rb").read(), spec.origin, "exec", dont_inherit=True)
print("pyc", hashlib.sha256(data).hexdigest())
"#;
    let edit = r#"
path = __import__("importlib.util").util.find_spec("iniconfig").origin
open(path, "a").write("\nEDITED = True\n")
"#;
    let src = project(
        &python_buildspec(&[
            "mkdir -p /root/.local/lib/python3.12/site-packages/iniconfig/__pycache__",
            "printf 'hostile' > /root/.local/lib/python3.12/site-packages/iniconfig/__pycache__/__init__.cpython-312.pyc",
            "pip install iniconfig==2.0.0",
            "python -B check.py",
            "python edit.py",
            "python -B -c 'import iniconfig; print(\"edited\", iniconfig.EDITED)'",
        ]),
        &[("check.py", check), ("edit.py", edit)],
    );
    let pyc = |log: &str| {
        log.lines()
            .find_map(|l| l.strip_prefix("pyc "))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no pyc line in\n{log}"))
    };
    let first = build(src.path(), Some(&index.url), &[]);
    assert_eq!(first.status(), 0, "{}", explain(&first));
    let log = first.log();
    assert!(
        log.contains("wasmbuild: bytecode: 0 from the store, 1 compiled"),
        "{log}"
    );
    assert!(log.contains("edited True"), "{log}");
    let wheel_sha = index
        .served("iniconfig-2.0.0-py3-none-any.whl")
        .sha256
        .clone();
    let refs: Vec<_> = std::fs::read_dir(&kept)
        .expect("a python-bytecode reference")
        .flatten()
        .map(|interpreter| interpreter.path().join(&wheel_sha))
        .collect();
    assert!(refs.iter().any(|r| r.is_file()), "{refs:?}");

    let second = build(src.path(), Some(&index.url), &[]);
    assert_eq!(second.status(), 0, "{}", explain(&second));
    let log2 = second.log();
    assert!(
        log2.contains("wasmbuild: bytecode: 1 from the store, 0 compiled"),
        "{log2}"
    );
    assert_eq!(pyc(&log2), pyc(&log));
    assert!(log2.contains("edited True"), "{log2}");
}

/// An sdist of a flit project `name` 1.0 whose module says `marker` (so each test run has
/// its own file, and its own hash), as a tar.gz in `dir`.
fn flit_sdist(dir: &Path, name: &str, marker: &str) -> PathBuf {
    let top = format!("{name}-1.0");
    let pyproject = format!(
        "[build-system]\nrequires = [\"flit_core >=3.2,<4\"]\nbuild-backend = \"flit_core.buildapi\"\n\n\
         [project]\nname = \"{name}\"\nversion = \"1.0\"\ndescription = \"an sdist only\"\n"
    );
    let files = [
        (format!("{top}/pyproject.toml"), pyproject),
        (format!("{top}/{name}.py"), format!("MARKER = {marker:?}\n")),
        (
            format!("{top}/PKG-INFO"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"),
        ),
    ];
    let path = dir.join(format!("{top}.tar.gz"));
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    for (member, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, member, text.as_bytes())
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    path
}

// An sdist's metadata, which the resolver needs and only its build backend can say, is asked
// of the backend once per interpreter and then read from the store: a rerun takes what the
// store says (here doctored to add a requirement nobody serves, which then fails the
// install), and python 3.13 has its own entry.
#[test]
fn sdist_metadata_is_kept_in_the_store_by_interpreter() {
    let dists = tempfile::tempdir().unwrap();
    let marker = dists.path().display().to_string();
    let sdist = flit_sdist(dists.path(), "demo_sdist", &marker);
    let mut served = wheels(&["flit-core==3.10.1"]);
    served.push(sdist);
    let index = TestIndex::serve(&served, Options::default());
    let sha256 = index.served("demo_sdist-1.0.tar.gz").sha256.clone();
    let commands = [
        "pip install demo-sdist==1.0",
        "python -c 'import demo_sdist; print(\"marker\", demo_sdist.MARKER)'",
    ];
    let src = project(&python_buildspec(&commands), &[]);
    let first = build(src.path(), Some(&index.url), &[]);
    assert_eq!(first.status(), 0, "{}", explain(&first));
    assert!(
        first.log().contains(&format!("marker {marker}")),
        "{}",
        first.log()
    );

    let store = wasmbuild::store::Store::open(common::store_dir()).unwrap();
    let reference = format!("python/sdist-metadata/python3.12/{sha256}");
    let kept = store
        .get_ref(&reference)
        .unwrap()
        .expect("the metadata is kept");
    let text = String::from_utf8(store.get_blob(&kept).unwrap()).unwrap();
    assert!(text.contains("Name: demo_sdist"), "{text}");
    let doctored = text.replacen("\n\n", "\nRequires-Dist: not-served-here\n\n", 1);
    let doctored = if doctored == text {
        format!("{text}Requires-Dist: not-served-here\n")
    } else {
        doctored
    };
    store
        .set_ref(&reference, &store.put_blob(doctored.as_bytes()).unwrap())
        .unwrap();
    let second = build(src.path(), Some(&index.url), &[]);
    assert_ne!(second.status(), 0, "{}", explain(&second));
    assert!(second.log().contains("not-served-here"), "{}", second.log());

    common::ensure_bundle("python:3.13");
    let src = project(
        &python_buildspec(&commands).replace("python: 3.12", "python: 3.13"),
        &[],
    );
    let on_313 = build(src.path(), Some(&index.url), &[]);
    assert_eq!(on_313.status(), 0, "{}", explain(&on_313));
    assert!(
        store
            .get_ref(&format!("python/sdist-metadata/python3.13/{sha256}"))
            .unwrap()
            .is_some()
    );
}

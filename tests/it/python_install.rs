//! Installing wheels into a guest home and building Python projects with their PEP 517
//! backends in the sandbox (src/python/wheel.rs, src/python/frontend.rs).
//!
//! Real wheels are pinned and fetched once with the host's ordinary pip
//! (`pip download --no-deps NAME==VERSION`) into a cache under cargo's test scratch
//! directory; afterwards the tests run offline from that cache. The installed trees are
//! compared with native `pip install --target` of the same wheels (differential), and the
//! installed packages are imported and run by the guest's python.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use cap_std::fs::Dir;
use wasmbuild::image::{Image, ImageRunner, ProgramIo, ProgramOutcome};
use wasmbuild::python::frontend::{BuildEnv, BuildKind, Frontend, SdistBuilder};
use wasmbuild::python::wheel::{self, InstallOptions, Scheme};
use wasmbuild::python::{DistFile, Interpreter, PackageError, Pin, SdistMetadata, normalize_name};
use wasmbuild::runtime::Runtimes;
use wasmbuild::sandbox::{Determinism, GuestExit, Layout, Sandbox, SandboxConfig, SharedBuffer};
use wasmbuild::store::Store;

// ---------------------------------------------------------------------------------------
// Pinned wheels, fetched once with the host's pip.

const ATTRS: &str = "attrs==24.2.0";
const INICONFIG: &str = "iniconfig==2.0.0";
const PYTEST: &str = "pytest==8.3.4";
const PACKAGING: &str = "packaging==24.2";
const PLUGGY: &str = "pluggy==1.5.0";
const SETUPTOOLS: &str = "setuptools==75.6.0";
const HATCHLING: &str = "hatchling==1.26.3";
const PATHSPEC: &str = "pathspec==0.12.1";
const TROVE: &str = "trove-classifiers==2024.10.21.16";
const FLIT_CORE: &str = "flit-core==3.10.1";
const EDITABLES: &str = "editables==0.5";
const POETRY_CORE: &str = "poetry-core==1.9.1";
const PDM_BACKEND: &str = "pdm-backend==2.4.3";

/// The user scheme of the default python (3.13), where builds install.
fn user() -> Scheme {
    Scheme::user(Interpreter::default())
}

fn pin_of(path: &Path) -> (Pin, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let (name, version) = wheel::parse_wheel_file_name(&file).unwrap();
    (
        Pin {
            name: normalize_name(&name),
            version,
            file,
            url: String::new(),
            sha256: wasmbuild::digest::sha256_hex(&bytes),
        },
        bytes,
    )
}

// ---------------------------------------------------------------------------------------
// A guest: the python image over scratch directories.

struct Guest {
    _scratch: tempfile::TempDir,
    src: PathBuf,
    home: PathBuf,
    runner: ImageRunner,
}

fn sandbox() -> Arc<Sandbox> {
    static SANDBOX: OnceLock<Arc<Sandbox>> = OnceLock::new();
    SANDBOX
        .get_or_init(|| {
            let store = Store::open(common::store_dir()).unwrap();
            Arc::new(
                Sandbox::new(SandboxConfig {
                    code_cache_dir: Some(store.local_dir("compiled")),
                    // Kept in the store, as the CLI keeps them: this sandbox lives in a
                    // static, never dropped, and would leave its own behind in /dev/shm.
                    skeleton_dir: Some(store.local_dir("skeletons")),
                    ..SandboxConfig::default()
                })
                .unwrap(),
            )
        })
        .clone()
}

fn guest(determinism: Option<Determinism>) -> Guest {
    common::ensure_bundle("python");
    let scratch = tempfile::tempdir().unwrap();
    let (src, tmp, home) = (
        scratch.path().join("src"),
        scratch.path().join("tmp"),
        scratch.path().join("root"),
    );
    for dir in [&src, &tmp, &home] {
        std::fs::create_dir(dir).unwrap();
    }
    let store = Store::open(common::store_dir()).unwrap();
    let runtimes = Runtimes::new(store);
    let image = Image::open(&runtimes, "python", Path::new("runtimes")).unwrap();
    let mut runner = ImageRunner::new(
        sandbox(),
        Arc::new(image),
        Layout::build(src.clone(), tmp, home.clone()),
    );
    runner.determinism = determinism;
    Guest {
        _scratch: scratch,
        src,
        home,
        runner,
    }
}

impl Guest {
    fn home_dir(&self) -> Dir {
        Dir::open_ambient_dir(&self.home, cap_std::ambient_authority()).unwrap()
    }

    /// Runs the image's `argv[0]` in the guest; (status, stdout + stderr).
    fn run(&self, argv: &[&str]) -> (i32, String) {
        let out = SharedBuffer::default();
        let env = vec![
            ("PATH".to_owned(), self.runner.image.guest_path_var()),
            ("HOME".to_owned(), "/root".to_owned()),
            ("PWD".to_owned(), "/codebuild/output/src".to_owned()),
        ];
        let outcome = self
            .runner
            .run_command(
                argv.iter().map(|s| s.to_string()).collect(),
                env,
                "/codebuild/output/src",
                ProgramIo {
                    stdin: Box::new(std::io::empty()),
                    stdout: Box::new(out.clone()),
                    stderr: Box::new(out.clone()),
                    terminal: [false; 3],
                    spawner: None,
                    kill: None,
                    ends_process: false,
                },
            )
            .unwrap();
        let status = match outcome {
            ProgramOutcome::Ran(GuestExit::Exited(code)) => code,
            other => panic!("{argv:?}: {other:?}"),
        };
        (
            status,
            String::from_utf8_lossy(&out.contents()).into_owned(),
        )
    }

    /// Runs an installed `#!` script of the guest home the way the shell does: the
    /// interpreter its first line names, with the script's guest path.
    fn run_script(&self, name: &str, args: &[&str]) -> (i32, String) {
        let text = std::fs::read_to_string(self.home.join(".local/bin").join(name)).unwrap();
        let interpreter = text.lines().next().unwrap().strip_prefix("#!").unwrap();
        assert_eq!(
            Some(interpreter.to_owned()),
            self.runner.image.program_guest_path("python3"),
            "the script's #! names the image's python"
        );
        let script = format!("/root/.local/bin/{name}");
        let mut argv = vec!["python3", script.as_str()];
        argv.extend(args);
        self.run(&argv)
    }
}

/// Every file below `root` (relative, `/`-separated) with its contents.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if !root.exists() {
        return out;
    }
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(root).unwrap();
            out.insert(
                rel.to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            );
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Wheels made by hand (for bad input and upgrades).

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn record_line(path: &str, contents: &[u8]) -> String {
    use sha2::Digest;
    format!(
        "{path},sha256={},{}\n",
        b64(&sha2::Sha256::digest(contents)),
        contents.len()
    )
}

/// A wheel of project `name` `version` with `files` (below the wheel's root) and a
/// correct RECORD; `tamper` changes members after RECORD is made.
fn make_wheel(
    name: &str,
    version: &str,
    files: &[(&str, &[u8])],
    extra_dist_info: &[(&str, &str)],
    tamper: &[(&str, &[u8])],
) -> (Pin, Vec<u8>) {
    let dist_info = format!("{name}-{version}.dist-info");
    let mut members: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(p, c)| (p.to_string(), c.to_vec()))
        .collect();
    members.push((
        format!("{dist_info}/METADATA"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n").into_bytes(),
    ));
    members.push((
        format!("{dist_info}/WHEEL"),
        b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_vec(),
    ));
    for (file, text) in extra_dist_info {
        members.push((format!("{dist_info}/{file}"), text.as_bytes().to_vec()));
    }
    let mut record = String::new();
    for (path, contents) in &members {
        record.push_str(&record_line(path, contents));
    }
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    for (path, contents) in tamper {
        match members.iter_mut().find(|(p, _)| p == path) {
            Some(member) => member.1 = contents.to_vec(),
            None => members.push((path.to_string(), contents.to_vec())),
        }
    }
    members.push((format!("{dist_info}/RECORD"), record.into_bytes()));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, contents) in &members {
        zip.start_file(
            path.as_str(),
            zip::write::SimpleFileOptions::default().unix_permissions(0o644),
        )
        .unwrap();
        zip.write_all(contents).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    let file = format!("{name}-{version}-py3-none-any.whl");
    (
        Pin {
            name: normalize_name(name),
            version: version.into(),
            file,
            url: String::new(),
            sha256: wasmbuild::digest::sha256_hex(&bytes),
        },
        bytes,
    )
}

fn home_only() -> (tempfile::TempDir, Dir) {
    let dir = tempfile::tempdir().unwrap();
    let cap = Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()).unwrap();
    (dir, cap)
}

// ---------------------------------------------------------------------------------------
// Installing.

#[test]
fn real_wheels_install_import_and_their_console_scripts_run_in_the_guest() {
    let wheels: Vec<(Pin, Vec<u8>)> = [ATTRS, INICONFIG, PYTEST, PACKAGING, PLUGGY]
        .iter()
        .map(|spec| pin_of(&common::index::real_wheel(spec)))
        .collect();
    let guest = guest(None);
    let home = guest.home_dir();
    let refs: Vec<(&Pin, &[u8])> = wheels.iter().map(|(p, b)| (p, b.as_slice())).collect();
    let done = wheel::install_wheels_to(&home, &user(), &refs, &InstallOptions::default()).unwrap();
    assert_eq!(done.len(), 5);
    let pytest = done.iter().find(|d| d.name == "pytest").unwrap();
    assert_eq!(
        pytest.scripts,
        vec!["py.test".to_owned(), "pytest".to_owned()]
    );

    let listed: Vec<(String, String)> = wheel::installed_in(&home, &user())
        .unwrap()
        .into_iter()
        .map(|p| (p.normalized, p.version))
        .collect();
    assert_eq!(
        listed,
        [
            ("attrs", "24.2.0"),
            ("iniconfig", "2.0.0"),
            ("packaging", "24.2"),
            ("pluggy", "1.5.0"),
            ("pytest", "8.3.4")
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
    let meta = wheel::installed_metadata(&home, &user(), "PyTest")
        .unwrap()
        .unwrap();
    assert!(meta.contains("Version: 8.3.4"));

    // Scripts: executable, not group/world writable; modules 0644.
    let mode = |rel: &str| {
        std::fs::metadata(guest.home.join(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode(".local/bin/pytest"), 0o755);
    assert_eq!(
        mode(".local/lib/python3.13/site-packages/_pytest/__init__.py"),
        0o644
    );
    assert_eq!(
        std::fs::read_to_string(
            guest
                .home
                .join(".local/lib/python3.13/site-packages/pytest-8.3.4.dist-info/INSTALLER")
        )
        .unwrap(),
        "wasmbuild\n"
    );

    let (status, out) = guest.run(&[
        "python3",
        "-c",
        "import attrs, iniconfig, packaging.version, pluggy; print(attrs.__version__, packaging.version.Version('1.0rc1').is_prerelease)",
    ]);
    assert_eq!((status, out.trim()), (0, "24.2.0 True"), "{out}");
    // (`-s -p no:faulthandler`: the guest's os.dup of the standard streams comes with the
    // POSIX shims, not here.)
    let (status, out) = guest.run_script("pytest", &["--version", "-s", "-p", "no:faulthandler"]);
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("pytest 8.3.4"), "{out}");
}

#[test]
fn installed_files_match_native_pip_install_target() {
    for spec in [ATTRS, INICONFIG, PYTEST, PLUGGY] {
        let path = common::index::real_wheel(spec);
        let (pin, bytes) = pin_of(&path);
        let ours = tempfile::tempdir().unwrap();
        let cap = Dir::open_ambient_dir(ours.path(), cap_std::ambient_authority()).unwrap();
        let done = wheel::install_wheel_to(
            &cap,
            &Scheme::target(),
            &bytes,
            &pin,
            &InstallOptions::default(),
        )
        .unwrap();
        let native = tempfile::tempdir().unwrap();
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-compile",
                "--no-index",
                "--target",
            ])
            .arg(native.path())
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let ignored = |rel: &str| {
            rel.ends_with("/RECORD")
                || rel.ends_with("/INSTALLER")
                || rel.ends_with("/REQUESTED")
                || rel.ends_with("/direct_url.json")
                || rel.contains("__pycache__")
        };
        let ours_tree: BTreeMap<_, _> = tree(ours.path())
            .into_iter()
            .filter(|(k, _)| !ignored(k))
            .collect();
        let native_tree: BTreeMap<_, _> = tree(native.path())
            .into_iter()
            .filter(|(k, _)| !ignored(k))
            .collect();
        assert_eq!(
            ours_tree.keys().collect::<Vec<_>>(),
            native_tree.keys().collect::<Vec<_>>(),
            "{spec}: the same files as pip install --target"
        );
        for (rel, contents) in &ours_tree {
            let theirs = &native_tree[rel];
            if rel.starts_with("bin/") {
                // Launchers: the same program below the interpreter line.
                let body = |c: &[u8]| {
                    String::from_utf8_lossy(c)
                        .lines()
                        .skip(1)
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                };
                assert_eq!(body(contents), body(theirs), "{spec}: {rel}");
                assert!(contents.starts_with(b"#!/opt/runtimes/python/bin/python3\n"));
            } else {
                assert!(contents == theirs, "{spec}: {rel} differs from pip's");
            }
        }
        // Our RECORD lists exactly what we wrote, each with its sha256.
        let record =
            std::fs::read_to_string(ours.path().join(&done.dist_info).join("RECORD")).unwrap();
        let listed: BTreeSet<String> = record
            .lines()
            .map(|l| l.split(',').next().unwrap().to_owned())
            .collect();
        let on_disk: BTreeSet<String> = tree(ours.path()).into_keys().collect();
        assert_eq!(listed, on_disk, "{spec}: RECORD lists every installed file");
    }
}

#[test]
fn a_wheel_whose_file_does_not_match_record_installs_nothing_and_keeps_the_old_version() {
    let (home_tmp, home) = home_only();
    let (old_pin, old) = make_wheel("demo", "1.0", &[("demo/__init__.py", b"V = 1\n")], &[], &[]);
    wheel::install_wheel_to(&home, &user(), &old, &old_pin, &InstallOptions::default()).unwrap();
    let before = tree(home_tmp.path());

    let (pin, bytes) = make_wheel(
        "demo",
        "2.0",
        &[
            ("demo/__init__.py", b"V = 2\n"),
            ("demo/extra.py", b"x = 1\n"),
        ],
        &[],
        &[("demo/extra.py", b"x = 666\n")],
    );
    let err = wheel::install_wheel_to(&home, &user(), &bytes, &pin, &InstallOptions::default())
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, PackageError::BadDistribution { .. }),
        "{message}"
    );
    assert!(
        message.contains("demo/extra.py does not match its RECORD hash"),
        "{message}"
    );
    assert!(!message.contains('\n'));
    assert_eq!(
        tree(home_tmp.path()),
        before,
        "the old version is intact, nothing new"
    );
    // No staging directory left behind either.
    let names: Vec<_> = std::fs::read_dir(home_tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![".local".to_owned()]);

    // A member missing from RECORD, and a truncated zip, fail the same way.
    let (pin, bytes) = make_wheel("demo", "2.0", &[], &[], &[("demo/sneaky.py", b"1\n")]);
    let err = wheel::install_wheel_to(&home, &user(), &bytes, &pin, &InstallOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("not listed in RECORD"), "{err}");
    let (pin, bytes) = make_wheel("demo", "2.0", &[("demo/a.py", b"1\n")], &[], &[]);
    let err = wheel::install_wheel_to(
        &home,
        &user(),
        &bytes[..bytes.len() / 2],
        &pin,
        &InstallOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a valid wheel"), "{err}");
    assert_eq!(tree(home_tmp.path()), before);
}

#[test]
fn wheel_members_that_leave_the_target_are_refused() {
    for evil in [
        "../escape.py",
        "demo/../../escape.py",
        "/abs/escape.py",
        "demo\\..\\x.py",
    ] {
        let (home_tmp, home) = home_only();
        let (pin, bytes) = make_wheel(
            "demo",
            "1.0",
            &[("demo/__init__.py", b""), (evil, b"pwned\n")],
            &[],
            &[],
        );
        let err = wheel::install_wheel_to(&home, &user(), &bytes, &pin, &InstallOptions::default())
            .unwrap_err();
        assert!(
            err.to_string().contains("not a plain relative path"),
            "{evil}: {err}"
        );
        assert!(
            tree(home_tmp.path()).is_empty(),
            "{evil}: nothing installed"
        );
        assert!(!home_tmp.path().parent().unwrap().join("escape.py").exists());
    }
    // A symbolic link member.
    let (home_tmp, home) = home_only();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.add_symlink(
        "demo/link",
        "/etc/passwd",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.start_file(
        "demo-1.0.dist-info/WHEEL",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(b"Wheel-Version: 1.0\n").unwrap();
    zip.start_file(
        "demo-1.0.dist-info/METADATA",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(b"Name: demo\nVersion: 1.0\n").unwrap();
    zip.start_file(
        "demo-1.0.dist-info/RECORD",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(b"").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let pin = Pin {
        name: "demo".into(),
        version: "1.0".into(),
        file: "demo-1.0-py3-none-any.whl".into(),
        url: String::new(),
        sha256: String::new(),
    };
    let err = wheel::install_wheel_to(&home, &user(), &bytes, &pin, &InstallOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(tree(home_tmp.path()).is_empty());
}

#[test]
fn an_upgrade_removes_the_old_version_and_uninstall_removes_everything() {
    let (home_tmp, home) = home_only();
    let scripts = "[console_scripts]\ndemo-old = demo.old:main\ndemo = demo:main\n";
    let (pin1, v1) = make_wheel(
        "Demo_Pkg",
        "1.0",
        &[
            ("demo/__init__.py", b"def main(): return 0\n"),
            ("demo/old.py", b"def main(): return 0\n"),
            ("demo/sub/gone.py", b""),
            (
                "Demo_Pkg-1.0.data/scripts/demo-tool",
                b"#!python\nprint('hi')\n",
            ),
            ("Demo_Pkg-1.0.data/data/share/demo/readme.txt", b"data\n"),
        ],
        &[("entry_points.txt", scripts)],
        &[],
    );
    let first =
        wheel::install_wheel_to(&home, &user(), &v1, &pin1, &InstallOptions::default()).unwrap();
    assert_eq!(first.scripts, ["demo", "demo-old", "demo-tool"]);
    let root = home_tmp.path();
    let site = root.join(".local/lib/python3.13/site-packages");
    assert!(site.join("demo/sub/gone.py").is_file());
    assert!(root.join(".local/share/demo/readme.txt").is_file());
    assert_eq!(
        std::fs::read_to_string(root.join(".local/bin/demo-tool")).unwrap(),
        "#!/opt/runtimes/python/bin/python3\nprint('hi')\n"
    );
    let launcher = std::fs::read_to_string(root.join(".local/bin/demo-old")).unwrap();
    assert!(
        launcher.contains("from demo.old import main\n"),
        "{launcher}"
    );
    // A .pyc the guest's python wrote since.
    std::fs::create_dir(site.join("demo/__pycache__")).unwrap();
    std::fs::write(site.join("demo/__pycache__/old.cpython-312.pyc"), b"x").unwrap();

    let (pin2, v2) = make_wheel(
        "demo_pkg",
        "2.0",
        &[
            ("demo/__init__.py", b"def main(): return 2\n"),
            ("demo/new.py", b""),
        ],
        &[("entry_points.txt", "[console_scripts]\ndemo = demo:main\n")],
        &[],
    );
    let second =
        wheel::install_wheel_to(&home, &user(), &v2, &pin2, &InstallOptions::default()).unwrap();
    assert_eq!(second.replaced.as_deref(), Some("1.0"));
    let files: BTreeSet<String> = tree(root).into_keys().collect();
    let expected: BTreeSet<String> = [
        ".local/bin/demo",
        ".local/lib/python3.13/site-packages/demo/__init__.py",
        ".local/lib/python3.13/site-packages/demo/new.py",
        ".local/lib/python3.13/site-packages/demo_pkg-2.0.dist-info/INSTALLER",
        ".local/lib/python3.13/site-packages/demo_pkg-2.0.dist-info/METADATA",
        ".local/lib/python3.13/site-packages/demo_pkg-2.0.dist-info/RECORD",
        ".local/lib/python3.13/site-packages/demo_pkg-2.0.dist-info/WHEEL",
        ".local/lib/python3.13/site-packages/demo_pkg-2.0.dist-info/entry_points.txt",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(files, expected);
    assert!(
        !site.join("demo/sub").exists(),
        "emptied directories go too"
    );
    assert!(!root.join(".local/share/demo").exists());

    let removed = wheel::uninstall_from(&home, &user(), "DEMO.pkg")
        .unwrap()
        .unwrap();
    assert_eq!(
        (removed.name.as_str(), removed.version.as_str()),
        ("demo_pkg", "2.0")
    );
    assert!(tree(root).is_empty(), "{:?}", tree(root).keys());
    assert!(site.is_dir(), "site-packages itself stays");
    assert!(
        wheel::uninstall_from(&home, &user(), "demo-pkg")
            .unwrap()
            .is_none()
    );
    assert!(wheel::installed_in(&home, &user()).unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// PEP 517 builds in the sandbox.

/// Build requirements from the wheel cache: each requirement's name is looked up among
/// the pinned wheels, with their unconditional `Requires-Dist` followed.
struct CachedBuildEnv {
    installed: Mutex<Vec<String>>,
}

impl BuildEnv for CachedBuildEnv {
    fn install_requirements(
        &self,
        requirements: &[String],
        target: &Dir,
    ) -> Result<(), PackageError> {
        let pinned = [
            SETUPTOOLS,
            HATCHLING,
            PATHSPEC,
            TROVE,
            PACKAGING,
            PLUGGY,
            FLIT_CORE,
            EDITABLES,
            POETRY_CORE,
            PDM_BACKEND,
        ];
        let mut todo: Vec<String> = requirements.to_vec();
        let mut wheels = Vec::new();
        let mut seen = BTreeSet::new();
        while let Some(req) = todo.pop() {
            let name: String = req
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect();
            let name = normalize_name(&name);
            if !seen.insert(name.clone()) {
                continue;
            }
            let spec = pinned
                .iter()
                .find(|s| normalize_name(s.split_once("==").unwrap().0) == name)
                .unwrap_or_else(|| panic!("no pinned wheel for build requirement {req}"));
            let (pin, bytes) = pin_of(&common::index::real_wheel(spec));
            let meta = wheel::wheel_metadata(&pin.file, &bytes)?;
            for line in meta.lines() {
                if let Some(dep) = line.strip_prefix("Requires-Dist: ")
                    && !dep.contains(';')
                {
                    todo.push(dep.to_owned());
                }
            }
            wheels.push((pin, bytes));
        }
        let refs: Vec<(&Pin, &[u8])> = wheels.iter().map(|(p, b)| (p, b.as_slice())).collect();
        wheel::install_wheels_to(target, &Scheme::target(), &refs, &InstallOptions::default())?;
        self.installed
            .lock()
            .unwrap()
            .extend(wheels.iter().map(|(p, _)| p.name.clone()));
        Ok(())
    }
}

fn build_env() -> CachedBuildEnv {
    CachedBuildEnv {
        installed: Mutex::new(Vec::new()),
    }
}

/// Writes a small pure-Python project with `pyproject` into the guest's source dir.
fn write_project(guest: &Guest, pyproject: &str, extra: &[(&str, &str)]) {
    let src = &guest.src;
    std::fs::create_dir_all(src.join("src/demo_pkg")).unwrap();
    std::fs::write(src.join("pyproject.toml"), pyproject).unwrap();
    std::fs::write(
        src.join("src/demo_pkg/__init__.py"),
        "\"\"\"A demo package.\"\"\"\n__version__ = \"0.3.0\"\n\ndef hello():\n    return 'hello from demo'\n\ndef main():\n    print(hello())\n",
    )
    .unwrap();
    std::fs::write(src.join("README.md"), "# demo\n").unwrap();
    for (path, text) in extra {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

const SETUPTOOLS_PROJECT: &str = r#"[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "demo-pkg"
version = "0.3.0"
description = "demo"
readme = "README.md"
requires-python = ">=3.8"
dependencies = ["iniconfig"]

[project.scripts]
demo-hello = "demo_pkg:main"
"#;

const HATCHLING_PROJECT: &str = r#"[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "demo-pkg"
version = "0.3.0"
description = "demo"
readme = "README.md"
requires-python = ">=3.8"

[tool.hatch.build.targets.wheel]
packages = ["src/demo_pkg"]
"#;

const FLIT_PROJECT: &str = r#"[build-system]
requires = ["flit_core >=3.2,<4"]
build-backend = "flit_core.buildapi"

[project]
name = "demo_pkg"
authors = [{name = "Demo", email = "demo@example.invalid"}]
readme = "README.md"
dynamic = ["version", "description"]
"#;

const POETRY_PROJECT: &str = r#"[build-system]
requires = ["poetry-core>=1.0.0"]
build-backend = "poetry.core.masonry.api"

[tool.poetry]
name = "demo-pkg"
version = "0.3.0"
description = "demo"
authors = ["Demo <demo@example.invalid>"]
readme = "README.md"
packages = [{ include = "demo_pkg", from = "src" }]

[tool.poetry.dependencies]
python = ">=3.8"
"#;

const PDM_PROJECT: &str = r#"[build-system]
requires = ["pdm-backend"]
build-backend = "pdm.backend"

[project]
name = "demo-pkg"
version = "0.3.0"
description = "demo"
readme = "README.md"
requires-python = ">=3.8"
"#;

fn check_built_wheel(guest: &Guest, built: &wasmbuild::python::frontend::Built) {
    // (flit-core tags py2.py3 without requires-python.)
    assert!(
        built.file.starts_with("demo_pkg-0.3.0-py") && built.file.ends_with("-none-any.whl"),
        "{}",
        built.file
    );
    assert_eq!(
        built.guest_path,
        format!("/codebuild/output/src/dist/{}", built.file)
    );
    assert_eq!(
        std::fs::read(guest.src.join("dist").join(&built.file)).unwrap(),
        built.bytes
    );
    let meta = wheel::wheel_metadata(&built.file, &built.bytes).unwrap();
    assert!(meta.contains("Name: demo"), "{meta}");
    assert!(meta.contains("Version: 0.3.0"), "{meta}");
    // It installs and imports in the guest.
    let (name, version) = wheel::parse_wheel_file_name(&built.file).unwrap();
    let pin = Pin {
        name,
        version,
        file: built.file.clone(),
        url: String::new(),
        sha256: built.sha256.clone(),
    };
    wheel::install_wheel_to(
        &guest.home_dir(),
        &user(),
        &built.bytes,
        &pin,
        &InstallOptions::default(),
    )
    .unwrap();
    let (status, out) = guest.run(&["python3", "-c", "import demo_pkg; print(demo_pkg.hello())"]);
    assert_eq!((status, out.trim()), (0, "hello from demo"), "{out}");
}

#[test]
fn setuptools_hatchling_flit_poetry_and_pdm_projects_build_wheels_in_the_sandbox() {
    for (backend, pyproject) in [
        ("setuptools", SETUPTOOLS_PROJECT),
        ("hatchling", HATCHLING_PROJECT),
        ("flit-core", FLIT_PROJECT),
        ("poetry-core", POETRY_PROJECT),
        ("pdm-backend", PDM_PROJECT),
    ] {
        let guest = guest(None);
        write_project(&guest, pyproject, &[]);
        let env = build_env();
        let log: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
        let frontend = Frontend::new(&guest.runner, &env).with_log(log.clone());
        let built = frontend
            .build(
                "/codebuild/output/src",
                BuildKind::Wheel,
                "/codebuild/output/src/dist",
            )
            .unwrap_or_else(|e| {
                panic!(
                    "{backend}: {e}\n{}",
                    String::from_utf8_lossy(&log.lock().unwrap())
                )
            });
        let installed = env.installed.lock().unwrap().clone();
        assert!(
            installed.contains(&normalize_name(backend)),
            "{backend}: the backend came from the build env: {installed:?}"
        );
        check_built_wheel(&guest, &built);
        if backend == "setuptools" {
            let (status, out) = guest.run_script("demo-hello", &[]);
            assert_eq!((status, out.trim()), (0, "hello from demo"));
        }
        // Nothing of the build stays in /tmp, and the build env never reached the home.
        let tmp = guest.src.parent().unwrap().join("tmp");
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "{backend}");
        let names: Vec<String> = wheel::installed_in(&guest.home_dir(), &user())
            .unwrap()
            .into_iter()
            .map(|p| p.normalized)
            .collect();
        assert_eq!(names, vec!["demo-pkg".to_owned()], "{backend}");
    }
}

#[test]
fn metadata_sdist_and_editable_builds() {
    let guest = guest(None);
    write_project(&guest, HATCHLING_PROJECT, &[]);
    let env = build_env();
    let frontend = Frontend::new(&guest.runner, &env);
    let meta = frontend.metadata("/codebuild/output/src").unwrap();
    assert!(
        meta.contains("Name: demo-pkg") && meta.contains("Version: 0.3.0"),
        "{meta}"
    );

    let sdist = frontend
        .build("/codebuild/output/src", BuildKind::Sdist, "/tmp/sdist")
        .unwrap();
    assert_eq!(sdist.file, "demo_pkg-0.3.0.tar.gz");
    // The sdist unpacks (through the capability) and builds to a wheel again.
    let project = frontend.unpack_sdist(&sdist.file, &sdist.bytes).unwrap();
    assert!(
        project.starts_with("/tmp/") && project.ends_with("/demo_pkg-0.3.0"),
        "{project}"
    );
    let wheel = frontend
        .build(&project, BuildKind::Wheel, "/tmp/wheels")
        .unwrap();
    assert_eq!(wheel.file, "demo_pkg-0.3.0-py3-none-any.whl");

    // The resolver's view: an sdist from the index, fetched through a closure.
    let dist = DistFile {
        file: sdist.file.clone(),
        url: "https://index.invalid/demo_pkg-0.3.0.tar.gz".into(),
        sha256: sdist.sha256.clone(),
        requires_python: None,
        yanked: false,
        has_metadata: false,
    };
    let bytes = sdist.bytes.clone();
    let fetched = Arc::new(Mutex::new(0));
    let counter = fetched.clone();
    let builder = SdistBuilder::new(
        Frontend::new(&guest.runner, &env),
        Box::new(move |file: &DistFile| {
            assert_eq!(file.file, "demo_pkg-0.3.0.tar.gz");
            *counter.lock().unwrap() += 1;
            Ok(bytes.clone())
        }),
    );
    let meta = builder.sdist_metadata(&dist).unwrap();
    assert!(meta.contains("Name: demo-pkg"), "{meta}");
    let from_sdist = builder.build_wheel(&dist, "/tmp/from-sdist").unwrap();
    assert_eq!(from_sdist.file, "demo_pkg-0.3.0-py3-none-any.whl");
    assert_eq!(*fetched.lock().unwrap(), 2);

    // Editable: the installed project imports from the source tree.
    let editable = frontend
        .build(
            "/codebuild/output/src",
            BuildKind::Editable,
            "/tmp/editable",
        )
        .unwrap();
    let (name, version) = wheel::parse_wheel_file_name(&editable.file).unwrap();
    let pin = Pin {
        name,
        version,
        file: editable.file.clone(),
        url: String::new(),
        sha256: editable.sha256.clone(),
    };
    let options = InstallOptions {
        requested: true,
        direct_url: Some(
            r#"{"url": "file:///codebuild/output/src", "dir_info": {"editable": true}}"#.into(),
        ),
        ..InstallOptions::default()
    };
    wheel::install_wheel_to(&guest.home_dir(), &user(), &editable.bytes, &pin, &options).unwrap();
    std::fs::write(
        guest.src.join("src/demo_pkg/__init__.py"),
        "def hello():\n    return 'edited in place'\n",
    )
    .unwrap();
    let (status, out) = guest.run(&["python3", "-c", "import demo_pkg; print(demo_pkg.hello())"]);
    assert_eq!((status, out.trim()), (0, "edited in place"), "{out}");
}

#[test]
fn deterministic_builds_give_byte_identical_wheels() {
    for (backend, pyproject) in [
        ("setuptools", SETUPTOOLS_PROJECT),
        ("hatchling", HATCHLING_PROJECT),
        ("flit-core", FLIT_PROJECT),
    ] {
        let mut wheels = Vec::new();
        for round in 0..2 {
            let guest = guest(Some(Determinism {
                source_date_epoch: 1_700_000_000,
                seed: [7; 32],
            }));
            write_project(&guest, pyproject, &[]);
            if round == 1 {
                // Host-side file times differ between the two checkouts.
                std::thread::sleep(std::time::Duration::from_millis(1100));
                let later = std::time::SystemTime::now();
                for file in ["pyproject.toml", "README.md"] {
                    let f = std::fs::File::options()
                        .write(true)
                        .open(guest.src.join(file))
                        .unwrap();
                    f.set_modified(later).unwrap();
                }
            }
            let env = build_env();
            let built = Frontend::new(&guest.runner, &env)
                .build("/codebuild/output/src", BuildKind::Wheel, "/tmp/dist")
                .unwrap();
            wheels.push(built);
        }
        assert_eq!(wheels[0].file, wheels[1].file);
        assert!(
            wheels[0].bytes == wheels[1].bytes,
            "{backend}: two deterministic builds differ ({} vs {})",
            wheels[0].sha256,
            wheels[1].sha256
        );
    }
}

#[test]
fn a_c_extension_build_fails_as_needing_native_code() {
    let guest = guest(None);
    write_project(
        &guest,
        "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n",
        &[
            (
                "setup.py",
                "from setuptools import setup, Extension\nsetup(name='fastthing', version='1.2', ext_modules=[Extension('fastthing._speed', ['speed.c'])])\n",
            ),
            ("speed.c", "#include <Python.h>\n"),
        ],
    );
    let env = build_env();
    let log: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    let err = Frontend::new(&guest.runner, &env)
        .with_log(log.clone())
        .build("/codebuild/output/src", BuildKind::Wheel, "/tmp/dist")
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, PackageError::NeedsNative { .. }), "{message}");
    assert!(message.contains("fastthing._speed"), "{message}");
    assert!(message.contains("C compiler"), "{message}");
    assert!(
        !message.contains('\n') && !message.contains("Traceback"),
        "{message}"
    );
    // The guest's own output is in the log.
    let log = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(log.contains("Traceback") || log.contains("error"), "{log}");
    assert!(!guest.src.parent().unwrap().join("tmp/dist").exists());

    // A backend that drives a native toolchain is refused before it runs.
    let guest2 = self::guest(None);
    write_project(
        &guest2,
        "[build-system]\nrequires = [\"maturin>=1\"]\nbuild-backend = \"maturin\"\n[project]\nname = \"rusty\"\nversion = \"0.1\"\n",
        &[],
    );
    let err = Frontend::new(&guest2.runner, &env)
        .build("/codebuild/output/src", BuildKind::Wheel, "/tmp/dist")
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("rusty 0.1 cannot run in the WASI sandbox: its build backend is maturin"),
        "{err}"
    );
}

#[test]
fn sdists_whose_members_leave_the_unpack_directory_are_refused() {
    let guest = guest(None);
    let env = build_env();
    let frontend = Frontend::new(&guest.runner, &env);
    let tmp = guest.src.parent().unwrap().join("tmp");
    for evil in [
        "demo-1.0/../../escape.txt",
        "/escape.txt",
        "demo-1.0/../../../x",
    ] {
        // The tar crate refuses to write such names, so the header is written raw.
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..evil.len()].copy_from_slice(evil.as_bytes());
        header.set_size(3);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, &b"bad"[..]).unwrap();
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let bytes = gz.finish().unwrap();
        let err = frontend
            .unpack_sdist("demo-1.0.tar.gz", &bytes)
            .unwrap_err();
        assert!(
            matches!(err, PackageError::BadDistribution { .. })
                && err.to_string().contains("would leave the unpack directory"),
            "{evil}: {err}"
        );
        assert!(!guest.src.parent().unwrap().join("escape.txt").exists());
        assert!(!tmp.parent().unwrap().parent().unwrap().join("x").exists());
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "{evil}: nothing left in /tmp"
        );
    }
}

/// The name a wheel should have, read from its own `WHEEL` tags (`pip wheel` names wheels
/// built from sdists so): real wheels come back with their published names.
#[test]
fn a_wheels_file_name_comes_from_its_wheel_tags() {
    for spec in [INICONFIG, "six==1.16.0", FLIT_CORE] {
        let path = common::index::real_wheel(spec);
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(wheel::wheel_file_name(&file, &bytes).unwrap(), file);
    }
    assert!(wheel::wheel_file_name("x.whl", b"not a zip").is_err());
}

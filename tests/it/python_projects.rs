//! Python projects built for real (issue 14): `fixtures/python-project`'s ordinary buildspec
//! (`pip install -r requirements.txt`, `pip install -e .`, pytest with coverage, a wheel) run
//! end to end, and the published test suites of real pure-Python projects run in the sandbox
//! with the counts native CPython gives.
//!
//! The contract these tests hold the build to: `pip install …` in a buildspec works as on
//! CodeBuild (the host resolves and downloads, pinned by hash, the guest installs offline),
//! packages land in the guest's user site (`/root/.local`), console scripts are on `PATH`
//! (`pytest`, the fixture's `minicalc`), and the build record carries the resolved packages.
//!
//! The real projects' sdists are downloaded once (pinned by version and sha256) with the
//! host's `python3 -m pip download` into a cache under the test scratch directory; later runs
//! use the cache. The expected counts were measured natively (see fixtures/python-real/README.md).

use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Run;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn run_build(src: &Path, buildspec: Option<&Path>) -> Run {
    common::ensure_bundle("base");
    common::ensure_bundle("python");
    let out = tempfile::tempdir().expect("artifacts dir");
    let mut cmd = common::wasmbuild();
    cmd.arg("run").arg(src).arg("-a").arg(out.path());
    if let Some(b) = buildspec {
        cmd.arg("-b").arg(b);
    }
    let output = cmd.output().expect("run wasmbuild");
    Run { output, out }
}

/// The counts of a JUnit XML report, as pytest writes them on its `<testsuite>`
/// (`skipped` includes xfails, as in pytest's report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    tests: u32,
    failures: u32,
    errors: u32,
    skipped: u32,
}

impl Counts {
    fn passed(&self) -> u32 {
        self.tests - self.failures - self.errors - self.skipped
    }
}

fn junit_counts(xml: &str) -> Counts {
    let suite = regex::Regex::new(r"<testsuite\s[^>]*>")
        .unwrap()
        .find(xml)
        .unwrap_or_else(|| panic!("no <testsuite> in the report:\n{xml}"))
        .as_str();
    let attr = |name: &str| -> u32 {
        regex::Regex::new(&format!(r#"\s{name}="(\d+)""#))
            .unwrap()
            .captures(suite)
            .unwrap_or_else(|| panic!("no {name}= in {suite}"))[1]
            .parse()
            .unwrap()
    };
    Counts {
        tests: attr("tests"),
        failures: attr("failures"),
        errors: attr("errors"),
        skipped: attr("skipped"),
    }
}

/// Every pinned distribution the record names, wherever it keeps them: objects with a
/// `name`, a `version` and a `sha256` (the shape of `wasmbuild::python::Pin`).
fn record_pins(record: &Value) -> Vec<(String, String, String)> {
    fn walk(v: &Value, out: &mut Vec<(String, String, String)>) {
        match v {
            Value::Object(map) => {
                if let (Some(Value::String(n)), Some(Value::String(ver)), Some(Value::String(h))) =
                    (map.get("name"), map.get("version"), map.get("sha256"))
                {
                    out.push((n.clone(), ver.clone(), h.clone()));
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(record, &mut out);
    out
}

fn assert_pinned(run: &Run, name: &str, version: &str) {
    let pins = record_pins(&run.record());
    let pin = pins
        .iter()
        .find(|(n, v, _)| n == name && v == version)
        .unwrap_or_else(|| {
            panic!(
                "the build record names no {name} {version}; it has {pins:?}\nlog:\n{}",
                run.log()
            )
        });
    assert!(
        pin.2.len() == 64 && pin.2.bytes().all(|b| b.is_ascii_hexdigit()),
        "{name} {version} is pinned by a sha256: {}",
        pin.2
    );
}

fn assert_succeeded(run: &Run) {
    assert_eq!(
        run.status(),
        0,
        "the build failed\nstdout:\n{}\nstderr:\n{}",
        run.stdout(),
        run.stderr()
    );
    for (phase, status) in run.phases() {
        assert!(
            status.is_empty() || status == "SUCCEEDED",
            "phase {phase}: {status}\n{}",
            run.log()
        );
    }
}

/// PEP 376/427 RECORD hashes: `sha256=` and the urlsafe base64 digest without padding.
fn record_hash(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let digest = Sha256::digest(bytes);
    let mut out = String::from("sha256=");
    for chunk in digest.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn record_hash_is_pep_427s_encoding() {
    // `python3 -c 'import hashlib,base64; print(base64.urlsafe_b64encode(
    //  hashlib.sha256(b"hello\n").digest()).rstrip(b"=").decode())'`
    assert_eq!(
        record_hash(b"hello\n"),
        "sha256=WJG1tSLV3whtD_CxEPvZ0hu0_HFjrzTQgoai6Eb2vgM"
    );
}

// ---------------------------------------------------------------------------------------
// fixtures/python-project: the issue's buildspec, end to end.

/// The fixture's suite: 35 tests, all passing under native CPython (3.11 and 3.12).
const FIXTURE_COUNTS: Counts = Counts {
    tests: 35,
    failures: 0,
    errors: 0,
    skipped: 0,
};

#[test]
fn python_project_installs_tests_with_coverage_and_builds_its_wheel() {
    let run = run_build(&fixtures().join("python-project"), None);
    assert_succeeded(&run);
    let log = run.log();

    // pytest ran as a console script from /root/.local/bin, with the fd capture it uses by
    // default, and found every test.
    let junit = run.artifact("primary/reports/junit.xml");
    assert_eq!(junit_counts(&junit), FIXTURE_COUNTS, "{log}");
    assert!(
        junit.contains("test_hilbert_determinant_is_exact"),
        "{junit}"
    );

    // pytest-cov measured the package where `pip install -e .` left it: in the source tree
    // (natively: `filename="src/minicalc/primes.py"`), not a copy in site-packages.
    let coverage = run.artifact("primary/coverage.xml");
    assert!(coverage.contains("<coverage"), "{coverage}");
    for module in ["primes.py", "matrix.py", "graph.py", "text.py", "cli.py"] {
        assert!(
            coverage.contains(&format!("filename=\"src/minicalc/{module}\"")),
            "coverage.xml covers src/minicalc/{module}:\n{coverage}"
        );
    }
    let rate: f64 = regex::Regex::new(r#"<coverage[^>]*\sline-rate="([0-9.]+)""#)
        .unwrap()
        .captures(&coverage)
        .expect("line-rate")[1]
        .parse()
        .unwrap();
    assert!(rate > 0.8, "the suite covers most lines: {rate}");

    // The buildspec's report groups, made from those files after the build: the counts
    // pytest wrote and the totals coverage.py wrote, to the unit.
    let record = run.record();
    let tests = &record["reports"][0];
    assert_eq!(
        tests["reportGroupArn"], "python-project-minicalc-tests",
        "{record:#}"
    );
    assert_eq!(tests["status"], "SUCCEEDED");
    assert_eq!(tests["testSummary"]["total"], FIXTURE_COUNTS.tests);
    assert_eq!(
        tests["testSummary"]["statusCounts"]["SUCCEEDED"],
        FIXTURE_COUNTS.passed()
    );
    let cover = &record["reports"][1];
    assert_eq!(cover["type"], "CODE_COVERAGE");
    let attr = |name: &str| -> u64 {
        regex::Regex::new(&format!(r#"<coverage[^>]*\s{name}="([0-9]+)""#))
            .unwrap()
            .captures(&coverage)
            .unwrap_or_else(|| panic!("no {name}"))[1]
            .parse()
            .unwrap()
    };
    let summary = &cover["codeCoverageSummary"];
    assert_eq!(summary["linesCovered"], attr("lines-covered"), "{summary}");
    assert_eq!(
        summary["linesCovered"].as_u64().unwrap() + summary["linesMissed"].as_u64().unwrap(),
        attr("lines-valid")
    );
    assert_eq!(
        summary["branchesCovered"],
        attr("branches-covered"),
        "{summary}"
    );
    assert!(
        log.contains("Report minicalc-tests (JUNITXML): SUCCEEDED"),
        "{log}"
    );

    // The console script the package declares runs after `pip install -e .`.
    assert!(log.contains("2 3 5 7 11 13 17 19 23 29\n"), "{log}");

    // The record carries the resolved set, each pinned by hash.
    for line in std::fs::read_to_string(fixtures().join("python-project/requirements.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (name, version) = line.split_once("==").expect("pinned requirement");
        let name = name.trim().to_ascii_lowercase().replace('_', "-");
        assert_pinned(&run, &name, version.trim());
    }

    // The wheel is a valid pure-Python wheel of the package.
    let wheel_path = run
        .out
        .path()
        .join("primary/dist/minicalc-0.3.0-py3-none-any.whl");
    let bytes = std::fs::read(&wheel_path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{log}", wheel_path.display()));
    let mut wheel = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a wheel is a zip");
    let read = |wheel: &mut zip::ZipArchive<_>, name: &str| -> Vec<u8> {
        let mut file = wheel
            .by_name(name)
            .unwrap_or_else(|e| panic!("{name} in the wheel: {e}"));
        let mut out = Vec::new();
        file.read_to_end(&mut out).unwrap();
        out
    };
    let text = |wheel: &mut zip::ZipArchive<_>, name: &str| {
        String::from_utf8(read(wheel, name)).expect("utf-8")
    };
    let info = "minicalc-0.3.0.dist-info";
    let metadata = text(&mut wheel, &format!("{info}/METADATA"));
    assert!(metadata.contains("Name: minicalc\n"), "{metadata}");
    assert!(metadata.contains("Version: 0.3.0\n"), "{metadata}");
    assert!(
        metadata.contains("Requires-Dist: attrs>=23.1"),
        "{metadata}"
    );
    let wheel_file = text(&mut wheel, &format!("{info}/WHEEL"));
    assert!(wheel_file.contains("Root-Is-Purelib: true"), "{wheel_file}");
    assert!(wheel_file.contains("Tag: py3-none-any"), "{wheel_file}");
    let entry_points = text(&mut wheel, &format!("{info}/entry_points.txt"));
    assert!(
        entry_points.contains("minicalc = minicalc.cli:main"),
        "{entry_points}"
    );
    // Every file is in RECORD with its hash, and RECORD lists nothing else.
    let record = text(&mut wheel, &format!("{info}/RECORD"));
    let mut listed: Vec<String> = Vec::new();
    for line in record.lines().filter(|l| !l.is_empty()) {
        let mut fields = line.rsplitn(3, ',');
        let (size, hash, path) = (
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        listed.push(path.to_owned());
        if path.ends_with("/RECORD") {
            continue;
        }
        let content = read(&mut wheel, path);
        assert_eq!(hash, record_hash(&content), "RECORD hash of {path}");
        assert_eq!(size, content.len().to_string(), "RECORD size of {path}");
    }
    let mut names: Vec<String> = wheel
        .file_names()
        .map(|n| n.expect("a file name").into_owned())
        .collect();
    names.sort();
    listed.sort();
    assert_eq!(names, listed, "the wheel holds exactly what RECORD lists");
    for module in [
        "__init__.py",
        "primes.py",
        "matrix.py",
        "graph.py",
        "text.py",
        "cli.py",
    ] {
        assert!(
            names.contains(&format!("minicalc/{module}")),
            "minicalc/{module} in {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.starts_with("tests/")),
        "tests stay out of the wheel: {names:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Real projects: their published test suites, in the sandbox, against native counts.

struct Project {
    /// The name on the index and the buildspec's file stem under fixtures/python-real.
    name: &'static str,
    version: &'static str,
    /// The sdist's file name and its sha256 (as the index publishes it).
    sdist: &'static str,
    sha256: &'static str,
    /// The counts of the same buildspec's commands run natively (CPython 3.11.7 on Linux).
    native: Counts,
    /// What differs in the sandbox, each with its reason: tests the buildspec deselects
    /// (`--deselect`, not in the report) and tests the suite itself skips there.
    deselected: u32,
    /// Negative when deselected tests were skips natively.
    skipped_in_sandbox: i32,
}

impl Project {
    /// The counts the sandbox must report: the native ones less the deselected tests, with
    /// the sandbox's extra skips taken from the passes.
    fn expected(&self) -> Counts {
        Counts {
            tests: self.native.tests - self.deselected,
            skipped: self
                .native
                .skipped
                .checked_add_signed(self.skipped_in_sandbox)
                .expect("skips are counts"),
            ..self.native
        }
    }
}

const SIX: Project = Project {
    name: "six",
    version: "1.17.0",
    sdist: "six-1.17.0.tar.gz",
    sha256: "ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81",
    // 2 skipped: dbm.gnu and dbm.ndbm are not built (natively nor in the guest). The
    // buildspec deselects 1 of the suite's 200 tests (ssl: see six.yml; test_getoutput,
    // which starts a shell through subprocess, runs); in
    // the sandbox six skips 15 more itself: the tkinter modules of six.moves, which
    // CPython's WASI build lacks.
    native: Counts {
        tests: 200,
        failures: 0,
        errors: 0,
        skipped: 2,
    },
    deselected: 1,
    skipped_in_sandbox: 15,
};

const IDNA: Project = Project {
    name: "idna",
    version: "3.10",
    sdist: "idna-3.10.tar.gz",
    sha256: "12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13ea9",
    native: Counts {
        tests: 32,
        failures: 0,
        errors: 0,
        skipped: 0,
    },
    deselected: 0,
    skipped_in_sandbox: 0,
};

const MORE_ITERTOOLS: Project = Project {
    name: "more-itertools",
    version: "10.5.0",
    sdist: "more-itertools-10.5.0.tar.gz",
    sha256: "5482bfef7849c25dc3c6dd53a6173ae4795da2a41a80faea6700d9f5846c5da6",
    // 1 skipped by the suite itself ("strict=True missing on 3.9").
    native: Counts {
        tests: 664,
        failures: 0,
        errors: 0,
        skipped: 1,
    },
    // Deselected: CallbackIterTests::test_abort, which needs a second thread.
    deselected: 1,
    skipped_in_sandbox: 0,
};

const TOOLZ: Project = Project {
    name: "toolz",
    version: "1.0.0",
    sdist: "toolz-1.0.0.tar.gz",
    sha256: "2c86e3d9a04798ac556793bced838816296a2f085017664e4995cb40a1047a02",
    native: Counts {
        tests: 180,
        failures: 0,
        errors: 0,
        skipped: 0,
    },
    deselected: 0,
    skipped_in_sandbox: 0,
};

const DATEUTIL: Project = Project {
    name: "python-dateutil",
    version: "2.9.0.post0",
    sdist: "python-dateutil-2.9.0.post0.tar.gz",
    sha256: "37dd54208da7e1cd875388217d5e00ebd4179249f90fb72437e91a35459a0ad3",
    // 2032 passed; skipped 64 = 47 skips (37 "Requires Windows", 8 known failures, 2
    // sub-minute offsets) + 17 xfails.
    native: Counts {
        tests: 2096,
        failures: 0,
        errors: 0,
        skipped: 64,
    },
    // Deselected: 57 tests that change the local zone at run time (time.tzset, which the
    // WASI build lacks); one of them is a native skip.
    deselected: 57,
    skipped_in_sandbox: -1,
};

const PACKAGING: Project = Project {
    name: "packaging",
    version: "24.2",
    sdist: "packaging-24.2.tar.gz",
    sha256: "c228a6dc5e932d346bc5739379109d49e8853dd8223571c7c5b55260edc0b97f",
    // 26921 tests, most of them parametrized version and specifier cases: ~2 min natively.
    native: Counts {
        tests: 26921,
        failures: 0,
        errors: 0,
        skipped: 0,
    },
    deselected: 0,
    skipped_in_sandbox: 0,
};

/// The pinned sdist of `project`, downloaded once with the host's pip into the scratch cache.
fn sdist(project: &Project) -> PathBuf {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-sdists");
    let path = cache.join(project.sdist);
    let sha256_of = |p: &Path| hex::encode(Sha256::digest(std::fs::read(p).unwrap()));
    if path.is_file() && sha256_of(&path) == project.sha256 {
        return path;
    }
    std::fs::create_dir_all(&cache).unwrap();
    // Download beside the cache, then move in: parallel tests never see half a file.
    let download = tempfile::tempdir_in(&cache).unwrap();
    let output = Command::new("python3")
        .args(["-m", "pip", "download", "--quiet", "--no-deps"])
        .args(["--no-binary=:all:", "--dest"])
        .arg(download.path())
        .arg(format!("{}=={}", project.name, project.version))
        .output()
        .expect("the host's python3 runs (it downloads the pinned sdists once)");
    assert!(
        output.status.success(),
        "pip download {} {}: {}",
        project.name,
        project.version,
        String::from_utf8_lossy(&output.stderr)
    );
    let fetched = download.path().join(project.sdist);
    assert_eq!(
        sha256_of(&fetched),
        project.sha256,
        "{} is not the file these tests were measured with",
        project.sdist
    );
    std::fs::rename(&fetched, &path).unwrap();
    path
}

/// Unpacks the sdist into a fresh directory and returns it with the project's source root.
fn unpack(project: &Project) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::open(sdist(project)).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(dir.path())
        .expect("unpack the sdist");
    let root = dir.path().join(project.sdist.trim_end_matches(".tar.gz"));
    assert!(
        root.join("PKG-INFO").is_file(),
        "{} is an sdist",
        project.sdist
    );
    (dir, root)
}

fn run_real_project(project: &Project) {
    run_real_project_on(project, "3.12");
}

/// The project's buildspec, asking for python `version` (the fixtures ask for 3.12).
fn run_real_project_on(project: &Project, version: &str) {
    let (dir, src) = unpack(project);
    let fixture = fixtures()
        .join("python-real")
        .join(format!("{}.yml", project.name));
    let text = std::fs::read_to_string(&fixture).unwrap();
    assert!(text.contains("python: 3.12"), "{}", fixture.display());
    let buildspec = dir.path().join(format!("{}-{version}.yml", project.name));
    std::fs::write(
        &buildspec,
        text.replace("python: 3.12", &format!("python: {version}")),
    )
    .unwrap();
    if version != "3.12" {
        common::ensure_bundle(&format!("python:{version}"));
    }
    let run = run_build(&src, Some(&buildspec));
    assert!(
        run.log()
            .contains(&format!("Selected runtime python {version}.")),
        "{}",
        run.log()
    );
    assert_succeeded(&run);
    let junit = run.artifact("primary/reports/junit.xml");
    let counts = junit_counts(&junit);
    assert_eq!(
        counts,
        project.expected(),
        "{} {}: {} passed in the sandbox, {} natively ({} deselected)\n{}",
        project.name,
        project.version,
        counts.passed(),
        project.native.passed(),
        project.deselected,
        run.log()
    );
    assert_eq!((counts.failures, counts.errors), (0, 0));
    assert_pinned(&run, "pytest", "8.3.4");
    assert_pinned(&run, "pluggy", "1.5.0");
}

#[test]
fn six_suite_passes_in_the_sandbox_as_natively() {
    run_real_project(&SIX);
}

#[test]
fn idna_suite_passes_in_the_sandbox_as_natively() {
    run_real_project(&IDNA);
}

#[test]
fn more_itertools_suite_passes_in_the_sandbox_as_natively() {
    run_real_project(&MORE_ITERTOOLS);
}

#[test]
fn toolz_suite_passes_in_the_sandbox_as_natively() {
    run_real_project(&TOOLZ);
}

#[test]
fn python_dateutil_suite_passes_in_the_sandbox_as_natively() {
    run_real_project(&DATEUTIL);
}

// The same suites on the python 3.13 built here: installed by pip for 3.13, the same counts.
#[test]
fn toolz_suite_passes_on_python_3_13_too() {
    run_real_project_on(&TOOLZ, "3.13");
}

#[test]
fn more_itertools_suite_passes_on_python_3_13_too() {
    run_real_project_on(&MORE_ITERTOOLS, "3.13");
}

/// ~27 000 tests: about two minutes natively, so well past three in the sandbox.
#[test]
#[ignore = "long: packaging's 26921 tests take minutes in the sandbox (cargo test -- --ignored)"]
fn packaging_suite_passes_in_the_sandbox_as_natively() {
    run_real_project(&PACKAGING);
}

#[test]
fn junit_counts_reads_pytests_testsuite() {
    let xml = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" failures="2" skipped="3" tests="10" time="0.5" timestamp="x" hostname="h"><testcase/></testsuite></testsuites>"#;
    let counts = junit_counts(xml);
    assert_eq!(
        counts,
        Counts {
            tests: 10,
            failures: 2,
            errors: 1,
            skipped: 3
        }
    );
    assert_eq!(counts.passed(), 4);
}

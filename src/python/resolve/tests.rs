//! Resolution against an in-memory index holding real projects' file names and
//! Requires-Dist (as the index and the wheels' METADATA give them).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;

/// One project version: its files (name, yanked, requires-python) and its METADATA.
struct Release {
    files: Vec<(&'static str, bool, Option<&'static str>)>,
    metadata: String,
}

#[derive(Default)]
struct FakeIndex {
    projects: BTreeMap<String, Vec<Release>>,
    asked: Mutex<Vec<String>>,
    metadata_asked: Mutex<Vec<String>>,
    /// A lock's rerun must not list any project.
    forbid_project: bool,
}

fn sha(file: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(file.as_bytes()))
}

fn dist(file: &str, yanked: bool, requires_python: Option<&str>) -> DistFile {
    DistFile {
        file: file.to_string(),
        url: format!("https://files.example/{file}"),
        sha256: sha(file),
        requires_python: requires_python.map(str::to_string),
        yanked,
        has_metadata: true,
    }
}

fn metadata(name: &str, version: &str, requires: &[&str], python: Option<&str>) -> String {
    let mut text = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    if let Some(python) = python {
        text.push_str(&format!("Requires-Python: {python}\n"));
    }
    for r in requires {
        text.push_str(&format!("Requires-Dist: {r}\n"));
    }
    text.push_str("\nThe description: Requires-Dist: not-a-header\n");
    text
}

impl FakeIndex {
    fn add(
        &mut self,
        name: &str,
        version: &str,
        files: &[&'static str],
        requires: &[&str],
        python: Option<&'static str>,
    ) -> &mut Self {
        self.add_files(
            name,
            version,
            files.iter().map(|f| (*f, false, python)).collect(),
            requires,
            python,
        )
    }

    fn add_files(
        &mut self,
        name: &str,
        version: &str,
        files: Vec<(&'static str, bool, Option<&'static str>)>,
        requires: &[&str],
        python: Option<&str>,
    ) -> &mut Self {
        self.projects
            .entry(normalize_name(name))
            .or_default()
            .push(Release {
                files,
                metadata: metadata(name, version, requires, python),
            });
        self
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }

    fn release_of(&self, file: &str) -> Option<&Release> {
        self.projects
            .values()
            .flatten()
            .find(|r| r.files.iter().any(|(f, _, _)| *f == file))
    }
}

impl Index for FakeIndex {
    fn project(&self, name: &str) -> Result<Vec<DistFile>, PackageError> {
        assert!(!self.forbid_project, "the index was asked for {name}");
        self.asked.lock().unwrap().push(name.to_string());
        let releases = self.projects.get(&normalize_name(name)).ok_or_else(|| {
            PackageError::UnknownProject {
                index: "https://index.example/simple/".into(),
                name: name.to_string(),
            }
        })?;
        Ok(releases
            .iter()
            .flat_map(|r| r.files.iter().map(|(f, y, p)| dist(f, *y, *p)))
            .collect())
    }

    fn wheel_metadata(&self, file: &DistFile) -> Result<String, PackageError> {
        assert!(
            file.file.ends_with(".whl"),
            "wheel metadata of {}",
            file.file
        );
        self.metadata_asked.lock().unwrap().push(file.file.clone());
        Ok(self
            .release_of(&file.file)
            .expect("a known file")
            .metadata
            .clone())
    }
}

impl SdistMetadata for FakeIndex {
    fn sdist_metadata(&self, file: &DistFile) -> Result<String, PackageError> {
        assert!(
            !file.file.ends_with(".whl"),
            "sdist metadata of {}",
            file.file
        );
        self.metadata_asked.lock().unwrap().push(file.file.clone());
        Ok(self
            .release_of(&file.file)
            .expect("a known file")
            .metadata
            .clone())
    }
}

const PYTEST_8_3_4: &[&str] = &[
    "iniconfig",
    "packaging",
    "pluggy<2,>=1.5",
    "exceptiongroup>=1.0.0rc8; python_version < \"3.11\"",
    "tomli>=1; python_version < \"3.11\"",
    "colorama; sys_platform == \"win32\"",
    "argcomplete; extra == \"dev\"",
    "attrs>=19.2; extra == \"dev\"",
    "hypothesis>=3.56; extra == \"dev\"",
    "mock; extra == \"dev\"",
    "pygments>=2.7.2; extra == \"dev\"",
    "requests; extra == \"dev\"",
    "setuptools; extra == \"dev\"",
    "xmlschema; extra == \"dev\"",
];

/// pytest 8.3.4 and what it needs on CPython 3.12, plus the projects its markers drop
/// for the guest (so a wrong evaluation would pull them in).
fn pytest_index() -> FakeIndex {
    let mut index = FakeIndex::default();
    index
        .add(
            "pytest",
            "8.3.4",
            &["pytest-8.3.4-py3-none-any.whl", "pytest-8.3.4.tar.gz"],
            PYTEST_8_3_4,
            Some(">=3.8"),
        )
        .add(
            "pytest",
            "8.3.3",
            &["pytest-8.3.3-py3-none-any.whl", "pytest-8.3.3.tar.gz"],
            PYTEST_8_3_4,
            Some(">=3.8"),
        )
        .add(
            "iniconfig",
            "2.0.0",
            &["iniconfig-2.0.0-py3-none-any.whl", "iniconfig-2.0.0.tar.gz"],
            &[],
            Some(">=3.7"),
        )
        .add(
            "packaging",
            "24.1",
            &["packaging-24.1-py3-none-any.whl", "packaging-24.1.tar.gz"],
            &[],
            Some(">=3.8"),
        )
        .add(
            "packaging",
            "24.2",
            &["packaging-24.2-py3-none-any.whl", "packaging-24.2.tar.gz"],
            &[],
            Some(">=3.8"),
        )
        .add(
            "pluggy",
            "1.4.0",
            &["pluggy-1.4.0-py3-none-any.whl", "pluggy-1.4.0.tar.gz"],
            &[
                "pre-commit; extra == \"dev\"",
                "tox; extra == \"dev\"",
                "pytest; extra == \"testing\"",
                "pytest-benchmark; extra == \"testing\"",
            ],
            Some(">=3.8"),
        )
        .add(
            "pluggy",
            "1.5.0",
            &["pluggy-1.5.0-py3-none-any.whl", "pluggy-1.5.0.tar.gz"],
            &[
                "pre-commit; extra == \"dev\"",
                "tox; extra == \"dev\"",
                "pytest; extra == \"testing\"",
                "pytest-benchmark; extra == \"testing\"",
            ],
            Some(">=3.8"),
        )
        .add(
            "tomli",
            "2.2.1",
            &["tomli-2.2.1-py3-none-any.whl", "tomli-2.2.1.tar.gz"],
            &[],
            Some(">=3.8"),
        )
        .add(
            "exceptiongroup",
            "1.2.2",
            &[
                "exceptiongroup-1.2.2-py3-none-any.whl",
                "exceptiongroup-1.2.2.tar.gz",
            ],
            &["pytest>=6; extra == \"test\""],
            Some(">=3.7"),
        )
        .add(
            "colorama",
            "0.4.6",
            &[
                "colorama-0.4.6-py2.py3-none-any.whl",
                "colorama-0.4.6.tar.gz",
            ],
            &[],
            Some("!=3.0.*,!=3.1.*,!=3.2.*,!=3.3.*,!=3.4.*,!=3.5.*,!=3.6.*,>=2.7"),
        );
    index
}

fn request(requirements: &[&str]) -> ResolveRequest {
    ResolveRequest {
        requirements: requirements.iter().map(|r| r.to_string()).collect(),
        python: Interpreter::from_version("3.12.0").unwrap(),
        ..Default::default()
    }
}

fn run(index: &FakeIndex, request: &ResolveRequest) -> Result<Resolution, PackageError> {
    resolve(index, index, request)
}

fn versions(resolution: &Resolution) -> Vec<(String, String)> {
    let mut v: Vec<_> = resolution
        .packages
        .iter()
        .map(|p| (p.pin.name.clone(), p.pin.version.clone()))
        .collect();
    v.sort();
    v
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn pytest_resolves_to_its_dependencies_for_the_guest_in_install_order() {
    let index = pytest_index();
    let resolution = run(&index, &request(&["pytest==8.3.4"])).unwrap();
    assert_eq!(
        versions(&resolution),
        pairs(&[
            ("iniconfig", "2.0.0"),
            ("packaging", "24.2"),
            ("pluggy", "1.5.0"),
            ("pytest", "8.3.4")
        ])
    );
    // Markers for the guest: python 3.12 drops tomli and exceptiongroup, wasi drops colorama.
    let asked = index.asked();
    for dropped in ["tomli", "exceptiongroup", "colorama", "attrs", "hypothesis"] {
        assert!(
            !asked.contains(&dropped.to_string()),
            "{dropped} was asked: {asked:?}"
        );
    }
    // Dependencies come first; pytest is last.
    assert_eq!(resolution.packages.last().unwrap().pin.name, "pytest");
    let pytest = resolution.get("pytest").unwrap();
    assert_eq!(pytest.pin.file, "pytest-8.3.4-py3-none-any.whl");
    assert_eq!(pytest.pin.sha256, sha("pytest-8.3.4-py3-none-any.whl"));
    assert_eq!(pytest.kind, DistKind::Wheel);
    assert!(pytest.requested);
    assert_eq!(pytest.chain, vec!["pytest==8.3.4".to_string()]);
    assert_eq!(
        pytest.dependencies,
        vec!["iniconfig", "packaging", "pluggy"]
    );
    let pluggy = resolution.get("Pluggy").unwrap();
    assert!(!pluggy.requested);
    assert_eq!(pluggy.chain.len(), 2, "{:?}", pluggy.chain);
    assert_eq!(pluggy.chain[0], "pytest==8.3.4");
    assert!(
        pluggy.chain[1].starts_with("pytest 8.3.4 requires pluggy"),
        "{:?}",
        pluggy.chain
    );
    // Metadata is read once per chosen version.
    let meta = index.metadata_asked.lock().unwrap().clone();
    assert_eq!(meta.len(), 4, "{meta:?}");
}

#[test]
fn markers_use_the_guest_values() {
    let env = guest_markers(Interpreter::from_version("3.12.0").unwrap());
    let applies = |m: &str| {
        Requirement::<VerbatimUrl>::from_str(&format!("x; {m}"))
            .unwrap()
            .evaluate_markers(&env, &[])
    };
    assert!(applies("python_version >= \"3.12\""));
    assert!(!applies("python_version < \"3.11\""));
    assert!(applies("python_full_version == \"3.12.0\""));
    assert!(applies("sys_platform == \"wasi\""));
    assert!(!applies("sys_platform == \"win32\""));
    assert!(!applies("sys_platform == \"linux\""));
    assert!(applies("implementation_name == \"cpython\""));
    assert!(applies("platform_python_implementation == \"CPython\""));
    assert!(applies("os_name == \"posix\""));
    assert!(!applies("extra == \"dev\""));
    let env = guest_markers(Interpreter::from_version("3.13.5").unwrap());
    let applies = |m: &str| {
        Requirement::<VerbatimUrl>::from_str(&format!("x; {m}"))
            .unwrap()
            .evaluate_markers(&env, &[])
    };
    assert!(applies("python_version >= \"3.13\""));
    assert!(applies("python_full_version == \"3.13.5\""));
    assert!(applies("implementation_version >= \"3.13\""));
    assert!(!applies("python_version < \"3.13\""));
}

#[test]
fn a_conflict_is_explained_on_one_line() {
    let index = pytest_index();
    let err = run(&index, &request(&["pytest==8.3.4", "pluggy<1.5"])).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PackageError::Unresolvable(_)), "{text}");
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains("pytest") && text.contains("pluggy"), "{text}");
    assert!(text.contains("the request"), "{text}");
    assert!(!text.contains("the request 0"), "{text}");
}

#[test]
fn no_matching_version_names_the_versions_that_exist() {
    let index = pytest_index();
    let err = run(&index, &request(&["pytest==99"])).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PackageError::Unresolvable(_)), "{text}");
    assert!(text.contains("versions of pytest: 8.3.4, 8.3.3"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

#[test]
fn an_unknown_project_is_named() {
    let index = pytest_index();
    let err = run(&index, &request(&["no-such-project-here"])).unwrap_err();
    assert!(
        matches!(&err, PackageError::UnknownProject { name, .. } if name == "no-such-project-here"),
        "{err}"
    );
}

#[test]
fn a_bad_requirement_is_refused_with_its_text() {
    let index = pytest_index();
    for bad in ["pytest==", "pytest @ https://example.invalid/p.whl", "!!"] {
        let err = run(&index, &request(&[bad])).unwrap_err();
        assert!(
            matches!(&err, PackageError::BadRequirement { requirement, .. } if requirement == bad),
            "{err}"
        );
        assert!(!err.to_string().contains('\n'), "{err}");
    }
}

/// requests 2.32.3 with its real dependencies: charset-normalizer has dozens of platform
/// wheels and one pure wheel; PySocks comes only through the `socks` extra.
fn requests_index() -> FakeIndex {
    let mut index = FakeIndex::default();
    let requests = [
        "charset-normalizer<4,>=2",
        "idna<4,>=2.5",
        "urllib3<3,>=1.21.1",
        "certifi>=2017.4.17",
        "PySocks!=1.5.7,>=1.5.6; extra == \"socks\"",
        "chardet<6,>=3.0.2; extra == \"use-chardet-on-py3\"",
    ];
    index
        .add(
            "requests",
            "2.31.0",
            &["requests-2.31.0-py3-none-any.whl", "requests-2.31.0.tar.gz"],
            &requests,
            Some(">=3.7"),
        )
        .add_files(
            "requests",
            "2.32.0",
            vec![
                ("requests-2.32.0-py3-none-any.whl", true, Some(">=3.8")),
                ("requests-2.32.0.tar.gz", true, Some(">=3.8")),
            ],
            &requests,
            Some(">=3.8"),
        )
        .add_files(
            "requests",
            "2.32.1",
            vec![
                ("requests-2.32.1-py3-none-any.whl", true, Some(">=3.8")),
                ("requests-2.32.1.tar.gz", true, Some(">=3.8")),
            ],
            &requests,
            Some(">=3.8"),
        )
        .add(
            "requests",
            "2.32.3",
            &["requests-2.32.3-py3-none-any.whl", "requests-2.32.3.tar.gz"],
            &requests,
            Some(">=3.8"),
        )
        .add(
            "charset-normalizer",
            "3.4.0",
            &[
                "charset_normalizer-3.4.0-cp312-cp312-macosx_10_13_universal2.whl",
                "charset_normalizer-3.4.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "charset_normalizer-3.4.0-cp312-cp312-musllinux_1_2_aarch64.whl",
                "charset_normalizer-3.4.0-cp312-cp312-win_amd64.whl",
                "charset_normalizer-3.4.0-py3-none-any.whl",
                "charset_normalizer-3.4.0.tar.gz",
            ],
            &[],
            Some(">=3.7.0"),
        )
        .add(
            "idna",
            "3.10",
            &["idna-3.10-py3-none-any.whl", "idna-3.10.tar.gz"],
            &["ruff>=0.6.2; extra == \"all\"", "mypy>=1.11.2; extra == \"all\"", "pytest>=8.3.2; extra == \"all\"", "flake8>=7.1.1; extra == \"all\""],
            Some(">=3.6"),
        )
        .add(
            "urllib3",
            "2.2.3",
            &["urllib3-2.2.3-py3-none-any.whl", "urllib3-2.2.3.tar.gz"],
            &["brotli>=1.0.9; platform_python_implementation == \"CPython\" and extra == \"brotli\"", "pysocks!=1.5.7,<2.0,>=1.5.6; extra == \"socks\""],
            Some(">=3.8"),
        )
        .add(
            "certifi",
            "2024.8.30",
            &["certifi-2024.8.30-py3-none-any.whl", "certifi-2024.8.30.tar.gz"],
            &[],
            Some(">=3.6"),
        )
        .add(
            "PySocks",
            "1.7.1",
            &[
                "PySocks-1.7.1-py27-none-any.whl",
                "PySocks-1.7.1-py3-none-any.whl",
                "PySocks-1.7.1.tar.gz",
            ],
            &[],
            Some(">=2.7, !=3.0.*, !=3.1.*, !=3.2.*, !=3.3.*, !=3.4.*"),
        );
    index
}

#[test]
fn the_pure_wheel_is_chosen_among_platform_wheels_and_extras_pull_their_requirements() {
    let index = requests_index();
    let resolution = run(&index, &request(&["requests[socks]==2.32.3"])).unwrap();
    assert_eq!(
        versions(&resolution),
        pairs(&[
            ("certifi", "2024.8.30"),
            ("charset-normalizer", "3.4.0"),
            ("idna", "3.10"),
            ("pysocks", "1.7.1"),
            ("requests", "2.32.3"),
            ("urllib3", "2.2.3"),
        ])
    );
    let cn = resolution.get("charset_normalizer").unwrap();
    assert_eq!(cn.pin.file, "charset_normalizer-3.4.0-py3-none-any.whl");
    assert_eq!(
        resolution.get("pysocks").unwrap().pin.file,
        "PySocks-1.7.1-py3-none-any.whl"
    );
    let requests = resolution.get("requests").unwrap();
    assert_eq!(requests.extras, vec!["socks"]);
    assert!(requests.dependencies.contains(&"pysocks".to_string()));
    assert!(
        resolution.get("pysocks").unwrap().chain[1].starts_with("requests[socks] 2.32.3 requires"),
        "{:?}",
        resolution.get("pysocks").unwrap().chain
    );
    // Without the extra there is no PySocks, and idna's extras are never followed.
    let plain = run(&requests_index(), &request(&["requests==2.32.3"])).unwrap();
    assert!(plain.get("pysocks").is_none());
    assert!(plain.get("requests").unwrap().extras.is_empty());
    assert!(!index.asked().contains(&"ruff".to_string()));
}

#[test]
fn yanked_versions_only_for_an_exact_pin() {
    let index = requests_index();
    let r = run(&index, &request(&["requests<2.32.2"])).unwrap();
    assert_eq!(r.get("requests").unwrap().pin.version, "2.31.0");
    let r = run(&requests_index(), &request(&["requests==2.32.0"])).unwrap();
    assert_eq!(r.get("requests").unwrap().pin.version, "2.32.0");
    let r = run(&requests_index(), &request(&["requests"])).unwrap();
    assert_eq!(r.get("requests").unwrap().pin.version, "2.32.3");
}

#[test]
fn only_platform_wheels_and_no_sdist_needs_native_code() {
    let mut index = FakeIndex::default();
    index
        .add(
            "tensorflow",
            "2.17.1",
            &[
                "tensorflow-2.17.1-cp312-cp312-macosx_12_0_arm64.whl",
                "tensorflow-2.17.1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            ],
            &[],
            Some(">=3.9"),
        )
        .add(
            "tensorflow",
            "2.18.0",
            &[
                "tensorflow-2.18.0-cp312-cp312-macosx_12_0_arm64.whl",
                "tensorflow-2.18.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "tensorflow-2.18.0-cp312-cp312-win_amd64.whl",
            ],
            &[],
            Some(">=3.9"),
        );
    let err = run(&index, &request(&["tensorflow"])).unwrap_err();
    let PackageError::NeedsNative {
        name,
        version,
        reason,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((name.as_str(), version.as_str()), ("tensorflow", "2.18.0"));
    assert!(
        reason.contains("only platform wheels (e.g. cp312-cp312-"),
        "{reason}"
    );
    assert!(reason.contains("no source distribution"), "{reason}");
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn a_project_with_only_an_sdist_resolves_through_its_built_metadata() {
    // docopt 0.6.2 was only ever published as an sdist.
    let mut index = FakeIndex::default();
    index.add("docopt", "0.6.2", &["docopt-0.6.2.tar.gz"], &[], None);
    let r = run(&index, &request(&["docopt"])).unwrap();
    let docopt = r.get("docopt").unwrap();
    assert_eq!(docopt.kind, DistKind::Sdist);
    assert_eq!(docopt.pin.file, "docopt-0.6.2.tar.gz");
    assert_eq!(
        index.metadata_asked.lock().unwrap().clone(),
        vec!["docopt-0.6.2.tar.gz"]
    );
    // --only-binary refuses it, naming why.
    let mut only = request(&["docopt"]);
    only.only_binary.insert(":all:".into());
    let err = run(&index, &only).unwrap_err().to_string();
    assert!(
        err.contains("docopt") && err.contains("only-binary"),
        "{err}"
    );
    // --no-binary takes the sdist even when there is a wheel.
    let index = pytest_index();
    let mut nb = request(&["iniconfig"]);
    nb.no_binary.insert("iniconfig".into());
    let r = run(&index, &nb).unwrap();
    assert_eq!(
        r.get("iniconfig").unwrap().pin.file,
        "iniconfig-2.0.0.tar.gz"
    );
}

#[test]
fn requires_python_rules_out_versions_the_guest_cannot_run() {
    let mut index = pytest_index();
    // A release made for newer Pythons only (its files say so; so does its metadata).
    index.add(
        "packaging",
        "99.0",
        &["packaging-99.0-py3-none-any.whl"],
        &[],
        Some(">=3.13"),
    );
    let r = run(&index, &request(&["packaging"])).unwrap();
    assert_eq!(r.get("packaging").unwrap().pin.version, "24.2");
    let err = run(&index, &request(&["packaging==99.0"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("99.0 (requires Python >=3.13)"), "{err}");
    // The same request for a python 3.13 guest takes it, and its markers are 3.13's.
    let mut newer = request(&["packaging", "tomli; python_version < \"3.13\""]);
    newer.python = Interpreter::from_version("3.13.5").unwrap();
    let r = run(&index, &newer).unwrap();
    assert_eq!(r.get("packaging").unwrap().pin.version, "99.0");
    assert!(r.get("tomli").is_none());
}

#[test]
fn pre_releases_only_when_asked_named_or_alone() {
    let mut index = FakeIndex::default();
    for (v, files) in [
        (
            "7.4.4",
            ["pytest-7.4.4-py3-none-any.whl", "pytest-7.4.4.tar.gz"],
        ),
        (
            "8.0.0rc2",
            ["pytest-8.0.0rc2-py3-none-any.whl", "pytest-8.0.0rc2.tar.gz"],
        ),
    ] {
        index.add("pytest", v, &files, &[], Some(">=3.8"));
    }
    let version = |req: &[&str], pre: bool| {
        let mut r = request(req);
        r.pre = pre;
        run(&index, &r)
            .unwrap()
            .get("pytest")
            .unwrap()
            .pin
            .version
            .clone()
    };
    assert_eq!(version(&["pytest"], false), "7.4.4");
    assert_eq!(version(&["pytest"], true), "8.0.0rc2");
    assert_eq!(version(&["pytest>=8.0.0rc1"], false), "8.0.0rc2");
    assert_eq!(version(&["pytest>7.4.4"], false), "8.0.0rc2");
}

#[test]
fn constraints_narrow_but_never_add() {
    let index = pytest_index();
    let mut r = request(&["pytest==8.3.4"]);
    r.constraints = vec![
        "pluggy==1.5.0".into(),
        "colorama==0.4.6".into(),
        "packaging<24.2".into(),
    ];
    let resolution = run(&index, &r).unwrap();
    assert_eq!(resolution.get("packaging").unwrap().pin.version, "24.1");
    assert!(resolution.get("colorama").is_none());
    r.constraints = vec!["pluggy<1.5".into()];
    assert!(matches!(
        run(&index, &r),
        Err(PackageError::Unresolvable(_))
    ));
}

#[test]
fn installed_versions_are_kept_unless_upgrading_and_no_deps_takes_only_the_named() {
    let index = pytest_index();
    let mut r = request(&["pytest"]);
    r.preferences.insert("Packaging".into(), "24.1".into());
    assert_eq!(
        run(&index, &r)
            .unwrap()
            .get("packaging")
            .unwrap()
            .pin
            .version,
        "24.1"
    );
    r.upgrade = true;
    assert_eq!(
        run(&index, &r)
            .unwrap()
            .get("packaging")
            .unwrap()
            .pin
            .version,
        "24.2"
    );
    let mut r = request(&["pytest[dev]"]);
    r.no_deps = true;
    let resolution = run(&index, &r).unwrap();
    assert_eq!(versions(&resolution), pairs(&[("pytest", "8.3.4")]));
}

#[test]
fn locked_pins_resolve_without_listing_any_project() {
    let first = run(&pytest_index(), &request(&["pytest==8.3.4"])).unwrap();
    let mut index = pytest_index();
    index.forbid_project = true;
    let mut r = request(&["pytest==8.3.4"]);
    r.locked = first.pins();
    // An older pin in the lock wins over newer releases.
    let packaging = r.locked.iter_mut().find(|p| p.name == "packaging").unwrap();
    packaging.version = "24.1".into();
    packaging.file = "packaging-24.1-py3-none-any.whl".into();
    packaging.sha256 = sha("packaging-24.1-py3-none-any.whl");
    let again = run(&index, &r).unwrap();
    let mut expected = r.locked.clone();
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    let mut got = again.pins();
    got.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(got, expected);
    // A requirement the lock does not satisfy is a clear conflict, still with no listing.
    let mut r = request(&["pytest==8.3.3"]);
    r.locked = first.pins();
    let err = run(&index, &r).unwrap_err().to_string();
    assert!(err.contains("pytest is locked to 8.3.4"), "{err}");
}

#[test]
fn metadata_headers_fold_and_stop_at_the_body() {
    let meta = parse_metadata(
        "x.whl",
        "Name: x\nRequires-Dist: a>=1;\n  python_version >= \"3\"\nRequires-Python: >=3.8\n\nRequires-Dist: b\n",
    )
    .unwrap();
    assert_eq!(meta.requires_dist.len(), 1);
    assert_eq!(meta.requires_dist[0].name.to_string(), "a");
    assert!(meta.requires_python.is_some());
    let err = parse_metadata("x.whl", "Requires-Dist: a>=>1\n").unwrap_err();
    assert!(
        err.to_string().starts_with("x.whl: invalid Requires-Dist"),
        "{err}"
    );
}

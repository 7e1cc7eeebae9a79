//! The package index client (`wasmbuild::python::index`) and locks (`python::lock`):
//! against a loopback index serving real distributions (JSON and HTML pages, HTTPS with a
//! throw-away CA, a tampered file), against pip's own requirements parser, and once against
//! the real default index (learned from the host's pip) with an offline rerun.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::index::{Format, Options, TestIndex, real_wheel, sha256_file};
use wasmbuild::python::index::{
    Client, DefaultIndex, Downloadable, HostConfig, IndexSettings, PipIndexOptions,
    default_index_url,
};
use wasmbuild::python::lock::{Lock, RequirementKind, Requirements};
use wasmbuild::python::{DistFile, Index, PackageError, Pin};
use wasmbuild::store::Store;

const INICONFIG: &str = "iniconfig==2.0.0";
const INICONFIG_WHEEL: &str = "iniconfig-2.0.0-py3-none-any.whl";
const SIX: &str = "six==1.16.0";
const SIX_WHEEL: &str = "six-1.16.0-py2.py3-none-any.whl";
const TOMLI: &str = "tomli==2.0.1";

fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

fn client(index: &TestIndex, store: &Store, offline: bool) -> Client {
    let mut settings = IndexSettings::for_index(&index.url);
    settings.ca_bundles.extend(index.ca_pem.clone());
    Client::new(settings, store.clone(), offline).unwrap()
}

fn wheels(specs: &[&str]) -> Vec<PathBuf> {
    specs.iter().map(|s| real_wheel(s)).collect()
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn json_and_html_pages_list_the_real_files_with_their_sha256() {
    let dists = wheels(&[INICONFIG, SIX]);
    for format in [Format::Both, Format::Html] {
        let index = TestIndex::serve(
            &dists,
            Options {
                format,
                ..Options::default()
            },
        );
        let (_dir, store) = fresh_store();
        let client = client(&index, &store, false);
        // Any spelling of the name: the client normalizes it (the server only knows the
        // normalized page).
        let files = client.project("IniConfig").unwrap();
        let expected_sha = sha256_file(&dists[0]);
        assert_eq!(
            files,
            vec![DistFile {
                file: INICONFIG_WHEEL.into(),
                url: format!(
                    "{}/files/{INICONFIG_WHEEL}",
                    index.url.trim_end_matches("/simple")
                ),
                sha256: expected_sha,
                requires_python: Some(">=3.7".into()),
                yanked: false,
                has_metadata: true,
            }],
            "{format:?}"
        );
        let six = client.project("SIX").unwrap();
        assert_eq!(six.len(), 1);
        assert_eq!(six[0].file, SIX_WHEEL);
    }
}

#[test]
fn an_unknown_project_is_named() {
    let index = TestIndex::serve(&wheels(&[INICONFIG]), Options::default());
    let (_dir, store) = fresh_store();
    let err = client(&index, &store, false)
        .project("no-such-project")
        .unwrap_err();
    assert!(
        matches!(&err, PackageError::UnknownProject { name, .. } if name == "no-such-project"),
        "{err:?}"
    );
    assert!(err.to_string().contains("no such project: no-such-project"));
    let err = client(&index, &store, false).project("../etc").unwrap_err();
    assert!(
        matches!(err, PackageError::BadRequirement { .. }),
        "{err:?}"
    );
}

#[test]
fn a_tampered_download_fails_naming_both_hashes_and_keeps_nothing() {
    let dists = wheels(&[INICONFIG]);
    let index = TestIndex::serve(
        &dists,
        Options {
            tampered: vec![INICONFIG_WHEEL.into()],
            ..Options::default()
        },
    );
    let (dir, store) = fresh_store();
    let client = client(&index, &store, false);
    let file = client.project("iniconfig").unwrap().remove(0);
    let err = client.fetch(&file).unwrap_err();
    let mut tampered = std::fs::read(&dists[0]).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    let actual = wasmbuild::digest::sha256_hex(&tampered);
    match &err {
        PackageError::HashMismatch {
            file: f,
            expected,
            actual: got,
        } => {
            assert_eq!(f, INICONFIG_WHEEL);
            assert_eq!(expected, &file.sha256);
            assert_eq!(got, &actual);
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&file.sha256) && message.contains(&actual),
        "{message}"
    );
    assert!(!store.has_blob(&file.sha256).unwrap());
    assert!(
        !store.has_blob(&actual).unwrap(),
        "the bad bytes are not stored either"
    );
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("python-downloads") && p.is_file())
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary downloads left: {leftovers:?}"
    );
    // And the wheel's metadata is not read from a bad download either.
    let mut no_metadata = file.clone();
    no_metadata.has_metadata = false;
    assert!(matches!(
        client.wheel_metadata(&no_metadata),
        Err(PackageError::HashMismatch { .. })
    ));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn offline_uses_pages_and_files_seen_before_and_names_what_is_missing() {
    let dists = wheels(&[INICONFIG, SIX]);
    let index = TestIndex::serve(&dists, Options::default());
    let (_dir, store) = fresh_store();
    let online = client(&index, &store, false);
    let ini = online.project("iniconfig").unwrap();
    let six = online.project("six").unwrap();
    let fetched = online.fetch(&ini[0]).unwrap();
    assert!(fetched.downloaded);
    assert_eq!(fetched.sha256, sha256_file(&dists[0]));
    assert!(!online.fetch(&ini[0]).unwrap().downloaded);

    let requests = index.request_count();
    let offline = client(&index, &store, true);
    assert_eq!(offline.project("IniConfig").unwrap(), ini);
    let again = offline.fetch(&ini[0]).unwrap();
    assert!(!again.downloaded);
    assert_eq!(
        offline.read(&ini[0]).unwrap(),
        std::fs::read(&dists[0]).unwrap()
    );
    // six's page was seen, its wheel never downloaded.
    assert_eq!(offline.project("six").unwrap(), six);
    let err = offline.fetch(&six[0]).unwrap_err();
    assert!(matches!(err, PackageError::Offline { .. }), "{err:?}");
    assert!(err.to_string().contains(SIX_WHEEL), "{err}");
    let err = offline
        .fetch_all(&[ini[0].clone(), six[0].clone()])
        .unwrap_err();
    assert!(err.to_string().contains(SIX_WHEEL) && !err.to_string().contains(INICONFIG_WHEEL));
    let err = offline.project("tomli").unwrap_err();
    assert!(matches!(err, PackageError::Offline { .. }), "{err:?}");
    assert!(err.to_string().contains("tomli"), "{err}");
    assert_eq!(index.request_count(), requests, "offline asked the index");
}

// A lock names no host: a pin without a URL is found on the configured index by file name
// and sha256 (any mirror serves it); a pin the index does not have is named.
#[test]
fn a_pin_without_url_is_found_on_the_index_by_name_and_hash() {
    let dists = wheels(&[INICONFIG, SIX]);
    let index = TestIndex::serve(&dists, Options::default());
    let (_dir, store) = fresh_store();
    let online = client(&index, &store, false);
    let listed = online.project("iniconfig").unwrap();
    let from_lock = Pin {
        name: "iniconfig".into(),
        version: "2.0.0".into(),
        file: listed[0].file.clone(),
        url: String::new(),
        sha256: listed[0].sha256.clone(),
    };
    let (_dir2, cold) = fresh_store();
    let locked = client(&index, &cold, false);
    assert_eq!(
        locked.read(&from_lock).unwrap(),
        std::fs::read(&dists[0]).unwrap()
    );
    // fetch_all takes the same way, and a warm store asks nothing.
    let six = online.project("six").unwrap();
    let six_pin = Pin {
        name: "six".into(),
        version: "1.16.0".into(),
        file: six[0].file.clone(),
        url: String::new(),
        sha256: six[0].sha256.clone(),
    };
    let fetched = locked.fetch_all(&[from_lock.clone(), six_pin]).unwrap();
    assert_eq!(
        fetched.iter().map(|f| f.downloaded).collect::<Vec<_>>(),
        [false, true]
    );
    let before = index.request_count();
    assert!(!locked.fetch(&from_lock).unwrap().downloaded);
    assert_eq!(index.request_count(), before);

    let (_dir3, other) = fresh_store();
    let missing = Pin {
        sha256: "0".repeat(64),
        ..from_lock
    };
    let err = client(&index, &other, false).fetch(&missing).unwrap_err();
    assert!(matches!(err, PackageError::NotOnIndex { .. }), "{err:?}");
    assert!(err.to_string().contains(&listed[0].file), "{err}");
}

#[test]
fn fetch_all_downloads_in_parallel_once() {
    let dists = wheels(&[INICONFIG, SIX, TOMLI]);
    let index = TestIndex::serve(&dists, Options::default());
    let (_dir, store) = fresh_store();
    let client = client(&index, &store, false);
    let mut files: Vec<DistFile> = Vec::new();
    for name in ["iniconfig", "six", "tomli"] {
        files.extend(client.project(name).unwrap());
    }
    let pins: Vec<Pin> = files
        .iter()
        .map(|f| Pin {
            name: "x".into(),
            version: "0".into(),
            file: f.file.clone(),
            url: f.url.clone(),
            sha256: f.sha256.clone(),
        })
        .collect();
    let first = client.fetch_all(&pins).unwrap();
    assert!(first.iter().all(|f| f.downloaded));
    for (pin, path) in pins.iter().zip(&dists) {
        assert_eq!(
            store.get_blob(pin.sha256()).unwrap(),
            std::fs::read(path).unwrap()
        );
    }
    let second = client.fetch_all(&pins).unwrap();
    assert!(second.iter().all(|f| !f.downloaded));
    let downloads = index
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.ends_with(".whl"))
        .count();
    assert_eq!(downloads, 3);
}

#[test]
fn wheel_metadata_from_the_metadata_file_or_from_the_wheel() {
    let dists = wheels(&[TOMLI]);
    let expected = {
        let file = std::fs::File::open(&dists[0]).unwrap();
        let mut zip = zip::ZipArchive::new(file).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut zip.by_name("tomli-2.0.1.dist-info/METADATA").unwrap(),
            &mut text,
        )
        .unwrap();
        text
    };
    for metadata in [true, false] {
        let index = TestIndex::serve(
            &dists,
            Options {
                metadata,
                ..Options::default()
            },
        );
        let (_dir, store) = fresh_store();
        let online = client(&index, &store, false);
        let file = online.project("tomli").unwrap().remove(0);
        assert_eq!(file.has_metadata, metadata);
        assert_eq!(online.wheel_metadata(&file).unwrap(), expected);
        let requests = index.requests.lock().unwrap().clone();
        let wheel_downloaded = requests.iter().any(|p| p.ends_with(".whl"));
        assert_eq!(wheel_downloaded, !metadata, "{requests:?}");
        // Offline afterwards: from the store.
        let offline = client(&index, &store, true);
        assert_eq!(offline.wheel_metadata(&file).unwrap(), expected);
    }
}

#[test]
fn https_with_a_custom_ca_from_ssl_cert_file_and_failure_without_it() {
    let dists = wheels(&[INICONFIG]);
    let index = TestIndex::serve(
        &dists,
        Options {
            https: true,
            ..Options::default()
        },
    );
    let ca = index.ca_pem.clone().unwrap();
    let (_dir, store) = fresh_store();
    // Without the CA: the server's certificate is refused, and the message says so.
    let bare = Client::new(IndexSettings::for_index(&index.url), store.clone(), false).unwrap();
    let err = bare.project("iniconfig").unwrap_err();
    assert!(matches!(err, PackageError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    // With SSL_CERT_FILE naming the CA, as pip's users set it behind a TLS-inspecting proxy.
    for var in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT"] {
        let host = HostConfig {
            env: BTreeMap::from([
                (var.to_owned(), ca.display().to_string()),
                ("PIP_INDEX_URL".to_owned(), index.url.clone()),
            ]),
            pip_conf: Vec::new(),
            default_index: DefaultIndex::Fixed(None),
        };
        let settings =
            IndexSettings::resolve_with(&host, &no_env, &[], &PipIndexOptions::default()).unwrap();
        assert_eq!(settings.ca_bundles, vec![ca.clone()], "{var}");
        let client = Client::new(settings, store.clone(), false).unwrap();
        let files = client.project("iniconfig").unwrap();
        assert_eq!(files[0].sha256, sha256_file(&dists[0]), "{var}");
    }
    // And pip.conf's `cert`.
    let host = HostConfig {
        env: BTreeMap::new(),
        pip_conf: vec![(
            "/etc/pip.conf".into(),
            format!(
                "[global]\nindex-url = {}\ncert = {}\n",
                index.url,
                ca.display()
            ),
        )],
        default_index: DefaultIndex::Fixed(None),
    };
    let settings =
        IndexSettings::resolve_with(&host, &no_env, &[], &PipIndexOptions::default()).unwrap();
    let client = Client::new(settings, store.clone(), false).unwrap();
    assert!(
        client
            .fetch(&client.project("iniconfig").unwrap()[0])
            .unwrap()
            .downloaded
    );
}

#[test]
fn index_url_order_pip_options_build_env_guest_conf_host_env_host_conf_default() {
    let url = |n: u32| format!("https://index{n}.invalid/simple");
    let host = HostConfig {
        env: BTreeMap::from([("PIP_INDEX_URL".to_owned(), url(4))]),
        pip_conf: vec![
            (
                "/etc/pip.conf".into(),
                format!(
                    "[global]\nindex-url = {}\nextra-index-url =\n    {}\n    {}\n",
                    url(5),
                    url(6),
                    url(7)
                ),
            ),
            (
                "/root/.config/pip/pip.conf".into(),
                "[install]\ntrusted-host = a.invalid b.invalid\n".into(),
            ),
        ],
        default_index: DefaultIndex::Fixed(Some(url(9))),
    };
    let guest_conf = vec![(
        "/root/.config/pip/pip.conf".to_owned(),
        format!(
            "# the guest's\n[global]\nindex_url = {}\n[install]\nindex-url = {}\n",
            url(2),
            url(3)
        ),
    )];
    let build_env = |k: &str| (k == "PIP_INDEX_URL").then(|| url(1));
    let pip = PipIndexOptions {
        index_url: Some(url(0)),
        ..PipIndexOptions::default()
    };
    let resolve = |host: &HostConfig,
                   env: &dyn Fn(&str) -> Option<String>,
                   guest: &[(String, String)],
                   pip: &PipIndexOptions| {
        IndexSettings::resolve_with(host, env, guest, pip).unwrap()
    };
    let s = resolve(&host, &build_env, &guest_conf, &pip);
    assert_eq!(
        (s.index_url.as_deref(), s.index_source.as_str()),
        (Some(url(0).as_str()), "--index-url")
    );
    let s = resolve(&host, &build_env, &guest_conf, &PipIndexOptions::default());
    assert_eq!(s.index_url, Some(url(1)));
    assert_eq!(s.index_source, "PIP_INDEX_URL of the build");
    let s = resolve(&host, &no_env, &guest_conf, &PipIndexOptions::default());
    assert_eq!(s.index_url, Some(url(3)), "[install] overrides [global]");
    assert_eq!(s.index_source, "/root/.config/pip/pip.conf");
    let s = resolve(&host, &no_env, &[], &PipIndexOptions::default());
    assert_eq!(s.index_url, Some(url(4)));
    assert_eq!(
        s.extra_index_urls,
        vec![url(6), url(7)],
        "multi-line values"
    );
    assert_eq!(s.trusted_hosts, vec!["a.invalid", "b.invalid"]);
    let mut host_conf_only = host.clone();
    host_conf_only.env.clear();
    let s = resolve(&host_conf_only, &no_env, &[], &PipIndexOptions::default());
    assert_eq!(
        (s.index_url, s.index_source.as_str()),
        (Some(url(5)), "/etc/pip.conf")
    );
    let nothing = HostConfig {
        default_index: DefaultIndex::Fixed(Some(url(9))),
        ..HostConfig::default()
    };
    let s = resolve(&nothing, &no_env, &[], &PipIndexOptions::default());
    assert_eq!(s.index_url, Some(url(9)));
    // No pip on the host and nothing configured: no index, said plainly.
    let none = HostConfig {
        default_index: DefaultIndex::Fixed(None),
        ..HostConfig::default()
    };
    let err =
        IndexSettings::resolve_with(&none, &no_env, &[], &PipIndexOptions::default()).unwrap_err();
    assert!(matches!(err, PackageError::NoIndex), "{err:?}");
    // --no-index wins over everything and lists no index.
    let s = resolve(
        &host,
        &build_env,
        &guest_conf,
        &PipIndexOptions {
            no_index: true,
            ..pip.clone()
        },
    );
    assert!(s.indexes().is_empty());
    // Extra indexes from the build's environment (space separated).
    let extra_env =
        |k: &str| (k == "PIP_EXTRA_INDEX_URL").then(|| format!("{} {}", url(7), url(8)));
    let s = resolve(&host, &extra_env, &[], &PipIndexOptions::default());
    assert_eq!(s.indexes(), vec![url(4), url(7), url(8)]);
    // A guest's pip.conf names no host certificate file.
    let cert_conf = vec![(
        "/root/.pip/pip.conf".to_owned(),
        "[global]\ncert = /etc/shadow\n".to_owned(),
    )];
    let s = resolve(&nothing, &no_env, &cert_conf, &PipIndexOptions::default());
    assert!(s.ca_bundles.is_empty());
    // Not a URL.
    let bad = IndexSettings::resolve_with(
        &nothing,
        &no_env,
        &[],
        &PipIndexOptions {
            index_url: Some("/root/wheels".into()),
            ..PipIndexOptions::default()
        },
    );
    assert!(matches!(bad, Err(PackageError::BadRequirement { .. })));
}

#[test]
fn an_index_from_the_guest_pip_conf_and_from_pip_index_url_is_used() {
    let dists = wheels(&[INICONFIG]);
    let index = TestIndex::serve(&dists, Options::default());
    let (_dir, store) = fresh_store();
    let host = HostConfig {
        default_index: DefaultIndex::Fixed(Some("https://unused.invalid/simple".into())),
        ..HostConfig::default()
    };
    let conf = vec![(
        "/root/.config/pip/pip.conf".to_owned(),
        format!("[global]\nindex-url = {}\n", index.url),
    )];
    let env_url = index.url.clone();
    let env = move |k: &str| (k == "PIP_INDEX_URL").then(|| env_url.clone());
    type Env<'a> = &'a dyn Fn(&str) -> Option<String>;
    let cases: Vec<(Env, Vec<(String, String)>)> = vec![(&no_env, conf), (&env, Vec::new())];
    for (guest_env, guest_conf) in &cases {
        let settings =
            IndexSettings::resolve_with(&host, *guest_env, guest_conf, &PipIndexOptions::default())
                .unwrap();
        let client = Client::new(settings, store.clone(), false).unwrap();
        assert_eq!(
            client.project("iniconfig").unwrap()[0].file,
            INICONFIG_WHEEL
        );
    }
}

#[test]
fn extra_indexes_merge_files_the_main_index_first() {
    let a = TestIndex::serve(&wheels(&[INICONFIG]), Options::default());
    let b = TestIndex::serve(
        &wheels(&["iniconfig==1.1.1", INICONFIG]),
        Options {
            format: Format::Html,
            ..Options::default()
        },
    );
    let (_dir, store) = fresh_store();
    let mut settings = IndexSettings::for_index(&a.url);
    settings.extra_index_urls.push(b.url.clone());
    let client = Client::new(settings, store, false).unwrap();
    let files = client.project("iniconfig").unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(
        names,
        vec![INICONFIG_WHEEL, "iniconfig-1.1.1-py2.py3-none-any.whl"]
    );
    assert!(files[0].url.starts_with(a.url.trim_end_matches("/simple")));
}

#[test]
fn plain_http_is_refused_off_loopback_unless_trusted() {
    let (_dir, store) = fresh_store();
    let client = Client::new(
        IndexSettings::for_index("http://index.invalid/simple"),
        store,
        false,
    )
    .unwrap();
    let err = client.project("x").unwrap_err().to_string();
    assert!(err.contains("--trusted-host index.invalid"), "{err}");
}

#[test]
fn lock_round_trip_from_real_pins() {
    let dists = wheels(&[INICONFIG, SIX]);
    let index = TestIndex::serve(&dists, Options::default());
    let (_dir, store) = fresh_store();
    let client = client(&index, &store, false);
    let mut pins = Vec::new();
    for (name, version) in [("six", "1.16.0"), ("iniconfig", "2.0.0")] {
        let f = client.project(name).unwrap().remove(0);
        pins.push(Pin {
            name: name.into(),
            version: version.into(),
            file: f.file,
            url: f.url,
            sha256: f.sha256,
        });
    }
    let lock = Lock::new(pins.clone());
    let text = lock.to_toml();
    pins.reverse();
    assert_eq!(Lock::new(pins).to_toml(), text, "same pins, same bytes");
    let parsed = Lock::parse(&text, "wasmbuild.lock").unwrap();
    assert_eq!(parsed, lock);
    assert_eq!(parsed.to_toml(), text);
    assert_eq!(parsed.python[0].name, "iniconfig");
    let tampered = text.replacen("sha256 = \"", "sha256 = \"zz", 1);
    let err = Lock::parse(&tampered, "wasmbuild.lock")
        .unwrap_err()
        .to_string();
    // The message names the line of the bad value.
    let line = tampered
        .lines()
        .position(|l| l.starts_with("sha256 = \"zz"))
        .unwrap()
        + 1;
    assert!(
        err.starts_with(&format!("wasmbuild.lock:{line}: ")),
        "{err}"
    );
    let err = Lock::parse(
        "version = 1\n[[python]]\nname = 'x'\nbogus = 1\n",
        "wasmbuild.lock",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("wasmbuild.lock:"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");
}

/// Requirements files as projects write them, parsed by us and by the host's pip.
fn real_world_requirements() -> Vec<(&'static str, String)> {
    vec![
        (
            "pip-compile output (hash-locked)",
            "#\n# This file is autogenerated by pip-compile with Python 3.12\n# by the following command:\n#\n#    pip-compile --generate-hashes requirements.in\n#\niniconfig==2.0.0 \\\n    --hash=sha256:2d91e135bf72d31a410b17c16da610a82cb55f6b0477d1a902134b24a455b8b3 \\\n    --hash=sha256:b6a85871a79d2e3b22d2d1b94ac2824226a63c6b741c88f7ae975f18b6778374\n    # via pytest\npackaging==24.2 \\\n    --hash=sha256:09abb1bccd265c01f4a3aa3f7a7db064b36514d2cba19a2f694fe6150451a759 \\\n    --hash=sha256:c228a6dc5e932d346bc5739379109d49e8853dd8223571c7c5b55260edc0b97f\n    # via pytest\npluggy==1.5.0 \\\n    --hash=sha256:2cffa88e94fdc978c4c574f15f9e59b7f4201d439195c3715ca9e2486f1d0cf1 \\\n    --hash=sha256:44e1ad92c8ca002de6377e165f3e0f1be63266ab4d554740532335b9d75ea669\n    # via pytest\npytest==8.3.4 \\\n    --hash=sha256:50e16d954148559c9a74109af1eaf0c945ba2d8f30f0a3d3335edde19788b6f6 \\\n    --hash=sha256:965370d062bce11e73868e0335abac31b4d3de0e82f4007408d242b4f8610761\n    # via -r requirements.in\n".to_owned(),
        ),
        (
            "an application's requirements",
            "# Core\nDjango>=4.2,<5.0\npsycopg2-binary==2.9.9  # database\nrequests[security,socks] ~= 2.31\n\n--index-url https://mirror.invalid/simple\n--extra-index-url https://extra.invalid/simple\n--trusted-host mirror.invalid\n\ncelery[redis]==5.3.6; python_version >= \"3.8\"\ngunicorn ; sys_platform != \"win32\"\nfoo @ https://example.invalid/foo-1.0-py3-none-any.whl\n-e .\n-r dev.txt\n-c constraints.txt\n".to_owned(),
        ),
    ]
}

const INCLUDED: &[(&str, &str)] = &[
    (
        "dev.txt",
        "pytest==8.3.4\ncoverage[toml]>=7\nblack==24.10.0 --hash=sha256:a37d0e8a6e54d2f5cd3f8d32f3f0cd8da57dc0f6c0f2e0e3b5e9ec3c3b4f2f8e",
    ),
    ("constraints.txt", "urllib3<2\n"),
];

#[test]
fn requirements_files_parse_as_pip_parses_them() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in INCLUDED {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let read = |path: &str| -> Result<String, PackageError> {
        std::fs::read_to_string(path).map_err(|e| PackageError::Io(format!("{path}: {e}")))
    };
    for (what, text) in real_world_requirements() {
        let path = dir.path().join("requirements.txt");
        std::fs::write(&path, &text).unwrap();
        let path = path.to_string_lossy().into_owned();
        let ours = Requirements::parse_file(&path, &read).unwrap_or_else(|e| panic!("{what}: {e}"));
        let mut mine: Vec<String> = ours
            .requirements
            .iter()
            .map(|r| format!("{}|{}|{}|{}", r.text, r.editable, false, r.hashes.join(",")))
            .chain(
                ours.constraints
                    .iter()
                    .map(|r| format!("{}|{}|{}|{}", r.text, r.editable, true, r.hashes.join(","))),
            )
            .collect();
        mine.sort();
        let Some(mut pips) = pip_parse(&path) else {
            eprintln!("no host pip: the differential part of {what} is skipped");
            continue;
        };
        pips.sort();
        assert_eq!(mine, pips, "{what}");
        if what.contains("hash-locked") {
            assert!(ours.is_hash_locked());
            assert_eq!(
                ours.requirements[3].pinned_version.as_deref(),
                Some("8.3.4")
            );
        } else {
            assert!(!ours.is_hash_locked());
            assert_eq!(
                ours.index.index_url.as_deref(),
                Some("https://mirror.invalid/simple")
            );
            assert_eq!(
                ours.index.extra_index_urls,
                vec!["https://extra.invalid/simple"]
            );
            assert_eq!(ours.index.trusted_hosts, vec!["mirror.invalid"]);
            let editable = ours.requirements.iter().find(|r| r.editable).unwrap();
            assert_eq!(editable.kind, RequirementKind::Path(".".into()));
            let foo = ours
                .requirements
                .iter()
                .find(|r| r.text.starts_with("foo"))
                .unwrap();
            assert_eq!(foo.kind, RequirementKind::Named { name: "foo".into() });
            let dev = ours
                .requirements
                .iter()
                .find(|r| r.text.starts_with("pytest"))
                .unwrap();
            assert!(dev.origin.ends_with("dev.txt:1"), "{}", dev.origin);
        }
    }
    // Errors name the file and line.
    let err = Requirements::parse_text("ok==1\nnot a requirement!\n", "/src/r.txt", &read)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/src/r.txt:2"), "{err}");
    let err = Requirements::parse_text("-r self.txt\n", "/nonexistent/self.txt", &|_| {
        Ok("-r self.txt\n".into())
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("includes itself"), "{err}");
    let err = Requirements::parse_text("x==1 --hash=md5:abc\n", "r.txt", &read)
        .unwrap_err()
        .to_string();
    assert!(err.contains("r.txt:1") && err.contains("md5"), "{err}");
}

/// `requirement|editable|constraint|sha256s` for each line, by pip's own parser.
fn pip_parse(path: &str) -> Option<Vec<String>> {
    let script = r#"
import sys
from pip._internal.req.req_file import parse_requirements
from pip._internal.network.session import PipSession
for r in parse_requirements(sys.argv[1], session=PipSession()):
    hashes = ",".join((r.options or {}).get("hashes", {}).get("sha256", []))
    print(f"{r.requirement.strip()}|{str(r.is_editable).lower()}|{str(r.constraint).lower()}|{hashes}")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, path])
        .output()
        .ok()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No module named") {
            return None;
        }
        panic!("pip could not parse {path}: {err}");
    }
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

/// The real default index, learned from the host's pip; a pinned small wheel. Passes
/// offline too once the store (kept between runs) has the page and the file.
#[test]
fn the_default_index_serves_a_pinned_wheel_and_offline_reuses_it() {
    const SHA256: &str = "b6a85871a79d2e3b22d2d1b94ac2824226a63c6b741c88f7ae975f18b6778374";
    let store =
        Store::open(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-index-store")).unwrap();
    let settings = || {
        let mut host = HostConfig::from_process();
        // This test is about the default index: the host's own index settings aside.
        host.env
            .retain(|k, _| !k.starts_with("PIP_INDEX") && !k.starts_with("PIP_EXTRA"));
        host.pip_conf.clear();
        IndexSettings::resolve_with(&host, &no_env, &[], &PipIndexOptions::default())
    };
    let Some(default) = default_index_url() else {
        eprintln!("no pip on this host: the default index cannot be learned; skipped");
        return;
    };
    let settings = settings().unwrap();
    assert_eq!(settings.index_url.as_deref(), Some(default.as_str()));
    assert_eq!(settings.index_source, "the host pip's default");
    let online = Client::new(settings.clone(), store.clone(), false).unwrap();
    match online.project("iniconfig") {
        Ok(files) => {
            let wheel = files.iter().find(|f| f.file == INICONFIG_WHEEL).unwrap();
            assert_eq!(wheel.sha256, SHA256);
            online.fetch(wheel).unwrap();
            let metadata = online.wheel_metadata(wheel).unwrap();
            assert!(metadata.contains("Name: iniconfig") && metadata.contains("Version: 2.0.0"));
        }
        Err(PackageError::Unreachable { reason, .. }) => {
            eprintln!("the default index is unreachable ({reason}): checking offline only");
        }
        Err(e) => panic!("{e}"),
    }
    let offline = Client::new(settings, store.clone(), true).unwrap();
    let files = offline
        .project("iniconfig")
        .expect("the store has the page (run once online)");
    let wheel = files.iter().find(|f| f.file == INICONFIG_WHEEL).unwrap();
    let fetched = offline.fetch(wheel).unwrap();
    assert_eq!(
        (fetched.sha256.as_str(), fetched.downloaded),
        (SHA256, false)
    );
    assert!(
        offline
            .wheel_metadata(wheel)
            .unwrap()
            .contains("Name: iniconfig")
    );
    assert_eq!(
        wasmbuild::digest::sha256_hex(&offline.read(wheel).unwrap()),
        SHA256
    );
}

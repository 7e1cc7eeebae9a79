//! Resolution against the real default package index (learned from the host's pip, as the
//! index client does), with exact pins so the outcome does not move with new releases.
//!
//! The index is read by a minimal PEP 691 (JSON simple API) client here, in the test only,
//! through the host's `curl`; every page and metadata file it reads is kept under cargo's
//! test scratch directory, so a rerun passes offline. Without a cached copy and without
//! the host's pip or network, the test says so and skips.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use wasmbuild::python::resolve::{DistKind, ResolveRequest, resolve};
use wasmbuild::python::{DistFile, Index, PackageError, SdistMetadata};

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-resolve-index")
}

/// The default index URL, as the host's pip knows it.
fn default_index_url() -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "from pip._internal.models.index import PyPI; print(PyPI.simple_url)",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let url = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && url.starts_with("https://")).then_some(url)
}

/// A cached GET: the cache file when there is one, else curl (kept on success).
fn get(url: &str, accept: &str, key: &str) -> Result<Vec<u8>, String> {
    let path = cache_dir().join(key);
    if let Ok(bytes) = std::fs::read(&path) {
        return Ok(bytes);
    }
    let out = Command::new("curl")
        .args(["-sSfL", "--max-time", "60", "-H"])
        .arg(format!("Accept: {accept}"))
        .arg(url)
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    std::fs::create_dir_all(cache_dir()).map_err(|e| e.to_string())?;
    std::fs::write(&path, &out.stdout).map_err(|e| e.to_string())?;
    Ok(out.stdout)
}

struct JsonIndex {
    url: String,
}

fn unreachable(index: &str, reason: String) -> PackageError {
    PackageError::Unreachable {
        index: index.to_string(),
        reason,
    }
}

impl Index for JsonIndex {
    fn project(&self, name: &str) -> Result<Vec<DistFile>, PackageError> {
        let name = wasmbuild::python::normalize_name(name);
        let url = format!("{}/{name}/", self.url.trim_end_matches('/'));
        let body = get(
            &url,
            "application/vnd.pypi.simple.v1+json",
            &format!("{name}.json"),
        )
        .map_err(|e| unreachable(&self.url, e))?;
        let page: Value =
            serde_json::from_slice(&body).map_err(|e| unreachable(&self.url, e.to_string()))?;
        let files = page["files"].as_array().cloned().unwrap_or_default();
        Ok(files
            .iter()
            .map(|f| {
                let relative = f["url"].as_str().unwrap_or_default();
                DistFile {
                    file: f["filename"].as_str().unwrap_or_default().to_string(),
                    url: if relative.contains("://") {
                        relative.to_string()
                    } else {
                        format!("{url}{relative}")
                    },
                    sha256: f["hashes"]["sha256"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    requires_python: f["requires-python"].as_str().map(str::to_string),
                    yanked: f["yanked"].as_bool().unwrap_or(false) || f["yanked"].is_string(),
                    has_metadata: f["core-metadata"].is_object()
                        || f["core-metadata"].as_bool() == Some(true)
                        || f["dist-info-metadata"].is_object()
                        || f["dist-info-metadata"].as_bool() == Some(true),
                }
            })
            .collect())
    }

    fn wheel_metadata(&self, file: &DistFile) -> Result<String, PackageError> {
        let key = format!("{}.metadata", file.file);
        let url = file.url.split('#').next().unwrap_or_default().to_string();
        if file.has_metadata {
            let body = get(&format!("{url}.metadata"), "*/*", &key)
                .map_err(|e| unreachable(&self.url, e))?;
            return Ok(String::from_utf8_lossy(&body).into_owned());
        }
        // No PEP 658 file: the METADATA member of the wheel itself (only that is kept).
        let path = cache_dir().join(&key);
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok(text);
        }
        let out = Command::new("curl")
            .args(["-sSfL", "--max-time", "120"])
            .arg(&url)
            .output()
            .map_err(|e| unreachable(&self.url, e.to_string()))?;
        if !out.status.success() {
            return Err(unreachable(
                &self.url,
                String::from_utf8_lossy(&out.stderr).into(),
            ));
        }
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&out.stdout));
        assert_eq!(digest, file.sha256, "{} as downloaded", file.file);
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(out.stdout)).expect("a wheel");
        let member = (0..zip.len())
            .filter_map(|i| Some(zip.name_for_index(i)?.ok()?.into_owned()))
            .find(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)
            .expect("a METADATA member");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(&member).expect("METADATA"), &mut text)
            .expect("utf-8 METADATA");
        std::fs::create_dir_all(cache_dir()).expect("cache dir");
        std::fs::write(&path, &text).expect("cache METADATA");
        Ok(text)
    }
}

struct NoSdists;

impl SdistMetadata for NoSdists {
    fn sdist_metadata(&self, file: &DistFile) -> Result<String, PackageError> {
        panic!("no sdist should be needed: {}", file.file)
    }
}

#[test]
fn pytest_and_attrs_resolve_to_their_pure_wheels_on_the_real_index() {
    let cached = cache_dir().join("pytest.json").is_file();
    let url = match default_index_url() {
        Some(url) => url,
        // Offline rerun from the cache: the URL only names cache keys' origin.
        None if cached => "https://index.invalid/simple".to_string(),
        None => {
            eprintln!("skipped: the host has no pip to name the default index, and no cache");
            return;
        }
    };
    let index = JsonIndex { url };
    let request = ResolveRequest {
        requirements: vec!["pytest==8.3.4".into(), "attrs==24.2.0".into()],
        // The transitive ones pinned so new releases do not change the outcome; they are
        // constraints, so the resolver still has to find them through pytest's metadata.
        constraints: vec![
            "iniconfig==2.0.0".into(),
            "packaging==24.2".into(),
            "pluggy==1.5.0".into(),
            // Would be pulled in by a wrong marker evaluation (python_version < "3.11",
            // sys_platform == "win32"); pinned to what exists, to show they are left out.
            "tomli==2.2.1".into(),
            "exceptiongroup==1.2.2".into(),
            "colorama==0.4.6".into(),
        ],
        ..Default::default()
    };
    let resolution = match resolve(&index, &NoSdists, &request) {
        Err(PackageError::Unreachable { reason, .. }) if !cached => {
            eprintln!("skipped: the index is unreachable: {reason}");
            return;
        }
        other => other.expect("resolves"),
    };
    let mut got: Vec<(String, String, String)> = resolution
        .packages
        .iter()
        .map(|p| {
            (
                p.pin.name.clone(),
                p.pin.version.clone(),
                p.pin.file.clone(),
            )
        })
        .collect();
    got.sort();
    let expected = [
        ("attrs", "24.2.0", "attrs-24.2.0-py3-none-any.whl"),
        ("iniconfig", "2.0.0", "iniconfig-2.0.0-py3-none-any.whl"),
        ("packaging", "24.2", "packaging-24.2-py3-none-any.whl"),
        ("pluggy", "1.5.0", "pluggy-1.5.0-py3-none-any.whl"),
        ("pytest", "8.3.4", "pytest-8.3.4-py3-none-any.whl"),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(got, expected);
    for p in &resolution.packages {
        assert_eq!(p.kind, DistKind::Wheel);
        assert_eq!(p.pin.sha256.len(), 64, "{:?}", p.pin);
    }
    // The sha256 of pytest 8.3.4's wheel as the index publishes it (the file host pip's
    // `pip download pytest==8.3.4` fetched hashes to this, checked by hand).
    assert_eq!(
        resolution.get("pytest").unwrap().pin.sha256,
        "50e16d954148559c9a74109af1eaf0c945ba2d8f30f0a3d3335edde19788b6f6"
    );
    // pytest comes after its dependencies; pluggy came in through pytest.
    let position = |n: &str| {
        resolution
            .packages
            .iter()
            .position(|p| p.pin.name == n)
            .unwrap()
    };
    assert!(position("pluggy") < position("pytest"));
    assert!(position("iniconfig") < position("pytest"));
    let pluggy = resolution.get("pluggy").unwrap();
    assert!(!pluggy.requested);
    assert_eq!(pluggy.chain[0], "pytest==8.3.4");
}

//! The package index: where it is ([`IndexSettings`], from pip's options, the build's
//! environment, the guest's and the host's pip configuration), the simple API (PEP 691 JSON
//! and PEP 503 HTML), and downloads into the store checked against the published sha256
//! ([`Client`]).
//!
//! No registry is named in the code: the default index is learned from the host's pip at
//! run time ([`default_index_url`]); with no pip and nothing configured, there is no index.
//!
//! What the store keeps (so that `--offline` works from what was seen before):
//!
//! ```text
//! blob <sha256>                                  a downloaded file (the index's sha256)
//! ref python/files/<sha256>                      keeps it from gc
//! ref python/index/<16 hex of the index URL>/<name>   the project's files as last listed
//! ref python/metadata/<wheel sha256>             the wheel's METADATA
//! ```

mod config;
mod http;
mod page;

pub use super::normalize_name;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::{DistFile, Index, PackageError, Pin};
use crate::digest::{is_digest, sha256_hex};
use crate::store::Store;

pub use config::default_index_url;

/// Downloads larger than this fail (a wheel of 1 GiB is not a Python package one installs
/// in a sandbox).
pub const MAX_DOWNLOAD: u64 = 1 << 30;
/// Project pages and metadata files larger than this fail.
pub const MAX_PAGE: u64 = 64 << 20;
/// Downloads in flight at once in [`Client::fetch_all`].
pub const PARALLEL_DOWNLOADS: usize = 6;

/// pip's own options that choose indexes (from the command line or a requirements file).
/// Certificates are not among them: a guest names no host file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipIndexOptions {
    /// `--index-url` / `-i`.
    pub index_url: Option<String>,
    /// `--extra-index-url` (repeatable).
    pub extra_index_urls: Vec<String>,
    /// `--no-index`.
    pub no_index: bool,
    /// `--find-links` / `-f` (recorded; link pages are not served yet).
    pub find_links: Vec<String>,
    /// `--trusted-host` (plain `http://` indexes are only used on these hosts or loopback).
    pub trusted_hosts: Vec<String>,
}

/// Where the default index comes from when nothing names one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DefaultIndex {
    /// Ask the host's pip ([`default_index_url`]), only when needed.
    #[default]
    FromHostPip,
    /// This one (`None`: there is no default).
    Fixed(Option<String>),
}

/// What the host says: its environment (`PIP_*`, `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`,
/// `HTTPS_PROXY`, `NO_PROXY`, …) and its pip configuration files.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// The host variables that matter (see [`HostConfig::from_process`]).
    pub env: BTreeMap<String, String>,
    /// The host's pip configuration files, lowest priority first: (path, text).
    pub pip_conf: Vec<(PathBuf, String)>,
    pub default_index: DefaultIndex,
}

/// Where the indexes are and how to reach them, resolved once per `pip` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSettings {
    /// The main index (`…/simple`), `None` under `--no-index`.
    pub index_url: Option<String>,
    /// Extra indexes; files of a project from all indexes are merged (the main one first).
    pub extra_index_urls: Vec<String>,
    /// Where `index_url` came from, for messages (`--index-url`, `PIP_INDEX_URL of the
    /// build`, `/root/.config/pip/pip.conf`, `/etc/pip.conf`, `the host's pip default`, …).
    pub index_source: String,
    /// Extra trusted roots (PEM bundles on the host), added to the system's store.
    pub ca_bundles: Vec<PathBuf>,
    /// Hosts where plain `http://` is accepted (besides loopback).
    pub trusted_hosts: Vec<String>,
    /// `--find-links` values (recorded only).
    pub find_links: Vec<String>,
    /// `HTTPS_PROXY` / `https_proxy`.
    pub https_proxy: Option<String>,
    /// `HTTP_PROXY` / `http_proxy` (for plain `http://` indexes).
    pub http_proxy: Option<String>,
    /// `NO_PROXY` / `no_proxy`.
    pub no_proxy: Option<String>,
    /// Seconds before a silent connection is given up (`PIP_DEFAULT_TIMEOUT`, `timeout`).
    pub timeout_secs: u64,
}

impl HostConfig {
    /// This process's environment and the host's pip configuration files:
    /// `$XDG_CONFIG_DIRS/pip/pip.conf` (default `/etc/xdg`), `/etc/pip.conf`,
    /// `~/.pip/pip.conf`, `$XDG_CONFIG_HOME/pip/pip.conf` (or `~/.config/pip/pip.conf`),
    /// then `$PIP_CONFIG_FILE` (highest; `/dev/null` means no file at all, as in pip).
    pub fn from_process() -> HostConfig {
        config::host_from_process()
    }
}

impl IndexSettings {
    /// Resolves the settings with the host as this process sees it ([`HostConfig::from_process`]).
    ///
    /// Order (the first that sets a key wins): `pip` (command line / requirements file) >
    /// the build's environment (`PIP_INDEX_URL`, `PIP_EXTRA_INDEX_URL`, `PIP_NO_INDEX`,
    /// `PIP_TRUSTED_HOST`, `PIP_FIND_LINKS`) > `guest_pip_conf` (the guest's pip.conf files
    /// as `(guest path, text)`, lowest priority first, e.g. `/root/.pip/pip.conf` then
    /// `/root/.config/pip/pip.conf`) > the host's environment > the host's pip
    /// configuration > the default index learned from the host's pip. Certificates,
    /// proxies and timeouts come from the host only. No index at all is
    /// `PackageError::NoIndex` (unless `--no-index`).
    pub fn resolve(
        build_env: &dyn Fn(&str) -> Option<String>,
        guest_pip_conf: &[(String, String)],
        pip: &PipIndexOptions,
    ) -> Result<IndexSettings, PackageError> {
        Self::resolve_with(&HostConfig::from_process(), build_env, guest_pip_conf, pip)
    }

    /// [`IndexSettings::resolve`] with an explicit host.
    pub fn resolve_with(
        host: &HostConfig,
        build_env: &dyn Fn(&str) -> Option<String>,
        guest_pip_conf: &[(String, String)],
        pip: &PipIndexOptions,
    ) -> Result<IndexSettings, PackageError> {
        config::resolve(host, build_env, guest_pip_conf, pip)
    }

    /// Settings for one index URL and nothing else from anywhere (tests, tools).
    pub fn for_index(index_url: &str) -> IndexSettings {
        IndexSettings {
            index_url: Some(index_url.to_owned()),
            extra_index_urls: Vec::new(),
            index_source: "the caller".into(),
            ca_bundles: Vec::new(),
            trusted_hosts: Vec::new(),
            find_links: Vec::new(),
            https_proxy: None,
            http_proxy: None,
            no_proxy: None,
            timeout_secs: config::DEFAULT_TIMEOUT_SECS,
        }
    }

    /// The indexes to ask, the main one first.
    pub fn indexes(&self) -> Vec<&str> {
        self.index_url
            .iter()
            .chain(&self.extra_index_urls)
            .map(String::as_str)
            .collect()
    }
}

/// Whether `name` is a valid project name (PEP 508: letters, digits, `._-` inside).
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 200
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A file to download: a [`Pin`] or a [`DistFile`].
pub trait Downloadable {
    /// The file name (for messages).
    fn file_name(&self) -> &str;
    fn url(&self) -> &str;
    /// The hex sha256 the index publishes: the download must have it; the store key.
    fn sha256(&self) -> &str;
}

impl Downloadable for Pin {
    fn file_name(&self) -> &str {
        &self.file
    }
    fn url(&self) -> &str {
        &self.url
    }
    fn sha256(&self) -> &str {
        &self.sha256
    }
}

impl Downloadable for DistFile {
    fn file_name(&self) -> &str {
        &self.file
    }
    fn url(&self) -> &str {
        &self.url
    }
    fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// What [`Client::fetch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The store key (= the published sha256).
    pub sha256: String,
    /// Whether it was downloaded now (`false`: the store had it).
    pub downloaded: bool,
}

/// A project's files as the store keeps them (the `python/index/...` reference's blob).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedPage {
    index: String,
    project: String,
    files: Vec<DistFile>,
    /// The published sha256 of each file's metadata file (PEP 658), by file URL.
    #[serde(default)]
    metadata_sha256: BTreeMap<String, String>,
}

/// The package index client: pages, metadata and downloads, each file kept in the store
/// under its sha256. Safe to call from any thread, including blocking threads of a Tokio
/// runtime (its HTTP runs on a runtime of its own). Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    settings: IndexSettings,
    store: Store,
    offline: bool,
    /// `None` when offline.
    http: Option<http::Http>,
    /// PEP 658 metadata hashes seen on pages, by file URL (`None`: published without one).
    metadata_sha256: Mutex<HashMap<String, Option<String>>>,
}

impl Client {
    /// A client for `settings`, keeping files and pages in `store`. With `offline`, nothing
    /// is asked of the network: pages and files come from the store or fail with
    /// `PackageError::Offline` naming what is missing.
    pub fn new(
        settings: IndexSettings,
        store: Store,
        offline: bool,
    ) -> Result<Client, PackageError> {
        let http = if offline {
            None
        } else {
            Some(http::Http::new(&settings)?)
        };
        Ok(Client {
            inner: Arc::new(Inner {
                settings,
                store,
                offline,
                http,
                metadata_sha256: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn settings(&self) -> &IndexSettings {
        &self.inner.settings
    }

    pub fn is_offline(&self) -> bool {
        self.inner.offline
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Makes sure the store holds `file` (by its sha256): the store first, else a download
    /// checked against the published sha256 (a mismatch keeps nothing).
    pub fn fetch<D: Downloadable + ?Sized>(&self, file: &D) -> Result<Fetched, PackageError> {
        let sha256 = checked_sha256(file)?;
        if self.inner.store.has_blob(&sha256)? {
            return Ok(Fetched {
                sha256,
                downloaded: false,
            });
        }
        let http = self.online(file.file_name())?;
        let url = self.url_of(file, &sha256)?;
        let tmp = self.download_dir()?;
        let download = http::Download {
            file: file.file_name().to_owned(),
            url,
            sha256: sha256.clone(),
        };
        let temp = http.download(download, &tmp)?;
        self.keep_download(&sha256, file.file_name(), temp)?;
        Ok(Fetched {
            sha256,
            downloaded: true,
        })
    }

    /// [`Client::fetch`] of several files, downloading up to [`PARALLEL_DOWNLOADS`] at
    /// once. The first error is returned after the others have finished (those that
    /// succeeded stay in the store).
    pub fn fetch_all<D: Downloadable + Sync>(
        &self,
        files: &[D],
    ) -> Result<Vec<Fetched>, PackageError> {
        let mut wanted: Vec<http::Download> = Vec::new();
        let mut seen = HashSet::new();
        let mut present = HashSet::new();
        for file in files {
            let sha256 = checked_sha256(file)?;
            if !seen.insert(sha256.clone()) {
                continue;
            }
            if self.inner.store.has_blob(&sha256)? {
                present.insert(sha256);
            } else {
                // A file without a URL (a lock's) is found on the index below, once it is
                // known that the store lacks it and the network may be asked.
                wanted.push(http::Download {
                    file: file.file_name().to_owned(),
                    url: file.url().to_owned(),
                    sha256,
                });
            }
        }
        if !self.inner.offline {
            for download in &mut wanted {
                if download.url.is_empty() {
                    download.url = self.locate(&download.file, &download.sha256)?;
                }
            }
        }
        if let Some(first) = wanted.first() {
            if self.inner.offline {
                let names: Vec<&str> = wanted.iter().map(|d| d.file.as_str()).collect();
                return Err(PackageError::Offline {
                    file: names.join(", "),
                });
            }
            let http = self.online(&first.file)?;
            let tmp = self.download_dir()?;
            let results = http.download_many(wanted.clone(), &tmp, PARALLEL_DOWNLOADS);
            let mut first_error = None;
            for (download, result) in wanted.iter().zip(results) {
                let kept = result
                    .and_then(|temp| self.keep_download(&download.sha256, &download.file, temp));
                if let Err(e) = kept {
                    first_error.get_or_insert(e);
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        files
            .iter()
            .map(|f| {
                let sha256 = f.sha256().to_ascii_lowercase();
                let downloaded = !present.contains(&sha256);
                Ok(Fetched { sha256, downloaded })
            })
            .collect()
    }

    /// The content of `file`: fetched (as above), then read back from the store.
    pub fn read<D: Downloadable + ?Sized>(&self, file: &D) -> Result<Vec<u8>, PackageError> {
        let fetched = self.fetch(file)?;
        Ok(self.inner.store.get_blob(&fetched.sha256)?)
    }

    /// Where to download `file` from: its own URL, else (a lock's pin, which names no host)
    /// the file of that name and sha256 on the configured index.
    fn url_of<D: Downloadable + ?Sized>(
        &self,
        file: &D,
        sha256: &str,
    ) -> Result<String, PackageError> {
        if !file.url().is_empty() {
            return Ok(file.url().to_owned());
        }
        self.locate(file.file_name(), sha256)
    }

    /// The URL of the file named `file` with `sha256` on the index, from its project's page.
    fn locate(&self, file: &str, sha256: &str) -> Result<String, PackageError> {
        let project = project_of_file(file).ok_or_else(|| PackageError::BadRequirement {
            requirement: file.into(),
            reason: "not a wheel or sdist file name".into(),
        })?;
        self.project(&project)?
            .into_iter()
            .find(|f| f.file == file && f.sha256.eq_ignore_ascii_case(sha256))
            .map(|f| f.url)
            .ok_or_else(|| PackageError::NotOnIndex {
                file: file.into(),
                sha256: sha256.into(),
                index: self.inner.settings.indexes().join(", "),
            })
    }

    fn online(&self, what: &str) -> Result<&http::Http, PackageError> {
        match &self.inner.http {
            Some(http) => Ok(http),
            None => Err(PackageError::Offline { file: what.into() }),
        }
    }

    fn download_dir(&self) -> Result<PathBuf, PackageError> {
        let dir = self.inner.store.local_dir("python-downloads");
        std::fs::create_dir_all(&dir)
            .map_err(|e| PackageError::Io(format!("{}: {e}", dir.display())))?;
        Ok(dir)
    }

    /// Puts a verified download into the store and anchors it against gc.
    fn keep_download(
        &self,
        sha256: &str,
        file: &str,
        temp: tempfile::TempPath,
    ) -> Result<(), PackageError> {
        let (digest, _) = self.inner.store.put_file(&temp)?;
        drop(temp);
        if digest != sha256 {
            // The download was checked while streaming: only a changing file gets here.
            return Err(PackageError::HashMismatch {
                file: file.into(),
                expected: sha256.into(),
                actual: digest,
            });
        }
        self.inner
            .store
            .set_ref(&format!("python/files/{sha256}"), sha256)?;
        Ok(())
    }

    fn page_ref(index: &str, name: &str) -> String {
        let key = sha256_hex(index.trim_end_matches('/').as_bytes());
        format!("python/index/{}/{name}", &key[..16])
    }

    /// The project's files on one index: `None` when the index does not know it.
    fn project_on(&self, index: &str, name: &str) -> Result<Option<CachedPage>, PackageError> {
        let store = &self.inner.store;
        let reference = Self::page_ref(index, name);
        let Some(http) = &self.inner.http else {
            let Some(digest) = store.get_ref(&reference)? else {
                return Ok(None);
            };
            let bytes = store.get_blob(&digest)?;
            let page: CachedPage = serde_json::from_slice(&bytes).map_err(|e| {
                PackageError::Io(format!(
                    "the stored index page of {name} is unreadable: {e}"
                ))
            })?;
            return Ok(Some(page));
        };
        let url = format!("{}/{name}/", index.trim_end_matches('/'));
        let Some(fetched) = http.get_page(index, &url)? else {
            return Ok(None);
        };
        let parsed = page::parse(&fetched.body, &fetched.content_type, &fetched.url, index)?;
        let mut metadata_sha256 = BTreeMap::new();
        for (url, hash) in &parsed.metadata_sha256 {
            metadata_sha256.insert(url.clone(), hash.clone());
        }
        let page = CachedPage {
            index: index.to_owned(),
            project: name.to_owned(),
            files: parsed.files,
            metadata_sha256,
        };
        let json = serde_json::to_vec(&page).map_err(|e| PackageError::Io(e.to_string()))?;
        let digest = store.put_blob(&json)?;
        store.set_ref(&reference, &digest)?;
        Ok(Some(page))
    }

    fn metadata_from_wheel(&self, file: &DistFile) -> Result<String, PackageError> {
        let bytes = self.read(file)?;
        wheel_metadata_from_zip(&bytes, &file.file)
    }
}

fn checked_sha256<D: Downloadable + ?Sized>(file: &D) -> Result<String, PackageError> {
    let sha256 = file.sha256().to_ascii_lowercase();
    if !is_digest(&sha256) {
        return Err(PackageError::BadDistribution {
            file: file.file_name().into(),
            reason: format!("{:?} is not a sha256 (64 hex digits)", file.sha256()),
        });
    }
    Ok(sha256)
}

/// The `METADATA` of the wheel whose bytes are `wheel`: `<name>-<version>.dist-info/METADATA`
/// at the top of the archive.
pub fn wheel_metadata_from_zip(wheel: &[u8], file: &str) -> Result<String, PackageError> {
    let bad = |reason: String| PackageError::BadDistribution {
        file: file.into(),
        reason,
    };
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(wheel))
        .map_err(|e| bad(format!("not a zip archive: {e}")))?;
    // `name-version` of the file name, normalized, to choose among several .dist-info.
    let stem: Vec<&str> = file.trim_end_matches(".whl").splitn(3, '-').collect();
    let wanted = (stem.len() >= 2).then(|| {
        format!(
            "{}-{}.dist-info",
            normalize_name(stem[0]).replace('-', "_"),
            stem[1]
        )
    });
    let candidates: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| {
            n.split_once('/')
                .is_some_and(|(dir, rest)| dir.ends_with(".dist-info") && rest == "METADATA")
        })
        .map(|n| n.into_owned())
        .collect();
    let chosen = match candidates.len() {
        0 => return Err(bad("it has no .dist-info/METADATA".into())),
        1 => candidates[0].clone(),
        _ => candidates
            .iter()
            .find(|c| {
                let dir = c.split('/').next().unwrap_or_default();
                wanted.as_deref().is_some_and(|w| {
                    normalize_name(dir).replace('-', "_") == normalize_name(w).replace('-', "_")
                })
            })
            .cloned()
            .ok_or_else(|| {
                bad(format!(
                    "it has several .dist-info: {}",
                    candidates.join(", ")
                ))
            })?,
    };
    let mut entry = zip
        .by_name(&chosen)
        .map_err(|e| bad(format!("{chosen}: {e}")))?;
    let mut text = String::new();
    entry
        .by_ref()
        .take(MAX_PAGE)
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("{chosen}: {e}")))?;
    Ok(text)
}

impl Index for Client {
    fn project(&self, name: &str) -> Result<Vec<DistFile>, PackageError> {
        if !is_valid_name(name) {
            return Err(PackageError::BadRequirement {
                requirement: name.into(),
                reason: "not a valid project name".into(),
            });
        }
        let name = normalize_name(name);
        let indexes = self.inner.settings.indexes();
        if indexes.is_empty() {
            return Err(PackageError::UnknownProject {
                index: "--no-index".into(),
                name,
            });
        }
        let mut files: Vec<DistFile> = Vec::new();
        let mut names = HashSet::new();
        let mut found = false;
        for index in &indexes {
            let Some(page) = self.project_on(index, &name)? else {
                continue;
            };
            found = true;
            {
                let mut hashes = self.inner.metadata_sha256.lock().unwrap();
                for f in &page.files {
                    if f.has_metadata {
                        hashes.insert(f.url.clone(), page.metadata_sha256.get(&f.url).cloned());
                    }
                }
            }
            for f in page.files {
                if names.insert(f.file.clone()) {
                    files.push(f);
                }
            }
        }
        if !found {
            if self.inner.offline {
                return Err(PackageError::Offline {
                    file: format!("the index page of {name}"),
                });
            }
            return Err(PackageError::UnknownProject {
                index: http::redact(indexes[0]),
                name,
            });
        }
        Ok(files)
    }

    fn wheel_metadata(&self, file: &DistFile) -> Result<String, PackageError> {
        let sha256 = checked_sha256(file)?;
        let store = &self.inner.store;
        let reference = format!("python/metadata/{sha256}");
        if let Some(digest) = store.get_ref(&reference)? {
            match store.get_blob(&digest) {
                Ok(bytes) => return Ok(String::from_utf8_lossy(&bytes).into_owned()),
                Err(e) if e.is_missing() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let text = match &self.inner.http {
            Some(http) if file.has_metadata && !store.has_blob(&sha256)? => {
                let expected = self
                    .inner
                    .metadata_sha256
                    .lock()
                    .unwrap()
                    .get(&file.url)
                    .cloned()
                    .flatten();
                let name = format!("{}.metadata", file.file);
                match http.get_metadata(&format!("{}.metadata", strip_fragment(&file.url)))? {
                    Some(bytes) => {
                        if let Some(expected) = expected {
                            let actual = sha256_hex(&bytes);
                            if actual != expected {
                                return Err(PackageError::HashMismatch {
                                    file: name,
                                    expected,
                                    actual,
                                });
                            }
                        }
                        String::from_utf8(bytes).map_err(|_| PackageError::BadDistribution {
                            file: name,
                            reason: "the metadata is not UTF-8".into(),
                        })?
                    }
                    None => self.metadata_from_wheel(file)?,
                }
            }
            _ => self.metadata_from_wheel(file)?,
        };
        let digest = store.put_blob(text.as_bytes())?;
        store.set_ref(&reference, &digest)?;
        Ok(text)
    }
}

fn strip_fragment(url: &str) -> &str {
    url.split_once('#').map_or(url, |(u, _)| u)
}

/// The project a distribution file belongs to, from its name: a wheel's first field
/// (`foo_bar-1.0-py3-none-any.whl`), an sdist's name before its version
/// (`foo-bar-1.0.tar.gz`).
fn project_of_file(file: &str) -> Option<String> {
    if let Some(stem) = file.strip_suffix(".whl") {
        let name = stem.split('-').next()?;
        return (!name.is_empty()).then(|| normalize_name(name));
    }
    let stem = file
        .strip_suffix(".tar.gz")
        .or_else(|| file.strip_suffix(".zip"))?;
    let (name, _version) = stem.rsplit_once('-')?;
    (!name.is_empty()).then(|| normalize_name(name))
}

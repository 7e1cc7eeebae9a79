//! A loopback package index for tests: serves a directory of real distributions (fetched
//! once with the host's pip, pinned versions only) as PEP 691 JSON and PEP 503 HTML with
//! their true sha256s, over HTTP or HTTPS with a throw-away CA, and can serve a tampered
//! file to test hash checking.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// Where distributions fetched for tests are kept between runs.
pub fn dist_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-dists")
}

/// The file of `spec` (`NAME==VERSION`, pinned), fetched once with the host's pip
/// (`pip download --no-deps --only-binary=:all:`) into [`dist_cache`]; its path.
pub fn real_wheel(spec: &str) -> PathBuf {
    fetched_wheel(spec, "", &[])
}

/// The pure-Python wheel (`py3-none-any`) of `spec`, for a project that also ships
/// compiled wheels (which the host's pip would otherwise take); fetched once, its path.
pub fn real_pure_wheel(spec: &str) -> PathBuf {
    let pure = [
        "--platform",
        "any",
        "--implementation",
        "py",
        "--abi",
        "none",
    ];
    fetched_wheel(spec, "-py3-none-any", &pure)
}

/// The wheel `pip download [options] spec` gives, kept in [`dist_cache`] under the spec's
/// name and `suffix`.
fn fetched_wheel(spec: &str, suffix: &str, options: &[&str]) -> PathBuf {
    assert!(spec.contains("=="), "pin test distributions: {spec}");
    let dir = dist_cache().join(spec.replace("==", "-") + suffix);
    let existing = |dir: &Path| {
        std::fs::read_dir(dir).ok().and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "whl"))
        })
    };
    if let Some(found) = existing(&dir) {
        return found;
    }
    download_wheels(&dir, spec, options);
    existing(&dir).unwrap_or_else(|| panic!("pip downloaded no wheel of {spec}"))
}

/// `pip download --no-deps --only-binary=:all: [options] spec` into `dir`, with the host's
/// pip (`options` choose another platform, say).
pub fn download_wheels(dir: &Path, spec: &str, options: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let status = std::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
        ])
        .args(options)
        .arg("-d")
        .arg(dir)
        .arg(spec)
        .env_remove("PIP_FIND_LINKS")
        .status()
        .expect("the host's python3 -m pip (tests fetch their distributions with it)");
    assert!(status.success(), "pip download {spec} failed");
}

pub fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// PEP 503 normalization (kept apart from the crate's, to check it).
pub fn normalize(name: &str) -> String {
    let re = regex::Regex::new(r"[-_.]+").unwrap();
    re.replace_all(name, "-").to_lowercase()
}

/// What the index serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// PEP 691 JSON when asked for it (else HTML), as a modern index does.
    Both,
    /// PEP 503 HTML only, whatever is asked.
    Html,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub format: Format,
    /// Serve over HTTPS with a certificate from a fresh CA (written to `TestIndex::ca_pem`).
    pub https: bool,
    /// Serve PEP 658 metadata files next to wheels.
    pub metadata: bool,
    /// File names whose content is changed on the wire (the page keeps the true sha256).
    pub tampered: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: Format::Both,
            https: false,
            metadata: true,
            tampered: Vec::new(),
        }
    }
}

/// One distribution as the index serves it.
#[derive(Clone, Debug)]
pub struct Served {
    pub project: String,
    pub file: String,
    pub sha256: String,
    pub bytes: Vec<u8>,
    pub metadata: Option<Vec<u8>>,
}

pub struct TestIndex {
    /// `http(s)://127.0.0.1:PORT/simple`
    pub url: String,
    /// The CA that signed the server's certificate (HTTPS only).
    pub ca_pem: Option<PathBuf>,
    /// Every request path, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
    pub files: Vec<Served>,
    stop: Arc<AtomicBool>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for TestIndex {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn wheel_metadata(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
    let name = zip
        .file_names()
        .filter_map(Result::ok)
        .find(|n| n.ends_with(".dist-info/METADATA") && n.matches('/').count() == 1)?
        .into_owned();
    let mut out = Vec::new();
    zip.by_name(&name).ok()?.read_to_end(&mut out).ok()?;
    Some(out)
}

fn project_of(file: &str) -> String {
    let stem = file
        .strip_suffix(".whl")
        .map(|s| s.split('-').next().unwrap_or(s))
        .or_else(|| {
            file.strip_suffix(".tar.gz")
                .and_then(|s| s.rsplit_once('-').map(|(n, _)| n))
        })
        .unwrap_or(file);
    normalize(stem)
}

impl TestIndex {
    /// Serves `dists` (paths of real distribution files).
    pub fn serve(dists: &[PathBuf], options: Options) -> TestIndex {
        let files: Vec<Served> = dists
            .iter()
            .map(|p| {
                let bytes = std::fs::read(p).unwrap();
                let file = p.file_name().unwrap().to_string_lossy().into_owned();
                Served {
                    project: project_of(&file),
                    sha256: hex::encode(Sha256::digest(&bytes)),
                    metadata: if options.metadata && file.ends_with(".whl") {
                        wheel_metadata(&bytes)
                    } else {
                        None
                    },
                    file,
                    bytes,
                }
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let tls = options.https.then(|| {
            let (config, ca) = tls_config();
            let ca_path = dir.path().join("ca.pem");
            std::fs::write(&ca_path, ca).unwrap();
            (Arc::new(config), ca_path)
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host = if tls.is_some() {
            "localhost"
        } else {
            "127.0.0.1"
        };
        let url = format!("{scheme}://{host}:{port}/simple");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(State {
            files: files.clone(),
            options: options.clone(),
            requests: requests.clone(),
        });
        let server_config = tls.as_ref().map(|(c, _)| c.clone());
        let stop_flag = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = state.clone();
                let config = server_config.clone();
                std::thread::spawn(move || {
                    let _ = match config {
                        Some(config) => {
                            let conn = rustls::ServerConnection::new(config).unwrap();
                            let mut tls = rustls::StreamOwned::new(conn, stream);
                            state.handle(&mut tls)
                        }
                        None => {
                            let mut stream = stream;
                            state.handle(&mut stream)
                        }
                    };
                });
            }
        });
        TestIndex {
            url,
            ca_pem: tls.map(|(_, p)| p),
            requests,
            files,
            stop,
            port,
            _dir: dir,
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn served(&self, file: &str) -> &Served {
        self.files.iter().find(|f| f.file == file).unwrap()
    }
}

struct State {
    files: Vec<Served>,
    options: Options,
    requests: Arc<Mutex<Vec<String>>>,
}

static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);

impl State {
    fn handle(&self, stream: &mut (impl Read + Write)) -> std::io::Result<()> {
        CONNECTIONS.fetch_add(1, Ordering::SeqCst);
        let mut reader = BufReader::new(&mut *stream);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        let mut headers = BTreeMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        drop(reader);
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        self.requests.lock().unwrap().push(path.clone());
        let accept = headers.get("accept").cloned().unwrap_or_default();
        let (status, content_type, body) = self.route(&path, &accept);
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        stream.write_all(&body)?;
        stream.flush()
    }

    fn route(&self, path: &str, accept: &str) -> (&'static str, &'static str, Vec<u8>) {
        let not_found = ("404 Not Found", "text/plain", b"not found".to_vec());
        if let Some(rest) = path.strip_prefix("/simple/") {
            let name = rest.trim_end_matches('/');
            if name != normalize(name) {
                return not_found; // a real index redirects; the client always normalizes
            }
            let files: Vec<&Served> = self.files.iter().filter(|f| f.project == name).collect();
            if files.is_empty() {
                return not_found;
            }
            let json = self.options.format == Format::Both
                && accept.contains("application/vnd.pypi.simple.v1+json");
            return if json {
                let files: Vec<serde_json::Value> = files
                    .iter()
                    .map(|f| {
                        let mut v = serde_json::json!({
                            "filename": f.file,
                            "url": format!("../../files/{}", f.file),
                            "hashes": {"sha256": f.sha256},
                            "requires-python": ">=3.7",
                        });
                        if let Some(m) = &f.metadata {
                            v["core-metadata"] =
                                serde_json::json!({"sha256": hex::encode(Sha256::digest(m))});
                        }
                        v
                    })
                    .collect();
                let page = serde_json::json!({"meta": {"api-version": "1.1"}, "name": name, "files": files});
                (
                    "200 OK",
                    "application/vnd.pypi.simple.v1+json",
                    page.to_string().into_bytes(),
                )
            } else {
                let mut html = String::from("<!DOCTYPE html>\n<html><body>\n");
                for f in files {
                    let metadata = f
                        .metadata
                        .as_ref()
                        .map(|m| {
                            format!(
                                " data-dist-info-metadata=\"sha256={0}\" data-core-metadata=\"sha256={0}\"",
                                hex::encode(Sha256::digest(m))
                            )
                        })
                        .unwrap_or_default();
                    html.push_str(&format!(
                        "<a href=\"/files/{0}#sha256={1}\" data-requires-python=\"&gt;=3.7\"{metadata}>{0}</a><br/>\n",
                        f.file, f.sha256
                    ));
                }
                html.push_str("</body></html>\n");
                ("200 OK", "text/html", html.into_bytes())
            };
        }
        if let Some(file) = path.strip_prefix("/files/") {
            if let Some(wheel) = file.strip_suffix(".metadata") {
                return match self.files.iter().find(|f| f.file == wheel) {
                    Some(Served {
                        metadata: Some(m), ..
                    }) => ("200 OK", "application/octet-stream", m.clone()),
                    _ => not_found,
                };
            }
            return self.file(file);
        }
        // A Debian archive's pool, `/debian/pool/main/SHELF/PACKAGE/PACKAGE_…`: the shelf is
        // the package's first letter, `libX` for a `lib…` package.
        if let Some(rest) = path.strip_prefix("/debian/pool/main/") {
            let parts: Vec<&str> = rest.split('/').collect();
            let [shelf, package, file] = parts[..] else {
                return not_found;
            };
            let expected = if package.starts_with("lib") {
                &package[..4]
            } else {
                &package[..1]
            };
            if shelf != expected || !file.starts_with(&format!("{package}_")) {
                return not_found;
            }
            return self.file(file);
        }
        not_found
    }

    /// A served file by name, changed on the wire if the options say so.
    fn file(&self, file: &str) -> (&'static str, &'static str, Vec<u8>) {
        match self.files.iter().find(|f| f.file == file) {
            Some(f) => {
                let mut bytes = f.bytes.clone();
                if self.options.tampered.contains(&f.file) {
                    let last = bytes.len() - 1;
                    bytes[last] ^= 0xff;
                }
                ("200 OK", "application/octet-stream", bytes)
            }
            None => ("404 Not Found", "text/plain", b"not found".to_vec()),
        }
    }
}

/// A server configuration for `localhost`/`127.0.0.1` signed by a fresh CA; the CA's PEM.
fn tls_config() -> (rustls::ServerConfig, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "wasmbuild test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    (config, ca_cert.pem())
}

//! HTTP for the index: one reqwest client per [`Http`], run on a small Tokio runtime of
//! this module's own (so callers on any thread, inside a runtime or not, just wait for a
//! reply), with timeouts, a few retries on transient failures, and size limits.

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::{IndexSettings, MAX_DOWNLOAD, MAX_PAGE};
use crate::python::PackageError;

/// Attempts per request when the failure may pass (connection errors, timeouts, 5xx, 429).
const ATTEMPTS: u32 = 3;

/// What the simple API is asked for: PEP 691 JSON first, then HTML.
const ACCEPT_PAGE: &str = "application/vnd.pypi.simple.v1+json, \
     application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("wasmbuild-index")
            .enable_all()
            .build()
            .expect("cannot start the package index's runtime")
    })
}

/// Runs `future` on the module's runtime and waits for it; callable from any thread (the
/// runtime is never entered nor dropped by the caller).
fn run<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().expect("the package index's runtime stopped")
}

/// `url` without user name and password (never printed).
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A page as served.
pub(super) struct Page {
    /// The URL after redirects.
    pub url: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// One file to download and the sha256 it must have.
#[derive(Debug, Clone)]
pub(super) struct Download {
    pub file: String,
    pub url: String,
    pub sha256: String,
}

pub(super) struct Http {
    client: reqwest::Client,
    trusted_hosts: Vec<String>,
}

enum Failure {
    /// Worth another attempt.
    Transient(String),
    Final(String),
}

impl Http {
    pub fn new(settings: &IndexSettings) -> Result<Http, PackageError> {
        let timeout = Duration::from_secs(settings.timeout_secs);
        crate::tls::install_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("wasmbuild/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .no_proxy();
        for bundle in &settings.ca_bundles {
            let pem = std::fs::read(bundle).map_err(|e| {
                PackageError::Io(format!(
                    "cannot read the certificate bundle {}: {e}",
                    bundle.display()
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                PackageError::Io(format!(
                    "{} is not a PEM certificate bundle: {e}",
                    bundle.display()
                ))
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let no_proxy = settings
            .no_proxy
            .as_deref()
            .and_then(reqwest::NoProxy::from_string);
        let proxy_error = |p: &str, e: reqwest::Error| {
            PackageError::Io(format!("invalid proxy {}: {e}", redact(p)))
        };
        if let Some(p) = &settings.https_proxy {
            let proxy = reqwest::Proxy::https(p)
                .map_err(|e| proxy_error(p, e))?
                .no_proxy(no_proxy.clone());
            builder = builder.proxy(proxy);
        }
        if let Some(p) = &settings.http_proxy {
            let proxy = reqwest::Proxy::http(p)
                .map_err(|e| proxy_error(p, e))?
                .no_proxy(no_proxy);
            builder = builder.proxy(proxy);
        }
        let client = run(async move { builder.build() }).map_err(|e| {
            PackageError::Io(format!("cannot set up HTTPS for the package index: {e}"))
        })?;
        Ok(Http {
            client,
            trusted_hosts: settings.trusted_hosts.clone(),
        })
    }

    /// Plain http is used only on loopback and `--trusted-host` hosts.
    fn check_scheme(&self, index: &str, url: &str) -> Result<(), PackageError> {
        let parsed = url::Url::parse(url).map_err(|e| PackageError::Unreachable {
            index: redact(index),
            reason: format!("invalid URL {}: {e}", redact(url)),
        })?;
        match parsed.scheme() {
            "https" => Ok(()),
            "http" => {
                let loopback = match parsed.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    Some(url::Host::Domain(d)) => d == "localhost",
                    None => false,
                };
                let host = parsed.host_str().unwrap_or_default();
                let port_host = parsed
                    .port()
                    .map(|p| format!("{host}:{p}"))
                    .unwrap_or_default();
                if loopback
                    || self
                        .trusted_hosts
                        .iter()
                        .any(|t| t == host || t == &port_host)
                {
                    Ok(())
                } else {
                    Err(PackageError::Unreachable {
                        index: redact(index),
                        reason: format!(
                            "{} is plain http: add --trusted-host {host} to use it",
                            redact(url)
                        ),
                    })
                }
            }
            other => Err(PackageError::Unreachable {
                index: redact(index),
                reason: format!("unsupported URL scheme {other}: in {}", redact(url)),
            }),
        }
    }

    /// GETs `url` (retrying transient failures); `Ok(None)` on 404 / 410.
    fn get(
        &self,
        index: &str,
        url: &str,
        accept: &'static str,
        limit: u64,
    ) -> Result<Option<Page>, PackageError> {
        self.check_scheme(index, url)?;
        let client = self.client.clone();
        let owned = url.to_owned();
        let result = run(async move {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match get_once(&client, &owned, accept, limit).await {
                    Ok(page) => return Ok(page),
                    Err(Failure::Transient(reason)) if attempt < ATTEMPTS => {
                        tracing::debug!("{owned}: {reason}; trying again");
                        tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                    }
                    Err(Failure::Transient(reason) | Failure::Final(reason)) => {
                        return Err(reason);
                    }
                }
            }
        });
        result.map_err(|reason| PackageError::Unreachable {
            index: redact(index),
            reason,
        })
    }

    /// A project page of `index`.
    pub fn get_page(&self, index: &str, url: &str) -> Result<Option<Page>, PackageError> {
        self.get(index, url, ACCEPT_PAGE, MAX_PAGE)
    }

    /// A PEP 658 metadata file; `None` if the index lacks it after all.
    pub fn get_metadata(&self, url: &str) -> Result<Option<Vec<u8>>, PackageError> {
        let index = format!("https://{}", host_of(url));
        Ok(self.get(&index, url, "*/*", MAX_PAGE)?.map(|p| p.body))
    }

    /// Downloads `d` into a temporary file in `dir`, checked against its sha256.
    pub fn download(&self, d: Download, dir: &Path) -> Result<tempfile::TempPath, PackageError> {
        self.download_many(vec![d], dir, 1)
            .pop()
            .expect("one result per download")
    }

    /// Downloads every file, `parallel` at a time; one result per file, in order.
    pub fn download_many(
        &self,
        downloads: Vec<Download>,
        dir: &Path,
        parallel: usize,
    ) -> Vec<Result<tempfile::TempPath, PackageError>> {
        let mut prepared = Vec::new();
        for d in downloads {
            let temp = self.check_scheme(&d.url, &d.url).and_then(|()| {
                tempfile::NamedTempFile::new_in(dir)
                    .map_err(|e| PackageError::Io(format!("{}: {e}", dir.display())))
            });
            prepared.push((d, temp));
        }
        let client = self.client.clone();
        run(async move {
            futures::stream::iter(prepared)
                .map(|(d, temp)| {
                    let client = client.clone();
                    async move {
                        let temp = temp?;
                        download_checked(&client, &d, temp).await
                    }
                })
                .buffered(parallel.max(1))
                .collect::<Vec<_>>()
                .await
        })
    }
}

async fn get_once(
    client: &reqwest::Client,
    url: &str,
    accept: &str,
    limit: u64,
) -> Result<Option<Page>, Failure> {
    let response = client
        .get(url)
        .header(reqwest::header::ACCEPT, accept)
        .send()
        .await
        .map_err(|e| transport(url, &e))?;
    let status = response.status();
    if status.as_u16() == 404 || status.as_u16() == 410 {
        return Ok(None);
    }
    check_status(url, status)?;
    let final_url = response.url().to_string();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut response = response;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(url, &e))? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(Failure::Final(format!(
                "{} is larger than {} MiB",
                redact(url),
                limit >> 20
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(Page {
        url: final_url,
        content_type,
        body,
    }))
}

fn check_status(url: &str, status: reqwest::StatusCode) -> Result<(), Failure> {
    if status.is_success() {
        return Ok(());
    }
    let reason = format!("HTTP {status} for {}", redact(url));
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Err(Failure::Transient(reason))
    } else {
        Err(Failure::Final(reason))
    }
}

/// One line for a transport error, with its causes (a TLS failure says why).
fn transport(url: &str, e: &reqwest::Error) -> Failure {
    let mut reason = format!("{}: {e}", redact(url));
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = s.source();
    }
    let reason = reason.replace('\n', " ");
    let lower = reason.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("invalid peer") {
        return Failure::Final(reason);
    }
    if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() {
        Failure::Transient(reason)
    } else {
        Failure::Final(reason)
    }
}

async fn download_checked(
    client: &reqwest::Client,
    d: &Download,
    temp: tempfile::NamedTempFile,
) -> Result<tempfile::TempPath, PackageError> {
    let unreachable = |reason: String| PackageError::Unreachable {
        index: format!("https://{}", host_of(&d.url)),
        reason: format!("downloading {}: {reason}", d.file),
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        match download_once(client, d, temp.as_file()).await {
            Ok(actual) if actual == d.sha256 => return Ok(temp.into_temp_path()),
            Ok(actual) => {
                return Err(PackageError::HashMismatch {
                    file: d.file.clone(),
                    expected: d.sha256.clone(),
                    actual,
                });
            }
            Err(Failure::Transient(reason)) if attempt < ATTEMPTS => {
                tracing::debug!("{}: {reason}; trying again", d.file);
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
            }
            Err(Failure::Transient(reason) | Failure::Final(reason)) => {
                return Err(unreachable(reason));
            }
        }
    }
}

/// Streams `d` into `file` (truncated first) while hashing; returns the hex sha256.
async fn download_once(
    client: &reqwest::Client,
    d: &Download,
    file: &std::fs::File,
) -> Result<String, Failure> {
    let io = |e: std::io::Error| Failure::Final(format!("writing the download: {e}"));
    file.set_len(0).map_err(io)?;
    let mut writer = std::io::BufWriter::new(file);
    std::io::Seek::rewind(&mut writer).map_err(io)?;
    let response = client
        .get(&d.url)
        .send()
        .await
        .map_err(|e| transport(&d.url, &e))?;
    let status = response.status();
    if status.as_u16() == 404 || status.as_u16() == 410 {
        return Err(Failure::Final(format!(
            "HTTP {status}: the index lists {} but does not serve it",
            redact(&d.url)
        )));
    }
    check_status(&d.url, status)?;
    let mut response = response;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(&d.url, &e))? {
        size += chunk.len() as u64;
        if size > MAX_DOWNLOAD {
            return Err(Failure::Final(format!(
                "larger than {} MiB",
                MAX_DOWNLOAD >> 20
            )));
        }
        hasher.update(&chunk);
        writer.write_all(&chunk).map_err(io)?;
    }
    writer.flush().map_err(io)?;
    Ok(hex::encode(hasher.finalize()))
}

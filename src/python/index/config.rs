//! Index settings from pip's options, environments and pip.conf files, in pip's order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::{DefaultIndex, HostConfig, IndexSettings, PipIndexOptions};
use crate::python::PackageError;

/// Seconds before a silent connection is given up when nothing says otherwise.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// Host variables kept in [`HostConfig::env`] besides every `PIP_*`.
const HOST_VARS: &[&str] = &[
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_CONFIG_DIRS",
];

pub(super) fn host_from_process() -> HostConfig {
    let env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("PIP_") || HOST_VARS.contains(&k.as_str()))
        .collect();
    let mut paths: Vec<PathBuf> = Vec::new();
    let config_file = env.get("PIP_CONFIG_FILE").filter(|v| !v.is_empty());
    if config_file.is_none_or(|f| f != "/dev/null") {
        let xdg_dirs = env
            .get("XDG_CONFIG_DIRS")
            .filter(|v| !v.is_empty())
            .map_or("/etc/xdg", String::as_str);
        // pip reads the XDG directories in reverse, the first one last (highest).
        for dir in xdg_dirs.split(':').filter(|d| !d.is_empty()).rev() {
            paths.push(Path::new(dir).join("pip/pip.conf"));
        }
        paths.push("/etc/pip.conf".into());
        let home = env.get("HOME").map(PathBuf::from).or_else(dirs::home_dir);
        if let Some(home) = &home {
            paths.push(home.join(".pip/pip.conf"));
        }
        match env.get("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            Some(config) => paths.push(Path::new(config).join("pip/pip.conf")),
            None => {
                if let Some(home) = &home {
                    paths.push(home.join(".config/pip/pip.conf"));
                }
            }
        }
        if let Some(file) = config_file {
            paths.push(file.into());
        }
    }
    let pip_conf = paths
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect();
    HostConfig {
        env,
        pip_conf,
        default_index: DefaultIndex::FromHostPip,
    }
}

/// The default index URL as the host's pip knows it, learned once per process by running
/// `python3` (else `python`); `None` when the host has no pip.
pub fn default_index_url() -> Option<String> {
    static LEARNED: OnceLock<Option<String>> = OnceLock::new();
    LEARNED
        .get_or_init(|| {
            ["python3", "python"].iter().find_map(|python| {
                let out = Command::new(python)
                    .args([
                        "-c",
                        "from pip._internal.models.index import PyPI; print(PyPI.simple_url)",
                    ])
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .output()
                    .ok()?;
                let text = String::from_utf8(out.stdout).ok()?;
                let url = text.trim();
                (out.status.success()
                    && url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "https" | "http")))
                .then(|| url.to_owned())
            })
        })
        .clone()
}

/// One source of settings; `None` leaves the key to the next source.
#[derive(Default)]
struct Layer {
    source: String,
    index_url: Option<String>,
    extra_index_urls: Option<Vec<String>>,
    no_index: Option<bool>,
    trusted_hosts: Option<Vec<String>>,
    find_links: Option<Vec<String>>,
    cert: Option<String>,
    timeout: Option<String>,
}

fn words(value: &str) -> Vec<String> {
    value.split_whitespace().map(str::to_owned).collect()
}

/// pip's `strtobool`.
fn truthy(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "y" | "yes" | "t" | "true" | "on" => Some(true),
        "0" | "n" | "no" | "f" | "false" | "off" | "" => Some(false),
        _ => None,
    }
}

fn env_layer(source: &str, get: &dyn Fn(&str) -> Option<String>, host: bool) -> Layer {
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    Layer {
        source: format!("PIP_INDEX_URL of the {source}"),
        index_url: get("PIP_INDEX_URL").map(|v| v.trim().to_owned()),
        extra_index_urls: get("PIP_EXTRA_INDEX_URL").map(|v| words(&v)),
        no_index: get("PIP_NO_INDEX").and_then(|v| truthy(&v)),
        trusted_hosts: get("PIP_TRUSTED_HOST").map(|v| words(&v)),
        find_links: get("PIP_FIND_LINKS").map(|v| words(&v)),
        cert: if host { get("PIP_CERT") } else { None },
        timeout: if host {
            get("PIP_DEFAULT_TIMEOUT").or_else(|| get("PIP_TIMEOUT"))
        } else {
            None
        },
    }
}

/// Parses a pip.conf (Python's configparser dialect) into `section → key → value`, keys
/// lowercased with `_` as `-`; continuation lines (indented) join with a newline.
pub(crate) fn parse_pip_conf(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section: Option<String> = None;
    let mut last_key: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            if trimmed.is_empty() {
                last_key = None;
            }
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if indented && let (Some(s), Some(k)) = (&section, &last_key) {
            let value = out
                .entry(s.clone())
                .or_default()
                .entry(k.clone())
                .or_default();
            value.push('\n');
            value.push_str(trimmed);
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            section = Some(name.trim().to_owned());
            last_key = None;
            continue;
        }
        let split = trimmed.find(['=', ':']);
        let Some(at) = split else {
            continue;
        };
        let key = trimmed[..at].trim().to_ascii_lowercase().replace('_', "-");
        let value = trimmed[at + 1..].trim().to_owned();
        if let Some(s) = &section {
            out.entry(s.clone()).or_default().insert(key.clone(), value);
            last_key = Some(key);
        }
    }
    out
}

/// The layer of one pip.conf: `[global]`, overridden by `[install]`.
fn conf_layer(source: &str, text: &str, host: bool) -> Layer {
    let conf = parse_pip_conf(text);
    let get = |key: &str| -> Option<String> {
        ["install", "global"]
            .iter()
            .find_map(|s| conf.get(*s).and_then(|keys| keys.get(key)))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    Layer {
        source: source.to_owned(),
        index_url: get("index-url"),
        extra_index_urls: get("extra-index-url").map(|v| words(&v)),
        no_index: get("no-index").and_then(|v| truthy(&v)),
        trusted_hosts: get("trusted-host").map(|v| words(&v)),
        find_links: get("find-links").map(|v| words(&v)),
        cert: if host { get("cert") } else { None },
        timeout: if host { get("timeout") } else { None },
    }
}

pub(super) fn resolve(
    host: &HostConfig,
    build_env: &dyn Fn(&str) -> Option<String>,
    guest_pip_conf: &[(String, String)],
    pip: &PipIndexOptions,
) -> Result<IndexSettings, PackageError> {
    let host_env = |k: &str| host.env.get(k).cloned();
    let mut layers: Vec<Layer> = vec![Layer {
        source: "--index-url".into(),
        index_url: pip.index_url.clone(),
        extra_index_urls: (!pip.extra_index_urls.is_empty()).then(|| pip.extra_index_urls.clone()),
        no_index: pip.no_index.then_some(true),
        trusted_hosts: (!pip.trusted_hosts.is_empty()).then(|| pip.trusted_hosts.clone()),
        find_links: (!pip.find_links.is_empty()).then(|| pip.find_links.clone()),
        cert: None,
        timeout: None,
    }];
    layers.push(env_layer("build", build_env, false));
    for (path, text) in guest_pip_conf.iter().rev() {
        layers.push(conf_layer(path, text, false));
    }
    layers.push(env_layer("host", &host_env, true));
    for (path, text) in host.pip_conf.iter().rev() {
        layers.push(conf_layer(&path.display().to_string(), text, true));
    }

    fn first<'a, T>(layers: &'a [Layer], f: impl Fn(&'a Layer) -> Option<T>) -> Option<T> {
        layers.iter().find_map(f)
    }
    let no_index = first(&layers, |l| l.no_index).unwrap_or(false);
    let trusted_hosts = first(&layers, |l| l.trusted_hosts.clone()).unwrap_or_default();
    let find_links = first(&layers, |l| l.find_links.clone()).unwrap_or_default();
    let (index_url, extra_index_urls, index_source) = if no_index {
        (None, Vec::new(), "--no-index".to_owned())
    } else {
        let extra = first(&layers, |l| l.extra_index_urls.clone()).unwrap_or_default();
        match layers
            .iter()
            .find_map(|l| l.index_url.clone().map(|u| (u, l.source.clone())))
        {
            Some((url, source)) => (Some(url), extra, source),
            None => {
                let default = match &host.default_index {
                    DefaultIndex::FromHostPip => default_index_url(),
                    DefaultIndex::Fixed(url) => url.clone(),
                };
                match default {
                    Some(url) => (Some(url), extra, "the host pip's default".to_owned()),
                    None if !extra.is_empty() => (None, extra, "--extra-index-url".to_owned()),
                    None => return Err(PackageError::NoIndex),
                }
            }
        }
    };
    for url in index_url.iter().chain(&extra_index_urls) {
        check_index_url(url)?;
    }

    // Certificates: the host's, every one that is set (added to the system's roots).
    let mut ca_bundles: Vec<PathBuf> = Vec::new();
    let mut add = |value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            let p = PathBuf::from(v.trim());
            if !ca_bundles.contains(&p) {
                ca_bundles.push(p);
            }
        }
    };
    add(host_env("SSL_CERT_FILE"));
    add(host_env("REQUESTS_CA_BUNDLE"));
    add(first(&layers, |l| l.cert.clone()));
    let timeout_secs = first(&layers, |l| l.timeout.clone())
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t > 0.0)
        .map_or(DEFAULT_TIMEOUT_SECS, |t| (t.ceil() as u64).clamp(1, 3600));
    let either = |a: &str, b: &str| {
        host_env(a)
            .or_else(|| host_env(b))
            .filter(|v| !v.is_empty())
    };
    Ok(IndexSettings {
        index_url,
        extra_index_urls,
        index_source,
        ca_bundles,
        trusted_hosts,
        find_links,
        https_proxy: either("HTTPS_PROXY", "https_proxy"),
        http_proxy: either("HTTP_PROXY", "http_proxy"),
        no_proxy: either("NO_PROXY", "no_proxy"),
        timeout_secs,
    })
}

fn check_index_url(url: &str) -> Result<(), PackageError> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(PackageError::BadRequirement {
            requirement: super::http::redact(url),
            reason: "an index URL must be an http:// or https:// URL".into(),
        }),
    }
}

//! Project pages of the simple API: PEP 691 JSON and PEP 503 HTML (with PEP 592 yanks,
//! PEP 658/714 metadata files, `data-requires-python`). Files without a sha256 are left
//! out: only what is pinned by hash is installed.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;

use crate::python::{DistFile, PackageError};

pub(super) struct Parsed {
    pub files: Vec<DistFile>,
    /// Published sha256 of the metadata files, by file URL.
    pub metadata_sha256: BTreeMap<String, String>,
}

/// Parses a project page served with `content_type` from `page_url`.
pub(super) fn parse(
    body: &[u8],
    content_type: &str,
    page_url: &str,
    index: &str,
) -> Result<Parsed, PackageError> {
    let base = url::Url::parse(page_url).map_err(|e| PackageError::Unreachable {
        index: super::http::redact(index),
        reason: format!("bad page URL: {e}"),
    })?;
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let bad = |reason: String| PackageError::Unreachable {
        index: super::http::redact(index),
        reason: format!("{}: {reason}", super::http::redact(page_url)),
    };
    let raw = if mime == "application/vnd.pypi.simple.v1+json" || mime.ends_with("+json") {
        parse_json(body).map_err(|e| bad(format!("invalid JSON project page: {e}")))?
    } else if mime.is_empty()
        || mime == "text/html"
        || mime == "application/vnd.pypi.simple.v1+html"
        || mime == "application/xhtml+xml"
    {
        parse_html(&String::from_utf8_lossy(body))
    } else {
        return Err(bad(format!("unexpected content type {content_type:?}")));
    };
    let mut files = Vec::new();
    let mut metadata_sha256 = BTreeMap::new();
    for f in raw {
        let Ok(url) = base.join(&f.href) else {
            tracing::debug!("{}: unusable link {:?}", page_url, f.href);
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        let Some(sha256) = f
            .sha256
            .map(|s| s.to_ascii_lowercase())
            .filter(|s| crate::digest::is_digest(s))
        else {
            tracing::debug!("{page_url}: {:?} has no sha256: left out", f.href);
            continue;
        };
        let mut url_no_fragment = url.clone();
        url_no_fragment.set_fragment(None);
        let file = match f.filename {
            Some(name) => name,
            None => file_name_of(&url_no_fragment),
        };
        if file.is_empty() || file.contains('/') || file.contains('\\') || file.starts_with('.') {
            continue;
        }
        if let Some(m) = f.metadata_sha256.filter(|s| crate::digest::is_digest(s)) {
            metadata_sha256.insert(url_no_fragment.to_string(), m);
        }
        files.push(DistFile {
            file,
            url: url_no_fragment.to_string(),
            sha256,
            requires_python: f.requires_python.filter(|r| !r.trim().is_empty()),
            yanked: f.yanked,
            has_metadata: f.has_metadata,
        });
    }
    Ok(Parsed {
        files,
        metadata_sha256,
    })
}

fn file_name_of(url: &url::Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    percent_decode(last)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One file link before URLs are resolved.
struct RawFile {
    href: String,
    filename: Option<String>,
    sha256: Option<String>,
    requires_python: Option<String>,
    yanked: bool,
    has_metadata: bool,
    metadata_sha256: Option<String>,
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
    #[serde(default, rename = "requires-python")]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: serde_json::Value,
    #[serde(default, rename = "core-metadata")]
    core_metadata: serde_json::Value,
    #[serde(default, rename = "dist-info-metadata")]
    dist_info_metadata: serde_json::Value,
    #[serde(default, rename = "data-dist-info-metadata")]
    data_dist_info_metadata: serde_json::Value,
}

/// PEP 691's `core-metadata`: `true`, `false`, or a dict of hashes.
fn json_metadata(value: &serde_json::Value) -> Option<(bool, Option<String>)> {
    match value {
        serde_json::Value::Bool(b) => Some((*b, None)),
        serde_json::Value::Object(map) => Some((
            true,
            map.get("sha256")
                .and_then(|v| v.as_str())
                .map(str::to_ascii_lowercase),
        )),
        _ => None,
    }
}

fn parse_json(body: &[u8]) -> Result<Vec<RawFile>, serde_json::Error> {
    let page: JsonPage = serde_json::from_slice(body)?;
    Ok(page
        .files
        .into_iter()
        .map(|f| {
            let (has_metadata, metadata_sha256) = json_metadata(&f.core_metadata)
                .or_else(|| json_metadata(&f.dist_info_metadata))
                .or_else(|| json_metadata(&f.data_dist_info_metadata))
                .unwrap_or((false, None));
            let yanked = match &f.yanked {
                serde_json::Value::Bool(b) => *b,
                serde_json::Value::String(_) => true,
                _ => false,
            };
            RawFile {
                href: f.url,
                filename: Some(f.filename),
                sha256: f.hashes.get("sha256").cloned(),
                requires_python: f.requires_python,
                yanked,
                has_metadata,
                metadata_sha256,
            }
        })
        .collect())
}

fn anchor_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?is)<a\s([^>]*)>(.*?)</a\s*>").expect("anchor regex"))
}

fn attr_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"(?s)([A-Za-z_:][-A-Za-z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?"#,
        )
        .expect("attribute regex")
    })
}

fn base_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"(?is)<base\s[^>]*href\s*=\s*["']([^"']*)["']"#).expect("base regex")
    })
}

/// Unescapes the character references HTML pages of indexes use.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") || entity.starts_with("#X") => {
                u32::from_str_radix(&entity[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn parse_html(text: &str) -> Vec<RawFile> {
    let base = base_re().captures(text).map(|c| unescape(&c[1]));
    let mut files = Vec::new();
    for anchor in anchor_re().captures_iter(text) {
        let mut attrs: BTreeMap<String, Option<String>> = BTreeMap::new();
        for a in attr_re().captures_iter(&anchor[1]) {
            let value = a
                .get(2)
                .or_else(|| a.get(3))
                .or_else(|| a.get(4))
                .map(|m| unescape(m.as_str()));
            attrs.insert(a[1].to_ascii_lowercase(), value);
        }
        let Some(Some(href)) = attrs.get("href").cloned() else {
            continue;
        };
        let href = match &base {
            Some(b) => url::Url::parse(b)
                .and_then(|b| b.join(&href))
                .map_or(href, |u| u.to_string()),
            None => href,
        };
        let sha256 = href.split_once('#').and_then(|(_, fragment)| {
            fragment
                .split('&')
                .find_map(|kv| kv.strip_prefix("sha256="))
                .map(str::to_owned)
        });
        let metadata = attrs
            .get("data-core-metadata")
            .or_else(|| attrs.get("data-dist-info-metadata"));
        let (has_metadata, metadata_sha256) = match metadata {
            None => (false, None),
            Some(None) => (true, None),
            Some(Some(v)) if v == "false" => (false, None),
            Some(Some(v)) => (true, v.strip_prefix("sha256=").map(str::to_ascii_lowercase)),
        };
        files.push(RawFile {
            href,
            filename: None,
            sha256,
            requires_python: attrs.get("data-requires-python").cloned().flatten(),
            yanked: attrs.contains_key("data-yanked"),
            has_metadata,
            metadata_sha256,
        });
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "b6a85871a79d2e3b22d2d1b94ac2824226a63c6b741c88f7ae975f18b6778374";

    #[test]
    fn html_anchors_with_hashes_yanks_and_metadata() {
        let page = format!(
            r#"<!DOCTYPE html><html><body>
            <a href="../../files/iniconfig-2.0.0-py3-none-any.whl#sha256={HASH}" data-requires-python="&gt;=3.7" data-dist-info-metadata="sha256={HASH}">iniconfig-2.0.0-py3-none-any.whl</a><br/>
            <a href='https://files.example/iniconfig-1.0.tar.gz#sha256={}' data-yanked="">iniconfig-1.0.tar.gz</a>
            <a href="iniconfig-0.1.tar.gz#md5=abc">no sha256</a>
            </body></html>"#,
            HASH.to_uppercase()
        );
        let parsed = parse(
            page.as_bytes(),
            "text/html; charset=utf-8",
            "https://index.example/simple/iniconfig/",
            "https://index.example/simple",
        )
        .unwrap();
        assert_eq!(parsed.files.len(), 2, "the file without sha256 is left out");
        let wheel = &parsed.files[0];
        assert_eq!(wheel.file, "iniconfig-2.0.0-py3-none-any.whl");
        assert_eq!(
            wheel.url,
            "https://index.example/files/iniconfig-2.0.0-py3-none-any.whl"
        );
        assert_eq!(wheel.sha256, HASH);
        assert_eq!(wheel.requires_python.as_deref(), Some(">=3.7"));
        assert!(wheel.has_metadata && !wheel.yanked);
        assert_eq!(
            parsed.metadata_sha256.get(&wheel.url).map(String::as_str),
            Some(HASH)
        );
        let sdist = &parsed.files[1];
        assert!(sdist.yanked && !sdist.has_metadata);
        assert_eq!(sdist.sha256, HASH, "hashes are lowercased");
    }

    #[test]
    fn json_page() {
        let page = format!(
            r#"{{"meta": {{"api-version": "1.1"}}, "name": "x", "files": [
              {{"filename": "x-1.0-py3-none-any.whl", "url": "/f/x-1.0-py3-none-any.whl",
                "hashes": {{"sha256": "{HASH}"}}, "requires-python": ">=3.8",
                "core-metadata": {{"sha256": "{HASH}"}}, "yanked": "broken"}},
              {{"filename": "x-0.9.tar.gz", "url": "x-0.9.tar.gz", "hashes": {{}}}}
            ]}}"#
        );
        let parsed = parse(
            page.as_bytes(),
            "application/vnd.pypi.simple.v1+json",
            "https://i.example/simple/x/",
            "https://i.example/simple",
        )
        .unwrap();
        assert_eq!(parsed.files.len(), 1);
        let f = &parsed.files[0];
        assert_eq!(f.url, "https://i.example/f/x-1.0-py3-none-any.whl");
        assert!(f.yanked && f.has_metadata);
        assert_eq!(f.requires_python.as_deref(), Some(">=3.8"));
    }

    #[test]
    fn unescapes_references() {
        assert_eq!(
            unescape("&gt;=3.7, &lt;4&#44;&#x21;&amp;&bogus;"),
            ">=3.7, <4,!&&bogus;"
        );
    }
}

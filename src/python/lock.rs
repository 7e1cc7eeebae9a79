//! Locks: `wasmbuild.lock` (the resolved set, pinned by sha256) and pip requirements files,
//! which are locks too when every line is `==`-pinned with `--hash=` options.

use std::collections::BTreeSet;
use std::str::FromStr;

use serde::Deserialize;

use super::index::{PipIndexOptions, is_valid_name, normalize_name};
use super::{PackageError, Pin};
use crate::digest::is_digest;

/// The lock file's name, next to the buildspec.
pub const LOCK_FILE: &str = "wasmbuild.lock";

/// The version of the lock format this code writes and reads.
pub const LOCK_VERSION: u32 = 1;

/// Requirements files nested deeper than this (`-r` in `-r` …) are refused.
pub const MAX_INCLUDE_DEPTH: usize = 32;

const LOCK_HEADER: &str = "\
# This file is written by wasmbuild: the Python distributions a build installs, each
# pinned by the sha256 of its file. A build with this lock asks the package index only for
# files its store lacks (by name and sha256, from any mirror); with --offline it uses the
# store only. Regenerate it rather than editing it by hand.
";

/// `wasmbuild.lock`: `version = 1` and one `[[python]]` table per distribution file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    /// Sorted by (name, version, file); no two with the same file name.
    pub python: Vec<Pin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockToml {
    version: u32,
    #[serde(default)]
    python: Vec<PinToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinToml {
    name: String,
    version: String,
    file: String,
    /// Older locks name the download URL; a lock names no host now (the configured index
    /// serves the file by name and sha256), so a lock works with any mirror.
    #[serde(default)]
    url: String,
    sha256: String,
}

impl Lock {
    /// A lock of `pins` (sorted, exact duplicates dropped).
    pub fn new(mut pins: Vec<Pin>) -> Lock {
        // A lock names files, not hosts: where a file comes from is the index's business.
        for pin in &mut pins {
            pin.url.clear();
        }
        pins.sort_by(|a, b| {
            (&a.name, &a.version, &a.file, &a.sha256)
                .cmp(&(&b.name, &b.version, &b.file, &b.sha256))
        });
        pins.dedup();
        Lock { python: pins }
    }

    /// Parses a lock; `file` names it in errors (`wasmbuild.lock:12: …`).
    pub fn parse(text: &str, file: &str) -> Result<Lock, PackageError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let parsed: LockToml = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(s.start));
            PackageError::Lock(format!("{file}:{line}: {}", e.message().trim()))
        })?;
        if parsed.version != LOCK_VERSION {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("version"))
                .map_or(1, |i| i + 1);
            return Err(PackageError::Lock(format!(
                "{file}:{line}: lock version {} is not supported (this wasmbuild reads version {LOCK_VERSION})",
                parsed.version
            )));
        }
        // The line of each [[python]] table, for messages about its values.
        let tables: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim() == "[[python]]")
            .map(|(i, _)| i + 1)
            .collect();
        let mut files = BTreeSet::new();
        let mut pins = Vec::new();
        for (i, p) in parsed.python.into_iter().enumerate() {
            let table = tables.get(i).copied().unwrap_or(1);
            // The line of `key` in this table (the table's own line if it is not found).
            let key_line = |key: &str| {
                text.lines()
                    .enumerate()
                    .skip(table)
                    .take_while(|(_, l)| !l.trim_start().starts_with('['))
                    .find(|(_, l)| {
                        l.trim_start()
                            .strip_prefix(key)
                            .is_some_and(|rest| rest.trim_start().starts_with('='))
                    })
                    .map_or(table, |(n, _)| n + 1)
            };
            let bad = |key: &str, reason: String| {
                PackageError::Lock(format!("{file}:{}: {reason}", key_line(key)))
            };
            if !is_valid_name(&p.name) {
                return Err(bad("name", format!("{:?} is not a project name", p.name)));
            }
            if pep440_rs::Version::from_str(&p.version).is_err() {
                return Err(bad(
                    "version",
                    format!("{:?} is not a PEP 440 version", p.version),
                ));
            }
            if p.file.is_empty()
                || p.file.contains(['/', '\\'])
                || p.file.starts_with('.')
                || p.file.chars().any(char::is_control)
            {
                return Err(bad("file", format!("{:?} is not a file name", p.file)));
            }
            if !is_digest(&p.sha256) {
                return Err(bad(
                    "sha256",
                    format!(
                        "sha256 {:?} of {} is not 64 lowercase hex digits",
                        p.sha256, p.file
                    ),
                ));
            }
            if !files.insert(p.file.clone()) {
                return Err(bad("file", format!("{} is locked twice", p.file)));
            }
            pins.push(Pin {
                name: normalize_name(&p.name),
                version: p.version,
                file: p.file,
                url: p.url,
                sha256: p.sha256,
            });
        }
        Ok(Lock::new(pins))
    }

    /// The lock's text: deterministic bytes (same pins, same text).
    pub fn to_toml(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let mut out = String::from(LOCK_HEADER);
        out.push_str(&format!("version = {LOCK_VERSION}\n"));
        let mut pins = self.python.clone();
        pins.sort_by(|a, b| (&a.name, &a.version, &a.file).cmp(&(&b.name, &b.version, &b.file)));
        for p in &pins {
            out.push_str("\n[[python]]\n");
            out.push_str(&format!("name = {}\n", q(&p.name)));
            out.push_str(&format!("version = {}\n", q(&p.version)));
            out.push_str(&format!("file = {}\n", q(&p.file)));
            out.push_str(&format!("sha256 = {}\n", q(&p.sha256)));
        }
        out
    }

    /// The pins of project `name` (any spelling): one per file (a wheel, or an sdist).
    pub fn get(&self, name: &str) -> Vec<&Pin> {
        let name = normalize_name(name);
        self.python.iter().filter(|p| p.name == name).collect()
    }
}

/// What a requirement line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequirementKind {
    /// A PEP 508 requirement with a name (`pytest==8.3.4`, `attrs[tests]>=23; python_version>"3.8"`,
    /// `pkg @ https://…/pkg.whl`).
    Named {
        /// Normalized (PEP 503).
        name: String,
    },
    /// A local path (`.`, `./pkg`, `file:///…`, `pkg-1.0-py3-none-any.whl`): a project
    /// directory, a wheel or an sdist.
    Path(String),
    /// A URL with no name (`https://…/pkg-1.0-py3-none-any.whl`, `git+https://…`).
    Url(String),
}

/// One requirement of a requirements file (or of the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementLine {
    /// The requirement without pip's options (PEP 508 text, a path or a URL), as written.
    pub text: String,
    pub kind: RequirementKind,
    /// `-e` / `--editable`.
    pub editable: bool,
    /// Hex sha256 digests from `--hash=sha256:…` (lowercase).
    pub hashes: Vec<String>,
    /// The version when the requirement is exactly `==V` (no wildcard) or `===V`.
    pub pinned_version: Option<String>,
    /// Where it was written: `requirements.txt:3` (the first line of a continued line).
    pub origin: String,
}

/// A parsed pip requirements file with the files it includes (`-r`); constraints files
/// (`-c`) are parsed the same way and kept apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    pub requirements: Vec<RequirementLine>,
    pub constraints: Vec<RequirementLine>,
    /// `--index-url`, `--extra-index-url`, `--no-index`, `--find-links`, `--trusted-host`
    /// lines (the last `--index-url` wins, as in pip).
    pub index: PipIndexOptions,
    /// `--require-hashes` appeared.
    pub require_hashes: bool,
    /// `--pre` appeared.
    pub pre: bool,
}

/// Options pip accepts in requirements files that change nothing here (their value, if
/// any, is skipped).
const IGNORED_WITH_VALUE: &[&str] = &["--only-binary", "--no-binary", "--use-feature"];
const IGNORED_FLAGS: &[&str] = &["--prefer-binary"];

impl Requirements {
    /// Parses the requirements file at guest path `path`; `read` reads a guest file (the
    /// file itself and every `-r` / `-c` include, resolved relative to the including file).
    pub fn parse_file(
        path: &str,
        read: &dyn Fn(&str) -> Result<String, PackageError>,
    ) -> Result<Requirements, PackageError> {
        let text = read(path)?;
        Self::parse_text(&text, path, read)
    }

    /// Parses `text` as if it were the file `path` (includes are read with `read`).
    pub fn parse_text(
        text: &str,
        path: &str,
        read: &dyn Fn(&str) -> Result<String, PackageError>,
    ) -> Result<Requirements, PackageError> {
        let mut out = Requirements::default();
        let mut stack = vec![path.to_owned()];
        parse_into(&mut out, text, path, read, false, &mut stack)?;
        Ok(out)
    }

    /// Parses one requirement as given on pip's command line (`pytest==8.3.4`, `.`, `./pkg`).
    pub fn parse_requirement(text: &str, origin: &str) -> Result<RequirementLine, PackageError> {
        parse_requirement(text, origin, false, Vec::new())
    }

    /// Every requirement is named, `==`-pinned and carries at least one `--hash`: the file
    /// is a lock (pip's hash-checking mode; no resolution needed).
    pub fn is_hash_locked(&self) -> bool {
        !self.requirements.is_empty()
            && self.requirements.iter().all(|r| {
                !r.editable
                    && matches!(r.kind, RequirementKind::Named { .. })
                    && r.pinned_version.is_some()
                    && !r.hashes.is_empty()
            })
    }
}

/// `dir/of/file` + `other` (a guest path; `other` absolute stays as it is).
fn relative_to(including: &str, other: &str) -> String {
    if other.starts_with('/') {
        return other.to_owned();
    }
    let dir = match including.rfind('/') {
        Some(0) => "/",
        Some(i) => &including[..i],
        None => "",
    };
    let mut parts: Vec<&str> = dir
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for part in other.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    if including.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// Logical lines: `(first physical line number, text)`, with `\` continuations joined and
/// comments removed (pip: `#` at the start or after whitespace).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let (start, mut acc) = current.take().unwrap_or((i + 1, String::new()));
        if let Some(body) = line.strip_suffix('\\') {
            acc.push_str(body);
            current = Some((start, acc));
            continue;
        }
        acc.push_str(line);
        out.push((start, acc));
    }
    if let Some(last) = current {
        out.push(last);
    }
    out.into_iter()
        .filter_map(|(n, line)| {
            let stripped = strip_comment(&line).trim().to_owned();
            (!stripped.is_empty()).then_some((n, stripped))
        })
        .collect()
}

fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// Splits an option line into words (quotes as in shlex, enough for requirements files).
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(x) => word.push(x),
                        None => return Err("unterminated quote".into()),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// `--name=value`, `--name value`, `-xvalue`, `-x value`: `(option, value)`.
fn take_option(
    words: &[String],
    i: &mut usize,
    long: &[&str],
    short: Option<&str>,
) -> Option<Result<String, String>> {
    let word = &words[*i];
    for l in long {
        if word == l {
            *i += 1;
            return Some(
                words
                    .get(*i)
                    .cloned()
                    .ok_or_else(|| format!("{l} needs a value")),
            );
        }
        if let Some(v) = word.strip_prefix(&format!("{l}=")) {
            return Some(Ok(v.to_owned()));
        }
    }
    if let Some(s) = short {
        if word == s {
            *i += 1;
            return Some(
                words
                    .get(*i)
                    .cloned()
                    .ok_or_else(|| format!("{s} needs a value")),
            );
        }
        if let Some(v) = word.strip_prefix(s) {
            return Some(Ok(v.trim_start_matches('=').to_owned()));
        }
    }
    None
}

fn parse_into(
    out: &mut Requirements,
    text: &str,
    path: &str,
    read: &dyn Fn(&str) -> Result<String, PackageError>,
    constraints: bool,
    stack: &mut Vec<String>,
) -> Result<(), PackageError> {
    for (number, line) in logical_lines(text) {
        let origin = format!("{path}:{number}");
        let bad = |reason: String| PackageError::BadRequirement {
            requirement: line.clone(),
            reason: format!("{origin}: {reason}"),
        };
        // The requirement is everything before the first word that starts with `-`.
        let (req_part, option_part) = if line.starts_with('-') {
            ("", line.as_str())
        } else {
            match line.find(" -").or_else(|| line.find("\t-")) {
                Some(at) => (line[..at].trim(), line[at..].trim()),
                None => (line.as_str(), ""),
            }
        };
        let words = split_words(option_part).map_err(&bad)?;
        let mut hashes = Vec::new();
        let mut editable: Option<String> = None;
        let mut i = 0;
        while i < words.len() {
            let w = words[i].clone();
            macro_rules! value {
                ($long:expr, $short:expr) => {
                    take_option(&words, &mut i, $long, $short)
                };
            }
            if let Some(v) = value!(&["--requirement"], Some("-r")) {
                let file = v.map_err(&bad)?;
                include(out, path, &file, read, constraints, stack, &bad)?;
            } else if let Some(v) = value!(&["--constraint"], Some("-c")) {
                let file = v.map_err(&bad)?;
                include(out, path, &file, read, true, stack, &bad)?;
            } else if let Some(v) = value!(&["--editable"], Some("-e")) {
                editable = Some(v.map_err(&bad)?);
            } else if let Some(v) = value!(&["--index-url"], Some("-i")) {
                out.index.index_url = Some(v.map_err(&bad)?);
            } else if let Some(v) = value!(&["--extra-index-url"], None) {
                out.index.extra_index_urls.push(v.map_err(&bad)?);
            } else if let Some(v) = value!(&["--find-links"], Some("-f")) {
                out.index.find_links.push(v.map_err(&bad)?);
            } else if let Some(v) = value!(&["--trusted-host"], None) {
                out.index.trusted_hosts.push(v.map_err(&bad)?);
            } else if let Some(v) = value!(&["--hash"], None) {
                let v = v.map_err(&bad)?;
                let (algorithm, digest) = v
                    .split_once(':')
                    .ok_or_else(|| bad(format!("--hash={v}: expected ALGORITHM:HEX")))?;
                match algorithm {
                    "sha256" => {
                        let digest = digest.to_ascii_lowercase();
                        if !is_digest(&digest) {
                            return Err(bad(format!("--hash={v}: not a sha256 (64 hex digits)")));
                        }
                        hashes.push(digest);
                    }
                    "sha384" | "sha512" => {} // pip accepts any listed hash; indexes publish sha256.
                    other => return Err(bad(format!("--hash: unknown algorithm {other}"))),
                }
            } else if w == "--no-index" {
                out.index.no_index = true;
            } else if w == "--pre" {
                out.pre = true;
            } else if w == "--require-hashes" {
                out.require_hashes = true;
            } else if IGNORED_FLAGS.contains(&w.as_str()) {
            } else if let Some(v) = value!(IGNORED_WITH_VALUE, None) {
                v.map_err(&bad)?;
            } else {
                return Err(bad(format!("unsupported option {w}")));
            }
            i += 1;
        }
        let text = match (&editable, req_part.is_empty()) {
            (Some(e), true) => e.clone(),
            (Some(_), false) => return Err(bad("-e takes one requirement".into())),
            (None, true) => {
                if !hashes.is_empty() {
                    return Err(bad("--hash needs a requirement on the same line".into()));
                }
                continue;
            }
            (None, false) => req_part.to_owned(),
        };
        if !hashes.is_empty() || words.iter().any(|w| w.starts_with("--hash")) {
            // A line with only sha384/sha512 hashes cannot be checked against the index.
            if hashes.is_empty() {
                return Err(bad(
                    "only --hash=sha256:… can be checked against the index".into()
                ));
            }
        }
        let requirement = parse_requirement(&text, &origin, editable.is_some(), hashes)?;
        if constraints {
            out.constraints.push(requirement);
        } else {
            out.requirements.push(requirement);
        }
    }
    Ok(())
}

fn include(
    out: &mut Requirements,
    path: &str,
    file: &str,
    read: &dyn Fn(&str) -> Result<String, PackageError>,
    constraints: bool,
    stack: &mut Vec<String>,
    bad: &dyn Fn(String) -> PackageError,
) -> Result<(), PackageError> {
    if file.contains("://") {
        return Err(bad(format!(
            "{file}: remote requirements files are not supported"
        )));
    }
    let target = relative_to(path, file);
    if stack.contains(&target) {
        return Err(bad(format!("{target} includes itself")));
    }
    if stack.len() >= MAX_INCLUDE_DEPTH {
        return Err(bad(format!(
            "requirements files nested deeper than {MAX_INCLUDE_DEPTH}"
        )));
    }
    let text = read(&target)?;
    stack.push(target.clone());
    let result = parse_into(out, &text, &target, read, constraints, stack);
    stack.pop();
    result
}

/// Whether `text` names a local path rather than a PEP 508 requirement (pip's heuristics:
/// a path separator, a leading `.`, or an archive file name).
fn looks_like_path(text: &str) -> bool {
    text.starts_with('.')
        || text.starts_with('/')
        || text.starts_with('~')
        || (text.contains('/') && !text.contains(" @ ") && !text.contains('@'))
        || [".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz"]
            .iter()
            .any(|e| text.ends_with(e) && !text.contains(['=', '<', '>', ' ', ';']))
}

fn parse_requirement(
    text: &str,
    origin: &str,
    editable: bool,
    hashes: Vec<String>,
) -> Result<RequirementLine, PackageError> {
    let text = text.trim();
    let bad = |reason: String| PackageError::BadRequirement {
        requirement: text.to_owned(),
        reason: format!("{origin}: {reason}"),
    };
    let plain = |kind| {
        Ok(RequirementLine {
            text: text.to_owned(),
            kind,
            editable,
            hashes: hashes.clone(),
            pinned_version: None,
            origin: origin.to_owned(),
        })
    };
    if text.is_empty() {
        return Err(bad("empty requirement".into()));
    }
    if text.starts_with("file:") {
        return plain(RequirementKind::Path(text.to_owned()));
    }
    let scheme_url = text.split_once("://").is_some_and(|(scheme, _)| {
        scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    });
    if scheme_url && !text.contains(" @ ") {
        return plain(RequirementKind::Url(text.to_owned()));
    }
    if looks_like_path(text) {
        return plain(RequirementKind::Path(text.to_owned()));
    }
    let parsed = pep508_rs::Requirement::<pep508_rs::VerbatimUrl>::from_str(text).map_err(|e| {
        let message = e.to_string();
        bad(message
            .lines()
            .next()
            .unwrap_or("invalid")
            .trim()
            .to_owned())
    })?;
    let pinned_version = match &parsed.version_or_url {
        Some(pep508_rs::VersionOrUrl::VersionSpecifier(specifiers)) if specifiers.len() == 1 => {
            let s = &specifiers[0];
            matches!(
                s.operator(),
                pep440_rs::Operator::Equal | pep440_rs::Operator::ExactEqual
            )
            .then(|| s.version().to_string())
        }
        _ => None,
    };
    Ok(RequirementLine {
        text: text.to_owned(),
        kind: RequirementKind::Named {
            name: normalize_name(parsed.name.as_ref()),
        },
        editable,
        hashes,
        pinned_version,
        origin: origin.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "b6a85871a79d2e3b22d2d1b94ac2824226a63c6b741c88f7ae975f18b6778374";
    const H2: &str = "2d91e135bf72d31a410b17c16da610a82cb55f6b0477d1a902134b24a455b8b3";

    fn no_includes(path: &str) -> Result<String, PackageError> {
        Err(PackageError::Io(format!("{path}: no such file")))
    }

    #[test]
    fn relative_includes() {
        assert_eq!(relative_to("/src/req/a.txt", "b.txt"), "/src/req/b.txt");
        assert_eq!(relative_to("/src/req/a.txt", "../b.txt"), "/src/b.txt");
        assert_eq!(relative_to("a.txt", "sub/b.txt"), "sub/b.txt");
        assert_eq!(relative_to("/a.txt", "/etc/x"), "/etc/x");
    }

    #[test]
    fn comments_continuations_hashes() {
        let text = format!(
            "# top comment\n\
             iniconfig==2.0.0 \\\n    --hash=sha256:{H1} \\\n    --hash=sha256:{H2}  # trailing\n\
             \n\
             Foo_Bar[extra] >= 1.0 ; python_version >= \"3.8\"\n\
             url#frag-is-not-a-comment==1.0\n"
        );
        let parsed = Requirements::parse_text(&text, "/src/requirements.txt", &no_includes);
        // `url#frag...` is not valid PEP 508: the error names the line.
        let err = parsed.unwrap_err().to_string();
        assert!(err.contains("/src/requirements.txt:7"), "{err}");

        let text = text.replace("url#frag-is-not-a-comment==1.0\n", "");
        let parsed = Requirements::parse_text(&text, "requirements.txt", &no_includes).unwrap();
        assert_eq!(parsed.requirements.len(), 2);
        let first = &parsed.requirements[0];
        assert_eq!(first.hashes, vec![H1.to_owned(), H2.to_owned()]);
        assert_eq!(first.pinned_version.as_deref(), Some("2.0.0"));
        assert_eq!(first.origin, "requirements.txt:2");
        let second = &parsed.requirements[1];
        assert_eq!(
            second.kind,
            RequirementKind::Named {
                name: "foo-bar".into()
            }
        );
        assert_eq!(second.pinned_version, None);
        assert!(
            !parsed.is_hash_locked(),
            "foo-bar is neither pinned nor hashed"
        );
    }

    #[test]
    fn lock_round_trip_is_deterministic() {
        let pin = |name: &str, version: &str, sha: &str| Pin {
            name: name.into(),
            version: version.into(),
            file: format!("{name}-{version}-py3-none-any.whl"),
            url: format!("https://files.example/{name}-{version}-py3-none-any.whl"),
            sha256: sha.into(),
        };
        let a = Lock::new(vec![
            pin("pytest", "8.3.4", H1),
            pin("iniconfig", "2.0.0", H2),
        ]);
        let b = Lock::new(vec![
            pin("iniconfig", "2.0.0", H2),
            pin("pytest", "8.3.4", H1),
        ]);
        assert_eq!(a.to_toml(), b.to_toml());
        let text = a.to_toml();
        assert!(text.starts_with("# This file is written by wasmbuild"));
        assert_eq!(Lock::parse(&text, LOCK_FILE).unwrap(), a);
        assert_eq!(a.get("IniConfig").len(), 1);

        let broken = text.replace(H1, "abc");
        let err = Lock::parse(&broken, LOCK_FILE).unwrap_err().to_string();
        // The message names the line of the bad value.
        let line = broken.lines().position(|l| l.contains("\"abc\"")).unwrap() + 1;
        assert!(err.starts_with(&format!("{LOCK_FILE}:{line}: ")), "{err}");
        let err = Lock::parse("version = 1\n[[python]]\nname = \"x\"\n", "w.lock")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("w.lock:"), "{err}");
        let err = Lock::parse("version = 2\n", "w.lock")
            .unwrap_err()
            .to_string();
        assert!(err.contains("w.lock:1: lock version 2"), "{err}");
    }
}

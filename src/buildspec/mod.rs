//! The buildspec: the YAML model of an AWS CodeBuild `buildspec.yml` (versions 0.1 and 0.2)
//! — `version`, `run-as`, `env`, `proxy`, `phases`, `artifacts`, `cache`, `reports`,
//! `batch` — parsed with serde_yaml and validated as it is read.
//!
//! This module owns the model and its validation, nothing else: it runs nothing and reads
//! no file but the buildspec. Every problem is a [`BuildspecError::Invalid`] naming the
//! file, the 1-based line and column, and the key or value at fault: unknown keys
//! anywhere, wrong types, a missing or unsupported `version`, a bad `on-failure` or its
//! regex, `runtime-versions` outside `install`, an unsupported `env.shell`, a lone string
//! where a list of commands is due, repeated keys, malformed YAML. Where a list of paths is
//! due (`artifacts.files`, `exclude-paths`, `reports.*.files`, `cache.paths`), one string
//! is a list of one, as CodeBuild reads it; report `file-format`s take any case.
//!
//! Scalars are kept as written: `python: 3.10` requests `"3.10"`, `NUMBER: 42` is `"42"`,
//! `FLAG: yes` is `"yes"`. Boolean settings take `true`/`false` and YAML 1.1's
//! `yes`/`no`/`on`/`off`.
//!
//! Files: `de` (leaf deserializers; checks run inside visitors so serde_yaml attaches the
//! location), `phase`, `on_failure`, `artifacts` (artifacts, cache, reports), `batch`,
//! `error`.

mod artifacts;
mod batch;
mod de;
mod error;
mod limits;
mod on_failure;
mod phase;

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::Deserializer;

pub use artifacts::{Artifacts, Cache, CacheAction, REPORT_FORMATS, Report};
pub use batch::{
    Batch, BatchEnv, BatchTask, BuildFanout, BuildMatrix, MatrixDynamic, MatrixDynamicEnv,
    MatrixStatic,
};
pub use error::BuildspecError;
pub use limits::{MAX_BUILDSPEC_BYTES, MAX_BUILDSPEC_DEPTH};
pub use on_failure::{DEFAULT_RETRY_ATTEMPTS, MAX_RETRY_ATTEMPTS, OnFailure};
pub use phase::{Phase, Phases};

use de::{flag, opt_text, or_default, pairs, scalar, text_list, text_pairs};

/// A parsed, validated buildspec.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Buildspec {
    pub version: Version,
    #[serde(default, deserialize_with = "opt_text")]
    pub run_as: Option<String>,
    #[serde(default, deserialize_with = "or_default")]
    pub env: Env,
    #[serde(default)]
    pub proxy: Option<Proxy>,
    #[serde(deserialize_with = "or_default")]
    pub phases: Phases,
    #[serde(default)]
    pub artifacts: Option<Artifacts>,
    #[serde(default)]
    pub cache: Option<Cache>,
    /// Report group name or ARN → report, in file order.
    #[serde(default, deserialize_with = "pairs")]
    pub reports: Vec<(String, Report)>,
    #[serde(default, deserialize_with = "batch::optional")]
    pub batch: Option<Batch>,
}

/// The buildspec `version`. In 0.1 every command runs in a shell of its own; in 0.2 one
/// shell session carries the whole build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V0_1,
    V0_2,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Version::V0_1 => "0.1",
            Version::V0_2 => "0.2",
        })
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Written as a float (`0.2`) or a string (`"0.2"`); `0.20` is 0.2 too.
        scalar(d, "0.1 or 0.2", |s| match s.trim().parse::<f64>() {
            Ok(0.1) => Ok(Version::V0_1),
            Ok(0.2) => Ok(Version::V0_2),
            _ => Err(format!(
                "unsupported buildspec version `{s}`: expected 0.1 or 0.2"
            )),
        })
    }
}

/// `env`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Env {
    /// `bash` or `/bin/sh`.
    #[serde(default, deserialize_with = "shell")]
    pub shell: Option<String>,
    /// Name → value, in file order; values as written.
    #[serde(default, deserialize_with = "text_pairs")]
    pub variables: Vec<(String, String)>,
    /// Name → Parameter Store parameter name.
    #[serde(default, deserialize_with = "text_pairs")]
    pub parameter_store: Vec<(String, String)>,
    /// Name → `secret-id:json-key:version-stage:version-id` reference.
    #[serde(default, deserialize_with = "text_pairs")]
    pub secrets_manager: Vec<(String, String)>,
    #[serde(default, deserialize_with = "text_list")]
    pub exported_variables: Vec<String>,
    #[serde(default, deserialize_with = "flag")]
    pub git_credential_helper: bool,
}

/// Longest runtime name or version (`runtime-versions`, `--image NAME[:VERSION]`).
pub const MAX_RUNTIME_NAME_LEN: usize = 64;

/// Checks a runtime (bundle) name: it becomes part of store references, so only
/// `[A-Za-z0-9][A-Za-z0-9._-]*`, at most [`MAX_RUNTIME_NAME_LEN`] characters.
pub fn check_runtime_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= MAX_RUNTIME_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid runtime name {name:?}: expected letters, digits, '.', '_' or '-' \
             (starting with a letter or digit, at most {MAX_RUNTIME_NAME_LEN})"
        ))
    }
}

/// The variable a `runtime-versions` value names, when it is one: `$NAME` or `${NAME}`
/// (CodeBuild expands them from the build's environment when the INSTALL phase starts).
pub fn runtime_version_variable(version: &str) -> Option<&str> {
    let name = version
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .or_else(|| version.strip_prefix('$'))?;
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

/// Checks a runtime version request (`3.12`, `3.x`, `latest`, `1.0.0-rc1+b2`): only
/// `[A-Za-z0-9*][A-Za-z0-9._+*-]*`, at most [`MAX_RUNTIME_NAME_LEN`] characters.
pub fn check_runtime_version(version: &str) -> Result<(), String> {
    let ok = version.len() <= MAX_RUNTIME_NAME_LEN
        && version.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '*')
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '*'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid runtime version {version:?}: expected letters, digits, '.', '_', '-', \
             '+' or '*' (starting with a letter, digit or '*', at most {MAX_RUNTIME_NAME_LEN})"
        ))
    }
}

/// The shells `env.shell` may name (the Linux ones).
pub const SHELLS: &[&str] = &["bash", "/bin/sh"];

fn shell<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    scalar(d, "bash or /bin/sh", |s| {
        if SHELLS.contains(&s) {
            Ok(Some(s.to_owned()))
        } else {
            Err(format!("unsupported shell `{s}`: expected bash or /bin/sh"))
        }
    })
}

/// `proxy` (for builds behind an explicit proxy server).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Proxy {
    #[serde(default, deserialize_with = "flag")]
    pub upload_artifacts: bool,
    #[serde(default, deserialize_with = "flag")]
    pub logs: bool,
}

impl Buildspec {
    /// Reads and parses a buildspec file; the error names the file as `path` displays.
    /// At most [`MAX_BUILDSPEC_BYTES`] are read; text that is not UTF-8 is refused at the
    /// line and column of its first bad byte.
    pub fn from_file(path: &Path) -> Result<Buildspec, BuildspecError> {
        use std::io::Read;
        let file = path.display().to_string();
        let io = |source| BuildspecError::Io {
            file: file.clone(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| {
                f.take(MAX_BUILDSPEC_BYTES as u64 + 1)
                    .read_to_end(&mut bytes)
            })
            .map_err(io)?;
        let located =
            |e: limits::Exceeded| BuildspecError::invalid(&file, e.line, e.column, e.message);
        if bytes.len() > MAX_BUILDSPEC_BYTES {
            let len = std::fs::metadata(path).map_or(bytes.len(), |m| {
                usize::try_from(m.len()).unwrap_or(usize::MAX)
            });
            limits::size(len).map_err(located)?;
        }
        let text = limits::utf8(&bytes).map_err(located)?;
        Buildspec::parse(text, &file)
    }

    /// Parses buildspec text; `file` names it in errors. Text over [`MAX_BUILDSPEC_BYTES`]
    /// or nested deeper than [`MAX_BUILDSPEC_DEPTH`] is refused before serde_yaml reads it.
    pub fn parse(text: &str, file: &str) -> Result<Buildspec, BuildspecError> {
        // A UTF-8 byte-order mark (Windows editors write one) is not part of the YAML:
        // libyaml would read the text after it as a second document. Editors do not show
        // it, so columns are counted without it.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let located =
            |e: limits::Exceeded| BuildspecError::invalid(file, e.line, e.column, e.message);
        limits::size(text.len()).map_err(located)?;
        limits::depth(text).map_err(located)?;
        match serde_yaml::from_str::<Option<Buildspec>>(text) {
            Ok(Some(buildspec)) => Ok(buildspec),
            Ok(None) => Err(BuildspecError::invalid(
                file,
                1,
                1,
                "empty buildspec: expected a mapping with `version` and `phases`",
            )),
            Err(e) => Err(BuildspecError::from_yaml(file, &e)),
        }
    }

    /// The phases in lifecycle order with their names.
    pub fn phases_in_order(&self) -> [(&'static str, Option<&Phase>); 4] {
        let p = &self.phases;
        [
            ("INSTALL", p.install.as_ref()),
            ("PRE_BUILD", p.pre_build.as_ref()),
            ("BUILD", p.build.as_ref()),
            ("POST_BUILD", p.post_build.as_ref()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(text: &str) -> (usize, usize, String) {
        match Buildspec::parse(text, "b.yml").unwrap_err() {
            BuildspecError::Invalid {
                line,
                column,
                message,
                ..
            } => (line, column, message),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn versions_as_float_or_string() {
        for (text, version) in [
            ("0.2", Version::V0_2),
            ("\"0.2\"", Version::V0_2),
            ("0.1", Version::V0_1),
            ("'0.1'", Version::V0_1),
        ] {
            let b = Buildspec::parse(&format!("version: {text}\nphases: {{}}\n"), "b").unwrap();
            assert_eq!(b.version, version, "{text}");
        }
        let (line, column, message) = invalid("version: 0.3\nphases: {}\n");
        assert_eq!((line, column), (1, 10));
        assert!(
            message.contains("unsupported buildspec version `0.3`"),
            "{message}"
        );
    }

    #[test]
    fn empty_and_comment_only_files_are_refused_at_1_1() {
        for text in ["", "\n\n", "# nothing\n", "~\n"] {
            let (line, column, message) = invalid(text);
            assert_eq!((line, column), (1, 1), "{text:?}");
            assert!(message.contains("empty buildspec"), "{message}");
        }
    }

    #[test]
    fn phases_in_order_names_each_phase() {
        let b = Buildspec::parse(
            "version: 0.2\nphases:\n  post_build:\n    commands: [b]\n  install:\n",
            "b",
        )
        .unwrap();
        let order = b.phases_in_order();
        let names: Vec<&str> = order.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"]);
        assert_eq!(order[0].1, Some(&Phase::default()));
        assert!(order[1].1.is_none() && order[2].1.is_none());
        assert_eq!(order[3].1.unwrap().commands, ["b"]);
    }

    #[test]
    fn a_scalar_document_is_not_a_buildspec() {
        let (line, column, message) = invalid("hello\n");
        assert_eq!((line, column), (1, 1));
        assert!(message.contains("invalid type"), "{message}");
    }
}

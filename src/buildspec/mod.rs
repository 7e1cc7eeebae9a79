//! The buildspec: the YAML model of an AWS CodeBuild `buildspec.yml` (versions 0.1 and 0.2)
//! — `version`, `run-as`, `env`, `proxy`, `phases`, `artifacts`, `cache`, `reports`,
//! `batch` — parsed with serde_yaml and validated as it is read.
//!
//! This module owns the model and its validation, nothing else: it runs nothing and reads
//! no file but the buildspec. It accepts what CodeBuild accepts. Every problem is a
//! [`BuildspecError::Invalid`] naming the file, the 1-based line and column, and the key or
//! value at fault: wrong types, a missing or unsupported `version`, a bad `on-failure` or
//! its regex, `runtime-versions` outside `install`, an unsupported `env.shell`, a lone
//! string where a list of commands is due, repeated keys, malformed YAML. What CodeBuild
//! ignores is a [`Warning`] at its line and column (the build goes on; `--strict` refuses
//! it): unknown keys, with the closest known one (`discard_paths` → `discard-paths`), other
//! services' keys (`eb_codebuild_settings`), a variable repeated in `env.variables` (the
//! last value wins).
//!
//! Leniencies, as CodeBuild reads them: where a list of paths is due
//! (`artifacts.files`, `exclude-paths`, `reports.*.files`, `cache.paths`), one string is a
//! list of one; report `file-format`s take any case; null or empty `commands` items are
//! left out; `runtime-versions` values may be `$VARIABLES` (expanded when INSTALL starts);
//! a batch buildspec may have `batch` and no `phases`; a byte-order mark is skipped.
//!
//! Scalars are kept as written: `python: 3.10` requests `"3.10"` (not YAML's float 3.1),
//! `NUMBER: 42` is `"42"`, `FLAG: yes` is `"yes"`. Boolean settings take `true`/`false`
//! and YAML 1.1's `yes`/`no`/`on`/`off`. CRLF line ends are read as LF; a tab where YAML
//! wants indentation is an error at its line and column (YAML forbids tabs there).
//!
//! Files: `outline` (libyaml's events read before serde: depth, unknown keys, command
//! lines), `de` (leaf deserializers; checks run inside visitors so serde_yaml attaches the
//! location), `phase`, `on_failure`, `artifacts` (artifacts, cache, reports), `batch`,
//! `limits`, `error`.

mod artifacts;
mod batch;
mod de;
mod error;
mod limits;
mod on_failure;
mod outline;
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
pub use error::{BuildspecError, Warning};
pub use limits::{MAX_BUILDSPEC_BYTES, MAX_BUILDSPEC_DEPTH};
pub use on_failure::{DEFAULT_RETRY_ATTEMPTS, MAX_RETRY_ATTEMPTS, OnFailure};
pub use phase::{Phase, Phases};

use de::{flag, opt_text, or_default, pairs, scalar, text_list, text_pairs};

/// A parsed, validated buildspec.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Buildspec {
    pub version: Version,
    #[serde(default, deserialize_with = "opt_text")]
    pub run_as: Option<String>,
    #[serde(default, deserialize_with = "or_default")]
    pub env: Env,
    #[serde(default)]
    pub proxy: Option<Proxy>,
    /// Absent in a batch-only buildspec (one with `batch` and no `phases`).
    #[serde(default, deserialize_with = "present")]
    pub phases: Option<Phases>,
    #[serde(default)]
    pub artifacts: Option<Artifacts>,
    #[serde(default)]
    pub cache: Option<Cache>,
    /// Report group name or ARN → report, in file order.
    #[serde(default, deserialize_with = "pairs")]
    pub reports: Vec<(String, Report)>,
    #[serde(default, deserialize_with = "batch::optional")]
    pub batch: Option<Batch>,
    /// What CodeBuild ignores and wasmbuild tells about: unknown keys, repeated variables.
    #[serde(skip)]
    pub warnings: Vec<Warning>,
}

/// The recorded lines, then 1 for any command whose line is not known.
fn line_or_one(lines: &[usize]) -> impl Iterator<Item = usize> + '_ {
    lines.iter().copied().chain(std::iter::repeat(1))
}

/// A serde_yaml error located in `text`, explained where YAML's own words do not say
/// enough: a tab where indentation is due.
fn yaml_error(text: &str, file: &str, error: &serde_yaml::Error) -> BuildspecError {
    let mut converted = BuildspecError::from_yaml(file, error);
    if let BuildspecError::Invalid {
        line,
        column,
        message,
        ..
    } = &mut converted
    {
        let at = text
            .lines()
            .nth(line.saturating_sub(1))
            .and_then(|l| l.chars().nth(column.saturating_sub(1)));
        if at == Some('\t') {
            message.push_str(" (a tab: YAML indents with spaces only)");
        }
        // `- echo "Target: $T"` unquoted: YAML reads a key and a value. CodeBuild refuses it
        // too ("found subkeys instead"); say why.
        if message.contains(".commands[") && message.contains("invalid type: map") {
            message.push_str(
                " (a `: ` in an unquoted command starts a YAML key: quote the whole command)",
            );
        }
    }
    converted
}

/// A mapping that is there, `null` or empty being the type's default.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    or_default(d).map(Some)
}

/// Everything wrong with a buildspec, as [`Buildspec::diagnose`] finds it.
#[derive(Debug, Default)]
pub struct Diagnosis {
    /// The buildspec, when it has no error.
    pub buildspec: Option<Buildspec>,
    /// Errors in file order, at most one per top-level entry.
    pub errors: Vec<BuildspecError>,
    pub warnings: Vec<Warning>,
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
#[serde(rename_all = "kebab-case")]
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
#[serde(rename_all = "kebab-case")]
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
        let text = Self::read_text(path)?;
        Buildspec::parse(&text, &path.display().to_string())
    }

    /// [`Buildspec::diagnose`] of a file.
    pub fn diagnose_file(path: &Path) -> Diagnosis {
        match Self::read_text(path) {
            Ok(text) => Buildspec::diagnose(&text, &path.display().to_string()),
            Err(error) => Diagnosis {
                errors: vec![error],
                ..Diagnosis::default()
            },
        }
    }

    fn read_text(path: &Path) -> Result<String, BuildspecError> {
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
            |e: limits::Located| BuildspecError::invalid(&file, e.line, e.column, e.message);
        if bytes.len() > MAX_BUILDSPEC_BYTES {
            let len = std::fs::metadata(path).map_or(bytes.len(), |m| {
                usize::try_from(m.len()).unwrap_or(usize::MAX)
            });
            limits::size(len).map_err(located)?;
        }
        limits::utf8(&bytes).map_err(located)?;
        String::from_utf8(bytes)
            .map_err(|e| BuildspecError::invalid(&file, 1, 1, format!("invalid UTF-8: {e}")))
    }

    /// Parses buildspec text; `file` names it in errors. Text over [`MAX_BUILDSPEC_BYTES`]
    /// or nested deeper than [`MAX_BUILDSPEC_DEPTH`] is refused before serde_yaml reads it.
    /// Keys CodeBuild ignores are ignored and listed in [`Buildspec::warnings`].
    pub fn parse(text: &str, file: &str) -> Result<Buildspec, BuildspecError> {
        let (text, outline) = Self::outline(text, file)?;
        Self::read(text, file, &outline)
    }

    /// `text` with every top-level entry but the last of each key blanked, as CodeBuild
    /// reads a repeated top-level key; the warnings say where.
    fn last_of_repeated<'t>(
        text: &'t str,
        outline: &outline::Outline,
    ) -> (std::borrow::Cow<'t, str>, Vec<limits::Located>) {
        let later = |entry: &outline::Entry| {
            outline
                .entries
                .iter()
                .find(|e| e.key == entry.key && e.start > entry.start)
        };
        let mut warnings = Vec::new();
        for entry in outline.entries.iter().filter(|e| e.end > e.start) {
            if let Some(later) = later(entry) {
                warnings.push(limits::Located {
                    line: later.line,
                    column: 1,
                    message: format!(
                        "`{}` is repeated at the top level (first at line {}): the last one is \
                         used, as CodeBuild reads it",
                        entry.key, entry.line
                    ),
                });
            }
        }
        (
            outline.blank_entries(text, |e| later(e).is_none()),
            warnings,
        )
    }

    /// Like [`Buildspec::parse`], but finds every problem: all the warnings, and when the
    /// buildspec has errors, the first error of each top-level entry (each is read alone
    /// with `version`, the rest of the file blanked, so lines and columns stay true).
    pub fn diagnose(text: &str, file: &str) -> Diagnosis {
        let (text, outline) = match Self::outline(text, file) {
            Ok(found) => found,
            Err(error) => {
                return Diagnosis {
                    errors: vec![error],
                    ..Diagnosis::default()
                };
            }
        };
        let first = match Self::read(text, file, &outline) {
            Ok(buildspec) => {
                return Diagnosis {
                    warnings: buildspec.warnings.clone(),
                    buildspec: Some(buildspec),
                    errors: Vec::new(),
                };
            }
            Err(error) => error,
        };
        let (_, repeated) = Self::last_of_repeated(text, &outline);
        let warnings = Self::warnings_of(&outline, &repeated, file);
        let mut errors: Vec<BuildspecError> = Vec::new();
        let version = outline.entries.iter().find(|e| e.key == "version");
        for entry in &outline.entries {
            if entry.end == entry.start {
                break; // not a block mapping: the first error is all there is
            }
            let alone = outline.blank_entries(text, |other| {
                other.start == entry.start || version.is_some_and(|v| v.start == other.start)
            });
            let result = serde_yaml::from_str::<Option<Buildspec>>(&alone);
            if let Err(e) = result {
                let error = yaml_error(text, file, &e);
                if !errors
                    .iter()
                    .any(|seen| seen.to_string() == error.to_string())
                {
                    errors.push(error);
                }
            }
        }
        if errors.is_empty() {
            errors.push(first);
        }
        errors.sort_by_key(|e| e.location());
        Diagnosis {
            buildspec: None,
            errors,
            warnings,
        }
    }

    /// The text without a byte-order mark, within the limits, and its outline.
    fn outline<'t>(
        text: &'t str,
        file: &str,
    ) -> Result<(&'t str, outline::Outline), BuildspecError> {
        // A UTF-8 byte-order mark (Windows editors write one) is not part of the YAML:
        // libyaml would read the text after it as a second document. Editors do not show
        // it, so columns are counted without it.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let located =
            |e: limits::Located| BuildspecError::invalid(file, e.line, e.column, e.message);
        limits::size(text.len()).map_err(located)?;
        let outline = outline::outline(text).map_err(located)?;
        Ok((text, outline))
    }

    /// The warnings of the outline and of repeated top-level keys, in file order.
    fn warnings_of(
        outline: &outline::Outline,
        repeated: &[limits::Located],
        file: &str,
    ) -> Vec<Warning> {
        let mut warnings: Vec<Warning> = outline
            .warnings
            .iter()
            .chain(repeated)
            .map(|w| Warning {
                file: file.to_owned(),
                line: w.line,
                column: w.column,
                message: w.message.clone(),
            })
            .collect();
        warnings.sort_by_key(|w| (w.line, w.column));
        warnings
    }

    /// Reads the model; the outline adds what serde_yaml cannot see.
    fn read(
        text: &str,
        file: &str,
        outline: &outline::Outline,
    ) -> Result<Buildspec, BuildspecError> {
        let (text, repeated) = Self::last_of_repeated(text, outline);
        let text = text.as_ref();
        let mut buildspec = match serde_yaml::from_str::<Option<Buildspec>>(text) {
            Ok(Some(buildspec)) => buildspec,
            Ok(None) => {
                return Err(BuildspecError::invalid(
                    file,
                    1,
                    1,
                    "empty buildspec: expected a mapping with `version` and `phases`",
                ));
            }
            Err(e) => return Err(yaml_error(text, file, &e)),
        };
        if buildspec.phases.is_none() && buildspec.batch.is_none() {
            return Err(BuildspecError::invalid(
                file,
                1,
                1,
                "missing field `phases` (only a batch buildspec, with `batch`, may leave it out)",
            ));
        }
        if let Some(phases) = &mut buildspec.phases {
            for (name, phase) in [
                ("install", &mut phases.install),
                ("pre_build", &mut phases.pre_build),
                ("build", &mut phases.build),
                ("post_build", &mut phases.post_build),
            ] {
                if let Some(phase) = phase {
                    phase.command_lines =
                        outline.lines(&format!("phases.{name}.commands"), phase.commands.len());
                    phase.finally_lines =
                        outline.lines(&format!("phases.{name}.finally"), phase.finally.len());
                }
            }
        }
        buildspec.warnings = Self::warnings_of(outline, &repeated, file);
        Ok(buildspec)
    }

    /// Every command of every phase (its `commands`, then its `finally`), in lifecycle
    /// order, with the buildspec line it starts on (1 when not known).
    pub fn commands(&self) -> impl Iterator<Item = (&str, usize)> {
        self.phases_in_order()
            .into_iter()
            .flat_map(|(_, phase)| phase)
            .flat_map(|phase| {
                let commands = phase.commands.iter().zip(line_or_one(&phase.command_lines));
                let finally = phase.finally.iter().zip(line_or_one(&phase.finally_lines));
                commands.chain(finally)
            })
            .map(|(command, line)| (command.as_str(), line))
    }

    /// Whether this buildspec only describes a batch (`batch` and no `phases`).
    pub fn is_batch_only(&self) -> bool {
        self.phases.is_none() && self.batch.is_some()
    }

    /// The phases in lifecycle order with their names.
    pub fn phases_in_order(&self) -> [(&'static str, Option<&Phase>); 4] {
        let p = self.phases.as_ref();
        [
            ("INSTALL", p.and_then(|p| p.install.as_ref())),
            ("PRE_BUILD", p.and_then(|p| p.pre_build.as_ref())),
            ("BUILD", p.and_then(|p| p.build.as_ref())),
            ("POST_BUILD", p.and_then(|p| p.post_build.as_ref())),
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

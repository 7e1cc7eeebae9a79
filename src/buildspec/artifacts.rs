//! `artifacts` (with `secondary-artifacts`), `cache` and `reports`: what a build keeps.

use serde::Deserialize;
use serde::de::Deserializer;

use super::de::{flag, opt_text, pairs, scalar, text_list, text_or_list};

/// An artifact set. The top-level one may hold `secondary-artifacts`; those may not nest.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Artifacts {
    /// Globs, relative to `base-directory`. May be empty in the primary set when only
    /// secondary sets are wanted; each secondary set must name its files.
    #[serde(default, deserialize_with = "text_or_list")]
    pub files: Vec<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    pub discard_paths: bool,
    #[serde(default, deserialize_with = "opt_text")]
    pub base_directory: Option<String>,
    #[serde(default, deserialize_with = "text_or_list")]
    pub exclude_paths: Vec<String>,
    #[serde(default, deserialize_with = "flag")]
    pub enable_symlinks: bool,
    #[serde(default, deserialize_with = "opt_text")]
    pub s3_prefix: Option<String>,
    /// `secondary-artifacts`: artifact identifier → set, in file order.
    #[serde(
        default,
        rename = "secondary-artifacts",
        deserialize_with = "secondary"
    )]
    pub secondary: Vec<(String, Artifacts)>,
}

/// A secondary artifact set: the same keys but `secondary-artifacts`, and `files` required.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct SecondaryArtifacts {
    #[serde(deserialize_with = "text_or_list")]
    files: Vec<String>,
    #[serde(default, deserialize_with = "opt_text")]
    name: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    discard_paths: bool,
    #[serde(default, deserialize_with = "opt_text")]
    base_directory: Option<String>,
    #[serde(default, deserialize_with = "text_or_list")]
    exclude_paths: Vec<String>,
    #[serde(default, deserialize_with = "flag")]
    enable_symlinks: bool,
    #[serde(default, deserialize_with = "opt_text")]
    s3_prefix: Option<String>,
}

fn secondary<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, Artifacts)>, D::Error> {
    let sets: Vec<(String, SecondaryArtifacts)> = pairs(d)?;
    Ok(sets
        .into_iter()
        .map(|(id, s)| {
            let set = Artifacts {
                files: s.files,
                name: s.name,
                discard_paths: s.discard_paths,
                base_directory: s.base_directory,
                exclude_paths: s.exclude_paths,
                enable_symlinks: s.enable_symlinks,
                s3_prefix: s.s3_prefix,
                secondary: Vec::new(),
            };
            (id, set)
        })
        .collect())
}

/// `cache`: what to restore before the build and save after it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cache {
    #[serde(default, deserialize_with = "opt_text")]
    pub key: Option<String>,
    #[serde(default, deserialize_with = "text_list")]
    pub fallback_keys: Vec<String>,
    #[serde(default)]
    pub action: CacheAction,
    #[serde(default, deserialize_with = "text_or_list")]
    pub paths: Vec<String>,
}

/// `cache.action`: `restore` or `save`; absent means both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheAction {
    /// Restore before the build and save after it (no `action` given).
    #[default]
    Both,
    /// `restore`: restore only.
    Restore,
    /// `save`: save only.
    Save,
}

impl<'de> Deserialize<'de> for CacheAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "restore or save", |s| match s {
            "restore" => Ok(CacheAction::Restore),
            "save" => Ok(CacheAction::Save),
            _ => Err(format!(
                "invalid cache action `{s}`: expected restore or save"
            )),
        })
    }
}

/// The test and coverage report formats CodeBuild reads.
pub const REPORT_FORMATS: &[&str] = &[
    "JUNITXML",
    "CUCUMBERJSON",
    "TESTNGXML",
    "VISUALSTUDIOTRX",
    "NUNITXML",
    "NUNIT3XML",
    "CLOVERXML",
    "COBERTURAXML",
    "JACOCOXML",
    "SIMPLECOV",
];

/// One report group of `reports` (the group's name or ARN is its key).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    #[serde(deserialize_with = "text_or_list")]
    pub files: Vec<String>,
    #[serde(default, deserialize_with = "opt_text")]
    pub base_directory: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    pub discard_paths: bool,
    /// Uppercased; one of [`REPORT_FORMATS`] in any case (`JunitXml`, as CodeBuild takes it),
    /// or another name, which the outline warns about and the report cannot read.
    /// `JUNITXML` when absent.
    #[serde(default = "default_format", deserialize_with = "file_format")]
    pub file_format: String,
}

fn default_format() -> String {
    "JUNITXML".to_owned()
}

fn file_format<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    scalar(d, "a report file format", |s| {
        // An unknown format is the outline's warning, and the report's INCOMPLETE.
        Ok(s.to_ascii_uppercase())
    })
}

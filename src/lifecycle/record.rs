//! The build record, `build.json`: shaped like an entry of CodeBuild's `BatchGetBuilds`
//! output (camelCase keys, phases with status, times, duration and contexts), plus the
//! sha256 of every artifact file.
//!
//! Secret values never reach the record's text: [`BuildRecord::to_json`] masks every
//! string of it (`***`, as CodeBuild shows them); `build.json`, the store's copy and
//! `--json` are all written from it.

use std::sync::Arc;

use serde::Serialize;

use super::artifacts::ArtifactSet;
use super::cache::CacheRecord;
use super::log::SecretMask;

/// How a build or phase ended, in CodeBuild's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Succeeded,
    Failed,
    Fault,
    TimedOut,
    Stopped,
    InProgress,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::Fault => "FAULT",
            Status::TimedOut => "TIMED_OUT",
            Status::Stopped => "STOPPED",
            Status::InProgress => "IN_PROGRESS",
        }
    }

    /// The exit status of `wasmbuild run` for a build that ended so (DESIGN.md).
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Succeeded => 0,
            Status::Failed | Status::InProgress => 1,
            Status::Fault => 3,
            Status::TimedOut => 4,
            Status::Stopped => 5,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseContext {
    pub status_code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseRecord {
    pub phase_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_status: Option<Status>,
    pub start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_in_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contexts: Vec<PhaseContext>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentVariable {
    pub name: String,
    /// The literal value, or for a secret the parameter or secret it comes from.
    pub value: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub image: String,
    /// `name version` of each bundle the build ran with.
    pub runtimes: Vec<String>,
    pub environment_variables: Vec<EnvironmentVariable>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Logs {
    pub location: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildRecord {
    pub id: String,
    pub arn: String,
    pub build_number: u64,
    pub project_name: String,
    pub start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    pub current_phase: String,
    pub build_status: Status,
    pub build_complete: bool,
    pub initiator: String,
    pub timeout_in_minutes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_source_version: Option<String>,
    pub source: String,
    pub buildspec: String,
    pub environment: Environment,
    pub phases: Vec<PhaseRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<ArtifactSet>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secondary_artifacts: Vec<ArtifactSet>,
    pub exported_environment_variables: Vec<NameValue>,
    pub logs: Logs,
    /// What the buildspec cache did (restored from / saved under which key, how much).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheRecord>,
    /// Where the build is kept in the store (its record and artifact trees).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreRecord>,
    /// The build's reports (CodeBuild's `Report` summaries), one per report group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<crate::reports::Report>,
    /// The Python distributions the build's pip commands installed or downloaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonRecord>,
    /// The build's secrets, masked by [`BuildRecord::to_json`]; never serialized.
    #[serde(skip)]
    pub secret_mask: Arc<SecretMask>,
}

impl BuildRecord {
    /// The record as JSON with every secret value masked: what `build.json`, the store and
    /// `--json` hold. (Serializing the record directly does not mask.)
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        self.secret_mask.mask_json(&mut value);
        value
    }

    /// [`BuildRecord::to_json`], pretty-printed.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.to_json()).unwrap_or_default()
    }
}

/// What the build's pip commands did: every distribution file, pinned by hash (the
/// content of a `wasmbuild.lock`), and why a pip command failed, if one did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PythonRecord {
    pub packages: Vec<crate::python::Pin>,
    /// The lock the build followed (`wasmbuild.lock`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    pub offline: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// The store references of a build.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreRecord {
    /// The store (`/path` or `s3://bucket/prefix`).
    pub location: String,
    /// The reference of this record (`builds/<project>/<number>`).
    pub record: String,
    /// Artifact set identifier → the reference of its tree
    /// (`artifacts/<project>/<number>/<identifier>`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<NameValue>,
    /// Report group → the reference of its whole report (`reports/<group>/<number>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<NameValue>,
    /// The reference of the whole log (`logs/<project>/<number>`), once the build ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// RFC 3339 in UTC with microseconds, as the record shows times.
pub fn record_time(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

//! The bundle manifest (`bundle.toml`): a runtime bundle's name, version, the commands it
//! provides with the module behind each, the environment its programs need, and the sha256
//! and size of every file it carries. The manifest is itself a blob in the store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// Command name → how to run it.
    pub commands: BTreeMap<String, CommandSpec>,
    /// Variables set for this bundle's programs unless the caller sets them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Directories appended (with `:`) to a variable the caller may also set.
    #[serde(
        default,
        rename = "path-env",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub path_env: BTreeMap<String, String>,
    /// Every file of the bundle, sorted by path.
    pub files: Vec<BundleFile>,
    /// For a bundle built by a script: the digest of what the build was made of
    /// (`runtime::script::identity`), so a changed script or input makes it out of date.
    #[serde(
        default,
        rename = "built-from",
        skip_serializing_if = "Option::is_none"
    )]
    pub built_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// Path of the module inside the bundle, e.g. `bin/toolbox.wasm`.
    pub module: String,
    /// A pre-initialised copy of the module, for the runs it can serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotSpec>,
}

/// A snapshot of a command's module (`runtime::snapshot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSpec {
    /// Path of the snapshot inside the bundle.
    pub module: String,
    /// sha256 of the module it was made from: a snapshot of another module is never run.
    pub from: String,
    /// The rules for which runs may start from it.
    pub kind: super::recipe::SnapshotKind,
    /// The pages of its memory a run that does nothing of its own writes, copied in
    /// before each run starts (`sandbox::PageRuns`); absent when the recipe asks for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefault: Option<crate::sandbox::PageRuns>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

impl BundleManifest {
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a bundle manifest always serialises")
    }

    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    pub fn file(&self, path: &str) -> Option<&BundleFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Total size of the bundle's files.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Checks that every command's module is one of the bundle's files and that file paths
    /// stay inside the bundle.
    pub fn validate(&self) -> Result<(), String> {
        for file in &self.files {
            let bad = file.path.is_empty()
                || file.path.starts_with('/')
                || file
                    .path
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..");
            if bad {
                return Err(format!("file path {:?} leaves the bundle", file.path));
            }
        }
        for (name, command) in &self.commands {
            let modules = std::iter::once(&command.module)
                .chain(command.snapshot.as_ref().map(|s| &s.module));
            for module in modules {
                if self.file(module).is_none() {
                    return Err(format!(
                        "command {name}: module {module} is not in the bundle"
                    ));
                }
            }
        }
        Ok(())
    }
}

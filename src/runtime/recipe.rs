//! Recipes (`runtimes/<name>/recipe.toml`): how to make a bundle. A recipe names one
//! source that yields the bundle's main module — a crate built for `wasm32-wasip1`, a file
//! inside a PyPI or npm package, or a local file — plus the commands, extra files and
//! environment of the bundle. A new kind of source is one enum variant and one function.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    pub source: Source,
    /// The commands the main module provides.
    pub commands: Commands,
    /// Extra files: path inside the bundle → file next to the recipe.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, rename = "path-env")]
    pub path_env: BTreeMap<String, String>,
    /// Directory holding the recipe (filled in when loaded).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// Where the main module comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Source {
    /// A crate next to the recipe, compiled for `wasm32-wasip1` by cargo.
    Cargo { manifest: String, binary: String },
    /// A file inside a wheel downloaded from the package index (`python::index`).
    Pypi {
        package: String,
        member: String,
        sha256: String,
    },
    /// A file inside a package tarball fetched with `npm pack`.
    Npm {
        package: String,
        member: String,
        sha256: String,
    },
    /// A file next to the recipe (or an absolute path).
    File {
        path: String,
        sha256: Option<String>,
    },
}

impl Source {
    /// The sha256 the fetched module must have, when the recipe pins one.
    pub fn pinned_sha256(&self) -> Option<&str> {
        match self {
            Source::Cargo { .. } => None,
            Source::Pypi { sha256, .. } | Source::Npm { sha256, .. } => Some(sha256),
            Source::File { sha256, .. } => sha256.as_deref(),
        }
    }
}

/// The commands of the main module: a fixed list, or `"list"` to ask the module itself
/// (it is run with `--list` and prints one name per line).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Commands {
    Names(Vec<String>),
    Ask(AskModule),
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AskModule {
    List,
}

#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("no recipe named {name} in {} (there are: {available})", dir.display())]
    NotFound {
        name: String,
        dir: PathBuf,
        available: String,
    },
    #[error("cannot read recipe {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid recipe {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl Recipe {
    /// Loads `<dir>/<name>/recipe.toml`.
    pub fn load(recipes_dir: &Path, name: &str) -> Result<Recipe, RecipeError> {
        let path = recipes_dir.join(name).join("recipe.toml");
        if !path.is_file() {
            return Err(RecipeError::NotFound {
                name: name.into(),
                dir: recipes_dir.into(),
                available: Self::available(recipes_dir).join(", "),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| RecipeError::Read {
            path: path.clone(),
            source,
        })?;
        let mut recipe: Recipe = toml::from_str(&text).map_err(|e| RecipeError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if recipe.name != name {
            return Err(RecipeError::Invalid {
                path,
                message: format!("it is named {:?}, not {name:?}", recipe.name),
            });
        }
        recipe.dir = recipes_dir.join(name);
        Ok(recipe)
    }

    /// Names of the recipes in `recipes_dir`, sorted.
    pub fn available(recipes_dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(recipes_dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.path().join("recipe.toml").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }
}

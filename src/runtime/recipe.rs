//! Recipes (`runtimes/<name>/recipe.toml`, and `runtimes/<name>@<version>/recipe.toml` for
//! further versions of a bundle): how to make a bundle. A recipe names one source that
//! yields the bundle's main module — a crate built for `wasm32-wasip1`, a file inside a PyPI
//! or npm package, a local file, or a build script run over pinned inputs — plus the
//! commands, extra files and environment of the bundle, and optionally a pre-initialised
//! snapshot of its main module. A new kind of source is one enum variant and one function.

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
    /// The bundle command (an interpreter) that compiles the extra `.py` files to bytecode
    /// when the bundle is built: a bundle is read-only to guests, so its interpreter could
    /// never cache them itself and would compile them again at every start.
    #[serde(default)]
    pub bytecode: Option<String>,
    /// A pre-initialised copy of the main module (see `runtime::snapshot`).
    #[serde(default)]
    pub snapshot: Option<SnapshotRecipe>,
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
    /// A build script next to the recipe, run on the host (`sh`) in an empty directory over
    /// the pinned `inputs` (see `runtime::script`). It leaves `module` and `outputs` in
    /// `$WASMBUILD_OUT`; they become `bin/<module>` and the bundle files of those paths.
    Script(ScriptSource),
}

/// A build script next to the recipe, its pinned inputs and what it leaves behind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptSource {
    pub script: String,
    /// Other files next to the recipe the script reads: part of what the build is.
    #[serde(default)]
    pub uses: Vec<String>,
    pub inputs: Vec<Input>,
    pub module: String,
    #[serde(default)]
    pub outputs: Vec<String>,
}

/// One pinned input of a build script, given to it by file name.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Input {
    /// A file of a Debian source package (an upstream `.orig` tarball), from the pool of a
    /// Debian archive (the host's apt's, or `WASMBUILD_DEBIAN_ARCHIVE`); `suite` names the
    /// release that carries it, for the reader and for the error when it is gone.
    DebianSource {
        package: String,
        suite: String,
        file: String,
        sha256: String,
    },
    /// A file of `package` (`NAME==VERSION`) from the package index: the first of `files`
    /// that fits this machine (a wheel whose name has the machine's architecture or
    /// `none-any`, or a source distribution, `.tar.gz`). With `unpack`, a wheel is also
    /// given unpacked, as the directory of its file name without `.whl` (no unzip needed on
    /// the host).
    Pypi {
        package: String,
        files: Vec<PinnedFile>,
        #[serde(default)]
        unpack: bool,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedFile {
    pub file: String,
    pub sha256: String,
}

impl Input {
    /// The file (name and sha256) this machine uses, or why there is none.
    pub fn pinned(&self) -> Result<(&str, &str), String> {
        match self {
            Input::DebianSource { file, sha256, .. } => Ok((file, sha256)),
            Input::Pypi { package, files, .. } => {
                let arch = std::env::consts::ARCH;
                files
                    .iter()
                    .find(|f| {
                        f.file.contains(arch)
                            || f.file.ends_with("-none-any.whl")
                            || f.file.ends_with(".tar.gz")
                    })
                    .map(|f| (f.file.as_str(), f.sha256.as_str()))
                    .ok_or_else(|| {
                        format!("the recipe pins no file of {package} for this machine ({arch})")
                    })
            }
        }
    }
}

/// `[snapshot]`: the main module exports `init`; wasmbuild runs it once with the bundle
/// mounted, and keeps the memory of that process as a second module (wasmtime-wizer).
/// `kind` names the rules for when a run may start from it (`python`: see
/// `python::snapshot`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRecipe {
    pub init: String,
    pub kind: SnapshotKind,
    /// Environment of the initialising process (nothing else of the host is given).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Arguments of a run of the snapshot that does nothing of its own (`["-c", "pass"]`):
    /// the pages of memory it writes, every run copies in before it starts.
    #[serde(default)]
    pub prefault: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotKind {
    Python,
}

impl Source {
    /// The sha256 the fetched module must have, when the recipe pins one.
    pub fn pinned_sha256(&self) -> Option<&str> {
        match self {
            Source::Cargo { .. } | Source::Script(_) => None,
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
    #[error("cannot unpack the built-in recipes into {}: {source}", dir.display())]
    Unpack {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// The recipes built into this binary: its source's `runtimes/` as a tar (see `build.rs`).
static EMBEDDED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/recipes.tar"));

/// sha256 of [`EMBEDDED`], computed by `build.rs`.
const EMBEDDED_SHA256: &str = env!("WASMBUILD_RECIPES_SHA256");

/// The directory the embedded recipes are unpacked to, under the cache: named by their digest.
fn embedded_dir_name() -> &'static str {
    &EMBEDDED_SHA256[..16]
}

/// When `dir` is a recipe of the embedded set unpacked under `cache` (which never changes),
/// a name for it unique across wasmbuild versions: `<archive digest>-<recipe directory>`.
pub fn embedded_name(cache: &Path, dir: &Path) -> Option<String> {
    let relative = dir.strip_prefix(cache.join(embedded_dir_name())).ok()?;
    let relative = relative
        .to_str()
        .filter(|r| !r.is_empty() && !r.contains('/'))?;
    Some(format!("{}-{relative}", embedded_dir_name()))
}

/// The directory of the built-in recipes, unpacked under `cache` the first time in a
/// directory named by the archive's digest, so an installed binary needs no checkout and
/// an upgrade never reads an older copy. Unpacked aside and renamed into place: a reader
/// never sees half a copy.
pub fn embedded_recipes(cache: &Path) -> Result<PathBuf, RecipeError> {
    let dir = cache.join(embedded_dir_name());
    if dir.is_dir() {
        return Ok(dir);
    }
    let unpack = |source| RecipeError::Unpack {
        dir: dir.clone(),
        source,
    };
    std::fs::create_dir_all(cache).map_err(unpack)?;
    let scratch = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(cache)
        .map_err(unpack)?;
    tar::Archive::new(EMBEDDED)
        .unpack(scratch.path())
        .map_err(unpack)?;
    match std::fs::rename(scratch.path(), &dir) {
        Ok(()) => Ok(dir),
        // Another wasmbuild unpacked the same archive first: theirs is as good.
        Err(_) if dir.is_dir() => Ok(dir),
        Err(e) => Err(unpack(e)),
    }
}

impl Recipe {
    /// Loads `<dir>/<name>/recipe.toml`; `name` may be `<bundle>@<version>`, a further
    /// version of a bundle beside the default one.
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
        let bundle = name.split_once('@').map_or(name, |(bundle, _)| bundle);
        if recipe.name != bundle {
            return Err(RecipeError::Invalid {
                path,
                message: format!("it is named {:?}, not {bundle:?}", recipe.name),
            });
        }
        recipe.dir = recipes_dir.join(name);
        Ok(recipe)
    }

    /// The recipe of bundle `name` whose version answers `request` (read as
    /// `runtime-versions` reads it: `3.13`, `3.x`, `latest`, an exact version), the newest
    /// of several; the default recipe (`<name>/`) when there is no request. `None`: no
    /// recipe answers.
    pub fn find(
        recipes_dir: &Path,
        name: &str,
        request: Option<&str>,
    ) -> Result<Option<Recipe>, RecipeError> {
        let Some(request) = request else {
            if !recipes_dir.join(name).join("recipe.toml").is_file() {
                return Ok(None);
            }
            return Self::load(recipes_dir, name).map(Some);
        };
        let mut found: Option<Recipe> = None;
        for dir in Self::available(recipes_dir) {
            if dir != name && dir.split_once('@').is_none_or(|(bundle, _)| bundle != name) {
                continue;
            }
            let recipe = Self::load(recipes_dir, &dir)?;
            let newer = found
                .as_ref()
                .is_none_or(|f| super::compare_versions(&recipe.version, &f.version).is_gt());
            if super::version_matches(&recipe.version, request) && newer {
                found = Some(recipe);
            }
        }
        Ok(found)
    }

    /// Whether this is the default recipe of its bundle (`<name>/`, not `<name>@<version>/`):
    /// the bundle a build gets when it asks for no version.
    pub fn is_default(&self) -> bool {
        self.dir
            .file_name()
            .is_some_and(|d| d == self.name.as_str())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_recipe_of_the_unpacked_embedded_set_has_an_embedded_name() {
        let cache = Path::new("/cache/recipes");
        let unpacked = cache.join(embedded_dir_name());
        assert_eq!(
            embedded_name(cache, &unpacked.join("python@3.12")),
            Some(format!("{}-python@3.12", embedded_dir_name()))
        );
        // Another wasmbuild's set, a recipes directory of the user's, a nested directory.
        assert_eq!(
            embedded_name(cache, &cache.join("0123456789abcdef/base")),
            None
        );
        assert_eq!(
            embedded_name(cache, Path::new("/home/me/recipes/base")),
            None
        );
        assert_eq!(embedded_name(cache, &unpacked.join("base/toolbox")), None);
        assert_eq!(embedded_name(cache, &unpacked), None);
    }

    /// Files under `root` (no build output, nothing hidden) and their contents.
    fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        walkdir::WalkDir::new(root)
            .into_iter()
            .filter_entry(|e| {
                let name = e.file_name().to_string_lossy();
                e.depth() == 0 || (name != "target" && !name.starts_with('.'))
            })
            .map(Result::unwrap)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let relative = e.path().strip_prefix(root).unwrap().to_path_buf();
                (relative, std::fs::read(e.path()).unwrap())
            })
            .collect()
    }

    #[test]
    fn the_built_in_recipes_are_the_checkouts_and_unpack_once() {
        let cache = tempfile::tempdir().unwrap();
        assert_eq!(crate::digest::sha256_hex(EMBEDDED), EMBEDDED_SHA256);
        let dir = embedded_recipes(cache.path()).unwrap();
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("runtimes");
        let (built_in, expected) = (files(&dir), files(&checkout));
        assert!(expected.contains_key(Path::new("base/toolbox/Cargo.lock")));
        assert_eq!(
            built_in.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>()
        );
        assert!(
            built_in == expected,
            "a built-in file differs from the checkout's"
        );
        assert_eq!(Recipe::available(&dir), Recipe::available(&checkout));
        let python = Recipe::load(&dir, "python").unwrap();
        assert!(python.dir.join("sitecustomize.py").is_file());
        // A second call finds the copy; nothing is left half-unpacked beside it.
        assert_eq!(embedded_recipes(cache.path()).unwrap(), dir);
        let entries: Vec<_> = std::fs::read_dir(cache.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn a_version_request_finds_the_recipe_of_that_version() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("runtimes");
        let version = |request: Option<&str>| {
            Recipe::find(&dir, "python", request)
                .unwrap()
                .map(|r| (r.version.clone(), r.is_default()))
        };
        // No request: the default recipe, 3.13; 3.12 for builds that ask for it.
        assert_eq!(version(None), Some(("3.13.5".into(), true)));
        assert_eq!(version(Some("3.12")), Some(("3.12.0".into(), false)));
        assert_eq!(version(Some("3.12.0")), Some(("3.12.0".into(), false)));
        for request in ["3.13", "3.13.5", "3", "3.x", "latest"] {
            assert_eq!(
                version(Some(request)),
                Some(("3.13.5".into(), true)),
                "{request}"
            );
        }
        assert_eq!(version(Some("3.11")), None);
        assert_eq!(version(Some("3.13.4")), None);
        assert!(Recipe::find(&dir, "nodejs", Some("20")).unwrap().is_none());
        assert!(Recipe::find(&dir, "nodejs", None).unwrap().is_none());
        // `python@3.12` holds a recipe named `python`; loading it by another name fails.
        assert_eq!(Recipe::load(&dir, "python@3.12").unwrap().name, "python");
    }

    #[test]
    fn a_package_input_takes_this_machines_wheel_or_the_source_distribution() {
        let input = |files: &[&str]| {
            let files = files
                .iter()
                .map(|f| format!("{{ file = \"{f}\", sha256 = \"{}\" }}", f.len()))
                .collect::<Vec<_>>()
                .join(", ");
            toml::from_str::<Input>(&format!(
                "kind = \"pypi\"\npackage = \"x==1\"\nfiles = [{files}]"
            ))
            .unwrap()
        };
        let other = if std::env::consts::ARCH == "aarch64" {
            "x86_64"
        } else {
            "aarch64"
        };
        let other_wheel = format!("x-1-py3-none-manylinux_2_17_{other}.whl");
        let own_wheel = format!("x-1-py3-none-manylinux_2_17_{}.whl", std::env::consts::ARCH);
        let pinned = |files: &[&str]| input(files).pinned().map(|(file, _)| file.to_owned());
        assert_eq!(pinned(&[&other_wheel, &own_wheel]), Ok(own_wheel.clone()));
        assert_eq!(
            pinned(&[&other_wheel, "x-1.tar.gz"]),
            Ok("x-1.tar.gz".into())
        );
        assert_eq!(
            pinned(&["x-1-py3-none-any.whl"]),
            Ok("x-1-py3-none-any.whl".into())
        );
        let none = pinned(&[&other_wheel]).unwrap_err();
        assert!(none.contains("no file of x==1"), "{none}");
    }
}

//! Fetching a recipe's main module: building a crate for `wasm32-wasip1` with cargo, or
//! taking one file out of a Python wheel or an npm tarball, or a local file. Wheels come
//! from the package index through `python::index` (in Rust, checked against the index's
//! sha256 and kept in the store); cargo and npm are the only host tools run, and only for
//! `wasmbuild runtime build`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::RuntimeError;
use super::recipe::{Recipe, Source};
use crate::python::index::{Client, IndexSettings, PipIndexOptions, normalize_name};
use crate::python::{DistFile, Index};
use crate::store::Store;

/// The WASI target bundles are compiled for.
pub const WASI_TARGET: &str = "wasm32-wasip1";

/// The recipe's pinned main module, when the store already holds it, written to `work`
/// (its digest checked as it is read): rebuilding a bundle after an upgrade then needs no
/// index, no npm and no network. `None`: not pinned, not stored, or unusable.
pub fn module_from_store(recipe: &Recipe, work: &Path, store: &Store) -> Option<(PathBuf, String)> {
    let pinned = recipe.source.pinned_sha256()?;
    if !store.has_blob(pinned).unwrap_or(false) {
        return None;
    }
    let name = match &recipe.source {
        Source::Pypi { member, .. } | Source::Npm { member, .. } => file_name(member),
        Source::File { path, .. } => file_name(path),
        Source::Cargo { binary, .. } => format!("{binary}.wasm"),
        Source::Script(_) => return None,
    };
    let path = work.join(&name);
    match store.get_blob_to_file(pinned, &path) {
        Ok(_) => Some((path, name)),
        Err(error) => {
            tracing::warn!(%error, "the stored module is unusable; fetching it");
            None
        }
    }
}

/// Produces the recipe's main module in `work` and returns its path and file name.
/// Crates are built in `$CARGO_TARGET_DIR`, else in `cargo_target_dir`.
pub fn fetch_module(
    recipe: &Recipe,
    work: &Path,
    cargo_target_dir: &Path,
    store: &Store,
) -> Result<(PathBuf, String), RuntimeError> {
    match &recipe.source {
        Source::Cargo { manifest, binary } => {
            let manifest = copy_crate(&recipe.dir.join(manifest), &work.join("crate"))?;
            let path = cargo_build(&manifest, binary, cargo_target_dir)?;
            Ok((path, format!("{binary}.wasm")))
        }
        Source::Pypi {
            package, member, ..
        } => {
            let wheel = fetch_wheel(package, store)?;
            let bytes = extract_from_zip_bytes(&wheel.0, &wheel.1, member)?;
            save_member(work, member, &bytes)
        }
        Source::Npm {
            package, member, ..
        } => {
            run_tool(
                Command::new("npm")
                    .args(["pack", "--silent", "--pack-destination"])
                    .arg(work)
                    .arg(package),
                "npm pack",
            )?;
            let tarball = find_with_extension(work, "tgz")?;
            let bytes = extract_from_tgz(&tarball, &format!("package/{member}"))?;
            save_member(work, member, &bytes)
        }
        Source::Script(_) => Err(RuntimeError::Fetch(
            "a script's module is built by `runtime::script`".into(),
        )),
        Source::File { path, .. } => {
            let path = recipe.dir.join(path);
            if !path.is_file() {
                return Err(RuntimeError::Fetch(format!(
                    "{} does not exist",
                    path.display()
                )));
            }
            let name = file_name(&path.to_string_lossy());
            Ok((path, name))
        }
    }
}

/// The version of `crate_identity`'s scheme, part of every identity (and of the name it is
/// remembered under): a bundle whose build took cargo's older artifacts for its changed
/// sources (before `copy_crate`) recorded its sources' identity all the same; under a new
/// version it is built again.
pub const IDENTITY_SCHEME: u32 = 2;

/// What a crate's build depends on: its manifest's directory (the sources, `Cargo.lock`,
/// the helper crates under it; not `target/` or hidden entries), each file by path and
/// content, and the binary asked for. A bundle records it (`built_from`), so one built from
/// older sources is built again.
pub fn crate_identity(manifest: &Path, binary: &str) -> Result<String, RuntimeError> {
    let mut hasher = Sha256::new();
    hasher.update(format!("crate identity {IDENTITY_SCHEME}\n"));
    for_each_crate_file(manifest, |path, relative| {
        let bytes = fs::read(path)?;
        hasher.update(format!("file {} {}\n", relative.display(), bytes.len()));
        hasher.update(&bytes);
        Ok(())
    })?;
    hasher.update(format!("binary {binary}\n"));
    Ok(format!("{:x}", hasher.finalize()))
}

/// Calls `each` with the path of every file a crate's build depends on (see
/// `crate_identity`) and that path relative to the manifest's directory, in a stable order.
fn for_each_crate_file(
    manifest: &Path,
    mut each: impl FnMut(&Path, &Path) -> std::io::Result<()>,
) -> Result<(), RuntimeError> {
    let root = manifest.parent().unwrap_or(Path::new("."));
    let io = |e: &dyn std::fmt::Display| RuntimeError::Io(format!("{}: {e}", root.display()));
    let walker = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            e.depth() == 0 || !(name.starts_with('.') || name == "target")
        });
    for entry in walker {
        let entry = entry.map_err(|e| io(&e))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry.path().strip_prefix(root).unwrap_or(entry.path());
        each(entry.path(), relative)
            .map_err(|e| RuntimeError::Io(format!("{}: {e}", entry.path().display())))?;
    }
    Ok(())
}

/// Copies the files of the crate at `manifest` into `to` (a new directory); returns the
/// copy's manifest. A build compiles the copy: cargo takes a source file older than its
/// last build for built, and the recipes wasmbuild carries are unpacked with the times of
/// their archive, the same in every version, so a changed file of theirs would not be
/// compiled again; every file of the copy is new. (Nor does the build write beside the
/// recipe.)
fn copy_crate(manifest: &Path, to: &Path) -> Result<PathBuf, RuntimeError> {
    // `fs::copy` keeps a file's permissions, not its times.
    for_each_crate_file(manifest, |path, relative| {
        let copy = to.join(relative);
        if let Some(parent) = copy.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(path, &copy).map(drop)
    })?;
    Ok(to.join(manifest.file_name().unwrap_or("Cargo.toml".as_ref())))
}

/// Downloads the wheel of `package` (`NAME==VERSION`) from the package index (the host's
/// pip settings, as a build's `pip install` sees them with nothing set in the build) into
/// the store; returns its bytes and file name.
fn fetch_wheel(package: &str, store: &Store) -> Result<(Vec<u8>, String), RuntimeError> {
    let fail = |e: &dyn std::fmt::Display| RuntimeError::Fetch(format!("{package}: {e}"));
    let (name, wanted) = split_pin(package).map_err(|e| fail(&e))?;
    let client = index_client(store, None).map_err(|e| fail(&e))?;
    let files = client.project(name).map_err(|e| fail(&e))?;
    let normalized = normalize_name(name);
    let wheels: Vec<&DistFile> = files
        .iter()
        .filter(|f| {
            let Some(stem) = f.file.strip_suffix(".whl") else {
                return false;
            };
            let mut parts = stem.split('-');
            let (Some(n), Some(v)) = (parts.next(), parts.next()) else {
                return false;
            };
            normalize_name(n) == normalized
                && pep440_rs::Version::from_str(v).is_ok_and(|v| v == wanted)
        })
        .collect();
    // A universal wheel if there is one; any other is a platform wheel (the member is
    // the same WASI module in each).
    let wheel = wheels
        .iter()
        .find(|f| f.file.ends_with("-none-any.whl"))
        .or_else(|| wheels.first())
        .ok_or_else(|| fail(&"the index has no wheel of this version"))?;
    let bytes = client.read(*wheel).map_err(|e| fail(&e))?;
    Ok((bytes, wheel.file.clone()))
}

/// `NAME==VERSION` of a package pinned in a recipe: the name and the version.
pub(super) fn split_pin(package: &str) -> Result<(&str, pep440_rs::Version), String> {
    let (name, version) = package
        .split_once("==")
        .map(|(n, v)| (n.trim(), v.trim()))
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or("a package must be pinned as NAME==VERSION")?;
    let version = pep440_rs::Version::from_str(version).map_err(|e| e.to_string())?;
    Ok((name, version))
}

/// A package index client with the host's pip settings (as a build's `pip install` sees
/// them with nothing set in the build), trusting plain http on `trusted_host`. Given a
/// host, the client is for downloads by URL, which need no index: a host without pip or
/// an index set fetches from the Debian archive all the same.
pub(super) fn index_client(
    store: &Store,
    trusted_host: Option<String>,
) -> Result<Client, crate::python::PackageError> {
    let options = PipIndexOptions {
        no_index: trusted_host.is_some(),
        trusted_hosts: trusted_host.into_iter().collect(),
        ..PipIndexOptions::default()
    };
    let settings = IndexSettings::resolve(&|_| None, &[], &options)?;
    Client::new(settings, store.clone(), false)
}

pub(super) fn file_name(member: &str) -> String {
    member.rsplit('/').next().unwrap_or(member).to_owned()
}

fn save_member(work: &Path, member: &str, bytes: &[u8]) -> Result<(PathBuf, String), RuntimeError> {
    let name = file_name(member);
    let path = work.join(&name);
    fs::write(&path, bytes).map_err(|e| RuntimeError::Fetch(format!("{}: {e}", path.display())))?;
    Ok((path, name))
}

fn run_tool(command: &mut Command, what: &str) -> Result<(), RuntimeError> {
    tracing::info!(?command, "running {what}");
    let status = command
        .status()
        .map_err(|e| RuntimeError::Fetch(format!("cannot run {what}: {e}")))?;
    if !status.success() {
        return Err(RuntimeError::Fetch(format!("{what} failed ({status})")));
    }
    Ok(())
}

fn find_with_extension(dir: &Path, extension: &str) -> Result<PathBuf, RuntimeError> {
    fs::read_dir(dir)
        .map_err(|e| RuntimeError::Fetch(format!("{}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == extension))
        .ok_or_else(|| RuntimeError::Fetch(format!("no .{extension} file was downloaded")))
}

fn extract_from_zip_bytes(
    archive: &[u8],
    name: &str,
    member: &str,
) -> Result<Vec<u8>, RuntimeError> {
    let fail = |e: &dyn std::fmt::Display| RuntimeError::Fetch(format!("{name}: {e}"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).map_err(|e| fail(&e))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|_| RuntimeError::Fetch(format!("{name} has no member {member}")))?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).map_err(|e| fail(&e))?;
    Ok(bytes)
}

fn extract_from_tgz(archive: &Path, member: &str) -> Result<Vec<u8>, RuntimeError> {
    let fail =
        |e: &dyn std::fmt::Display| RuntimeError::Fetch(format!("{}: {e}", archive.display()));
    let file = fs::File::open(archive).map_err(|e| fail(&e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in tar.entries().map_err(|e| fail(&e))? {
        let mut entry = entry.map_err(|e| fail(&e))?;
        if entry.path().map_err(|e| fail(&e))?.to_string_lossy() == member {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(|e| fail(&e))?;
            return Ok(bytes);
        }
    }
    Err(RuntimeError::Fetch(format!(
        "{} has no member {member}",
        archive.display()
    )))
}

/// Builds `binary` of the crate at `manifest` for WASI, adding the rustup target if needed.
fn cargo_build(
    manifest: &Path,
    binary: &str,
    default_target_dir: &Path,
) -> Result<PathBuf, RuntimeError> {
    ensure_wasi_target()?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| default_target_dir.to_owned());
    run_tool(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                WASI_TARGET,
                "--manifest-path",
            ])
            .arg(manifest)
            .args(["--bin", binary])
            .env("CARGO_TARGET_DIR", &target_dir),
        "cargo build",
    )?;
    let path = target_dir
        .join(WASI_TARGET)
        .join("release")
        .join(format!("{binary}.wasm"));
    if !path.is_file() {
        return Err(RuntimeError::Fetch(format!(
            "cargo built no {}",
            path.display()
        )));
    }
    Ok(path)
}

fn ensure_wasi_target() -> Result<(), RuntimeError> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out)
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == WASI_TARGET) =>
        {
            Ok(())
        }
        Ok(_) => run_tool(
            Command::new("rustup").args(["target", "add", WASI_TARGET]),
            "rustup target add",
        ),
        // No rustup: let cargo report whether the target is usable.
        Err(_) => Ok(()),
    }
}

//! Artifacts with CodeBuild's rules: `files` globs relative to `base-directory` (itself a
//! glob), `*` staying within a directory and `**` crossing, `exclude-paths`,
//! `discard-paths`, `enable-symlinks`. Each set is exported as a directory (and a zip with
//! `--zip`) under the artifacts directory, written aside and renamed into place, and
//! described by the sha256 of every file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::buildspec::Artifacts;
use crate::store::sha256_reader;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The buildspec's globs are wrong or match nothing: the build's fault (CLIENT_ERROR).
    #[error("{0}")]
    Client(String),
    /// Writing the artifacts failed.
    #[error("{0}")]
    Io(String),
}

/// One file of an exported artifact set.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// For a symlink kept as a link (`enable-symlinks`): its target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symlink: Option<String>,
}

/// An exported artifact set, as the build record shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactSet {
    pub artifact_identifier: String,
    pub name: String,
    /// Where the set was written.
    pub location: String,
    /// sha256 of the zip with `--zip`, else of the file list (`sha256  path` lines).
    pub sha256sum: String,
    pub files: Vec<ArtifactFile>,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

struct Selected {
    /// Path inside the artifact set.
    path: String,
    host: PathBuf,
    /// Some(target) when the entry is exported as a symlink.
    link: Option<PathBuf>,
}

fn glob(pattern: &str) -> Result<Glob, ArtifactError> {
    let pattern = pattern.trim_start_matches("./");
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| ArtifactError::Client(format!("invalid artifact pattern {pattern}: {e}")))
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, ArtifactError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(glob(pattern)?);
    }
    builder
        .build()
        .map_err(|e| ArtifactError::Client(format!("invalid artifact patterns: {e}")))
}

fn rel_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The directories `base-directory` names under `src` (a glob may name several).
fn base_directories(src: &Path, base: Option<&str>) -> Result<Vec<PathBuf>, ArtifactError> {
    let Some(base) = base.map(|b| b.trim_start_matches("./").trim_end_matches('/')) else {
        return Ok(vec![src.to_owned()]);
    };
    if base.is_empty() || base == "." {
        return Ok(vec![src.to_owned()]);
    }
    if base.starts_with('/') || base.split('/').any(|c| c == "..") {
        return Err(ArtifactError::Client(format!(
            "base-directory {base} must be a path inside the source directory"
        )));
    }
    let matcher = glob(base)?.compile_matcher();
    let mut dirs = Vec::new();
    for entry in walkdir::WalkDir::new(src)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_dir()
            && let Ok(rel) = entry.path().strip_prefix(src)
            && matcher.is_match(rel)
        {
            dirs.push(entry.path().to_owned());
        }
    }
    if dirs.is_empty() {
        return Err(ArtifactError::Client(format!(
            "no matching base directory path found for {base}"
        )));
    }
    Ok(dirs)
}

fn select(
    src: &Path,
    spec: &Artifacts,
    warnings: &mut Vec<String>,
) -> Result<Vec<Selected>, ArtifactError> {
    if spec.files.is_empty() {
        return Err(ArtifactError::Client("artifacts have no files".to_owned()));
    }
    let include = glob_set(&spec.files)?;
    let exclude = glob_set(&spec.exclude_paths)?;
    let mut selected: Vec<Selected> = Vec::new();
    for base in base_directories(src, spec.base_directory.as_deref())? {
        for entry in walkdir::WalkDir::new(&base)
            .min_depth(1)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| ArtifactError::Io(e.to_string()))?;
            let kind = entry.file_type();
            if kind.is_dir() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&base) else {
                continue;
            };
            if !include.is_match(rel) || exclude.is_match(rel) {
                continue;
            }
            let path = if spec.discard_paths {
                rel.file_name().map(Path::new).unwrap_or(rel)
            } else {
                rel
            };
            let mut link = None;
            let mut host = entry.path().to_owned();
            if kind.is_symlink() {
                let target = std::fs::read_link(entry.path())
                    .map_err(|e| ArtifactError::Io(format!("{}: {e}", entry.path().display())))?;
                if spec.enable_symlinks {
                    link = Some(target);
                } else {
                    // Without enable-symlinks the link's content is exported, if it is a
                    // file of the source directory.
                    match entry.path().canonicalize() {
                        Ok(real) if real.starts_with(src) && real.is_file() => host = real,
                        _ => {
                            warnings.push(format!(
                                "skipping symlink {} that points outside the source directory or nowhere",
                                rel.display()
                            ));
                            continue;
                        }
                    }
                }
            } else if !kind.is_file() {
                continue;
            }
            let path = rel_string(path);
            if let Some(previous) = selected.iter_mut().find(|s| s.path == path) {
                warnings.push(format!("{path} is matched twice; the last one is kept"));
                previous.host = host;
                previous.link = link;
            } else {
                selected.push(Selected { path, host, link });
            }
        }
    }
    if selected.is_empty() {
        return Err(ArtifactError::Client(format!(
            "no matching artifact paths found for {}",
            spec.files.join(", ")
        )));
    }
    selected.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(selected)
}

/// Exports one artifact set: selects its files under `src`, copies them to
/// `out/<dir_name>` (and `out/<dir_name>.zip` when `zip`), and describes them.
pub fn export(
    src: &Path,
    spec: &Artifacts,
    identifier: &str,
    dir_name: &str,
    out: &Path,
    zip: bool,
) -> Result<ArtifactSet, ArtifactError> {
    if dir_name.is_empty()
        || dir_name.contains('/')
        || dir_name == "."
        || dir_name == ".."
        || dir_name == "build.json"
        || dir_name == "build.log"
    {
        return Err(ArtifactError::Client(format!(
            "artifact name {dir_name:?} cannot be used as a directory name"
        )));
    }
    let io_err = |what: &Path, e: io::Error| ArtifactError::Io(format!("{}: {e}", what.display()));
    let mut warnings = Vec::new();
    let selected = select(src, spec, &mut warnings)?;
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{dir_name}.partial-"))
        .tempdir_in(out)
        .map_err(|e| io_err(out, e))?;
    let mut files = Vec::with_capacity(selected.len());
    for item in &selected {
        let dest = staging.path().join(&item.path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        if let Some(target) = &item.link {
            std::os::unix::fs::symlink(target, &dest).map_err(|e| io_err(&dest, e))?;
            let target = target.to_string_lossy().into_owned();
            files.push(ArtifactFile {
                path: item.path.clone(),
                size: target.len() as u64,
                sha256: crate::store::sha256_hex(target.as_bytes()),
                symlink: Some(target),
            });
            continue;
        }
        reflink_copy::reflink_or_copy(&item.host, &dest).map_err(|e| io_err(&item.host, e))?;
        let file = std::fs::File::open(&dest).map_err(|e| io_err(&dest, e))?;
        let (sha256, size) = sha256_reader(file).map_err(|e| io_err(&dest, e))?;
        files.push(ArtifactFile {
            path: item.path.clone(),
            size,
            sha256,
            symlink: None,
        });
    }

    let final_dir = out.join(dir_name);
    if final_dir.symlink_metadata().is_ok() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| io_err(&final_dir, e))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, &final_dir).map_err(|e| io_err(&final_dir, e))?;

    let listing_digest = crate::store::sha256_hex(listing(&files).as_bytes());
    let sha256sum = if zip {
        let zip_path = out.join(format!("{dir_name}.zip"));
        write_zip(&final_dir, &files, &zip_path).map_err(|e| io_err(&zip_path, e))?;
        let file = std::fs::File::open(&zip_path).map_err(|e| io_err(&zip_path, e))?;
        sha256_reader(file).map_err(|e| io_err(&zip_path, e))?.0
    } else {
        listing_digest
    };
    Ok(ArtifactSet {
        artifact_identifier: identifier.to_owned(),
        name: dir_name.to_owned(),
        location: final_dir.to_string_lossy().into_owned(),
        sha256sum,
        files,
        warnings,
    })
}

/// `sha256  path` per file, sorted by path: the identity of a set's content.
pub fn listing(files: &[ArtifactFile]) -> String {
    files
        .iter()
        .map(|f| format!("{}  {}\n", f.sha256, f.path))
        .collect()
}

/// A zip of the set with entries in path order and a fixed timestamp, so the same files
/// always make the same bytes.
fn write_zip(dir: &Path, files: &[ArtifactFile], zip_path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let partial = tempfile::NamedTempFile::new_in(zip_path.parent().unwrap_or(Path::new(".")))?;
    let mut writer = zip::ZipWriter::new(io::BufWriter::new(partial.reopen()?));
    for file in files {
        let host = dir.join(&file.path);
        let mode = std::fs::symlink_metadata(&host)?.permissions().mode();
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(mode & 0o777);
        if let Some(target) = &file.symlink {
            writer
                .add_symlink(&file.path, target, options)
                .map_err(io::Error::other)?;
            continue;
        }
        writer
            .start_file(&file.path, options)
            .map_err(io::Error::other)?;
        io::copy(&mut std::fs::File::open(&host)?, &mut writer)?;
    }
    writer.finish().map_err(io::Error::other)?.flush()?;
    partial.persist(zip_path).map_err(|e| e.error)?;
    Ok(())
}

//! Artifacts with CodeBuild's rules: `files` globs relative to `base-directory` (itself a
//! glob), `*` staying within a directory and `**` crossing, `exclude-paths`,
//! `discard-paths`, `enable-symlinks`. Each set is exported as a directory (and a zip with
//! `--zip`) under the artifacts directory, written aside and renamed into place, and
//! described by the sha256 of every file.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

use cap_std::fs::Dir;

use crate::buildspec::Artifacts;
use crate::digest::sha256_reader;
use crate::store::beneath::{self, Kind};
use crate::store::link_stays_inside;

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
    /// Path below the source directory.
    rel: String,
    how: Source,
}

/// Where a selected entry's content comes from.
enum Source {
    /// A regular file, opened without following links.
    File,
    /// A link (without `enable-symlinks`) to a file of the source directory: opened
    /// through the source directory's capability, which follows links only inside it.
    ThroughLink,
    /// A link kept as a link (`enable-symlinks`), whose target stays inside the source.
    Link(String),
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

/// The directories `base-directory` names below the source (a glob may name several), as
/// paths relative to it (`""`: the source itself). Links are not entered nor taken as
/// directories.
fn base_directories(
    src: &Dir,
    base: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, ArtifactError> {
    let Some(base) = base.map(|b| b.trim_start_matches("./").trim_end_matches('/')) else {
        return Ok(vec![String::new()]);
    };
    if base.is_empty() || base == "." {
        return Ok(vec![String::new()]);
    }
    if base.starts_with('/') || base.split('/').any(|c| c == "..") {
        return Err(ArtifactError::Client(format!(
            "base-directory {base} must be a path inside the source directory"
        )));
    }
    let matcher = glob(base)?.compile_matcher();
    let mut errors = Vec::new();
    let entries =
        beneath::walk(src, "", &mut errors).map_err(|e| ArtifactError::Io(e.to_string()))?;
    warnings.extend(errors.into_iter().map(|e| format!("not searched: {e}")));
    let dirs: Vec<String> = entries
        .into_iter()
        .filter(|entry| entry.kind == Kind::Dir && matcher.is_match(&entry.rel))
        .map(|entry| entry.rel)
        .collect();
    if dirs.is_empty() {
        return Err(ArtifactError::Client(format!(
            "no matching base directory path found for {base}"
        )));
    }
    Ok(dirs)
}

fn select(
    src: &Dir,
    spec: &Artifacts,
    warnings: &mut Vec<String>,
) -> Result<Vec<Selected>, ArtifactError> {
    if spec.files.is_empty() {
        return Err(ArtifactError::Client("artifacts have no files".to_owned()));
    }
    let include = glob_set(&spec.files)?;
    let exclude = glob_set(&spec.exclude_paths)?;
    let mut selected: Vec<Selected> = Vec::new();
    for base in base_directories(src, spec.base_directory.as_deref(), warnings)? {
        let mut errors = Vec::new();
        let entries = match beneath::walk(src, &base, &mut errors) {
            Ok(entries) => entries,
            Err(e) => {
                warnings.push(format!("base directory {base} not searched: {e}"));
                continue;
            }
        };
        warnings.extend(errors.into_iter().map(|e| format!("not searched: {e}")));
        for entry in entries {
            if entry.kind == Kind::Dir || entry.rel == base {
                continue;
            }
            let rel = match base.as_str() {
                "" => entry.rel.as_str(),
                base => match entry
                    .rel
                    .strip_prefix(base)
                    .and_then(|r| r.strip_prefix('/'))
                {
                    Some(rel) => rel,
                    None => continue,
                },
            };
            if !include.is_match(rel) || exclude.is_match(rel) {
                continue;
            }
            let path = if spec.discard_paths {
                rel.rsplit('/').next().unwrap_or(rel)
            } else {
                rel
            };
            let how = match entry.kind {
                Kind::File => Source::File,
                Kind::Symlink => {
                    let target = beneath::read_link(src, &entry.rel)
                        .map_err(|e| ArtifactError::Io(format!("{}: {e}", entry.rel)))?;
                    if spec.enable_symlinks {
                        match String::from_utf8(target) {
                            // Inside the set as exported (where it will be resolved), which
                            // also keeps it inside the source directory.
                            Ok(target)
                                if link_stays_inside(path, &target, &HashSet::new())
                                    && link_stays_inside(&entry.rel, &target, &HashSet::new()) =>
                            {
                                Source::Link(target)
                            }
                            _ => {
                                warnings.push(format!(
                                    "skipping symlink {rel} that points outside the source directory or the artifact set"
                                ));
                                continue;
                            }
                        }
                    } else if open_through_link(src, &entry.rel).is_ok() {
                        // Without enable-symlinks the link's content is exported, if it is
                        // a file of the source directory.
                        Source::ThroughLink
                    } else {
                        warnings.push(format!(
                            "skipping symlink {rel} that points outside the source directory or nowhere"
                        ));
                        continue;
                    }
                }
                Kind::Dir | Kind::Other => continue,
            };
            let path = path.to_owned();
            let rel = entry.rel.clone();
            if let Some(previous) = selected.iter_mut().find(|s| s.path == path) {
                warnings.push(format!("{path} is matched twice; the last one is kept"));
                previous.rel = rel;
                previous.how = how;
            } else {
                selected.push(Selected { path, rel, how });
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

/// The files of a report group, selected as artifacts are (`files` under `base-directory`,
/// `discard-paths`), each opened through the source directory's capability: the path
/// shown in the report, and the file or why it could not be opened.
pub fn report_files(
    src: &Path,
    report: &crate::buildspec::Report,
    warnings: &mut Vec<String>,
) -> Result<Vec<(String, io::Result<std::fs::File>)>, ArtifactError> {
    let src = &beneath::open_root(src)
        .map_err(|e| ArtifactError::Io(format!("{}: {e}", src.display())))?;
    let spec = Artifacts {
        files: report.files.clone(),
        base_directory: report.base_directory.clone(),
        discard_paths: report.discard_paths,
        ..Artifacts::default()
    };
    Ok(select(src, &spec, warnings)?
        .into_iter()
        .map(|selected| {
            let file = open_through_link(src, &selected.rel);
            (selected.path, file)
        })
        .collect())
}

/// Opens the file a link of the source directory leads to, following links only while
/// they stay inside the source directory (cap-std refuses the others), and checks on the
/// handle that it is a regular file.
fn open_through_link(src: &Dir, rel: &str) -> std::io::Result<std::fs::File> {
    let file = src.open(rel)?.into_std();
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{rel}: not a regular file"),
        ));
    }
    Ok(file)
}

/// Copies `from` (an opened file) to the new file `dest` with mode `mode`, returning the
/// sha256 and size of exactly the bytes copied.
fn copy_from_handle(mut from: std::fs::File, dest: &Path, mode: u32) -> io::Result<(String, u64)> {
    use sha2::Digest;
    use std::io::Read;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        size += n as u64;
    }
    to.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok((hex::encode(hasher.finalize()), size))
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
    // The source directory as a capability, opened once: nothing below is reached by path.
    let src_dir = beneath::open_root(src).map_err(|e| io_err(src, e))?;
    let selected = select(&src_dir, spec, &mut warnings)?;
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
        if let Source::Link(target) = &item.how {
            std::os::unix::fs::symlink(target, &dest).map_err(|e| io_err(&dest, e))?;
            files.push(ArtifactFile {
                path: item.path.clone(),
                size: target.len() as u64,
                sha256: crate::digest::sha256_hex(target.as_bytes()),
                symlink: Some(target.clone()),
            });
            continue;
        }
        // Copied from the handle opened here (a regular file, checked on the handle), never
        // from the path again: a file swapped for a link meanwhile is not followed.
        let opened = match item.how {
            Source::ThroughLink => open_through_link(&src_dir, &item.rel),
            _ => beneath::open_file(&src_dir, &item.rel),
        };
        let source = match opened {
            Ok(file) => file,
            Err(e) => {
                warnings.push(format!(
                    "skipping {}: it changed while the artifacts were collected ({})",
                    item.rel,
                    beneath::why(&e)
                ));
                continue;
            }
        };
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            let meta = source
                .metadata()
                .map_err(|e| io_err(Path::new(&item.rel), e))?;
            beneath::safe_mode(meta.permissions().mode())
        };
        let (sha256, size) = copy_from_handle(source, &dest, mode).map_err(|e| io_err(&dest, e))?;
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

    let listing_digest = crate::digest::sha256_hex(listing(&files).as_bytes());
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
            .unix_permissions(beneath::safe_mode(mode));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn spec(files: &[&str]) -> Artifacts {
        Artifacts {
            files: files.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn copies_lose_special_and_write_bits_and_links_out_are_skipped() {
        let src = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        std::fs::write(src.path().join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            src.path().join("tool"),
            std::fs::Permissions::from_mode(0o6777),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), src.path().join("link")).unwrap();
        std::os::unix::fs::symlink("tool", src.path().join("inner")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let set = export(
            src.path(),
            &spec(&["*"]),
            "primary",
            "set",
            out.path(),
            true,
        )
        .unwrap();
        let paths: Vec<&str> = set.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["inner", "tool"]);
        for name in ["inner", "tool"] {
            let mode = std::fs::metadata(out.path().join("set").join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, 0o755, "{name}");
        }
        assert!(
            set.warnings
                .iter()
                .any(|w| w.contains("skipping symlink link"))
        );
    }
}

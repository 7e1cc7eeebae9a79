//! Installed bundles are checked before use, as the compiled code is: each installed file's
//! sha256 comes from the bundle manifest, and `bundle-stamps/<digest>`, next to the
//! install directories (outside what a guest sees), remembers the stamp (device, inode, size, mode,
//! mtime, ctime) each file had when its content last matched. A file with the same stamp is
//! trusted without reading it; any other is re-hashed. A file whose content differs, that is
//! missing, is not a regular file, or an entry the manifest does not list, makes the install
//! tampered. (Every write to a file changes its ctime, which no tool can set back.)

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::BundleManifest;

/// First line of a stamps file.
const STAMPS_MAGIC: &str = "wasmbuild-installed 1";

/// What was found wrong with one installed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tampered {
    /// Path of the file inside the bundle.
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for Tampered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// What identifies one state of a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mode: u32,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mode: meta.mode(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    fn text(&self) -> String {
        format!(
            "{} {} {} {} {}.{} {}.{}",
            self.dev,
            self.ino,
            self.size,
            self.mode,
            self.mtime.0,
            self.mtime.1,
            self.ctime.0,
            self.ctime.1
        )
    }

    fn parse(words: &[&str]) -> Option<Stamp> {
        let pair = |w: &str| -> Option<(i64, i64)> {
            let (a, b) = w.split_once('.')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        };
        Some(Stamp {
            dev: words.first()?.parse().ok()?,
            ino: words.get(1)?.parse().ok()?,
            size: words.get(2)?.parse().ok()?,
            mode: words.get(3)?.parse().ok()?,
            mtime: pair(words.get(4)?)?,
            ctime: pair(words.get(5)?)?,
        })
    }
}

/// Directory, next to the install directories' `bundles`, holding their stamps.
const STAMPS_DIR: &str = "bundle-stamps";

/// Where the stamps of the install directory `dir` (`…/bundles/<digest>`) are kept:
/// `…/bundle-stamps/<digest>`, outside every directory a guest sees.
pub fn stamps_path(dir: &Path) -> PathBuf {
    let name = dir.file_name().unwrap_or_default();
    let store = dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    store.join(STAMPS_DIR).join(name)
}

/// `path → (sha256, stamp)` as last recorded; empty when there is no usable file.
fn read_stamps(dir: &Path) -> BTreeMap<String, (String, Stamp)> {
    let Ok(text) = fs::read_to_string(stamps_path(dir)) else {
        return BTreeMap::new();
    };
    let mut lines = text.lines();
    if lines.next() != Some(STAMPS_MAGIC) {
        return BTreeMap::new();
    }
    lines
        .filter_map(|line| {
            // sha256, six stamp words, then the path (which may hold spaces).
            let mut words = line.splitn(8, ' ');
            let sha = words.next()?.to_owned();
            let stamp_words: Vec<&str> = words.by_ref().take(6).collect();
            let stamp = Stamp::parse(&stamp_words)?;
            let path = words.next()?.to_owned();
            Some((path, (sha, stamp)))
        })
        .collect()
}

fn write_stamps(
    dir: &Path,
    stamps: &BTreeMap<String, (String, Stamp)>,
) -> Result<(), crate::store::StoreError> {
    let mut text = format!("{STAMPS_MAGIC}\n");
    for (file, (sha, stamp)) in stamps {
        text.push_str(&format!("{sha} {} {file}\n", stamp.text()));
    }
    crate::store::write_atomic_beside(&stamps_path(dir), text.as_bytes(), false)
}

/// Checks the install directory `dir` of `manifest`. With `trust_stamps`, a file whose
/// stamp is the recorded one is not read again; otherwise every file is re-hashed. Stamps of
/// files found intact are recorded. Returns every problem found (empty: intact).
/// `(bin/NAME, module)` for each command whose name is not a file of the bundle.
fn command_links(manifest: &BundleManifest) -> Vec<(String, String)> {
    manifest
        .commands
        .iter()
        .map(|(name, spec)| (format!("bin/{name}"), spec.module.clone()))
        .filter(|(link, _)| manifest.file(link).is_none() && !link[4..].contains('/'))
        .collect()
}

/// Gives each command a file of its name in the install's `bin` (a hard link to its
/// module), so that guests looking for a program in `PATH` (`shutil.which`, `test -x`)
/// find it there. Links already there are kept (one listing of `bin`, not a look-up per
/// command: every command start installs its image's bundles).
pub fn link_commands(manifest: &BundleManifest, dir: &Path) -> std::io::Result<()> {
    let links = command_links(manifest);
    if links.is_empty() {
        return Ok(());
    }
    let bin = dir.join("bin");
    let present: BTreeSet<String> = match fs::read_dir(&bin) {
        Ok(entries) => entries
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
        Err(e) => return Err(e),
    };
    for (link, module) in links {
        if present.contains(&link["bin/".len()..]) {
            continue;
        }
        fs::create_dir_all(&bin)?;
        fs::hard_link(dir.join(&module), dir.join(&link))?;
    }
    Ok(())
}

pub fn check(manifest: &BundleManifest, dir: &Path, trust_stamps: bool) -> Vec<Tampered> {
    let recorded = read_stamps(dir);
    let mut fresh: BTreeMap<String, (String, Stamp)> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut expected_dirs: BTreeSet<String> = BTreeSet::new();
    for file in &manifest.files {
        let mut parent = file.path.as_str();
        while let Some((up, _)) = parent.rsplit_once('/') {
            expected_dirs.insert(up.to_owned());
            parent = up;
        }
        let path = dir.join(&file.path);
        let problem = |reason: String| Tampered {
            path: file.path.clone(),
            reason,
        };
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) => {
                problems.push(problem(format!("cannot be read ({e})")));
                continue;
            }
        };
        if !meta.file_type().is_file() {
            problems.push(problem("is no longer a regular file".into()));
            continue;
        }
        let stamp = Stamp::of(&meta);
        let known = recorded
            .get(&file.path)
            .is_some_and(|(sha, s)| trust_stamps && *sha == file.sha256 && *s == stamp);
        if !known {
            match fs::File::open(&path).and_then(crate::digest::sha256_reader) {
                Ok((actual, _)) if actual == file.sha256 => {}
                Ok((actual, _)) => {
                    problems.push(problem(format!(
                        "changed on disk: sha256 {actual}, the bundle has {}",
                        file.sha256
                    )));
                    continue;
                }
                Err(e) => {
                    problems.push(problem(format!("cannot be read ({e})")));
                    continue;
                }
            }
        }
        fresh.insert(file.path.clone(), (file.sha256.clone(), stamp));
    }
    // Entries the manifest does not list (a module dropped next to the bundle's, a link),
    // but for the commands' names in `bin` (see `link_commands`).
    let links = command_links(manifest);
    let listed: BTreeSet<&str> = manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain(links.iter().map(|(link, _)| link.as_str()))
        .collect();
    let mut stack = vec![(dir.to_owned(), String::new())];
    while let Some((host, rel)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&host) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && expected_dirs.contains(&path) {
                stack.push((entry.path(), path));
            } else if !(kind.is_file() && listed.contains(path.as_str())) {
                problems.push(Tampered {
                    path,
                    reason: "is not part of the bundle".into(),
                });
            }
        }
    }
    if problems.is_empty()
        && fresh != recorded
        && let Err(error) = write_stamps(dir, &fresh)
    {
        tracing::debug!(%error, "cannot record the stamps of an installed bundle");
    }
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    problems
}

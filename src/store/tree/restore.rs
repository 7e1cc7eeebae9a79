//! Restoring a tree into a directory: only the files that differ are written, each through
//! a temporary file and a rename, and never one whose content does not match its digest.

use std::collections::{HashMap, HashSet};
use std::fs::{self};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use cap_std::fs::Dir;
use rayon::prelude::*;
use serde::Serialize;

use super::index::{FileIndex, Stamp, now_ns};
use super::manifest::{EntryKind, TreeEntry};
use super::packs::largest_first;
use crate::digest::{is_digest, sha256_hex, sha256_reader};
use crate::store::beneath::{self, NewFileAt};
use crate::store::codec::{self, FileSink};
use crate::store::progress::Bar;
use crate::store::{Store, StoreError, io_err};

/// Options of [`Store::restore_tree_with`].
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Give every written file this modification time (default: the time of writing).
    pub mtime: Option<SystemTime>,
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestoreStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Files written (missing or different), and their size.
    pub written_files: u64,
    pub written_bytes: u64,
    /// Files already identical (only their mode may have been fixed).
    pub unchanged_files: u64,
    /// Files not restored because their blob is corrupt or missing (`path (digest): why`).
    pub corrupt: Vec<String>,
    /// Entries refused: unsafe paths, symlinks leaving the root, something in the way.
    pub refused: Vec<String>,
    #[serde(skip)]
    pub elapsed: Duration,
}

/// Whether `rel` is a plain relative path (no `..`, no root, no empty parts).
pub(super) fn safe_rel(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.contains('\0')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Whether the symlink at `link` pointing to `target` stays inside the root, resolving
/// `..` lexically and refusing to climb out through another symlink of the tree.
pub(crate) fn link_stays_inside(link: &str, target: &str, symlinks: &HashSet<&str>) -> bool {
    if target.is_empty() || target.starts_with('/') || target.contains('\0') {
        return false;
    }
    let mut stack: Vec<&str> = link.split('/').collect();
    stack.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if stack.is_empty() || symlinks.contains(stack.join("/").as_str()) {
                    return false;
                }
                stack.pop();
            }
            name => stack.push(name),
        }
    }
    true
}

enum Action {
    Unchanged {
        stamp: Option<Stamp>,
    },
    /// Write the file; `replace`: something is in the way (a different file, a symlink).
    Write {
        replace: bool,
    },
    Refused(String),
}

struct RestoreCtx<'a> {
    store: &'a Store,
    /// The destination, for messages.
    dest: PathBuf,
    /// The destination as a capability: every entry is reached below it without
    /// following links.
    root: Dir,
    /// Directories checked to be real directories (not symlinks) inside `dest`.
    dirs: Mutex<HashSet<String>>,
}

impl RestoreCtx<'_> {
    /// Makes sure `rel_dir` (relative) exists as a real directory, creating missing parts;
    /// refuses to pass through a symlink or a file.
    fn ensure_dir(&self, rel_dir: &str) -> Result<(), String> {
        if rel_dir.is_empty() || self.dirs.lock().unwrap().contains(rel_dir) {
            return Ok(());
        }
        let mut prefix = String::new();
        for part in rel_dir.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if self.dirs.lock().unwrap().contains(&prefix) {
                continue;
            }
            match beneath::symlink_metadata(&self.root, &prefix) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(format!(
                        "{prefix} is a symlink where the tree has a directory"
                    ));
                }
                Ok(_) => return Err(format!("{prefix} is a file where the tree has a directory")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let (parent, name) = beneath::split(&prefix);
                    let made = beneath::open_dir(&self.root, parent)
                        .and_then(|dir| beneath::mkdir(&dir, name, 0o755));
                    match made {
                        Ok(()) => {}
                        Err(e)
                            if e.kind() == io::ErrorKind::AlreadyExists
                                && beneath::symlink_metadata(&self.root, &prefix)
                                    .is_ok_and(|m| m.is_dir()) => {}
                        Err(e) => return Err(format!("{prefix}: {}", beneath::why(&e))),
                    }
                }
                Err(e) => return Err(format!("{prefix}: {}", beneath::why(&e))),
            }
            self.dirs.lock().unwrap().insert(prefix.clone());
        }
        Ok(())
    }

    fn compare(&self, entry: &TreeEntry, index: &FileIndex) -> Action {
        let meta = match beneath::symlink_metadata(&self.root, &entry.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Action::Write { replace: false };
            }
            Err(e) => return Action::Refused(format!("{}: {}", entry.path, beneath::why(&e))),
        };
        if meta.is_dir() {
            return Action::Refused(format!(
                "{}: a directory is where the tree has a file",
                entry.path
            ));
        }
        if !meta.is_file() || meta.len() != entry.size {
            return Action::Write { replace: true };
        }
        let digest = entry.digest.as_deref().unwrap_or_default();
        let stamp = Stamp::of(&meta);
        let same = match index.lookup(&entry.path, &stamp) {
            Some(known) => known == digest,
            None => match beneath::open_file(&self.root, &entry.path).and_then(sha256_reader) {
                Ok((actual, _)) => actual == digest,
                Err(_) => false,
            },
        };
        if !same {
            return Action::Write { replace: true };
        }
        let mode = beneath::safe_mode(entry.mode);
        let mode_fixed = meta.permissions().mode() & 0o7777 != mode;
        if mode_fixed && let Err(e) = beneath::set_mode(&self.root, &entry.path, mode) {
            return Action::Refused(format!("{}: {}", entry.path, beneath::why(&e)));
        }
        let stamp = if mode_fixed {
            beneath::symlink_metadata(&self.root, &entry.path)
                .ok()
                .map(|m| Stamp::of(&m))
        } else {
            Some(stamp)
        };
        Action::Unchanged { stamp }
    }

    /// Writes the files of one pack (`(entry, replace)`), each checked against its digest:
    /// for each, its new stamp or why not (see [`RestoreCtx::write_file`]).
    fn write_packed(
        &self,
        pack: &str,
        files: &[(&TreeEntry, bool)],
        options: &RestoreOptions,
    ) -> Result<Vec<Result<Stamp, String>>, StoreError> {
        let bytes = match self.store.get_blob(pack) {
            Ok(bytes) => bytes,
            Err(e @ (StoreError::Corrupt { .. } | StoreError::Missing(_))) => {
                tracing::warn!(
                    "not restoring the {} files of pack {pack}: {e}",
                    files.len()
                );
                return Ok(files
                    .iter()
                    .map(|(entry, _)| Err(format!("{} (in pack {pack}): {e}", entry.path)))
                    .collect());
            }
            Err(e) => return Err(e),
        };
        files
            .iter()
            .map(|&(entry, replace)| {
                let content = usize::try_from(entry.offset).ok().and_then(|start| {
                    bytes.get(start..start.checked_add(usize::try_from(entry.size).ok()?)?)
                });
                match content {
                    Some(content)
                        if Some(sha256_hex(content).as_str()) == entry.digest.as_deref() =>
                    {
                        self.write_file(entry, replace, options, Some(content))
                    }
                    _ => Ok(Err(format!(
                        "{} (in pack {pack}): the content there does not match its digest",
                        entry.path
                    ))),
                }
            })
            .collect()
    }

    /// Writes one file, from `content` or else from its own blob: its new stamp, or why not
    /// (a blob corrupt or missing, or, prefixed `refused `, something in the way). The
    /// file is created in its directory (reached without following links) and renamed or
    /// linked into place: a link in the way is replaced, never written through. Its mode
    /// is the tree's without setuid, setgid, sticky and group/world write bits.
    fn write_file(
        &self,
        entry: &TreeEntry,
        replace: bool,
        options: &RestoreOptions,
        content: Option<&[u8]>,
    ) -> Result<Result<Stamp, String>, StoreError> {
        let digest = entry.digest.as_deref().unwrap_or_default();
        let (parent_rel, name) = beneath::split(&entry.path);
        if let Err(why) = self.ensure_dir(parent_rel) {
            return Ok(Err(format!("refused {}: {why}", entry.path)));
        }
        let path = self.dest.join(&entry.path);
        let dir = match beneath::open_dir(&self.root, parent_rel) {
            Ok(dir) => dir,
            Err(e) => return Ok(Err(format!("refused {}: {}", entry.path, beneath::why(&e)))),
        };
        let mode = beneath::safe_mode(entry.mode);
        let mut new = NewFileAt::create(dir, name, mode, replace).map_err(io_err(&path))?;
        if let Some(content) = content {
            std::io::Write::write_all(new.file(), content).map_err(io_err(&path))?;
        } else {
            let mut sink = FileSink::new(new.file());
            match self
                .store
                .read_blob(digest, &mut sink, entry.size >= 64 << 20)
            {
                Ok(_) => sink.finish().map_err(io_err(&path))?,
                Err(e @ (StoreError::Corrupt { .. } | StoreError::Missing(_))) => {
                    tracing::warn!("not restoring {}: {e}", entry.path);
                    return Ok(Err(format!("{} ({digest}): {e}", entry.path)));
                }
                Err(e) => return Err(e),
            }
        }
        // Exact permission bits, whatever the umask.
        codec::set_mode(new.file(), mode).map_err(io_err(&path))?;
        if let Some(mtime) = options.mtime {
            new.file().set_modified(mtime).map_err(io_err(&path))?;
        }
        let (created, file) = new.commit().map_err(io_err(&path))?;
        if !created {
            // Created meanwhile by someone else: replace it with what the tree says.
            return self.write_file(entry, true, options, content);
        }
        let meta = file.metadata().map_err(io_err(&path))?;
        Ok(Ok(Stamp::of(&meta)))
    }

    fn write_symlink(&self, entry: &TreeEntry) -> Result<bool, String> {
        let target = entry.target.as_deref().unwrap_or_default();
        let (parent_rel, name) = beneath::split(&entry.path);
        self.ensure_dir(parent_rel)?;
        match beneath::symlink_metadata(&self.root, &entry.path) {
            Ok(meta)
                if meta.file_type().is_symlink()
                    && beneath::read_link(&self.root, &entry.path).ok().as_deref()
                        == Some(target.as_bytes()) =>
            {
                return Ok(false);
            }
            Ok(meta) if meta.file_type().is_symlink() => {}
            Ok(meta) if meta.is_dir() => {
                return Err(format!(
                    "{}: a directory is where the tree has a symlink",
                    entry.path
                ));
            }
            _ => {}
        }
        let dir = beneath::open_dir(&self.root, parent_rel)
            .map_err(|e| format!("{}: {}", entry.path, beneath::why(&e)))?;
        beneath::replace_with_symlink(&dir, name, target.as_bytes())
            .map_err(|e| format!("{}: {}", entry.path, beneath::why(&e)))?;
        Ok(true)
    }
}

pub(crate) fn restore_tree(
    store: &Store,
    digest: &str,
    dest: &Path,
    options: &RestoreOptions,
) -> Result<RestoreStats, StoreError> {
    let started = Instant::now();
    let tree = store.get_tree(digest)?;
    let mut stats = RestoreStats::default();
    fs::create_dir_all(dest).map_err(io_err(dest))?;
    let dest = fs::canonicalize(dest).map_err(io_err(dest))?;
    let root = beneath::open_root(&dest).map_err(io_err(&dest))?;
    let symlinks: HashSet<&str> = tree
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Symlink)
        .map(|e| e.path.as_str())
        .collect();

    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let mut links = Vec::new();
    for entry in &tree.entries {
        if !safe_rel(&entry.path) {
            stats
                .refused
                .push(format!("{:?}: not a safe relative path", entry.path));
            continue;
        }
        match entry.kind {
            EntryKind::Dir => dirs.push(entry),
            EntryKind::File => {
                if entry.digest.as_deref().is_some_and(is_digest) {
                    files.push(entry);
                } else {
                    stats
                        .refused
                        .push(format!("{}: no valid digest", entry.path));
                }
            }
            EntryKind::Symlink => {
                let target = entry.target.as_deref().unwrap_or_default();
                if link_stays_inside(&entry.path, target, &symlinks) {
                    links.push(entry);
                } else {
                    stats.refused.push(format!(
                        "{} -> {target}: the link points outside the directory",
                        entry.path
                    ));
                }
            }
        }
    }
    stats.files = files.len() as u64;
    stats.dirs = dirs.len() as u64;
    stats.symlinks = links.len() as u64;

    let ctx = RestoreCtx {
        store,
        dest: dest.clone(),
        root,
        dirs: Mutex::new(HashSet::new()),
    };
    for dir in &dirs {
        if let Err(why) = ctx.ensure_dir(&dir.path) {
            stats.refused.push(why);
        }
    }
    let index = FileIndex::load(store, &dest);

    // 1. What differs.
    let actions: Vec<Action> = files.par_iter().map(|e| ctx.compare(e, &index)).collect();
    let mut index_updates = Vec::new();
    let mut to_write = Vec::new();
    for (entry, action) in files.iter().zip(actions) {
        match action {
            Action::Unchanged { stamp, .. } => {
                stats.unchanged_files += 1;
                if let (Some(stamp), Some(d)) = (stamp, &entry.digest) {
                    index_updates.push((entry.path.clone(), stamp, d.clone()));
                }
            }
            Action::Write { replace } => to_write.push((*entry, replace)),
            Action::Refused(why) => stats.refused.push(why),
        }
    }
    // 2. Remote stores: fetch the blobs in parallel first.
    let mut wanted: Vec<String> = to_write
        .iter()
        .filter_map(|(e, _)| e.blob().map(str::to_owned))
        .collect();
    wanted.sort();
    wanted.dedup();
    store.prefetch(&wanted)?;
    // 3. Write, in parallel: the files of a pack together, files with a blob of their own
    // one by one.
    let mut by_pack: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut units: Vec<Vec<usize>> = Vec::new();
    for (i, (entry, _)) in to_write.iter().enumerate() {
        match &entry.pack {
            Some(pack) => by_pack.entry(pack).or_default().push(i),
            None => units.push(vec![i]),
        }
    }
    units.extend(by_pack.into_values());
    let bar = Bar::bytes(to_write.iter().map(|(e, _)| e.size).sum(), "restoring");
    let written = AtomicU64::new(0);
    let done: Vec<Vec<(usize, Result<Stamp, String>)>> = largest_first(&mut units, |unit| {
        unit.iter().map(|&i| to_write[i].0.size).sum()
    })
    .map(|unit| {
        let files: Vec<(&TreeEntry, bool)> = unit.iter().map(|&i| to_write[i]).collect();
        let results = match files[0].0.pack.as_deref() {
            Some(pack) => ctx.write_packed(pack, &files, options)?,
            None => vec![ctx.write_file(files[0].0, files[0].1, options, None)?],
        };
        for ((entry, _), result) in files.iter().zip(&results) {
            bar.inc(entry.size);
            if result.is_ok() {
                written.fetch_add(entry.size, Ordering::Relaxed);
            }
        }
        Ok(unit.iter().copied().zip(results).collect())
    })
    .collect::<Result<_, StoreError>>()?;
    let mut slots: Vec<Option<Result<Stamp, String>>> = (0..to_write.len()).map(|_| None).collect();
    for (i, result) in done.into_iter().flatten() {
        slots[i] = Some(result);
    }
    let results = slots.into_iter().map(|r| r.expect("one result per file"));
    bar.finish();
    for ((entry, _), result) in to_write.iter().zip(results) {
        match result {
            Ok(stamp) => {
                stats.written_files += 1;
                index_updates.push((
                    entry.path.clone(),
                    stamp,
                    entry.digest.clone().unwrap_or_default(),
                ));
            }
            Err(why) if why.starts_with("refused ") => {
                stats.refused.push(why["refused ".len()..].to_owned())
            }
            Err(why) => stats.corrupt.push(why),
        }
    }
    stats.written_bytes = written.into_inner();
    // 4. Symlinks, then directory modes (deepest first, so a read-only directory does not
    // stop the writes inside it).
    for link in links {
        if let Err(why) = ctx.write_symlink(link) {
            stats.refused.push(why);
        }
    }
    for dir in dirs.iter().rev() {
        let mode = beneath::safe_mode(dir.mode);
        if let Ok(meta) = beneath::symlink_metadata(&ctx.root, &dir.path)
            && meta.is_dir()
            && meta.permissions().mode() & 0o7777 != mode
        {
            let _ = beneath::set_mode(&ctx.root, &dir.path, mode);
        }
    }
    // Nothing else writes `dest` during a restore: stamps taken up to now are trustworthy
    // once clearly older than now.
    index.save(index_updates, now_ns(), &tree);
    stats.elapsed = started.elapsed();
    Ok(stats)
}

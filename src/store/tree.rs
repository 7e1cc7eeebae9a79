//! Directory trees: a manifest of paths, modes, sizes, digests and symlink targets (a blob
//! itself), saved from and restored to a directory.
//!
//! Saving hashes and compresses files in parallel and uploads only the blobs the store
//! lacks; restoring writes only the files that differ, each through a temporary file and a
//! rename, and never writes a file whose content does not match its digest. Modification
//! times are not kept (reproducibility); a local index of (size, mtime, ctime, inode) →
//! digest per directory lets unchanged files skip hashing.
//!
//! Files of at most [`PACK_FILE_MAX`] bytes are kept in *packs*: blobs holding the content
//! of consecutive files (in path order), a few MiB each. A blob per small file would cost an
//! inode (in S3, a request) for little content and compress each file without the context
//! of its neighbours. Where a pack ends depends only on the paths and sizes around it
//! ([`pack_boundary`]), so adding or changing a file changes its own pack, not the packs
//! after it; and a pack whose files the index vouches for is not read again.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use cap_std::fs::Dir;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::beneath::{self, NewFileAt};
use super::codec::{self, FileSink};
use super::progress::Bar;
use super::{Payload, Store, StoreError, blob_key, io_err};
use crate::digest::{is_digest, sha256_hex, sha256_reader};

/// The `format` of tree manifests written by this version.
pub const TREE_FORMAT: &str = "wasmbuild-tree/2";
/// How every serialized tree begins (used to recognise trees among blobs).
pub(crate) const TREE_MAGIC: &[u8] = b"{\"format\":\"wasmbuild-tree/";
/// Files up to this size are read whole, hashed and compressed in memory.
const SMALL_FILE: u64 = 4 << 20;
/// Files up to this size are kept in packs; larger ones get a blob of their own.
pub const PACK_FILE_MAX: u64 = 1 << 20;
/// A pack holds at least this much content before it may end (unless its files run out)…
const PACK_MIN: u64 = 1 << 20;
/// …then ends after a file with a chance of (file size / this), so that packs hold about
/// `PACK_MIN + PACK_SPREAD` bytes…
const PACK_SPREAD: u64 = 3 << 20;
/// …and always ends once it holds this much.
const PACK_MAX: u64 = 16 << 20;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// One path of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    /// `/`-separated, relative to the tree's root.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// Permission bits (`0o755`, …); 0 for symlinks.
    pub mode: u32,
    /// Size in bytes (files).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// sha256 of the content (files); also the blob holding it, unless `pack` says
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Where the link points (symlinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The pack blob holding the content (at `offset`, `size` bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u64,
}

impl TreeEntry {
    /// The blob holding a file's content: its pack, or its own.
    pub fn blob(&self) -> Option<&str> {
        self.pack.as_deref().or(self.digest.as_deref())
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A tree manifest: entries sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub format: String,
    pub entries: Vec<TreeEntry>,
}

impl Tree {
    /// A tree of `entries` (sorted here).
    pub fn new(mut entries: Vec<TreeEntry>) -> Tree {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries.dedup_by(|a, b| a.path == b.path);
        Tree {
            format: TREE_FORMAT.into(),
            entries,
        }
    }

    /// The canonical serialization (its sha256 is the tree's digest).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("trees serialize")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Tree, String> {
        if !Self::looks_like_tree(bytes) {
            return Err("no wasmbuild-tree header".into());
        }
        let format: FormatOnly = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if format.format != TREE_FORMAT {
            return Err(format!(
                "tree format {:?} is not {TREE_FORMAT:?} (written by another version)",
                format.format
            ));
        }
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// Whether `bytes` begin like a serialized tree.
    pub fn looks_like_tree(bytes: &[u8]) -> bool {
        bytes.starts_with(TREE_MAGIC)
    }

    /// The blobs holding the files (packs and blobs of their own), with repeats.
    pub fn blob_digests(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .filter_map(TreeEntry::blob)
    }

    /// Total size of the files.
    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// Each pack of the tree by the [`pack_signature`] of its files.
    fn packs(&self) -> HashMap<String, String> {
        let mut files: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in &self.entries {
            if let (Some(pack), Some(digest)) = (&e.pack, &e.digest) {
                files.entry(pack).or_default().push(digest);
            }
        }
        files
            .into_iter()
            .map(|(pack, digests)| (pack_signature(digests), pack.to_owned()))
            .collect()
    }
}

#[derive(Deserialize)]
struct FormatOnly {
    format: String,
}

/// Identifies the content of a pack by the digests of its files, in order: the same
/// signature means the same pack bytes, so a pack can be found without reading its files.
fn pack_signature<'a>(digests: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"wasmbuild-pack/1");
    for d in digests {
        hasher.update(b" ");
        hasher.update(d.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Whether a pack holding `pack_bytes` (this file included) ends after the file at `rel` of
/// `size` bytes. Decided by the path and size alone, so that an added or changed file moves
/// at most the boundaries of its own pack.
fn pack_boundary(rel: &str, size: u64, pack_bytes: u64) -> bool {
    if pack_bytes >= PACK_MAX {
        return true;
    }
    if pack_bytes < PACK_MIN {
        return false;
    }
    let hash = Sha256::digest(rel.as_bytes());
    let draw = u64::from_le_bytes(hash[..8].try_into().expect("8 bytes"));
    // A chance of size / PACK_SPREAD (size is at most PACK_FILE_MAX < PACK_SPREAD).
    (draw as u128 * PACK_SPREAD as u128) < ((size as u128) << 64)
}

/// Which paths under a root to save: everything, or glob patterns relative to the root
/// (`node_modules/**/*`, `target`, `*.o`). A pattern that matches a directory selects
/// everything below it; `*` does not cross `/`, `**` does.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    patterns: Vec<String>,
    set: Option<GlobSet>,
}

impl Selection {
    /// Everything under the root.
    pub fn all() -> Selection {
        Selection::default()
    }

    /// The paths matching any of `patterns` (and everything below a matching directory).
    pub fn globs<I, S>(patterns: I) -> Result<Selection, StoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut normalized = Vec::new();
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            let raw = pattern.as_ref();
            let mut p = raw.trim();
            while let Some(rest) = p.strip_prefix("./") {
                p = rest;
            }
            let p = p.trim_end_matches('/');
            if p.is_empty() || p == "." {
                // The root itself: everything.
                return Ok(Selection::all());
            }
            if p.starts_with('/') || p.split('/').any(|c| c == "..") {
                return Err(StoreError::Invalid(format!(
                    "cache path {raw:?} must be relative and stay inside its directory"
                )));
            }
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| StoreError::Invalid(format!("bad path pattern {raw:?}: {e}")))?;
            builder.add(glob);
            normalized.push(p.to_owned());
        }
        if normalized.is_empty() {
            return Err(StoreError::Invalid("no paths selected".into()));
        }
        let set = builder
            .build()
            .map_err(|e| StoreError::Invalid(format!("bad path patterns: {e}")))?;
        Ok(Selection {
            patterns: normalized,
            set: Some(set),
        })
    }

    pub fn is_all(&self) -> bool {
        self.set.is_none()
    }

    /// Whether `rel` or one of its ancestors is selected.
    pub fn matches(&self, rel: &str) -> bool {
        let Some(set) = &self.set else { return true };
        if set.is_match(rel) {
            return true;
        }
        let mut end = rel.len();
        while let Some(i) = rel[..end].rfind('/') {
            if set.is_match(&rel[..i]) {
                return true;
            }
            end = i;
        }
        false
    }

    /// Directories (relative, `""` for the root) below which every selected path lies.
    fn bases(&self) -> Vec<String> {
        if self.set.is_none() {
            return vec![String::new()];
        }
        let mut bases: Vec<String> = self
            .patterns
            .iter()
            .map(|p| {
                let literal: Vec<&str> = p
                    .split('/')
                    .take_while(|c| !c.contains(['*', '?', '[', '{', '\\']))
                    .collect();
                literal.join("/")
            })
            .collect();
        bases.sort();
        bases.dedup();
        // Drop bases inside other bases.
        let mut kept: Vec<String> = Vec::new();
        for base in bases {
            let covered = kept
                .iter()
                .any(|k| k.is_empty() || base == *k || base.starts_with(&format!("{k}/")));
            if !covered {
                kept.push(base);
            }
        }
        kept
    }
}

/// Options of [`Store::save_tree_with`].
#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    /// A tree already complete in this store (e.g. the one restored before the build):
    /// blobs it names are not looked up again.
    pub base: Option<String>,
}

/// What a save did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SaveStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Total size of the files.
    pub bytes: u64,
    /// Bytes read and hashed (files the local index did not vouch for).
    pub hashed_bytes: u64,
    /// Blobs written to the store, and their compressed size.
    pub uploaded_blobs: u64,
    pub uploaded_bytes: u64,
    /// Files whose blob the store already had.
    pub skipped: u64,
    /// Files kept in packs, and the packs they are in.
    pub packed: u64,
    pub packs: u64,
    /// Paths left out (special files, unreadable files, names that are not UTF-8).
    pub ignored: Vec<String>,
    #[serde(skip)]
    pub elapsed: Duration,
}

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

// ----- the local index ---------------------------------------------------------------------

/// What identifies an unchanged file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            ino: meta.ino(),
        }
    }

    /// Whether a later change of the file is sure to change this stamp, given that it was
    /// taken when nothing else wrote the file before `checked_ns`: the file's times must be
    /// clearly older than that (else a write in the same clock tick could go unseen).
    fn trustworthy(&self, checked_ns: i64) -> bool {
        let window = if self.mtime_ns % 1_000_000_000 == 0 && self.ctime_ns % 1_000_000_000 == 0 {
            2_000_000_000 // whole-second timestamps
        } else {
            50_000_000
        };
        self.mtime_ns < checked_ns - window && self.ctime_ns < checked_ns - window
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Per directory: path → (stamp, digest), and the packs of the tree last saved or restored
/// there by [`pack_signature`]; kept on this machine only.
pub(crate) struct FileIndex {
    path: Option<PathBuf>,
    entries: HashMap<String, (Stamp, String)>,
    packs: HashMap<String, String>,
}

const INDEX_HEADER: &str = "wasmbuild-index 1";

impl FileIndex {
    /// Drops the index of `root` (a directory saved or restored once, about to go away).
    pub(crate) fn forget(store: &Store, root: &Path) {
        if let Some(path) = Self::location(store, root) {
            let _ = fs::remove_file(path);
        }
    }

    fn location(store: &Store, root: &Path) -> Option<PathBuf> {
        let canonical = fs::canonicalize(root).ok()?;
        let key = sha256_hex(canonical.as_os_str().as_encoded_bytes());
        Some(store.local_dir("index").join(&key[..40]))
    }

    fn load(store: &Store, root: &Path) -> FileIndex {
        let path = Self::location(store, root);
        let mut entries = HashMap::new();
        let mut packs = HashMap::new();
        if let Some(text) = path.as_ref().and_then(|p| fs::read_to_string(p).ok())
            && let Some(rest) = text.strip_prefix(INDEX_HEADER)
        {
            for line in rest.lines().skip(1) {
                if let Some(pack) = line.strip_prefix("pack ") {
                    if let Some((signature, digest)) = pack.split_once(' ')
                        && is_digest(digest)
                    {
                        packs.insert(signature.to_owned(), digest.to_owned());
                    }
                    continue;
                }
                let mut parts = line.splitn(6, ' ');
                let (Some(digest), Some(size), Some(mtime), Some(ctime), Some(ino), Some(rel)) = (
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                ) else {
                    continue;
                };
                let (Ok(size), Ok(mtime_ns), Ok(ctime_ns), Ok(ino)) =
                    (size.parse(), mtime.parse(), ctime.parse(), ino.parse())
                else {
                    continue;
                };
                if is_digest(digest) {
                    entries.insert(
                        rel.to_owned(),
                        (
                            Stamp {
                                size,
                                mtime_ns,
                                ctime_ns,
                                ino,
                            },
                            digest.to_owned(),
                        ),
                    );
                }
            }
        }
        FileIndex {
            path,
            entries,
            packs,
        }
    }

    fn lookup(&self, rel: &str, stamp: &Stamp) -> Option<&str> {
        match self.entries.get(rel) {
            Some((known, digest)) if known == stamp => Some(digest),
            _ => None,
        }
    }

    /// Adds `updates` (stamps taken when nothing else wrote the files before `checked_ns`;
    /// those too recent to trust are left out), keeps the packs of `tree` (the one just
    /// saved or restored), and writes the index.
    fn save(mut self, updates: Vec<(String, Stamp, String)>, checked_ns: i64, tree: &Tree) {
        let Some(path) = self.path.take() else { return };
        self.packs = tree.packs();
        for (rel, stamp, digest) in updates {
            if stamp.trustworthy(checked_ns) {
                self.entries.insert(rel, (stamp, digest));
            } else {
                self.entries.remove(&rel);
            }
        }
        let mut text = String::with_capacity(self.entries.len() * 120);
        text.push_str(INDEX_HEADER);
        text.push('\n');
        for (rel, (s, digest)) in &self.entries {
            if rel.contains('\n') {
                continue;
            }
            text.push_str(&format!(
                "{digest} {} {} {} {} {rel}\n",
                s.size, s.mtime_ns, s.ctime_ns, s.ino
            ));
        }
        for (signature, digest) in &self.packs {
            text.push_str(&format!("pack {signature} {digest}\n"));
        }
        if let Err(e) = super::local::write_atomic_beside(&path, text.as_bytes(), false) {
            tracing::debug!("could not write the file index {}: {e}", path.display());
        }
    }
}

// ----- saving ----------------------------------------------------------------------------

struct Found {
    rel: String,
    kind: EntryKind,
    mode: u32,
    stamp: Stamp,
    target: Option<String>,
}

/// The entries of `root` that `selection` selects, found without following a link (a link
/// is saved as a link, never entered, even where a cache path itself is one).
fn walk(
    root: &Dir,
    selection: &Selection,
    ignored: &mut Vec<String>,
) -> Result<Vec<Found>, StoreError> {
    let mut listed = Vec::new();
    for base in selection.bases() {
        let mut errors = Vec::new();
        match beneath::walk(root, &base, &mut errors) {
            Ok(entries) => {
                for entry in entries {
                    if !entry.rel.is_empty() && selection.matches(&entry.rel) {
                        listed.push(entry.rel);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => ignored.push(format!("{base}: {}", beneath::why(&e))),
        }
        ignored.extend(errors);
    }
    // The metadata of each path, in parallel (most of a walk's time).
    let described: Vec<Result<Found, String>> = listed
        .into_par_iter()
        .map(|rel| describe(root, rel))
        .collect();
    let mut found = Vec::with_capacity(described.len());
    for entry in described {
        match entry {
            Ok(entry) => found.push(entry),
            Err(why) => ignored.push(why),
        }
    }
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    found.dedup_by(|a, b| a.rel == b.rel);
    Ok(found)
}

/// What is at `rel` below `root` (reached without following links), or why it is left out.
fn describe(root: &Dir, rel: String) -> Result<Found, String> {
    let meta = beneath::symlink_metadata(root, &rel)
        .map_err(|e| format!("{rel}: {}", beneath::why(&e)))?;
    let file_type = meta.file_type();
    let (kind, target) = if file_type.is_file() {
        (EntryKind::File, None)
    } else if file_type.is_dir() {
        (EntryKind::Dir, None)
    } else if file_type.is_symlink() {
        let target =
            beneath::read_link(root, &rel).map_err(|e| format!("{rel}: {}", beneath::why(&e)))?;
        match String::from_utf8(target) {
            Ok(t) => (EntryKind::Symlink, Some(t)),
            Err(_) => return Err(format!("{rel}: link target is not UTF-8")),
        }
    } else {
        return Err(format!("{rel}: not a file, directory or symlink"));
    };
    Ok(Found {
        rel,
        kind,
        mode: if kind == EntryKind::Symlink {
            0
        } else {
            meta.permissions().mode() & 0o7777
        },
        stamp: Stamp::of(&meta),
        target,
    })
}

/// The outcome for one file of a save.
enum FileResult {
    /// Its digest, whether the content was read, and the compressed bytes uploaded.
    Done {
        digest: String,
        hashed: bool,
        uploaded: Option<u64>,
    },
    /// Kept in `pack` at `offset`; `hashed`: the content was read; `fresh`: this save
    /// stored the pack.
    Packed {
        digest: String,
        pack: String,
        offset: u64,
        hashed: bool,
        fresh: bool,
    },
    /// A digest known from the index, whether the store has it still to be asked (remote).
    Unverified(String),
    /// Hashed, existence still to be asked (remote).
    Hashed(String),
    /// Left out (unreadable, vanished).
    Ignored(String),
}

/// A piece of work of a save: the files of one pack, or one file with a blob of its own
/// (indices into the files, in path order).
enum Unit {
    Pack(Vec<usize>),
    Own(usize),
}

/// Splits the files into packs and files of their own (see [`pack_boundary`]).
fn plan(files: &[&Found]) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut pack = Vec::new();
    let mut bytes = 0;
    for (i, f) in files.iter().enumerate() {
        if f.stamp.size > PACK_FILE_MAX {
            units.push(Unit::Own(i));
            continue;
        }
        pack.push(i);
        bytes += f.stamp.size;
        if pack_boundary(&f.rel, f.stamp.size, bytes) {
            units.push(Unit::Pack(std::mem::take(&mut pack)));
            bytes = 0;
        }
    }
    if !pack.is_empty() {
        units.push(Unit::Pack(pack));
    }
    units
}

/// The units of a parallel save or restore, in the order threads should take them: largest
/// first and one at a time, so that no thread is left with a big one at the end while the
/// others idle (rayon would otherwise hand each thread a contiguous half).
fn largest_first<T: Sync>(
    units: &mut [T],
    size: impl Fn(&T) -> u64,
) -> impl IndexedParallelIterator<Item = &T> {
    units.sort_by_cached_key(|unit| std::cmp::Reverse(size(unit)));
    units.par_iter().with_max_len(1)
}

/// Where each file of a pack starts, given (digest, size) in order: one after another,
/// except that a file whose content is already in the pack points at that copy.
fn pack_layout<'a>(files: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<u64> {
    let mut placed: HashMap<&str, u64> = HashMap::new();
    let mut end = 0;
    files
        .into_iter()
        .map(|(digest, size)| {
            *placed.entry(digest).or_insert_with(|| {
                end += size;
                end - size
            })
        })
        .collect()
}

struct SaveCtx<'a> {
    store: &'a Store,
    /// The root saved: every file is opened below it without following links.
    root: &'a Dir,
    base: HashSet<String>,
    /// Packs by [`pack_signature`]: of the index and the base tree.
    known_packs: HashMap<String, String>,
    /// Packs this save stored, and their compressed size.
    new_packs: AtomicU64,
    new_pack_bytes: AtomicU64,
    /// Digests this save has already stored or found present.
    claimed: Mutex<HashSet<String>>,
    batch: Box<dyn super::PutBatch + 'a>,
    bar: Bar,
}

impl SaveCtx<'_> {
    /// Claims `digest` for this save: `false` if another file already did.
    fn claim(&self, digest: &str) -> bool {
        self.claimed.lock().unwrap().insert(digest.to_owned())
    }

    fn known_present(&self, digest: &str) -> bool {
        self.base.contains(digest) && !self.store.known_corrupt(digest)
    }

    /// Local store: hash (and compress and store if missing) one file in one read.
    fn save_local(&self, file: &Found, index: &FileIndex) -> Result<FileResult, StoreError> {
        if let Some(digest) = index.lookup(&file.rel, &file.stamp) {
            if self.present(digest)? {
                self.bar.inc(file.stamp.size);
                return Ok(FileResult::Done {
                    digest: digest.to_owned(),
                    hashed: false,
                    uploaded: None,
                });
            }
            // Known content, but the blob is gone: read and store it below.
            self.claimed.lock().unwrap().remove(digest);
        }
        self.hash_and_store(file, Some(true), &self.bar)
    }

    /// Whether the store has `digest` (known from the base tree, claimed by another file
    /// of this save, or asked).
    fn present(&self, digest: &str) -> Result<bool, StoreError> {
        Ok(self.known_present(digest) || !self.claim(digest) || self.store.has_blob(digest)?)
    }

    /// Saves the files of one pack. When the index vouches for every file and knows their
    /// pack, and the store has it, nothing is read; else the files are read into a new
    /// pack, stored unless the store has it.
    fn save_pack(
        &self,
        files: &[&Found],
        index: &FileIndex,
    ) -> Result<Vec<FileResult>, StoreError> {
        let known: Option<Vec<&str>> = files
            .iter()
            .map(|f| index.lookup(&f.rel, &f.stamp))
            .collect();
        if let Some(digests) = known
            && let Some(pack) = self
                .known_packs
                .get(&pack_signature(digests.iter().copied()))
            && self.present(pack)?
        {
            let offsets = pack_layout(
                digests
                    .iter()
                    .copied()
                    .zip(files.iter().map(|f| f.stamp.size)),
            );
            self.bar.inc(files.iter().map(|f| f.stamp.size).sum());
            return Ok(digests
                .into_iter()
                .zip(offsets)
                .map(|(digest, offset)| FileResult::Packed {
                    digest: digest.to_owned(),
                    pack: pack.clone(),
                    offset,
                    hashed: false,
                    fresh: false,
                })
                .collect());
        }
        BUFFERS.with(|cell| {
            let (content, compressed) = &mut *cell.borrow_mut();
            content.clear();
            content.reserve(files.iter().map(|f| f.stamp.size as usize).sum::<usize>() + 1);
            // (digest, offset) of each file read, or why it was left out.
            let mut read: Vec<Result<(String, u64), String>> = Vec::with_capacity(files.len());
            let mut placed: HashMap<String, u64> = HashMap::new();
            for f in files {
                let start = content.len();
                let outcome = beneath::open_file(self.root, &f.rel)
                    .and_then(|file| file.take(u64::MAX).read_to_end(content));
                if let Err(e) = outcome {
                    content.truncate(start);
                    read.push(Err(format!("{}: {}", f.rel, beneath::why(&e))));
                    continue;
                }
                self.bar.inc((content.len() - start) as u64);
                let digest = sha256_hex(&content[start..]);
                let offset = match placed.get(&digest) {
                    Some(&offset) => {
                        content.truncate(start);
                        offset
                    }
                    None => {
                        placed.insert(digest.clone(), start as u64);
                        start as u64
                    }
                };
                read.push(Ok((digest, offset)));
            }
            if read.iter().all(Result::is_err) {
                return Ok(read
                    .into_iter()
                    .filter_map(Result::err)
                    .map(FileResult::Ignored)
                    .collect());
            }
            let pack = sha256_hex(content);
            let fresh = self.needs_storing(&pack, true)?;
            if fresh {
                codec::compress_into(content, self.store.zstd_level(), compressed)
                    .map_err(io_err(Path::new(&pack)))?;
                self.store
                    .put_compressed(&pack, compressed, self.batch.as_ref())?;
                self.new_packs.fetch_add(1, Ordering::Relaxed);
                self.new_pack_bytes
                    .fetch_add(compressed.len() as u64, Ordering::Relaxed);
            }
            Ok(read
                .into_iter()
                .map(|r| match r {
                    Ok((digest, offset)) => FileResult::Packed {
                        digest,
                        pack: pack.clone(),
                        offset,
                        hashed: true,
                        fresh,
                    },
                    Err(why) => FileResult::Ignored(why),
                })
                .collect())
        })
    }

    /// Whether the blob needs storing: not in the base tree, not claimed by another file
    /// of this save, and (when `ask`) not in the store.
    fn needs_storing(&self, digest: &str, ask: bool) -> Result<bool, StoreError> {
        Ok(!self.known_present(digest)
            && self.claim(digest)
            && !(ask && self.store.has_blob(digest)?))
    }

    /// Reads the file and hashes it; unless `store_now` is `None`, also compresses and
    /// stores it when the store lacks the blob (asking the store when `Some(true)`).
    fn hash_and_store(
        &self,
        file: &Found,
        store_now: Option<bool>,
        bar: &Bar,
    ) -> Result<FileResult, StoreError> {
        let level = self.store.zstd_level();
        // A file that cannot be read safely (gone, swapped for a link) is left out, said why.
        let ignored =
            |e: io::Error| FileResult::Ignored(format!("{}: {}", file.rel, beneath::why(&e)));
        if file.stamp.size <= SMALL_FILE {
            return BUFFERS.with(|cell| {
                let (input, output) = &mut *cell.borrow_mut();
                if let Err(e) = beneath::open_file(self.root, &file.rel)
                    .and_then(|f| read_small(f, file.stamp.size, input))
                {
                    return Ok(ignored(e));
                }
                bar.inc(input.len() as u64);
                let digest = sha256_hex(input);
                let Some(ask) = store_now else {
                    return Ok(FileResult::Hashed(digest));
                };
                if !self.needs_storing(&digest, ask)? {
                    return Ok(FileResult::Done {
                        digest,
                        hashed: true,
                        uploaded: None,
                    });
                }
                codec::compress_into(input, level, output).map_err(io_err(Path::new(&file.rel)))?;
                self.store
                    .put_compressed(&digest, output, self.batch.as_ref())?;
                Ok(FileResult::Done {
                    digest,
                    hashed: true,
                    uploaded: Some(output.len() as u64),
                })
            });
        }
        let Some(ask) = store_now else {
            let file_handle = match beneath::open_file(self.root, &file.rel) {
                Ok(f) => f,
                Err(e) => {
                    return Ok(ignored(e));
                }
            };
            let reader = ProgressReader {
                inner: file_handle,
                bar,
            };
            return match sha256_reader(io::BufReader::with_capacity(256 * 1024, reader)) {
                Ok((digest, _)) => Ok(FileResult::Hashed(digest)),
                Err(e) => Ok(ignored(e)),
            };
        };
        // Large file: hash and compress in one pass into a temporary file.
        let source = match beneath::open_file(self.root, &file.rel) {
            Ok(f) => f,
            Err(e) => {
                return Ok(ignored(e));
            }
        };
        let label = Path::new(&file.rel);
        let compressed = match codec::compress_open_file_to_temp(
            source,
            label,
            file.stamp.size,
            level,
            self.store.local().tmp_dir(),
            bar,
        ) {
            Ok(c) => c,
            Err(StoreError::Io { path, source }) if path == label => {
                return Ok(FileResult::Ignored(format!("{}: {source}", file.rel)));
            }
            Err(e) => return Err(e),
        };
        let digest = compressed.digest.clone();
        if !self.needs_storing(&digest, ask)? {
            return Ok(FileResult::Done {
                digest,
                hashed: true,
                uploaded: None,
            });
        }
        let len = compressed.compressed_size;
        self.batch
            .put(blob_key(&digest), Payload::File(compressed.temp))?;
        Ok(FileResult::Done {
            digest,
            hashed: true,
            uploaded: Some(len),
        })
    }

    /// Remote store, after the existence checks: compress and upload a file the store
    /// lacks. Its content is hashed again; if it changed meanwhile, the new digest counts.
    fn upload_missing(&self, file: &Found) -> Result<FileResult, StoreError> {
        self.hash_and_store(file, Some(false), &Bar::hidden())
    }
}

struct ProgressReader<'a, R> {
    inner: R,
    bar: &'a Bar,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

thread_local! {
    /// Per-thread buffers for packs and small files: content read, and compressed.
    static BUFFERS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Reads the whole file into `buf` (cleared first), expecting about `size` bytes.
fn read_small(file: File, size: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    buf.reserve(size as usize + 1);
    // Through `Take`, so std asks no size hint of the file (no extra stat and seek).
    file.take(u64::MAX).read_to_end(buf)?;
    Ok(())
}

pub(crate) fn save_tree(
    store: &Store,
    root: &Path,
    selection: &Selection,
    options: &SaveOptions,
) -> Result<(String, SaveStats), StoreError> {
    let started = Instant::now();
    let checked_ns = now_ns();
    let meta = fs::metadata(root).map_err(io_err(root))?;
    if !meta.is_dir() {
        return Err(StoreError::Invalid(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    let root_dir = beneath::open_root(root).map_err(io_err(root))?;
    let mut stats = SaveStats::default();
    let found = walk(&root_dir, selection, &mut stats.ignored)?;
    let walked = started.elapsed();
    let index = FileIndex::load(store, root);
    let base_tree = options
        .base
        .as_deref()
        .and_then(|digest| match store.get_tree(digest) {
            Ok(tree) => Some(tree),
            Err(e) => {
                tracing::debug!("base tree {digest} not used: {e}");
                None
            }
        });
    let base: HashSet<String> = base_tree
        .iter()
        .flat_map(|tree| tree.blob_digests().map(str::to_owned))
        .collect();
    let files: Vec<&Found> = found.iter().filter(|f| f.kind == EntryKind::File).collect();
    let total: u64 = files.iter().map(|f| f.stamp.size).sum();
    let mut known_packs = index.packs.clone();
    if let Some(tree) = &base_tree {
        known_packs.extend(tree.packs());
    }
    let ctx = SaveCtx {
        store,
        root: &root_dir,
        base,
        known_packs,
        new_packs: AtomicU64::new(0),
        new_pack_bytes: AtomicU64::new(0),
        claimed: Mutex::new(HashSet::new()),
        batch: store.backend().batch(),
        bar: Bar::bytes(total, "saving"),
    };

    // Packs are read, hashed and stored in one pass; so are files of their own locally. In
    // a remote store, those are hashed first, and the store asked once for all that are
    // not known to be there.
    let remote = store.is_remote();
    let loaded = started.elapsed();
    let mut units = plan(&files);
    let done: Vec<Vec<(usize, FileResult)>> = largest_first(&mut units, |unit| match unit {
        Unit::Pack(members) => members.iter().map(|&i| files[i].stamp.size).sum(),
        Unit::Own(i) => files[*i].stamp.size,
    })
    .map(|unit| match unit {
        Unit::Pack(members) => {
            let group: Vec<&Found> = members.iter().map(|&i| files[i]).collect();
            let results = ctx.save_pack(&group, &index)?;
            Ok(members.iter().copied().zip(results).collect())
        }
        Unit::Own(i) => {
            let f = files[*i];
            let result = match index.lookup(&f.rel, &f.stamp) {
                _ if !remote => ctx.save_local(f, &index)?,
                Some(digest) => {
                    ctx.bar.inc(f.stamp.size);
                    FileResult::Unverified(digest.to_owned())
                }
                None => ctx.hash_and_store(f, None, &ctx.bar)?,
            };
            Ok(vec![(*i, result)])
        }
    })
    .collect::<Result<_, StoreError>>()?;
    let mut slots: Vec<Option<FileResult>> = (0..files.len()).map(|_| None).collect();
    for (i, result) in done.into_iter().flatten() {
        slots[i] = Some(result);
    }
    let mut results: Vec<FileResult> = slots
        .into_iter()
        .map(|r| r.expect("one result per file"))
        .collect();
    if remote {
        // 2. Which blobs the store lacks (concurrent lookups; the base tree's are there).
        let mut to_check: Vec<String> = Vec::new();
        for r in &results {
            if let FileResult::Unverified(d) | FileResult::Hashed(d) = r
                && !ctx.known_present(d)
            {
                to_check.push(d.clone());
            }
        }
        to_check.sort();
        to_check.dedup();
        let keys: Vec<String> = to_check.iter().map(|d| blob_key(d)).collect();
        let present: HashSet<String> = to_check
            .into_iter()
            .zip(store.backend().exists_many(&keys)?)
            .filter_map(|(d, there)| there.then_some(d))
            .collect();
        // 3. Upload what is missing.
        let missing: Vec<usize> = results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r {
                FileResult::Unverified(d) | FileResult::Hashed(d)
                    if !present.contains(d) && !ctx.known_present(d) =>
                {
                    Some(i)
                }
                _ => None,
            })
            .collect();
        let uploaded: Vec<(usize, FileResult)> = missing
            .par_iter()
            .map(|&i| ctx.upload_missing(files[i]).map(|r| (i, r)))
            .collect::<Result<_, StoreError>>()?;
        for (i, r) in uploaded {
            let hashed = matches!(results[i], FileResult::Hashed(_));
            results[i] = match r {
                FileResult::Done {
                    digest, uploaded, ..
                } => FileResult::Done {
                    digest,
                    hashed,
                    uploaded,
                },
                other => other,
            };
        }
    }
    ctx.batch.finish()?;
    ctx.bar.finish();
    let stored = started.elapsed();

    let mut entries = Vec::with_capacity(found.len());
    let mut index_updates = Vec::with_capacity(files.len());
    let mut packs = HashSet::new();
    let mut file_results = results.drain(..);
    for f in &found {
        match f.kind {
            EntryKind::Dir => {
                stats.dirs += 1;
                entries.push(TreeEntry {
                    path: f.rel.clone(),
                    kind: EntryKind::Dir,
                    mode: f.mode,
                    size: 0,
                    digest: None,
                    target: None,
                    pack: None,
                    offset: 0,
                });
            }
            EntryKind::Symlink => {
                stats.symlinks += 1;
                entries.push(TreeEntry {
                    path: f.rel.clone(),
                    kind: EntryKind::Symlink,
                    mode: 0,
                    size: 0,
                    digest: None,
                    target: f.target.clone(),
                    pack: None,
                    offset: 0,
                });
            }
            EntryKind::File => {
                let (digest, hashed, uploaded) = match file_results.next().expect("one per file") {
                    FileResult::Packed {
                        digest,
                        pack,
                        offset,
                        hashed,
                        fresh,
                    } => {
                        stats.files += 1;
                        stats.packed += 1;
                        stats.bytes += f.stamp.size;
                        if hashed {
                            stats.hashed_bytes += f.stamp.size;
                        }
                        if !fresh {
                            stats.skipped += 1;
                        }
                        packs.insert(pack.clone());
                        index_updates.push((f.rel.clone(), f.stamp, digest.clone()));
                        entries.push(TreeEntry {
                            path: f.rel.clone(),
                            kind: EntryKind::File,
                            mode: f.mode,
                            size: f.stamp.size,
                            digest: Some(digest),
                            target: None,
                            pack: Some(pack),
                            offset,
                        });
                        continue;
                    }
                    FileResult::Done {
                        digest,
                        hashed,
                        uploaded,
                    } => (digest, hashed, uploaded),
                    FileResult::Unverified(digest) => (digest, false, None),
                    FileResult::Hashed(digest) => (digest, true, None),
                    FileResult::Ignored(why) => {
                        stats.ignored.push(why);
                        continue;
                    }
                };
                stats.files += 1;
                stats.bytes += f.stamp.size;
                if hashed {
                    stats.hashed_bytes += f.stamp.size;
                }
                match uploaded {
                    Some(len) => {
                        stats.uploaded_blobs += 1;
                        stats.uploaded_bytes += len;
                    }
                    None => stats.skipped += 1,
                }
                index_updates.push((f.rel.clone(), f.stamp, digest.clone()));
                entries.push(TreeEntry {
                    path: f.rel.clone(),
                    kind: EntryKind::File,
                    mode: f.mode,
                    size: f.stamp.size,
                    digest: Some(digest),
                    target: None,
                    pack: None,
                    offset: 0,
                });
            }
        }
    }
    stats.packs = packs.len() as u64;
    stats.uploaded_blobs += ctx.new_packs.into_inner();
    stats.uploaded_bytes += ctx.new_pack_bytes.into_inner();
    let tree = Tree::new(entries);
    let bytes = tree.to_bytes();
    let digest = sha256_hex(&bytes);
    // The tree goes in after every blob it names.
    if options.base.as_deref() != Some(digest.as_str()) || !store.has_blob(&digest)? {
        store.put_blob(&bytes)?;
    }
    let manifest = started.elapsed();
    index.save(index_updates, checked_ns, &tree);
    stats.elapsed = started.elapsed();
    tracing::debug!(
        "saved {}: walk {:?}, index and base tree loaded {:?}, files {:?}, manifest {:?}, index saved {:?}",
        root.display(),
        walked,
        loaded - walked,
        stored - loaded,
        manifest - stored,
        stats.elapsed - manifest
    );
    Ok((digest, stats))
}

// ----- restoring -------------------------------------------------------------------------

/// Whether `rel` is a plain relative path (no `..`, no root, no empty parts).
fn safe_rel(rel: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn found(rel: &str, size: u64) -> Found {
        Found {
            rel: rel.into(),
            kind: EntryKind::File,
            mode: 0o644,
            stamp: Stamp {
                size,
                mtime_ns: 0,
                ctime_ns: 0,
                ino: 0,
            },
            target: None,
        }
    }

    /// The packs of `plan` as lists of paths (files of their own left out).
    fn packs_of(files: &[Found]) -> Vec<Vec<String>> {
        let refs: Vec<&Found> = files.iter().collect();
        plan(&refs)
            .into_iter()
            .filter_map(|unit| match unit {
                Unit::Pack(members) => {
                    Some(members.iter().map(|&i| files[i].rel.clone()).collect())
                }
                Unit::Own(_) => None,
            })
            .collect()
    }

    #[test]
    fn packs_end_where_paths_say_so_an_added_file_moves_only_its_own_pack() {
        let files: Vec<Found> = (0..4000)
            .map(|i| found(&format!("f{i:05}"), 5_000 + (i * 7919 % 20_000)))
            .collect();
        let packs = packs_of(&files);
        let sizes: Vec<u64> = packs
            .iter()
            .map(|p| {
                p.iter()
                    .map(|rel| files.iter().find(|f| &f.rel == rel).unwrap().stamp.size)
                    .sum()
            })
            .collect();
        assert!(packs.len() >= 5, "{sizes:?}");
        for size in &sizes[..sizes.len() - 1] {
            assert!(
                (PACK_MIN..PACK_MAX + PACK_FILE_MAX).contains(size),
                "{sizes:?}"
            );
        }
        // A file added early, and a large file (a blob of its own) in between: every pack
        // but the one with the new file stays as it was.
        let mut more: Vec<Found> = files.iter().map(|f| found(&f.rel, f.stamp.size)).collect();
        more.insert(10, found("f00009a", 12_345));
        more.insert(3000, found("f02990a", PACK_FILE_MAX + 1));
        let after = packs_of(&more);
        assert_eq!(after.len(), packs.len());
        assert_eq!(after[1..], packs[1..]);
        assert!(after[0].contains(&"f00009a".to_string()));
    }

    #[test]
    fn pack_layout_places_repeated_content_once() {
        let offsets = pack_layout([("a", 10), ("b", 5), ("a", 10), ("e", 0), ("c", 7)]);
        assert_eq!(offsets, vec![0, 10, 0, 15, 15]);
        assert_ne!(pack_signature(["a", "b"]), pack_signature(["b", "a"]));
        assert_ne!(pack_signature(["ab"]), pack_signature(["a", "b"]));
    }

    #[test]
    fn selections_match_paths_and_their_contents() {
        let s = Selection::globs(["node_modules/**/*", "target", "*.o"]).unwrap();
        assert!(s.matches("node_modules/a/b.js"));
        assert!(s.matches("target"));
        assert!(s.matches("target/debug/x"));
        assert!(s.matches("main.o"));
        assert!(!s.matches("src/main.o"));
        assert!(!s.matches("src/main.rs"));
        // `*.o` may match at the root: the whole root is walked.
        assert_eq!(s.bases(), vec![String::new()]);
        let s = Selection::globs(["a/b/**/*", "a/b/c", "d"]).unwrap();
        assert_eq!(s.bases(), vec!["a/b".to_string(), "d".to_string()]);
        assert!(Selection::globs(["../x"]).is_err());
        assert!(Selection::globs(["/abs"]).is_err());
        assert!(Selection::globs(["./"]).unwrap().is_all());
    }

    #[test]
    fn symlinks_must_stay_inside() {
        let none = HashSet::new();
        assert!(link_stays_inside("a/l", "../b", &none));
        assert!(link_stays_inside("l", "b/c", &none));
        assert!(!link_stays_inside("l", "../b", &none));
        assert!(!link_stays_inside("a/l", "/etc/passwd", &none));
        assert!(!link_stays_inside("a/l", "../../x", &none));
        // Climbing out through another link of the tree.
        let links: HashSet<&str> = ["d/x"].into_iter().collect();
        assert!(!link_stays_inside("d/y", "x/../..", &links));
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(safe_rel("a/b"));
        assert!(!safe_rel("../a"));
        assert!(!safe_rel("/a"));
        assert!(!safe_rel("a//b"));
        assert!(!safe_rel("a/./b"));
        assert!(!safe_rel(""));
    }

    #[test]
    fn trees_serialize_canonically() {
        let tree = Tree::new(vec![
            TreeEntry {
                path: "b".into(),
                kind: EntryKind::File,
                mode: 0o644,
                size: 3,
                digest: Some("ab".repeat(32)),
                target: None,
                pack: Some("cd".repeat(32)),
                offset: 7,
            },
            TreeEntry {
                path: "a".into(),
                kind: EntryKind::Symlink,
                mode: 0,
                size: 0,
                digest: None,
                target: Some("b".into()),
                pack: None,
                offset: 0,
            },
        ]);
        let bytes = tree.to_bytes();
        assert!(Tree::looks_like_tree(&bytes));
        assert_eq!(tree.entries[0].path, "a");
        assert_eq!(Tree::from_bytes(&bytes).unwrap(), tree);
        assert!(Tree::from_bytes(b"{\"entries\":[]}").is_err());
        let old = br#"{"format":"wasmbuild-tree/1","entries":[]}"#;
        assert!(
            Tree::from_bytes(old)
                .unwrap_err()
                .contains("another version")
        );
        assert_eq!(
            tree.blob_digests().collect::<Vec<_>>(),
            vec!["cd".repeat(32)]
        );
    }
}

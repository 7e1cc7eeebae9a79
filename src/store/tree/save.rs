//! Saving a directory as a tree: walk beneath the root without following links, hash and
//! compress in parallel, upload only the blobs the store lacks, then the manifest.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cap_std::fs::Dir;
use rayon::prelude::*;
use serde::Serialize;

use super::index::{FileIndex, Stamp, now_ns};
use super::manifest::{EntryKind, Tree, TreeEntry};
use super::packs::{PACK_FILE_MAX, largest_first, pack_boundary, pack_layout, pack_signature};
use super::selection::Selection;
use crate::digest::{sha256_hex, sha256_reader};
use crate::store::beneath;
use crate::store::codec;
use crate::store::progress::Bar;
use crate::store::{Payload, Store, StoreError, blob_key, io_err};

/// Files up to this size are read whole, hashed and compressed in memory.
const SMALL_FILE: u64 = 4 << 20;

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

pub(super) struct Found {
    pub(super) rel: String,
    pub(super) kind: EntryKind,
    pub(super) mode: u32,
    pub(super) stamp: Stamp,
    pub(super) target: Option<String>,
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
pub(super) enum Unit {
    Pack(Vec<usize>),
    Own(usize),
}

/// Splits the files into packs and files of their own (see [`pack_boundary`]).
pub(super) fn plan(files: &[&Found]) -> Vec<Unit> {
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
    batch: Box<dyn crate::store::PutBatch + 'a>,
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

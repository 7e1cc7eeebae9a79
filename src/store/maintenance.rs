//! Housekeeping: `verify` (re-hash every blob, check what references reach), `gc` (drop
//! what no reference reaches, and cache references by age or total size) and `stats`.
//!
//! Reachability: a reference names a digest. A blob that is a tree reaches the blobs of its
//! files. Any other blob of up to [`SCAN_LIMIT`] bytes (bundle manifests, build records,
//! …) is scanned for 64-hex-digit words naming existing blobs, which it then reaches: a
//! conservative rule that keeps whatever a manifest of any format names.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Write};
use std::time::{Duration, SystemTime};

use rayon::prelude::*;
use serde::Serialize;

use super::codec::{self, Sink};
use super::progress::Bar;
use super::tree::TREE_MAGIC;
use super::{Store, StoreError, Tree, blob_key, digest_of_blob_key};
use crate::digest::is_digest;

/// Non-tree blobs up to this (compressed) size are scanned for digests.
pub const SCAN_LIMIT: u64 = 4 << 20;
/// References under this prefix may be dropped by age or size.
pub const CACHE_PREFIX: &str = "cache/";

/// One thing `verify` found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyProblem {
    /// `corrupt`, `missing` (a reference or tree names an absent blob) or `stray` (an
    /// object that is not a blob under the blob area).
    pub kind: String,
    /// The object or reference concerned.
    pub object: String,
    pub detail: String,
}

/// What `verify` checked and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub blobs: u64,
    pub bytes: u64,
    pub refs: u64,
    pub problems: Vec<VerifyProblem>,
    /// Corrupt blobs deleted (with `repair`).
    pub repaired: u64,
    /// Installed bundles (this machine's copies of bundle files) checked.
    pub installed_bundles: u64,
    /// Tampered installed bundles removed (with `repair`; reinstalled on next use).
    pub removed_installs: u64,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// How `gc` may drop cache references.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Drop `cache/…` references not written or used for this long.
    pub max_age: Option<Duration>,
    /// Drop the oldest `cache/…` references until what stays reachable is at most this
    /// many (compressed) bytes.
    pub max_size: Option<u64>,
    /// Unreachable blobs younger than this are kept (a save in progress writes its blobs
    /// before the tree and reference that reach them). Default one hour.
    pub grace: Duration,
    /// Report only; delete nothing.
    pub dry_run: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            max_age: None,
            max_size: None,
            grace: Duration::from_secs(3600),
            dry_run: false,
        }
    }
}

/// What `gc` did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub refs_dropped: Vec<String>,
    pub blobs_kept: u64,
    pub bytes_kept: u64,
    pub blobs_deleted: u64,
    pub bytes_deleted: u64,
    /// Unreachable blobs kept because they are younger than the grace period.
    pub blobs_young: u64,
    /// Leftover temporary files removed (local stores).
    pub tmp_deleted: u64,
}

/// Counts and sizes of a store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStats {
    pub store: String,
    pub blobs: u64,
    /// Stored (compressed) bytes of the blobs.
    pub blob_bytes: u64,
    /// Number of references per first name part (`cache`, `bundles`, …).
    pub refs: BTreeMap<String, u64>,
    pub tmp_files: u64,
    pub tmp_bytes: u64,
    /// The machine-local directory, and for a remote store its read-through copies.
    pub local_dir: String,
    pub local_cache_blobs: Option<u64>,
    pub local_cache_bytes: Option<u64>,
}

/// A sink that only counts.
struct NullSink(u64);

impl Write for NullSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for NullSink {
    fn reset(&mut self) -> io::Result<()> {
        self.0 = 0;
        Ok(())
    }
}

/// Digest → (stored size, modification time) of each blob.
type BlobListing = HashMap<String, (u64, SystemTime)>;

/// All blobs: digest → (stored size, modification time). Objects under `blobs/` that are
/// not blobs are returned apart.
fn list_blobs(store: &Store) -> Result<(BlobListing, Vec<String>), StoreError> {
    let mut blobs = HashMap::new();
    let mut stray = Vec::new();
    for object in store.backend().list("blobs/")? {
        match digest_of_blob_key(&object.key) {
            Some(digest) => {
                blobs.insert(digest.to_owned(), (object.size, object.modified));
            }
            None => stray.push(object.key),
        }
    }
    Ok((blobs, stray))
}

/// The blobs one blob reaches directly (trees: their files; small blobs: the digests they
/// mention), or an error if it cannot be read.
fn children(
    store: &Store,
    digest: &str,
    size: u64,
    existing: &HashMap<String, (u64, SystemTime)>,
) -> Result<Vec<String>, StoreError> {
    let bytes = if size <= SCAN_LIMIT {
        store.get_blob(digest)?
    } else {
        // A large blob: only a tree needs reading whole.
        let head = store
            .backend()
            .get_head(&blob_key(digest), 256 * 1024)?
            .unwrap_or_default();
        let mut start = [0u8; 32];
        let mut decoder = match zstd::stream::read::Decoder::new(&head[..]) {
            Ok(d) => d,
            Err(_) => return Ok(Vec::new()),
        };
        let mut filled = 0;
        while filled < start.len() {
            match decoder.read(&mut start[filled..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => filled += n,
            }
        }
        if filled < TREE_MAGIC.len() || !start.starts_with(TREE_MAGIC) {
            return Ok(Vec::new());
        }
        store.get_blob(digest)?
    };
    if Tree::looks_like_tree(&bytes) {
        let tree = Tree::from_bytes(&bytes).map_err(|e| {
            StoreError::Invalid(format!("store object {digest} is not a valid tree: {e}"))
        })?;
        let mut out: Vec<String> = tree.blob_digests().map(str::to_owned).collect();
        out.sort();
        out.dedup();
        return Ok(out);
    }
    Ok(scan_digests(&bytes)
        .into_iter()
        .filter(|d| d != digest && existing.contains_key(d))
        .collect())
}

/// Every maximal run of exactly 64 lowercase hex digits in `bytes`.
fn scan_digests(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut run_start = None;
    for (i, b) in bytes.iter().chain(std::iter::once(&b' ')).enumerate() {
        let hex = matches!(b, b'0'..=b'9' | b'a'..=b'f');
        match (hex, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                if i - start == 64 {
                    let word = std::str::from_utf8(&bytes[start..i]).expect("hex is ASCII");
                    if is_digest(word) {
                        out.push(word.to_owned());
                    }
                }
                run_start = None;
            }
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The reachability graph from `roots`: node → children, plus the names of absent blobs
/// with where they were named from, and blobs that could not be read.
struct Graph {
    edges: HashMap<String, Vec<String>>,
    missing: Vec<(String, String)>,
    unreadable: Vec<(String, String)>,
}

fn explore(
    store: &Store,
    roots: &[(String, String)],
    existing: &HashMap<String, (u64, SystemTime)>,
) -> Graph {
    let mut graph = Graph {
        edges: HashMap::new(),
        missing: Vec::new(),
        unreadable: Vec::new(),
    };
    let mut wave: Vec<(String, String)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (from, digest) in roots {
        if !existing.contains_key(digest) {
            graph.missing.push((from.clone(), digest.clone()));
        } else if seen.insert(digest.clone()) {
            wave.push((from.clone(), digest.clone()));
        }
    }
    while !wave.is_empty() {
        let results: Vec<(String, Result<Vec<String>, StoreError>)> = wave
            .par_iter()
            .map(|(_, d)| {
                let size = existing.get(d).map_or(0, |e| e.0);
                (d.clone(), children(store, d, size, existing))
            })
            .collect();
        let mut next = Vec::new();
        for (digest, result) in results {
            match result {
                Ok(kids) => {
                    for kid in &kids {
                        if !existing.contains_key(kid) {
                            graph.missing.push((format!("tree {digest}"), kid.clone()));
                        } else if seen.insert(kid.clone()) {
                            next.push((digest.clone(), kid.clone()));
                        }
                    }
                    graph.edges.insert(digest, kids);
                }
                Err(e) => {
                    graph.unreadable.push((digest.clone(), e.to_string()));
                    graph.edges.insert(digest, Vec::new());
                }
            }
        }
        // Only small blobs and trees have children worth reading; leaves come back empty.
        wave = next;
    }
    graph
}

fn reach(graph: &Graph, root: &str, out: &mut HashSet<String>) {
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        if !out.insert(d.clone()) {
            continue;
        }
        if let Some(kids) = graph.edges.get(&d) {
            for kid in kids {
                if !out.contains(kid) {
                    stack.push(kid.clone());
                }
            }
        }
    }
}

/// Re-hashes every blob; checks that references and trees name existing blobs. With
/// `repair`, corrupt blobs are deleted (a later save writes them again).
pub(crate) fn verify(store: &Store, repair: bool) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    let (blobs, stray) = list_blobs(store)?;
    for key in stray {
        report.problems.push(VerifyProblem {
            kind: "stray".into(),
            object: key,
            detail: "not a blob name (blobs/<2 hex>/<sha256>.zst)".into(),
        });
    }
    report.blobs = blobs.len() as u64;
    report.bytes = blobs.values().map(|b| b.0).sum();
    let mut digests: Vec<&String> = blobs.keys().collect();
    digests.sort();
    let bar = Bar::items(digests.len() as u64, "verifying");
    let mut corrupt: Vec<(String, String)> = Vec::new();
    if store.is_remote() {
        // Download in chunks into a scratch directory, then check in parallel.
        let scratch = tempfile::tempdir_in(store.local().tmp_dir())
            .map_err(super::io_err(store.local().tmp_dir()))?;
        for chunk in digests.chunks(256) {
            let items: Vec<(String, std::path::PathBuf)> = chunk
                .iter()
                .map(|d| (blob_key(d), scratch.path().join(d.as_str())))
                .collect();
            store
                .backend()
                .download_many(&items, store.local().tmp_dir())?;
            let bad: Vec<(String, String)> = chunk
                .par_iter()
                .filter_map(|d| {
                    let path = scratch.path().join(d.as_str());
                    let result = codec::decode_file_verified(&path, d, &mut NullSink(0), false);
                    let _ = std::fs::remove_file(&path);
                    bar.inc(1);
                    match result {
                        Ok(_) => None,
                        Err(StoreError::Corrupt { reason, .. }) => Some(((*d).clone(), reason)),
                        Err(StoreError::Missing(_)) => None, // deleted meanwhile
                        Err(e) => Some(((*d).clone(), e.to_string())),
                    }
                })
                .collect();
            corrupt.extend(bad);
        }
    } else {
        corrupt = digests
            .par_iter()
            .filter_map(|d| {
                let path = store.local().blob_path(d);
                let result = codec::decode_file_verified(&path, d, &mut NullSink(0), false);
                bar.inc(1);
                match result {
                    Ok(_) => None,
                    Err(StoreError::Corrupt { reason, .. }) => Some(((*d).clone(), reason)),
                    Err(StoreError::Missing(_)) => None,
                    Err(e) => Some(((*d).clone(), e.to_string())),
                }
            })
            .collect();
    }
    bar.finish();
    corrupt.sort();
    let corrupt_set: HashSet<String> = corrupt.iter().map(|(d, _)| d.clone()).collect();
    for (digest, reason) in &corrupt {
        store.note_corrupt(digest, reason);
        report.problems.push(VerifyProblem {
            kind: "corrupt".into(),
            object: blob_key(digest),
            detail: reason.clone(),
        });
    }

    // What the references reach, leaving out corrupt blobs (they are unreadable anyway).
    let refs = store.list_refs_recursive("")?;
    report.refs = refs.len() as u64;
    let roots: Vec<(String, String)> = refs
        .iter()
        .filter(|r| is_digest(&r.value))
        .map(|r| (format!("ref {}", r.name), r.value.clone()))
        .collect();
    let healthy: HashMap<String, (u64, SystemTime)> = blobs
        .iter()
        .filter(|(d, _)| !corrupt_set.contains(*d))
        .map(|(d, v)| (d.clone(), *v))
        .collect();
    let graph = explore(store, &roots, &blobs);
    for (from, digest) in graph.missing {
        report.problems.push(VerifyProblem {
            kind: "missing".into(),
            object: digest,
            detail: format!("named by {from} but not in the store"),
        });
    }
    for (digest, why) in graph.unreadable {
        if !corrupt_set.contains(&digest) && healthy.contains_key(&digest) {
            report.problems.push(VerifyProblem {
                kind: "corrupt".into(),
                object: blob_key(&digest),
                detail: why,
            });
        }
    }
    if repair && !corrupt.is_empty() {
        let keys: Vec<String> = corrupt.iter().map(|(d, _)| blob_key(d)).collect();
        store.backend().delete_many(&keys)?;
        report.repaired = keys.len() as u64;
    }
    verify_installed(store, repair, &mut report)?;
    Ok(report)
}

/// The installed bundles of this machine, every file re-hashed against its manifest: a file
/// changed on disk, missing, or added is reported as `tampered`, naming the file. With
/// `repair`, a tampered install is removed (the next use reinstalls it from the store).
fn verify_installed(
    store: &Store,
    repair: bool,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    let bundles = store.local_dir("bundles");
    report.installed_bundles = std::fs::read_dir(&bundles)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter(|e| is_digest(&e.file_name().to_string_lossy()))
                .count() as u64
        })
        .unwrap_or(0);
    let runtimes = crate::runtime::Runtimes::new(store.clone());
    let tampered = runtimes
        .verify_installed(repair)
        .map_err(|e| StoreError::Io {
            path: bundles.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    for (name, dir, problems) in &tampered {
        for problem in problems {
            report.problems.push(VerifyProblem {
                kind: "tampered".into(),
                object: format!(
                    "installed bundle {name} ({}): {}",
                    dir.display(),
                    problem.path
                ),
                detail: problem.reason.clone(),
            });
        }
    }
    if repair {
        report.removed_installs = tampered.len() as u64;
    }
    Ok(())
}

pub(crate) fn gc(store: &Store, options: &GcOptions) -> Result<GcReport, StoreError> {
    let mut report = GcReport::default();
    let now = SystemTime::now();
    // Blobs first: anything written after this listing is not considered for deletion.
    let (blobs, _stray) = list_blobs(store)?;
    let refs = store.list_refs_recursive("")?;

    let mut dropped: HashSet<String> = HashSet::new();
    if let Some(max_age) = options.max_age {
        for r in &refs {
            if r.name.starts_with(CACHE_PREFIX)
                && now.duration_since(r.modified).unwrap_or_default() > max_age
            {
                dropped.insert(r.name.clone());
            }
        }
    }
    let roots: Vec<(String, String)> = refs
        .iter()
        .filter(|r| is_digest(&r.value))
        .map(|r| (r.name.clone(), r.value.clone()))
        .collect();
    let graph = explore(store, &roots, &blobs);

    let mut per_ref: HashMap<&str, HashSet<String>> = HashMap::new();
    for (name, digest) in &roots {
        if dropped.contains(name) || !blobs.contains_key(digest) {
            continue;
        }
        let mut set = HashSet::new();
        reach(&graph, digest, &mut set);
        per_ref.insert(name.as_str(), set);
    }
    if let Some(max_size) = options.max_size {
        let mut count: HashMap<String, u32> = HashMap::new();
        for set in per_ref.values() {
            for d in set {
                *count.entry(d.clone()).or_default() += 1;
            }
        }
        let size_of = |d: &str| blobs.get(d).map_or(0, |b| b.0);
        let mut total: u64 = count.keys().map(|d| size_of(d)).sum();
        let mut cache_refs: Vec<&super::RefInfo> = refs
            .iter()
            .filter(|r| r.name.starts_with(CACHE_PREFIX) && per_ref.contains_key(r.name.as_str()))
            .collect();
        cache_refs.sort_by_key(|r| r.modified);
        for r in cache_refs {
            if total <= max_size {
                break;
            }
            dropped.insert(r.name.clone());
            if let Some(set) = per_ref.get(r.name.as_str()) {
                for d in set {
                    let c = count.get_mut(d).expect("counted");
                    *c -= 1;
                    if *c == 0 {
                        total = total.saturating_sub(size_of(d));
                    }
                }
            }
            per_ref.remove(r.name.as_str());
        }
    }
    // Counters and other non-digest references reach nothing; every kept digest reference
    // keeps what it reaches.
    let mut live: HashSet<String> = HashSet::new();
    for set in per_ref.values() {
        live.extend(set.iter().cloned());
    }
    let mut dropped: Vec<String> = dropped.into_iter().collect();
    dropped.sort();
    if !options.dry_run {
        for name in &dropped {
            store.delete_ref(name)?;
        }
    }
    report.refs_dropped = dropped;

    let mut doomed = Vec::new();
    for (digest, (size, modified)) in &blobs {
        if live.contains(digest) {
            report.blobs_kept += 1;
            report.bytes_kept += size;
        } else if now.duration_since(*modified).unwrap_or_default() < options.grace {
            report.blobs_young += 1;
            report.blobs_kept += 1;
            report.bytes_kept += size;
        } else {
            report.blobs_deleted += 1;
            report.bytes_deleted += size;
            doomed.push(blob_key(digest));
        }
    }
    if !options.dry_run {
        store.backend().delete_many(&doomed)?;
        if !store.is_remote() {
            report.tmp_deleted = store.local().clean_temporaries(options.grace);
        }
    }
    Ok(report)
}

pub(crate) fn stats(store: &Store) -> Result<StoreStats, StoreError> {
    let mut stats = StoreStats {
        store: store.spec(),
        local_dir: store.root().display().to_string(),
        ..Default::default()
    };
    for object in store.backend().list("blobs/")? {
        if digest_of_blob_key(&object.key).is_some() {
            stats.blobs += 1;
            stats.blob_bytes += object.size;
        }
    }
    for object in store.backend().list("refs/")? {
        let name = object.key.trim_start_matches("refs/");
        let first = name.split('/').next().unwrap_or_default().to_owned();
        *stats.refs.entry(first).or_default() += 1;
    }
    if let Ok(entries) = std::fs::read_dir(store.local().tmp_dir()) {
        for entry in entries.flatten() {
            stats.tmp_files += 1;
            stats.tmp_bytes += entry.metadata().map_or(0, |m| m.len());
        }
    }
    if store.is_remote() {
        let mut blobs = 0;
        let mut bytes = 0;
        for object in super::ObjectBackend::list(store.local(), "blobs/")? {
            blobs += 1;
            bytes += object.size;
        }
        stats.local_cache_blobs = Some(blobs);
        stats.local_cache_bytes = Some(bytes);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_found_in_text() {
        let a = "a".repeat(64);
        let b = "0123456789abcdef".repeat(4);
        let text = format!(
            "sha256 = \"{a}\"\nx{b}\n{}\n{}",
            "c".repeat(65),
            "d".repeat(63)
        );
        assert_eq!(scan_digests(text.as_bytes()), vec![b, a]);
    }
}

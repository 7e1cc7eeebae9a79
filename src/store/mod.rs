//! The content-addressed store: blobs keyed by the sha256 of their (uncompressed) content,
//! kept zstd-compressed; directory trees as manifests that are blobs themselves ([`Tree`]);
//! and named references (cache keys, artifact sets, bundles, build counters and records) that
//! point at a digest.
//!
//! One [`Store`] type fronts two backends behind the [`ObjectBackend`] trait: a local
//! directory and S3 (any S3-compatible endpoint). Both use the same key layout:
//!
//! ```text
//! blobs/<first 2 hex digits>/<sha256>.zst   zstd frames of the content
//! refs/<name>                               the digest (or counter value) as text
//! ```
//!
//! Every read verifies the digest: an object whose content does not hash to its name is
//! reported as [`StoreError::Corrupt`], treated as missing and never returned or restored.
//! Every write is atomic: a temporary file renamed into place locally, a whole PUT or a
//! completed multipart upload in S3, so a reader (or a process killed mid-save) never
//! leaves half an object behind under a valid name.
//!
//! Whatever the store, the machine-local directory ([`Store::local_dir`]) keeps state that
//! never leaves the machine (compiled code, installed bundles, file indexes) and, for a
//! remote store, a read-through copy of the blobs read from it.

mod atomic;
mod backend;
pub mod beneath;
mod codec;
mod error;
mod local;
mod maintenance;
mod progress;
mod s3;
mod tree;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::digest::{is_digest, sha256_hex};

pub use backend::{ObjectBackend, ObjectInfo, Payload, PutBatch};
pub use error::StoreError;
pub(crate) use error::io_err;
pub use local::LocalBackend;
pub(crate) use local::write_atomic_beside;
pub use maintenance::{GcOptions, GcReport, StoreStats, VerifyProblem, VerifyReport};
pub use s3::{S3Backend, S3Config};
pub(crate) use tree::link_stays_inside;
pub use tree::{
    EntryKind, PACK_FILE_MAX, RestoreOptions, RestoreStats, SaveOptions, SaveStats, Selection,
    Tree, TreeEntry,
};

/// Default zstd compression level for new blobs.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// The old name of [`Store`], from when the store was a local directory only.
pub type LocalStore = Store;

fn check_digest(digest: &str) -> Result<(), StoreError> {
    if is_digest(digest) {
        Ok(())
    } else {
        Err(StoreError::BadDigest(digest.into()))
    }
}

/// The key of blob `digest` in any backend.
pub fn blob_key(digest: &str) -> String {
    format!("blobs/{}/{digest}.zst", &digest[..2.min(digest.len())])
}

/// The digest named by a blob key, if `key` is one.
pub fn digest_of_blob_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("blobs/")?;
    let (dir, file) = rest.split_once('/')?;
    let digest = file.strip_suffix(".zst")?;
    (is_digest(digest) && dir == &digest[..2]).then_some(digest)
}

/// Checks a reference name: `/`-separated parts of `[A-Za-z0-9._-@+:]`, none starting
/// with `.`.
pub fn check_ref_name(name: &str) -> Result<(), StoreError> {
    let valid = !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-@+:".contains(c))
        });
    if valid {
        Ok(())
    } else {
        Err(StoreError::BadRefName(name.into()))
    }
}

/// The object holding chunk `seq` of stream `name` (zero-padded: listings sort in order).
fn stream_key(name: &str, seq: u64) -> String {
    format!("streams/{name}/{seq:010}")
}

fn ref_key(name: &str) -> Result<String, StoreError> {
    check_ref_name(name)?;
    Ok(format!("refs/{name}"))
}

/// A reference and when it was last written (or touched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefInfo {
    /// The full name, e.g. `cache/myproject/abc`.
    pub name: String,
    /// What it points at (a digest, or a counter's value).
    pub value: String,
    pub modified: SystemTime,
}

/// How to open a store.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// zstd level for new blobs (default [`DEFAULT_ZSTD_LEVEL`], or `$WASMBUILD_ZSTD_LEVEL`).
    pub zstd_level: Option<i32>,
    /// The machine-local directory when the store is remote (default: `$WASMBUILD_LOCAL_DIR`,
    /// else `wasmbuild` in the user's cache directory).
    pub local_root: Option<PathBuf>,
    /// S3 settings; default: [`S3Config::from_env`].
    pub s3: Option<S3Config>,
    /// Do not keep read-through copies of remote blobs on this machine.
    pub no_local_cache: bool,
}

/// What a store spec names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl StoreSpec {
    /// Parses `DIR` or `s3://BUCKET[/PREFIX]`.
    pub fn parse(spec: &OsStr) -> Result<StoreSpec, StoreError> {
        let bad = |message: &str| StoreError::BadSpec {
            spec: spec.to_string_lossy().into_owned(),
            message: message.into(),
        };
        match spec.to_str() {
            Some(text) if text.starts_with("s3://") => {
                let rest = &text["s3://".len()..];
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(bad("no bucket: expected s3://BUCKET[/PREFIX]"));
                }
                let prefix = prefix.trim_matches('/').to_owned();
                if prefix.split('/').any(|p| p == "." || p == "..")
                    || prefix.contains("//")
                    || prefix.chars().any(|c| c.is_control())
                {
                    return Err(bad("the prefix must be /-separated names"));
                }
                Ok(StoreSpec::S3 {
                    bucket: bucket.into(),
                    prefix,
                })
            }
            Some(text) if text.contains("://") => Err(bad(
                "unknown scheme: a store is a directory or s3://BUCKET/PREFIX",
            )),
            _ if spec.is_empty() => Err(bad("empty")),
            _ => Ok(StoreSpec::Local(PathBuf::from(spec))),
        }
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Local(path) => write!(f, "{}", path.display()),
            StoreSpec::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreSpec::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// The store: blobs, trees and references in a backend, plus this machine's local directory.
/// Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    spec: StoreSpec,
    backend: Arc<dyn ObjectBackend>,
    /// The machine-local store (the same directory as `backend` when the store is local).
    local: Arc<LocalBackend>,
    remote: bool,
    cache_remote: bool,
    level: i32,
    /// Digests found corrupt (or missing) by this process: treated as missing, so a save
    /// writes them again.
    corrupt: Mutex<HashSet<String>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("spec", &self.inner.spec.to_string())
            .field("local", &self.inner.local.root())
            .finish()
    }
}

impl Store {
    /// Opens the store named by `spec`: a local directory (created if needed) or
    /// `s3://BUCKET/PREFIX` (configured from the `AWS_*` variables and `AWS_PROFILE`).
    pub fn open(spec: impl AsRef<OsStr>) -> Result<Self, StoreError> {
        Self::open_with(spec, StoreOptions::default())
    }

    /// [`Store::open`] with explicit options.
    pub fn open_with(spec: impl AsRef<OsStr>, options: StoreOptions) -> Result<Self, StoreError> {
        let spec = StoreSpec::parse(spec.as_ref())?;
        let level = options
            .zstd_level
            .or_else(|| {
                std::env::var("WASMBUILD_ZSTD_LEVEL")
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(DEFAULT_ZSTD_LEVEL)
            .clamp(1, 22);
        let (backend, local, remote): (Arc<dyn ObjectBackend>, Arc<LocalBackend>, bool) =
            match &spec {
                StoreSpec::Local(root) => {
                    let local = Arc::new(LocalBackend::open(root)?);
                    (local.clone(), local, false)
                }
                StoreSpec::S3 { bucket, prefix } => {
                    let config = match options.s3 {
                        Some(config) => config,
                        None => S3Config::from_env(),
                    };
                    let s3 = S3Backend::new(bucket, prefix, &config)?;
                    let local_root = options.local_root.unwrap_or_else(Self::default_local_root);
                    let local = Arc::new(LocalBackend::open(local_root)?);
                    (Arc::new(s3), local, true)
                }
            };
        Ok(Store {
            inner: Arc::new(Inner {
                spec,
                backend,
                local,
                remote,
                cache_remote: !options.no_local_cache,
                level,
                corrupt: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The default store: `$WASMBUILD_STORE`, else `wasmbuild/` in the user's cache directory.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("WASMBUILD_STORE") {
            return dir.into();
        }
        Self::default_local_root()
    }

    /// The machine-local directory used beside a remote store: `$WASMBUILD_LOCAL_DIR`, else
    /// `wasmbuild/` in the user's cache directory.
    pub fn default_local_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("WASMBUILD_LOCAL_DIR") {
            return dir.into();
        }
        dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("wasmbuild")
    }

    /// What this store is, as given (`/path` or `s3://bucket/prefix`).
    pub fn spec(&self) -> String {
        self.inner.spec.to_string()
    }

    /// Whether the store is remote (S3).
    pub fn is_remote(&self) -> bool {
        self.inner.remote
    }

    /// The backend holding blobs and references.
    pub fn backend(&self) -> &Arc<dyn ObjectBackend> {
        &self.inner.backend
    }

    /// The machine-local directory (the store's own directory when it is local).
    pub fn root(&self) -> &Path {
        self.inner.local.root()
    }

    /// Directory for machine-local state of one kind (e.g. `compiled`, `bundles`); always on
    /// this machine, whatever the store.
    pub fn local_dir(&self, kind: &str) -> PathBuf {
        self.inner.local.root().join(kind)
    }

    /// zstd level used for new blobs.
    pub fn zstd_level(&self) -> i32 {
        self.inner.level
    }

    pub(crate) fn local(&self) -> &LocalBackend {
        &self.inner.local
    }

    pub(crate) fn note_corrupt(&self, digest: &str, reason: &str) {
        tracing::warn!("store object {digest} is corrupt ({reason}); treating it as missing");
        self.inner.corrupt.lock().unwrap().insert(digest.to_owned());
    }

    /// A blob found missing: a base tree naming it no longer vouches for it.
    pub(crate) fn note_missing(&self, digest: &str) {
        self.inner.corrupt.lock().unwrap().insert(digest.to_owned());
    }

    /// A blob found corrupt is deleted before it is written again: content-addressed puts
    /// keep an existing object, and a corrupt one must not be kept.
    pub(crate) fn drop_if_corrupt(&self, digest: &str) -> Result<(), StoreError> {
        if self.known_corrupt(digest) {
            match self.inner.backend.delete(&blob_key(digest)) {
                Ok(()) => {}
                Err(e) if e.is_missing() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A blob written whole again is no longer corrupt.
    pub(crate) fn forget_corrupt(&self, digest: &str) {
        self.inner.corrupt.lock().unwrap().remove(digest);
    }

    /// Whether this process found blob `digest` corrupt or missing.
    pub(crate) fn known_corrupt(&self, digest: &str) -> bool {
        self.inner.corrupt.lock().unwrap().contains(digest)
    }

    // ----- blobs -------------------------------------------------------------------------

    /// Whether the store holds blob `digest` (not verified; a blob this process found
    /// corrupt counts as absent).
    pub fn has_blob(&self, digest: &str) -> Result<bool, StoreError> {
        check_digest(digest)?;
        if self.known_corrupt(digest) {
            return Ok(false);
        }
        self.inner.backend.exists(&blob_key(digest))
    }

    /// Stores `bytes`, returning their digest. Storing what is already there is free.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let digest = sha256_hex(bytes);
        if !self.has_blob(&digest)? {
            let compressed = codec::compress_bytes(bytes, self.inner.level)
                .map_err(io_err(Path::new(&digest)))?;
            self.drop_if_corrupt(&digest)?;
            self.inner
                .backend
                .put(&blob_key(&digest), Payload::Bytes(compressed.into()))?;
            self.forget_corrupt(&digest);
        }
        Ok(digest)
    }

    /// Stores an already compressed blob: straight into a local store, else through `batch`.
    pub(crate) fn put_compressed(
        &self,
        digest: &str,
        compressed: &[u8],
        batch: &dyn PutBatch,
    ) -> Result<(), StoreError> {
        let key = blob_key(digest);
        self.drop_if_corrupt(digest)?;
        if self.inner.remote {
            batch.put(
                key,
                Payload::Bytes(bytes::Bytes::copy_from_slice(compressed)),
            )?;
        } else {
            self.inner.local.put_slice(&key, compressed)?;
        }
        self.forget_corrupt(digest);
        Ok(())
    }

    /// Stores the file at `path` (streamed: hashed and compressed in one pass, with
    /// multithreaded zstd for large files), returning its digest and size.
    pub fn put_file(&self, path: &Path) -> Result<(String, u64), StoreError> {
        let size = fs::metadata(path).map_err(io_err(path))?.len();
        let bar = progress::Bar::bytes(size, "compressing");
        let out = codec::compress_file_to_temp(
            path,
            size,
            self.inner.level,
            self.inner.local.tmp_dir(),
            &bar,
        )?;
        bar.finish();
        if !self.has_blob(&out.digest)? {
            self.drop_if_corrupt(&out.digest)?;
            self.inner
                .backend
                .put(&blob_key(&out.digest), Payload::File(out.temp))?;
            self.forget_corrupt(&out.digest);
        }
        Ok((out.digest, out.size))
    }

    /// Reads and verifies a blob. A blob whose content does not hash to its name is
    /// reported as corrupt and never returned.
    pub fn get_blob(&self, digest: &str) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        self.read_blob(digest, &mut out, false)?;
        Ok(out)
    }

    /// Writes a verified blob to `dest` (atomically); the file appears only if it is whole
    /// and its digest matches.
    pub fn get_blob_to_file(&self, digest: &str, dest: &Path) -> Result<u64, StoreError> {
        let mut tmp = local::temp_beside(dest)?;
        let size = {
            let mut sink = codec::FileSink::new(tmp.as_file_mut());
            let size = self.read_blob(digest, &mut sink, true)?;
            sink.finish().map_err(io_err(dest))?;
            size
        };
        codec::set_mode(tmp.as_file(), 0o644).map_err(io_err(dest))?;
        tmp.persist(dest).map_err(|e| io_err(dest)(e.error))?;
        Ok(size)
    }

    /// Decodes blob `digest` into `out`, verifying it; returns its size. Nothing written to
    /// `out` may be used unless this returns `Ok` (`out` is reset before a retry).
    pub(crate) fn read_blob(
        &self,
        digest: &str,
        out: &mut dyn codec::Sink,
        show_progress: bool,
    ) -> Result<u64, StoreError> {
        check_digest(digest)?;
        let local_path = self.inner.local.blob_path(digest);
        let corrupt = |e: StoreError| {
            match &e {
                StoreError::Corrupt { digest, reason } => self.note_corrupt(digest, reason),
                StoreError::Missing(digest) => self.note_missing(digest),
                _ => {}
            }
            e
        };
        if !self.inner.remote {
            return codec::decode_file_verified(&local_path, digest, out, show_progress)
                .map_err(corrupt);
        }
        // A remote store: the local read-through copy first (a bad copy is dropped).
        match codec::decode_file_verified(&local_path, digest, out, show_progress) {
            Ok(size) => return Ok(size),
            Err(StoreError::Corrupt { reason, .. }) => {
                tracing::warn!("local copy of {digest} is corrupt ({reason}); fetching it again");
                let _ = fs::remove_file(&local_path);
                out.reset().map_err(io_err(&local_path))?;
            }
            Err(StoreError::Missing(_)) => {}
            Err(e) => return Err(e),
        }
        let temp = self
            .fetch_remote_blob(digest, show_progress)
            .map_err(corrupt)?;
        let size = codec::decode_file_verified(temp.as_ref(), digest, out, show_progress)
            .map_err(corrupt)?;
        if self.inner.cache_remote {
            let _ = self.inner.local.adopt_blob(temp, digest);
        }
        Ok(size)
    }

    /// Downloads remote blob `digest` (compressed, unverified) into a local temporary file.
    fn fetch_remote_blob(
        &self,
        digest: &str,
        show_progress: bool,
    ) -> Result<tempfile::TempPath, StoreError> {
        let tmp_dir = self.inner.local.tmp_dir();
        let mut tmp = tempfile::NamedTempFile::new_in(tmp_dir).map_err(io_err(tmp_dir))?;
        let found = self.inner.backend.get_to_writer(
            &blob_key(digest),
            tmp.as_file_mut(),
            show_progress,
        )?;
        if !found {
            return Err(StoreError::Missing(digest.into()));
        }
        Ok(tmp.into_temp_path())
    }

    /// Makes sure every blob in `digests` has a local copy (remote stores: downloaded in
    /// parallel into the read-through cache; unverified until read). Local stores: no-op.
    pub(crate) fn prefetch(&self, digests: &[String]) -> Result<(), StoreError> {
        if !self.inner.remote {
            return Ok(());
        }
        let wanted: Vec<String> = digests
            .iter()
            .filter(|d| !self.inner.local.blob_path(d).is_file())
            .cloned()
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let keys: Vec<(String, PathBuf)> = wanted
            .iter()
            .map(|d| (blob_key(d), self.inner.local.blob_path(d)))
            .collect();
        self.inner
            .backend
            .download_many(&keys, self.inner.local.tmp_dir())
    }

    /// Deletes blob `digest` from the store (used by gc and verify --repair).
    pub fn delete_blob(&self, digest: &str) -> Result<(), StoreError> {
        check_digest(digest)?;
        self.inner.backend.delete(&blob_key(digest))
    }

    // ----- references --------------------------------------------------------------------

    /// Points the reference `name` (e.g. `bundles/base`) at `digest` (or any short value).
    pub fn set_ref(&self, name: &str, digest: &str) -> Result<(), StoreError> {
        let key = ref_key(name)?;
        self.inner.backend.put(
            &key,
            Payload::Bytes(format!("{digest}\n").into_bytes().into()),
        )
    }

    /// Points `name` at `digest` only if `name` does not exist yet (immutable cache keys).
    /// Returns whether this call created it. Atomic locally; in S3 a conditional PUT
    /// (`If-None-Match: *`), best effort where the server ignores it.
    pub fn create_ref_if_absent(&self, name: &str, digest: &str) -> Result<bool, StoreError> {
        let key = ref_key(name)?;
        self.inner
            .backend
            .put_if_absent(&key, format!("{digest}\n").into_bytes().into())
    }

    /// The digest the reference `name` points at, if it exists.
    pub fn get_ref(&self, name: &str) -> Result<Option<String>, StoreError> {
        let key = ref_key(name)?;
        Ok(self
            .inner
            .backend
            .get(&key)?
            .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned()))
    }

    /// Removes the reference `name` (absent is fine).
    pub fn delete_ref(&self, name: &str) -> Result<(), StoreError> {
        let key = ref_key(name)?;
        self.inner.backend.delete(&key)
    }

    /// Marks the reference `name` as used now (gc by age counts from the last use).
    pub fn touch_ref(&self, name: &str) -> Result<(), StoreError> {
        let key = ref_key(name)?;
        self.inner.backend.touch(&key)
    }

    /// Names of the references directly below `prefix` (e.g. `bundles`), sorted.
    pub fn list_refs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let key = ref_key(prefix)?;
        let mut names = self.inner.backend.list_children(&format!("{key}/"))?;
        names.sort();
        Ok(names)
    }

    /// Names of the reference directories directly below `prefix` (e.g. the projects
    /// under `builds`), sorted.
    pub fn list_ref_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let key = ref_key(prefix)?;
        let mut names = self.inner.backend.list_dirs(&format!("{key}/"))?;
        names.sort();
        Ok(names)
    }

    /// Every reference whose name starts with `prefix` (`""`: all), with its value and
    /// modification time, sorted by name.
    pub fn list_refs_recursive(&self, prefix: &str) -> Result<Vec<RefInfo>, StoreError> {
        let objects = self.inner.backend.list(&format!("refs/{prefix}"))?;
        let mut names: Vec<(String, SystemTime)> = objects
            .into_iter()
            .filter_map(|o| {
                let name = o.key.strip_prefix("refs/")?.to_owned();
                check_ref_name(&name).ok()?;
                Some((name, o.modified))
            })
            .collect();
        names.sort();
        let values = self.inner.backend.get_many(
            &names
                .iter()
                .map(|(n, _)| format!("refs/{n}"))
                .collect::<Vec<_>>(),
        )?;
        Ok(names
            .into_iter()
            .zip(values)
            .filter_map(|((name, modified), value)| {
                Some(RefInfo {
                    name,
                    value: String::from_utf8_lossy(&value?).trim().to_owned(),
                    modified,
                })
            })
            .collect())
    }

    /// The next value of counter `name` (1, 2, …), e.g. build numbers per project. Kept
    /// as the reference `counters/<name>`. Serialized on this machine by a lock file; in
    /// S3 also a compare-and-swap on the object's ETag (`If-Match`) against other hosts.
    pub fn next_counter(&self, name: &str) -> Result<u64, StoreError> {
        let key = ref_key(&format!("counters/{name}"))?;
        if self.inner.remote {
            let _lock = self.inner.local.lock(&format!("remote-{key}"))?;
            return self.inner.backend.increment(&key);
        }
        self.inner.backend.increment(&key)
    }

    // ----- streams -------------------------------------------------------------------------

    /// Appends chunk `seq` (0, 1, …) to the stream `name` (a running build's log, read
    /// live by `wasmbuild serve`). Chunks are objects `streams/<name>/<seq>`: plain bytes,
    /// not blobs, written once each, so a reader on another host sees whole chunks only.
    pub fn put_stream_chunk(&self, name: &str, seq: u64, bytes: &[u8]) -> Result<(), StoreError> {
        check_ref_name(name)?;
        self.inner.backend.put(
            &stream_key(name, seq),
            Payload::Bytes(bytes::Bytes::copy_from_slice(bytes)),
        )
    }

    /// The chunks of stream `name` from `from` on, in order, up to the first gap (a chunk
    /// being written).
    pub fn read_stream(&self, name: &str, from: u64) -> Result<Vec<bytes::Bytes>, StoreError> {
        check_ref_name(name)?;
        let mut seqs: Vec<u64> = self
            .inner
            .backend
            .list_children(&format!("streams/{name}/"))?
            .iter()
            .filter_map(|child| child.parse().ok())
            .filter(|&seq| seq >= from)
            .collect();
        seqs.sort_unstable();
        let contiguous = seqs
            .iter()
            .zip(from..)
            .take_while(|(seq, expected)| **seq == *expected)
            .count();
        let keys: Vec<String> = seqs[..contiguous]
            .iter()
            .map(|&seq| stream_key(name, seq))
            .collect();
        let chunks = self.inner.backend.get_many(&keys)?;
        Ok(chunks.into_iter().map_while(|chunk| chunk).collect())
    }

    /// Removes every chunk of stream `name`.
    pub fn delete_stream(&self, name: &str) -> Result<(), StoreError> {
        check_ref_name(name)?;
        let dir = format!("streams/{name}/");
        let keys: Vec<String> = self
            .inner
            .backend
            .list_children(&dir)?
            .into_iter()
            .map(|child| format!("{dir}{child}"))
            .collect();
        self.inner.backend.delete_many(&keys)?;
        if !self.inner.remote {
            // The emptied directory too (absent or in use is fine).
            let _ = fs::remove_dir(self.root().join(&dir));
        }
        Ok(())
    }

    /// Writes `bytes` to `path` so that readers see either the old file or the whole new
    /// one (a temporary file beside it, then a rename).
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        local::write_atomic_beside(path, bytes, true)
    }

    // ----- trees ---------------------------------------------------------------------------

    /// Saves the selected files, directories and symlinks under `root` as a tree; uploads
    /// only the blobs the store lacks. Returns the tree's digest.
    pub fn save_tree(
        &self,
        root: &Path,
        selection: &Selection,
    ) -> Result<(String, SaveStats), StoreError> {
        tree::save_tree(self, root, selection, &SaveOptions::default())
    }

    /// [`Store::save_tree`] with options (e.g. a base tree known to be in the store).
    pub fn save_tree_with(
        &self,
        root: &Path,
        selection: &Selection,
        options: &SaveOptions,
    ) -> Result<(String, SaveStats), StoreError> {
        tree::save_tree(self, root, selection, options)
    }

    /// Restores tree `digest` into `dest`, writing only the files that differ. A file whose
    /// blob is corrupt or missing is skipped and reported in the stats, never written.
    pub fn restore_tree(&self, digest: &str, dest: &Path) -> Result<RestoreStats, StoreError> {
        tree::restore_tree(self, digest, dest, &RestoreOptions::default())
    }

    /// [`Store::restore_tree`] with options (e.g. a fixed mtime for written files).
    pub fn restore_tree_with(
        &self,
        digest: &str,
        dest: &Path,
        options: &RestoreOptions,
    ) -> Result<RestoreStats, StoreError> {
        tree::restore_tree(self, digest, dest, options)
    }

    /// Reads and parses tree `digest`.
    /// Drops the local file index kept for `root` (a workspace or an exported directory
    /// that will not be saved again), so that such indexes do not pile up.
    pub fn forget_index(&self, root: &Path) {
        tree::FileIndex::forget(self, root);
    }

    pub fn get_tree(&self, digest: &str) -> Result<Tree, StoreError> {
        let bytes = self.get_blob(digest)?;
        Tree::from_bytes(&bytes)
            .map_err(|e| StoreError::Invalid(format!("store object {digest} is not a tree: {e}")))
    }

    /// Stores a tree manifest, returning its digest.
    pub fn put_tree(&self, tree: &Tree) -> Result<String, StoreError> {
        self.put_blob(&tree.to_bytes())
    }

    // ----- housekeeping ----------------------------------------------------------------------

    /// Re-hashes every blob; checks that references and trees point at existing blobs.
    pub fn verify(&self, repair: bool) -> Result<VerifyReport, StoreError> {
        maintenance::verify(self, repair)
    }

    /// Drops what no reference reaches (and cache references by age / total size).
    pub fn gc(&self, options: &GcOptions) -> Result<GcReport, StoreError> {
        maintenance::gc(self, options)
    }

    /// Counts and sizes.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        maintenance::stats(self)
    }
}

#[cfg(test)]
mod tests;

//! The interface both backends (a local directory, S3) offer to [`Store`](super::Store).
//!
//! Keys are `/`-separated strings (`blobs/ab/<digest>.zst`, `refs/<name>`), always made by
//! the store itself. Every write is atomic: an object is either absent or whole.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;

use super::StoreError;

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    /// Stored (compressed) size in bytes.
    pub size: u64,
    pub modified: SystemTime,
}

/// What to store under a key.
#[derive(Debug)]
pub enum Payload {
    Bytes(Bytes),
    /// A temporary file (in the machine-local `tmp/` directory) the backend may consume.
    File(tempfile::TempPath),
}

/// Writes that may run in the background (S3: many PUTs in flight); `finish` waits for all
/// of them and reports the first failure. After a failure, further `put`s fail fast.
pub trait PutBatch: Send + Sync {
    fn put(&self, key: String, payload: Payload) -> Result<(), StoreError>;
    fn finish(&self) -> Result<(), StoreError>;
}

/// A place to keep objects: a local directory or an S3 bucket (and prefix).
pub trait ObjectBackend: Send + Sync {
    /// How to name this backend in messages (`/path` or `s3://bucket/prefix`).
    fn describe(&self) -> String;

    /// The whole object, or `None` if there is none.
    fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// At most the first `len` bytes of the object.
    fn get_head(&self, key: &str, len: u64) -> Result<Option<Bytes>, StoreError>;

    /// Several objects (S3: fetched concurrently).
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>, StoreError>;

    /// Streams the object into `out`; `false` if there is none.
    fn get_to_writer(
        &self,
        key: &str,
        out: &mut File,
        show_progress: bool,
    ) -> Result<bool, StoreError>;

    /// Downloads each `(key, destination)` into its destination file (atomically, through
    /// `tmp_dir`); absent objects are skipped. S3: concurrently.
    fn download_many(&self, items: &[(String, PathBuf)], tmp_dir: &Path) -> Result<(), StoreError>;

    fn exists(&self, key: &str) -> Result<bool, StoreError>;

    /// Existence of several objects (S3: concurrent HEAD requests).
    fn exists_many(&self, keys: &[String]) -> Result<Vec<bool>, StoreError>;

    /// Writes the object atomically, replacing any previous one.
    fn put(&self, key: &str, payload: Payload) -> Result<(), StoreError>;

    /// Writes the object only if there is none; returns whether it did.
    fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool, StoreError>;

    /// A batch of writes that may proceed in parallel.
    fn batch(&self) -> Box<dyn PutBatch + '_>;

    /// Every object whose key starts with `prefix`.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError>;

    /// Names of the objects directly below `dir` (which ends with `/`).
    fn list_children(&self, dir: &str) -> Result<Vec<String>, StoreError>;

    /// Names of the "directories" directly below `dir` (which ends with `/`): the next
    /// key segments that have objects beneath them.
    fn list_dirs(&self, dir: &str) -> Result<Vec<String>, StoreError>;

    /// Deletes the object (absent is fine).
    fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Deletes several objects (S3: concurrently).
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError>;

    /// Updates the object's modification time to now (absent is fine).
    fn touch(&self, key: &str) -> Result<(), StoreError>;

    /// Atomically increments the decimal counter kept in `key` (absent: 0) and returns the
    /// new value.
    fn increment(&self, key: &str) -> Result<u64, StoreError>;
}

/// A batch that writes each object at once (the local backend).
pub(crate) struct DirectBatch<'a, B: ObjectBackend + ?Sized>(pub &'a B);

impl<B: ObjectBackend + ?Sized> PutBatch for DirectBatch<'_, B> {
    fn put(&self, key: String, payload: Payload) -> Result<(), StoreError> {
        self.0.put(&key, payload)
    }
    fn finish(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The directory part of a listing prefix (`refs/cache/ab` → `refs/cache/`).
pub(crate) fn prefix_dir(prefix: &str) -> &str {
    match prefix.rfind('/') {
        Some(i) => &prefix[..=i],
        None => "",
    }
}

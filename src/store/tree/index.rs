//! The local index: per directory, (size, mtime, ctime, inode) → digest, so unchanged
//! files skip hashing; kept on this machine only.

use std::collections::HashMap;
use std::fs::{self};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::manifest::Tree;
use crate::digest::{is_digest, sha256_hex};
use crate::store::Store;

/// What identifies an unchanged file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    pub(super) size: u64,
    pub(super) mtime_ns: i64,
    pub(super) ctime_ns: i64,
    pub(super) ino: u64,
}

impl Stamp {
    pub(super) fn of(meta: &fs::Metadata) -> Stamp {
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
    pub(super) fn trustworthy(&self, checked_ns: i64) -> bool {
        let window = if self.mtime_ns % 1_000_000_000 == 0 && self.ctime_ns % 1_000_000_000 == 0 {
            2_000_000_000 // whole-second timestamps
        } else {
            50_000_000
        };
        self.mtime_ns < checked_ns - window && self.ctime_ns < checked_ns - window
    }
}

pub(super) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Per directory: path → (stamp, digest), and the packs of the tree last saved or restored
/// there by [`pack_signature`]; kept on this machine only.
pub(crate) struct FileIndex {
    pub(super) path: Option<PathBuf>,
    pub(super) entries: HashMap<String, (Stamp, String)>,
    pub(super) packs: HashMap<String, String>,
}

const INDEX_HEADER: &str = "wasmbuild-index 1";

impl FileIndex {
    /// Drops the index of `root` (a directory saved or restored once, about to go away).
    pub(crate) fn forget(store: &Store, root: &Path) {
        if let Some(path) = Self::location(store, root) {
            let _ = fs::remove_file(path);
        }
    }

    pub(super) fn location(store: &Store, root: &Path) -> Option<PathBuf> {
        let canonical = fs::canonicalize(root).ok()?;
        let key = sha256_hex(canonical.as_os_str().as_encoded_bytes());
        Some(store.local_dir("index").join(&key[..40]))
    }

    pub(super) fn load(store: &Store, root: &Path) -> FileIndex {
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

    pub(super) fn lookup(&self, rel: &str, stamp: &Stamp) -> Option<&str> {
        match self.entries.get(rel) {
            Some((known, digest)) if known == stamp => Some(digest),
            _ => None,
        }
    }

    /// Adds `updates` (stamps taken when nothing else wrote the files before `checked_ns`;
    /// those too recent to trust are left out), keeps the packs of `tree` (the one just
    /// saved or restored), and writes the index.
    pub(super) fn save(
        mut self,
        updates: Vec<(String, Stamp, String)>,
        checked_ns: i64,
        tree: &Tree,
    ) {
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
        if let Err(e) = crate::store::local::write_atomic_beside(&path, text.as_bytes(), false) {
            tracing::debug!("could not write the file index {}: {e}", path.display());
        }
    }
}

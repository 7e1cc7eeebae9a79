//! The tree manifest: its entries (file, directory, symlink) and its serialized form, a
//! blob of its own.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::packs::pack_signature;

/// The `format` of tree manifests written by this version.
pub const TREE_FORMAT: &str = "wasmbuild-tree/2";
/// How every serialized tree begins (used to recognise trees among blobs).
pub(crate) const TREE_MAGIC: &[u8] = b"{\"format\":\"wasmbuild-tree/";

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
    pub(super) fn packs(&self) -> HashMap<String, String> {
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

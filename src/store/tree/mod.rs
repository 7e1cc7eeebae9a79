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

mod index;
mod manifest;
mod packs;
mod restore;
mod save;
mod selection;

#[cfg(test)]
mod tests;

pub(crate) use index::FileIndex;
pub(crate) use manifest::TREE_MAGIC;
pub use manifest::{EntryKind, Tree, TreeEntry};
pub use packs::PACK_FILE_MAX;
pub use restore::{RestoreOptions, RestoreStats};
pub(crate) use restore::{link_stays_inside, restore_tree};
pub(crate) use save::save_tree;
pub use save::{SaveOptions, SaveStats};
pub use selection::Selection;

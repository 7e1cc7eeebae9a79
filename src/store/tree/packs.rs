//! Packs: small files stored together in one blob. Where a pack ends depends only on the
//! paths and sizes around it; a pack is found again by the signature of its files' digests.

use std::collections::HashMap;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// Files up to this size are kept in packs; larger ones get a blob of their own.
pub const PACK_FILE_MAX: u64 = 1 << 20;
/// A pack holds at least this much content before it may end (unless its files run out)…
pub(super) const PACK_MIN: u64 = 1 << 20;
/// …then ends after a file with a chance of (file size / this), so that packs hold about
/// `PACK_MIN + PACK_SPREAD` bytes…
const PACK_SPREAD: u64 = 3 << 20;
/// …and always ends once it holds this much.
pub(super) const PACK_MAX: u64 = 16 << 20;

/// Identifies the content of a pack by the digests of its files, in order: the same
/// signature means the same pack bytes, so a pack can be found without reading its files.
pub(super) fn pack_signature<'a>(digests: impl IntoIterator<Item = &'a str>) -> String {
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
pub(super) fn pack_boundary(rel: &str, size: u64, pack_bytes: u64) -> bool {
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

/// The units of a parallel save or restore, in the order threads should take them: largest
/// first and one at a time, so that no thread is left with a big one at the end while the
/// others idle (rayon would otherwise hand each thread a contiguous half).
pub(super) fn largest_first<T: Sync>(
    units: &mut [T],
    size: impl Fn(&T) -> u64,
) -> impl IndexedParallelIterator<Item = &T> {
    units.sort_by_cached_key(|unit| std::cmp::Reverse(size(unit)));
    units.par_iter().with_max_len(1)
}

/// Where each file of a pack starts, given (digest, size) in order: one after another,
/// except that a file whose content is already in the pack points at that copy.
pub(super) fn pack_layout<'a>(files: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<u64> {
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

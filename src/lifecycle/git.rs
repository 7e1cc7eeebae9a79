//! What a build learns from a git checkout without running git: the commit checked out
//! (`CODEBUILD_RESOLVED_SOURCE_VERSION`) and its committer time (the default
//! `SOURCE_DATE_EPOCH` of a deterministic build), read from loose objects or pack files.

use std::io::Read;
use std::path::Path;

/// The commit checked out in `src`.
pub fn head(src: &Path) -> Option<String> {
    let git = src.join(".git");
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref: ") else {
        return is_commit(head).then(|| head.to_owned());
    };
    if let Ok(commit) = std::fs::read_to_string(git.join(reference)) {
        let commit = commit.trim();
        return is_commit(commit).then(|| commit.to_owned());
    }
    let packed = std::fs::read_to_string(git.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (commit, name) = line.split_once(' ')?;
        (name == reference && is_commit(commit)).then(|| commit.to_owned())
    })
}

fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The committer time (seconds since the epoch) of the commit checked out in `src`.
pub fn head_commit_time(src: &Path) -> Option<u64> {
    let commit = head(src)?;
    let objects = src.join(".git/objects");
    let body = read_loose(&objects, &commit).or_else(|| read_packed(&objects, &commit))?;
    let text = String::from_utf8_lossy(&body);
    let committer = text.lines().find(|l| l.starts_with("committer "))?;
    // committer Name <email> 1700000000 +0000
    let mut fields = committer.rsplitn(3, ' ');
    let _zone = fields.next()?;
    fields.next()?.parse().ok()
}

fn read_loose(objects: &Path, commit: &str) -> Option<Vec<u8>> {
    let file = std::fs::File::open(objects.join(&commit[..2]).join(&commit[2..])).ok()?;
    let mut data = Vec::new();
    flate2::read::ZlibDecoder::new(file)
        .take(64 << 10)
        .read_to_end(&mut data)
        .ok()?;
    let header_end = data.iter().position(|&b| b == 0)?;
    data.starts_with(b"commit ")
        .then(|| data[header_end + 1..].to_vec())
}

/// Finds `commit` through the pack indexes (version 2) and inflates it, if it is stored
/// whole (commits are almost never deltified).
fn read_packed(objects: &Path, commit: &str) -> Option<Vec<u8>> {
    let wanted = hex::decode(commit).ok()?;
    for entry in std::fs::read_dir(objects.join("pack")).ok()?.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "idx") {
            continue;
        }
        let Ok(index) = std::fs::read(&path) else {
            continue;
        };
        if let Some(offset) = pack_offset(&index, &wanted) {
            return read_pack_entry(&path.with_extension("pack"), offset);
        }
    }
    None
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn pack_offset(index: &[u8], wanted: &[u8]) -> Option<u64> {
    if index.get(..4)? != b"\xfftOc" || be32(index, 4)? != 2 {
        return None;
    }
    let fanout = 8;
    let count = be32(index, fanout + 255 * 4)? as usize;
    let first = wanted[0] as usize;
    let lo = if first == 0 {
        0
    } else {
        be32(index, fanout + (first - 1) * 4)? as usize
    };
    let hi = be32(index, fanout + first * 4)? as usize;
    let names = fanout + 256 * 4;
    let position =
        (lo..hi).find(|&i| index.get(names + i * 20..names + i * 20 + 20) == Some(wanted))?;
    let offsets = names + count * 20 + count * 4;
    let offset = be32(index, offsets + position * 4)?;
    if offset & 0x8000_0000 == 0 {
        return Some(u64::from(offset));
    }
    let large = offsets + count * 4 + (offset & 0x7fff_ffff) as usize * 8;
    Some(u64::from_be_bytes(
        index.get(large..large + 8)?.try_into().ok()?,
    ))
}

fn read_pack_entry(pack: &Path, offset: u64) -> Option<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(pack).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut byte = [0u8; 1];
    file.read_exact(&mut byte).ok()?;
    let kind = (byte[0] >> 4) & 0x7;
    while byte[0] & 0x80 != 0 {
        file.read_exact(&mut byte).ok()?;
    }
    if kind != 1 {
        return None; // not a whole commit object
    }
    let mut data = Vec::new();
    flate2::read::ZlibDecoder::new(file)
        .take(64 << 10)
        .read_to_end(&mut data)
        .ok()?;
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_COMMITTER_DATE", "1700000000 +0100")
            .env("GIT_AUTHOR_DATE", "1600000000 +0000")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn reads_head_and_commit_time_from_loose_and_packed_objects() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        std::fs::write(dir.path().join("f"), "x").unwrap();
        git(dir.path(), &["add", "f"]);
        git(dir.path(), &["commit", "-q", "-m", "one"]);
        let commit = head(dir.path()).expect("HEAD resolves");
        assert_eq!(commit.len(), 40);
        assert_eq!(head_commit_time(dir.path()), Some(1_700_000_000));
        // Packed: objects in a pack file, the ref in packed-refs.
        git(dir.path(), &["gc", "-q", "--prune=now"]);
        assert!(!dir.path().join(".git/refs/heads/main").exists());
        assert_eq!(head(dir.path()).as_deref(), Some(commit.as_str()));
        assert_eq!(head_commit_time(dir.path()), Some(1_700_000_000));
        assert_eq!(head_commit_time(&dir.path().join("missing")), None);
    }
}

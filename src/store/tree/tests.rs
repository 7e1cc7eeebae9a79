//! Unit tests of packing, the index and saving/restoring.

use super::index::Stamp;
use std::collections::HashSet;

use super::packs::{PACK_FILE_MAX, PACK_MAX, PACK_MIN, pack_layout, pack_signature};
use super::restore::{link_stays_inside, safe_rel};
use super::save::{Found, Unit, plan};
use super::{EntryKind, Selection, Tree, TreeEntry};

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
            Unit::Pack(members) => Some(members.iter().map(|&i| files[i].rel.clone()).collect()),
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

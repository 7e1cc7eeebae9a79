//! `codebuild-hash-files GLOB...`, CodeBuild's helper for cache keys, as a builtin: the
//! sha256 over the files matching the patterns, read through the build's [`GuestFs`]. And
//! `codebuild-glob-search GLOB...`, its helper for test splitting: the matching files, one
//! per line, sorted (nothing matching is status 0 with no output, as an empty search).
//!
//! Patterns are relative to the current directory (or absolute); `*` stays within one
//! directory, `**` crosses directories, and a pattern naming a directory selects every
//! file below it. The matching files are sorted by path; the result is the sha256 of the
//! lines `<sha256 of content>  <path>\n`, i.e. what `sha256sum FILE... | sha256sum` prints
//! for those files in that order. No match, or an unreadable file, is status 1.
//!
//! [`GuestFs`]: super::fs::GuestFs

use std::collections::BTreeMap;
use std::io::Write;

use globset::{GlobBuilder, GlobMatcher};
use sha2::{Digest, Sha256};

use super::fs::{EntryKind, describe_io_error, normalize};
use super::interpreter::Interpreter;
use super::streams::Io;
use super::{Exec, Unwind};

const NAME: &str = "codebuild-hash-files";

/// One pattern: how to match, where to start walking, and how paths are shown.
struct Pattern {
    glob: GlobMatcher,
    /// Absolute guest directory (or file) below which every match lies.
    base_abs: String,
    /// `base_abs` as shown (relative to the current directory, or absolute).
    base_shown: String,
}

fn compile(cwd: &str, raw: &str) -> Result<Pattern, String> {
    let absolute = raw.starts_with('/');
    let mut text = raw;
    while let Some(rest) = text.strip_prefix("./") {
        text = rest;
    }
    let text = text.trim_end_matches('/');
    if text.split('/').any(|c| c == "..") {
        return Err(format!("{raw}: patterns may not contain `..`"));
    }
    let text = if text.is_empty() { "." } else { text };
    let parts: Vec<&str> = text
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let literal: Vec<&str> = parts
        .iter()
        .take_while(|c| !c.contains(['*', '?', '[', '{', '\\']))
        .copied()
        .collect();
    let joined = parts.join("/");
    let glob_text = if absolute {
        format!("/{joined}")
    } else {
        joined
    };
    let base_shown = if absolute {
        format!("/{}", literal.join("/"))
    } else {
        literal.join("/")
    };
    let glob = GlobBuilder::new(if glob_text.is_empty() {
        "**"
    } else {
        &glob_text
    })
    .literal_separator(true)
    .backslash_escape(true)
    .build()
    .map_err(|e| format!("{raw}: bad pattern: {e}"))?
    .compile_matcher();
    Ok(Pattern {
        glob,
        base_abs: normalize(
            cwd,
            if base_shown.is_empty() {
                "."
            } else {
                &base_shown
            },
        ),
        base_shown,
    })
}

fn join(dir: &str, name: &str) -> String {
    match dir {
        "" => name.to_owned(),
        "/" => format!("/{name}"),
        _ => format!("{dir}/{name}"),
    }
}

/// Adds the files at or below `abs` (shown as `shown`) that `pattern` selects.
fn collect(
    state: &Interpreter,
    pattern: &Pattern,
    abs: &str,
    shown: &str,
    selected: bool,
    out: &mut BTreeMap<String, String>,
) {
    let Ok(meta) = state.fs.symlink_metadata(abs) else {
        return;
    };
    let selected = selected || (!shown.is_empty() && pattern.glob.is_match(shown));
    let kind = match meta.kind {
        // A link counts as what it points to, but linked directories are not entered.
        EntryKind::Symlink => match state.fs.metadata(abs) {
            Ok(target) if target.kind == EntryKind::File => EntryKind::File,
            _ => return,
        },
        kind => kind,
    };
    match kind {
        EntryKind::File if selected => {
            out.insert(shown.to_owned(), abs.to_owned());
        }
        EntryKind::Dir => {
            let Ok(mut names) = state.fs.read_dir(abs) else {
                return;
            };
            names.sort();
            for name in names {
                collect(
                    state,
                    pattern,
                    &join(abs, &name),
                    &join(shown, &name),
                    selected,
                    out,
                );
            }
        }
        _ => {}
    }
}

/// The files `args[1..]` select, shown path → absolute path, sorted; `Err` is the status
/// after a bad pattern was reported.
fn matching(
    state: &Interpreter,
    name: &str,
    args: &[String],
    io: &Io,
) -> Result<BTreeMap<String, String>, i32> {
    let mut files = BTreeMap::new();
    for raw in &args[1..] {
        let pattern = match compile(&state.cwd, raw) {
            Ok(pattern) => pattern,
            Err(message) => {
                state.error(io, &format!("{name}: {message}"));
                return Err(2);
            }
        };
        collect(
            state,
            &pattern,
            &pattern.base_abs,
            &pattern.base_shown,
            false,
            &mut files,
        );
    }
    Ok(files)
}

/// `codebuild-glob-search GLOB...`.
pub(crate) fn glob_search(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    const SEARCH: &str = "codebuild-glob-search";
    if args.len() < 2 {
        state.error(io, &format!("{SEARCH}: usage: {SEARCH} GLOB..."));
        return Ok(2);
    }
    let files = match matching(state, SEARCH, args, io) {
        Ok(files) => files,
        Err(status) => return Ok(status),
    };
    let listing: String = files.keys().map(|shown| format!("{shown}\n")).collect();
    match io.stdout().write_all(listing.as_bytes()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Unwind::Exit(141)),
        Err(e) => {
            state.error(io, &format!("write error: {}", describe_io_error(&e)));
            Ok(1)
        }
    }
}

/// The builtin.
pub(crate) fn hash_files(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    if args.len() < 2 {
        state.error(io, &format!("{NAME}: usage: {NAME} GLOB..."));
        return Ok(2);
    }
    let files = match matching(state, NAME, args, io) {
        Ok(files) => files,
        Err(status) => return Ok(status),
    };
    if files.is_empty() {
        state.error(
            io,
            &format!("{NAME}: no files match {}", args[1..].join(" ")),
        );
        return Ok(1);
    }
    let mut listing = Sha256::new();
    for (shown, abs) in &files {
        let digest = match state
            .fs
            .open_read(abs)
            .and_then(|file| crate::digest::sha256_reader(std::io::BufReader::new(file)))
        {
            Ok((digest, _)) => digest,
            Err(e) => {
                state.error(io, &format!("{NAME}: {shown}: {}", describe_io_error(&e)));
                return Ok(1);
            }
        };
        listing.update(format!("{digest}  {shown}\n").as_bytes());
    }
    let line = format!("{}\n", hex::encode(listing.finalize()));
    match io.stdout().write_all(line.as_bytes()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Unwind::Exit(141)),
        Err(e) => {
            state.error(io, &format!("write error: {}", describe_io_error(&e)));
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::host::{HostError, Invocation, Program, ProgramHost};
    use super::super::{GuestFs, Session, Stdio};
    use crate::digest::sha256_hex;
    use crate::sandbox::SharedBuffer;
    use crate::sandbox::layout::{Layout, SRC_DIR};

    struct NoPrograms;

    impl ProgramHost for NoPrograms {
        fn has_program(&self, _: &str) -> bool {
            false
        }
        fn program_path(&self, _: &str) -> Option<String> {
            None
        }
        fn run(&self, _: Program, _: Invocation) -> Result<i32, HostError> {
            Ok(127)
        }
    }

    /// Runs `script` in a session over a source directory holding `files`.
    fn run(files: &[(&str, &str)], script: &str) -> (i32, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let (src, tmp, home) = (
            dir.path().join("src"),
            dir.path().join("tmp"),
            dir.path().join("root"),
        );
        for d in [&src, &tmp, &home] {
            std::fs::create_dir_all(d).unwrap();
        }
        for (path, content) in files {
            let path = src.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let fs = GuestFs::open(&Layout::build(src, tmp, home)).unwrap();
        let mut session = Session::new(Arc::new(NoPrograms), fs, Vec::new(), SRC_DIR.to_owned());
        let (out, err) = (SharedBuffer::default(), SharedBuffer::default());
        let status = session
            .run_script(
                script,
                "test",
                Stdio::new(Box::new(out.clone()), Box::new(err.clone())),
            )
            .unwrap();
        let text = |b: SharedBuffer| String::from_utf8_lossy(&b.contents()).into_owned();
        (status, text(out), text(err))
    }

    /// What `sha256sum FILE... | sha256sum` prints for these (path, content) pairs.
    fn expected(files: &[(&str, &str)]) -> String {
        let listing: String = files
            .iter()
            .map(|(path, content)| format!("{}  {path}\n", sha256_hex(content.as_bytes())))
            .collect();
        format!("{}\n", sha256_hex(listing.as_bytes()))
    }

    const TREE: &[(&str, &str)] = &[
        ("b.lock", "two\n"),
        ("a.lock", "one\n"),
        ("pkg/c.lock", "three\n"),
        ("pkg/readme.md", "not matched\n"),
    ];

    #[test]
    fn hashes_sorted_matches_like_sha256sum() {
        let (status, out, _) = run(TREE, "codebuild-hash-files '**/*.lock'");
        assert_eq!(status, 0);
        assert_eq!(
            out,
            expected(&[
                ("a.lock", "one\n"),
                ("b.lock", "two\n"),
                ("pkg/c.lock", "three\n")
            ])
        );
        // `*` stays in one directory; the order of the patterns does not matter.
        let (_, top, _) = run(TREE, "codebuild-hash-files b.lock '*.lock'");
        assert_eq!(top, expected(&[("a.lock", "one\n"), ("b.lock", "two\n")]));
        // A directory selects everything below it; paths are relative to the current one.
        let (_, dir, _) = run(TREE, "codebuild-hash-files pkg");
        assert_eq!(
            dir,
            expected(&[
                ("pkg/c.lock", "three\n"),
                ("pkg/readme.md", "not matched\n")
            ])
        );
        let (_, sub, _) = run(TREE, "cd pkg && codebuild-hash-files '*'");
        assert_eq!(
            sub,
            expected(&[("c.lock", "three\n"), ("readme.md", "not matched\n")])
        );
    }

    #[test]
    fn content_changes_the_hash_and_no_match_is_an_error() {
        let (_, before, _) = run(TREE, "codebuild-hash-files a.lock");
        let (_, after, _) = run(&[("a.lock", "ONE\n")], "codebuild-hash-files a.lock");
        assert_ne!(before, after);
        let (status, out, err) = run(TREE, "codebuild-hash-files 'none/*.x'");
        assert_eq!((status, out.as_str()), (1, ""));
        assert!(err.contains("no files match none/*.x"), "{err}");
        let (status, _, err) = run(TREE, "codebuild-hash-files ../x");
        assert_eq!(status, 2, "{err}");
        let (status, out, _) = run(
            TREE,
            r#"k="key-$(codebuild-hash-files nothing)"; echo "$? $k""#,
        );
        assert_eq!((status, out.as_str()), (0, "1 key-\n"));
    }
}

//! A fuzzer for the buildspec reader (proptest-generated input; not part of `cargo test`,
//! see README "Fuzzing"): real buildspec shapes mutated with YAML's sharp edges — anchors
//! and aliases, tabs, CRLF, flow brackets, block scalars, a byte-order mark, NUL and
//! invalid code points, huge numbers, deep nesting — and every key the schema knows.
//!
//! Properties, for every input: parsing never panics and ends in bounded time; `parse`
//! and `diagnose` agree (an error for one is an error for the other, the same warnings);
//! every error and warning has a line and column inside the text; the commands of an
//! accepted buildspec go through the shell's program finder without a panic.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use wasmbuild::buildspec::{Buildspec, BuildspecError};

const SEEDS: &[&str] = &[
    "version: 0.2\nenv:\n  variables:\n    A: 1\n    B: \"x\"\nphases:\n  install:\n    runtime-versions:\n      python: 3.12\n    commands:\n      - pip install -r requirements.txt\n  build:\n    on-failure: RETRY-2\n    commands:\n      - |\n        if [ -f x ]; then\n          make all\n        fi\n      - echo $(date)\n    finally:\n      - echo done\nartifacts:\n  files:\n    - '**/*'\n  discard-paths: yes\ncache:\n  paths: [/root/.cache/pip/**/*]\nreports:\n  unit:\n    files: report.xml\n    file-format: JunitXml\n",
    "version: 0.2\nbatch:\n  fast-fail: false\n  build-graph:\n    - identifier: a\n      env:\n        fleet: f\n        variables: {X: 1}\n    - identifier: b\n      depend-on: [a]\n",
    "version: 0.1\nphases:\n  build:\n    commands: [echo a, echo b]\nartifacts:\n  files: imagedefinitions.json\n  secondary-artifacts:\n    s: {files: [x], name: y}\n",
    "version: 0.2\nx: &a {k: [1, 2]}\ny: *a\nphases: {build: {commands: ['a', \"b\", ~, '', c]}}\n",
];

const TOKENS: &[&str] = &[
    ":",
    ": ",
    "-",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "*b",
    "<<: *a\n",
    "!!str ",
    "!!binary ",
    "!tag ",
    "|",
    "|-\n",
    ">",
    ">+\n",
    "'",
    "\"",
    "\\",
    "#",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "  ",
    "    ",
    "\u{feff}",
    "\0",
    "\u{fffd}",
    "é",
    "\u{1F600}",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "? ",
    "~",
    "null",
    "yes",
    "no",
    "0x1F",
    "1e309",
    "3.10",
    "-.inf",
    ".nan",
    "99999999999999999999999",
    "${X}",
    "$(",
    "`",
    "version",
    "phases",
    "install",
    "pre_build",
    "build",
    "post_build",
    "commands",
    "finally",
    "runtime-versions",
    "on-failure",
    "env",
    "variables",
    "parameter-store",
    "secrets-manager",
    "artifacts",
    "files",
    "secondary-artifacts",
    "cache",
    "paths",
    "reports",
    "file-format",
    "batch",
    "build-graph",
    "build-list",
    "build-matrix",
    "build-fanout",
    "depend-on",
    "identifier",
    "static",
    "dynamic",
    "eb_codebuild_settings",
    "discard_paths",
];

#[derive(Debug, Clone)]
enum Edit {
    Insert(u16, usize),
    Delete(u16, u8),
    Replace(u16, u8, usize),
    DuplicateLine(u16),
    Nest(u16, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<u16>(), 0..TOKENS.len()).prop_map(|(at, t)| Edit::Insert(at, t)),
        (any::<u16>(), 1..16u8).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<u16>(), 1..8u8, 0..TOKENS.len()).prop_map(|(at, n, t)| Edit::Replace(at, n, t)),
        any::<u16>().prop_map(Edit::DuplicateLine),
        (any::<u16>(), 1..120u8).prop_map(|(at, n)| Edit::Nest(at, n)),
    ]
}

/// A char boundary of `text` at about `at / 65536` of its length.
fn boundary(text: &str, at: u16) -> usize {
    let mut i = text.len() * usize::from(at) / 65536;
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(seed: &str, edits: &[Edit]) -> String {
    let mut text = seed.to_owned();
    for edit in edits {
        match *edit {
            Edit::Insert(at, t) => text.insert_str(boundary(&text, at), TOKENS[t]),
            Edit::Delete(at, n) | Edit::Replace(at, n, _) => {
                let start = boundary(&text, at);
                let mut end = (start + usize::from(n)).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                let with = match *edit {
                    Edit::Replace(_, _, t) => TOKENS[t],
                    _ => "",
                };
                text.replace_range(start..end, with);
            }
            Edit::DuplicateLine(at) => {
                let start = text[..boundary(&text, at)].rfind('\n').map_or(0, |i| i + 1);
                let end = text[start..]
                    .find('\n')
                    .map_or(text.len(), |i| start + i + 1);
                let line = text[start..end].to_owned();
                text.insert_str(end, &line);
            }
            Edit::Nest(at, n) => {
                let (open, close) = if n % 2 == 0 {
                    ("[", "]")
                } else {
                    ("{a: ", "}")
                };
                let nested = format!(
                    "{}1{}",
                    open.repeat(usize::from(n)),
                    close.repeat(usize::from(n))
                );
                text.insert_str(boundary(&text, at), &nested);
            }
        }
    }
    text
}

/// Whether 1-based `line` and `column` can be in `text`: YAML breaks lines at LF, CRLF
/// and a lone CR; a problem at the end may name the line after the last.
fn located_inside(text: &str, line: usize, column: usize) -> bool {
    let lines = text.matches('\n').count() + text.replace("\r\n", "").matches('\r').count() + 2;
    line >= 1 && line <= lines && column >= 1
}

fn check_one(text: &str) {
    let started = Instant::now();
    let parsed = Buildspec::parse(text, "fuzz.yml");
    let diagnosis = Buildspec::diagnose(text, "fuzz.yml");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "slow: {:?} for {text:?}",
        started.elapsed()
    );
    match &parsed {
        Ok(buildspec) => {
            assert!(
                diagnosis.errors.is_empty(),
                "{:?} for {text:?}",
                diagnosis.errors
            );
            assert_eq!(buildspec.warnings, diagnosis.warnings, "{text:?}");
            for warning in &buildspec.warnings {
                assert!(
                    located_inside(text, warning.line, warning.column),
                    "{warning} in {text:?}"
                );
            }
            for (command, _) in buildspec.commands() {
                let _ = wasmbuild::shell::called_programs(command);
            }
        }
        Err(error) => {
            assert!(
                !diagnosis.errors.is_empty(),
                "{error} but no diagnosis for {text:?}"
            );
            if let BuildspecError::Invalid { line, column, .. } = error {
                assert!(located_inside(text, *line, *column), "{error} in {text:?}");
            }
        }
    }
}

fn cases() -> u32 {
    std::env::var("WASMBUILD_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    #[ignore = "a fuzzer: run it on purpose (README, Fuzzing)"]
    fn fuzz_buildspec_mutations(seed in 0..SEEDS.len(), edits in prop::collection::vec(edit(), 0..12)) {
        check_one(&apply(SEEDS[seed], &edits));
    }

    #[test]
    #[ignore = "a fuzzer: run it on purpose (README, Fuzzing)"]
    fn fuzz_buildspec_token_soup(tokens in prop::collection::vec(0..TOKENS.len(), 0..200)) {
        let text: String = tokens.iter().map(|&t| TOKENS[t]).collect();
        check_one(&format!("version: 0.2\n{text}"));
    }

    #[test]
    #[ignore = "a fuzzer: run it on purpose (README, Fuzzing)"]
    fn fuzz_buildspec_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.yml");
        std::fs::write(&path, &bytes).unwrap();
        let started = Instant::now();
        let _ = Buildspec::from_file(&path);
        let _ = Buildspec::diagnose_file(&path);
        prop_assert!(started.elapsed() < Duration::from_secs(2));
    }
}

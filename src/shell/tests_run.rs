//! `codebuild-tests-run`, CodeBuild's helper for test splitting in a `build-fanout` batch,
//! as a builtin: `--files-search CMD` lists the test files (one per line), this shard's
//! share of them is picked by `--sharding-strategy` (`equal-distribution`, the default:
//! sorted, in contiguous chunks whose sizes differ by at most one; `stability`: each file
//! by a hash of its name, so adding files moves no other), and `--test-command CMD` runs
//! with them appended, quoted, and listed one per line in `CODEBUILD_CURRENT_SHARD_FILES`.
//!
//! The shard comes from `WASMBUILD_SHARD_INDEX` (0-based) and `WASMBUILD_SHARD_COUNT`,
//! which a fanout batch sets in each of its builds; outside one, the only shard is 0 of 1.
//! A shard with no files runs nothing and succeeds.

use sha2::{Digest, Sha256};

use super::Exec;
use super::expand::shell_quote;
use super::interpreter::Interpreter;
use super::streams::Io;

const NAME: &str = "codebuild-tests-run";

/// The files of shard `index` of `count`.
pub(crate) fn shard(
    mut files: Vec<String>,
    index: usize,
    count: usize,
    stable: bool,
) -> Vec<String> {
    let count = count.max(1);
    files.sort();
    files.dedup();
    if stable {
        return files
            .into_iter()
            .filter(|f| {
                let digest = Sha256::digest(f.as_bytes());
                let n = u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]));
                n % count as u64 == index as u64
            })
            .collect();
    }
    let (size, extra) = (files.len() / count, files.len() % count);
    let start = index * size + index.min(extra);
    let len = size + usize::from(index < extra);
    files.into_iter().skip(start).take(len).collect()
}

pub(crate) fn tests_run(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let (mut search, mut command, mut strategy) = (None, None, "equal-distribution".to_owned());
    let mut i = 1;
    while i < args.len() {
        let (flag, value) = match args[i].split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (args[i].clone(), None),
        };
        let value = match value {
            Some(value) => value,
            None => {
                i += 1;
                match args.get(i) {
                    Some(value) => value.clone(),
                    None => {
                        state.error(io, &format!("{NAME}: {flag} needs a value"));
                        return Ok(2);
                    }
                }
            }
        };
        match flag.as_str() {
            "--files-search" => search = Some(value),
            "--test-command" => command = Some(value),
            "--sharding-strategy" => strategy = value,
            other => {
                state.error(io, &format!("{NAME}: unknown option {other}"));
                return Ok(2);
            }
        }
        i += 1;
    }
    let (Some(search), Some(command)) = (search, command) else {
        state.error(
            io,
            &format!("{NAME}: usage: {NAME} --files-search CMD --test-command CMD [--sharding-strategy equal-distribution|stability]"),
        );
        return Ok(2);
    };
    let stable = match strategy.as_str() {
        "equal-distribution" => false,
        "stability" => true,
        other => {
            state.error(
                io,
                &format!("{NAME}: unknown sharding strategy {other}: expected equal-distribution or stability"),
            );
            return Ok(2);
        }
    };
    let number = |name: &str, default: usize| {
        state
            .var(name)
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(default)
    };
    let count = number("WASMBUILD_SHARD_COUNT", 1).max(1);
    let index = number("WASMBUILD_SHARD_INDEX", 0).min(count - 1);
    let listing = state.command_substitution(&search, io)?;
    let files: Vec<String> = listing
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let total = files.len();
    let mine = shard(files, index, count, stable);
    io.diag(&format!(
        "{NAME}: shard {} of {count} ({strategy}): {} of {total} test file(s)",
        index + 1,
        mine.len()
    ));
    if mine.is_empty() {
        return Ok(0);
    }
    let quoted: Vec<String> = mine.iter().map(|f| shell_quote(f, false)).collect();
    let script = format!(
        "( export CODEBUILD_CURRENT_SHARD_FILES={}\n{command} {} )",
        shell_quote(&mine.join("\n"), true),
        quoted.join(" ")
    );
    state.eval_text(&script, io)
}

#[cfg(test)]
mod tests {
    use super::shard;

    fn files(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("tests/test_{i:02}.py")).collect()
    }

    #[test]
    fn equal_distribution_is_contiguous_and_even() {
        let shards: Vec<Vec<String>> = (0..3).map(|i| shard(files(7), i, 3, false)).collect();
        let sizes: Vec<usize> = shards.iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 2, 2]);
        assert_eq!(shards.concat(), files(7), "every file once, in order");
    }

    #[test]
    fn stability_moves_no_file_when_others_are_added() {
        let before: Vec<Vec<String>> = (0..4).map(|i| shard(files(20), i, 4, true)).collect();
        let after: Vec<Vec<String>> = (0..4).map(|i| shard(files(30), i, 4, true)).collect();
        for (b, a) in before.iter().zip(&after) {
            assert!(b.iter().all(|f| a.contains(f)));
        }
        assert_eq!(after.iter().map(Vec::len).sum::<usize>(), 30);
    }
}

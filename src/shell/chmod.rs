//! `chmod`, as a builtin: WASI has no way to change permission bits, so uutils' chmod does
//! not build for the toolbox, and `chmod +x gradlew` is in one real buildspec in ten. The
//! shell sets the bits through the build's [`GuestFs`] (the workspace's capability), with
//! GNU chmod's syntax: octal modes, symbolic clauses (`u+x`, `go-w`, `a=rX`, `+x`, comma
//! separated; `X` for directories and files already executable by someone), `-R`, `-f`,
//! `-v`/`-c`. A clause without `u`, `g`, `o` or `a` leaves the bits of the umask (022) alone.
//!
//! [`GuestFs`]: super::fs::GuestFs

use std::io::Write;

use super::Exec;
use super::fs::{EntryKind, describe_io_error, normalize};
use super::interpreter::Interpreter;
use super::streams::Io;

const UMASK: u32 = 0o022;

/// The new mode from `spec` (octal or symbolic) applied to `mode`; `None` if `spec` is not
/// a mode.
pub(crate) fn apply(spec: &str, mode: u32, is_dir: bool) -> Option<u32> {
    if !spec.is_empty() && spec.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        let value = u32::from_str_radix(spec, 8).ok().filter(|v| *v <= 0o7777)?;
        // GNU keeps a directory's set-user/group-ID bits unless the mode names them.
        let kept = if is_dir && spec.len() <= 3 {
            mode & 0o6000
        } else {
            0
        };
        return Some(value | kept);
    }
    let mut mode = mode & 0o7777;
    for clause in spec.split(',') {
        let who_end = clause
            .find(|c: char| !matches!(c, 'u' | 'g' | 'o' | 'a'))
            .unwrap_or(clause.len());
        let (who, mut rest) = clause.split_at(who_end);
        let mut mask = 0u32;
        for c in who.chars() {
            mask |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                _ => 0o7777,
            };
        }
        let (mask, masked) = if who.is_empty() {
            (0o7777, UMASK)
        } else {
            (mask, 0)
        };
        if rest.is_empty() {
            return None;
        }
        while !rest.is_empty() {
            let op = rest.chars().next()?;
            if !matches!(op, '+' | '-' | '=') {
                return None;
            }
            rest = &rest[1..];
            let perm_end = rest.find(['+', '-', '=']).unwrap_or(rest.len());
            let (perms, tail) = rest.split_at(perm_end);
            rest = tail;
            let mut bits = 0u32;
            for p in perms.chars() {
                bits |= match p {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if is_dir || mode & 0o111 != 0 => 0o111,
                    'X' => 0,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => return None,
                };
            }
            let bits = bits & mask & !masked;
            match op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                _ => mode = (mode & !mask) | bits,
            }
        }
    }
    Some(mode)
}

pub(crate) fn chmod(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let (mut recursive, mut quiet, mut verbose) = (false, false, false);
    let mut operands: Vec<&str> = Vec::new();
    let mut options_done = false;
    for arg in &args[1..] {
        let is_option = !options_done
            && arg.len() > 1
            && arg.starts_with('-')
            && arg[1..].chars().all(|c| matches!(c, 'R' | 'f' | 'v' | 'c'));
        if arg == "--" && !options_done {
            options_done = true;
        } else if is_option {
            recursive |= arg.contains('R');
            quiet |= arg.contains('f');
            verbose |= arg.contains('v') || arg.contains('c');
        } else {
            operands.push(arg);
        }
    }
    let Some((spec, files)) = operands.split_first() else {
        state.error(io, "chmod: missing operand");
        return Ok(1);
    };
    if files.is_empty() {
        state.error(io, &format!("chmod: missing operand after '{spec}'"));
        return Ok(1);
    }
    if apply(spec, 0, false).is_none() {
        state.error(io, &format!("chmod: invalid mode: '{spec}'"));
        return Ok(1);
    }
    let mut status = 0;
    for file in files {
        let path = normalize(&state.cwd, file);
        let mut pending = vec![(path, (*file).to_owned())];
        while let Some((path, shown)) = pending.pop() {
            let meta = match state.fs.symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    if !quiet {
                        state.error(
                            io,
                            &format!("chmod: cannot access '{shown}': {}", describe_io_error(&e)),
                        );
                    }
                    status = 1;
                    continue;
                }
            };
            // Like GNU chmod, a link met while recursing is left alone.
            if meta.kind == EntryKind::Symlink && shown != *file {
                continue;
            }
            let is_link = meta.kind == EntryKind::Symlink;
            let target = state.fs.metadata(&path).unwrap_or(meta);
            let is_dir = target.kind == EntryKind::Dir;
            let Some(mode) = apply(spec, target.mode, is_dir) else {
                continue;
            };
            if let Err(e) = state.fs.set_mode(&path, mode) {
                if !quiet {
                    state.error(
                        io,
                        &format!(
                            "chmod: changing permissions of '{shown}': {}",
                            describe_io_error(&e)
                        ),
                    );
                }
                status = 1;
            } else if verbose {
                let _ = writeln!(io.stdout(), "mode of '{shown}' changed to {mode:04o}");
            }
            if recursive && is_dir && !is_link {
                let mut names = state.fs.read_dir(&path).unwrap_or_default();
                names.sort();
                for name in names.into_iter().rev() {
                    pending.push((format!("{path}/{name}"), format!("{shown}/{name}")));
                }
            }
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::apply;

    #[test]
    fn modes_as_gnu_chmod_computes_them() {
        assert_eq!(apply("755", 0o644, false), Some(0o755));
        assert_eq!(apply("+x", 0o644, false), Some(0o755));
        assert_eq!(
            apply("+w", 0o444, false),
            Some(0o644),
            "the umask keeps g and o"
        );
        assert_eq!(apply("a+w", 0o444, false), Some(0o666));
        assert_eq!(apply("u+x,go-r", 0o644, false), Some(0o700));
        assert_eq!(apply("go=rX", 0o700, true), Some(0o755));
        assert_eq!(apply("a=rX", 0o640, false), Some(0o444));
        assert_eq!(apply("u=rw", 0o777, false), Some(0o677));
        assert_eq!(apply("+t", 0o755, true), Some(0o1755));
        for bad in ["", "9", "x", "u+q", "a", "+x,,", "80000"] {
            assert_eq!(apply(bad, 0o644, false), None, "{bad}");
        }
    }
}

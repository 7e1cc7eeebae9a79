//! The builtins: commands that run inside the interpreter because they change or read its
//! state (cd, export, set, read, source, …) or are cheap and ubiquitous (echo, printf, test).
//! Each takes the state, its argv and its descriptors, and returns a status or unwinds.

use std::io::Write;

use super::fs::{EntryKind, describe_io_error, normalize};
use super::interpreter::Interpreter;
use super::printf;
use super::streams::{InHandle, Io, Stream};
use super::{Exec, ShellOptions, Unwind};

pub(crate) type Builtin = fn(&mut Interpreter, &[String], &mut Io) -> Exec;

/// `enable -n NAME` turns a builtin off, so `NAME` runs the image's program; `enable NAME`
/// turns it back on.
fn enable(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let mut disable = false;
    let mut status = 0;
    for arg in &args[1..] {
        match arg.as_str() {
            "-n" => disable = true,
            "-a" | "-p" | "-s" => {}
            name if find(name).is_none() => {
                state.error(io, &format!("enable: {name}: not a shell builtin"));
                status = 1;
            }
            name => {
                state.disabled_builtins.retain(|n| n != name);
                if disable {
                    state.disabled_builtins.push(name.to_owned());
                }
            }
        }
    }
    Ok(status)
}

const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "while", "until", "do", "done",
    "in", "function", "select", "time", "{", "}", "!", "[[", "]]",
];

pub(crate) fn is_keyword(name: &str) -> bool {
    KEYWORDS.contains(&name)
}

pub(crate) fn find(name: &str) -> Option<Builtin> {
    Some(match name {
        ":" | "true" => |_, _, _| Ok(0),
        "false" => |_, _, _| Ok(1),
        "echo" => echo,
        "printf" => printf_builtin,
        "cd" => cd,
        "pwd" => pwd,
        "export" => export,
        "unset" => unset,
        "set" => set,
        "shift" => shift,
        "exit" => exit,
        "return" => return_builtin,
        "break" => |s, args, io| loop_control(s, args, io, true),
        "continue" => |s, args, io| loop_control(s, args, io, false),
        "test" => |s, args, io| Ok(s.run_test("test", &args[1..], io)),
        "[" => bracket,
        "read" => read,
        "source" | "." => source,
        "local" => local,
        "declare" | "typeset" => declare,
        "readonly" => readonly,
        "eval" => |s, args, io| s.eval_text(&args[1..].join(" "), io),
        "command" => command,
        "builtin" => |s, args, io| match args.get(1) {
            None => Ok(0),
            Some(name) => match find(name) {
                Some(builtin) => builtin(s, &args[1..], io),
                None => usage(s, io, "builtin", &format!("{name}: not a shell builtin"), 1),
            },
        },
        "type" => type_builtin,
        "trap" => trap,
        "wait" => wait,
        "let" => let_builtin,
        "exec" => exec,
        "shopt" => shopt,
        "getopts" => getopts,
        "umask" => umask,
        "enable" => enable,
        "codebuild-hash-files" => super::hash_files::hash_files,
        "codebuild-glob-search" => super::hash_files::glob_search,
        "chmod" => super::chmod::chmod,
        "codebuild-tests-run" => super::tests_run::tests_run,
        "hash" | "alias" | "unalias" => |_, _, _| Ok(0),
        "times" => |s, _, io| write_out(s, io, b"0m0.000s 0m0.000s\n0m0.000s 0m0.000s\n"),
        _ => return None,
    })
}

/// Writes to stdout. A closed pipe ends the shell (or the pipeline stage) with 141, as
/// SIGPIPE would; another failure is reported and is status 1.
fn write_out(state: &Interpreter, io: &Io, bytes: &[u8]) -> Exec {
    match io.stdout().write_all(bytes) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Unwind::Exit(141)),
        Err(e) => {
            state.error(io, &format!("write error: {}", describe_io_error(&e)));
            Ok(1)
        }
    }
}

fn usage(state: &Interpreter, io: &Io, name: &str, message: &str, status: i32) -> Exec {
    state.error(io, &format!("{name}: {message}"));
    Ok(status)
}

pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn echo(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let mut newline = true;
    let mut escapes = false;
    let mut i = 1;
    while i < args.len() {
        let arg = &args[i];
        let Some(flags) = arg.strip_prefix('-') else {
            break;
        };
        if flags.is_empty() || !flags.chars().all(|c| matches!(c, 'n' | 'e' | 'E')) {
            break;
        }
        for c in flags.chars() {
            match c {
                'n' => newline = false,
                'e' => escapes = true,
                _ => escapes = false,
            }
        }
        i += 1;
    }
    let text = args[i..].join(" ");
    let mut bytes = if escapes {
        let (bytes, stop) = printf::echo_unescape(&text);
        if stop {
            return write_out(state, io, &bytes);
        }
        bytes
    } else {
        text.into_bytes()
    };
    if newline {
        bytes.push(b'\n');
    }
    write_out(state, io, &bytes)
}

fn printf_builtin(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let mut rest = &args[1..];
    let mut target = None;
    if rest.first().is_some_and(|a| a == "-v") {
        let Some(name) = rest.get(1) else {
            return usage(state, io, "printf", "-v: option requires an argument", 2);
        };
        target = Some(name.clone());
        rest = &rest[2..];
    }
    if rest.first().is_some_and(|a| a == "--") {
        rest = &rest[1..];
    }
    let Some(format) = rest.first() else {
        return usage(
            state,
            io,
            "printf",
            "usage: printf [-v var] format [arguments]",
            2,
        );
    };
    let formatted = printf::format(format, &rest[1..]);
    let mut status = 0;
    if let Some(c) = formatted.bad_conversion {
        state.error(io, &format!("printf: `{c}': invalid format character"));
        status = 1;
    }
    for bad in &formatted.invalid {
        state.error(io, &format!("printf: {bad}: invalid number"));
        status = 1;
    }
    if formatted.too_wide {
        state.error(
            io,
            &format!(
                "printf: field width or precision too large (limit {})",
                printf::MAX_FIELD_WIDTH
            ),
        );
        return Ok(1);
    }
    match target {
        Some(name) => {
            if let Err(message) = state.set_var(
                &name,
                String::from_utf8_lossy(&formatted.bytes).into_owned(),
            ) {
                return usage(state, io, "printf", &message, 1);
            }
            Ok(status)
        }
        None => Ok(write_out(state, io, &formatted.bytes)?.max(status)),
    }
}

fn cd(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let operands: Vec<&String> = args[1..]
        .iter()
        .skip_while(|a| matches!(a.as_str(), "-L" | "-P" | "-e" | "-@"))
        .collect();
    let operands: Vec<&String> = match operands.first() {
        Some(first) if first.as_str() == "--" => operands[1..].to_vec(),
        _ => operands,
    };
    if operands.len() > 1 {
        return usage(state, io, "cd", "too many arguments", 1);
    }
    let (target, print) = match operands.first().map(|s| s.as_str()) {
        None => match state.var("HOME") {
            Some(home) => (home.to_owned(), false),
            None => return usage(state, io, "cd", "HOME not set", 1),
        },
        Some("-") => match state.var("OLDPWD") {
            Some(old) => (old.to_owned(), true),
            None => return usage(state, io, "cd", "OLDPWD not set", 1),
        },
        Some("") => return Ok(0),
        Some(dir) => (dir.to_owned(), false),
    };
    let path = normalize(&state.cwd, &target);
    match state.fs.metadata(&path) {
        Ok(m) if m.kind == EntryKind::Dir => {}
        Ok(_) => return usage(state, io, "cd", &format!("{target}: Not a directory"), 1),
        Err(e) => {
            return usage(
                state,
                io,
                "cd",
                &format!("{target}: {}", describe_io_error(&e)),
                1,
            );
        }
    }
    let old = std::mem::replace(&mut state.cwd, path.clone());
    let _ = state.set_var("OLDPWD", old);
    let _ = state.set_var("PWD", path.clone());
    if print {
        return write_out(state, io, format!("{path}\n").as_bytes());
    }
    Ok(0)
}

fn pwd(state: &mut Interpreter, _args: &[String], io: &mut Io) -> Exec {
    let line = format!("{}\n", state.cwd);
    write_out(state, io, line.as_bytes())
}

/// Splits `NAME=value` (or `NAME+=value`); `None` value for a bare name.
fn split_assignment(arg: &str) -> (String, Option<String>, bool) {
    match arg.split_once('=') {
        Some((name, value)) => match name.strip_suffix('+') {
            Some(name) => (name.to_owned(), Some(value.to_owned()), true),
            None => (name.to_owned(), Some(value.to_owned()), false),
        },
        None => (arg.to_owned(), None, false),
    }
}

fn assign_argument(
    state: &mut Interpreter,
    name: &str,
    value: Option<String>,
    append: bool,
) -> Result<(), String> {
    if !is_name(name) {
        return Err(format!("`{name}': not a valid identifier"));
    }
    if let Some(value) = value {
        let value = if append {
            format!("{}{value}", state.var(name).unwrap_or(""))
        } else {
            value
        };
        state.set_var(name, value)?;
    }
    Ok(())
}

fn print_declarations(
    state: &Interpreter,
    io: &Io,
    filter: impl Fn(&super::interpreter::Var) -> bool,
    flag: &str,
) -> Exec {
    let mut names: Vec<&String> = state
        .vars
        .iter()
        .filter(|(_, v)| filter(v))
        .map(|(k, _)| k)
        .collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        let var = &state.vars[name];
        match &var.value {
            Some(value) => out.push_str(&format!(
                "declare -{flag} {name}=\"{}\"\n",
                escape_double(value)
            )),
            None => out.push_str(&format!("declare -{flag} {name}\n")),
        }
    }
    write_out(state, io, out.as_bytes())
}

fn escape_double(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn export(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let mut unexport = false;
    let mut rest = &args[1..];
    while let Some(flag) = rest.first().filter(|a| a.starts_with('-')) {
        match flag.as_str() {
            "-n" => unexport = true,
            "-p" | "-f" => {}
            "--" => {
                rest = &rest[1..];
                break;
            }
            other => return usage(state, io, "export", &format!("{other}: invalid option"), 2),
        }
        rest = &rest[1..];
    }
    if rest.is_empty() {
        return print_declarations(state, io, |v| v.exported, "x");
    }
    let mut status = 0;
    for arg in rest {
        let (name, value, append) = split_assignment(arg);
        if let Err(message) = assign_argument(state, &name, value, append) {
            state.error(io, &format!("export: {message}"));
            status = 1;
            continue;
        }
        if unexport {
            if let Some(var) = state.vars.get_mut(&name) {
                var.exported = false;
            }
        } else {
            state.export(&name);
        }
    }
    Ok(status)
}

fn readonly(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let rest: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
    if rest.is_empty() {
        return print_declarations(state, io, |v| v.readonly, "r");
    }
    let mut status = 0;
    for arg in rest {
        let (name, value, append) = split_assignment(arg);
        if let Err(message) = assign_argument(state, &name, value, append) {
            state.error(io, &format!("readonly: {message}"));
            status = 1;
            continue;
        }
        state.vars.entry(name).or_default().readonly = true;
    }
    Ok(status)
}

fn local(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    if state.function_depth == 0 {
        return usage(state, io, "local", "can only be used in a function", 1);
    }
    declare_names(state, "local", &args[1..], io, true)
}

fn declare(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let local = state.function_depth > 0 && !args[1..].iter().any(|a| a == "-g");
    declare_names(state, &args[0], &args[1..], io, local)
}

/// `local`/`declare`/`typeset`: flags `-x` export, `-r` readonly, `+x` unexport; arrays are
/// refused; `-f`/`-F` list functions.
fn declare_names(
    state: &mut Interpreter,
    name: &str,
    args: &[String],
    io: &Io,
    make_local: bool,
) -> Exec {
    let mut export = None;
    let mut readonly = false;
    let mut print = false;
    let mut functions = false;
    let mut operands = Vec::new();
    for arg in args {
        if operands.is_empty() && (arg.starts_with('-') || arg.starts_with('+')) && arg.len() > 1 {
            let on = arg.starts_with('-');
            for flag in arg[1..].chars() {
                match flag {
                    'x' => export = Some(on),
                    'r' => readonly = on,
                    'p' => print = true,
                    'f' | 'F' => functions = true,
                    'g' | 'i' | 'l' | 'u' | 't' => {}
                    'a' | 'A' | 'n' => {
                        return usage(
                            state,
                            io,
                            name,
                            &format!(
                                "-{flag}: arrays and references are not supported by the build shell"
                            ),
                            2,
                        );
                    }
                    other => {
                        return usage(state, io, name, &format!("-{other}: invalid option"), 2);
                    }
                }
            }
            continue;
        }
        operands.push(arg);
    }
    if functions {
        let mut names: Vec<&String> = state.functions.keys().collect();
        names.sort();
        let out: String = names.iter().map(|n| format!("declare -f {n}\n")).collect();
        return write_out(state, io, out.as_bytes());
    }
    if operands.is_empty() {
        if print || export == Some(true) {
            return print_declarations(state, io, |v| v.exported || !print, "x");
        }
        return print_variables(state, io);
    }
    let mut status = 0;
    for arg in operands {
        let (var, value, append) = split_assignment(arg);
        if !is_name(&var) {
            state.error(io, &format!("{name}: `{arg}': not a valid identifier"));
            status = 1;
            continue;
        }
        if make_local {
            state.make_local(&var);
        }
        if let Err(message) = assign_argument(state, &var, value, append) {
            state.error(io, &format!("{name}: {message}"));
            status = 1;
            continue;
        }
        let entry = state.vars.entry(var).or_default();
        if let Some(on) = export {
            entry.exported = on;
        }
        if readonly {
            entry.readonly = true;
        }
    }
    Ok(status)
}

fn print_variables(state: &Interpreter, io: &Io) -> Exec {
    let mut names: Vec<&String> = state
        .vars
        .iter()
        .filter(|(_, v)| v.value.is_some())
        .map(|(k, _)| k)
        .collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        let value = state.var(name).unwrap_or("");
        out.push_str(&format!(
            "{name}={}\n",
            super::expand::shell_quote(value, false)
        ));
    }
    write_out(state, io, out.as_bytes())
}

fn unset(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let mut functions_only = false;
    let mut variables_only = false;
    let mut status = 0;
    for arg in &args[1..] {
        match arg.as_str() {
            "-f" => functions_only = true,
            "-v" => variables_only = true,
            "-n" => {}
            name => {
                if functions_only {
                    state.functions.remove(name);
                    continue;
                }
                if !is_name(name) {
                    state.error(io, &format!("unset: `{name}': not a valid identifier"));
                    status = 1;
                    continue;
                }
                if !variables_only && !state.vars.contains_key(name) {
                    state.functions.remove(name);
                    continue;
                }
                if let Err(message) = state.unset_var(name) {
                    state.error(io, &format!("unset: {message}"));
                    status = 1;
                }
            }
        }
    }
    Ok(status)
}

/// Sets a single-letter option (`set -e`); false for an unknown letter.
pub(crate) fn set_short_option(options: &mut ShellOptions, letter: char, on: bool) -> bool {
    let field = match letter {
        'e' => &mut options.errexit,
        'u' => &mut options.nounset,
        'x' => &mut options.xtrace,
        'f' => &mut options.noglob,
        'a' => &mut options.allexport,
        'v' => &mut options.verbose,
        'C' => &mut options.noclobber,
        'h' | 'B' | 'H' | 'm' | 'b' | 'P' | 'T' | 'E' | 'k' | 't' | 'n' => return true,
        _ => return false,
    };
    *field = on;
    true
}

/// The long names of `set -o`, with their values.
fn long_options(options: &ShellOptions) -> Vec<(&'static str, bool)> {
    vec![
        ("allexport", options.allexport),
        ("braceexpand", true),
        ("errexit", options.errexit),
        ("hashall", true),
        ("noclobber", options.noclobber),
        ("noglob", options.noglob),
        ("nounset", options.nounset),
        ("pipefail", options.pipefail),
        ("posix", false),
        ("verbose", options.verbose),
        ("xtrace", options.xtrace),
    ]
}

pub(crate) fn option_by_name(options: &ShellOptions, name: &str) -> Option<bool> {
    long_options(options)
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

pub(crate) fn set_long_option(options: &mut ShellOptions, name: &str, on: bool) -> bool {
    let field = match name {
        "errexit" => &mut options.errexit,
        "nounset" => &mut options.nounset,
        "xtrace" => &mut options.xtrace,
        "pipefail" => &mut options.pipefail,
        "noglob" => &mut options.noglob,
        "allexport" => &mut options.allexport,
        "verbose" => &mut options.verbose,
        "noclobber" => &mut options.noclobber,
        "braceexpand"
        | "hashall"
        | "posix"
        | "interactive-comments"
        | "monitor"
        | "errtrace"
        | "functrace"
        | "nolog"
        | "notify"
        | "physical"
        | "privileged"
        | "emacs"
        | "vi"
        | "history"
        | "histexpand"
        | "ignoreeof"
        | "keyword"
        | "noexec"
        | "onecmd" => return true,
        _ => return false,
    };
    *field = on;
    true
}

fn set(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    if args.len() == 1 {
        return print_variables(state, io);
    }
    let mut i = 1;
    let mut positional: Option<Vec<String>> = None;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            positional = Some(args[i + 1..].to_vec());
            break;
        }
        if arg == "-" {
            state.options.xtrace = false;
            state.options.verbose = false;
            positional = Some(args[i + 1..].to_vec()).filter(|p| !p.is_empty());
            break;
        }
        let on = arg.starts_with('-');
        if !(on || arg.starts_with('+')) || arg.len() < 2 {
            positional = Some(args[i..].to_vec());
            break;
        }
        for letter in arg[1..].chars() {
            if letter == 'o' {
                i += 1;
                match args.get(i) {
                    Some(name) => {
                        if !set_long_option(&mut state.options, name, on) {
                            return usage(
                                state,
                                io,
                                "set",
                                &format!("{name}: invalid option name"),
                                2,
                            );
                        }
                    }
                    None => {
                        let mut out = String::new();
                        for (name, value) in long_options(&state.options) {
                            if on {
                                out.push_str(&format!(
                                    "{name:<15}\t{}\n",
                                    if value { "on" } else { "off" }
                                ));
                            } else {
                                out.push_str(&format!(
                                    "set {}o {name}\n",
                                    if value { '-' } else { '+' }
                                ));
                            }
                        }
                        return write_out(state, io, out.as_bytes());
                    }
                }
            } else if !set_short_option(&mut state.options, letter, on) {
                return usage(
                    state,
                    io,
                    "set",
                    &format!("{}{letter}: invalid option", if on { '-' } else { '+' }),
                    2,
                );
            }
        }
        i += 1;
    }
    if let Some(p) = positional {
        state.positional = p;
    }
    Ok(0)
}

fn shift(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let n = match args.get(1) {
        None => 1,
        Some(text) => match text.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return usage(
                    state,
                    io,
                    "shift",
                    &format!("{text}: numeric argument required"),
                    1,
                );
            }
        },
    };
    if n > state.positional.len() {
        return Ok(1);
    }
    state.positional.drain(..n);
    Ok(0)
}

fn exit(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let status = match args.get(1) {
        None => state.last_status,
        Some(text) => match super::arithmetic::parse_integer(text) {
            Some(n) if !text.trim().is_empty() => (n & 0xff) as i32,
            _ => {
                state.error(io, &format!("exit: {text}: numeric argument required"));
                2
            }
        },
    };
    Err(Unwind::Exit(status))
}

fn return_builtin(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    if state.function_depth == 0 && state.source_depth == 0 {
        return usage(
            state,
            io,
            "return",
            "can only `return' from a function or sourced script",
            2,
        );
    }
    let status = match args.get(1) {
        None => state.last_status,
        Some(text) => match super::arithmetic::parse_integer(text) {
            Some(n) => (n & 0xff) as i32,
            None => {
                state.error(io, &format!("return: {text}: numeric argument required"));
                2
            }
        },
    };
    Err(Unwind::Return(status))
}

fn loop_control(state: &mut Interpreter, args: &[String], io: &mut Io, is_break: bool) -> Exec {
    let name = if is_break { "break" } else { "continue" };
    let n = match args.get(1) {
        None => 1,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            Ok(_) => {
                return usage(
                    state,
                    io,
                    name,
                    &format!("{text}: loop count out of range"),
                    1,
                );
            }
            Err(_) => {
                return usage(
                    state,
                    io,
                    name,
                    &format!("{text}: numeric argument required"),
                    1,
                );
            }
        },
    };
    if state.loop_depth == 0 {
        return usage(
            state,
            io,
            name,
            "only meaningful in a `for', `while', or `until' loop",
            0,
        );
    }
    let n = n.min(state.loop_depth);
    Err(if is_break {
        Unwind::Break(n)
    } else {
        Unwind::Continue(n)
    })
}

fn bracket(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    if args.last().is_none_or(|a| a != "]") || args.len() < 2 {
        return usage(state, io, "[", "missing `]'", 2);
    }
    Ok(state.run_test("[", &args[1..args.len() - 1], io))
}

fn read(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let mut raw = false;
    let mut delimiter = b'\n';
    let mut limit: Option<usize> = None;
    let mut input = io.stdin();
    let mut names = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let arg = &args[i];
        if !names.is_empty() || !arg.starts_with('-') || arg == "-" {
            names.push(arg.clone());
            i += 1;
            continue;
        }
        if arg == "--" {
            names.extend(args[i + 1..].iter().cloned());
            break;
        }
        let mut flags = arg[1..].chars();
        while let Some(flag) = flags.next() {
            let mut value = || -> Option<String> {
                let rest: String = flags.by_ref().collect();
                if rest.is_empty() {
                    i += 1;
                    args.get(i).cloned()
                } else {
                    Some(rest)
                }
            };
            match flag {
                'r' => raw = true,
                's' | 'e' => {}
                'p' => {
                    let prompt = value().unwrap_or_default();
                    let _ = io.stderr().write_all(prompt.as_bytes());
                }
                'd' => delimiter = value().and_then(|d| d.bytes().next()).unwrap_or(0),
                'n' | 'N' => limit = value().and_then(|n| n.parse().ok()),
                't' => {
                    value();
                }
                'u' => {
                    let fd: i32 = value().and_then(|f| f.parse().ok()).unwrap_or(-1);
                    match io.get(fd) {
                        Some(Stream::In(handle)) => input = handle.clone(),
                        _ => {
                            return usage(
                                state,
                                io,
                                "read",
                                &format!("{fd}: invalid file descriptor"),
                                1,
                            );
                        }
                    }
                }
                'a' => {
                    return usage(
                        state,
                        io,
                        "read",
                        "-a: arrays are not supported by the build shell",
                        2,
                    );
                }
                other => return usage(state, io, "read", &format!("-{other}: invalid option"), 2),
            }
        }
        i += 1;
    }
    for name in &names {
        if !is_name(name) {
            return usage(
                state,
                io,
                "read",
                &format!("`{name}': not a valid identifier"),
                1,
            );
        }
    }
    let max = state.shared.limits.max_expansion_bytes;
    let (chars, complete) = match read_input(&input, raw, delimiter, limit, max) {
        Ok(read) => read,
        Err(e) => return usage(state, io, "read", &describe_io_error(&e), 1),
    };
    let status = if complete { 0 } else { 1 };
    if names.is_empty() {
        let line: String = chars.iter().map(|(c, _)| *c).collect();
        return assign_read(state, io, "REPLY", line, status);
    }
    let ifs = state.ifs();
    let fields = split_read(&chars, &ifs, names.len());
    for (k, name) in names.iter().enumerate() {
        let value = fields.get(k).cloned().unwrap_or_default();
        if assign_read(state, io, name, value, 0)? != 0 {
            return Ok(1);
        }
    }
    Ok(status)
}

fn assign_read(state: &mut Interpreter, io: &Io, name: &str, value: String, status: i32) -> Exec {
    match state.set_var(name, value) {
        Ok(()) => Ok(status),
        Err(message) => usage(state, io, "read", &message, 1),
    }
}

/// Reads one record; each char says whether a backslash escaped it. The flag is false at
/// end of input before the delimiter.
fn read_input(
    input: &InHandle,
    raw: bool,
    delimiter: u8,
    limit: Option<usize>,
    max: usize,
) -> std::io::Result<(Vec<(char, bool)>, bool)> {
    let mut chars = Vec::new();
    loop {
        if chars.len() > max {
            return Err(std::io::Error::other(format!(
                "line too long (limit {max} bytes)"
            )));
        }
        let bytes = match limit {
            Some(n) => {
                let mut bytes = Vec::new();
                let mut complete = false;
                while bytes.len() < n.saturating_sub(chars.len()).min(max) {
                    let b = input.read_up_to(1)?;
                    match b.first() {
                        Some(&b) if b == delimiter => {
                            complete = true;
                            break;
                        }
                        Some(&b) => bytes.push(b),
                        None => break,
                    }
                }
                let got = String::from_utf8_lossy(&bytes).into_owned();
                chars.extend(got.chars().map(|c| (c, false)));
                let full = chars.len() >= n;
                return Ok((chars, complete || full));
            }
            None => input.read_until(delimiter, max)?,
        };
        let Some(mut bytes) = bytes else {
            return Ok((chars, false));
        };
        let complete = bytes.last() == Some(&delimiter);
        if complete {
            bytes.pop();
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut it = text.chars().peekable();
        let mut continued = false;
        while let Some(c) = it.next() {
            if c == '\\' && !raw {
                match it.next() {
                    Some(next) => chars.push((next, true)),
                    // A backslash before the delimiter joins the next line.
                    None => continued = complete && delimiter == b'\n',
                }
            } else {
                chars.push((c, false));
            }
        }
        if !continued {
            return Ok((chars, complete));
        }
    }
}

/// Splits a record for `read NAME…` as bash does: the last name gets the rest of the line.
fn split_read(chars: &[(char, bool)], ifs: &str, count: usize) -> Vec<String> {
    let is_ifs = |&(c, escaped): &(char, bool)| !escaped && ifs.contains(c);
    let is_space = |&(c, escaped): &(char, bool)| {
        !escaped && ifs.contains(c) && matches!(c, ' ' | '\t' | '\n')
    };
    let mut i = 0;
    let n = chars.len();
    while i < n && is_space(&chars[i]) {
        i += 1;
    }
    let mut fields = Vec::new();
    while fields.len() + 1 < count && i < n {
        let start = i;
        while i < n && !is_ifs(&chars[i]) {
            i += 1;
        }
        fields.push(chars[start..i].iter().map(|(c, _)| *c).collect::<String>());
        // Skip one delimiter: whitespace around at most one other IFS character.
        while i < n && is_space(&chars[i]) {
            i += 1;
        }
        if i < n && is_ifs(&chars[i]) && !is_space(&chars[i]) {
            i += 1;
            while i < n && is_space(&chars[i]) {
                i += 1;
            }
        }
    }
    let mut end = n;
    while end > i && is_space(&chars[end - 1]) {
        end -= 1;
    }
    let mut rest = &chars[i.min(end)..end];
    // A single trailing delimiter after the only remaining field is dropped.
    if let Some((last, body)) = rest.split_last()
        && is_ifs(last)
        && !body.iter().any(is_ifs)
    {
        rest = body;
        while rest.last().is_some_and(is_space) {
            rest = &rest[..rest.len() - 1];
        }
    }
    if i < n || fields.len() < count {
        fields.push(rest.iter().map(|(c, _)| *c).collect());
    }
    fields
}

fn source(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let Some(file) = args.get(1) else {
        return usage(state, io, &args[0], "filename argument required", 2);
    };
    let path = if file.contains('/') {
        normalize(&state.cwd, file)
    } else {
        let in_path = state
            .var("PATH")
            .unwrap_or("")
            .split(':')
            .filter(|d| !d.is_empty())
            .find_map(|dir| {
                let candidate = normalize(&state.cwd, &format!("{dir}/{file}"));
                state
                    .fs
                    .metadata(&candidate)
                    .is_ok_and(|m| m.kind == EntryKind::File)
                    .then_some(candidate)
            });
        in_path.unwrap_or_else(|| normalize(&state.cwd, file))
    };
    let positional = (args.len() > 2).then(|| args[2..].to_vec());
    state.source_file(&path, file, positional, io)
}

fn command(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let mut i = 1;
    let mut describe = None;
    while let Some(flag) = args.get(i).filter(|a| a.starts_with('-') && a.len() > 1) {
        match flag.as_str() {
            "-v" => describe = Some(false),
            "-V" => describe = Some(true),
            "-p" => {}
            "--" => {
                i += 1;
                break;
            }
            other => return usage(state, io, "command", &format!("{other}: invalid option"), 2),
        }
        i += 1;
    }
    let rest = &args[i..];
    if rest.is_empty() {
        return Ok(0);
    }
    match describe {
        Some(verbose) => {
            let mut status = 0;
            for name in rest {
                match describe_command(state, name) {
                    Some((kind, detail)) => {
                        let line = if verbose {
                            describe_line(name, &kind, &detail)
                        } else {
                            match kind {
                                Kind::Program | Kind::File => format!("{detail}\n"),
                                _ => format!("{name}\n"),
                            }
                        };
                        write_out(state, io, line.as_bytes())?;
                    }
                    None => {
                        if verbose {
                            state.error(io, &format!("command: {name}: not found"));
                        }
                        status = 1;
                    }
                }
            }
            Ok(status)
        }
        None => state.dispatch(rest.to_vec(), io, false),
    }
}

enum Kind {
    Keyword,
    Function,
    Builtin,
    Program,
    File,
}

fn describe_command(state: &Interpreter, name: &str) -> Option<(Kind, String)> {
    if name.contains('/') {
        let path = normalize(&state.cwd, name);
        return state
            .fs
            .metadata(&path)
            .ok()
            .filter(|m| m.kind == EntryKind::File)
            .map(|_| (Kind::File, name.to_owned()));
    }
    if KEYWORDS.contains(&name) {
        return Some((Kind::Keyword, String::new()));
    }
    if let Some(function) = state.functions.get(name) {
        return Some((Kind::Function, function.to_string()));
    }
    if find(name).is_some() && !state.disabled_builtins.iter().any(|n| n == name) {
        return Some((Kind::Builtin, String::new()));
    }
    if state.host.has_program(name) {
        let path = state
            .host
            .program_path(name)
            .unwrap_or_else(|| name.to_owned());
        return Some((Kind::Program, path));
    }
    state.find_in_path(name).map(|path| (Kind::File, path))
}

fn describe_line(name: &str, kind: &Kind, detail: &str) -> String {
    match kind {
        Kind::Keyword => format!("{name} is a shell keyword\n"),
        Kind::Function => format!("{name} is a function\n{detail}\n"),
        Kind::Builtin => format!("{name} is a shell builtin\n"),
        Kind::Program | Kind::File => format!("{name} is {detail}\n"),
    }
}

fn type_builtin(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let mut terse = false;
    let mut path_only = false;
    let mut status = 0;
    for arg in &args[1..] {
        match arg.as_str() {
            "-t" => terse = true,
            "-p" | "-P" => path_only = true,
            "-a" | "-f" => {}
            name => match describe_command(state, name) {
                Some((kind, detail)) => {
                    let line = if terse {
                        let word = match kind {
                            Kind::Keyword => "keyword",
                            Kind::Function => "function",
                            Kind::Builtin => "builtin",
                            Kind::Program | Kind::File => "file",
                        };
                        format!("{word}\n")
                    } else if path_only {
                        match kind {
                            Kind::Program | Kind::File => format!("{detail}\n"),
                            _ => String::new(),
                        }
                    } else {
                        describe_line(name, &kind, &detail)
                    };
                    write_out(state, io, line.as_bytes())?;
                }
                None => {
                    if !terse && !path_only {
                        state.error(io, &format!("type: {name}: not found"));
                    }
                    status = 1;
                }
            },
        }
    }
    Ok(status)
}

fn trap(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let rest: Vec<&String> = args[1..].iter().filter(|a| a.as_str() != "--").collect();
    if rest.is_empty() || rest[0] == "-p" || rest[0] == "-l" {
        if let Some(action) = &state.exit_trap {
            let line = format!(
                "trap -- {} EXIT\n",
                super::expand::shell_quote(action, true)
            );
            return write_out(state, io, line.as_bytes());
        }
        return Ok(0);
    }
    // `trap SIGNAL…` alone resets, like `trap - SIGNAL…`.
    let (action, signals) = if rest.len() == 1 || rest[0].parse::<u32>().is_ok() {
        ("-", &rest[..])
    } else {
        (rest[0].as_str(), &rest[1..])
    };
    for signal in signals {
        let name = signal.trim_start_matches("SIG").to_ascii_uppercase();
        match name.as_str() {
            "EXIT" | "0" => {
                state.exit_trap = match action {
                    "-" | "" => None,
                    action => Some(action.to_owned()),
                }
            }
            // Signals do not reach a sandboxed build; their traps are accepted and never run.
            "INT" | "TERM" | "HUP" | "QUIT" | "ERR" | "DEBUG" | "RETURN" | "PIPE" | "USR1"
            | "USR2" | "ALRM" | "CHLD" | "1" | "2" | "3" | "13" | "14" | "15" => {}
            _ => {
                state.error(io, &format!("trap: {signal}: invalid signal specification"));
                return Ok(1);
            }
        }
    }
    Ok(0)
}

fn wait(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    if args.len() == 1 {
        state.wait_jobs(None)?;
        return Ok(0);
    }
    let mut status = 0;
    for arg in &args[1..] {
        let Ok(pid) = arg.parse::<u32>() else {
            return usage(
                state,
                io,
                "wait",
                &format!("`{arg}': not a pid or valid job spec"),
                2,
            );
        };
        if !state.jobs.0.iter().any(|(p, _)| *p == pid) {
            state.error(io, &format!("wait: pid {pid} is not a child of this shell"));
            status = 127;
            continue;
        }
        status = state.wait_jobs(Some(pid))?;
    }
    Ok(status)
}

fn let_builtin(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    if args.len() < 2 {
        return usage(state, io, "let", "expression expected", 1);
    }
    let mut status = 1;
    for expr in &args[1..] {
        status = match state.eval_arithmetic(expr) {
            Ok(n) => i32::from(n == 0),
            Err(message) => return usage(state, io, "let", &message, 1),
        };
    }
    Ok(status)
}

fn exec(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    if args.len() < 2 {
        return Ok(0);
    }
    let status = state.dispatch(args[1..].to_vec(), io, true)?;
    Err(Unwind::Exit(status))
}

const SHOPT_NAMES: &[&str] = &[
    "dotglob",
    "nullglob",
    "failglob",
    "extglob",
    "globstar",
    "expand_aliases",
    "inherit_errexit",
    "lastpipe",
    "nocaseglob",
    "nocasematch",
    "sourcepath",
    "xpg_echo",
    "globskipdots",
];

fn shopt(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let mut set = None;
    let mut quiet = false;
    let mut names = Vec::new();
    for arg in &args[1..] {
        match arg.as_str() {
            "-s" => set = Some(true),
            "-u" => set = Some(false),
            "-q" => quiet = true,
            "-o" | "-p" => {}
            name => names.push(name.to_owned()),
        }
    }
    let mut status = 0;
    for name in &names {
        if !SHOPT_NAMES.contains(&name.as_str()) {
            state.error(io, &format!("shopt: {name}: invalid shell option name"));
            status = 1;
            continue;
        }
        match set {
            Some(on) => {
                let current = state.shopts.contains(name);
                if on && !current {
                    state.shopts.push(name.clone());
                } else if !on {
                    state.shopts.retain(|n| n != name);
                }
            }
            None => {
                let on =
                    state.shopts.contains(name) || name == "sourcepath" || name == "globskipdots";
                if !on {
                    status = 1;
                }
                if !quiet {
                    let line = format!("{name:<15}\t{}\n", if on { "on" } else { "off" });
                    write_out(state, io, line.as_bytes())?;
                }
            }
        }
    }
    Ok(status)
}

fn getopts(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    let (Some(spec), Some(name)) = (args.get(1), args.get(2)) else {
        return usage(
            state,
            io,
            "getopts",
            "usage: getopts optstring name [arg ...]",
            2,
        );
    };
    let params: Vec<String> = if args.len() > 3 {
        args[3..].to_vec()
    } else {
        state.positional.clone()
    };
    let silent = spec.starts_with(':');
    let mut index: usize = state
        .var("OPTIND")
        .and_then(|v| v.parse().ok())
        .filter(|i: &usize| *i >= 1)
        .unwrap_or(1);
    if index != state.getopts_index {
        state.getopts_offset = 0;
    }
    let finish = |state: &mut Interpreter, index: usize, offset: usize| {
        state.getopts_index = index;
        state.getopts_offset = offset;
        let _ = state.set_var("OPTIND", index.to_string());
    };
    let Some(arg) = params.get(index - 1).cloned() else {
        finish(state, index, 0);
        let _ = state.set_var(name, "?".into());
        return Ok(1);
    };
    if state.getopts_offset == 0 {
        if arg == "--" {
            finish(state, index + 1, 0);
            let _ = state.set_var(name, "?".into());
            return Ok(1);
        }
        if !arg.starts_with('-') || arg == "-" {
            finish(state, index, 0);
            let _ = state.set_var(name, "?".into());
            return Ok(1);
        }
        state.getopts_offset = 1;
    }
    let chars: Vec<char> = arg.chars().collect();
    let mut offset = state.getopts_offset;
    let letter = chars.get(offset).copied().unwrap_or('?');
    offset += 1;
    let at_end = offset >= chars.len();
    let position = spec.find(letter).filter(|_| letter != ':');
    match position {
        None => {
            if at_end {
                index += 1;
                offset = 0;
            }
            if silent {
                let _ = state.set_var("OPTARG", letter.to_string());
            } else {
                state.error(io, &format!("illegal option -- {letter}"));
                let _ = state.unset_var("OPTARG");
            }
            let _ = state.set_var(name, "?".into());
        }
        Some(p) if spec[p + 1..].starts_with(':') => {
            if !at_end {
                let value: String = chars[offset..].iter().collect();
                let _ = state.set_var("OPTARG", value);
                index += 1;
                offset = 0;
            } else if let Some(value) = params.get(index) {
                let _ = state.set_var("OPTARG", value.clone());
                index += 2;
                offset = 0;
            } else {
                index += 1;
                offset = 0;
                if silent {
                    let _ = state.set_var("OPTARG", letter.to_string());
                    let _ = state.set_var(name, ":".into());
                } else {
                    state.error(io, &format!("option requires an argument -- {letter}"));
                    let _ = state.set_var(name, "?".into());
                }
                finish(state, index, offset);
                return Ok(0);
            }
            let _ = state.set_var(name, letter.to_string());
        }
        Some(_) => {
            if at_end {
                index += 1;
                offset = 0;
            }
            let _ = state.unset_var("OPTARG");
            let _ = state.set_var(name, letter.to_string());
        }
    }
    finish(state, index, offset);
    Ok(0)
}

fn umask(state: &mut Interpreter, args: &[String], io: &mut Io) -> Exec {
    if args.len() > 1 {
        return Ok(0);
    }
    write_out(state, io, b"0022\n")
}

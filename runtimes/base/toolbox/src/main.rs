//! The base bundle's toolbox: one WASI program that is every POSIX tool of a build. It
//! enters `$PWD` (WASI has no working directory of its own), picks the tool from the base
//! name of argv[0] (`ls`, `/opt/runtimes/base/bin/ls`, `ls.wasm`), or from argv[1] when
//! called as `toolbox`, and exits with the tool's status. `toolbox --list` prints the tool
//! names, one per line, sorted: the host asks it for the bundle's commands.

mod archive;
mod diff;
mod du;
mod fnmatch;
mod grep;
mod gzip;
mod tar;
mod tools;
mod xargs;
mod zip;

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::Path;
use std::process;

/// The name the toolbox answers to itself.
const SELF_NAME: &str = "toolbox";

/// The largest exit status: wasmbuild's sandbox takes 0..=255 from `proc_exit`, as a
/// POSIX shell sees them (wasmtime's own WASI stops at 125).
const MAX_STATUS: i32 = 255;

/// Status when the arguments name no tool, as a shell says it.
const UNKNOWN_TOOL: i32 = 127;

/// Status of a tool that panicked, as a native Rust program would exit.
const PANICKED: i32 = 101;

/// Status of a tool that wrote to a closed pipe, quietly (a shell would say 141, killed by
/// SIGPIPE, which WASI reserves).
pub const BROKEN_PIPE: i32 = 1;

fn main() {
    enter_working_directory();
    install_panic_hook();
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let invoked = args.first().map(tool_name).unwrap_or_default();
    let code = if invoked == SELF_NAME {
        multicall(&mut args)
    } else {
        run(&invoked, args)
    };
    let _ = io::stdout().flush();
    process::exit(wasi_status(code));
}

/// A tool's status as an exit status: those outside 0..=255 become 255.
fn wasi_status(code: i32) -> i32 {
    if (0..=MAX_STATUS).contains(&code) {
        code
    } else {
        MAX_STATUS
    }
}

/// `toolbox --list`, `toolbox --help`, or `toolbox NAME ARGS...`.
fn multicall(args: &mut Vec<OsString>) -> i32 {
    let Some(first) = args.get(1).map(|a| a.to_string_lossy().into_owned()) else {
        eprintln!("Usage: {SELF_NAME} NAME [ARGUMENTS]...\n       {SELF_NAME} --list");
        return 2;
    };
    match first.as_str() {
        "--list" => {
            let mut out = io::stdout().lock();
            for name in tools::names() {
                if writeln!(out, "{name}").is_err() {
                    return BROKEN_PIPE;
                }
            }
            0
        }
        "--help" | "-h" => {
            println!(
                "Usage: {SELF_NAME} NAME [ARGUMENTS]...\n       {SELF_NAME} --list\n\n\
                 Runs the tool NAME; --list prints the tool names."
            );
            0
        }
        _ => {
            // uucore takes the utility's name from the process arguments: argv[1] here.
            uucore::set_utility_is_second_arg();
            args.remove(0);
            let name = tool_name(&args[0]);
            run(&name, std::mem::take(args))
        }
    }
}

fn run(name: &str, args: Vec<OsString>) -> i32 {
    match tools::lookup(name) {
        Some(tool) => tool(args),
        None => {
            eprintln!("{SELF_NAME}: {name}: command not found");
            UNKNOWN_TOOL
        }
    }
}

/// The tool a program name stands for: its base name without a `.wasm` suffix.
fn tool_name(arg0: &OsString) -> String {
    let base = Path::new(arg0)
        .file_name()
        .unwrap_or(arg0.as_os_str())
        .to_string_lossy();
    base.strip_suffix(".wasm").unwrap_or(&base).to_owned()
}

/// Moves to `$PWD`. WASI has no working directory: the host preopens the current
/// directory and names it in `PWD`, and wasi-libc resolves relative paths against the
/// directory set here.
fn enter_working_directory() {
    if let Some(pwd) = std::env::var_os("PWD") {
        let pwd = Path::new(&pwd);
        if pwd.is_absolute() {
            let _ = std::env::set_current_dir(pwd);
        }
    }
}

/// A panic aborts a WASI program (it traps). Exit instead: quietly when the panic is a
/// write to a closed pipe, else with the panic message and 101.
fn install_panic_hook() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("");
        if message.contains("Broken pipe") {
            process::exit(BROKEN_PIPE);
        }
        default_hook(info);
        process::exit(PANICKED);
    }));
}

/// An I/O error as the tools print it: "No such file or directory", without "(os error N)".
pub fn io_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names() {
        for (arg0, name) in [
            ("ls", "ls"),
            ("/opt/runtimes/base/bin/ls", "ls"),
            ("ls.wasm", "ls"),
            ("toolbox", "toolbox"),
            ("[", "["),
        ] {
            assert_eq!(tool_name(&OsString::from(arg0)), name);
        }
    }

    #[test]
    fn listed_names_are_sorted_and_found() {
        let names = tools::names();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        for name in [
            "ls", "sed", "grep", "find", "diff", "tar", "gzip", "unzip", "[",
        ] {
            assert!(names.contains(&name), "{name} missing");
            assert!(tools::lookup(name).is_some());
        }
    }
}

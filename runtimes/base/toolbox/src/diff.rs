//! diff: uutils diffutils' `diff` command. The crate's library has the option parser and
//! every output format but keeps the command itself in its binary, so this is that
//! command: read both files (`-` is standard input), diff, print. Exit status: 0 same,
//! 1 different, 2 trouble.

use std::ffi::OsString;
use std::io::{self, Read, Write};

use diffutilslib::params::{Format, parse_params};
use diffutilslib::utils::report_failure_to_read_input_file;

fn read_input(path: &OsString) -> io::Result<Vec<u8>> {
    if path == "-" {
        let mut data = Vec::new();
        io::stdin().read_to_end(&mut data)?;
        Ok(data)
    } else {
        std::fs::read(path)
    }
}

pub fn diff(args: Vec<OsString>) -> i32 {
    let params = match parse_params(args.into_iter().peekable()) {
        Ok(params) => params,
        Err(message) => {
            eprintln!("{message}");
            return 2;
        }
    };
    let report_identical = || {
        if params.report_identical_files {
            println!(
                "Files {} and {} are identical",
                params.from.to_string_lossy(),
                params.to.to_string_lossy()
            );
        }
    };
    if params.from == "-" && params.to == "-" {
        report_identical();
        return 0;
    }
    let mut failed = false;
    let mut read = |path: &OsString| {
        read_input(path).unwrap_or_else(|e| {
            report_failure_to_read_input_file(&params.executable, path, &e);
            failed = true;
            Vec::new()
        })
    };
    let from = read(&params.from);
    let to = read(&params.to);
    if failed {
        return 2;
    }
    let mut stdout = io::stdout().lock();
    let output = match params.format {
        Format::Normal => diffutilslib::normal_diff(&from, &to, &params),
        Format::Unified => diffutilslib::unified_diff(&from, &to, &params),
        Format::Context => diffutilslib::context_diff(&from, &to, &params),
        Format::Ed => match diffutilslib::ed_diff(&from, &to, &params) {
            Ok(output) => output,
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        },
        Format::SideBySide => diffutilslib::side_by_side_diff(&from, &to, &mut stdout, &params),
    };
    let written = if params.brief && !output.is_empty() {
        writeln!(
            stdout,
            "Files {} and {} differ",
            params.from.to_string_lossy(),
            params.to.to_string_lossy()
        )
    } else {
        stdout.write_all(&output)
    };
    if written.and_then(|()| stdout.flush()).is_err() {
        return 2;
    }
    drop(stdout);
    if output.is_empty() {
        report_identical();
        0
    } else {
        1
    }
}

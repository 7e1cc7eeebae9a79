//! du: disk usage of files and directory trees (uutils du does not build for WASI). WASI
//! shows no block counts, so sizes are apparent sizes (what `du --apparent-size` prints),
//! in 1 KiB units rounded up unless -b, -m or -h. Options: -s, -a, -c, -d N, -h, -k, -m,
//! -b, -L. Exit status: 0, or 1 when a file could not be read.

use std::ffi::OsString;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use lexopt::prelude::*;

const USAGE: &str = "Usage: du [-sachkmbL] [-d DEPTH] [FILE]...";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Bytes,
    Kibi,
    Mebi,
    Human,
}

struct Options {
    summarize: bool,
    all: bool,
    total: bool,
    max_depth: Option<usize>,
    unit: Unit,
    dereference: bool,
    files: Vec<PathBuf>,
}

fn parse_args(args: Vec<OsString>) -> Result<Option<Options>, String> {
    let mut opts = Options {
        summarize: false,
        all: false,
        total: false,
        max_depth: None,
        unit: Unit::Kibi,
        dereference: false,
        files: Vec::new(),
    };
    let text = |e: lexopt::Error| e.to_string();
    let mut parser = lexopt::Parser::from_args(args.into_iter().skip(1));
    while let Some(arg) = parser.next().map_err(text)? {
        match arg {
            Short('s') | Long("summarize") => opts.summarize = true,
            Short('a') | Long("all") => opts.all = true,
            Short('c') | Long("total") => opts.total = true,
            Short('d') | Long("max-depth") => {
                let value = parser.value().map_err(text)?;
                let value = value.to_string_lossy();
                opts.max_depth = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid maximum depth '{value}'"))?,
                );
            }
            Short('h') | Long("human-readable") => opts.unit = Unit::Human,
            Short('k') => opts.unit = Unit::Kibi,
            Short('m') => opts.unit = Unit::Mebi,
            Short('b') | Long("bytes") => opts.unit = Unit::Bytes,
            Short('L') | Long("dereference") => opts.dereference = true,
            Short('x' | 'P' | 'H' | 'l') | Long("apparent-size" | "one-file-system") => {}
            Long("help") => {
                println!("{USAGE}");
                return Ok(None);
            }
            Value(file) => opts.files.push(file.into()),
            other => return Err(other.unexpected().to_string()),
        }
    }
    if opts.summarize && opts.all {
        return Err("cannot both summarize and show all entries".into());
    }
    if opts.summarize {
        opts.max_depth = Some(0);
    }
    if opts.files.is_empty() {
        opts.files.push(".".into());
    }
    Ok(Some(opts))
}

/// `bytes` in the chosen unit, as du prints it.
fn format_size(bytes: u64, unit: Unit) -> String {
    match unit {
        Unit::Bytes => bytes.to_string(),
        Unit::Kibi => bytes.div_ceil(1024).to_string(),
        Unit::Mebi => bytes.div_ceil(1024 * 1024).to_string(),
        Unit::Human => {
            if bytes < 1024 {
                return bytes.to_string();
            }
            let mut value = bytes as f64;
            let mut suffix = 'B';
            for s in ['K', 'M', 'G', 'T', 'P', 'E'] {
                if value < 1024.0 {
                    break;
                }
                value /= 1024.0;
                suffix = s;
            }
            if value < 10.0 {
                format!("{:.1}{suffix}", (value * 10.0).ceil() / 10.0)
            } else {
                format!("{}{suffix}", value.ceil())
            }
        }
    }
}

struct Du<W: Write> {
    opts: Options,
    out: W,
    failed: bool,
}

impl<W: Write> Du<W> {
    fn print(&mut self, bytes: u64, path: &Path) -> io::Result<()> {
        writeln!(
            self.out,
            "{}\t{}",
            format_size(bytes, self.opts.unit),
            path.display()
        )
    }

    fn shown(&self, depth: usize) -> bool {
        self.opts.max_depth.is_none_or(|max| depth <= max)
    }

    /// The size of the tree at `path`, printing its directories (and files with -a).
    fn walk(&mut self, path: &Path, depth: usize) -> io::Result<u64> {
        let meta = if self.opts.dereference {
            fs::metadata(path)
        } else {
            fs::symlink_metadata(path)
        };
        let meta = match meta {
            Ok(meta) => meta,
            Err(e) => {
                self.warn(&format!(
                    "cannot access '{}': {}",
                    path.display(),
                    crate::io_error_text(&e)
                ));
                return Ok(0);
            }
        };
        let mut total = meta.len();
        if !meta.is_dir() {
            if depth == 0 || (self.opts.all && self.shown(depth)) {
                self.print(total, path)?;
            }
            return Ok(total);
        }
        match fs::read_dir(path) {
            Ok(entries) => {
                let mut children: Vec<PathBuf> =
                    entries.filter_map(Result::ok).map(|e| e.path()).collect();
                children.sort();
                for child in children {
                    total += self.walk(&child, depth + 1)?;
                }
            }
            Err(e) => self.warn(&format!(
                "cannot read directory '{}': {}",
                path.display(),
                crate::io_error_text(&e)
            )),
        }
        if self.shown(depth) {
            self.print(total, path)?;
        }
        Ok(total)
    }

    fn warn(&mut self, message: &str) {
        self.failed = true;
        let _ = self.out.flush();
        eprintln!("du: {message}");
    }

    fn run(&mut self) -> io::Result<()> {
        let mut grand_total = 0;
        for file in std::mem::take(&mut self.opts.files) {
            grand_total += self.walk(&file, 0)?;
        }
        if self.opts.total {
            self.print(grand_total, Path::new("total"))?;
        }
        self.out.flush()
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
    let opts = match parse_args(args) {
        Ok(Some(opts)) => opts,
        Ok(None) => return 0,
        Err(message) => {
            eprintln!("du: {message}\n{USAGE}");
            return 1;
        }
    };
    let mut du = Du {
        opts,
        out: BufWriter::new(io::stdout().lock()),
        failed: false,
    };
    match du.run() {
        Ok(()) => i32::from(du.failed),
        Err(_) => crate::BROKEN_PIPE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(format_size(1, Unit::Kibi), "1");
        assert_eq!(format_size(2048, Unit::Kibi), "2");
        assert_eq!(format_size(1536, Unit::Human), "1.5K");
        assert_eq!(format_size(15 * 1024 * 1024 + 1, Unit::Human), "16M");
        assert_eq!(format_size(100, Unit::Human), "100");
    }
}

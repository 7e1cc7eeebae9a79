//! gzip, gunzip and zcat over `flate2`. `gzip FILE` writes FILE.gz and removes FILE
//! (unless -k); -d decompresses (FILE.gz → FILE, .tgz → .tar); -c writes to standard
//! output; no FILE (or `-`) filters standard input to standard output. Also -f, -t, -q,
//! -v, -S SUF, -1…-9, -n/-N. Exit status: 0, 1 on an error, 2 on a warning only.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};
use lexopt::prelude::*;

use crate::archive;

const USAGE: &str = "\
Usage: gzip [-cdfkqtvnN19] [-S SUF] [FILE]...
Compress or decompress FILEs (by default, compress in place).
With no FILE, or when FILE is -, read standard input.";

struct Options {
    program: &'static str,
    decompress: bool,
    stdout: bool,
    force: bool,
    keep: bool,
    test: bool,
    quiet: bool,
    verbose: bool,
    name: bool,
    level: u32,
    suffix: String,
    files: Vec<OsString>,
}

/// Status after a warning; an error (status 1) outranks it.
const WARNING: i32 = 2;

fn parse_args(
    program: &'static str,
    decompress: bool,
    stdout: bool,
    args: Vec<OsString>,
) -> Result<Option<Options>, String> {
    let mut opts = Options {
        program,
        decompress,
        stdout,
        force: false,
        keep: false,
        test: false,
        quiet: false,
        verbose: false,
        name: true,
        level: 6,
        suffix: ".gz".into(),
        files: Vec::new(),
    };
    let text = |e: lexopt::Error| e.to_string();
    let mut parser = lexopt::Parser::from_args(args.into_iter().skip(1));
    while let Some(arg) = parser.next().map_err(text)? {
        match arg {
            Short('c') | Long("stdout" | "to-stdout") => opts.stdout = true,
            Short('d') | Long("decompress" | "uncompress") => opts.decompress = true,
            Short('f') | Long("force") => opts.force = true,
            Short('k') | Long("keep") => opts.keep = true,
            Short('t') | Long("test") => {
                opts.test = true;
                opts.decompress = true;
            }
            Short('q') | Long("quiet") => opts.quiet = true,
            Short('v') | Long("verbose") => opts.verbose = true,
            Short('n') | Long("no-name") => opts.name = false,
            Short('N') | Long("name") => opts.name = true,
            Short('S') | Long("suffix") => {
                opts.suffix = parser.value().map_err(text)?.to_string_lossy().into_owned();
                if opts.suffix.is_empty() {
                    return Err("invalid suffix ''".into());
                }
            }
            Short(c @ '1'..='9') => opts.level = c.to_digit(10).unwrap_or(6),
            Long("fast") => opts.level = 1,
            Long("best") => opts.level = 9,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(None);
            }
            Value(file) => opts.files.push(file),
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(Some(opts))
}

struct Gzip {
    opts: Options,
    status: i32,
}

impl Gzip {
    fn error(&mut self, message: &str) {
        self.status = 1;
        eprintln!("{}: {message}", self.opts.program);
    }

    fn warning(&mut self, message: &str) {
        if self.status == 0 {
            self.status = WARNING;
        }
        if !self.opts.quiet {
            eprintln!("{}: {message}", self.opts.program);
        }
    }

    /// Compresses `input` into `output`, naming the original in the header when asked.
    fn compress(
        &self,
        input: &mut dyn Read,
        output: &mut dyn Write,
        name: Option<&str>,
        mtime: u32,
    ) -> io::Result<()> {
        let mut builder = GzBuilder::new();
        if self.opts.name {
            builder = builder.mtime(mtime);
            if let Some(name) = name {
                builder = builder.filename(name);
            }
        }
        let mut encoder = builder.write(output, Compression::new(self.opts.level));
        io::copy(input, &mut encoder)?;
        encoder.finish()?.flush()
    }

    fn decompress(&self, input: &mut dyn Read, output: &mut dyn Write) -> io::Result<()> {
        let mut decoder = MultiGzDecoder::new(BufReader::with_capacity(1 << 16, input));
        io::copy(&mut decoder, output)?;
        output.flush()
    }

    fn filter(
        &self,
        input: &mut dyn Read,
        output: &mut dyn Write,
        name: Option<&str>,
        mtime: u32,
    ) -> io::Result<()> {
        if self.opts.test {
            self.decompress(input, &mut io::sink())
        } else if self.opts.decompress {
            self.decompress(input, output)
        } else {
            self.compress(input, output, name, mtime)
        }
    }

    fn stdin(&mut self) {
        let mut stdout = BufWriter::with_capacity(1 << 16, io::stdout().lock());
        if let Err(e) = self.filter(&mut io::stdin().lock(), &mut stdout, None, 0) {
            self.error(&format!("stdin: {}", describe(&e)));
        }
    }

    /// The output file for `path`, or why there is none.
    fn output_path(&self, path: &Path) -> Result<PathBuf, String> {
        let text = path.to_string_lossy();
        if !self.opts.decompress {
            if text.ends_with(&self.opts.suffix) {
                return Err(format!(
                    "{text} already has {} suffix -- unchanged",
                    self.opts.suffix
                ));
            }
            return Ok(PathBuf::from(format!("{text}{}", self.opts.suffix)));
        }
        if let Some(stem) = text.strip_suffix(".tgz") {
            return Ok(PathBuf::from(format!("{stem}.tar")));
        }
        for suffix in [self.opts.suffix.as_str(), ".gz", "-gz", ".z", "-z", "_z"] {
            if let Some(stem) = text.strip_suffix(suffix)
                && !stem.is_empty()
            {
                return Ok(PathBuf::from(stem));
            }
        }
        Err(format!("{text}: unknown suffix -- ignored"))
    }

    fn file(&mut self, path: &Path) {
        let shown = path.display().to_string();
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) => return self.error(&format!("{shown}: {}", crate::io_error_text(&e))),
        };
        if meta.is_dir() {
            return self.warning(&format!("{shown} is a directory -- ignored"));
        }
        let mtime = meta
            .modified()
            .ok()
            .map_or(0, |t| u32::try_from(archive::unix_seconds(t)).unwrap_or(0));
        let base = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let mut input = match File::open(path) {
            Ok(file) => BufReader::with_capacity(1 << 16, file),
            Err(e) => return self.error(&format!("{shown}: {}", crate::io_error_text(&e))),
        };
        if self.opts.stdout || self.opts.test {
            let mut stdout = BufWriter::with_capacity(1 << 16, io::stdout().lock());
            if let Err(e) = self.filter(&mut input, &mut stdout, base.as_deref(), mtime) {
                self.error(&format!("{shown}: {}", describe(&e)));
            }
            return;
        }
        let output = match self.output_path(path) {
            Ok(output) => output,
            Err(message) => return self.warning(&message),
        };
        if fs::symlink_metadata(&output).is_ok() {
            if !self.opts.force {
                return self.error(&format!(
                    "{} already exists; not overwritten",
                    output.display()
                ));
            }
            let _ = fs::remove_file(&output);
        }
        let result = File::create(&output).and_then(|file| {
            let mut writer = BufWriter::with_capacity(1 << 16, file);
            self.filter(&mut input, &mut writer, base.as_deref(), mtime)?;
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            let _ = file.set_modified(meta.modified().unwrap_or(UNIX_EPOCH));
            Ok(())
        });
        if let Err(e) = result {
            let _ = fs::remove_file(&output);
            return self.error(&format!("{shown}: {}", describe(&e)));
        }
        if self.opts.verbose {
            eprintln!("{shown}:\t replaced with {}", output.display());
        }
        if !self.opts.keep
            && let Err(e) = fs::remove_file(path)
        {
            self.error(&format!("{shown}: {}", crate::io_error_text(&e)));
        }
    }

    fn run(&mut self) {
        let files = std::mem::take(&mut self.opts.files);
        if files.is_empty() {
            return self.stdin();
        }
        for file in files {
            if file == "-" {
                self.stdin();
            } else {
                self.file(Path::new(&file));
            }
        }
    }
}

/// An error while filtering, in gzip's words for corrupt input.
fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => "not in gzip format".into(),
        io::ErrorKind::UnexpectedEof => "unexpected end of file".into(),
        _ => crate::io_error_text(e),
    }
}

fn run(program: &'static str, decompress: bool, stdout: bool, args: Vec<OsString>) -> i32 {
    let opts = match parse_args(program, decompress, stdout, args) {
        Ok(Some(opts)) => opts,
        Ok(None) => return 0,
        Err(message) => {
            eprintln!("{program}: {message}\n{USAGE}");
            return 1;
        }
    };
    let mut gzip = Gzip { opts, status: 0 };
    gzip.run();
    gzip.status
}

pub fn gzip(args: Vec<OsString>) -> i32 {
    run("gzip", false, false, args)
}

pub fn gunzip(args: Vec<OsString>) -> i32 {
    run("gunzip", true, false, args)
}

pub fn zcat(args: Vec<OsString>) -> i32 {
    run("zcat", true, true, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names() {
        let gzip = |decompress| Gzip {
            opts: parse_args("gzip", decompress, false, vec!["gzip".into()])
                .unwrap()
                .unwrap(),
            status: 0,
        };
        assert_eq!(
            gzip(false).output_path(Path::new("a.txt")),
            Ok("a.txt.gz".into())
        );
        assert!(gzip(false).output_path(Path::new("a.gz")).is_err());
        assert_eq!(
            gzip(true).output_path(Path::new("a.txt.gz")),
            Ok("a.txt".into())
        );
        assert_eq!(
            gzip(true).output_path(Path::new("a.tgz")),
            Ok("a.tar".into())
        );
        assert!(gzip(true).output_path(Path::new("a.txt")).is_err());
    }

    #[test]
    fn round_trip() {
        let gzip = Gzip {
            opts: parse_args("gzip", false, false, vec!["gzip".into()])
                .unwrap()
                .unwrap(),
            status: 0,
        };
        let mut packed = Vec::new();
        gzip.compress(&mut &b"hello\n"[..], &mut packed, Some("a"), 0)
            .unwrap();
        let mut unpacked = Vec::new();
        gzip.decompress(&mut &packed[..], &mut unpacked).unwrap();
        assert_eq!(unpacked, b"hello\n");
    }
}

//! grep: GNU-style line search over the `regex` crate (uutils grep needs the Oniguruma C
//! library, which does not build for WASI without a C toolchain). Patterns are basic (the
//! default, translated by `posix-regex`), extended (-E), fixed strings (-F) or the `regex`
//! crate's own syntax (-P). Exit status: 0 a line was selected, 1 none, 2 an error (0 with
//! -q when something matched, whatever else failed).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use posix_regex::Dialect;
use regex::bytes::{Regex, RegexBuilder};

use crate::fnmatch::fnmatch;

const USAGE: &str = "Usage: grep [OPTION]... PATTERNS [FILE]...";

const HELP: &str = "\
Search for PATTERNS in each FILE (or standard input).
PATTERNS can contain multiple patterns separated by newlines.

Pattern selection and interpretation:
  -E, --extended-regexp     PATTERNS are extended regular expressions
  -F, --fixed-strings       PATTERNS are strings
  -G, --basic-regexp        PATTERNS are basic regular expressions (default)
  -P, --perl-regexp         PATTERNS use the Rust regex crate's syntax
  -e, --regexp=PATTERNS     use PATTERNS for matching
  -f, --file=FILE           take PATTERNS from FILE
  -i, --ignore-case         ignore case distinctions (-y is the same)
      --no-ignore-case      do not ignore case distinctions (default)
  -w, --word-regexp         match only whole words
  -x, --line-regexp         match only whole lines
  -z, --null-data           a data line ends in 0 byte, not newline

Miscellaneous:
  -s, --no-messages         suppress error messages
  -v, --invert-match        select non-matching lines
  -V, --version             display version information and exit
      --help                display this help text and exit

Output control:
  -m, --max-count=NUM       stop after NUM selected lines
  -b, --byte-offset         print the byte offset with output lines
  -n, --line-number         print line number with output lines
  -H, --with-filename       print file name with output lines
  -h, --no-filename         suppress the file name prefix on output
      --label=LABEL         use LABEL as the standard input file name prefix
  -o, --only-matching       show only nonempty parts of lines that match
  -q, --quiet, --silent     suppress all normal output
      --binary-files=TYPE   assume that binary files are TYPE;
                            TYPE is 'binary', 'text', or 'without-match'
  -a, --text                equivalent to --binary-files=text
  -I                        equivalent to --binary-files=without-match
  -r, --recursive           search directories recursively
  -R, --dereference-recursive  likewise, but follow all symlinks
      --include=GLOB        search only files that match GLOB
      --exclude=GLOB        skip files that match GLOB
      --exclude-dir=GLOB    skip directories that match GLOB
  -L, --files-without-match  print only names of FILEs with no selected lines
  -l, --files-with-matches  print only names of FILEs with selected lines
  -c, --count               print only a count of selected lines per FILE
  -Z, --null                print 0 byte after FILE name

Context control:
  -B, --before-context=NUM  print NUM lines of leading context
  -A, --after-context=NUM   print NUM lines of trailing context
  -C, --context=NUM         print NUM lines of output context
  -NUM                      same as --context=NUM
      --color[=WHEN]        accepted; output is never colored
";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Basic,
    Extended,
    Fixed,
    Perl,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BinaryFiles {
    Binary,
    Text,
    WithoutMatch,
}

/// What is printed for each file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Lines,
    Count,
    FilesWith,
    FilesWithout,
    Quiet,
}

struct Options {
    syntax: Syntax,
    patterns: Vec<String>,
    pattern_given: bool,
    ignore_case: bool,
    invert: bool,
    word: bool,
    line: bool,
    mode: Mode,
    line_number: bool,
    byte_offset: bool,
    with_filename: Option<bool>,
    only_matching: bool,
    no_messages: bool,
    recursive: bool,
    dereference: bool,
    max_count: Option<u64>,
    after: usize,
    before: usize,
    binary: BinaryFiles,
    null_after_name: bool,
    null_data: bool,
    label: String,
    include: Vec<String>,
    exclude: Vec<String>,
    exclude_dir: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            syntax: Syntax::Basic,
            patterns: Vec::new(),
            pattern_given: false,
            ignore_case: false,
            invert: false,
            word: false,
            line: false,
            mode: Mode::Lines,
            line_number: false,
            byte_offset: false,
            with_filename: None,
            only_matching: false,
            no_messages: false,
            recursive: false,
            dereference: false,
            max_count: None,
            after: 0,
            before: 0,
            binary: BinaryFiles::Binary,
            null_after_name: false,
            null_data: false,
            label: "(standard input)".into(),
            include: Vec::new(),
            exclude: Vec::new(),
            exclude_dir: Vec::new(),
        }
    }
}

/// Why the command line was refused.
enum ArgError {
    Usage(String),
    Fatal(String),
    Exit(i32),
}

fn parse_number(option: &str, value: &str) -> Result<u64, ArgError> {
    value
        .trim()
        .parse()
        .map_err(|_| ArgError::Fatal(format!("invalid {option} argument '{value}'")))
}

fn parse_context(value: &str) -> Result<usize, ArgError> {
    value
        .trim()
        .parse()
        .map_err(|_| ArgError::Fatal(format!("{value}: invalid context length argument")))
}

fn add_patterns(opts: &mut Options, text: &str) {
    opts.patterns.extend(text.split('\n').map(str::to_owned));
    opts.pattern_given = true;
}

fn add_pattern_file(opts: &mut Options, path: &str) -> Result<(), ArgError> {
    let data = if path == "-" {
        let mut data = Vec::new();
        io::Read::read_to_end(&mut io::stdin(), &mut data).map(|_| data)
    } else {
        std::fs::read(path)
    }
    .map_err(|e| ArgError::Fatal(format!("{path}: {}", crate::io_error_text(&e))))?;
    let text = String::from_utf8_lossy(&data);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    if !text.is_empty() || !data.is_empty() {
        opts.patterns.extend(text.split('\n').map(str::to_owned));
    }
    opts.pattern_given = true;
    Ok(())
}

/// Applies the option `name` (a short letter or a long name); `value` yields its argument.
fn apply_option(
    opts: &mut Options,
    name: &str,
    value: &mut dyn FnMut() -> Option<String>,
) -> Result<(), ArgError> {
    let mut required = |what: &str| {
        value().ok_or_else(|| ArgError::Usage(format!("option requires an argument -- '{what}'")))
    };
    match name {
        "E" | "extended-regexp" => opts.syntax = Syntax::Extended,
        "F" | "fixed-strings" => opts.syntax = Syntax::Fixed,
        "G" | "basic-regexp" => opts.syntax = Syntax::Basic,
        "P" | "perl-regexp" => opts.syntax = Syntax::Perl,
        "e" | "regexp" => add_patterns(opts, &required(name)?),
        "f" | "file" => add_pattern_file(opts, &required(name)?)?,
        "i" | "y" | "ignore-case" => opts.ignore_case = true,
        "no-ignore-case" => opts.ignore_case = false,
        "w" | "word-regexp" => opts.word = true,
        "x" | "line-regexp" => opts.line = true,
        "z" | "null-data" => opts.null_data = true,
        "s" | "no-messages" => opts.no_messages = true,
        "v" | "invert-match" => opts.invert = true,
        "V" | "version" => {
            println!("grep (wasmbuild toolbox) {}", env!("CARGO_PKG_VERSION"));
            return Err(ArgError::Exit(0));
        }
        "help" => {
            println!("{USAGE}\n{HELP}");
            return Err(ArgError::Exit(0));
        }
        "m" | "max-count" => opts.max_count = Some(parse_number("max count", &required(name)?)?),
        "b" | "byte-offset" => opts.byte_offset = true,
        "n" | "line-number" => opts.line_number = true,
        "H" | "with-filename" => opts.with_filename = Some(true),
        "h" | "no-filename" => opts.with_filename = Some(false),
        "label" => opts.label = required(name)?,
        "o" | "only-matching" => opts.only_matching = true,
        "q" | "quiet" | "silent" => opts.mode = Mode::Quiet,
        "binary-files" => {
            opts.binary = match required(name)?.as_str() {
                "binary" => BinaryFiles::Binary,
                "text" => BinaryFiles::Text,
                "without-match" => BinaryFiles::WithoutMatch,
                other => {
                    return Err(ArgError::Fatal(format!(
                        "unknown binary-files type '{other}'"
                    )));
                }
            }
        }
        "a" | "text" => opts.binary = BinaryFiles::Text,
        "I" => opts.binary = BinaryFiles::WithoutMatch,
        "r" | "recursive" => opts.recursive = true,
        "R" | "dereference-recursive" => {
            opts.recursive = true;
            opts.dereference = true;
        }
        "include" => opts.include.push(required(name)?),
        "exclude" => opts.exclude.push(required(name)?),
        "exclude-dir" => opts.exclude_dir.push(required(name)?),
        "L" | "files-without-match" => opts.mode = Mode::FilesWithout,
        "l" | "files-with-matches" => opts.mode = Mode::FilesWith,
        "c" | "count" => opts.mode = Mode::Count,
        "Z" | "null" => opts.null_after_name = true,
        "A" | "after-context" => opts.after = parse_context(&required(name)?)?,
        "B" | "before-context" => opts.before = parse_context(&required(name)?)?,
        "C" | "context" => {
            let n = parse_context(&required(name)?)?;
            opts.after = n;
            opts.before = n;
        }
        // Accepted for compatibility; they change nothing here.
        "U" | "binary" | "line-buffered" | "T" | "initial-tab" => {}
        _ => {
            let shown = if name.len() == 1 {
                format!("invalid option -- '{name}'")
            } else {
                format!("unrecognized option '--{name}'")
            };
            return Err(ArgError::Usage(shown));
        }
    }
    Ok(())
}

/// Long options that take an argument (`--name VALUE` as well as `--name=VALUE`).
const LONG_WITH_VALUE: &[&str] = &[
    "regexp",
    "file",
    "max-count",
    "label",
    "binary-files",
    "include",
    "exclude",
    "exclude-dir",
    "after-context",
    "before-context",
    "context",
];

/// Short options that take an argument.
const SHORT_WITH_VALUE: &str = "efmABCdD";

fn parse_args(args: Vec<OsString>) -> Result<(Options, Vec<OsString>), ArgError> {
    let mut opts = Options::default();
    let mut operands = Vec::new();
    let mut it = args.into_iter().skip(1);
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str().map(str::to_owned) else {
            operands.push(arg);
            continue;
        };
        if text == "--" {
            operands.extend(it.by_ref());
            break;
        }
        if let Some(long) = text.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (long.to_owned(), None),
            };
            if matches!(name.as_str(), "color" | "colour") {
                continue;
            }
            if name == "context" && inline.is_none() {
                // GNU allows a bare --context; it means two lines.
                opts.after = 2;
                opts.before = 2;
                continue;
            }
            let takes_value = LONG_WITH_VALUE.contains(&name.as_str());
            if !takes_value && inline.is_some() {
                return Err(ArgError::Usage(format!(
                    "option '--{name}' doesn't allow an argument"
                )));
            }
            let mut inline = inline;
            let mut value = || inline.take().or_else(|| it.next().map(os_lossy));
            apply_option(&mut opts, &name, &mut value)?;
            continue;
        }
        if text.len() > 1 && text.starts_with('-') {
            let cluster: Vec<char> = text[1..].chars().collect();
            let mut i = 0;
            while i < cluster.len() {
                let c = cluster[i];
                i += 1;
                if c.is_ascii_digit() {
                    let mut n = c.to_digit(10).unwrap_or(0) as usize;
                    while i < cluster.len() && cluster[i].is_ascii_digit() {
                        n = n * 10 + cluster[i].to_digit(10).unwrap_or(0) as usize;
                        i += 1;
                    }
                    opts.after = n;
                    opts.before = n;
                    continue;
                }
                if SHORT_WITH_VALUE.contains(c) {
                    let rest: String = cluster[i..].iter().collect();
                    i = cluster.len();
                    let mut inline = (!rest.is_empty()).then_some(rest);
                    let mut value = || inline.take().or_else(|| it.next().map(os_lossy));
                    if c == 'd' || c == 'D' {
                        // -d/-D ACTION: only "recurse" changes anything.
                        if value().as_deref() == Some("recurse") {
                            opts.recursive = true;
                        }
                        continue;
                    }
                    apply_option(&mut opts, &c.to_string(), &mut value)?;
                } else {
                    apply_option(&mut opts, &c.to_string(), &mut || None)?;
                }
            }
            continue;
        }
        operands.push(arg);
    }
    if !opts.pattern_given {
        let Some(first) = (!operands.is_empty()).then(|| operands.remove(0)) else {
            return Err(ArgError::Usage(String::new()));
        };
        add_patterns(&mut opts, &os_lossy(first));
    }
    Ok((opts, operands))
}

fn os_lossy(s: OsString) -> String {
    s.to_string_lossy().into_owned()
}

fn build_regex(opts: &Options) -> Result<Option<Regex>, String> {
    if opts.patterns.is_empty() {
        return Ok(None);
    }
    let mut parts = Vec::with_capacity(opts.patterns.len());
    for p in &opts.patterns {
        let translated = match opts.syntax {
            Syntax::Fixed => regex::escape(p),
            Syntax::Perl => p.clone(),
            Syntax::Basic => {
                posix_regex::translate(p, Dialect::Basic).map_err(|e| e.to_string())?
            }
            Syntax::Extended => {
                posix_regex::translate(p, Dialect::Extended).map_err(|e| e.to_string())?
            }
        };
        parts.push(format!("(?:{translated})"));
    }
    let mut pattern = parts.join("|");
    if opts.line {
        pattern = format!("^(?:{pattern})$");
    } else if opts.word {
        pattern = format!(r"\b{{start-half}}(?:{pattern})\b{{end-half}}");
    }
    RegexBuilder::new(&pattern)
        .case_insensitive(opts.ignore_case)
        .size_limit(1 << 28)
        .dfa_size_limit(1 << 28)
        .build()
        .map(Some)
        .map_err(|e| match e {
            regex::Error::Syntax(text) => text,
            other => other.to_string(),
        })
}

/// The search over all files, and what it found.
struct Grep<'a> {
    opts: &'a Options,
    regex: Option<Regex>,
    out: BufWriter<io::StdoutLock<'static>>,
    with_filename: bool,
    eol: u8,
    selected_any: bool,
    error: bool,
    /// Whether a group of lines was printed already (for the `--` separator).
    printed_group: bool,
}

/// Whether the search should go on after a file.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

impl Grep<'_> {
    fn warn(&mut self, message: &str) {
        self.error = true;
        if !self.opts.no_messages {
            let _ = self.out.flush();
            eprintln!("grep: {message}");
        }
    }

    fn is_selected(&self, line: &[u8]) -> bool {
        let matched = self.regex.as_ref().is_some_and(|r| r.is_match(line));
        matched != self.opts.invert
    }

    fn write_name(&mut self, name: &str, sep: u8) -> io::Result<()> {
        self.out.write_all(name.as_bytes())?;
        self.out
            .write_all(&[if self.opts.null_after_name { 0 } else { sep }])
    }

    fn write_prefix(&mut self, name: &str, lineno: u64, offset: u64, sep: u8) -> io::Result<()> {
        if self.with_filename {
            self.write_name(name, sep)?;
        }
        if self.opts.line_number {
            write!(self.out, "{lineno}{}", sep as char)?;
        }
        if self.opts.byte_offset {
            write!(self.out, "{offset}{}", sep as char)?;
        }
        Ok(())
    }

    fn write_line(
        &mut self,
        name: &str,
        lineno: u64,
        offset: u64,
        line: &[u8],
        sep: u8,
    ) -> io::Result<()> {
        self.write_prefix(name, lineno, offset, sep)?;
        self.out.write_all(line)?;
        self.out.write_all(&[self.eol])
    }

    fn write_matches(
        &mut self,
        name: &str,
        lineno: u64,
        offset: u64,
        line: &[u8],
    ) -> io::Result<()> {
        if self.opts.invert {
            return Ok(());
        }
        let Some(regex) = self.regex.clone() else {
            return Ok(());
        };
        for m in regex.find_iter(line).filter(|m| !m.is_empty()) {
            self.write_prefix(name, lineno, offset + m.start() as u64, b':')?;
            self.out.write_all(m.as_bytes())?;
            self.out.write_all(&[self.eol])?;
        }
        Ok(())
    }

    /// Searches one input; `name` is what is printed for it.
    fn search(&mut self, reader: &mut dyn BufRead, name: &str) -> io::Result<Flow> {
        let opts = self.opts;
        let binary =
            opts.binary != BinaryFiles::Text && !opts.null_data && reader.fill_buf()?.contains(&0);
        if binary && opts.binary == BinaryFiles::WithoutMatch {
            return Ok(Flow::Continue);
        }
        let print_lines = opts.mode == Mode::Lines && !binary;
        let context = print_lines && !opts.only_matching && (opts.before > 0 || opts.after > 0);
        let mut before: VecDeque<(u64, u64, Vec<u8>)> = VecDeque::new();
        let mut after_left = 0usize;
        let mut last_printed: Option<u64> = None;
        let mut count = 0u64;
        let mut lineno = 0u64;
        let mut offset = 0u64;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if reader.read_until(self.eol, &mut buf)? == 0 {
                break;
            }
            lineno += 1;
            let line_offset = offset;
            offset += buf.len() as u64;
            let line = buf.strip_suffix(&[self.eol]).unwrap_or(&buf);
            let selected = self.is_selected(line);
            let max_reached = opts.max_count.is_some_and(|m| count >= m);
            if max_reached && (selected || after_left == 0) {
                break;
            }
            if !selected {
                if context {
                    if after_left > 0 {
                        after_left -= 1;
                        last_printed = Some(lineno);
                        self.write_line(name, lineno, line_offset, line, b'-')?;
                    } else if opts.before > 0 {
                        if before.len() == opts.before {
                            before.pop_front();
                        }
                        before.push_back((lineno, line_offset, line.to_vec()));
                    }
                }
                continue;
            }
            count += 1;
            self.selected_any = true;
            match opts.mode {
                Mode::Quiet => return Ok(Flow::Stop),
                Mode::FilesWith | Mode::FilesWithout => break,
                Mode::Count => continue,
                Mode::Lines if binary => break,
                Mode::Lines => {}
            }
            if context {
                let first = before.front().map_or(lineno, |(n, _, _)| *n);
                let adjacent = last_printed.is_some_and(|last| last + 1 >= first);
                if self.printed_group && !adjacent {
                    self.out.write_all(b"--\n")?;
                }
                while let Some((n, o, l)) = before.pop_front() {
                    self.write_line(name, n, o, &l, b'-')?;
                }
                after_left = opts.after;
                self.printed_group = true;
            }
            last_printed = Some(lineno);
            if opts.only_matching {
                self.write_matches(name, lineno, line_offset, line)?;
            } else {
                self.write_line(name, lineno, line_offset, line, b':')?;
            }
        }
        match opts.mode {
            Mode::Count => {
                if self.with_filename {
                    self.write_name(name, b':')?;
                }
                writeln!(self.out, "{count}")?;
            }
            Mode::FilesWith if count > 0 => self.write_file_name(name)?,
            Mode::FilesWithout if count == 0 => self.write_file_name(name)?,
            Mode::Lines if binary && count > 0 => {
                self.out.flush()?;
                eprintln!("grep: {name}: binary file matches");
            }
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn write_file_name(&mut self, name: &str) -> io::Result<()> {
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(if self.opts.null_after_name {
            b"\0"
        } else {
            b"\n"
        })
    }

    fn search_path(&mut self, path: &Path, name: &str) -> io::Result<Flow> {
        match File::open(path) {
            Ok(file) => self.search(&mut BufReader::with_capacity(1 << 16, file), name),
            Err(e) => {
                self.warn(&format!("{name}: {}", crate::io_error_text(&e)));
                Ok(Flow::Continue)
            }
        }
    }

    fn included(&self, path: &Path) -> bool {
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let opts = self.opts;
        if opts.exclude.iter().any(|g| fnmatch(g, &base)) {
            return false;
        }
        opts.include.is_empty() || opts.include.iter().any(|g| fnmatch(g, &base))
    }

    fn search_tree(&mut self, root: &Path, strip_dot: bool) -> io::Result<Flow> {
        let exclude_dir = &self.opts.exclude_dir;
        let walker = walkdir::WalkDir::new(root)
            .follow_links(self.opts.dereference)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                e.depth() == 0
                    || !e.file_type().is_dir()
                    || !exclude_dir
                        .iter()
                        .any(|g| fnmatch(g, &e.file_name().to_string_lossy()))
            });
        for entry in walker {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    let shown = e
                        .path()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    let reason = e
                        .io_error()
                        .map(crate::io_error_text)
                        .unwrap_or_else(|| e.to_string());
                    self.warn(&format!("{shown}: {reason}"));
                    continue;
                }
            };
            if entry.file_type().is_dir() || !self.included(entry.path()) {
                continue;
            }
            if entry.path_is_symlink() && !self.opts.dereference && entry.depth() > 0 {
                continue;
            }
            let path = entry.path();
            let shown = path.display().to_string();
            let shown = match shown.strip_prefix("./") {
                Some(rest) if strip_dot => rest.to_owned(),
                _ => shown,
            };
            if self.search_path(path, &shown)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    fn run(&mut self, operands: &[OsString]) -> io::Result<()> {
        if operands.is_empty() {
            if self.opts.recursive {
                self.search_tree(Path::new("."), true)?;
            } else {
                let label = self.opts.label.clone();
                self.search(&mut io::stdin().lock(), &label)?;
            }
            return Ok(());
        }
        for operand in operands {
            let flow = if operand == "-" {
                let label = self.opts.label.clone();
                self.search(&mut io::stdin().lock(), &label)?
            } else {
                let path = Path::new(operand);
                let name = operand.to_string_lossy().into_owned();
                if path.is_dir() {
                    if self.opts.recursive {
                        self.search_tree(path, false)?
                    } else {
                        self.warn(&format!("{name}: Is a directory"));
                        Flow::Continue
                    }
                } else if !self.included(path) {
                    Flow::Continue
                } else {
                    self.search_path(path, &name)?
                }
            };
            if flow == Flow::Stop {
                break;
            }
        }
        Ok(())
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
    let (opts, operands) = match parse_args(args) {
        Ok(parsed) => parsed,
        Err(ArgError::Exit(code)) => return code,
        Err(ArgError::Fatal(message)) => {
            eprintln!("grep: {message}");
            return 2;
        }
        Err(ArgError::Usage(message)) => {
            if !message.is_empty() {
                eprintln!("grep: {message}");
            }
            eprintln!("{USAGE}\nTry 'grep --help' for more information.");
            return 2;
        }
    };
    let regex = match build_regex(&opts) {
        Ok(regex) => regex,
        Err(message) => {
            eprintln!("grep: {message}");
            return 2;
        }
    };
    let with_filename = opts.with_filename.unwrap_or_else(|| {
        operands.len() > 1
            || (opts.recursive && operands.first().is_none_or(|o| Path::new(o).is_dir()))
    });
    let mut grep = Grep {
        opts: &opts,
        regex,
        out: BufWriter::with_capacity(1 << 16, io::stdout().lock()),
        with_filename,
        eol: if opts.null_data { 0 } else { b'\n' },
        selected_any: false,
        error: false,
        printed_group: false,
    };
    let result = grep.run(&operands).and_then(|()| grep.out.flush());
    if let Err(e) = result {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return 2;
        }
        grep.warn(&format!("write error: {}", crate::io_error_text(&e)));
        return 2;
    }
    match (grep.selected_any, grep.error) {
        (true, _) if opts.mode == Mode::Quiet => 0,
        (_, true) => 2,
        (true, false) => 0,
        (false, false) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> (Options, Vec<OsString>) {
        let args: Vec<OsString> = std::iter::once("grep")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        match parse_args(args.clone()) {
            Ok(parsed) => parsed,
            Err(_) => panic!("bad arguments {args:?}"),
        }
    }

    #[test]
    fn combined_short_options() {
        let (opts, files) = parse(&["-rnA2", "-epat", "-e", "two", "x", "-i"]);
        assert!(opts.recursive && opts.line_number && opts.ignore_case);
        assert_eq!(opts.after, 2);
        assert_eq!(opts.patterns, ["pat", "two"]);
        assert_eq!(files, [OsString::from("x")]);
    }

    #[test]
    fn first_operand_is_the_pattern() {
        let (opts, files) = parse(&["--count", "a\\|b", "f1", "--", "-f2"]);
        assert!(opts.mode == Mode::Count);
        assert_eq!(opts.patterns, ["a\\|b"]);
        assert_eq!(files, [OsString::from("f1"), OsString::from("-f2")]);
        let regex = build_regex(&opts).unwrap().unwrap();
        assert!(regex.is_match(b"xbx"));
    }

    #[test]
    fn word_and_line() {
        let (mut opts, _) = parse(&["-w", "foo"]);
        let r = build_regex(&opts).unwrap().unwrap();
        assert!(r.is_match(b"a foo b") && !r.is_match(b"foobar") && r.is_match(b"foobar foo"));
        opts.word = false;
        opts.line = true;
        let r = build_regex(&opts).unwrap().unwrap();
        assert!(r.is_match(b"foo") && !r.is_match(b"foo "));
    }
}

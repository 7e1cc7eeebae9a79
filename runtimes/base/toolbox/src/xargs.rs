//! `xargs`, as GNU findutils' (its options, input syntax and exit statuses), starting its
//! commands through wasmbuild's `/dev/process` (the `spawn` crate), `-P` running several at
//! once. Items are read from stdin (or `-a FILE`): blank- and newline-separated with quotes
//! and backslashes by default, or split at NUL (`-0`) or one delimiter (`-d`), with no
//! quoting then. Exit status: 0; 123 when a command failed (1–125); 124 when one exited
//! 255 (xargs stops); 125 when one was killed; 126 when one could not be run; 127 when it
//! was not found; 1 for bad usage or input.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};

use spawn::{Command, ExitStatus, Stdio};

/// GNU's default for `-s` (the command line's largest size, in bytes).
const DEFAULT_MAX_CHARS: usize = 128 * 1024;
/// What `-P 0` ("as many as possible") means: under the build's cap on programs started
/// by programs (64 by default), which a fork bomb trips.
const UNBOUNDED_PROCS: usize = 32;
/// The most arguments one command may take (GNU's limit without `-n`).
const DEFAULT_MAX_ARGS: usize = 128 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Split {
    /// Blanks and newlines, with quotes and backslashes.
    Blanks,
    /// Each occurrence of this byte ends an item (`-0`, `-d`).
    Byte(u8),
}

#[derive(Debug)]
struct Options {
    command: Vec<OsString>,
    split: Split,
    arg_file: Option<String>,
    eof: Option<String>,
    max_args: Option<usize>,
    max_lines: Option<usize>,
    replace: Option<String>,
    max_chars: usize,
    max_procs: usize,
    no_run_if_empty: bool,
    verbose: bool,
    exit_if_too_long: bool,
    slot_var: Option<String>,
}

/// Why xargs stops early.
enum Stop {
    Usage(String),
    Input(String),
    /// A command exited 255, or could not be run.
    Command(i32),
}

pub fn main(args: Vec<OsString>) -> i32 {
    let options = match parse(args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("xargs: {message}");
            eprintln!("Try 'xargs --help' for more information.");
            return 1;
        }
    };
    match run(&options) {
        Ok(status) => status,
        Err(Stop::Usage(message)) | Err(Stop::Input(message)) => {
            eprintln!("xargs: {message}");
            1
        }
        Err(Stop::Command(status)) => status,
    }
}

fn number(value: &str, option: &str, min: usize) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("invalid number \"{value}\" for -{option} option")),
    }
}

/// The byte a `-d` argument names: a character, or an escape (`\n`, `\t`, `\0`, `\x41`,
/// `\101`).
fn delimiter(text: &str) -> Result<u8, String> {
    let bytes = text.as_bytes();
    let byte = match bytes {
        [b] => *b,
        [b'\\', b'n'] => b'\n',
        [b'\\', b't'] => b'\t',
        [b'\\', b'r'] => b'\r',
        [b'\\', b'a'] => 7,
        [b'\\', b'b'] => 8,
        [b'\\', b'f'] => 12,
        [b'\\', b'v'] => 11,
        [b'\\', b'\\'] => b'\\',
        [b'\\', b'x', hex @ ..] => u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("?"), 16)
            .map_err(|_| format!("invalid input delimiter specification {text}"))?,
        [b'\\', octal @ ..] => u8::from_str_radix(std::str::from_utf8(octal).unwrap_or("?"), 8)
            .map_err(|_| format!("invalid input delimiter specification {text}"))?,
        _ => {
            return Err(format!(
                "input delimiter specification {text} must be a single character"
            ));
        }
    };
    Ok(byte)
}

fn parse(args: Vec<OsString>) -> Result<Options, String> {
    let mut options = Options {
        command: Vec::new(),
        split: Split::Blanks,
        arg_file: None,
        eof: None,
        max_args: None,
        max_lines: None,
        replace: None,
        max_chars: DEFAULT_MAX_CHARS,
        max_procs: 1,
        no_run_if_empty: false,
        verbose: false,
        exit_if_too_long: false,
        slot_var: None,
    };
    let mut args = args.into_iter().skip(1).peekable();
    let text = |a: OsString| a.into_string().map_err(|a| format!("invalid argument {a:?}"));
    while let Some(arg) = args.next() {
        let arg = text(arg)?;
        if arg == "--" {
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            options.command.push(arg.into());
            break;
        }
        // Long options, with `=VALUE` or the next argument.
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (long, None),
            };
            let takes_value = matches!(
                name,
                "arg-file"
                    | "delimiter"
                    | "max-args"
                    | "max-procs"
                    | "max-chars"
                    | "process-slot-var"
            );
            let value = if takes_value {
                match inline {
                    Some(v) => Some(v),
                    None => Some(
                        args.next()
                            .map(text)
                            .transpose()?
                            .ok_or_else(|| format!("option '--{name}' requires an argument"))?,
                    ),
                }
            } else {
                inline
            };
            match (name, value) {
                ("null", None) => options.split = Split::Byte(0),
                ("arg-file", Some(v)) => options.arg_file = Some(v),
                ("delimiter", Some(v)) => options.split = Split::Byte(delimiter(&v)?),
                ("eof", v) => options.eof = v.filter(|v| !v.is_empty()),
                ("replace", v) => {
                    options.replace = Some(v.unwrap_or_else(|| "{}".into()));
                }
                ("max-lines", v) => {
                    options.max_lines = Some(match v {
                        Some(v) => number(&v, "L", 1)?,
                        None => 1,
                    })
                }
                ("max-args", Some(v)) => options.max_args = Some(number(&v, "n", 1)?),
                ("max-procs", Some(v)) => options.max_procs = number(&v, "P", 0)?,
                ("max-chars", Some(v)) => options.max_chars = number(&v, "s", 1)?,
                ("no-run-if-empty", None) => options.no_run_if_empty = true,
                ("verbose", None) => options.verbose = true,
                ("exit", None) => options.exit_if_too_long = true,
                ("process-slot-var", Some(v)) => options.slot_var = Some(v),
                ("open-tty", None) => {}
                ("interactive", None) => {
                    return Err("--interactive needs a terminal, which the sandbox has not".into());
                }
                ("help", None) => {
                    println!(
                        "Usage: xargs [OPTION]... COMMAND [INITIAL-ARGS]...\n\
                         Run COMMAND with arguments INITIAL-ARGS and more arguments read from input.\n\
                         Options: -0 -a FILE -d DELIM -E END -I R -i[R] -L N -l[N] -n N -P N -r -s N -t -x\n\
                         --process-slot-var=VAR"
                    );
                    std::process::exit(0);
                }
                ("version", None) => {
                    println!("xargs (wasmbuild toolbox) 4.9");
                    std::process::exit(0);
                }
                _ => return Err(format!("unrecognized option '--{long}'")),
            }
            continue;
        }
        // Short options, clustered; a value is the rest of the argument or the next one.
        let mut letters = arg[1..].char_indices();
        while let Some((at, letter)) = letters.next() {
            let rest = &arg[1 + at + letter.len_utf8()..];
            let mut value = |optional: bool| -> Result<Option<String>, String> {
                if !rest.is_empty() {
                    return Ok(Some(rest.to_owned()));
                }
                if optional {
                    return Ok(None);
                }
                args.next()
                    .map(text)
                    .transpose()?
                    .map(Some)
                    .ok_or_else(|| format!("option requires an argument -- '{letter}'"))
            };
            let consumed_rest = match letter {
                '0' => {
                    options.split = Split::Byte(0);
                    false
                }
                'r' => {
                    options.no_run_if_empty = true;
                    false
                }
                't' => {
                    options.verbose = true;
                    false
                }
                'x' => {
                    options.exit_if_too_long = true;
                    false
                }
                'o' => false,
                'p' => return Err("-p needs a terminal, which the sandbox has not".into()),
                'a' => {
                    options.arg_file = value(false)?;
                    true
                }
                'd' => {
                    options.split = Split::Byte(delimiter(&value(false)?.unwrap_or_default())?);
                    true
                }
                'E' => {
                    options.eof = value(false)?.filter(|v| !v.is_empty());
                    true
                }
                'e' => {
                    options.eof = value(true)?.filter(|v| !v.is_empty());
                    true
                }
                'I' => {
                    options.replace = value(false)?;
                    true
                }
                'i' => {
                    options.replace = Some(value(true)?.unwrap_or_else(|| "{}".into()));
                    true
                }
                'L' => {
                    options.max_lines = Some(number(&value(false)?.unwrap_or_default(), "L", 1)?);
                    true
                }
                'l' => {
                    options.max_lines = Some(match value(true)? {
                        Some(v) => number(&v, "l", 1)?,
                        None => 1,
                    });
                    true
                }
                'n' => {
                    options.max_args = Some(number(&value(false)?.unwrap_or_default(), "n", 1)?);
                    true
                }
                'P' => {
                    options.max_procs = number(&value(false)?.unwrap_or_default(), "P", 0)?;
                    true
                }
                's' => {
                    options.max_chars = number(&value(false)?.unwrap_or_default(), "s", 1)?;
                    true
                }
                other => return Err(format!("invalid option -- '{other}'")),
            };
            if consumed_rest {
                break;
            }
        }
    }
    options.command.extend(args);
    if options.command.is_empty() {
        options.command.push("echo".into());
    }
    // -I, -L and -n exclude each other, the last given winning as in GNU; -I takes one
    // line per command.
    if options.replace.is_some() {
        options.max_lines = None;
        options.max_args = Some(1);
    }
    if options.max_lines.is_some() && options.replace.is_none() {
        options.max_args = None;
    }
    Ok(options)
}

/// The input, item by item, with the line each item ended (for `-L`).
struct Items<R> {
    input: R,
    split: Split,
    /// Each input line is one item (`-I`): blanks do not separate.
    lines: bool,
    eof: Option<String>,
    done: bool,
}

impl<R: BufRead> Items<R> {
    /// The next item, and whether it ended a logical line. `Ok(None)` at the end.
    fn next(&mut self) -> Result<Option<(Vec<u8>, bool)>, Stop> {
        if self.done {
            return Ok(None);
        }
        let item = match self.split {
            Split::Byte(byte) => {
                let mut item = Vec::new();
                let n = self
                    .input
                    .read_until(byte, &mut item)
                    .map_err(|e| Stop::Input(format!("read error: {e}")))?;
                if n == 0 {
                    return Ok(None);
                }
                if item.last() == Some(&byte) {
                    item.pop();
                }
                Some((item, true))
            }
            Split::Blanks => self.quoted()?,
        };
        if let (Some((item, _)), Some(eof)) = (&item, &self.eof)
            && item == eof.as_bytes()
        {
            self.done = true;
            return Ok(None);
        }
        Ok(item)
    }

    fn byte(&mut self) -> Result<Option<u8>, Stop> {
        let mut b = [0u8];
        match self.input.read(&mut b) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(b[0])),
            Err(e) => Err(Stop::Input(format!("read error: {e}"))),
        }
    }

    /// An item of the default syntax: blanks and newlines separate (only newlines with
    /// `-I`), quotes and backslashes group. A line ending in a blank goes on (`-L`).
    fn quoted(&mut self) -> Result<Option<(Vec<u8>, bool)>, Stop> {
        let mut item = Vec::new();
        let mut started = false;
        loop {
            let Some(b) = self.byte()? else {
                return Ok(started.then_some((item, true)));
            };
            match b {
                b'\n' => {
                    if started {
                        return Ok(Some((item, true)));
                    }
                }
                b' ' | b'\t' if !self.lines => {
                    if started {
                        // A blank before the newline continues the line (`-L`).
                        return Ok(Some((item, false)));
                    }
                }
                b' ' | b'\t' if !started => {}
                b'\'' | b'"' => {
                    started = true;
                    loop {
                        match self.byte()? {
                            Some(c) if c == b => break,
                            Some(b'\n') | None => {
                                let which = if b == b'\'' { "single" } else { "double" };
                                return Err(Stop::Input(format!(
                                    "unmatched {which} quote; by default quotes are special to \
                                     xargs unless you use the -0 option"
                                )));
                            }
                            Some(c) => item.push(c),
                        }
                    }
                }
                b'\\' => {
                    started = true;
                    if let Some(c) = self.byte()? {
                        item.push(c);
                    }
                }
                other => {
                    started = true;
                    item.push(other);
                }
            }
        }
    }
}

/// Running children and the worst outcome so far.
struct Runner<'a> {
    options: &'a Options,
    running: Vec<(u32, spawn::Child, usize)>,
    free_slots: Vec<usize>,
    next_slot: usize,
    failed: bool,
}

impl Runner<'_> {
    fn launch(&mut self, argv: Vec<OsString>) -> Result<(), Stop> {
        let limit = match self.options.max_procs {
            0 => UNBOUNDED_PROCS,
            n => n,
        };
        while self.running.len() >= limit {
            self.reap_one()?;
        }
        if self.options.verbose {
            let line: Vec<String> = argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            eprintln!("{}", line.join(" "));
        }
        let _ = io::stdout().flush();
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.next_slot += 1;
            self.next_slot - 1
        });
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
        if self.options.arg_file.is_none() {
            command.stdin(Stdio::Null);
        }
        if let Some(var) = &self.options.slot_var {
            command.env(var, slot.to_string());
        }
        match command.spawn() {
            Ok(child) => {
                self.running.push((child.id(), child, slot));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("xargs: {}: No such file or directory", argv[0].to_string_lossy());
                self.finish_all();
                Err(Stop::Command(127))
            }
            Err(e) => {
                eprintln!("xargs: {}: {e}", argv[0].to_string_lossy());
                self.finish_all();
                Err(Stop::Command(126))
            }
        }
    }

    /// Waits for one running child and weighs its status.
    fn reap_one(&mut self) -> Result<(), Stop> {
        if self.running.is_empty() {
            return Ok(());
        }
        let (index, status) = if self.running.len() == 1 {
            (0, self.running[0].1.wait())
        } else {
            match spawn::wait_any() {
                Ok((id, status)) => (
                    self.running.iter().position(|(i, _, _)| *i == id).unwrap_or(0),
                    Ok(status),
                ),
                Err(e) => (0, Err(e)),
            }
        };
        let (_, child, slot) = self.running.remove(index);
        drop(child);
        self.free_slots.push(slot);
        let status = status.map_err(|e| Stop::Input(format!("waiting for a command: {e}")))?;
        self.weigh(status)
    }

    fn weigh(&mut self, status: ExitStatus) -> Result<(), Stop> {
        match (status.code(), status.signal()) {
            (Some(0), _) => Ok(()),
            (Some(255), _) => {
                eprintln!(
                    "xargs: {}: exited with status 255; aborting",
                    self.options.command[0].to_string_lossy()
                );
                self.finish_all();
                Err(Stop::Command(124))
            }
            (Some(_), _) => {
                self.failed = true;
                Ok(())
            }
            (None, signal) => {
                eprintln!(
                    "xargs: {}: terminated by signal {}",
                    self.options.command[0].to_string_lossy(),
                    signal.unwrap_or(0)
                );
                self.finish_all();
                Err(Stop::Command(125))
            }
        }
    }

    /// Waits for every child still running.
    fn finish_all(&mut self) {
        for (_, mut child, _) in self.running.drain(..) {
            let _ = child.wait();
        }
    }
}

fn run(options: &Options) -> Result<i32, Stop> {
    let input: Box<dyn BufRead> = match &options.arg_file {
        Some(path) if path != "-" => Box::new(BufReader::new(
            File::open(path).map_err(|e| Stop::Usage(format!("{path}: {e}")))?,
        )),
        _ => Box::new(BufReader::new(io::stdin().lock())),
    };
    let mut items = Items {
        input,
        split: options.split.clone(),
        lines: options.replace.is_some(),
        eof: if options.split == Split::Blanks {
            options.eof.clone()
        } else {
            None
        },
        done: false,
    };
    let mut runner = Runner {
        options,
        running: Vec::new(),
        free_slots: Vec::new(),
        next_slot: 0,
        failed: false,
    };
    let base_size: usize = options.command.iter().map(|a| a.len() + 1).sum();
    if base_size > options.max_chars {
        return Err(Stop::Usage(
            "argument list too long for the command line size limit".into(),
        ));
    }
    let max_args = options.max_args.unwrap_or(DEFAULT_MAX_ARGS);
    let mut batch: Vec<OsString> = Vec::new();
    let mut size = base_size;
    let mut lines = 0;
    let mut ran = false;
    let flush = |batch: &mut Vec<OsString>,
                     runner: &mut Runner<'_>,
                     ran: &mut bool|
     -> Result<(), Stop> {
        let argv = match &options.replace {
            Some(replace) => {
                let value = batch.first().map(|a| a.to_string_lossy().into_owned());
                let value = value.unwrap_or_default();
                options
                    .command
                    .iter()
                    .map(|a| a.to_string_lossy().replace(replace.as_str(), &value).into())
                    .collect()
            }
            None => {
                let mut argv = options.command.clone();
                argv.append(batch);
                argv
            }
        };
        batch.clear();
        *ran = true;
        runner.launch(argv)
    };
    loop {
        let item = match items.next() {
            Ok(item) => item,
            Err(Stop::Input(message)) => {
                // As GNU's: what was read before the bad input still runs.
                eprintln!("xargs: {message}");
                if !batch.is_empty() {
                    flush(&mut batch, &mut runner, &mut ran)?;
                }
                runner.finish_all();
                return Ok(1);
            }
            Err(stop) => {
                runner.finish_all();
                return Err(stop);
            }
        };
        let Some((bytes, line_end)) = item else {
            break;
        };
        let arg = bytes_to_os(bytes);
        let arg_size = arg.len() + 1;
        if base_size + arg_size > options.max_chars {
            runner.finish_all();
            return Err(Stop::Usage(
                "argument line too long".into(),
            ));
        }
        if !batch.is_empty() && size + arg_size > options.max_chars {
            if options.exit_if_too_long && options.max_args.is_some() {
                runner.finish_all();
                return Err(Stop::Usage("argument line too long".into()));
            }
            flush(&mut batch, &mut runner, &mut ran)?;
            size = base_size;
            lines = 0;
        }
        batch.push(arg);
        size += arg_size;
        if line_end {
            lines += 1;
        }
        let full = match options.max_lines {
            Some(max) => lines >= max,
            None => batch.len() >= max_args,
        };
        if full {
            flush(&mut batch, &mut runner, &mut ran)?;
            size = base_size;
            lines = 0;
        }
    }
    if !batch.is_empty() || (!ran && !options.no_run_if_empty && options.replace.is_none()) {
        flush(&mut batch, &mut runner, &mut ran)?;
    }
    while !runner.running.is_empty() {
        runner.reap_one()?;
    }
    Ok(if runner.failed { 123 } else { 0 })
}

fn bytes_to_os(bytes: Vec<u8>) -> OsString {
    match String::from_utf8(bytes) {
        Ok(text) => text.into(),
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned().into(),
    }
}

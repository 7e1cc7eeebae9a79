//! tar: create (-c), extract (-x) and list (-t) archives over the `tar` crate, gzip (-z)
//! through `flate2`. Also the traditional bundled form (`tar czf out.tgz dir`), `-f -`
//! for standard input/output, `-C DIR`, `-v`, `-O`, `-k`, `-m`, `-h`, `-T FILE`,
//! `--strip-components=N` and `--exclude=GLOB`. A compressed archive is recognised on
//! reading without -z. WASI shows no permission bits or owners: members are stored as
//! root-owned with mode 0644, 0755 for directories, and none are set on extraction. Exit
//! status: 0, or 2 when anything failed.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use ::tar::{Archive, Builder, EntryType, Header};
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use lexopt::prelude::*;

use crate::archive::{self, Civil};
use crate::fnmatch::fnmatch;

const USAGE: &str = "\
Usage: tar -c [-zvh] [-f ARCHIVE] [-C DIR] [--exclude=GLOB] FILE...
       tar -x [-zvOkm] [-f ARCHIVE] [-C DIR] [--strip-components=N] [MEMBER...]
       tar -t [-zv] [-f ARCHIVE] [MEMBER...]
The first argument may bundle options without a dash: tar czf out.tgz dir.
ARCHIVE '-' (the default) is standard input or output.";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Extract,
    List,
}

struct Options {
    op: Op,
    file: Option<OsString>,
    gzip: bool,
    verbose: bool,
    to_stdout: bool,
    keep_old: bool,
    touch: bool,
    dereference: bool,
    strip: usize,
    exclude: Vec<String>,
    /// The directory of -C, for extraction.
    directory: PathBuf,
    /// Operands, each with the directory (-C) in force where it was given.
    operands: Vec<(PathBuf, OsString)>,
}

/// Short options of the traditional first argument that take a value.
const BUNDLED_WITH_VALUE: &str = "fCTb";

/// Turns a traditional first argument (`czf out.tgz`) into ordinary options.
fn expand_bundled(args: Vec<OsString>) -> Vec<OsString> {
    let mut rest = args.into_iter().skip(1);
    let Some(first) = rest.next() else {
        return Vec::new();
    };
    let text = first.to_string_lossy().into_owned();
    if text.starts_with('-') {
        return std::iter::once(first).chain(rest).collect();
    }
    let mut out = Vec::new();
    for letter in text.chars() {
        out.push(OsString::from(format!("-{letter}")));
        if BUNDLED_WITH_VALUE.contains(letter)
            && let Some(value) = rest.next()
        {
            out.push(value);
        }
    }
    out.extend(rest);
    out
}

fn parse_args(args: Vec<OsString>) -> Result<Option<Options>, String> {
    let mut op = None;
    let mut opts = Options {
        op: Op::List,
        file: None,
        gzip: false,
        verbose: false,
        to_stdout: false,
        keep_old: false,
        touch: false,
        dereference: false,
        strip: 0,
        exclude: Vec::new(),
        directory: PathBuf::new(),
        operands: Vec::new(),
    };
    let mut set_op = |new: Op| match op {
        Some(old) if old != new => {
            Err("You may not specify more than one '-ctx' option".to_owned())
        }
        _ => {
            op = Some(new);
            Ok(())
        }
    };
    let mut parser = lexopt::Parser::from_args(expand_bundled(args));
    let text = |e: lexopt::Error| e.to_string();
    while let Some(arg) = parser.next().map_err(text)? {
        match arg {
            Short('c') | Long("create") => set_op(Op::Create)?,
            Short('x') | Long("extract") | Long("get") => set_op(Op::Extract)?,
            Short('t') | Long("list") => set_op(Op::List)?,
            Short('f') | Long("file") => opts.file = Some(parser.value().map_err(text)?),
            Short('z') | Long("gzip") | Long("gunzip") | Long("ungzip") => opts.gzip = true,
            Short('j' | 'J' | 'Z') | Long("bzip2" | "xz" | "lzma" | "compress" | "zstd") => {
                return Err("only gzip compression (-z) is supported".into());
            }
            Short('v') | Long("verbose") => opts.verbose = true,
            Short('C') | Long("directory") => {
                let dir = parser.value().map_err(text)?;
                opts.directory = opts.directory.join(dir);
            }
            Short('O') | Long("to-stdout") => opts.to_stdout = true,
            Short('k') | Long("keep-old-files") => opts.keep_old = true,
            Long("overwrite") | Long("unlink-first") | Short('U') => opts.keep_old = false,
            Short('m') | Long("touch") => opts.touch = true,
            Short('h') | Long("dereference") => opts.dereference = true,
            Long("strip-components") => {
                let value = parser.value().map_err(text)?;
                let value = value.to_string_lossy();
                opts.strip = value
                    .parse()
                    .map_err(|_| format!("invalid --strip-components value '{value}'"))?;
            }
            Long("exclude") => {
                let value = parser.value().map_err(text)?;
                opts.exclude.push(value.to_string_lossy().into_owned());
            }
            Short('T') | Long("files-from") => {
                let list = parser.value().map_err(text)?;
                let names = if list == "-" {
                    io::read_to_string(io::stdin())
                } else {
                    fs::read_to_string(&list)
                }
                .map_err(|e| {
                    format!(
                        "{}: Cannot open: {}",
                        list.to_string_lossy(),
                        crate::io_error_text(&e)
                    )
                })?;
                for name in names.lines().filter(|l| !l.is_empty()) {
                    opts.operands.push((opts.directory.clone(), name.into()));
                }
            }
            // Ownership, permissions and ordering: nothing to choose on WASI.
            Short('p' | 'o' | 's' | 'P' | 'S' | 'B')
            | Long(
                "preserve-permissions"
                | "same-permissions"
                | "no-same-permissions"
                | "same-owner"
                | "no-same-owner"
                | "numeric-owner"
                | "same-order"
                | "absolute-names"
                | "sparse",
            ) => {}
            Long("owner" | "group" | "mode" | "mtime" | "sort" | "format" | "blocking-factor") => {
                parser.value().map_err(text)?;
            }
            Long("help") => {
                println!("{USAGE}");
                return Ok(None);
            }
            Value(name) => opts.operands.push((opts.directory.clone(), name)),
            other => return Err(other.unexpected().to_string()),
        }
    }
    opts.op = op.ok_or("You must specify one of the '-ctx' options")?;
    Ok(Some(opts))
}

/// A member name as stored: `/` separators, no leading `/`.
fn stored_name(path: &Path) -> String {
    let name = path.to_string_lossy().replace('\\', "/");
    name.trim_start_matches('/').to_owned()
}

/// A member name as compared with operands: no leading `./`, no trailing `/`.
fn normalized(name: &str) -> &str {
    let name = name.trim_end_matches('/');
    let name = name.strip_prefix("./").unwrap_or(name);
    if name.is_empty() { "." } else { name }
}

struct Tar {
    opts: Options,
    failed: bool,
}

impl Tar {
    fn warn(&mut self, message: &str) {
        self.failed = true;
        eprintln!("tar: {message}");
    }

    fn excluded(&self, name: &str) -> bool {
        let base = normalized(name).rsplit('/').next().unwrap_or(name);
        self.opts
            .exclude
            .iter()
            .any(|g| fnmatch(g, base) || fnmatch(g, normalized(name)))
    }

    /// Where -v output goes: standard error when the archive is standard output.
    fn report(&self, name: &str) {
        if self.opts.op == Op::Create && self.archive_is_stdio() {
            eprintln!("{name}");
        } else {
            println!("{name}");
        }
    }

    fn archive_is_stdio(&self) -> bool {
        self.opts.file.as_ref().is_none_or(|f| f == "-")
    }

    fn create(&mut self) -> Result<(), String> {
        if self.opts.operands.is_empty() {
            return Err("Cowardly refusing to create an empty archive".into());
        }
        let write_error = |e: io::Error| format!("write error: {}", crate::io_error_text(&e));
        let out: Box<dyn Write> = match &self.opts.file {
            Some(path) if path != "-" => Box::new(File::create(path).map_err(|e| {
                format!(
                    "{}: Cannot open: {}",
                    path.to_string_lossy(),
                    crate::io_error_text(&e)
                )
            })?),
            _ => Box::new(io::stdout().lock()),
        };
        if self.opts.gzip {
            let encoder = self.build(GzEncoder::new(out, Compression::default()))?;
            encoder
                .finish()
                .and_then(|mut w| w.flush())
                .map_err(write_error)
        } else {
            self.build(out)?.flush().map_err(write_error)
        }
    }

    fn build<W: Write>(&mut self, out: W) -> Result<W, String> {
        let mut builder = Builder::new(out);
        let mut told_root = false;
        for (dir, operand) in std::mem::take(&mut self.opts.operands) {
            let source = dir.join(&operand);
            let name = PathBuf::from(&operand);
            if !told_root && name.has_root() {
                eprintln!("tar: Removing leading '/' from member names");
                told_root = true;
            }
            self.append_tree(&mut builder, &source, &name)?;
        }
        builder
            .into_inner()
            .map_err(|e| format!("write error: {}", crate::io_error_text(&e)))
    }

    fn append_tree<W: Write>(
        &mut self,
        builder: &mut Builder<W>,
        source: &Path,
        name: &Path,
    ) -> Result<(), String> {
        let walker = walkdir::WalkDir::new(source)
            .follow_links(self.opts.dereference)
            .sort_by_file_name();
        let mut entries = walker.into_iter();
        while let Some(entry) = entries.next() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    let path = e.path().unwrap_or(source).display().to_string();
                    let reason = e
                        .io_error()
                        .map_or_else(|| e.to_string(), crate::io_error_text);
                    self.warn(&format!("{path}: Cannot stat: {reason}"));
                    continue;
                }
            };
            let member = match entry.path().strip_prefix(source) {
                Ok(relative) if !relative.as_os_str().is_empty() => {
                    stored_name(&name.join(relative))
                }
                _ => stored_name(name),
            };
            if self.excluded(&member) {
                if entry.file_type().is_dir() {
                    entries.skip_current_dir();
                }
                continue;
            }
            if let Err(e) = self.append_entry(builder, entry.path(), &member) {
                if e.kind() == io::ErrorKind::BrokenPipe || e.kind() == io::ErrorKind::WriteZero {
                    return Err(format!("write error: {}", crate::io_error_text(&e)));
                }
                self.warn(&format!(
                    "{}: {}",
                    entry.path().display(),
                    crate::io_error_text(&e)
                ));
            }
        }
        Ok(())
    }

    fn append_entry<W: Write>(
        &mut self,
        builder: &mut Builder<W>,
        path: &Path,
        member: &str,
    ) -> io::Result<()> {
        let meta = if self.opts.dereference {
            fs::metadata(path)?
        } else {
            fs::symlink_metadata(path)?
        };
        let mut header = Header::new_gnu();
        header.set_mtime(archive::unix_seconds(meta.modified().unwrap_or(UNIX_EPOCH)));
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("root")?;
        header.set_groupname("root")?;
        if meta.is_dir() {
            header.set_entry_type(EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            let member = format!("{}/", member.trim_end_matches('/'));
            builder.append_data(&mut header, &member, io::empty())?;
            self.verbose(&member);
        } else if meta.is_symlink() {
            header.set_entry_type(EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            builder.append_link(&mut header, member, fs::read_link(path)?)?;
            self.verbose(member);
        } else if meta.is_file() {
            header.set_entry_type(EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(meta.len());
            builder.append_data(&mut header, member, File::open(path)?)?;
            self.verbose(member);
        } else {
            eprintln!("tar: {}: socket or device ignored", path.display());
        }
        Ok(())
    }

    fn verbose(&self, name: &str) {
        if self.opts.verbose {
            self.report(name);
        }
    }

    /// Lists or extracts the archive.
    fn read(&mut self) -> Result<(), String> {
        let input: Box<dyn Read> = match &self.opts.file {
            Some(path) if path != "-" => Box::new(File::open(path).map_err(|e| {
                format!(
                    "{}: Cannot open: {}",
                    path.to_string_lossy(),
                    crate::io_error_text(&e)
                )
            })?),
            _ => Box::new(io::stdin().lock()),
        };
        let mut input = BufReader::with_capacity(1 << 16, input);
        let read_error = |e: io::Error| format!("read error: {}", crate::io_error_text(&e));
        let compressed = input
            .fill_buf()
            .map_err(read_error)?
            .starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn Read> = if compressed || self.opts.gzip {
            Box::new(MultiGzDecoder::new(input))
        } else {
            Box::new(input)
        };
        let wanted: Vec<String> = self
            .opts
            .operands
            .iter()
            .map(|(_, name)| normalized(&name.to_string_lossy()).to_owned())
            .collect();
        let mut found = vec![false; wanted.len()];
        let mut archive = Archive::new(reader);
        let entries = archive.entries().map_err(read_error)?;
        for entry in entries {
            let mut entry = entry.map_err(|e| {
                format!(
                    "{}; this does not look like a tar archive",
                    crate::io_error_text(&e)
                )
            })?;
            let kind = entry.header().entry_type();
            if kind == EntryType::XGlobalHeader {
                continue;
            }
            let raw = entry.path().map_err(read_error)?.into_owned();
            let name = stored_name(&raw);
            let key = normalized(&name);
            if !wanted.is_empty() {
                let Some(i) = wanted
                    .iter()
                    .position(|w| w == "." || key == w || key.starts_with(&format!("{w}/")))
                else {
                    continue;
                };
                found[i] = true;
            }
            if self.excluded(&name) {
                continue;
            }
            let result = if self.opts.op == Op::List {
                self.list(&entry, &name)
            } else {
                self.extract(&mut entry, &raw, &name)
            };
            if let Err(e) = result {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    return Err(String::new());
                }
                self.warn(&format!("{name}: {}", crate::io_error_text(&e)));
            }
        }
        for (name, found) in wanted.iter().zip(found) {
            if !found {
                self.warn(&format!("{name}: Not found in archive"));
            }
        }
        Ok(())
    }

    fn list<R: Read>(&self, entry: &::tar::Entry<'_, R>, name: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        if !self.opts.verbose {
            return writeln!(out, "{name}");
        }
        let header = entry.header();
        let kind = header.entry_type();
        let type_char = match kind {
            EntryType::Directory => 'd',
            EntryType::Symlink => 'l',
            EntryType::Link => 'h',
            EntryType::Char => 'c',
            EntryType::Block => 'b',
            EntryType::Fifo => 'p',
            _ => '-',
        };
        let mode = header.mode().unwrap_or(0o644);
        let mut perms = String::with_capacity(10);
        perms.push(type_char);
        for shift in [6, 3, 0] {
            let bits = (mode >> shift) & 7;
            perms.push(if bits & 4 != 0 { 'r' } else { '-' });
            perms.push(if bits & 2 != 0 { 'w' } else { '-' });
            perms.push(if bits & 1 != 0 { 'x' } else { '-' });
        }
        let user = match header.username() {
            Ok(Some(u)) if !u.is_empty() => u.to_owned(),
            _ => header.uid().unwrap_or(0).to_string(),
        };
        let group = match header.groupname() {
            Ok(Some(g)) if !g.is_empty() => g.to_owned(),
            _ => header.gid().unwrap_or(0).to_string(),
        };
        let when = Civil::from_unix(header.mtime().unwrap_or(0) as i64).minutes();
        let size = header.size().unwrap_or(0);
        let owner = format!("{user}/{group}");
        let link = match (kind, entry.link_name()) {
            (EntryType::Symlink, Ok(Some(target))) => format!(" -> {}", target.display()),
            (EntryType::Link, Ok(Some(target))) => format!(" link to {}", target.display()),
            _ => String::new(),
        };
        writeln!(out, "{perms} {owner} {size:>8} {when} {name}{link}")
    }

    fn extract<R: Read>(
        &mut self,
        entry: &mut ::tar::Entry<'_, R>,
        raw: &Path,
        name: &str,
    ) -> io::Result<()> {
        let Some(relative) = archive::member_path(raw, self.opts.strip) else {
            if raw
                .components()
                .any(|c| c == std::path::Component::ParentDir)
            {
                self.warn(&format!("{name}: Member name contains '..'"));
            }
            return Ok(());
        };
        let kind = entry.header().entry_type();
        if self.opts.to_stdout {
            if kind.is_file() {
                io::copy(entry, &mut io::stdout().lock())?;
            }
            return Ok(());
        }
        if self.opts.verbose {
            self.report(name);
        }
        let dest = self.opts.directory.join(&relative);
        match kind {
            EntryType::Directory => fs::create_dir_all(&dest),
            EntryType::Symlink | EntryType::Link => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| io::Error::other("link without a target"))?
                    .into_owned();
                archive::create_parent(&dest)?;
                self.refuse_existing(&dest)?;
                archive::clear_for(&dest)?;
                if kind == EntryType::Symlink {
                    archive::symlink(&target, &dest)
                } else {
                    let source = archive::member_path(&target, self.opts.strip)
                        .ok_or_else(|| io::Error::other("bad hard link target"))?;
                    fs::hard_link(self.opts.directory.join(source), &dest)
                }
            }
            kind if kind.is_file() || kind == EntryType::Continuous => {
                archive::create_parent(&dest)?;
                self.refuse_existing(&dest)?;
                archive::clear_for(&dest)?;
                let mut file = File::create(&dest)?;
                io::copy(entry, &mut file)?;
                if !self.opts.touch
                    && let Ok(mtime) = entry.header().mtime()
                {
                    archive::set_mtime(&file, mtime);
                }
                Ok(())
            }
            _ => {
                eprintln!("tar: {name}: special file not extracted");
                Ok(())
            }
        }
    }

    /// With -k an existing file is an error.
    fn refuse_existing(&self, dest: &Path) -> io::Result<()> {
        if self.opts.keep_old && fs::symlink_metadata(dest).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "Cannot open: File exists",
            ));
        }
        Ok(())
    }
}

pub fn main(args: Vec<OsString>) -> i32 {
    let opts = match parse_args(args) {
        Ok(Some(opts)) => opts,
        Ok(None) => return 0,
        Err(message) => {
            eprintln!("tar: {message}\nTry 'tar --help' for more information.");
            return 2;
        }
    };
    let mut tar = Tar {
        opts,
        failed: false,
    };
    let result = match tar.opts.op {
        Op::Create => tar.create(),
        Op::Extract | Op::List => tar.read(),
    };
    let flushed = io::stdout().flush();
    match result {
        Err(message) if message.is_empty() => crate::BROKEN_PIPE,
        Err(message) => {
            eprintln!("tar: {message}");
            2
        }
        Ok(()) if tar.failed || flushed.is_err() => 2,
        Ok(()) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn bundled_first_argument() {
        assert_eq!(
            expand_bundled(os(&["tar", "czfC", "out.tgz", "dir", "a"])),
            os(&["-c", "-z", "-f", "out.tgz", "-C", "dir", "a"])
        );
        assert_eq!(
            expand_bundled(os(&["tar", "-xzf", "a.tgz"])),
            os(&["-xzf", "a.tgz"])
        );
    }

    #[test]
    fn options() {
        let opts = parse_args(os(&[
            "tar",
            "xvzf",
            "a.tgz",
            "-C",
            "out",
            "--strip-components=1",
        ]))
        .unwrap()
        .unwrap();
        assert!(opts.op == Op::Extract && opts.gzip && opts.verbose);
        assert_eq!(opts.file, Some(OsString::from("a.tgz")));
        assert_eq!(opts.directory, PathBuf::from("out"));
        assert_eq!(opts.strip, 1);
        assert!(parse_args(os(&["tar", "-cx"])).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(normalized("./a/b/"), "a/b");
        assert_eq!(normalized("./"), ".");
        assert_eq!(stored_name(Path::new("/abs/x")), "abs/x");
    }
}

//! zip and unzip over the `zip` crate (deflate via zlib-rs), in Info-ZIP's manner.
//! `zip [-r] [-j] [-q] [-D] [-0…-9] ARCHIVE[.zip] PATH...` adds (or replaces) members,
//! keeping the archive's other members; `-r` recurses into directories. `unzip [-l] [-o|-n]
//! [-q] [-j] [-p] [-d DIR] ARCHIVE [MEMBER...]` lists or extracts; without -o an existing
//! file is kept. Exit status: 0, or nonzero when anything failed.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use ::zip::write::SimpleFileOptions;
use ::zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};
use lexopt::prelude::*;

use crate::archive::{self, Civil};
use crate::fnmatch::fnmatch;

const ZIP_USAGE: &str = "Usage: zip [-rjqD0-9] ARCHIVE[.zip] PATH...";
const UNZIP_USAGE: &str = "Usage: unzip [-lonqjp] [-d DIR] ARCHIVE[.zip] [MEMBER...]";

fn lexopt_text(e: lexopt::Error) -> String {
    e.to_string()
}

/// A zip timestamp (local time in the format; UTC here) from seconds since the epoch.
fn zip_time(seconds: u64) -> DateTime {
    let c = Civil::from_unix(seconds as i64);
    let year = u16::try_from(c.year.clamp(1980, 2107)).unwrap_or(1980);
    DateTime::from_date_and_time(
        year,
        c.month as u8,
        c.day as u8,
        c.hour as u8,
        c.minute as u8,
        c.second as u8,
    )
    .unwrap_or_default()
}

/// Seconds since the epoch of a zip timestamp.
fn unix_time(t: DateTime) -> i64 {
    Civil {
        year: i64::from(t.year()),
        month: u32::from(t.month()),
        day: u32::from(t.day()),
        hour: u32::from(t.hour()),
        minute: u32::from(t.minute()),
        second: u32::from(t.second()),
    }
    .to_unix()
}

struct ZipOptions {
    recurse: bool,
    junk_paths: bool,
    quiet: bool,
    no_dir_entries: bool,
    level: i64,
    exclude: Vec<String>,
    archive: Option<PathBuf>,
    paths: Vec<PathBuf>,
}

fn parse_zip(args: Vec<OsString>) -> Result<Option<ZipOptions>, String> {
    let mut opts = ZipOptions {
        recurse: false,
        junk_paths: false,
        quiet: false,
        no_dir_entries: false,
        level: 6,
        exclude: Vec::new(),
        archive: None,
        paths: Vec::new(),
    };
    let mut parser = lexopt::Parser::from_args(args.into_iter().skip(1));
    while let Some(arg) = parser.next().map_err(lexopt_text)? {
        match arg {
            Short('r') | Long("recurse-paths") => opts.recurse = true,
            Short('j') | Long("junk-paths") => opts.junk_paths = true,
            Short('q') | Long("quiet") => opts.quiet = true,
            Short('D') | Long("no-dir-entries") => opts.no_dir_entries = true,
            Short('y') | Short('X') | Long("symlinks") => {}
            Short(c @ '0'..='9') => opts.level = i64::from(c.to_digit(10).unwrap_or(6)),
            Short('x') | Long("exclude") => {
                // Info-ZIP reads patterns up to the next option; one per -x here.
                let value = parser.value().map_err(lexopt_text)?;
                opts.exclude.push(value.to_string_lossy().into_owned());
            }
            Short('h') | Long("help") => {
                println!("{ZIP_USAGE}");
                return Ok(None);
            }
            Value(v) if opts.archive.is_none() => {
                let mut archive = PathBuf::from(v);
                if archive.extension().is_none() {
                    archive.set_extension("zip");
                }
                opts.archive = Some(archive);
            }
            Value(v) => opts.paths.push(v.into()),
            other => return Err(other.unexpected().to_string()),
        }
    }
    if opts.archive.is_none() || opts.paths.is_empty() {
        return Err("nothing to do!".into());
    }
    Ok(Some(opts))
}

/// A file to add: where it is and its member name.
struct Source {
    path: PathBuf,
    name: String,
    is_dir: bool,
}

fn member_name(path: &Path, junk: bool, is_dir: bool) -> Option<String> {
    let path = if junk {
        PathBuf::from(path.file_name()?)
    } else {
        archive::member_path(path, 0)?
    };
    let mut name = path.to_string_lossy().replace('\\', "/");
    if is_dir {
        name.push('/');
    }
    Some(name)
}

fn collect_sources(opts: &ZipOptions, failed: &mut bool) -> Vec<Source> {
    let mut sources = Vec::new();
    for path in &opts.paths {
        let walker = walkdir::WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name()
            .max_depth(if opts.recurse { usize::MAX } else { 0 });
        for entry in walker {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    let shown = e.path().unwrap_or(path).display().to_string();
                    eprintln!("zip warning: name not matched: {shown}");
                    *failed = true;
                    continue;
                }
            };
            let is_dir = entry.file_type().is_dir();
            if is_dir && (opts.no_dir_entries || opts.junk_paths) {
                continue;
            }
            let Some(name) = member_name(entry.path(), opts.junk_paths, is_dir) else {
                continue;
            };
            let base = entry.file_name().to_string_lossy();
            if opts
                .exclude
                .iter()
                .any(|g| fnmatch(g, &name) || fnmatch(g, &base))
            {
                continue;
            }
            sources.push(Source {
                path: entry.into_path(),
                name,
                is_dir,
            });
        }
    }
    sources
}

fn write_zip(opts: &ZipOptions, sources: &[Source]) -> Result<bool, String> {
    let archive_path = opts.archive.as_deref().unwrap_or(Path::new("out.zip"));
    let shown = archive_path.display().to_string();
    let zip_error = |e: ::zip::result::ZipError| format!("{shown}: {e}");
    let io_error = |e: io::Error| format!("{shown}: {}", crate::io_error_text(&e));
    let replaced: HashSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    // Members of an existing archive that are not replaced are copied over as they are.
    let mut old = match File::open(archive_path) {
        Ok(file) => Some(ZipArchive::new(BufReader::new(file)).map_err(zip_error)?),
        Err(_) => None,
    };
    let temp = archive_path.with_extension("zip.tmp");
    let mut writer = ZipWriter::new(BufWriter::new(File::create(&temp).map_err(io_error)?));
    let mut failed = false;
    if let Some(old) = old.as_mut() {
        for i in 0..old.len() {
            let member = old.by_index_raw(i).map_err(zip_error)?;
            let keep = member.name().is_ok_and(|n| !replaced.contains(n.as_ref()));
            if keep {
                writer.raw_copy_file(member).map_err(zip_error)?;
            }
        }
    }
    let (method, level) = if opts.level == 0 {
        (CompressionMethod::Stored, None)
    } else {
        (CompressionMethod::Deflated, Some(opts.level))
    };
    for source in sources {
        let meta = match fs::metadata(&source.path) {
            Ok(meta) => meta,
            Err(e) => {
                eprintln!(
                    "zip warning: {}: {}",
                    source.path.display(),
                    crate::io_error_text(&e)
                );
                failed = true;
                continue;
            }
        };
        let mtime = archive::unix_seconds(meta.modified().unwrap_or(UNIX_EPOCH));
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .compression_level(level)
            .last_modified_time(zip_time(mtime))
            .unix_permissions(if source.is_dir { 0o755 } else { 0o644 })
            .large_file(meta.len() >= 0xFFFF_FFFF);
        if source.is_dir {
            writer
                .add_directory(source.name.as_str(), options)
                .map_err(zip_error)?;
            if !opts.quiet {
                println!("  adding: {} (stored 0%)", source.name);
            }
            continue;
        }
        let mut input = match File::open(&source.path) {
            Ok(file) => file,
            Err(e) => {
                eprintln!(
                    "zip warning: {}: {}",
                    source.path.display(),
                    crate::io_error_text(&e)
                );
                failed = true;
                continue;
            }
        };
        writer
            .start_file(source.name.as_str(), options)
            .map_err(zip_error)?;
        io::copy(&mut input, &mut writer).map_err(io_error)?;
        if !opts.quiet {
            let how = if level.is_some() {
                "deflated"
            } else {
                "stored"
            };
            println!("  adding: {} ({how})", source.name);
        }
    }
    writer
        .finish()
        .map_err(zip_error)?
        .flush()
        .map_err(io_error)?;
    drop(old);
    fs::rename(&temp, archive_path).map_err(io_error)?;
    Ok(failed)
}

pub fn zip(args: Vec<OsString>) -> i32 {
    let opts = match parse_zip(args) {
        Ok(Some(opts)) => opts,
        Ok(None) => return 0,
        Err(message) => {
            eprintln!("zip error: {message}\n{ZIP_USAGE}");
            return 16;
        }
    };
    let mut failed = false;
    let sources = collect_sources(&opts, &mut failed);
    if sources.is_empty() {
        eprintln!("zip error: Nothing to do!");
        return 12;
    }
    match write_zip(&opts, &sources) {
        Ok(warned) => i32::from(failed || warned) * 18,
        Err(message) => {
            eprintln!("zip error: {message}");
            15
        }
    }
}

struct UnzipOptions {
    list: bool,
    overwrite: Option<bool>,
    quiet: bool,
    junk_paths: bool,
    pipe: bool,
    directory: PathBuf,
    archive: Option<PathBuf>,
    members: Vec<String>,
}

fn parse_unzip(args: Vec<OsString>) -> Result<Option<UnzipOptions>, String> {
    let mut opts = UnzipOptions {
        list: false,
        overwrite: None,
        quiet: false,
        junk_paths: false,
        pipe: false,
        directory: PathBuf::new(),
        archive: None,
        members: Vec::new(),
    };
    let mut parser = lexopt::Parser::from_args(args.into_iter().skip(1));
    while let Some(arg) = parser.next().map_err(lexopt_text)? {
        match arg {
            Short('l') | Short('v') | Short('Z') => opts.list = true,
            Short('o') => opts.overwrite = Some(true),
            Short('n') => opts.overwrite = Some(false),
            Short('q') => opts.quiet = true,
            Short('j') => opts.junk_paths = true,
            Short('p') | Short('c') => opts.pipe = true,
            Short('d') => opts.directory = parser.value().map_err(lexopt_text)?.into(),
            Short('X' | 'a' | 'b' | 'C' | 'L' | 'D' | 'u' | 'f') => {}
            Short('h') | Long("help") => {
                println!("{UNZIP_USAGE}");
                return Ok(None);
            }
            Value(v) if opts.archive.is_none() => opts.archive = Some(v.into()),
            Value(v) => opts.members.push(v.to_string_lossy().into_owned()),
            other => return Err(other.unexpected().to_string()),
        }
    }
    if opts.archive.is_none() {
        return Err("no archive given".into());
    }
    Ok(Some(opts))
}

fn open_archive(path: &Path) -> Result<(PathBuf, ZipArchive<BufReader<File>>), String> {
    let mut candidates = vec![path.to_path_buf()];
    if path.extension().is_none() {
        candidates.push(path.with_extension("zip"));
    }
    for candidate in &candidates {
        if let Ok(file) = File::open(candidate) {
            return ZipArchive::new(BufReader::new(file))
                .map(|archive| (candidate.clone(), archive))
                .map_err(|e| format!("{}: {e}", candidate.display()));
        }
    }
    Err(format!(
        "cannot find or open {}, {}.zip",
        path.display(),
        path.display()
    ))
}

fn list(
    archive: &mut ZipArchive<BufReader<File>>,
    shown: &str,
    members: &[String],
) -> Result<(), String> {
    let mut out = io::stdout().lock();
    let mut total = 0u64;
    let mut count = 0usize;
    let write_error = |e: io::Error| crate::io_error_text(&e);
    writeln!(out, "Archive:  {shown}").map_err(write_error)?;
    writeln!(out, "  Length      Date    Time    Name").map_err(write_error)?;
    writeln!(out, "---------  ---------- -----   ----").map_err(write_error)?;
    for i in 0..archive.len() {
        let file = archive.by_index_raw(i).map_err(|e| e.to_string())?;
        let name = file.name().map_err(|e| e.to_string())?.into_owned();
        if !selected(members, &name) {
            continue;
        }
        let when = file
            .last_modified()
            .map(|t| Civil::from_unix(unix_time(t)).minutes())
            .unwrap_or_else(|| "1980-01-01 00:00".into());
        writeln!(out, "{:>9}  {when}   {name}", file.size()).map_err(write_error)?;
        total += file.size();
        count += 1;
    }
    writeln!(out, "---------                     -------").map_err(write_error)?;
    let files = if count == 1 { "file" } else { "files" };
    writeln!(out, "{total:>9}                     {count} {files}").map_err(write_error)
}

fn selected(members: &[String], name: &str) -> bool {
    members.is_empty() || members.iter().any(|m| fnmatch(m, name))
}

fn extract(opts: &UnzipOptions, archive: &mut ZipArchive<BufReader<File>>) -> Result<bool, String> {
    let mut failed = false;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(|e| e.to_string())?;
        let name = file.name().map_err(|e| e.to_string())?.into_owned();
        if !selected(&opts.members, &name) {
            continue;
        }
        if opts.pipe {
            if file.is_file() {
                io::copy(&mut file, &mut io::stdout().lock())
                    .map_err(|e| crate::io_error_text(&e))?;
            }
            continue;
        }
        let Some(relative) = file.enclosed_name() else {
            eprintln!("warning:  skipped \"{name}\": unsafe path");
            failed = true;
            continue;
        };
        let relative = if opts.junk_paths {
            match relative.file_name() {
                Some(base) if !file.is_dir() => PathBuf::from(base),
                _ => continue,
            }
        } else {
            relative
        };
        let dest = opts.directory.join(&relative);
        let result = if file.is_dir() {
            if !opts.quiet {
                println!("   creating: {}/", dest.display());
            }
            fs::create_dir_all(&dest)
        } else if fs::symlink_metadata(&dest).is_ok() && opts.overwrite != Some(true) {
            if opts.overwrite.is_none() {
                eprintln!("unzip: {} exists; not overwritten (use -o)", dest.display());
                failed = true;
            }
            Ok(())
        } else if file.is_symlink() {
            let mut target = String::new();
            io::Read::read_to_string(&mut file, &mut target)
                .and_then(|_| archive::create_parent(&dest))
                .and_then(|()| archive::clear_for(&dest))
                .and_then(|()| archive::symlink(Path::new(&target), &dest))
                .inspect(|()| {
                    if !opts.quiet {
                        println!("    linking: {} -> {target}", dest.display());
                    }
                })
        } else {
            if !opts.quiet {
                println!("  inflating: {}", dest.display());
            }
            let mtime = file.last_modified().map(unix_time);
            archive::create_parent(&dest)
                .and_then(|()| archive::clear_for(&dest))
                .and_then(|()| File::create(&dest))
                .and_then(|mut out| {
                    io::copy(&mut file, &mut out)?;
                    if let Some(seconds) = mtime.and_then(|s| u64::try_from(s).ok()) {
                        archive::set_mtime(&out, seconds);
                    }
                    Ok(())
                })
        };
        if let Err(e) = result {
            eprintln!("unzip: {}: {}", dest.display(), crate::io_error_text(&e));
            failed = true;
        }
    }
    Ok(failed)
}

pub fn unzip(args: Vec<OsString>) -> i32 {
    let opts = match parse_unzip(args) {
        Ok(Some(opts)) => opts,
        Ok(None) => return 0,
        Err(message) => {
            eprintln!("unzip: {message}\n{UNZIP_USAGE}");
            return 10;
        }
    };
    let (path, mut archive) = match open_archive(opts.archive.as_deref().unwrap_or(Path::new(""))) {
        Ok(opened) => opened,
        Err(message) => {
            eprintln!("unzip: {message}");
            return 9;
        }
    };
    let shown = path.display().to_string();
    if opts.list {
        return match list(&mut archive, &shown, &opts.members) {
            Ok(()) => 0,
            Err(message) => {
                eprintln!("unzip: {message}");
                2
            }
        };
    }
    if !opts.quiet && !opts.pipe {
        println!("Archive:  {shown}");
    }
    match extract(&opts, &mut archive) {
        Ok(false) => 0,
        Ok(true) => 1,
        Err(message) => {
            eprintln!("unzip: {shown}: {message}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let t = zip_time(1_700_000_000);
        assert_eq!(unix_time(t), 1_700_000_000);
    }

    #[test]
    fn names() {
        assert_eq!(
            member_name(Path::new("./a/b"), false, false),
            Some("a/b".into())
        );
        assert_eq!(member_name(Path::new("a/b"), true, false), Some("b".into()));
        assert_eq!(member_name(Path::new("d"), false, true), Some("d/".into()));
    }
}

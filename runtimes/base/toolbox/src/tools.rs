//! The table of tools: each name and the function that runs it with its argument vector
//! (argv[0] first) and returns its exit status. The uutils coreutils and sed/find entries
//! set up uucore's localization (the embedded English messages) before running.

use std::ffi::OsString;
use std::process::ExitCode;
use std::vec::IntoIter;

/// Runs a tool: arguments (argv[0] first) in, exit status out.
pub type Tool = fn(Vec<OsString>) -> i32;

/// Runs a uutils utility after loading the messages of `messages` (its canonical name).
fn uutil(messages: &str, args: Vec<OsString>, uumain: fn(IntoIter<OsString>) -> i32) -> i32 {
    if let Err(e) = uucore::locale::setup_localization(messages) {
        eprintln!("{messages}: cannot load messages: {e}");
        return 99;
    }
    uumain(args.into_iter())
}

/// A table entry for a uutils utility crate: `uu!("name", crate)` or, for an alias that
/// shares another utility's messages, `uu!("name", crate, "messages")`.
macro_rules! uu {
    ($name:literal, $krate:ident) => {
        uu!($name, $krate, $name)
    };
    ($name:literal, $krate:ident, $messages:literal) => {
        (
            $name,
            (|args| uutil($messages, args, $krate::uumain)) as Tool,
        )
    };
}

/// Every tool, in no particular order.
const TOOLS: &[(&str, Tool)] = &[
    uu!("[", uu_test, "test"),
    uu!("arch", uu_arch),
    uu!("b2sum", uu_b2sum),
    uu!("base32", uu_base32),
    uu!("base64", uu_base64),
    uu!("basename", uu_basename),
    uu!("basenc", uu_basenc),
    uu!("cat", uu_cat),
    uu!("cksum", uu_cksum),
    uu!("comm", uu_comm),
    uu!("cp", uu_cp),
    uu!("csplit", uu_csplit),
    uu!("cut", uu_cut),
    uu!("date", uu_date),
    uu!("dd", uu_dd),
    uu!("dir", uu_dir, "ls"),
    uu!("dircolors", uu_dircolors),
    uu!("dirname", uu_dirname),
    uu!("echo", uu_echo),
    uu!("env", uu_env),
    uu!("expand", uu_expand),
    uu!("expr", uu_expr),
    uu!("factor", uu_factor),
    uu!("false", uu_false),
    uu!("fmt", uu_fmt),
    uu!("fold", uu_fold),
    uu!("head", uu_head),
    uu!("hostid", uu_hostid),
    uu!("join", uu_join),
    uu!("link", uu_link),
    uu!("ln", uu_ln),
    uu!("ls", uu_ls),
    uu!("md5sum", uu_md5sum),
    uu!("mkdir", uu_mkdir),
    uu!("mktemp", uu_mktemp),
    uu!("mv", uu_mv),
    uu!("nl", uu_nl),
    uu!("nproc", uu_nproc),
    uu!("numfmt", uu_numfmt),
    uu!("od", uu_od),
    uu!("paste", uu_paste),
    uu!("pathchk", uu_pathchk),
    uu!("pr", uu_pr),
    uu!("printenv", uu_printenv),
    uu!("printf", uu_printf),
    uu!("ptx", uu_ptx),
    uu!("pwd", uu_pwd),
    uu!("readlink", uu_readlink),
    uu!("realpath", uu_realpath),
    uu!("rm", uu_rm),
    uu!("rmdir", uu_rmdir),
    uu!("seq", uu_seq),
    uu!("sha1sum", uu_sha1sum),
    uu!("sha224sum", uu_sha224sum),
    uu!("sha256sum", uu_sha256sum),
    uu!("sha384sum", uu_sha384sum),
    uu!("sha512sum", uu_sha512sum),
    uu!("shred", uu_shred),
    uu!("shuf", uu_shuf),
    uu!("sleep", uu_sleep),
    uu!("sort", uu_sort),
    uu!("split", uu_split),
    uu!("sum", uu_sum),
    uu!("tac", uu_tac),
    uu!("tail", uu_tail),
    uu!("tee", uu_tee),
    uu!("test", uu_test),
    uu!("touch", uu_touch),
    uu!("tr", uu_tr),
    uu!("true", uu_true),
    uu!("truncate", uu_truncate),
    uu!("tsort", uu_tsort),
    uu!("tty", uu_tty),
    uu!("uname", uu_uname),
    uu!("unexpand", uu_unexpand),
    uu!("uniq", uu_uniq),
    uu!("unlink", uu_unlink),
    uu!("vdir", uu_vdir, "ls"),
    uu!("wc", uu_wc),
    uu!("yes", uu_yes),
    ("sed", sed),
    ("find", find),
    ("xargs", crate::xargs::main),
    ("diff", crate::diff::diff),
    ("du", crate::du::main),
    ("cmp", cmp),
    ("grep", crate::grep::main),
    ("egrep", egrep),
    ("fgrep", fgrep),
    ("tar", crate::tar::main),
    ("gzip", crate::gzip::gzip),
    ("gunzip", crate::gzip::gunzip),
    ("zcat", crate::gzip::zcat),
    ("zip", crate::zip::zip),
    ("unzip", crate::zip::unzip),
    ("whoami", whoami),
];

/// The tool called `name`.
pub fn lookup(name: &str) -> Option<Tool> {
    TOOLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, tool)| *tool)
}

/// All tool names, sorted.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&str> = TOOLS.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    names
}

fn sed(args: Vec<OsString>) -> i32 {
    uutil("sed", args, ::sed::sed::uumain)
}

/// findutils takes UTF-8 arguments.
fn utf8_args(tool: &str, args: Vec<OsString>) -> Result<Vec<String>, i32> {
    args.into_iter()
        .map(|a| {
            a.into_string().map_err(|a| {
                eprintln!(
                    "{tool}: invalid (non-UTF-8) argument: {}",
                    a.to_string_lossy()
                );
                1
            })
        })
        .collect()
}

fn find(args: Vec<OsString>) -> i32 {
    if let Err(e) = uucore::locale::setup_localization("find") {
        eprintln!("find: cannot load messages: {e}");
    }
    let args = match utf8_args("find", args) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    findutils::find::find_main(&args, &findutils::find::StandardDependencies::new())
}

/// diffutils' `cmp` takes the process arguments themselves (`std::env::ArgsOs`): skip
/// those before the tool's own argv[0] (`toolbox` when called as `toolbox cmp`).
fn cmp(args: Vec<OsString>) -> i32 {
    let mut process_args = std::env::args_os();
    let skip = process_args.len().saturating_sub(args.len());
    for _ in 0..skip {
        process_args.next();
    }
    let status = diffutilslib::cmp::main(process_args.peekable());
    if status == ExitCode::SUCCESS {
        0
    } else if status == ExitCode::from(1) {
        1
    } else {
        2
    }
}

/// `egrep`/`fgrep`: grep with `-E`/`-F` in front of the arguments.
fn grep_with(flag: &str, mut args: Vec<OsString>) -> i32 {
    args.insert(1.min(args.len()), flag.into());
    crate::grep::main(args)
}

fn egrep(args: Vec<OsString>) -> i32 {
    grep_with("-E", args)
}

fn fgrep(args: Vec<OsString>) -> i32 {
    grep_with("-F", args)
}

/// WASI has no users: the user is `$USER`, or root (builds run as root, as on CodeBuild).
fn whoami(args: Vec<OsString>) -> i32 {
    if args.len() > 1 {
        eprintln!("whoami: extra operand '{}'", args[1].to_string_lossy());
        return 1;
    }
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".into());
    println!("{user}");
    0
}

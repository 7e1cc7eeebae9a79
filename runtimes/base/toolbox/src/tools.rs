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

/// A table entry for a uutils utility crate: `uu!("name", crate::uumain)` or, for an alias
/// that shares another utility's messages, `uu!("name", crate::uumain, "messages")`.
macro_rules! uu {
    ($name:literal, $uumain:path) => {
        uu!($name, $uumain, $name)
    };
    ($name:literal, $uumain:path, $messages:literal) => {
        ($name, (|args| uutil($messages, args, $uumain)) as Tool)
    };
}

/// Every tool, in no particular order.
const TOOLS: &[(&str, Tool)] = &[
    uu!("[", uu_test::uumain, "test"),
    uu!("arch", uu_arch::uumain),
    uu!("b2sum", uu_b2sum::uumain),
    uu!("base32", uu_base32::uumain),
    uu!("base64", uu_base64::uumain),
    uu!("basename", uu_basename::uumain),
    uu!("basenc", uu_basenc::uumain),
    uu!("cat", uu_cat::uumain),
    uu!("cksum", uu_cksum::uumain),
    uu!("comm", uu_comm::uumain),
    uu!("cp", uu_cp::uumain),
    uu!("csplit", uu_csplit::uumain),
    uu!("cut", uu_cut::uumain),
    uu!("date", uu_date::uumain),
    uu!("dd", uu_dd::uumain),
    uu!("dir", uu_dir::uumain, "ls"),
    uu!("dircolors", uu_dircolors::uumain),
    uu!("dirname", uu_dirname::uumain),
    uu!("echo", uu_echo::uumain),
    uu!("env", uu_env::uumain),
    uu!("expand", uu_expand::uumain),
    uu!("expr", uu_expr::uumain),
    uu!("factor", uu_factor::uumain),
    uu!("false", uu_false::uumain),
    uu!("fmt", uu_fmt::uumain),
    uu!("fold", uu_fold::uumain),
    uu!("head", uu_head::uumain),
    uu!("hostid", uu_hostid::uumain),
    uu!("join", uu_join::uumain),
    uu!("link", uu_link::uumain),
    uu!("ln", uu_ln::uumain),
    uu!("ls", uu_ls::uumain),
    uu!("md5sum", uu_md5sum::uumain),
    uu!("mkdir", uu_mkdir::uumain),
    uu!("mktemp", uu_mktemp::uumain),
    uu!("mv", uu_mv::uumain),
    uu!("nl", uu_nl::uumain),
    uu!("nproc", uu_nproc::uumain),
    uu!("numfmt", uu_numfmt::uumain),
    uu!("od", uu_od::uumain),
    uu!("paste", uu_paste::uumain),
    uu!("pathchk", uu_pathchk::uumain),
    uu!("pr", uu_pr::uumain),
    uu!("printenv", uu_printenv::uumain),
    uu!("printf", uu_printf::uumain),
    uu!("ptx", uu_ptx::uumain),
    uu!("pwd", uu_pwd::uumain),
    uu!("readlink", uu_readlink::uumain),
    uu!("realpath", uu_realpath::uumain),
    uu!("rm", uu_rm::uumain),
    uu!("rmdir", uu_rmdir::uumain),
    uu!("seq", uu_seq::uumain),
    uu!("sha1sum", uu_sha1sum::uumain),
    uu!("sha224sum", uu_sha224sum::uumain),
    uu!("sha256sum", uu_sha256sum::uumain),
    uu!("sha384sum", uu_sha384sum::uumain),
    uu!("sha512sum", uu_sha512sum::uumain),
    uu!("shred", uu_shred::uumain),
    uu!("shuf", uu_shuf::uumain),
    uu!("sleep", uu_sleep::uumain),
    uu!("sort", uu_sort::uumain),
    uu!("split", uu_split::uumain),
    uu!("sum", uu_sum::uumain),
    uu!("tac", uu_tac::uumain),
    uu!("tail", uu_tail::uumain),
    uu!("tee", uu_tee::uumain),
    uu!("test", uu_test::uumain),
    uu!("touch", uu_touch::uumain),
    uu!("tr", uu_tr::uumain),
    uu!("true", uu_true::uumain),
    uu!("truncate", uu_truncate::uumain),
    uu!("tsort", uu_tsort::uumain),
    uu!("tty", uu_tty::uumain),
    uu!("uname", uu_uname::uumain),
    uu!("unexpand", uu_unexpand::uumain),
    uu!("uniq", uu_uniq::uumain),
    uu!("unlink", uu_unlink::uumain),
    uu!("vdir", uu_vdir::uumain, "ls"),
    uu!("wc", uu_wc::uumain),
    uu!("yes", uu_yes::uumain),
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

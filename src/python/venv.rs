//! `python -m venv DIR`: a virtual environment as build scripts use one. The guest cannot
//! start the interpreter through a link, so `bin/python` and `bin/pip` are small shell
//! scripts that run the image's interpreter (or the host's pip) with `VIRTUAL_ENV` set;
//! `sitecustomize` puts the environment's site-packages on `sys.path` when `VIRTUAL_ENV`
//! names it or when a script of its `bin` runs. `bin/activate` is the usual one.

use std::io::{self, Write};

use cap_std::fs::{Dir, DirBuilder, OpenOptions, Permissions};
use cap_std::fs::{DirBuilderExt, PermissionsExt};

use super::Interpreter;
use crate::sandbox::Layout;

/// `python -m venv`'s arguments.
#[derive(clap::Parser, Debug)]
#[command(name = "venv", no_binary_name = true, disable_help_subcommand = true)]
struct VenvArgs {
    #[arg(long)]
    clear: bool,
    #[arg(long)]
    upgrade: bool,
    #[arg(long)]
    upgrade_deps: bool,
    #[arg(long)]
    without_pip: bool,
    #[arg(long)]
    system_site_packages: bool,
    #[arg(long)]
    symlinks: bool,
    #[arg(long)]
    copies: bool,
    #[arg(long, value_name = "PROMPT")]
    prompt: Option<String>,
    #[arg(required = true, value_name = "ENV_DIR")]
    dirs: Vec<String>,
}

/// Creates the environments `args` names (guest paths, relative to `cwd`).
pub fn run(
    layout: &Layout,
    python: Interpreter,
    args: &[String],
    cwd: &str,
    stderr: &mut dyn Write,
) -> i32 {
    let args = match <VenvArgs as clap::Parser>::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            let _ = write!(stderr, "{e}");
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    for dir in &args.dirs {
        let path = crate::shell::fs::normalize(cwd, dir);
        if let Err(e) = create(layout, python, &path, args.prompt.as_deref()) {
            let _ = writeln!(stderr, "Error: cannot create the environment {path}: {e}");
            return 1;
        }
    }
    0
}

/// Opens guest directory `path`, creating it and its parents, through its mount's
/// capability; a read-only mount refuses.
pub fn create_guest_dir(layout: &Layout, path: &str) -> io::Result<Dir> {
    let (mount, rel) = layout.resolve(path).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{path} is not inside any directory the guest can see"),
        )
    })?;
    if !mount.writable {
        return Err(io::Error::new(
            io::ErrorKind::ReadOnlyFilesystem,
            format!("{path} is read-only"),
        ));
    }
    let root = Dir::open_ambient_dir(&mount.host, cap_std::ambient_authority())?;
    if rel.is_empty() {
        return Ok(root);
    }
    let mut builder = DirBuilder::new();
    builder.recursive(true).mode(0o755);
    root.create_dir_with(rel, &builder)?;
    root.open_dir(rel)
}

fn create(
    layout: &Layout,
    python: Interpreter,
    path: &str,
    prompt: Option<&str>,
) -> io::Result<()> {
    let env = create_guest_dir(layout, path)?;
    let mut builder = DirBuilder::new();
    builder.recursive(true).mode(0o755);
    env.create_dir_with(python.site_packages(), &builder)?;
    env.create_dir_with("bin", &builder)?;
    let home = "/opt/runtimes/python/bin";
    let (name, version) = (python.name(), python.full_version());
    write(
        &env,
        "pyvenv.cfg",
        &format!(
            "home = {home}\ninclude-system-site-packages = false\nversion = {version}\n\
             executable = {home}/{name}\ncommand = python -m venv {path}\n"
        ),
        0o644,
    )?;
    let quoted = crate::shell::shell_quote(path, true);
    for (name, program) in [
        ("python", "python3"),
        ("python3", "python3"),
        (&name[..], "python3"),
        ("pip", "pip"),
        ("pip3", "pip"),
    ] {
        write(
            &env,
            &format!("bin/{name}"),
            &format!("#!/bin/sh\nVIRTUAL_ENV={quoted} {program} \"$@\"\n"),
            0o755,
        )?;
    }
    let prompt = prompt
        .map(str::to_owned)
        .unwrap_or_else(|| path.rsplit('/').next().unwrap_or("venv").to_owned());
    write(
        &env,
        "bin/activate",
        &format!(
            "# This file must be used with \"source bin/activate\"\n\
             deactivate () {{\n\
             \x20   if [ -n \"${{_OLD_VIRTUAL_PATH:-}}\" ]; then PATH=\"$_OLD_VIRTUAL_PATH\"; export PATH; unset _OLD_VIRTUAL_PATH; fi\n\
             \x20   unset VIRTUAL_ENV VIRTUAL_ENV_PROMPT\n\
             \x20   if [ \"${{1:-}}\" != \"nondestructive\" ]; then unset -f deactivate; fi\n\
             }}\n\
             deactivate nondestructive\n\
             VIRTUAL_ENV={quoted}\nexport VIRTUAL_ENV\n\
             _OLD_VIRTUAL_PATH=\"$PATH\"\nPATH=\"$VIRTUAL_ENV/bin:$PATH\"\nexport PATH\n\
             VIRTUAL_ENV_PROMPT={}\nexport VIRTUAL_ENV_PROMPT\n",
            crate::shell::shell_quote(&format!("({prompt}) "), true)
        ),
        0o644,
    )
}

fn write(dir: &Dir, name: &str, text: &str, mode: u32) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    let mut file = dir.open_with(name, &options)?;
    file.write_all(text.as_bytes())?;
    file.set_permissions(Permissions::from_mode(mode))
}

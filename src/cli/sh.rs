//! `wasmbuild sh`: a script run by the build shell as `bash FILE` or `bash -c` would run it,
//! with the source directory mounted as /codebuild/output/src and every program in the
//! sandbox. The exit status is the script's.

use std::path::PathBuf;

use super::shared::{DeterminismArgs, Guest, cancel_on_ctrl_c, deterministic_env};
use super::{Context, Failure};
use crate::image::DEFAULT_IMAGE;
use crate::sandbox::InterruptibleReader;
use crate::sandbox::layout::SRC_DIR;
use crate::shell::{GuestFs, Session, Stdio};

#[derive(Debug, clap::Args)]
pub struct ShArgs {
    /// Image whose programs the script runs: `NAME[:VERSION]`.
    #[arg(long, default_value = DEFAULT_IMAGE, value_name = "NAME[:VERSION]")]
    pub image: String,
    /// Host directory the guest sees, read-write, as /codebuild/output/src
    /// (`CODEBUILD_SRC_DIR`).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub src: PathBuf,
    #[command(flatten)]
    pub determinism: DeterminismArgs,
    /// Run SCRIPT instead of a file; the words after it are `$0`, `$1`…
    #[arg(short = 'c', value_name = "SCRIPT")]
    pub command: Option<String>,
    /// The script file (a host path) and its arguments (with -c: `$0` and the arguments).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

pub fn run(ctx: &Context, args: ShArgs) -> Result<u8, Failure> {
    let (script, name, arg0, positional) = match (&args.command, &args.file) {
        (Some(script), _) => {
            let file = args.file.iter().map(|f| f.display().to_string());
            let mut words = file.chain(args.args.iter().cloned());
            let arg0 = words.next().unwrap_or_else(|| "wasmbuild-sh".to_owned());
            (script.clone(), arg0.clone(), arg0, words.collect())
        }
        (None, Some(file)) => {
            let script = std::fs::read(file).map_err(Failure::input(file))?;
            let name = file.display().to_string();
            (
                String::from_utf8_lossy(&script).into_owned(),
                name.clone(),
                name,
                args.args.clone(),
            )
        }
        (None, None) => {
            return Err(Failure::usage(
                "sh: give a script file or -c SCRIPT".to_owned(),
            ));
        }
    };

    let cwd = guest_cwd(&args.src);
    let determinism = args
        .determinism
        .determinism(&args.src, &[&args.image, &cwd, &script])?;
    let epoch = determinism.as_ref().map(|d| d.source_date_epoch);
    let cancel = cancel_on_ctrl_c();
    let guest = Guest::prepare(ctx, false, &args.image, &args.src, &cwd, |runner| {
        runner.cancel = Some(cancel.clone());
        runner.determinism = determinism;
    })?;
    let fs = GuestFs::open(&guest.runner.layout)?;
    let mut env = guest.env.clone();
    if let Some(epoch) = epoch {
        env.extend(deterministic_env(epoch));
    }
    let mut session = Session::new(guest.runner.clone(), fs, env, cwd);
    session.set_cancel_flag(cancel.clone());
    session.set_positional(arg0, positional);
    session.set_command_string_mode(args.command.is_some());

    // The terminal may never send anything: its reads give up on Ctrl-C.
    let stdio = || Stdio {
        stdin: Box::new(InterruptibleReader::new(
            Box::new(std::io::stdin()),
            None,
            Some(cancel.clone()),
        )),
        stdout: Box::new(std::io::stdout()),
        stderr: Box::new(std::io::stderr()),
    };
    let status = session
        .run_script(&script, &name, stdio())
        .and_then(|_| session.finish(stdio()));
    match status {
        Ok(status) => Ok(u8::try_from(status & 0xff).unwrap_or(1)),
        Err(e) => Err(e.into()),
    }
}

/// The guest directory matching the host's current directory when it lies inside the
/// source directory (as `bash FILE` runs where it is started), else the source root.
fn guest_cwd(src: &std::path::Path) -> String {
    let inside = (|| {
        let here = std::env::current_dir().ok()?.canonicalize().ok()?;
        let src = src.canonicalize().ok()?;
        let rel = here.strip_prefix(&src).ok()?.to_str()?.to_owned();
        Some(rel)
    })();
    match inside {
        Some(rel) if !rel.is_empty() => format!("{SRC_DIR}/{rel}"),
        _ => SRC_DIR.to_owned(),
    }
}

//! `wasmbuild exec`: one program of an image, in the build's guest layout, with this
//! process's stdio, exiting with the program's status.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::shared::{
    DeterminismArgs, Guest, cancel_on_ctrl_c, deterministic_env, normalize_guest_path,
    parse_env_pairs,
};
use super::{Context, Failure};
use crate::image::{DEFAULT_IMAGE, ImageRunner, ProgramIo, ProgramOutcome};
use crate::sandbox::layout::SRC_DIR;
use crate::sandbox::{GuestExit, InterruptibleReader};
use crate::shell::{GuestFs, Session};

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Image to run the program from: `NAME[:VERSION]`.
    #[arg(long, default_value = DEFAULT_IMAGE, value_name = "NAME[:VERSION]")]
    pub image: String,
    /// Host directory the guest sees, read-write, as /codebuild/output/src.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub src: PathBuf,
    /// Working directory of the program: relative to the source directory, or an absolute
    /// guest path.
    #[arg(long, value_name = "PATH")]
    pub workdir: Option<String>,
    /// Environment variable for the program (repeatable); nothing of the host's is passed.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Stop the program after this many seconds (above 0, at most 129600).
    #[arg(long, value_name = "SECONDS", value_parser = super::shared::parse_timeout_seconds)]
    pub timeout: Option<f64>,
    #[command(flatten)]
    pub determinism: DeterminismArgs,
    /// The program and its arguments.
    #[arg(required = true, last = true, value_name = "PROGRAM [ARGS]...")]
    pub argv: Vec<String>,
}

pub fn run(ctx: &Context, args: ExecArgs) -> Result<u8, Failure> {
    let user_env = parse_env_pairs(&args.env)?;
    let cwd = match &args.workdir {
        None => SRC_DIR.to_owned(),
        Some(dir) if dir.starts_with('/') => normalize_guest_path(dir),
        Some(dir) => normalize_guest_path(&format!("{SRC_DIR}/{dir}")),
    };
    let deadline = args
        .timeout
        .map(|secs| Instant::now() + Duration::from_secs_f64(secs.max(0.0)));
    let determinism = args
        .determinism
        .determinism(&args.src, &[&args.image, &cwd])?
        .map(|mut d| {
            let argv = args.argv.join("\0");
            d.seed = crate::sandbox::Determinism::derive_seed(&d.seed, argv.as_bytes());
            d
        });
    let epoch = determinism.as_ref().map(|d| d.source_date_epoch);
    let cancel = cancel_on_ctrl_c();
    let guest = Guest::prepare(ctx, true, &args.image, &args.src, &cwd, |runner| {
        runner.deadline = deadline;
        runner.cancel = Some(cancel.clone());
        runner.determinism = determinism;
    })
    .map_err(|failure| match (failure, &args.workdir) {
        (Failure::Usage(message), Some(dir)) => Failure::Usage(message.replace(
            &format!("{cwd} is not"),
            &format!("--workdir {dir}: {cwd} is not"),
        )),
        (failure, _) => failure,
    })?;
    let (runner, image) = (&guest.runner, &guest.image);
    let mut env = guest.env.clone();
    env.push(("PWD".to_owned(), cwd.clone()));
    if let Some(epoch) = epoch {
        env.extend(deterministic_env(epoch));
    }
    for (key, value) in user_env {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    }

    // What the program starts runs as the build shell would run it.
    let fs = GuestFs::open(&runner.layout)?;
    let mut session = Session::new(guest.runner.clone(), fs, env.clone(), cwd.clone());
    session.set_cancel_flag(cancel.clone());
    let io = ProgramIo {
        // The terminal may never send anything: its reads give up at the deadline and on
        // Ctrl-C.
        stdin: Box::new(InterruptibleReader::new(
            Box::new(std::io::stdin()),
            deadline,
            Some(cancel.clone()),
        )),
        stdout: Box::new(std::io::stdout()),
        stderr: Box::new(std::io::stderr()),
        terminal: [
            std::io::stdin().is_terminal(),
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        ],
        spawner: Some(session.spawner()),
        kill: None,
        ends_process: true,
    };
    let program = args.argv[0].clone();
    if program.contains('/') {
        return run_module_file(runner, &program, args.argv, env, &cwd, io);
    }
    let outcome = runner.run_command(args.argv, env, &cwd, io)?;
    crate::startup::mark("run wound up");
    let status = match outcome {
        ProgramOutcome::NotFound => {
            eprintln!("{program}: command not found in image {}", image.name());
            127
        }
        ProgramOutcome::Ran(GuestExit::Exited(code)) => u8::try_from(code & 0xff).unwrap_or(1),
        ProgramOutcome::Ran(exit @ GuestExit::Trapped { .. }) => {
            if let GuestExit::Trapped { message, .. } = &exit {
                eprintln!("wasmbuild: {message}");
            }
            u8::try_from(exit.status()).unwrap_or(1)
        }
    };
    // The command is over: the directories made for the guest go, and the rest (the
    // engine, its code, the guest's store) is left to the exit, which frees it faster than
    // taking each part down first (0.2–0.3 ms of a `python -c pass`, measured paired), and
    // off the caller's wait (`crate::exit`).
    drop(session);
    guest.finish();
    crate::startup::mark("done");
    crate::exit::exit(status)
}

/// `exec -- ./tool.wasm ARGS`: a module from the guest's own filesystem.
fn run_module_file(
    runner: &ImageRunner,
    program: &str,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: &str,
    io: ProgramIo,
) -> Result<u8, Failure> {
    let guest_path = if program.starts_with('/') {
        normalize_guest_path(program)
    } else {
        normalize_guest_path(&format!("{cwd}/{program}"))
    };
    if !guest_path.ends_with(".wasm") {
        return Err(Failure::Program {
            message: format!("{program}: not a WebAssembly module (.wasm)"),
            status: 126,
        });
    }
    let outcome = runner
        .run_module_file(&guest_path, argv, env, cwd, io)
        .map_err(|e| Failure::Program {
            message: e.to_string(),
            status: 126,
        })?;
    let ProgramOutcome::Ran(exit) = outcome else {
        return Err(Failure::Program {
            message: format!("{program}: no such file"),
            status: 127,
        });
    };
    if let GuestExit::Trapped { message, .. } = &exit {
        eprintln!("wasmbuild: {message}");
    }
    Ok(u8::try_from(exit.status() & 0xff).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_normalise_without_escaping_root() {
        assert_eq!(
            normalize_guest_path("/codebuild/output/src/./a/../b"),
            "/codebuild/output/src/b"
        );
        assert_eq!(normalize_guest_path("/../../etc"), "/etc");
        assert_eq!(normalize_guest_path("/"), "/");
    }
}

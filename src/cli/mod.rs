//! The command line: clap derive structs for every flag (with their `env` forms), and a
//! thin dispatcher that calls the library and turns its errors into messages and the
//! documented exit statuses. Nothing here is needed to use wasmbuild as a library.

mod exec;
mod guest;
mod run;
mod runtime;
mod sh;
mod store;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::runtime::Runtimes;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::store::Store;

/// Exit status for bad input: usage errors, invalid buildspecs, unknown images.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when wasmbuild itself or its store failed.
pub const EXIT_FAULT: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "wasmbuild",
    version,
    about = "Hermetic CodeBuild-style builds: every command runs as a WASI program in wasmtime"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// The store: a local directory or `s3://BUCKET/PREFIX` (configured by the `AWS_*`
    /// variables). Default: `wasmbuild` in the user's cache directory.
    #[arg(
        long,
        global = true,
        env = "WASMBUILD_STORE",
        value_name = "DIR|s3://BUCKET/PREFIX"
    )]
    pub store: Option<std::ffi::OsString>,
    /// Where runtime recipes live (`<DIR>/<name>/recipe.toml`).
    #[arg(long, global = true, env = "WASMBUILD_RECIPES", value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/runtimes"))]
    pub recipes: PathBuf,
    /// Largest memory a guest program may use, in MiB.
    #[arg(
        long,
        global = true,
        env = "WASMBUILD_MEMORY_LIMIT",
        value_name = "MIB",
        default_value_t = 2048
    )]
    pub memory_limit: u64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a buildspec build of a source directory, as CodeBuild would.
    Run(run::RunArgs),
    /// Build twice with deliberate perturbations and compare the artifacts.
    Verify(verify::VerifyArgs),
    /// Run one program of an image in the sandbox.
    Exec(exec::ExecArgs),
    /// Run a shell script like `bash FILE` would, every program in the sandbox.
    Sh(sh::ShArgs),
    /// Build, import and list runtime bundles (the images of wasmbuild).
    #[command(subcommand)]
    Runtime(runtime::RuntimeCommand),
    /// Check, clean up and measure the store.
    #[command(subcommand)]
    Store(store::StoreCommand),
}

/// Shared state of one invocation: the store and, once needed, the sandbox.
pub struct Context {
    pub global: GlobalArgs,
    pub store: Store,
}

impl Context {
    fn new(global: GlobalArgs) -> Result<Self, Failure> {
        let spec = global
            .store
            .clone()
            .unwrap_or_else(|| Store::default_root().into_os_string());
        let store = Store::open(spec).map_err(|e| match e {
            crate::store::StoreError::BadSpec { .. } => Failure::bad_input(e.to_string()),
            e => Failure::fault(e.to_string()),
        })?;
        Ok(Context { global, store })
    }

    pub fn runtimes(&self) -> Runtimes {
        Runtimes::new(self.store.clone())
    }

    pub fn sandbox(&self) -> Result<Arc<Sandbox>, Failure> {
        let config = SandboxConfig {
            memory_limit: self.global.memory_limit.saturating_mul(1 << 20),
            code_cache_dir: Some(self.store.local_dir("compiled")),
        };
        Sandbox::new(config)
            .map(Arc::new)
            .map_err(|e| Failure::fault(e.to_string()))
    }
}

/// An error for the user: the message and the exit status it maps to.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub status: u8,
}

impl Failure {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            status: EXIT_BAD_INPUT,
        }
    }
    pub fn fault(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            status: EXIT_FAULT,
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let cli = Cli::parse();
    let result = Context::new(cli.global).and_then(|ctx| match cli.command {
        Command::Run(args) => run::run(&ctx, args),
        Command::Verify(args) => verify::run(&ctx, args),
        Command::Exec(args) => exec::run(&ctx, args),
        Command::Sh(args) => sh::run(&ctx, args),
        Command::Runtime(command) => runtime::run(&ctx, command),
        Command::Store(command) => store::run(&ctx, command),
    });
    match result {
        Ok(status) => ExitCode::from(status),
        Err(failure) => {
            eprintln!("wasmbuild: {}", failure.message);
            ExitCode::from(failure.status)
        }
    }
}

//! The command line: clap derive structs for every flag (with their `env` forms), and a
//! thin dispatcher that calls the library and turns its errors into messages and the
//! documented exit statuses. Nothing here is needed to use wasmbuild as a library.

mod batch;
mod check;
mod error;
mod exec;
mod reports;
mod run;
mod runtime;
mod serve;
mod sh;
mod shared;
mod store;
mod verify;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::runtime::Runtimes;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::store::Store;

pub use error::{EXIT_BAD_INPUT, EXIT_FAULT, Failure};

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
    /// Where runtime recipes live (`<DIR>/<name>/recipe.toml`). Default: the recipes built
    /// into wasmbuild.
    #[arg(long, global = true, env = "WASMBUILD_RECIPES", value_name = "DIR")]
    pub recipes: Option<PathBuf>,
    /// Largest memory a guest program may use, in MiB (1 to 1048576).
    #[arg(
        long,
        global = true,
        env = "WASMBUILD_MEMORY_LIMIT",
        value_name = "MIB",
        default_value_t = 2048,
        value_parser = clap::value_parser!(u64).range(1..=shared::MAX_MEMORY_LIMIT_MIB)
    )]
    pub memory_limit: u64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a buildspec build of a source directory, as CodeBuild would.
    Run(run::RunArgs),
    /// Read a buildspec without running it: its problems, and what the build needs.
    Check(check::CheckArgs),
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
    /// The test and coverage reports builds kept: list, show, trend.
    #[command(subcommand)]
    Reports(reports::ReportsCommand),
    /// A web console over the store: builds, live logs, timelines, reports, artifacts.
    Serve(serve::ServeArgs),
}

/// Shared state of one invocation: the store and, once needed, the sandbox.
pub struct Context {
    pub global: GlobalArgs,
    pub store: Store,
    /// The store's bundles (their manifests read once).
    runtimes: Runtimes,
    recipes: std::sync::OnceLock<PathBuf>,
    /// One sandbox (one wasmtime engine) for everything the command runs: the builds of a
    /// batch share it, as `verify`'s two builds do.
    sandbox: std::sync::OnceLock<Arc<Sandbox>>,
}

impl Context {
    fn new(global: GlobalArgs) -> Result<Self, Failure> {
        let spec = global
            .store
            .clone()
            .unwrap_or_else(|| Store::default_root().into_os_string());
        let store = Store::open(spec)?;
        Ok(Context {
            global,
            runtimes: Runtimes::new(store.clone()),
            store,
            recipes: std::sync::OnceLock::new(),
            sandbox: std::sync::OnceLock::new(),
        })
    }

    /// The recipes directory: `--recipes`, else the built-in recipes (unpacked into the
    /// store's local directory the first time).
    pub fn recipes(&self) -> Result<&std::path::Path, Failure> {
        if let Some(dir) = &self.global.recipes {
            return Ok(dir);
        }
        if let Some(dir) = self.recipes.get() {
            return Ok(dir);
        }
        let dir = crate::runtime::recipe::embedded_recipes(&self.store.local_dir("recipes"))?;
        Ok(self.recipes.get_or_init(|| dir))
    }

    pub fn runtimes(&self) -> &Runtimes {
        &self.runtimes
    }

    pub fn sandbox(&self) -> Result<Arc<Sandbox>, Failure> {
        self.sandbox_for(false)
    }

    /// The process's sandbox, made for one program (`exec`: see
    /// `SandboxConfig::one_program`) or for many by the first to ask.
    pub fn sandbox_for(&self, one_program: bool) -> Result<Arc<Sandbox>, Failure> {
        if let Some(sandbox) = self.sandbox.get() {
            return Ok(sandbox.clone());
        }
        let config = SandboxConfig {
            one_program,
            ..self.sandbox_config(self.global.memory_limit)?
        };
        let sandbox = Sandbox::new(config).map(Arc::new)?;
        Ok(self.sandbox.get_or_init(|| sandbox).clone())
    }

    /// A sandbox's settings: guest memory up to `mib` MiB, code and the guests' skeletons
    /// kept in the store's machine-local directory, the engine as `WASMBUILD_ENGINE`
    /// varies it.
    pub fn sandbox_config(&self, mib: u64) -> Result<SandboxConfig, Failure> {
        Ok(SandboxConfig {
            memory_limit: mib.saturating_mul(1 << 20),
            code_cache_dir: Some(self.store.local_dir("compiled")),
            engine: crate::sandbox::engine::EngineSettings::from_env().map_err(Failure::usage)?,
            skeleton_dir: Some(self.store.local_dir("skeletons")),
            one_program: false,
        })
    }
}

/// Entry point of the binary: the exit status of the command it ran.
pub fn main() -> u8 {
    let log = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .without_time();
    // `RUST_LOG` filters by target and span; without it, warnings and errors are printed,
    // a fixed level that costs nothing to set up (an `EnvFilter` was a tenth of a
    // millisecond of every command's start).
    match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => log
            .with_env_filter(tracing_subscriber::EnvFilter::new(directives))
            .init(),
        _ => log
            .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
            .init(),
    }
    let cli = Cli::parse();
    crate::startup::mark("arguments parsed");
    let result = Context::new(cli.global).and_then(|ctx| match cli.command {
        Command::Run(args) => run::run(&ctx, args),
        Command::Check(args) => check::check(&ctx, args),
        Command::Verify(args) => verify::run(&ctx, args),
        Command::Exec(args) => exec::run(&ctx, args),
        Command::Sh(args) => sh::run(&ctx, args),
        Command::Runtime(command) => runtime::run(&ctx, command),
        Command::Store(command) => store::run(&ctx, command),
        Command::Reports(command) => reports::run(&ctx, command),
        Command::Serve(args) => serve::run(&ctx, args),
    });
    match result {
        Ok(status) => status,
        Err(failure) => {
            eprintln!("wasmbuild: {}", failure.message());
            failure.status()
        }
    }
}

//! The sandbox: one wasmtime `Engine` per process and, for every command, a fresh `Store`
//! with a WASI preview1 context holding exactly the argv, env, stdio and directories it is
//! given. It knows nothing of buildspecs, shells or bundles: callers hand it a module file
//! with its digest and a `GuestCommand`, and get back how the guest ended.

mod code_cache;
mod determinism;
pub mod engine;
mod error;
mod fds;
mod interrupt;
pub mod layout;
mod prefault;
mod process;
pub mod snapshot;
mod stdio;
mod wasi_runtime;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, ResourceLimiter, Store, Trap, UpdateDeadline,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

pub use code_cache::CodeCache;
pub use determinism::Determinism;
pub use error::SandboxError;
pub use layout::{Layout, Mount};
pub use prefault::PageRuns;
pub use process::{ChildEnd, SpawnError, SpawnRequest, Spawner};
pub use stdio::{GuestInput, GuestOutput, InterruptibleReader, SharedBuffer};

pub use interrupt::wake_guests;
use interrupt::{GuestClocks, HostMonotonic, StopSignal};
use stdio::{InputPipe, OutputPipe};

/// Exit status of a guest stopped by its deadline (as `timeout(1)` reports it).
pub const STATUS_DEADLINE: i32 = 124;
/// Exit status of a guest stopped because it was cancelled (as for SIGINT).
pub const STATUS_CANCELLED: i32 = 130;
/// Exit status of a guest that ran out of memory (as for SIGKILL by the OOM killer).
pub const STATUS_OUT_OF_MEMORY: i32 = 137;
/// Exit status of a guest that trapped for any other reason (as for SIGABRT).
pub const STATUS_TRAP: i32 = 134;

/// Default limit of a guest's linear memory.
pub const DEFAULT_MEMORY_LIMIT: u64 = 2 << 30;

/// How often the epoch advances; deadlines and cancellation are checked at this pace.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Instances that may run at the same time (pipeline stages, parallel builds).
const MAX_CONCURRENT_INSTANCES: u32 = 128;

/// Settings of the sandbox, fixed for the life of the process.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Largest linear memory a guest may grow to, in bytes.
    pub memory_limit: u64,
    /// Root of the compiled-code cache; `None` compiles in memory only.
    pub code_cache_dir: Option<PathBuf>,
    /// The engine's settings (`WASMBUILD_ENGINE` varies them for measurements).
    pub engine: engine::EngineSettings,
    /// Where the stand-ins for the guest's `/` are kept for every process to use (the
    /// store's machine-local directory); `None`: each process makes its own and removes it.
    pub skeleton_dir: Option<PathBuf>,
    /// The process runs one program (`exec`), with the children it starts: instances are
    /// allocated on demand (else, for a build's commands or a shell's pipelines, they come
    /// from a pool, whose setup, 0.15 ms of a start, pays for itself over many guests;
    /// `WASMBUILD_ENGINE=pool=on|off` decides instead), and no thread advances the epoch
    /// until a guest has a deadline or a parent. Its guests' cancel flag must then be
    /// raised with [`wake_guests`] (as the Ctrl-C handler does), or a guest that computes
    /// would not see it.
    pub one_program: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            code_cache_dir: None,
            engine: engine::EngineSettings::default(),
            skeleton_dir: None,
            one_program: false,
        }
    }
}

/// Where a loaded module's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOrigin {
    /// Compiled now by cranelift.
    Compiled,
    /// Loaded from the compiled-code cache on disk.
    CodeCache,
    /// Already loaded earlier in this process.
    Memory,
}

/// A module ready to run: compiled, linked against WASI, instantiable many times.
#[derive(Clone)]
pub struct LoadedModule {
    pre: InstancePre<GuestState>,
    /// Linked with sorted directory listings, for deterministic guests (at the first).
    sorted_pre: Arc<std::sync::OnceLock<InstancePre<GuestState>>>,
    origin: CodeOrigin,
}

impl LoadedModule {
    pub fn origin(&self) -> CodeOrigin {
        self.origin
    }
}

/// One command for the guest: everything it may see.
pub struct GuestCommand {
    /// Name used in messages about this guest (usually argv\[0\]).
    pub name: String,
    pub argv: Vec<String>,
    /// The guest's whole environment; nothing of the host is added.
    pub env: Vec<(String, String)>,
    /// Directories the guest can reach.
    pub layout: Layout,
    /// Absolute guest path preopened as `.` (the caller's current directory).
    pub cwd: String,
    pub stdin: GuestInput,
    pub stdout: GuestOutput,
    pub stderr: GuestOutput,
    /// Whether stdin/stdout/stderr should report themselves as terminals.
    pub terminal: [bool; 3],
    /// Wall-clock instant after which the guest is stopped.
    pub deadline: Option<Instant>,
    /// Set to stop the guest early (Ctrl-C, an abandoned build).
    pub cancel: Option<Arc<AtomicBool>>,
    /// A second stop flag: raised by the parent of a guest that another guest started.
    pub kill: Option<Arc<AtomicBool>>,
    /// Starts the programs the guest asks for through `/dev/process`; `None`: it cannot.
    pub spawner: Option<Arc<dyn Spawner>>,
    /// Virtual clocks, seeded randomness and sorted listings, for reproducible builds.
    pub determinism: Option<Determinism>,
    /// Pages of the module's memory to copy in before it starts: those every run of it
    /// writes (`PageRuns`, recorded with its snapshot).
    pub prefault: Option<Arc<PageRuns>>,
    /// The process exits when this guest has: its store (memory, instance, tables) is left
    /// for the exit to free, which does it faster than taking each part down first.
    pub ends_process: bool,
}

impl GuestCommand {
    /// `argv` with nothing around it: no environment, no directories, `/` as its working
    /// directory, no input, its output dropped, no deadline. Callers set what they need
    /// (`GuestCommand { env, ..GuestCommand::bare(argv) }`).
    pub fn bare(argv: Vec<String>) -> Self {
        GuestCommand {
            name: argv.first().cloned().unwrap_or_default(),
            argv,
            env: Vec::new(),
            layout: Layout::default(),
            cwd: "/".into(),
            stdin: Box::new(std::io::empty()),
            stdout: Box::new(std::io::sink()),
            stderr: Box::new(std::io::sink()),
            terminal: [false; 3],
            deadline: None,
            cancel: None,
            kill: None,
            spawner: None,
            determinism: None,
            prefault: None,
            ends_process: false,
        }
    }
}

/// Why a guest stopped without exiting on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    OutOfMemory,
    Deadline,
    Cancelled,
    Other,
}

/// How a guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestExit {
    /// The guest returned from `_start` (status 0) or called `proc_exit`.
    Exited(i32),
    /// The guest was stopped; `message` says why, naming the program.
    Trapped { kind: TrapKind, message: String },
}

impl GuestExit {
    /// The status a shell sees: the exit code, or the documented status for each trap.
    pub fn status(&self) -> i32 {
        match self {
            GuestExit::Exited(code) => *code,
            GuestExit::Trapped { kind, .. } => match kind {
                TrapKind::Deadline => STATUS_DEADLINE,
                TrapKind::Cancelled => STATUS_CANCELLED,
                TrapKind::OutOfMemory => STATUS_OUT_OF_MEMORY,
                TrapKind::Other => STATUS_TRAP,
            },
        }
    }
}

/// Per-store state: the WASI context and the resource limiter.
pub struct GuestState {
    wasi: WasiP1Ctx,
    limits: GuestLimits,
    /// WASI's own functions that a deterministic guest's replacements wrap.
    originals: Option<determinism::Originals>,
    /// The deadline and cancel flag, checked by host calls that block.
    stop: StopSignal,
    /// The clocks the guest reads.
    clocks: GuestClocks,
    /// WASI's own `poll_oneoff`, made on first need (see `interrupt`).
    poll_original: Option<wasmtime::TypedFunc<(i32, i32, i32, i32), i32>>,
    /// The guest's descriptor numbers and its `/dev` (see `fds`).
    fds: fds::FdTable,
}

struct GuestLimits {
    memory_limit: usize,
    memory_denied: bool,
}

impl ResourceLimiter for GuestLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 10_000_000)
    }
}

/// The reason an epoch callback stopped a guest.
#[derive(Debug)]
struct Interrupted(TrapKind);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            TrapKind::Deadline => "deadline exceeded",
            _ => "cancelled",
        })
    }
}

impl std::error::Error for Interrupted {}

/// The process's sandbox: engine, WASI linker, compiled-code cache, loaded modules.
pub struct Sandbox {
    engine: Engine,
    /// WASI with the deadline-aware `poll_oneoff`: what the deterministic wrappers call.
    base_linker: Linker<GuestState>,
    /// What guests are linked against: `base_linker` under the descriptor table.
    linker: Linker<GuestState>,
    /// The same with the deterministic wrappers between the two, made for the first
    /// deterministic guest (`sorted_linker`).
    sorted_linker: std::sync::OnceLock<Linker<GuestState>>,
    /// The descriptor forwarder `linker` and `sorted_linker` are made with.
    forwarder: Module,
    interposer: LazyHelper,
    code_cache: Option<CodeCache>,
    loaded: Mutex<HashMap<String, LoadedModule>>,
    /// Held while a module is being loaded (see `load_with`).
    loading: Mutex<()>,
    memory_limit: u64,
    /// Whether guests are stopped by epoch checks (always, but for measurements).
    epoch_interruption: bool,
    /// The thread advancing the epoch, started with the sandbox, or for a sandbox of one
    /// program at the first guest with a deadline or a parent (see `one_program`).
    ticker: std::sync::Once,
    skeletons: Skeletons,
}

/// A module's machine code from the code cache, else compiled from what `read_module`
/// returns and kept there. Guest modules and the sandbox's own helpers both come this way.
fn cached_module(
    engine: &Engine,
    cache: Option<&CodeCache>,
    name: &str,
    digest: &str,
    read_module: impl FnOnce() -> Result<Vec<u8>, SandboxError>,
) -> Result<(Module, CodeOrigin), SandboxError> {
    if let Some(module) = cache.and_then(|cache| cache.load(engine, digest)) {
        return Ok((module, CodeOrigin::CodeCache));
    }
    let bytes = read_module()?;
    tracing::info!(module = name, size = bytes.len(), "compiling module");
    let module = Module::new(engine, &bytes).map_err(|e| SandboxError::Compile {
        name: name.into(),
        reason: format!("{e:#}"),
    })?;
    if let Some(cache) = cache {
        match module.serialize() {
            Ok(code) => cache.store(digest, &code),
            Err(error) => tracing::warn!(%error, "cannot serialise compiled code"),
        }
    }
    Ok((module, CodeOrigin::Compiled))
}

/// One of the sandbox's own small modules (written in WAT), from the code cache when it is
/// there: compiling the three of them was a quarter of a `wasmbuild exec` of `true`.
fn helper_module(
    engine: &Engine,
    cache: Option<&CodeCache>,
    source: &str,
) -> Result<Module, SandboxError> {
    let digest = crate::digest::sha256_hex(source.as_bytes());
    cached_module(engine, cache, "sandbox helper", &digest, || {
        Ok(source.as_bytes().to_vec())
    })
    .map(|(module, _)| module)
}

/// One of the sandbox's own modules, loaded at its first use (from the code cache, else
/// compiled): most guests never need the poll or the deterministic interposer, and loading
/// each was 0.04–0.1 ms of every process's start.
#[derive(Clone)]
pub(crate) struct LazyHelper(Arc<LazyHelperInner>);

struct LazyHelperInner {
    engine: Engine,
    code_cache: Option<CodeCache>,
    source: &'static str,
    module: std::sync::OnceLock<Module>,
}

impl LazyHelper {
    fn new(engine: &Engine, code_cache: Option<&CodeCache>, source: &'static str) -> Self {
        LazyHelper(Arc::new(LazyHelperInner {
            engine: engine.clone(),
            code_cache: code_cache.cloned(),
            source,
            module: std::sync::OnceLock::new(),
        }))
    }

    pub(crate) fn get(&self) -> Result<Module, SandboxError> {
        let inner = &self.0;
        get_or_try_init(&inner.module, || {
            helper_module(&inner.engine, inner.code_cache.as_ref(), inner.source)
        })
        .cloned()
    }
}

/// The value in `cell`, made by `init` if it holds none yet; an error leaves it empty (the
/// next caller tries again). Two threads may both make it: one value is kept.
fn get_or_try_init<T, E>(
    cell: &std::sync::OnceLock<T>,
    init: impl FnOnce() -> Result<T, E>,
) -> Result<&T, E> {
    if let Some(value) = cell.get() {
        return Ok(value);
    }
    let value = init()?;
    Ok(cell.get_or_init(|| value))
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        let pooling = config.engine.pooling.unwrap_or(!config.one_program);
        let engine = Self::engine(config.memory_limit, &config.engine, pooling)?;
        let mut raw_linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut raw_linker, |state: &mut GuestState| {
            &mut state.wasi
        })
        .map_err(|e| SandboxError::Engine(e.to_string()))?;
        let code_cache = config
            .code_cache_dir
            .as_deref()
            .map(|dir| CodeCache::new(dir, &engine));
        // Sleeps wake at the deadline and on cancel.
        let poll_interposer =
            LazyHelper::new(&engine, code_cache.as_ref(), interrupt::POLL_INTERPOSER);
        let mut base_linker = raw_linker.clone();
        interrupt::shadow_poll(&mut base_linker, raw_linker, poll_interposer)
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        // The guest's own descriptor numbers and /dev, over everything else.
        let forwarder = helper_module(&engine, code_cache.as_ref(), &fds::forwarder_wat())?;
        let mut linker = base_linker.clone();
        fds::shadow(&mut linker, forwarder.clone())
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        let interposer = LazyHelper::new(&engine, code_cache.as_ref(), determinism::INTERPOSER);
        let ticker = std::sync::Once::new();
        if config.engine.epoch_interruption {
            if config.one_program {
                interrupt::wake_on_signal(&engine);
            } else {
                ticker.call_once(|| start_epoch_ticker(&engine));
            }
        }
        Ok(Sandbox {
            engine,
            base_linker,
            linker,
            sorted_linker: std::sync::OnceLock::new(),
            forwarder,
            interposer,
            code_cache,
            loaded: Mutex::new(HashMap::new()),
            loading: Mutex::new(()),
            memory_limit: config.memory_limit,
            epoch_interruption: config.engine.epoch_interruption,
            ticker,
            skeletons: Skeletons {
                kept: config.skeleton_dir,
                ..Skeletons::default()
            },
        })
    }

    fn engine(
        memory_limit: u64,
        settings: &engine::EngineSettings,
        pooling: bool,
    ) -> Result<Engine, SandboxError> {
        let mut config = Config::new();
        config.parallel_compilation(true);
        settings.apply(&mut config);
        if !pooling {
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            return Engine::new(&config).map_err(|e| SandboxError::Engine(e.to_string()));
        }
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            // Each guest is its own instance plus small ones over its memory (the descriptor
            // forwarder, the poll and deterministic interposers), which own no memory.
            .total_core_instances(MAX_CONCURRENT_INSTANCES * 4)
            .total_memories(MAX_CONCURRENT_INSTANCES)
            .total_tables(MAX_CONCURRENT_INSTANCES)
            .max_memory_size(memory_limit.try_into().unwrap_or(usize::MAX))
            .max_core_instance_size(16 << 20)
            .table_elements(200_000)
            .max_unused_warm_slots(16)
            // Guests run synchronously, never on fibers: no pool of async stacks, whose
            // default thousand guard pages cost a tenth of a `wasmbuild exec` to set up and
            // tear down.
            .total_stacks(0);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        match Engine::new(&config) {
            Ok(engine) => Ok(engine),
            Err(pooling_error) => {
                // Address-space limits (ulimit -v) can refuse the pool's reservation;
                // on-demand allocation still works, only slower to start.
                tracing::warn!(%pooling_error, "pooling allocator unavailable; allocating on demand");
                config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
                Engine::new(&config).map_err(|e| SandboxError::Engine(e.to_string()))
            }
        }
    }

    /// Removes the host directories this sandbox made to stand in for its guests' `/`, as
    /// its drop would: for a process that exits without dropping it.
    pub fn remove_skeletons(&self) {
        self.skeletons.remove();
    }

    pub fn engine_ref(&self) -> &Engine {
        &self.engine
    }

    /// The compiled-code cache in use, if any.
    pub fn code_cache(&self) -> Option<&CodeCache> {
        self.code_cache.as_ref()
    }

    /// Loads the module at `path`, whose content must hash to `digest` (hex sha256).
    /// Machine code comes from memory, the compiled-code cache, or a fresh compilation,
    /// in that order; the module's bytes are only read (and verified) when compiling.
    pub fn load(
        &self,
        name: &str,
        path: &Path,
        digest: &str,
    ) -> Result<LoadedModule, SandboxError> {
        self.load_with(name, digest, || {
            let bytes = std::fs::read(path).map_err(|source| SandboxError::ReadModule {
                path: path.into(),
                source,
            })?;
            let actual = crate::digest::sha256_hex(&bytes);
            if actual != digest {
                return Err(SandboxError::DigestMismatch {
                    path: path.into(),
                    expected: digest.into(),
                    actual,
                });
            }
            Ok(bytes)
        })
    }

    /// Loads a module from bytes in hand (e.g. a `.wasm` file of the build's own
    /// workspace), keyed by their digest like any other module.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<LoadedModule, SandboxError> {
        let digest = crate::digest::sha256_hex(bytes);
        self.load_with(name, &digest, || Ok(bytes.to_vec()))
    }

    fn load_with(
        &self,
        name: &str,
        digest: &str,
        read_module: impl FnOnce() -> Result<Vec<u8>, SandboxError>,
    ) -> Result<LoadedModule, SandboxError> {
        let in_memory = || {
            self.loaded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(digest)
                .map(|loaded| LoadedModule {
                    origin: CodeOrigin::Memory,
                    ..loaded.clone()
                })
        };
        if let Some(loaded) = in_memory() {
            return Ok(loaded);
        }
        // One load at a time: the stages of a pipeline start together, and each would
        // otherwise read and map the same machine code.
        let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(loaded) = in_memory() {
            return Ok(loaded);
        }
        let (module, origin) = cached_module(
            &self.engine,
            self.code_cache.as_ref(),
            name,
            digest,
            read_module,
        )?;
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| SandboxError::Instantiate {
                name: name.into(),
                reason: format!("{e:#}"),
            })?;
        let loaded = LoadedModule {
            pre,
            sorted_pre: Arc::default(),
            origin,
        };
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.to_owned(), loaded.clone());
        Ok(loaded)
    }

    /// `module` linked for a deterministic guest: WASI under the deterministic wrappers
    /// under the descriptor table, made at the first such guest (most processes run none).
    fn sorted_pre(&self, module: &LoadedModule) -> Result<InstancePre<GuestState>, SandboxError> {
        get_or_try_init(&module.sorted_pre, || {
            self.sorted_linker()?
                .instantiate_pre(module.pre.module())
                .map_err(|e| SandboxError::Instantiate {
                    name: "deterministic guest".into(),
                    reason: format!("{e:#}"),
                })
        })
        .cloned()
    }

    fn sorted_linker(&self) -> Result<&Linker<GuestState>, SandboxError> {
        get_or_try_init(&self.sorted_linker, || {
            let mut sorted = self.base_linker.clone();
            determinism::shadow(&mut sorted).map_err(|e| SandboxError::Engine(e.to_string()))?;
            fds::shadow(&mut sorted, self.forwarder.clone())
                .map_err(|e| SandboxError::Engine(e.to_string()))?;
            Ok(sorted)
        })
    }

    /// Runs one guest to completion on the calling thread. It must not be a Tokio task
    /// (WASI's sync bindings block on their own runtime): use a plain thread or
    /// `spawn_blocking`.
    pub fn run(
        &self,
        module: &LoadedModule,
        command: GuestCommand,
    ) -> Result<GuestExit, SandboxError> {
        self.run_recording(module, command, false)
            .map(|(exit, _)| exit)
    }

    /// Runs a guest as `run` does and returns, with how it ended, the pages of its memory
    /// it wrote (`PageRuns::record`): for a snapshot, what every run of it may copy in
    /// before it starts.
    pub fn run_recording_writes(
        &self,
        module: &LoadedModule,
        command: GuestCommand,
    ) -> Result<(GuestExit, PageRuns), SandboxError> {
        self.run_recording(module, command, true)
            .map(|(exit, written)| (exit, written.unwrap_or_default()))
    }

    fn run_recording(
        &self,
        module: &LoadedModule,
        command: GuestCommand,
        record: bool,
    ) -> Result<(GuestExit, Option<PageRuns>), SandboxError> {
        let GuestCommand {
            name,
            argv,
            env,
            layout,
            cwd,
            stdin,
            stdout,
            stderr,
            terminal,
            deadline,
            cancel,
            kill,
            spawner,
            determinism,
            prefault,
            ends_process,
        } = command;
        // A deadline and a parent's kill are only seen at epoch checks: the epoch must move.
        if self.epoch_interruption && (deadline.is_some() || kill.is_some()) {
            self.ticker.call_once(|| start_epoch_ticker(&self.engine));
        }
        // This thread's WASI calls complete where they are made (see `wasi_runtime`).
        let _wasi_calls = wasi_runtime::enter();
        let stdout = OutputPipe::new(stdout, terminal[1]);
        let stderr = OutputPipe::new(stderr, terminal[2]);

        let stop = StopSignal {
            deadline,
            cancel: cancel.clone(),
            kill,
        };
        let stdin = InputPipe::new(stdin, terminal[0], stop.clone());
        let mut wasi = WasiCtxBuilder::new();
        wasi.args(&argv)
            .envs(&env)
            .stdin(stdin.clone())
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_blocking_current_thread(true)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let clocks = match &determinism {
            Some(determinism) => GuestClocks::Virtual(determinism.configure(&mut wasi)),
            None => {
                let start = Instant::now();
                wasi.monotonic_clock(HostMonotonic { start });
                GuestClocks::Host { start }
            }
        };
        // Read-only, empty stand-ins for the directories leading to each mount
        // (`/codebuild`, `/codebuild/output`, `/opt/runtimes`), so that a guest walking up
        // from its cwd (`realpath`, `readlink -f`, `pwd -P`) finds a consistent tree and sees
        // nothing of the host. (`/` itself is not preopened: wasi-libc would tie it with `.`.)
        // WASI numbers the preopens from 3 in this order; `/dev` comes after them.
        let mut preopens: Vec<String> = Vec::new();
        let parents = Skeletons::parents(&layout);
        if !parents.is_empty() {
            let root = self.skeletons.for_layout(&layout)?;
            for parent in parents {
                let host = root.join(parent.trim_start_matches('/'));
                wasi.preopened_dir(&host, &parent, FsPerms::ReadOnly)
                    .map_err(|e| SandboxError::Preopen {
                        guest: parent.clone(),
                        host: host.clone(),
                        reason: format!("{e:#}"),
                    })?;
                preopens.push(parent);
            }
        }
        for mount in &layout.mounts {
            let perms = if mount.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(&mount.host, &mount.guest, perms)
                .map_err(|e| SandboxError::Preopen {
                    guest: mount.guest.clone(),
                    host: mount.host.clone(),
                    reason: format!("{e:#}"),
                })?;
            preopens.push(mount.guest.clone());
        }
        // The working directory is opened through the mount's capability (cap-std refuses
        // `..` and links that leave the mount) and handed to WASI as that very open
        // directory, never reopened by its host path: a guest that swapped a directory of
        // the path for a link since the shell entered it cannot point `.` at the host.
        if let Some((mount, _)) = layout.resolve(&cwd) {
            let perms = if mount.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            match layout.open_dir(&cwd) {
                Ok(dir) => {
                    let host = opened_dir_path(&dir);
                    match wasi.preopened_dir(&host, ".", perms) {
                        Ok(_) => preopens.push(cwd.clone()),
                        Err(error) => no_cwd(&stderr, &cwd, &error.to_string()),
                    }
                    // `dir` is dropped only now: the preopen holds its own descriptor.
                    drop(dir);
                }
                // A working directory that vanished is not worth a word, as on Unix: the
                // program runs, relative paths fail.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    tracing::debug!(%error, cwd, "no `.` preopen");
                }
                Err(error) => no_cwd(&stderr, &cwd, &error.to_string()),
            }
        }

        let state = GuestState {
            wasi: wasi.build_p1(),
            limits: GuestLimits {
                memory_limit: self.memory_limit.try_into().unwrap_or(usize::MAX),
                memory_denied: false,
            },
            originals: None,
            stop: stop.clone(),
            clocks,
            poll_original: None,
            fds: fds::FdTable::new(preopens).with_processes(
                fds::Inherited {
                    stdio: (stdin, stdout.clone(), stderr.clone()),
                    layout,
                    cwd,
                },
                spawner.map(|spawner| process::ProcessContext {
                    spawner,
                    stop: stop.clone(),
                }),
            ),
        };
        let store = Store::new(&self.engine, state);
        let mut owned;
        let mut store: &mut Store<GuestState> = if ends_process {
            Box::leak(Box::new(store))
        } else {
            owned = store;
            &mut owned
        };
        store.limiter(|state| &mut state.limits);
        if self.epoch_interruption {
            // Due at once: the guest's first epoch check looks at its stop signal, so a
            // cancel raised before it starts (whose wake-up moved the epoch before this
            // deadline was set) is seen even where no ticker moves the epoch again.
            store.set_epoch_deadline(0);
            let epoch_stop = stop.clone();
            store.epoch_deadline_callback(move |_| match epoch_stop.check() {
                Some(kind) => Err(Interrupted(kind).into()),
                None => Ok(UpdateDeadline::Continue(1)),
            });
        }

        let sorted;
        let pre = if determinism.is_some() {
            sorted = self.sorted_pre(module)?;
            &sorted
        } else {
            &module.pre
        };
        let mut memory = None;
        let result = pre.instantiate(&mut store).and_then(|instance| {
            memory = instance.get_memory(&mut store, "memory");
            crate::startup::mark("instantiated");
            if let (Some(runs), Some(memory)) = (&prefault, memory) {
                // SAFETY: the guest's memory, whose store is not running.
                unsafe { runs.apply(memory.data_ptr(&store), memory.data_size(&store)) };
                crate::startup::mark("pages copied in");
            }
            if let Some(determinism) = &determinism {
                let memory =
                    memory.ok_or_else(|| wasmtime::Error::msg("the guest exports no memory"))?;
                let originals = determinism::Originals::instantiate(
                    &self.interposer.get().map_err(wasmtime::Error::msg)?,
                    &self.base_linker,
                    store,
                    memory,
                    determinism.source_date_epoch,
                )?;
                store.data_mut().originals = Some(originals);
            }
            instance
                .get_typed_func::<(), ()>(&mut store, "_start")?
                .call(&mut store, ())
        });
        crate::startup::mark("guest finished");
        let _ = stdout.flush();
        let _ = stderr.flush();
        let written = memory.filter(|_| record).map(|memory| {
            // SAFETY: the guest's memory, live as long as `store`, which is not running.
            unsafe { PageRuns::record(memory.data_ptr(&store), memory.data_size(&store)) }
        });

        let Err(error) = result else {
            return Ok((GuestExit::Exited(0), written));
        };
        if let Some(exit) = error.downcast_ref::<I32Exit>() {
            return Ok((GuestExit::Exited(exit.0), written));
        }
        let memory_denied = store.data().limits.memory_denied;
        // A host call stopped by the deadline or cancel may hand its reason back wrapped;
        // a guest that failed once it had to stop was stopped.
        let interrupted = error
            .downcast_ref::<Interrupted>()
            .map(|i| i.0)
            .or_else(|| {
                error
                    .chain()
                    .find_map(|e| e.downcast_ref::<Interrupted>().map(|i| i.0))
            })
            .or_else(|| stop.check());
        let (kind, reason) = if let Some(kind) = interrupted {
            let reason = match kind {
                TrapKind::Deadline => "stopped: deadline exceeded".to_owned(),
                _ => "stopped: cancelled".to_owned(),
            };
            (kind, reason)
        } else if memory_denied {
            let limit = self.memory_limit >> 20;
            (
                TrapKind::OutOfMemory,
                format!("out of memory (limit {limit} MiB)"),
            )
        } else if let Some(trap) = error.downcast_ref::<Trap>() {
            {
                let text = trap.to_string();
                let text = text.strip_prefix("wasm trap: ").unwrap_or(&text).to_owned();
                (TrapKind::Other, format!("trapped: {text}"))
            }
        } else if error.to_string().contains("_start") {
            return Err(SandboxError::Instantiate {
                name,
                reason: "it exports no `_start` function (not a WASI command)".into(),
            });
        } else {
            (TrapKind::Other, format!("failed: {error:#}"))
        };
        Ok((
            GuestExit::Trapped {
                kind,
                message: format!("{name}: {reason}"),
            },
            written,
        ))
    }
}

/// A host path naming the directory `dir` has open, not its path: `/proc/self/fd/N` is a
/// link to the open file itself, so opening it cannot be redirected by a rename or a
/// symbolic link made since. (wasmtime-wasi 48 preopens only by path.)
fn opened_dir_path(dir: &cap_std::fs::Dir) -> PathBuf {
    use std::os::fd::AsRawFd;
    let fd = dir.as_raw_fd();
    if cfg!(target_os = "linux") {
        PathBuf::from(format!("/proc/self/fd/{fd}"))
    } else {
        PathBuf::from(format!("/dev/fd/{fd}"))
    }
}

/// A working directory that cannot be entered safely: the guest runs without `.` (relative
/// paths fail) and its stderr says why, once.
fn no_cwd(stderr: &OutputPipe, cwd: &str, reason: &str) {
    tracing::debug!(cwd, reason, "no `.` preopen");
    let _ = stderr.write_all(
        format!(
            "wasmbuild: working directory {cwd} cannot be entered inside the sandbox \
             ({reason}); the program runs without one\n"
        )
        .as_bytes(),
    );
}

/// Advances the engine's epoch on a background thread for the life of the process.
fn start_epoch_ticker(engine: &Engine) {
    // The ticker holds only a weak reference: it ends when the engine is dropped.
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("wasmbuild-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .ok();
}

/// Where skeletons are made: a memory file system when the host has one (`/dev/shm`), else
/// the temporary directory. A skeleton is a dozen empty directories made and removed by
/// every process; on a disk file system mounted with `discard` (as cloud disks often are)
/// each removal waits for the device: 1.5–3 ms of a `python -c pass`.
fn skeleton_parent() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let usable = std::fs::metadata(shm).is_ok_and(|m| m.is_dir() && !m.permissions().readonly());
    if usable {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// Host directories standing in for the guest's `/`: empty directories for every mount
/// point and its parents, one skeleton per distinct set of mount points. Kept in a
/// directory for every process (made once, named by the mount points; making and removing
/// them was 0.1–0.15 ms of every `wasmbuild exec`, measured paired), or else made once per
/// process and removed with it.
/// Mount points → the skeleton made for them.
type SkeletonRoots = HashMap<Vec<String>, PathBuf>;

#[derive(Default)]
struct Skeletons {
    /// Where skeletons are kept across processes; `None`: made per process.
    kept: Option<PathBuf>,
    made: Mutex<Option<(tempfile::TempDir, SkeletonRoots)>>,
}

impl Skeletons {
    /// The proper ancestors of the mount points (not `/`) that are not mounts themselves.
    fn parents(layout: &Layout) -> Vec<String> {
        let mut parents: Vec<String> = Vec::new();
        for mount in &layout.mounts {
            let mut path = mount.guest.as_str();
            while let Some(cut) = path.rfind('/').filter(|&cut| cut > 0) {
                path = &path[..cut];
                if !layout.mounts.iter().any(|m| m.guest == path) {
                    parents.push(path.to_owned());
                }
            }
        }
        parents.sort();
        parents.dedup();
        parents
    }

    /// The skeleton of `points` kept under `dir`: `<dir>/<digest of the points>`, made the
    /// first time beside it and renamed into place whole, so a process never sees half of
    /// one (another process that made the same one first wins; both are alike).
    fn kept(dir: &Path, points: &[String]) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let name = crate::digest::sha256_hex(points.join("\n").as_bytes());
        let root = dir.join(&name[..16]);
        if root.is_dir() {
            return Ok(root);
        }
        std::fs::create_dir_all(dir)?;
        let making = tempfile::Builder::new()
            .prefix(".making-")
            .tempdir_in(dir)?;
        Self::make(making.path(), points)?;
        // Readable by all, as the directories inside are (a temporary directory is not).
        std::fs::set_permissions(making.path(), std::fs::Permissions::from_mode(0o755))?;
        match std::fs::rename(making.path(), &root) {
            Ok(()) => {
                // Renamed away: nothing of `making` is left to remove.
                let _ = making.keep();
                Ok(root)
            }
            Err(_) if root.is_dir() => Ok(root),
            Err(e) => Err(e),
        }
    }

    /// Makes `root` and, inside it, a directory for each of `points` and its parents.
    fn make(root: &Path, points: &[String]) -> std::io::Result<()> {
        std::fs::create_dir_all(root)?;
        for point in points {
            let rel = point.trim_start_matches('/');
            if !rel.is_empty() && !rel.split('/').any(|c| c == "..") {
                std::fs::create_dir_all(root.join(rel))?;
            }
        }
        Ok(())
    }

    /// Removes the skeletons made so far (later guests make theirs again).
    fn remove(&self) {
        let made = self.made.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(made);
    }

    fn for_layout(&self, layout: &Layout) -> Result<PathBuf, SandboxError> {
        let mut points: Vec<String> = layout.mounts.iter().map(|m| m.guest.clone()).collect();
        points.sort();
        points.dedup();
        let error = |host: &Path, e: std::io::Error| SandboxError::Preopen {
            guest: "/".into(),
            host: host.to_owned(),
            reason: e.to_string(),
        };
        if let Some(kept) = &self.kept {
            return Self::kept(kept, &points).map_err(|e| error(kept, e));
        }
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        if made.is_none() {
            let parent = skeleton_parent();
            let dir = tempfile::Builder::new()
                .prefix("wasmbuild-root-")
                .tempdir_in(&parent)
                .map_err(|e| error(&parent, e))?;
            *made = Some((dir, HashMap::new()));
        }
        let (dir, known) = made.as_mut().expect("made above");
        if let Some(root) = known.get(&points) {
            return Ok(root.clone());
        }
        let root = dir.path().join(known.len().to_string());
        Self::make(&root, &points).map_err(|e| error(&root, e))?;
        known.insert(points, root.clone());
        Ok(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The stand-ins for the mount points' parents are made once per process, on a memory
    // file system when there is one, and removed with the sandbox.
    #[test]
    fn a_skeleton_has_every_mount_point_and_goes_with_its_sandbox() {
        let host = tempfile::tempdir().unwrap();
        let layout = Layout::build(
            host.path().join("src"),
            host.path().join("tmp"),
            host.path().join("root"),
        );
        let skeletons = Skeletons::default();
        let root = skeletons.for_layout(&layout).unwrap();
        assert!(root.starts_with(skeleton_parent()), "{}", root.display());
        for mount in &layout.mounts {
            assert!(root.join(mount.guest.trim_start_matches('/')).is_dir());
        }
        assert_eq!(skeletons.for_layout(&layout).unwrap(), root, "made once");
        drop(skeletons);
        assert!(!root.exists());
    }

    // A sandbox of one program moves its epoch only for a deadline, a parent or a signal:
    // a guest whose cancel flag is raised before it starts (Ctrl-C during the start-up)
    // stops at its first epoch check rather than computing for ever.
    #[test]
    fn a_guest_cancelled_before_it_starts_stops_without_a_ticker() {
        let sandbox = Sandbox::new(SandboxConfig {
            one_program: true,
            ..SandboxConfig::default()
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bytes = wat::parse_str(
            r#"(module (memory (export "memory") 1)
                 (func (export "_start") (loop $spin (br $spin))))"#,
        )
        .unwrap();
        let path = dir.path().join("spin.wasm");
        std::fs::write(&path, &bytes).unwrap();
        let module = sandbox
            .load("spin", &path, &crate::digest::sha256_hex(&bytes))
            .unwrap();
        let mut command = GuestCommand::bare(vec!["spin".into()]);
        command.cancel = Some(Arc::new(AtomicBool::new(true)));
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(sandbox.run(&module, command).map(|exit| exit.status()));
        });
        let status = result
            .recv_timeout(Duration::from_secs(30))
            .expect("the cancelled guest went on computing")
            .unwrap();
        assert_eq!(status, STATUS_CANCELLED);
    }

    // Kept skeletons outlive their sandbox and serve the next one; another set of mount
    // points gets its own; nothing half-made is left beside them.
    #[test]
    fn a_kept_skeleton_is_made_once_for_every_process() {
        let host = tempfile::tempdir().unwrap();
        let kept = host.path().join("skeletons");
        let layout = Layout::build(
            host.path().join("src"),
            host.path().join("tmp"),
            host.path().join("root"),
        );
        let keeping = || Skeletons {
            kept: Some(kept.clone()),
            ..Skeletons::default()
        };
        let first = keeping();
        let root = first.for_layout(&layout).unwrap();
        assert!(root.starts_with(&kept), "{}", root.display());
        for mount in &layout.mounts {
            assert!(root.join(mount.guest.trim_start_matches('/')).is_dir());
        }
        first.remove();
        drop(first);
        assert!(root.is_dir(), "kept past its sandbox");
        assert_eq!(keeping().for_layout(&layout).unwrap(), root);
        let mut other = layout.clone();
        other.mounts.retain(|m| m.guest != "/tmp");
        let other_root = keeping().for_layout(&other).unwrap();
        assert_ne!(other_root, root);
        assert!(!other_root.join("tmp").exists());
        let mut names: Vec<_> = std::fs::read_dir(&kept)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }
}

//! What the subcommands share: bounds and parsers of option values, the guest of `exec`
//! and `sh` (the image opened, the source directory checked, scratch `/tmp` and `/root`
//! made, the layout mounted, the base environment), bundles built on first use, the build
//! log and Ctrl-C, sizes and JSON for printing.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Context, Failure};
use crate::image::{DEFAULT_IMAGE, Image, ImageRunner, ImageSpec};
use crate::lifecycle::{BuildControl, BuildLog};
use crate::python::pip::PythonPackages;
use crate::runtime::Recipe;
use crate::sandbox::layout::{HOME_DIR, SRC_DIR};
use crate::sandbox::{Determinism, Layout};

/// A ready guest: the runner and the scratch directories it mounts (removed on drop).
pub struct Guest {
    pub runner: Arc<ImageRunner>,
    pub image: Arc<Image>,
    /// `PATH`, `HOME`, `CODEBUILD_SRC_DIR`; callers add `PWD` and their own variables.
    pub env: Vec<(String, String)>,
    _scratch: (tempfile::TempDir, tempfile::TempDir),
}

impl Guest {
    /// Opens `image` over the host directory `src` (seen as /codebuild/output/src) and
    /// checks that `cwd`, an absolute guest path, is a directory the guest can see.
    /// `one_program`: the process runs one program (`exec`), not a shell's commands.
    pub fn prepare(
        ctx: &Context,
        one_program: bool,
        image: &str,
        src: &Path,
        cwd: &str,
        configure: impl FnOnce(&mut ImageRunner),
    ) -> Result<Guest, Failure> {
        let src = src
            .canonicalize()
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| Failure::usage(format!("--src {}: not a directory", src.display())))?;
        ensure_built(ctx, image)?;
        crate::startup::mark("bundles checked");
        let runtimes = ctx.runtimes();
        let image = Image::open(runtimes, image, ctx.recipes()?)?;
        crate::startup::mark("image opened");
        // The guest's /tmp and home, each a directory of its own (one made and removed
        // fewer per command than both in one: a removal can wait for the disk).
        let scratch = |kind: &str| {
            tempfile::Builder::new()
                .prefix(&format!("wasmbuild-{kind}-"))
                .tempdir()
                .map_err(Failure::io("cannot create scratch directories"))
        };
        let scratch = (scratch("tmp")?, scratch("home")?);
        let layout = Layout::build(src, scratch.0.path().into(), scratch.1.path().into());
        // Opened through the mount's capability, as the sandbox will: a link in the source
        // that leads out of the mount is not a directory the guest can see.
        if let Err(error) = layout.open_dir(cwd) {
            return Err(Failure::usage(format!(
                "{cwd} is not a directory the guest can see ({error})"
            )));
        }
        let image = Arc::new(image);
        crate::startup::mark("scratch directories made");
        let mut runner = ImageRunner::new(ctx.sandbox_for(one_program)?, image.clone(), layout);
        crate::startup::mark("engine ready");
        // `pip` works here as in a build (the guest's home is a scratch one).
        runner.packages = Some(Arc::new(PythonPackages::new(ctx.store.clone(), false)));
        configure(&mut runner);
        let env = vec![
            ("PATH".to_owned(), image.guest_path_var()),
            ("HOME".to_owned(), HOME_DIR.to_owned()),
            ("CODEBUILD_SRC_DIR".to_owned(), SRC_DIR.to_owned()),
        ];
        Ok(Guest {
            runner: Arc::new(runner),
            image,
            env,
            _scratch: scratch,
        })
    }

    /// For a process about to exit: removes the directories made for the guest (its
    /// scratch `/tmp` and home, the sandbox's skeletons) and leaves everything else for the
    /// exit to free.
    pub fn finish(self) {
        let Guest {
            runner, _scratch, ..
        } = self;
        drop(_scratch);
        runner.sandbox.remove_skeletons();
        std::mem::forget(runner);
    }
}

/// Builds the image's bundles (the named one and `base`) that have a recipe but are not in
/// the store yet, or were built from an older recipe (an upgrade of wasmbuild that changed
/// a bundle's shims), so a fresh machine runs its first command without a separate step.
pub fn ensure_built(ctx: &Context, spec: &str) -> Result<(), Failure> {
    let ImageSpec { name, version } = ImageSpec::parse(spec)?;
    let runtimes = ctx.runtimes();
    for (name, version) in [(name, version), (DEFAULT_IMAGE, None)] {
        // The default bundle of a recipe wasmbuild carries, found current before.
        if version.is_none()
            && let Some(built) = runtimes.find(name, None)?
            && runtimes.known_current(&ctx.recipes()?.join(name), &built)
        {
            continue;
        }
        let Some(recipe) = Recipe::find(ctx.recipes()?, name, version)? else {
            continue;
        };
        // A version request finds the recipe's exact version; none, the default bundle.
        let built = runtimes.find(name, version.map(|_| recipe.version.as_str()))?;
        let bundle = match version {
            Some(_) => format!("{name} {}", recipe.version),
            None => name.to_owned(),
        };
        let current = |built: &Option<String>| match built {
            Some(digest) => runtimes.is_current(digest, &recipe),
            None => Ok(false),
        };
        // Built from this recipe as it is now: nothing to do.
        if current(&built)? {
            continue;
        }
        // One build at a time on this machine: a second command started meanwhile (the
        // first after an upgrade, in parallel) waits, then finds the bundle built.
        let _building = ctx
            .store
            .local()
            .lock(&format!("bundle-build-{}", bundle.replace(' ', "@")))
            .map_err(Failure::from)?;
        let built = runtimes.find(name, version.map(|_| recipe.version.as_str()))?;
        if current(&built)? {
            continue;
        }
        match built {
            None => eprintln!("wasmbuild: bundle {bundle} is not in the store yet; building it"),
            Some(_) => eprintln!(
                "wasmbuild: bundle {bundle} in the store was built from an older recipe; building it again"
            ),
        }
        super::runtime::build_recipe(ctx, &recipe)?;
    }
    Ok(())
}

/// `--deterministic` and `--source-date-epoch`, shared by `run`, `verify`, `sh` and `exec`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeterminismArgs {
    /// Reproducible run: virtual clocks from SOURCE_DATE_EPOCH, seeded randomness, sorted
    /// directory listings; SOURCE_DATE_EPOCH, TZ=UTC and LANG=C.UTF-8 set.
    #[arg(long, env = "WASMBUILD_DETERMINISTIC")]
    pub deterministic: bool,
    /// SOURCE_DATE_EPOCH for --deterministic (default: the checked-out commit's time, else
    /// 0); at most 7258118399 (2199-12-31T23:59:59Z).
    #[arg(long, value_name = "SECONDS", value_parser = parse_source_date_epoch)]
    pub source_date_epoch: Option<u64>,
}

impl DeterminismArgs {
    /// The `SOURCE_DATE_EPOCH` of a deterministic run of `src`, or `None`. A commit time
    /// out of range (a crafted repository) is bad input, as the option would be.
    pub fn epoch(&self, src: &Path) -> Result<Option<u64>, Failure> {
        if !self.deterministic {
            return Ok(None);
        }
        let epoch = match self.source_date_epoch {
            Some(epoch) => epoch,
            None => crate::lifecycle::git::head_commit_time(src).unwrap_or(0),
        };
        check_source_date_epoch(epoch)
            .map(Some)
            .map_err(|e| Failure::usage(format!("--deterministic: {e}")))
    }

    /// The sandbox settings for a deterministic run whose inputs are `inputs`.
    pub fn determinism(&self, src: &Path, inputs: &[&str]) -> Result<Option<Determinism>, Failure> {
        use sha2::{Digest, Sha256};
        let Some(epoch) = self.epoch(src)? else {
            return Ok(None);
        };
        let mut hasher = Sha256::new();
        hasher.update(epoch.to_le_bytes());
        for input in inputs {
            hasher.update(input.as_bytes());
            hasher.update([0]);
        }
        Ok(Some(Determinism {
            source_date_epoch: epoch,
            seed: hasher.finalize().into(),
        }))
    }
}

/// The variables a deterministic run adds to the guest's environment.
pub fn deterministic_env(epoch: u64) -> [(String, String); 3] {
    [
        ("SOURCE_DATE_EPOCH".to_owned(), epoch.to_string()),
        ("TZ".to_owned(), "UTC".to_owned()),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
    ]
}

/// A cancel flag raised by Ctrl-C: the running guest (and, for `sh`, the shell) stops with
/// status 130 and the scratch directories are removed as wasmbuild returns; a second
/// Ctrl-C ends wasmbuild at once. The handler runs in the signal itself, with no thread
/// of its own (a thread made and reaped by every `exec` was 0.3 ms of its start, paired):
/// it raises the flag and wakes the guests to see it.
pub fn cancel_on_ctrl_c() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    // SAFETY: the action swaps an atomic flag, adds to an atomic counter
    // (`sandbox::wake_guests`) or calls `_exit`: all async-signal-safe; it allocates,
    // locks and unwinds nothing.
    let _ = unsafe {
        signal_hook_registry::register(libc::SIGINT, move || {
            if flag.swap(true, Ordering::SeqCst) {
                libc::_exit(130);
            }
            crate::sandbox::wake_guests();
        })
    };
    cancel
}

/// Largest `--memory-limit`, in MiB (1 TiB).
pub const MAX_MEMORY_LIMIT_MIB: u64 = 1 << 20;

/// Longest build timeout, in minutes: CodeBuild's own maximum (36 hours).
pub const MAX_TIMEOUT_MINUTES: f64 = 2160.0;

/// Latest `SOURCE_DATE_EPOCH` (2199-12-31T23:59:59Z): the guest's clocks count
/// nanoseconds since 1970 in 64 bits, which end in 2262; this leaves the build decades.
pub const MAX_SOURCE_DATE_EPOCH: u64 = 7_258_118_399;

/// `--timeout MINUTES`: a finite number above 0, at most [`MAX_TIMEOUT_MINUTES`].
pub fn parse_timeout_minutes(text: &str) -> Result<f64, String> {
    parse_bounded(text, MAX_TIMEOUT_MINUTES, "minutes")
}

/// A timeout in seconds (`exec --timeout`): above 0, at most [`MAX_TIMEOUT_MINUTES`] × 60.
pub fn parse_timeout_seconds(text: &str) -> Result<f64, String> {
    parse_bounded(text, MAX_TIMEOUT_MINUTES * 60.0, "seconds")
}

fn parse_bounded(text: &str, max: f64, unit: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of {unit}"))?;
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(value)
    } else {
        Err(format!(
            "{text} is out of range: expected a number of {unit} above 0 and at most {max}"
        ))
    }
}

/// `--source-date-epoch SECONDS`: 0 to [`MAX_SOURCE_DATE_EPOCH`].
pub fn parse_source_date_epoch(text: &str) -> Result<u64, String> {
    let value: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number of seconds since 1970"))?;
    check_source_date_epoch(value)
}

/// Refuses a `SOURCE_DATE_EPOCH` past [`MAX_SOURCE_DATE_EPOCH`].
pub fn check_source_date_epoch(value: u64) -> Result<u64, String> {
    if value <= MAX_SOURCE_DATE_EPOCH {
        Ok(value)
    } else {
        Err(format!(
            "SOURCE_DATE_EPOCH {value} is out of range: at most {MAX_SOURCE_DATE_EPOCH} \
             (2199-12-31T23:59:59Z)"
        ))
    }
}

/// Lexically normalises an absolute guest path (`.` and `..`; never above `/`).
pub fn normalize_guest_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Parses `KEY=VALUE` pairs from the command line.
pub fn parse_env_pairs(pairs: &[String]) -> Result<Vec<(String, String)>, Failure> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(Failure::usage(format!("-e {pair}: expected KEY=VALUE"))),
        })
        .collect()
}

/// A log streaming to `console` and to `build.log` in `out_dir`, at most `limit` bytes.
pub fn open_log(
    console: Box<dyn Write + Send>,
    out_dir: &Path,
    limit: u64,
) -> Result<BuildLog, Failure> {
    let log = BuildLog::new(console);
    log.set_limit(limit);
    let log_file =
        std::fs::File::create(out_dir.join("build.log")).map_err(Failure::io(out_dir.display()))?;
    log.tee_to(log_file);
    Ok(log)
}

/// Ctrl-C stops the build (the running guest is interrupted, the record written); a
/// second Ctrl-C ends wasmbuild at once.
pub fn stop_on_ctrl_c(control: &BuildControl) {
    let control = control.clone();
    let stopping = std::sync::atomic::AtomicBool::new(false);
    let _ = ctrlc::set_handler(move || {
        if stopping.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        control.stop();
    });
}

/// `10.92 MiB`: sizes as the tables print them.
pub fn human_size(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// `--json`: the value, pretty-printed, on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(())
}

//! What `exec` and `sh` share: the image opened, the source directory checked, scratch
//! `/tmp` and `/root` made, the guest layout mounted and the base environment of a program.

use std::path::Path;
use std::sync::Arc;

use crate::python::pip::PythonPackages;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Context, Failure};
use crate::image::{DEFAULT_IMAGE, Image, ImageRunner};
use crate::runtime::Recipe;
use crate::sandbox::layout::{HOME_DIR, SRC_DIR};
use crate::sandbox::{Determinism, Layout};

/// A ready guest: the runner and the scratch directories it mounts (removed on drop).
pub struct Guest {
    pub runner: Arc<ImageRunner>,
    pub image: Arc<Image>,
    /// `PATH`, `HOME`, `CODEBUILD_SRC_DIR`; callers add `PWD` and their own variables.
    pub env: Vec<(String, String)>,
    _scratch: tempfile::TempDir,
}

impl Guest {
    /// Opens `image` over the host directory `src` (seen as /codebuild/output/src) and
    /// checks that `cwd`, an absolute guest path, is a directory the guest can see.
    pub fn prepare(
        ctx: &Context,
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
        let runtimes = ctx.runtimes();
        let image = Image::open(&runtimes, image, ctx.recipes()?)?;
        let scratch = tempfile::Builder::new()
            .prefix("wasmbuild-guest-")
            .tempdir()
            .map_err(Failure::io("cannot create scratch directories"))?;
        let (tmp, home) = (scratch.path().join("tmp"), scratch.path().join("root"));
        for dir in [&tmp, &home] {
            std::fs::create_dir(dir).map_err(Failure::io(dir.display()))?;
        }
        let layout = Layout::build(src, tmp, home);
        // Opened through the mount's capability, as the sandbox will: a link in the source
        // that leads out of the mount is not a directory the guest can see.
        if let Err(error) = layout.open_dir(cwd) {
            return Err(Failure::usage(format!(
                "{cwd} is not a directory the guest can see ({error})"
            )));
        }
        let image = Arc::new(image);
        let mut runner = ImageRunner::new(ctx.sandbox()?, image.clone(), layout);
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
}

/// Builds the image's bundles (the named one and `base`) that have a recipe but are not in
/// the store yet, or were built from an older recipe (an upgrade of wasmbuild that changed
/// a bundle's shims), so a fresh machine runs its first command without a separate step.
pub fn ensure_built(ctx: &Context, spec: &str) -> Result<(), Failure> {
    let crate::image::ImageSpec { name, version } = super::image_spec(spec)?;
    let runtimes = ctx.runtimes();
    let available = Recipe::available(ctx.recipes()?);
    for (name, version) in [(name, version), (DEFAULT_IMAGE, None)] {
        if !available.iter().any(|a| a == name) {
            continue;
        }
        let recipe = Recipe::load(ctx.recipes()?, name)?;
        if version.is_some_and(|v| v != recipe.version) {
            continue;
        }
        match runtimes.find(name, version)? {
            None => eprintln!("wasmbuild: bundle {name} is not in the store yet; building it"),
            // Built from this recipe as it is now: nothing to do.
            Some(digest) if runtimes.is_current(&digest, &recipe)? => continue,
            Some(_) => eprintln!(
                "wasmbuild: bundle {name} in the store was built from an older recipe; building it again"
            ),
        }
        super::runtime::build(ctx, name)?;
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
    #[arg(long, value_name = "SECONDS", value_parser = super::parse_source_date_epoch)]
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
        super::check_source_date_epoch(epoch)
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
/// Ctrl-C ends wasmbuild at once.
pub fn cancel_on_ctrl_c() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    cancel
}

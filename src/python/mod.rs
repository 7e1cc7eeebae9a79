//! Python packages for builds. The guest has no network: when a build runs `pip install`
//! (also `pip3`, `python -m pip`, `pip download`, `pip wheel`, `python -m build`), the host
//! resolves the request against the package index, downloads each distribution, checks it
//! against the sha256 the index publishes and keeps it in the store under that digest; the
//! wheels are then installed into the guest's site-packages from the store, with no
//! network. A lock (`wasmbuild.lock`) pins the resolved set so a rerun asks no index.
//!
//! Parts: `index` (where the index is, the simple API client, TLS and proxy settings,
//! downloads into the store), `resolve` (pubgrub over PEP 440 versions and PEP 508 markers
//! for the guest's interpreter), `lock` (the lock file and `--hash=` requirements),
//! `wheel` (installing a wheel into a guest directory through a capability), `frontend`
//! (PEP 517 builds of source distributions, run in the sandbox), `pip` (the command
//! surface the shell reaches).

pub mod bytecode;
mod error;
pub mod frontend;
pub mod index;
pub mod install;
pub mod lock;
pub mod pip;
pub mod venv;
pub mod wheel;

use serde::{Deserialize, Serialize};

pub use error::PackageError;

pub mod resolve;
pub mod snapshot;

/// The guest's CPython as packages see it: its version picks the markers dependencies are
/// evaluated with, the wheel tags it accepts, the `Requires-Python` it meets and where
/// packages go (`lib/python3.X/site-packages`). Read from the image's python bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interpreter {
    pub major: u32,
    pub minor: u32,
    pub micro: u32,
}

impl Interpreter {
    /// The python of a bundle whose version is `version` (`3.13.5`, `3.12`): CPython 3.8
    /// or newer, else `None`.
    pub fn from_version(version: &str) -> Option<Interpreter> {
        let mut parts = version.split('.');
        let mut next = || parts.next().map(str::parse::<u32>);
        let major = next()?.ok()?;
        let minor = next()?.ok()?;
        let micro = next().unwrap_or(Ok(0)).ok()?;
        (major == 3 && minor >= 8).then_some(Interpreter {
            major,
            minor,
            micro,
        })
    }

    /// `python3.13`: the name of its library directories and of its versioned command.
    pub fn name(&self) -> String {
        format!("python{}.{}", self.major, self.minor)
    }

    /// Where its packages go below a prefix: `lib/python3.13/site-packages`.
    pub fn site_packages(&self) -> String {
        format!("lib/{}/site-packages", self.name())
    }

    /// `3.13.5`.
    pub fn full_version(&self) -> String {
        format!("{}.{}.{}", self.major, self.minor, self.micro)
    }
}

impl Default for Interpreter {
    /// The default python bundle's: CPython 3.13.5 (`runtimes/python`).
    fn default() -> Interpreter {
        Interpreter {
            major: 3,
            minor: 13,
            micro: 5,
        }
    }
}

/// One distribution file a build uses, pinned by its content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// The project name, normalized as PEP 503 says (`Foo_Bar` → `foo-bar`).
    pub name: String,
    pub version: String,
    /// The file name as the index lists it (`pytest-8.3.4-py3-none-any.whl`).
    pub file: String,
    /// Where the file was downloaded from (informative: the store is asked first, by hash).
    pub url: String,
    /// Hex sha256 of the file: also its key in the store.
    pub sha256: String,
}

/// One file of a project as the index lists it (PEP 691 / PEP 503).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistFile {
    /// The file name (`attrs-24.2.0-py3-none-any.whl`, `toolz-1.0.0.tar.gz`).
    pub file: String,
    /// Absolute URL of the file.
    pub url: String,
    /// Hex sha256 the index publishes for it.
    pub sha256: String,
    /// `Requires-Python` as the index gives it (`>=3.8`), if any.
    pub requires_python: Option<String>,
    /// Yanked files are only used when a requirement pins their version exactly (PEP 592).
    pub yanked: bool,
    /// The index serves the file's core metadata on its own (PEP 658 / PEP 714).
    pub has_metadata: bool,
}

impl From<&Pin> for DistFile {
    /// The file a pin names, as the index would list it; its core metadata is read from the
    /// file itself (`has_metadata: false`), which the store holds by its sha256.
    fn from(pin: &Pin) -> DistFile {
        DistFile {
            file: pin.file.clone(),
            url: pin.url.clone(),
            sha256: pin.sha256.clone(),
            requires_python: None,
            yanked: false,
            has_metadata: false,
        }
    }
}

/// What the resolver needs of a package index; `index::Client` is the real one.
pub trait Index: Send + Sync {
    /// Every file of project `name` (any spelling; normalized by the index client).
    /// An unknown project is `PackageError::UnknownProject`.
    fn project(&self, name: &str) -> Result<Vec<DistFile>, PackageError>;
    /// The core metadata (`METADATA` text) of a wheel: from the index's metadata file when
    /// it serves one, else from the wheel itself (downloaded into the store, hash-checked).
    fn wheel_metadata(&self, file: &DistFile) -> Result<String, PackageError>;
}

/// Core metadata of a source distribution: only a PEP 517 build (in the sandbox) can say.
/// Implemented by `frontend`; the resolver calls it for projects that have no usable wheel.
pub trait SdistMetadata: Send + Sync {
    fn sdist_metadata(&self, file: &DistFile) -> Result<String, PackageError>;
}

/// Normalizes a project name as PEP 503 says: lower case, and every run of `-`, `_` and
/// `.` one `-` (`Foo._Bar` → `foo-bar`).
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

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

use serde::{Deserialize, Serialize};

/// The guest's interpreter, for markers and wheel tags: CPython 3.12 on WASI.
pub const GUEST_PYTHON: (u32, u32) = (3, 12);

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

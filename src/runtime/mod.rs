//! Runtime bundles, the images of wasmbuild: making them from recipes, keeping them in the
//! store by digest (manifest and files are blobs; `bundles/<name>` names the newest build),
//! and installing them as read-only directories. A file whose digest does not match is
//! refused; nothing of such a bundle runs.

pub mod bundle;
pub mod bytecode;
mod error;
pub mod fetch;
pub mod installed;
pub mod recipe;
pub mod script;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

pub use bundle::{BundleFile, BundleManifest, CommandSpec};
pub use error::RuntimeError;
pub use recipe::{Recipe, RecipeError};

use crate::sandbox::{GuestCommand, GuestExit, Layout, PageRuns, Sandbox, SharedBuffer};
use crate::store::Store;

/// Reference namespace of the newest bundle of each name.
const BUNDLE_REFS: &str = "bundles";

/// A bundle present in the store and installed on this machine.
#[derive(Debug, Clone)]
pub struct InstalledBundle {
    pub manifest: BundleManifest,
    /// Digest of the manifest blob: the bundle's identity.
    pub digest: String,
    /// Host directory holding the bundle's verified files.
    pub dir: PathBuf,
}

impl InstalledBundle {
    /// Host path and digest of the module behind `command`.
    pub fn module(&self, command: &str) -> Option<(PathBuf, &str)> {
        let spec = self.manifest.commands.get(command)?;
        let file = self.manifest.file(&spec.module)?;
        Some((self.dir.join(&spec.module), &file.sha256))
    }

    /// Host path, digest and description of the snapshot of `command`'s module, when it has
    /// one made from that very module; a snapshot of any other module is never offered.
    pub fn snapshot(&self, command: &str) -> Option<(PathBuf, &str, &bundle::SnapshotSpec)> {
        let spec = self.manifest.commands.get(command)?;
        let snapshot = spec.snapshot.as_ref()?;
        let module = self.manifest.file(&spec.module)?;
        if snapshot.from != module.sha256 {
            tracing::warn!(
                command,
                "the snapshot was made from another module than the command's; not using it"
            );
            return None;
        }
        let file = self.manifest.file(&snapshot.module)?;
        Some((self.dir.join(&snapshot.module), &file.sha256, snapshot))
    }
}

/// A summary line of `wasmbuild runtime list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BundleSummary {
    pub name: String,
    pub version: String,
    pub digest: String,
    pub commands: Vec<String>,
    pub size: u64,
}

/// What copying a bundle between stores did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BundleCopy {
    pub name: String,
    pub version: String,
    /// Digest of the manifest: the bundle's identity.
    pub digest: String,
    /// Blobs copied (the manifest included), and their size.
    pub copied_blobs: u64,
    pub copied_bytes: u64,
    /// Blobs the destination had already.
    pub present_blobs: u64,
}

/// Bundles in one store.
pub struct Runtimes {
    store: Store,
    /// Manifests read, by digest: a command start reads its image's twice (is it current,
    /// then install), and a manifest blob never changes.
    manifests: std::sync::Mutex<std::collections::HashMap<String, BundleManifest>>,
}

impl Runtimes {
    pub fn new(store: Store) -> Self {
        Runtimes {
            store,
            manifests: Default::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Names of the bundles in the store, sorted.
    pub fn names(&self) -> Result<Vec<String>, RuntimeError> {
        Ok(self.store.list_refs(BUNDLE_REFS)?)
    }

    /// One line per bundle version in the store, by name, oldest version first.
    pub fn list(&self) -> Result<Vec<BundleSummary>, RuntimeError> {
        let mut out = Vec::new();
        for name in self.store.list_ref_dirs("bundle-versions")? {
            for version in self.versions(&name)? {
                let Some(digest) = self.find(&name, Some(&version))? else {
                    continue;
                };
                let manifest = self.manifest(&digest)?;
                out.push(BundleSummary {
                    name: manifest.name.clone(),
                    version: manifest.version.clone(),
                    commands: manifest.commands.keys().cloned().collect(),
                    size: manifest.size(),
                    digest,
                });
            }
        }
        Ok(out)
    }

    /// Reads and checks the manifest blob `digest`.
    pub fn manifest(&self, digest: &str) -> Result<BundleManifest, RuntimeError> {
        if let Some(manifest) = self.manifests.lock().expect("manifests lock").get(digest) {
            return Ok(manifest.clone());
        }
        let manifest = self.read_manifest(digest)?;
        self.manifests
            .lock()
            .expect("manifests lock")
            .insert(digest.to_owned(), manifest.clone());
        Ok(manifest)
    }

    fn read_manifest(&self, digest: &str) -> Result<BundleManifest, RuntimeError> {
        // A manifest read before, kept as JSON: every command start reads its image's, and
        // TOML took 0.1–0.15 ms for each, JSON a fifth of that. The blob is the truth: a
        // memo that does not parse or check is read again from it.
        let memo = self
            .store
            .local_dir("parsed-manifests")
            .join(format!("{digest}.json"));
        if let Ok(bytes) = fs::read(&memo)
            && let Ok(manifest) = serde_json::from_slice::<BundleManifest>(&bytes)
            && manifest.validate().is_ok()
        {
            return Ok(manifest);
        }
        let bytes = self.store.get_blob(digest)?;
        let text = String::from_utf8(bytes).map_err(|_| RuntimeError::Invalid {
            name: digest.into(),
            message: "manifest is not UTF-8".into(),
        })?;
        let manifest = BundleManifest::from_toml(&text).map_err(|e| RuntimeError::Invalid {
            name: digest.into(),
            message: e.to_string(),
        })?;
        manifest
            .validate()
            .map_err(|message| RuntimeError::Invalid {
                name: manifest.name.clone(),
                message,
            })?;
        if let Ok(json) = serde_json::to_vec(&manifest) {
            // Only an optimisation: a store that cannot keep it parses the TOML again.
            let _ = crate::store::write_atomic_beside(&memo, &json, false);
        }
        Ok(manifest)
    }

    /// The digest of bundle `name`, optionally of a given `version`; `None` when the store
    /// has no such bundle.
    pub fn find(&self, name: &str, version: Option<&str>) -> Result<Option<String>, RuntimeError> {
        let reference = match version {
            Some(version) => format!("bundle-versions/{name}/{version}"),
            None => format!("{BUNDLE_REFS}/{name}"),
        };
        Ok(self.store.get_ref(&reference)?)
    }

    /// Whether the bundle `digest` is what `recipe` makes today: the same version,
    /// environment and extra files (by content), and the pinned module. A bundle built by an
    /// older wasmbuild (whose shims have changed since) is not.
    pub fn is_current(&self, digest: &str, recipe: &Recipe) -> Result<bool, RuntimeError> {
        if self.known_current(&recipe.dir, digest) {
            return Ok(true);
        }
        let current = self.compare_with_recipe(digest, recipe)?;
        if current && let Some(memo) = self.currency_memo(&recipe.dir) {
            // Only an optimisation: a store that cannot keep it compares again.
            let _ = crate::store::write_atomic_beside(&memo, digest.as_bytes(), false);
        }
        Ok(current)
    }

    /// Whether bundle `digest` was found current for the recipe in `recipe_dir` before.
    /// Only for the recipes wasmbuild carries: unpacked once into a directory named by
    /// their digest, they never change, nor does a manifest stored under its digest, so
    /// `is_current`'s answer for the pair is for ever. Remembering it spares every command
    /// start reading the recipe and the manifest and hashing the recipe's files.
    pub fn known_current(&self, recipe_dir: &Path, digest: &str) -> bool {
        self.currency_memo(recipe_dir)
            .is_some_and(|memo| fs::read_to_string(memo).is_ok_and(|known| known == digest))
    }

    /// Where the bundle last found current for a recipe wasmbuild carries is remembered.
    fn currency_memo(&self, recipe_dir: &Path) -> Option<PathBuf> {
        let sealed = recipe::embedded_name(&self.store.local_dir("recipes"), recipe_dir)?;
        Some(self.store.local_dir("current-bundles").join(sealed))
    }

    fn compare_with_recipe(&self, digest: &str, recipe: &Recipe) -> Result<bool, RuntimeError> {
        let manifest = self.manifest(digest)?;
        if manifest.version != recipe.version
            || manifest.env != recipe.env
            || manifest.path_env != recipe.path_env
        {
            return Ok(false);
        }
        if let Some(pinned) = recipe.source.pinned_sha256()
            && !manifest.files.iter().any(|f| f.sha256 == pinned)
        {
            return Ok(false);
        }
        if let Some(identity) = self.source_identity(recipe)?
            && manifest.built_from.as_deref() != Some(identity.as_str())
        {
            return Ok(false);
        }
        // A bundle made before the recipe asked for a snapshot lacks it, or its pages to
        // copy in.
        if let Some(wanted) = &recipe.snapshot {
            let made = manifest.commands.values().find_map(|c| c.snapshot.as_ref());
            if made.is_none_or(|made| wanted.prefault.is_some() && made.prefault.is_none()) {
                return Ok(false);
            }
        }
        for (path, source) in &recipe.files {
            let source = recipe.dir.join(source);
            let bytes = fs::read(&source)
                .map_err(|e| RuntimeError::Io(format!("{}: {e}", source.display())))?;
            let same = manifest
                .file(path)
                .is_some_and(|f| f.sha256 == crate::digest::sha256_hex(&bytes));
            if !same {
                return Ok(false);
            }
            // A bundle made before the recipe asked for bytecode lacks it.
            if recipe.bytecode.is_some()
                && let Some((dir, stem)) = bytecode::source_parts(path)
                && !manifest
                    .files
                    .iter()
                    .any(|f| bytecode::is_bytecode_of(&f.path, dir, stem))
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The versions of bundle `name` in the store, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<String>, RuntimeError> {
        let mut versions = self.store.list_refs(&format!("bundle-versions/{name}"))?;
        versions.sort_by(|a, b| compare_versions(a, b));
        Ok(versions)
    }

    /// Resolves a buildspec `runtime-versions` request: `3.12` (a prefix of the version's
    /// components), `3.x`, `latest`, or an exact version. Returns the newest match.
    pub fn resolve_version(
        &self,
        name: &str,
        request: &str,
    ) -> Result<Option<(String, String)>, RuntimeError> {
        for version in self.versions(name)?.into_iter().rev() {
            if version_matches(&version, request)
                && let Some(digest) = self.find(name, Some(&version))?
            {
                return Ok(Some((version, digest)));
            }
        }
        Ok(None)
    }

    /// The bundle version nearest to a request no bundle satisfies: of the bundle `name`
    /// (else of the bundle whose name is closest, within 3 edits), the version sharing
    /// the most leading components with `request`, the newest of those.
    pub fn nearest(
        &self,
        name: &str,
        request: &str,
    ) -> Result<Option<(String, String)>, RuntimeError> {
        let names = self.names()?;
        let bundle = if names.iter().any(|n| n == name) {
            name.to_owned()
        } else {
            match names
                .iter()
                .map(|n| (strsim::levenshtein(n, name), n))
                .filter(|(distance, _)| *distance <= 3)
                .min()
            {
                Some((_, n)) => n.clone(),
                None => return Ok(None),
            }
        };
        let wanted: Vec<&str> = request.split('.').collect();
        let shared = |version: &str| {
            version
                .split('.')
                .zip(&wanted)
                .take_while(|(v, w)| v == *w)
                .count()
        };
        // `versions` is sorted oldest first: the index breaks ties for the newest.
        let versions = self.versions(&bundle)?;
        Ok(versions
            .iter()
            .enumerate()
            .max_by_key(|(i, v)| (shared(v), *i))
            .map(|(_, v)| (bundle.clone(), v.clone())))
    }

    /// Copies bundle `name` (its newest build, or `version`) from this store to `to`:
    /// every blob it names that `to` lacks, each verified against its digest on the way,
    /// then the manifest and the references `bundle-versions/<name>/<version>` and
    /// `bundles/<name>` (the latter unless an older `version` was asked for and `to`
    /// already names one). `None` when this store has no such bundle.
    pub fn copy_bundle(
        &self,
        to: &Store,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<BundleCopy>, RuntimeError> {
        let Some(digest) = self.find(name, version)? else {
            return Ok(None);
        };
        let manifest = self.manifest(&digest)?;
        let scratch = tempfile::tempdir().map_err(|e| RuntimeError::Io(e.to_string()))?;
        let mut copy = BundleCopy {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            digest: digest.clone(),
            copied_blobs: 0,
            copied_bytes: 0,
            present_blobs: 0,
        };
        let mut digests: Vec<&str> = manifest.files.iter().map(|f| f.sha256.as_str()).collect();
        digests.sort_unstable();
        digests.dedup();
        for file_digest in digests {
            if to.has_blob(file_digest)? {
                copy.present_blobs += 1;
                continue;
            }
            let path = scratch.path().join(file_digest);
            self.store.get_blob_to_file(file_digest, &path)?;
            let (stored, size) = to.put_file(&path)?;
            let _ = fs::remove_file(&path);
            if stored != file_digest {
                // The source store handed out other bytes than the digest names: a fault
                // of the store, not of any input.
                return Err(RuntimeError::Invalid {
                    name: name.into(),
                    message: format!("blob {file_digest} was copied as {stored}; refusing it"),
                });
            }
            copy.copied_blobs += 1;
            copy.copied_bytes += size;
        }
        // The manifest last: a bundle is visible only once all its files are there.
        let bytes = self.store.get_blob(&digest)?;
        if to.has_blob(&digest)? {
            copy.present_blobs += 1;
        } else {
            to.put_blob(&bytes)?;
            copy.copied_blobs += 1;
            copy.copied_bytes += bytes.len() as u64;
        }
        to.set_ref(
            &format!("bundle-versions/{}/{}", manifest.name, manifest.version),
            &digest,
        )?;
        let newest = format!("{BUNDLE_REFS}/{}", manifest.name);
        if version.is_none() || to.get_ref(&newest)?.is_none() {
            to.set_ref(&newest, &digest)?;
        }
        Ok(Some(copy))
    }

    /// Makes the bundle's files available on this machine (verifying each one against its
    /// digest) and returns it. Installation is atomic: a directory appears whole or not at all.
    /// An existing install is checked first (see `installed`): a file changed on disk, gone,
    /// or added makes it reinstalled from the store, or refused, naming the file, when the
    /// store cannot supply it.
    pub fn install(&self, digest: &str) -> Result<InstalledBundle, RuntimeError> {
        let manifest = self.manifest(digest)?;
        let root = self.store.local_dir("bundles");
        let dir = root.join(digest);
        let bundle = InstalledBundle {
            manifest,
            digest: digest.into(),
            dir,
        };
        let (manifest, dir) = (&bundle.manifest, &bundle.dir);
        if dir.is_dir() {
            let problems = installed::check(manifest, dir, true);
            if problems.is_empty() {
                installed::link_commands(manifest, dir)
                    .map_err(|e| RuntimeError::Io(format!("installing {}: {e}", manifest.name)))?;
                return Ok(bundle);
            }
            let list = describe(&problems);
            tracing::warn!(bundle = %manifest.name, problems = %list, "installed bundle tampered");
            eprintln!(
                "wasmbuild: installed bundle {} was changed on disk ({list}); reinstalling it from the store",
                manifest.name
            );
            self.remove_install(dir).map_err(|e| {
                RuntimeError::Io(format!(
                    "installed bundle {} was changed on disk ({list}) and cannot be removed: {e}",
                    manifest.name
                ))
            })?;
            self.install_files(manifest, &root, dir).map_err(|e| {
                RuntimeError::Io(format!(
                    "installed bundle {} was changed on disk ({list}) and cannot be reinstalled \
                     from the store: {e}",
                    manifest.name
                ))
            })?;
        } else {
            self.install_files(manifest, &root, dir)?;
        }
        let problems = installed::check(manifest, dir, false);
        if !problems.is_empty() {
            return Err(RuntimeError::Io(format!(
                "installed bundle {} does not match its manifest ({}); refusing to run it",
                manifest.name,
                describe(&problems)
            )));
        }
        Ok(bundle)
    }

    /// Moves an install directory aside, then deletes it (a guest may still have it open).
    fn remove_install(&self, dir: &std::path::Path) -> std::io::Result<()> {
        let parent = dir.parent().unwrap_or(std::path::Path::new("."));
        let aside = tempfile::Builder::new()
            .prefix(".removed-")
            .tempdir_in(parent)?
            .keep();
        let target = aside.join("bundle");
        fs::rename(dir, &target)?;
        let _ = fs::remove_file(installed::stamps_path(dir));
        let _ = fs::remove_dir_all(&aside);
        Ok(())
    }

    /// Writes the bundle's files, from the store, into a new directory `dir`.
    fn install_files(
        &self,
        manifest: &BundleManifest,
        root: &std::path::Path,
        dir: &std::path::Path,
    ) -> Result<(), RuntimeError> {
        let io = |e: std::io::Error| RuntimeError::Io(format!("installing {}: {e}", manifest.name));
        fs::create_dir_all(root).map_err(io)?;
        let staging = tempfile::Builder::new()
            .prefix(".install-")
            .tempdir_in(root)
            .map_err(io)?;
        for file in &manifest.files {
            let bytes = self
                .store
                .get_blob(&file.sha256)
                .map_err(|e| RuntimeError::Io(format!("{}: {e}", file.path)))?;
            let dest = staging.path().join(&file.path);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(io)?;
            }
            fs::write(&dest, &bytes).map_err(io)?;
        }
        installed::link_commands(manifest, staging.path()).map_err(io)?;
        let staged = staging.keep();
        if let Err(e) = fs::rename(&staged, dir) {
            let _ = fs::remove_dir_all(&staged);
            // Another process may have installed the same bundle meanwhile.
            if !dir.is_dir() {
                return Err(io(e));
            }
        }
        Ok(())
    }

    /// Checks every installed bundle's files against its manifest, reading each file
    /// (stamps are not trusted). Returns `(bundle name, install directory, problems)` for
    /// each install that is not intact; with `remove`, such installs are deleted (the next
    /// use reinstalls them from the store).
    pub fn verify_installed(
        &self,
        remove: bool,
    ) -> Result<Vec<(String, PathBuf, Vec<installed::Tampered>)>, RuntimeError> {
        let root = self.store.local_dir("bundles");
        let Ok(entries) = fs::read_dir(&root) else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        let mut dirs: Vec<(String, PathBuf)> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .filter(|(name, _)| name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect();
        dirs.sort();
        for (digest, dir) in dirs {
            let problems = match self.manifest(&digest) {
                Ok(manifest) => {
                    let problems = installed::check(&manifest, &dir, false);
                    if problems.is_empty() {
                        continue;
                    }
                    (manifest.name, problems)
                }
                Err(e) => (
                    digest.clone(),
                    vec![installed::Tampered {
                        path: String::new(),
                        reason: format!("its manifest cannot be read from the store: {e}"),
                    }],
                ),
            };
            if remove {
                self.remove_install(&dir)
                    .map_err(|e| RuntimeError::Io(format!("{}: {e}", dir.display())))?;
            }
            found.push((problems.0, dir, problems.1));
        }
        Ok(found)
    }

    /// What a bundle built from `recipe` records as `built_from`, for the recipes whose
    /// sources are files of their own (a build script and its inputs, a crate); `None` for
    /// a pinned download, which its digest names.
    fn source_identity(&self, recipe: &Recipe) -> Result<Option<String>, RuntimeError> {
        let identity = || match &recipe.source {
            recipe::Source::Script(source) => script::identity(recipe, source).map(Some),
            recipe::Source::Cargo { manifest, binary } => {
                fetch::crate_identity(&recipe.dir.join(manifest), binary).map(Some)
            }
            _ => Ok(None),
        };
        // The recipes wasmbuild carries are unpacked once, into a directory named by their
        // digest, and never change: their identities are remembered (every command start
        // checks its image's bundles, and a crate's is a megabyte of sources to hash).
        let recipes = self.store.local_dir("recipes");
        let Some(sealed) = recipe::embedded_name(&recipes, &recipe.dir) else {
            return identity();
        };
        let memo = self
            .store
            .local_dir("source-identities")
            .join(format!("{sealed}.{}", fetch::IDENTITY_SCHEME));
        if let Ok(known) = fs::read_to_string(&memo)
            && crate::digest::is_digest(&known)
        {
            return Ok(Some(known));
        }
        let identity = identity()?;
        if let Some(identity) = &identity {
            // Only an optimisation: a store that cannot keep it computes it again.
            let _ = crate::store::write_atomic_beside(&memo, identity.as_bytes(), false);
        }
        Ok(identity)
    }

    /// Builds (or imports) the bundle described by `recipe`, stores it, points
    /// `bundles/<name>` at it, installs it and compiles its modules ahead of time.
    pub fn build(
        &self,
        recipe: &Recipe,
        sandbox: &Sandbox,
        report: &dyn Fn(&str),
    ) -> Result<InstalledBundle, RuntimeError> {
        let work = tempfile::tempdir().map_err(|e| RuntimeError::Io(e.to_string()))?;
        // Outputs of a build script beside its module: bundle path → file.
        let mut outputs: Vec<(String, PathBuf)> = Vec::new();
        let built_from;
        let (module_path, module_name, module_digest, module_size) =
            if let recipe::Source::Script(source) = &recipe.source {
                let built = script::build(recipe, source, work.path(), &self.store, report)?;
                let path = built.out.join(&source.module);
                let (digest, size) = self.store.put_file(&path)?;
                let name = fetch::file_name(&source.module);
                outputs.extend(
                    source
                        .outputs
                        .iter()
                        .map(|o| (o.clone(), built.out.join(o))),
                );
                built_from = Some(built.identity);
                (path, name, digest, size)
            } else {
                built_from = self.source_identity(recipe)?;
                match fetch::module_from_store(recipe, work.path(), &self.store) {
                    Some((path, name)) => {
                        report(&format!(
                            "taking the module of {} from the store",
                            recipe.name
                        ));
                        let size = fs::metadata(&path)
                            .map_err(|e| RuntimeError::Io(format!("{}: {e}", path.display())))?
                            .len();
                        let digest = recipe.source.pinned_sha256().unwrap_or_default().to_owned();
                        (path, name, digest, size)
                    }
                    None => {
                        report(&format!(
                            "fetching the module of {} ({})",
                            recipe.name,
                            source_kind(recipe)
                        ));
                        let (path, name) = fetch::fetch_module(
                            recipe,
                            work.path(),
                            &self.store.local_dir("cargo-target"),
                            &self.store,
                        )?;
                        report(&format!("storing {}", path.display()));
                        let (digest, size) = self.store.put_file(&path)?;
                        if let Some(expected) = recipe.source.pinned_sha256()
                            && expected != digest
                        {
                            return Err(RuntimeError::DigestMismatch {
                                what: name,
                                expected: expected.into(),
                                actual: digest,
                            });
                        }
                        (path, name, digest, size)
                    }
                }
            };
        let module_file = format!("bin/{module_name}");
        let mut files = vec![BundleFile {
            path: module_file.clone(),
            sha256: module_digest.clone(),
            size: module_size,
        }];
        for (path, file) in &outputs {
            let (sha256, size) = self.store.put_file(file)?;
            files.push(BundleFile {
                path: path.clone(),
                sha256,
                size,
            });
        }
        for (path, source) in &recipe.files {
            let bytes = fs::read(recipe.dir.join(source)).map_err(|e| {
                RuntimeError::Io(format!("{}: {e}", recipe.dir.join(source).display()))
            })?;
            let sha256 = self.store.put_blob(&bytes)?;
            files.push(BundleFile {
                path: path.clone(),
                sha256,
                size: bytes.len() as u64,
            });
        }

        report(&format!("compiling {module_name} to machine code"));
        let loaded = sandbox.load(&module_name, &module_path, &module_digest)?;
        let command_names = match &recipe.commands {
            recipe::Commands::Names(names) => names.clone(),
            recipe::Commands::Ask(recipe::AskModule::List) => {
                list_module_commands(sandbox, &loaded, &module_name)?
            }
        };
        if command_names.is_empty() {
            return Err(RuntimeError::Invalid {
                name: recipe.name.clone(),
                message: "it provides no commands".into(),
            });
        }
        if let Some(command) = &recipe.bytecode {
            if !command_names.contains(command) {
                return Err(RuntimeError::Invalid {
                    name: recipe.name.clone(),
                    message: format!("`bytecode = {command:?}` is not one of its commands"),
                });
            }
            report(&format!(
                "compiling the Python files of {} to bytecode",
                recipe.name
            ));
            for (path, bytes) in bytecode::for_recipe(sandbox, &loaded, recipe, command, &outputs)?
            {
                let sha256 = self.store.put_blob(&bytes)?;
                files.push(BundleFile {
                    path,
                    sha256,
                    size: bytes.len() as u64,
                });
            }
        }
        let snapshot = match &recipe.snapshot {
            Some(wanted) => {
                report(&format!("pre-initialising {module_name} (snapshot)"));
                let (bytes, root) =
                    self.snapshot(recipe, wanted, &files, &module_path, work.path())?;
                let prefault = match &wanted.prefault {
                    Some(args) => {
                        let argv = std::iter::once(&command_names[0]).chain(args).cloned();
                        Some(record_prefault(
                            sandbox,
                            recipe,
                            argv.collect(),
                            &bytes,
                            &root,
                            work.path(),
                        )?)
                    }
                    None => None,
                };
                let sha256 = self.store.put_blob(&bytes)?;
                let stem = module_name.trim_end_matches(".wasm");
                let path = format!("bin/{stem}.snapshot.wasm");
                files.push(BundleFile {
                    path: path.clone(),
                    sha256,
                    size: bytes.len() as u64,
                });
                Some(bundle::SnapshotSpec {
                    module: path,
                    from: module_digest.clone(),
                    kind: wanted.kind,
                    prefault,
                })
            }
            None => None,
        };
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let commands: BTreeMap<String, CommandSpec> = command_names
            .into_iter()
            .map(|name| {
                (
                    name,
                    CommandSpec {
                        module: module_file.clone(),
                        snapshot: snapshot.clone(),
                    },
                )
            })
            .collect();

        let manifest = BundleManifest {
            name: recipe.name.clone(),
            version: recipe.version.clone(),
            description: recipe.description.clone(),
            commands,
            env: recipe.env.clone(),
            path_env: recipe.path_env.clone(),
            files,
            built_from,
        };
        manifest
            .validate()
            .map_err(|message| RuntimeError::Invalid {
                name: recipe.name.clone(),
                message,
            })?;
        let digest = self.store.put_blob(manifest.to_toml().as_bytes())?;
        self.store.set_ref(
            &format!("bundle-versions/{}/{}", recipe.name, recipe.version),
            &digest,
        )?;
        // Further versions (`<name>@<version>` recipes) never become the bundle a build
        // gets when it asks for none: that is the default recipe's.
        if recipe.is_default() {
            self.store
                .set_ref(&format!("{BUNDLE_REFS}/{}", recipe.name), &digest)?;
        }
        report(&format!(
            "installing {} {} ({})",
            recipe.name,
            recipe.version,
            &digest[..12]
        ));
        self.install(&digest)
    }
}

impl Runtimes {
    /// Makes the snapshot of a bundle being built: its files so far written out as the
    /// guest will see them (the directory returned, inside `work`), the main module
    /// initialised there (`sandbox::snapshot`).
    fn snapshot(
        &self,
        recipe: &Recipe,
        wanted: &recipe::SnapshotRecipe,
        files: &[BundleFile],
        module: &std::path::Path,
        work: &std::path::Path,
    ) -> Result<(Vec<u8>, PathBuf), RuntimeError> {
        let io = |e: std::io::Error| RuntimeError::Io(format!("{}: {e}", work.display()));
        let root = work.join("snapshot-root");
        for file in files {
            let target = root.join(&file.path);
            fs::create_dir_all(target.parent().unwrap_or(&root)).map_err(io)?;
            self.store.get_blob_to_file(&file.sha256, &target)?;
        }
        let wasm = fs::read(module).map_err(io)?;
        let env: Vec<(String, String)> = wanted
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let guest = format!("{}/{}", crate::sandbox::layout::RUNTIMES_DIR, recipe.name);
        let bytes = crate::sandbox::snapshot::make(&wasm, &wanted.init, &root, &guest, &env)
            .map_err(|message| RuntimeError::Invalid {
                name: recipe.name.clone(),
                message: format!("its snapshot cannot be made: {message}"),
            })?;
        Ok((bytes, root))
    }
}

/// The pages of memory a run of the snapshot `bytes` as `argv` writes (the recipe's
/// `prefault` run): a program of the bundle being built (its files in `root`, seen where an
/// installed bundle's are, with the bundle's environment) in an otherwise empty build
/// layout made in `work`. A run that fails makes the snapshot unusable.
fn record_prefault(
    sandbox: &Sandbox,
    recipe: &Recipe,
    argv: Vec<String>,
    bytes: &[u8],
    root: &std::path::Path,
    work: &std::path::Path,
) -> Result<PageRuns, RuntimeError> {
    use crate::sandbox::layout::{HOME_DIR, RUNTIMES_DIR, SRC_DIR};
    let scratch = |name: &str| {
        let dir = work.join(name);
        fs::create_dir_all(&dir)
            .map(|()| dir.clone())
            .map_err(|e| RuntimeError::Io(format!("{}: {e}", dir.display())))
    };
    let mut layout = Layout::build(scratch("src")?, scratch("tmp")?, scratch("home")?);
    layout.add_bundle(&recipe.name, root.to_owned());
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), format!("{RUNTIMES_DIR}/{}/bin", recipe.name)),
        ("HOME".into(), HOME_DIR.into()),
        ("PWD".into(), SRC_DIR.into()),
    ];
    env.extend(recipe.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(recipe.path_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let module = sandbox.load_bytes(&argv[0], bytes)?;
    let stderr = SharedBuffer::default();
    let (exit, written) = sandbox.run_recording_writes(
        &module,
        GuestCommand {
            env,
            layout,
            cwd: SRC_DIR.into(),
            stderr: Box::new(stderr.clone()),
            ..GuestCommand::bare(argv)
        },
    )?;
    if exit != GuestExit::Exited(0) {
        return Err(RuntimeError::Invalid {
            name: recipe.name.clone(),
            message: format!(
                "a run of its snapshot failed ({exit:?}): {}",
                String::from_utf8_lossy(&stderr.contents())
            ),
        });
    }
    Ok(written)
}

/// Whether bundle version `version` answers a `runtime-versions` request: `3.12` (a prefix
/// of the version's components), `3.x`, `latest`, or the exact version.
pub fn version_matches(version: &str, request: &str) -> bool {
    let wanted: Vec<&str> = request
        .split('.')
        .take_while(|part| !matches!(*part, "x" | "X" | "*"))
        .collect();
    request == "latest"
        || version == request
        || (version.split('.').count() >= wanted.len()
            && wanted.iter().zip(version.split('.')).all(|(w, v)| *w == v))
}

fn source_kind(recipe: &Recipe) -> &'static str {
    match recipe.source {
        recipe::Source::Cargo { .. } => "cargo build for wasm32-wasip1",
        recipe::Source::Pypi { .. } => "PyPI package",
        recipe::Source::Npm { .. } => "npm package",
        recipe::Source::File { .. } => "local file",
        recipe::Source::Script(_) => "build script",
    }
}

/// Asks a multicall module for its commands: `MODULE --list`, one name per line.
fn list_module_commands(
    sandbox: &Sandbox,
    module: &crate::sandbox::LoadedModule,
    module_name: &str,
) -> Result<Vec<String>, RuntimeError> {
    let stdout = SharedBuffer::default();
    let stderr = SharedBuffer::default();
    let argv0 = module_name.trim_end_matches(".wasm").to_owned();
    let exit = sandbox.run(
        module,
        GuestCommand {
            stdout: Box::new(stdout.clone()),
            stderr: Box::new(stderr.clone()),
            ..GuestCommand::bare(vec![argv0, "--list".into()])
        },
    )?;
    if exit != GuestExit::Exited(0) {
        return Err(RuntimeError::Invalid {
            name: module_name.into(),
            message: format!(
                "`--list` failed ({exit:?}): {}",
                String::from_utf8_lossy(&stderr.contents())
            ),
        });
    }
    let text = String::from_utf8_lossy(&stdout.contents()).into_owned();
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Orders dotted versions numerically where the parts are numbers (`3.9` < `3.12`).
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |v: &str| {
        v.split('.')
            .map(|part| part.parse::<u64>().map_err(|_| part.to_owned()))
            .collect::<Vec<_>>()
    };
    key(a).cmp(&key(b))
}

/// `a: reason; b: reason`, for messages.
fn describe(problems: &[installed::Tampered]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle whose `python` command has a snapshot made from `from`.
    fn bundle(from: &str) -> InstalledBundle {
        let file = |path: &str, sha256: &str| BundleFile {
            path: path.into(),
            sha256: sha256.into(),
            size: 1,
        };
        let manifest = BundleManifest {
            name: "python".into(),
            version: "3.13.5".into(),
            description: String::new(),
            commands: [(
                "python".to_owned(),
                CommandSpec {
                    module: "bin/python.wasm".into(),
                    snapshot: Some(bundle::SnapshotSpec {
                        module: "bin/python.snapshot.wasm".into(),
                        from: from.into(),
                        kind: recipe::SnapshotKind::Python,
                        prefault: None,
                    }),
                },
            )]
            .into(),
            env: BTreeMap::new(),
            path_env: BTreeMap::new(),
            files: vec![
                file("bin/python.snapshot.wasm", &"b".repeat(64)),
                file("bin/python.wasm", &"a".repeat(64)),
            ],
            built_from: None,
        };
        manifest.validate().unwrap();
        InstalledBundle {
            manifest,
            digest: "c".repeat(64),
            dir: PathBuf::from("/bundles/c"),
        }
    }

    #[test]
    fn a_snapshot_is_offered_only_for_the_module_it_was_made_from() {
        let matching = bundle(&"a".repeat(64));
        let (path, digest, spec) = matching.snapshot("python").unwrap();
        assert_eq!(path, PathBuf::from("/bundles/c/bin/python.snapshot.wasm"));
        assert_eq!(digest, "b".repeat(64));
        assert_eq!(spec.kind, recipe::SnapshotKind::Python);
        assert!(bundle(&"d".repeat(64)).snapshot("python").is_none());
        assert!(bundle(&"a".repeat(64)).snapshot("pip").is_none());
    }
}

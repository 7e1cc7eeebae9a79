//! The buildspec cache (`cache: key, fallback-keys, action, paths`): restored from the store
//! before INSTALL, saved after POST_BUILD.
//!
//! `paths` are globs relative to the source directory, or under `/root` (`~`), `/tmp` or
//! the source directory's guest path. They are mapped onto the workspace's host root (whose
//! `src`, `root` and `tmp` directories the guest sees) and kept as one tree, pointed at by
//! the reference `cache/<project>/<key>`. `key` and `fallback-keys` are expanded in the
//! build's shell (so `$(codebuild-hash-files package-lock.json)` works). The exact key is
//! tried first, then each fallback key as a prefix, newest entry first. Without `key`, the
//! key derives from the project and the paths, and each save replaces the entry; a given
//! key is immutable once written. Saving uploads only the blobs the store lacks; restoring
//! writes only the files that differ, and never a file whose blob is corrupt.
//!
//! Nothing here fails a build: every problem is a warning in the log and in the record.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::BuildLog;
use super::phases::{Build, Shells};
use crate::buildspec::{Cache, CacheAction};
use crate::digest::sha256_hex;
use crate::sandbox::layout::{HOME_DIR, SRC_DIR};
use crate::shell::Stdio;
use crate::store::{RestoreOptions, SaveOptions, Selection, Store};

/// What the cache did, for `build.json`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheRecord {
    /// The key (expanded; derived from the project and paths when the buildspec has none).
    pub key: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub key_derived: bool,
    /// `both`, `restore` or `save`.
    pub action: &'static str,
    pub paths: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<CacheRestore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save: Option<CacheSave>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The restore before INSTALL.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheRestore {
    /// Whether an entry was found (by the key or a fallback key).
    pub hit: bool,
    /// The key of the entry restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_key: Option<String>,
    /// The fallback key (a prefix) that found it; absent for the exact key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    pub files: u64,
    pub bytes: u64,
    /// Files written (missing or different) and files already identical.
    pub written_files: u64,
    pub unchanged_files: u64,
    /// Files not restored because their blob is corrupt or missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub corrupt: Vec<String>,
}

/// The save after POST_BUILD.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheSave {
    pub key: String,
    /// Whether this build wrote the entry (`false`: an entry under the key was kept).
    pub created: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    pub files: u64,
    pub bytes: u64,
    pub uploaded_blobs: u64,
    pub uploaded_bytes: u64,
}

/// Cache state kept between the restore and the save.
#[derive(Default)]
pub(super) struct CacheState {
    /// The tree restored (its blobs are known to be in the store).
    restored_tree: Option<String>,
}

fn action_name(action: CacheAction) -> &'static str {
    match action {
        CacheAction::Both => "both",
        CacheAction::Restore => "restore",
        CacheAction::Save => "save",
    }
}

/// Encodes a key (or project name) as one part of a reference name: bytes other than
/// `[A-Za-z0-9._-@:]` (and a leading `.`) become `+HH`. Byte by byte, so a prefix of a key
/// encodes to a prefix of its encoding.
pub fn encode_ref_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, b) in text.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b"._-@:".contains(&b);
        if plain && !(i == 0 && b == b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode_ref_part`].
pub fn decode_ref_part(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        if bytes[i] == b'+'
            && let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The reference of cache entry `key` of `project`.
pub fn cache_ref(project: &str, key: &str) -> String {
    format!(
        "cache/{}/{}",
        encode_ref_part(project),
        encode_ref_part(key)
    )
}

/// Maps a cache path (a glob as the buildspec gives it) onto the workspace root, whose
/// `src`, `root` and `tmp` directories are the guest's source directory, home and `/tmp`.
pub fn workspace_pattern(path: &str) -> Result<String, String> {
    let p = path.trim();
    let mapped = if p == "~" || p == HOME_DIR {
        "root".to_owned()
    } else if let Some(rest) = p.strip_prefix("~/") {
        format!("root/{rest}")
    } else if let Some(rest) = p.strip_prefix(&format!("{HOME_DIR}/")) {
        format!("root/{rest}")
    } else if p == SRC_DIR {
        "src".to_owned()
    } else if let Some(rest) = p.strip_prefix(&format!("{SRC_DIR}/")) {
        format!("src/{rest}")
    } else if p == "/tmp" {
        "tmp".to_owned()
    } else if let Some(rest) = p.strip_prefix("/tmp/") {
        format!("tmp/{rest}")
    } else if p.starts_with('/') {
        return Err(format!(
            "cache path {path:?} is outside the source directory, {HOME_DIR} and /tmp; ignored"
        ));
    } else {
        let mut rest = p;
        while let Some(r) = rest.strip_prefix("./") {
            rest = r;
        }
        if rest.is_empty() || rest == "." {
            "src".to_owned()
        } else {
            format!("src/{rest}")
        }
    };
    if mapped.split('/').any(|c| c == "..") {
        return Err(format!("cache path {path:?} climbs out with `..`; ignored"));
    }
    Ok(mapped.trim_end_matches('/').to_owned())
}

/// The key of a cache with no `key`: the project and a digest of the paths.
pub fn derived_key(project: &str, paths: &[String]) -> String {
    let mut sorted: Vec<&str> = paths.iter().map(|p| p.trim()).collect();
    sorted.sort();
    sorted.dedup();
    format!(
        "{project}-{}",
        &sha256_hex(sorted.join("\n").as_bytes())[..16]
    )
}

/// Expands `text` as a double-quoted word in the build's shell. A failing command
/// substitution (e.g. `codebuild-hash-files` matching nothing) is an error.
fn expand(shells: &mut Shells, text: &str, log: &BuildLog) -> Result<String, String> {
    if !text.contains(['$', '`']) {
        return Ok(text.to_owned());
    }
    let session = shells.session();
    session
        .set_var("__wasmbuild_text", text)
        .map_err(|e| e.to_string())?;
    let stdio = Stdio::new(Box::new(std::io::sink()), Box::new(log.output()));
    let status = session
        .run_script(
            r#"eval "__wasmbuild_key=\"$__wasmbuild_text\"""#,
            "cache key",
            stdio,
        )
        .map_err(|e| e.to_string());
    let value = session
        .var("__wasmbuild_key")
        .unwrap_or_default()
        .to_owned();
    let cleanup = Stdio::new(Box::new(std::io::sink()), Box::new(std::io::sink()));
    let _ = session.run_script(
        "unset __wasmbuild_text __wasmbuild_key",
        "cache key",
        cleanup,
    );
    match status? {
        0 => Ok(value),
        n => Err(format!("expanding {text:?} failed (exit status {n})")),
    }
}

fn human(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({})", indicatif::HumanBytes(bytes))
    }
}

fn ms(elapsed: Duration) -> String {
    format!("{:.0} ms", elapsed.as_secs_f64() * 1000.0)
}

impl Build<'_> {
    fn cache_warn(&mut self, message: String) {
        self.log.line(format!("Warning: {message}"));
        if let Some(record) = &mut self.record.cache {
            record.warnings.push(message);
        }
    }

    fn cache_store(&self) -> Store {
        self.services.runtimes.store().clone()
    }

    /// The selection of the cache's paths under the workspace root (unusable paths are
    /// warned about and left out).
    fn cache_selection(&mut self, cache: &Cache) -> Option<Selection> {
        let mut patterns = Vec::new();
        for path in &cache.paths {
            match workspace_pattern(path) {
                Ok(pattern) => patterns.push(pattern),
                Err(message) => self.cache_warn(message),
            }
        }
        if patterns.is_empty() {
            self.cache_warn("the cache has no usable paths; nothing is cached".to_owned());
            return None;
        }
        match Selection::globs(&patterns) {
            Ok(selection) => Some(selection),
            Err(e) => {
                self.cache_warn(format!("cache paths: {e}"));
                None
            }
        }
    }

    /// The key, expanded in the build's shell (or derived), and whether it was derived.
    fn cache_key(&mut self, cache: &Cache, shells: &mut Shells) -> Option<(String, bool)> {
        let Some(key) = &cache.key else {
            return Some((derived_key(&self.request.project, &cache.paths), false));
        };
        match expand(shells, key, &self.log) {
            Ok(expanded) if expanded.trim().is_empty() => {
                self.cache_warn(format!(
                    "the cache key {key:?} expands to nothing; cache skipped"
                ));
                None
            }
            Ok(expanded) => {
                // A key made from a secret would become a store reference: the build fails.
                if let Err(message) = self.refuse_secret_name("the cache key", &expanded) {
                    self.cache_warn(format!("{message}; cache skipped"));
                    self.failed = true;
                    return None;
                }
                Some((expanded.trim().to_owned(), true))
            }
            Err(e) => {
                self.cache_warn(format!("cache key: {e}; cache skipped"));
                None
            }
        }
    }

    /// Before INSTALL: restores the cache by its key, else by the first fallback key that
    /// matches an entry. Never fails the build.
    pub(super) fn restore_cache(&mut self, deadline: Instant) {
        let Some(cache) = self.request.buildspec.cache.clone() else {
            return;
        };
        if !self.request.use_cache {
            return;
        }
        self.record.cache = Some(CacheRecord {
            action: action_name(cache.action),
            paths: cache.paths.clone(),
            ..Default::default()
        });
        if cache.paths.is_empty() {
            self.cache_warn("the cache has no paths; nothing is cached".to_owned());
            return;
        }
        // A shell for expanding the keys (the build's own session starts in INSTALL, once
        // its runtimes are known).
        let mut shells = match self.make_shells(deadline) {
            Ok(shells) => shells,
            Err(end) => {
                let why = end.context.map(|c| c.message).unwrap_or_default();
                self.cache_warn(format!("cannot start a shell for the cache key: {why}"));
                return;
            }
        };
        let Some((key, keyed)) = self.cache_key(&cache, &mut shells) else {
            return;
        };
        if let Some(record) = &mut self.record.cache {
            record.key = key.clone();
            record.key_derived = !keyed;
        }
        if cache.action == CacheAction::Save {
            self.log.line(format!(
                "Cache action is save: not restoring the cache (key {key})"
            ));
            return;
        }
        let mut fallbacks = Vec::new();
        for fallback in &cache.fallback_keys {
            match expand(&mut shells, fallback, &self.log) {
                Ok(prefix) if self.refuse_secret_name("a fallback key", &prefix).is_err() => {
                    self.cache_warn(format!("fallback key {fallback:?} holds a secret; skipped"));
                    self.failed = true;
                }
                Ok(prefix) if !prefix.trim().is_empty() => fallbacks.push(prefix.trim().to_owned()),
                Ok(_) => self.cache_warn(format!(
                    "fallback key {fallback:?} expands to nothing; skipped"
                )),
                Err(e) => self.cache_warn(format!("fallback key: {e}; skipped")),
            }
        }
        drop(shells);
        let store = self.cache_store();
        let project = self.request.project.clone();
        let started = Instant::now();

        // Candidates in order: the exact key, then per fallback prefix, newest first.
        let mut found: Option<(String, String, Option<String>)> = None; // key, tree, fallback
        match store.get_ref(&cache_ref(&project, &key)) {
            Ok(Some(tree)) => found = Some((key.clone(), tree, None)),
            Ok(None) => {}
            Err(e) => {
                self.cache_warn(format!("cannot look up cache key {key}: {e}"));
                return;
            }
        }
        let mut candidates: Vec<(String, String, Option<String>)> = found.into_iter().collect();
        if candidates.is_empty() {
            for prefix in &fallbacks {
                let listing = format!(
                    "cache/{}/{}",
                    encode_ref_part(&project),
                    encode_ref_part(prefix)
                );
                match store.list_refs_recursive(&listing) {
                    Ok(mut refs) => {
                        refs.sort_by(|a, b| b.modified.cmp(&a.modified).then(b.name.cmp(&a.name)));
                        for r in refs {
                            let Some(encoded) = r.name.rsplit('/').next() else {
                                continue;
                            };
                            candidates.push((
                                decode_ref_part(encoded),
                                r.value,
                                Some(prefix.clone()),
                            ));
                        }
                    }
                    Err(e) => {
                        self.cache_warn(format!(
                            "cannot list cache entries for fallback key {prefix}: {e}"
                        ));
                        return;
                    }
                }
            }
        }
        if candidates.is_empty() {
            let tried = if fallbacks.is_empty() {
                String::new()
            } else {
                format!(" nor fallback keys {}", fallbacks.join(", "))
            };
            self.log
                .line(format!("Cache miss: no entry for key {key}{tried}"));
            if let Some(record) = &mut self.record.cache {
                record.restore = Some(CacheRestore::default());
            }
            return;
        }
        let Some(root) = self.workspace.as_ref().map(|ws| ws.root().to_owned()) else {
            return;
        };
        let options = RestoreOptions {
            mtime: self
                .request
                .source_date_epoch
                .map(|epoch| SystemTime::UNIX_EPOCH + Duration::from_secs(epoch)),
        };
        for (matched, tree, fallback) in candidates {
            let stats = match store.restore_tree_with(&tree, &root, &options) {
                Ok(stats) => stats,
                Err(e) if e.is_missing() => {
                    self.cache_warn(format!(
                        "cache entry {matched} is unusable ({e}); trying the next"
                    ));
                    continue;
                }
                Err(e) => {
                    self.cache_warn(format!(
                        "restoring the cache from key {matched} failed: {e}"
                    ));
                    return;
                }
            };
            let bytes = store.get_tree(&tree).map(|t| t.total_size()).unwrap_or(0);
            let how = match &fallback {
                Some(prefix) => format!(" (fallback key {prefix})"),
                None => String::new(),
            };
            self.log.line(format!(
                "Restoring cache from key {matched}{how}: {} files, {} ({} written, {} unchanged) in {}",
                stats.files,
                human(bytes),
                stats.written_files,
                stats.unchanged_files,
                ms(started.elapsed())
            ));
            for corrupt in &stats.corrupt {
                self.cache_warn(format!("cache file not restored: {corrupt}"));
            }
            for refused in &stats.refused {
                self.cache_warn(format!("cache entry not restored: {refused}"));
            }
            if let Err(e) = store.touch_ref(&cache_ref(&project, &matched)) {
                tracing::debug!("touching cache entry {matched}: {e}");
            }
            self.cache_state.restored_tree = Some(tree.clone());
            if let Some(record) = &mut self.record.cache {
                record.restore = Some(CacheRestore {
                    hit: true,
                    matched_key: Some(matched),
                    fallback_key: fallback,
                    tree: Some(tree),
                    files: stats.files,
                    bytes,
                    written_files: stats.written_files,
                    unchanged_files: stats.unchanged_files,
                    corrupt: stats.corrupt.clone(),
                });
            }
            store.forget_index(&root);
            return;
        }
        self.log
            .line(format!("Cache miss: no usable entry for key {key}"));
        if let Some(record) = &mut self.record.cache {
            record.restore = Some(CacheRestore::default());
        }
    }

    /// After POST_BUILD: saves the cache paths under the key (a keyed entry that exists is
    /// kept). Never fails the build.
    pub(super) fn save_cache(&mut self) {
        let Some(cache) = self.request.buildspec.cache.clone() else {
            return;
        };
        if !self.request.use_cache {
            return;
        }
        if cache.paths.is_empty() {
            return;
        }
        if cache.action == CacheAction::Restore {
            self.log
                .line("Cache action is restore: not saving the cache".to_owned());
            return;
        }
        if self.failed {
            self.log
                .line("Not saving the cache: the build failed".to_owned());
            return;
        }
        let Some(selection) = self.cache_selection(&cache) else {
            return;
        };
        // The key as the build leaves it (files it wrote may change `codebuild-hash-files`).
        let Some(mut shells) = self.shells.take() else {
            return;
        };
        let key = self.cache_key(&cache, &mut shells);
        self.shells = Some(shells);
        let Some((key, keyed)) = key else { return };
        let store = self.cache_store();
        let reference = cache_ref(&self.request.project, &key);
        if keyed {
            match store.get_ref(&reference) {
                Ok(Some(_)) => {
                    self.log.line(format!(
                        "Cache key {key} exists: its entry is kept (cache keys are immutable)"
                    ));
                    if let Some(record) = &mut self.record.cache {
                        record.save = Some(CacheSave {
                            key,
                            ..Default::default()
                        });
                    }
                    return;
                }
                Ok(None) => {}
                Err(e) => {
                    self.cache_warn(format!("cannot look up cache key {key}: {e}; not saved"));
                    return;
                }
            }
        }
        let Some(root) = self.workspace.as_ref().map(|ws| ws.root().to_owned()) else {
            return;
        };
        let options = SaveOptions {
            base: self.cache_state.restored_tree.clone(),
        };
        let started = Instant::now();
        let (tree, stats) = match store.save_tree_with(&root, &selection, &options) {
            Ok(saved) => saved,
            Err(e) => {
                self.cache_warn(format!("saving the cache under key {key} failed: {e}"));
                store.forget_index(&root);
                return;
            }
        };
        store.forget_index(&root);
        for ignored in &stats.ignored {
            self.cache_warn(format!("not cached: {ignored}"));
        }
        if stats.files + stats.symlinks + stats.dirs == 0 {
            self.log.line(format!(
                "Not saving the cache under key {key}: no file matches its paths"
            ));
            return;
        }
        let created = if keyed {
            store.create_ref_if_absent(&reference, &tree)
        } else {
            store.set_ref(&reference, &tree).map(|()| true)
        };
        let created = match created {
            Ok(created) => created,
            Err(e) => {
                self.cache_warn(format!("saving the cache under key {key} failed: {e}"));
                return;
            }
        };
        if created {
            self.log.line(format!(
                "Saving cache under key {key}: {} files, {}; uploaded {} new blobs ({} compressed) in {}",
                stats.files,
                human(stats.bytes),
                stats.uploaded_blobs,
                human(stats.uploaded_bytes),
                ms(started.elapsed())
            ));
        } else {
            self.log.line(format!(
                "Cache key {key} was written meanwhile by another build: its entry is kept"
            ));
        }
        if let Some(record) = &mut self.record.cache {
            record.save = Some(CacheSave {
                key,
                created,
                tree: created.then_some(tree),
                files: stats.files,
                bytes: stats.bytes,
                uploaded_blobs: stats.uploaded_blobs,
                uploaded_bytes: stats.uploaded_bytes,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_encode_to_reference_parts_preserving_prefixes() {
        for key in ["npm-abc", "a b/c+d", ".hidden", "ünï", "key:1@x"] {
            let encoded = encode_ref_part(key);
            crate::store::check_ref_name(&format!("cache/p/{encoded}")).unwrap();
            assert_eq!(decode_ref_part(&encoded), key);
        }
        let key = encode_ref_part("deps/lock 1");
        assert!(key.starts_with(&encode_ref_part("deps/lo")));
        assert_eq!(encode_ref_part("a b"), "a+20b");
    }

    #[test]
    fn paths_map_onto_the_workspace_root() {
        assert_eq!(
            workspace_pattern("node_modules/**/*").unwrap(),
            "src/node_modules/**/*"
        );
        assert_eq!(workspace_pattern("./dist/").unwrap(), "src/dist");
        assert_eq!(
            workspace_pattern("/root/.m2/**/*").unwrap(),
            "root/.m2/**/*"
        );
        assert_eq!(
            workspace_pattern("~/.cache/pip/**/*").unwrap(),
            "root/.cache/pip/**/*"
        );
        assert_eq!(
            workspace_pattern("/codebuild/output/src/vendor").unwrap(),
            "src/vendor"
        );
        assert_eq!(workspace_pattern("/tmp/x/*").unwrap(), "tmp/x/*");
        assert!(workspace_pattern("/etc/passwd").is_err());
        assert!(workspace_pattern("../up").is_err());
    }

    #[test]
    fn derived_keys_depend_on_project_and_paths_not_their_order() {
        let a = derived_key("p", &["a/**/*".into(), "b".into()]);
        assert_eq!(a, derived_key("p", &["b".into(), "a/**/*".into()]));
        assert_ne!(a, derived_key("q", &["a/**/*".into(), "b".into()]));
        assert_ne!(a, derived_key("p", &["a/**/*".into()]));
    }
}

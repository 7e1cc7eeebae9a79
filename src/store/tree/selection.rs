//! Which paths under a root a save takes: everything, or glob patterns.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::store::StoreError;

/// Which paths under a root to save: everything, or glob patterns relative to the root
/// (`node_modules/**/*`, `target`, `*.o`). A pattern that matches a directory selects
/// everything below it; `*` does not cross `/`, `**` does.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    patterns: Vec<String>,
    set: Option<GlobSet>,
}

impl Selection {
    /// Everything under the root.
    pub fn all() -> Selection {
        Selection::default()
    }

    /// The paths matching any of `patterns` (and everything below a matching directory).
    pub fn globs<I, S>(patterns: I) -> Result<Selection, StoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut normalized = Vec::new();
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            let raw = pattern.as_ref();
            let mut p = raw.trim();
            while let Some(rest) = p.strip_prefix("./") {
                p = rest;
            }
            let p = p.trim_end_matches('/');
            if p.is_empty() || p == "." {
                // The root itself: everything.
                return Ok(Selection::all());
            }
            if p.starts_with('/') || p.split('/').any(|c| c == "..") {
                return Err(StoreError::Invalid(format!(
                    "cache path {raw:?} must be relative and stay inside its directory"
                )));
            }
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| StoreError::Invalid(format!("bad path pattern {raw:?}: {e}")))?;
            builder.add(glob);
            normalized.push(p.to_owned());
        }
        if normalized.is_empty() {
            return Err(StoreError::Invalid("no paths selected".into()));
        }
        let set = builder
            .build()
            .map_err(|e| StoreError::Invalid(format!("bad path patterns: {e}")))?;
        Ok(Selection {
            patterns: normalized,
            set: Some(set),
        })
    }

    pub fn is_all(&self) -> bool {
        self.set.is_none()
    }

    /// Whether `rel` or one of its ancestors is selected.
    pub fn matches(&self, rel: &str) -> bool {
        let Some(set) = &self.set else { return true };
        if set.is_match(rel) {
            return true;
        }
        let mut end = rel.len();
        while let Some(i) = rel[..end].rfind('/') {
            if set.is_match(&rel[..i]) {
                return true;
            }
            end = i;
        }
        false
    }

    /// Directories (relative, `""` for the root) below which every selected path lies.
    pub(super) fn bases(&self) -> Vec<String> {
        if self.set.is_none() {
            return vec![String::new()];
        }
        let mut bases: Vec<String> = self
            .patterns
            .iter()
            .map(|p| {
                let literal: Vec<&str> = p
                    .split('/')
                    .take_while(|c| !c.contains(['*', '?', '[', '{', '\\']))
                    .collect();
                literal.join("/")
            })
            .collect();
        bases.sort();
        bases.dedup();
        // Drop bases inside other bases.
        let mut kept: Vec<String> = Vec::new();
        for base in bases {
            let covered = kept
                .iter()
                .any(|k| k.is_empty() || base == *k || base.starts_with(&format!("{k}/")));
            if !covered {
                kept.push(base);
            }
        }
        kept
    }
}

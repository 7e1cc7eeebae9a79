//! Keeping a build in the store, besides the `-a` directory: each exported artifact set as
//! a tree under `artifacts/<project>/<number>/<identifier>`, and the record (`build.json`)
//! as a blob under `builds/<project>/<number>`. A store that fails here costs a warning in
//! the log, never the build.

use std::path::Path;

use super::cache::encode_ref_part;
use super::phases::Build;
use super::record::NameValue;
use crate::store::Selection;

/// The reference of a build's record.
pub fn record_ref(project: &str, number: u64) -> String {
    format!("builds/{}/{number}", encode_ref_part(project))
}

/// The reference of a build's artifact set.
pub fn artifacts_ref(project: &str, number: u64, identifier: &str) -> String {
    format!(
        "artifacts/{}/{number}/{}",
        encode_ref_part(project),
        encode_ref_part(identifier)
    )
}

impl Build<'_> {
    /// Saves the exported artifact set at `dir` as a tree and names it.
    pub(super) fn keep_artifact_set(&mut self, identifier: &str, dir: &Path) {
        let store = self.services.runtimes.store().clone();
        let reference = artifacts_ref(&self.request.project, self.request.build_number, identifier);
        let result = store
            .save_tree(dir, &Selection::all())
            .and_then(|(tree, stats)| store.set_ref(&reference, &tree).map(|()| (tree, stats)));
        store.forget_index(dir);
        match result {
            Ok((tree, stats)) => {
                self.log.line(format!(
                    "Artifact set {identifier} kept in the store as {reference} (tree {}, {} new blobs)",
                    &tree[..12],
                    stats.uploaded_blobs
                ));
                if let Some(kept) = &mut self.record.store {
                    kept.artifacts.push(NameValue {
                        name: identifier.to_owned(),
                        value: reference,
                    });
                }
            }
            Err(e) => self.log.line(format!(
                "Warning: artifact set {identifier} not kept in the store: {e}"
            )),
        }
    }

    /// Stores the record (as `build.json` holds it) and names it.
    pub(super) fn keep_record(&self) {
        let Some(kept) = &self.record.store else {
            return;
        };
        let store = self.services.runtimes.store();
        // Masked, as build.json is.
        let bytes = self.record.to_json_pretty().into_bytes();
        let result = store
            .put_blob(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|digest| {
                store
                    .set_ref(&kept.record, &digest)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = result {
            self.log.line(format!(
                "Warning: the build record was not kept in the store: {e}"
            ));
        }
    }
}

//! Keeping a build in the store, besides the `-a` directory: each exported artifact set as
//! a tree under `artifacts/<project>/<number>/<identifier>`, and the record (`build.json`)
//! as a blob under `builds/<project>/<number>` — kept when the build starts and at each
//! phase, so a running build shows in `wasmbuild serve` — and the log, streamed into the
//! store while the build runs (`streams/logs/<project>/<number>`) and kept whole at its end
//! under `logs/<project>/<number>`. A store that fails here costs a warning in the log,
//! never the build.

use std::path::Path;

use super::cache::encode_ref_part;
use super::phases::Build;
use super::record::NameValue;
use crate::store::Selection;

/// The reference of a build's record.
pub fn record_ref(project: &str, number: u64) -> String {
    format!("builds/{}/{number}", encode_ref_part(project))
}

/// The reference of a build's whole log, and the name of its live stream.
pub fn log_ref(project: &str, number: u64) -> String {
    format!("logs/{}/{number}", encode_ref_part(project))
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

    /// Streams the log into the store while the build runs, if the build is kept there.
    pub(super) fn stream_log(&self) -> Option<crate::lifecycle::log::LiveLog> {
        self.record.store.as_ref()?;
        let store = self.services.runtimes.store().clone();
        let name = log_ref(&self.request.project, self.request.build_number);
        // A stream left by an earlier try of this number (a killed build) is not ours.
        let _ = store.delete_stream(&name);
        Some(self.log.stream_to(store, name))
    }

    /// Keeps the whole log (`build.log`) in the store, then drops its live stream.
    pub(super) fn keep_log(&mut self, live: Option<crate::lifecycle::log::LiveLog>) {
        let Some(live) = live else { return };
        self.log.flush();
        live.finish();
        let store = self.services.runtimes.store().clone();
        let reference = log_ref(&self.request.project, self.request.build_number);
        let path = Path::new(&self.record.logs.location);
        let result = store
            .put_file(path)
            .and_then(|(digest, _)| store.set_ref(&reference, &digest));
        match result {
            Ok(()) => {
                if let Some(kept) = &mut self.record.store {
                    kept.log = Some(reference.clone());
                }
            }
            Err(e) => self.log.line(format!(
                "Warning: the build log was not kept in the store: {e}"
            )),
        }
    }

    /// Drops the log's live stream once the record says where the whole log is.
    pub(super) fn drop_log_stream(&self) {
        if self.record.store.is_some() {
            let store = self.services.runtimes.store();
            let _ = store.delete_stream(&log_ref(&self.request.project, self.request.build_number));
        }
    }

    /// Keeps the record as it stands while the build runs (its phases so far).
    pub(super) fn keep_progress(&mut self) {
        self.record.secret_mask = self.log.secret_mask();
        self.keep_record();
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

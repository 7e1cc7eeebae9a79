//! Report groups after the build, as CodeBuild makes them (in UPLOAD_ARTIFACTS, also when
//! BUILD failed): each group's files are selected like artifacts and read in its format;
//! the report (status, counts or coverage) gets a line in the log, its summary goes into
//! `build.json`, and the whole report (every case or file) is written to
//! `reports/<group>.json` in the artifacts directory and kept in the store under
//! `reports/<group>/<number>`. Nothing here changes the build's status.

use std::io::BufReader;

use super::artifacts;
use super::cache::encode_ref_part;
use super::phases::Build;
use super::record::record_time;
use crate::reports::{Gathered, Identity, Report, read_file};

/// The report group of buildspec group `name` in `project`: `<project>-<name>`, as
/// CodeBuild names the groups a buildspec makes; an ARN names its group.
pub fn group_name(project: &str, name: &str) -> String {
    match name.strip_prefix("arn:") {
        Some(arn) => arn.rsplit('/').next().unwrap_or(arn).to_owned(),
        None => format!("{project}-{name}"),
    }
}

/// The store reference of a group's report of build `number`.
pub fn report_ref(group: &str, number: u64) -> String {
    format!("reports/{}/{number}", encode_ref_part(group))
}

impl Build<'_> {
    /// Makes every report group of the buildspec.
    pub(super) fn make_reports(&mut self) {
        let groups = self.request.buildspec.reports.clone();
        let Some(src) = self.workspace.as_ref().map(|ws| ws.src.clone()) else {
            return;
        };
        for (name, spec) in &groups {
            let group = group_name(&self.request.project, name);
            self.log.line(format!(
                "Preparing to copy {} report {name}",
                if crate::reports::is_test_format(&spec.file_format) {
                    "TEST"
                } else {
                    "CODE_COVERAGE"
                }
            ));
            let mut warnings = Vec::new();
            let mut problems = Vec::new();
            let mut gathered = Gathered::default();
            let mut files = Vec::new();
            match artifacts::report_files(&src, spec, &mut warnings) {
                Ok(found) => {
                    for (path, file) in found {
                        let result = file.map_err(|e| e.to_string()).and_then(|file| {
                            read_file(
                                &spec.file_format,
                                &path,
                                BufReader::new(file),
                                &mut gathered,
                            )
                        });
                        if let Err(reason) = result {
                            problems.push(format!("{path}: {reason}"));
                        }
                        files.push(path);
                    }
                }
                Err(e) => problems.push(e.to_string()),
            }
            for warning in warnings {
                self.log.line(format!("Warning: {warning}"));
            }
            let uuid = self.record.id.rsplit(':').next().unwrap_or_default();
            let identity = Identity {
                arn: format!("{group}:{uuid}"),
                group: group.clone(),
                name: name.clone(),
                execution_id: self.record.arn.clone(),
                created: record_time(jiff::Timestamp::now()),
            };
            let report = Report::new(identity, &spec.file_format, files, gathered, &problems);
            self.log.line(report.log_line());
            self.keep_report(&group, &report);
            self.record.reports.push(report.summary());
        }
    }

    /// Writes the whole report beside build.json and keeps it in the store; trouble here
    /// is a warning.
    fn keep_report(&mut self, group: &str, report: &Report) {
        let bytes = match serde_json::to_vec_pretty(report) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.log
                    .line(format!("Warning: report {group} not written: {e}"));
                return;
            }
        };
        let dir = self.request.out_dir.join("reports");
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            std::fs::write(dir.join(format!("{}.json", encode_ref_part(group))), &bytes)
        });
        if let Err(e) = written {
            self.log
                .line(format!("Warning: report {group} not written: {e}"));
        }
        if self.record.store.is_none() {
            return;
        }
        let store = self.services.runtimes.store();
        let reference = report_ref(group, self.request.build_number);
        let kept = store
            .put_blob(&bytes)
            .and_then(|digest| store.set_ref(&reference, &digest));
        match kept {
            Ok(()) => {
                if let Some(kept) = &mut self.record.store {
                    kept.reports.push(super::record::NameValue {
                        name: group.to_owned(),
                        value: reference,
                    });
                }
            }
            Err(e) => self.log.line(format!(
                "Warning: report {group} not kept in the store: {e}"
            )),
        }
    }
}

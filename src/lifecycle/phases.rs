//! Running one build: the phases in CodeBuild's order with its rules (`on-failure`,
//! `finally`, timeouts, Ctrl-C), the shell sessions the commands run in, the environment,
//! and each phase's end in the record. `lifecycle::run` starts it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::log::BuildLog;
use super::record::{
    BuildRecord, EnvironmentVariable, NameValue, PhaseContext, PhaseRecord, PythonRecord, Status,
    record_time,
};
use super::{BuildControl, BuildRequest, BuildServices, artifacts, cache, workspace};
use crate::buildspec::{Artifacts, OnFailure, Phase, Version};
use crate::image::{Image, ImageRunner};
use crate::python::pip::PythonPackages;
use crate::sandbox::layout::{HOME_DIR, SRC_DIR};
use crate::sandbox::{Determinism, Layout, SharedBuffer};
use crate::shell::{GuestFs, Session, ShellError, Stdio};

/// How one phase ended.
pub(super) struct PhaseEnd {
    pub(super) status: Status,
    pub(super) context: Option<PhaseContext>,
}

impl PhaseEnd {
    pub(super) fn ok() -> Self {
        PhaseEnd {
            status: Status::Succeeded,
            context: None,
        }
    }
    fn failed(status: Status, code: &str, message: impl Into<String>) -> Self {
        PhaseEnd {
            status,
            context: Some(PhaseContext {
                status_code: code.to_owned(),
                message: message.into(),
            }),
        }
    }
}

/// The shell(s) of a build: one session for version 0.2, a fresh one per command for 0.1.
pub(super) struct Shells {
    pub(super) runner: Arc<ImageRunner>,
    pub(super) fs: GuestFs,
    pub(super) env: Vec<(String, String)>,
    pub(super) session: Option<Session>,
    pub(super) per_command: bool,
    pub(super) cancel: Arc<AtomicBool>,
    pub(super) script_name: String,
}

impl Shells {
    fn new_session(&self) -> Session {
        let mut session = Session::new(
            self.runner.clone(),
            self.fs.clone(),
            self.env.clone(),
            SRC_DIR.to_owned(),
        );
        session.set_cancel_flag(self.cancel.clone());
        session
    }

    pub(super) fn session(&mut self) -> &mut Session {
        if self.per_command || self.session.is_none() {
            let mut session = self.new_session();
            if let Some(old) = &self.session {
                // Per-command shells (0.1) share one count of processes and one set of jobs.
                session.share_jobs_with(old);
            }
            self.session = Some(session);
        }
        self.session.as_mut().expect("session was just made")
    }

    /// Sets an exported variable for every later command.
    fn export(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value.to_owned()));
        if let Some(session) = &mut self.session {
            let _ = session.export(name, value);
        }
    }

    pub(super) fn var(&self, name: &str) -> Option<String> {
        match &self.session {
            Some(session) if !self.per_command => session.var(name).map(str::to_owned),
            _ => self
                .env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
        }
    }

    /// Runs one buildspec command, which starts on buildspec line `line` (0 when not
    /// known); its output goes to the log.
    pub(super) fn run(
        &mut self,
        command: &str,
        line: usize,
        log: &BuildLog,
    ) -> Result<i32, ShellError> {
        let stdio = Stdio {
            stdin: Box::new(std::io::empty()),
            stdout: Box::new(log.output()),
            stderr: Box::new(log.output()),
        };
        let name = self.script_name.clone();
        self.session()
            .run_script_at(command, &name, line.max(1), stdio)
    }

    /// Expands `text` as the shell would expand a double-quoted word (artifact names).
    fn expand(&mut self, text: &str) -> Result<String, String> {
        let buffer = SharedBuffer::default();
        let stdio = Stdio::new(Box::new(buffer.clone()), Box::new(std::io::sink()));
        let session = self.session();
        session
            .set_var("__wasmbuild_text", text)
            .map_err(|e| e.to_string())?;
        let status = session
            .run_script(
                r#"eval "printf '%s' \"$__wasmbuild_text\"""#,
                "artifact name",
                stdio,
            )
            .map_err(|e| e.to_string());
        // Nothing started by an expansion runs on while the artifacts are collected.
        session.stop_jobs_within(Duration::ZERO);
        let status = status?;
        if status != 0 {
            return Err(format!("cannot expand {text:?}"));
        }
        Ok(String::from_utf8_lossy(&buffer.contents()).into_owned())
    }
}

/// A build's environment as it is assembled: a later value of a name replaces the earlier
/// one and moves to the end. Indexed, so a buildspec with 200,000 variables is assembled in
/// linear time.
#[derive(Default)]
pub(super) struct EnvBuilder {
    pub(super) slots: Vec<Option<(String, String)>>,
    pub(super) index: std::collections::HashMap<String, usize>,
}

impl EnvBuilder {
    fn set(&mut self, key: &str, value: String) {
        if let Some(old) = self.index.insert(key.to_owned(), self.slots.len()) {
            self.slots[old] = None;
        }
        self.slots.push(Some((key.to_owned(), value)));
    }

    fn finish(self) -> Vec<(String, String)> {
        self.slots.into_iter().flatten().collect()
    }
}

/// One build in progress.
pub(super) struct Build<'a> {
    pub(super) request: &'a BuildRequest,
    pub(super) services: &'a BuildServices,
    pub(super) log: BuildLog,
    pub(super) control: BuildControl,
    pub(super) record: BuildRecord,
    /// Whether any phase failed so far.
    pub(super) failed: bool,
    pub(super) workspace: Option<workspace::Workspace>,
    pub(super) image: Option<Image>,
    pub(super) env: Vec<(String, String)>,
    pub(super) shells: Option<Shells>,
    /// Digests of the build's inputs, for a deterministic build's seed.
    pub(super) seed_material: Vec<String>,
    pub(super) cache_state: cache::CacheState,
    /// The build's pip: its store, lock and what it installed.
    pub(super) python: Arc<PythonPackages>,
}

/// Runs the build whose record `run` began at `start` to its end.
pub(super) fn run(
    request: &BuildRequest,
    services: &BuildServices,
    log: BuildLog,
    control: BuildControl,
    record: BuildRecord,
    python: Arc<PythonPackages>,
    start: jiff::Timestamp,
) -> BuildRecord {
    let mut build = Build {
        request,
        services,
        log,
        control,
        record,
        failed: false,
        workspace: None,
        image: None,
        env: Vec::new(),
        shells: None,
        seed_material: Vec::new(),
        cache_state: Default::default(),
        python,
    };
    build.run(start);
    build.record
}
impl Build<'_> {
    pub(super) fn run(&mut self, start: jiff::Timestamp) {
        // The deadline: guests are stopped by the sandbox's epoch check, the shell between
        // commands by the cancel flag.
        let deadline = Instant::now() + self.request.timeout;
        *self
            .control
            .deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(deadline);
        let watchdog = {
            let control = self.control.clone();
            let done = Arc::new(AtomicBool::new(false));
            let flag = done.clone();
            std::thread::spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    let now = Instant::now();
                    if now >= deadline {
                        control.time_out();
                        break;
                    }
                    std::thread::park_timeout((deadline - now).min(Duration::from_millis(200)));
                }
            });
            done
        };

        let live = self.stream_log();
        self.simple_phase("SUBMITTED", start, |_| PhaseEnd::ok());
        self.log.line(format!(
            "Running on wasmbuild {} (no container: every command runs in a WebAssembly sandbox)",
            env!("CARGO_PKG_VERSION")
        ));
        let provisioned = self.phase("PROVISIONING", |build| build.provision());
        let downloaded =
            provisioned && self.phase("DOWNLOAD_SOURCE", |build| build.download_source());
        if downloaded {
            self.restore_cache(deadline);
            self.run_phases(deadline);
        }
        self.phase("FINALIZING", |build| build.finalize());
        let status = self.final_status();
        self.record.build_status = status;
        let now = jiff::Timestamp::now();
        self.record.phases.push(PhaseRecord {
            phase_type: "COMPLETED".to_owned(),
            phase_status: None,
            start_time: record_time(now),
            end_time: None,
            duration_in_seconds: None,
            contexts: Vec::new(),
        });
        self.record.current_phase = "COMPLETED".to_owned();
        self.record.end_time = Some(record_time(now));
        self.record.build_complete = true;
        self.log.line(format!(
            "Build completed: {} {}",
            self.record.id,
            status.as_str()
        ));
        watchdog.store(true, Ordering::SeqCst);
        self.keep_log(live);
        self.record.secret_mask = self.log.secret_mask();
        self.write_record();
        self.drop_log_stream();
        self.log.flush();
    }

    fn final_status(&self) -> Status {
        let worst = |status: Status| {
            self.record
                .phases
                .iter()
                .any(|p| p.phase_status == Some(status))
        };
        if let Some(status) = self.control.interruption() {
            status
        } else if worst(Status::Fault) {
            Status::Fault
        } else if self.failed {
            Status::Failed
        } else {
            Status::Succeeded
        }
    }

    /// INSTALL through UPLOAD_ARTIFACTS, with CodeBuild's rules for what follows a failure.
    fn run_phases(&mut self, deadline: Instant) {
        let buildspec = &self.request.buildspec;
        let phases = buildspec.phases_in_order();
        let mut build_ran = false;
        for (name, phase) in phases {
            if self.control.interruption().is_some() {
                return;
            }
            let ok = self.phase(name, |build| {
                if name == "INSTALL"
                    && let Err(end) = build.install_runtimes(phase)
                {
                    return end;
                }
                if build.shells.is_none()
                    && let Err(end) = build.start_shells(deadline)
                {
                    return end;
                }
                let end = match phase {
                    Some(phase) => build.run_phase_commands(name, phase),
                    None => PhaseEnd::ok(),
                };
                build.stop_jobs(end)
            });
            if self.control.interruption().is_some() {
                return;
            }
            let on_failure = phase.map(|p| &p.on_failure);
            if !ok && !matches!(on_failure, Some(OnFailure::Continue)) {
                match name {
                    // A failed install or pre_build skips to FINALIZING.
                    "INSTALL" | "PRE_BUILD" => return,
                    // POST_BUILD runs after a failed BUILD; artifacts are still attempted.
                    _ => {}
                }
            }
            build_ran |= name == "BUILD";
        }
        if build_ran {
            self.save_cache();
        }
        if build_ran {
            self.phase("UPLOAD_ARTIFACTS", |build| {
                build.make_reports();
                build.upload_artifacts()
            });
        }
    }

    /// Records a phase that does nothing that can fail.
    fn simple_phase(
        &mut self,
        name: &str,
        start: jiff::Timestamp,
        body: impl FnOnce(&mut Self) -> PhaseEnd,
    ) -> bool {
        self.phase_at(name, start, body)
    }

    /// Runs a phase: log lines, timing, status and context in the record.
    fn phase(&mut self, name: &str, body: impl FnOnce(&mut Self) -> PhaseEnd) -> bool {
        self.phase_at(name, jiff::Timestamp::now(), body)
    }

    fn phase_at(
        &mut self,
        name: &str,
        start: jiff::Timestamp,
        body: impl FnOnce(&mut Self) -> PhaseEnd,
    ) -> bool {
        self.record.current_phase = name.to_owned();
        if name != "SUBMITTED" {
            self.log.line(format!("Entering phase {name}"));
        }
        self.keep_progress();
        let started = Instant::now();
        let mut end = body(self);
        if let Some(status) = self.control.interruption()
            && end.status != Status::Fault
            && name != "FINALIZING"
        {
            let message = match status {
                Status::TimedOut => format!(
                    "Build timed out after {} minutes",
                    self.record.timeout_in_minutes
                ),
                _ => "Build was stopped".to_owned(),
            };
            end = PhaseEnd::failed(status, status.as_str(), message);
        }
        let finished = jiff::Timestamp::now();
        if end.status != Status::Succeeded {
            self.failed = true;
            if end.status == Status::Failed
                && let Some(shells) = &mut self.shells
            {
                shells.export("CODEBUILD_BUILD_SUCCEEDING", "0");
            }
        }
        if name != "SUBMITTED" {
            self.log.line(format!(
                "Phase complete: {name} State: {}",
                end.status.as_str()
            ));
            let (code, message) = end
                .context
                .as_ref()
                .map(|c| (c.status_code.as_str(), c.message.as_str()))
                .unwrap_or(("", ""));
            self.log.line(format!(
                "Phase context status code: {code} Message: {message}"
            ));
        }
        self.record.phases.push(PhaseRecord {
            phase_type: name.to_owned(),
            phase_status: Some(end.status),
            start_time: record_time(start),
            end_time: Some(record_time(finished)),
            duration_in_seconds: Some(started.elapsed().as_secs()),
            contexts: end.context.into_iter().collect(),
        });
        end.status == Status::Succeeded
    }

    /// PROVISIONING: the image, the environment and the secrets.
    fn provision(&mut self) -> PhaseEnd {
        let request = self.request;
        let buildspec = &request.buildspec;
        if let Some(user) = &buildspec.run_as {
            self.log.line(format!(
                "Warning: run-as {user} is accepted but ignored: the sandbox has one user"
            ));
        }
        if buildspec.proxy.is_some() {
            self.log
                .line("Warning: proxy settings are ignored: the sandbox has no network");
        }
        if buildspec.env.git_credential_helper {
            self.log
                .line("Warning: git-credential-helper is ignored: the sandbox has no network");
        }
        let image = match Image::open(&self.services.runtimes, &request.image, Path::new("")) {
            Ok(image) => image,
            Err(e) => return PhaseEnd::failed(Status::Failed, "CLIENT_ERROR", e.to_string()),
        };
        self.image = Some(image);

        let mut described = Vec::new();
        let mut env = EnvBuilder::default();
        for (key, value) in &buildspec.env.variables {
            env.set(key, value.clone());
            described.push(EnvironmentVariable {
                name: key.clone(),
                value: value.clone(),
                kind: "PLAINTEXT",
            });
        }
        for (key, parameter) in &buildspec.env.parameter_store {
            match request.secrets.parameter(parameter) {
                Ok(value) => {
                    self.log.add_secret(key, &value);
                    env.set(key, value);
                }
                Err(e) => {
                    return PhaseEnd::failed(Status::Failed, "PARAMETER_STORE_ERROR", e.0);
                }
            }
            described.push(EnvironmentVariable {
                name: key.clone(),
                value: parameter.clone(),
                kind: "PARAMETER_STORE",
            });
        }
        for (key, reference) in &buildspec.env.secrets_manager {
            match request.secrets.secret(reference) {
                Ok(value) => {
                    self.log.add_secret(key, &value);
                    env.set(key, value);
                }
                Err(e) => {
                    return PhaseEnd::failed(Status::Failed, "SECRETS_MANAGER_ERROR", e.0);
                }
            }
            described.push(EnvironmentVariable {
                name: key.clone(),
                value: reference.clone(),
                kind: "SECRETS_MANAGER",
            });
        }
        for (key, value) in &request.user_env {
            env.set(key, value.clone());
            described.retain(|v| v.name != *key);
            described.push(EnvironmentVariable {
                name: key.clone(),
                value: value.clone(),
                kind: "PLAINTEXT",
            });
        }
        if let Some(region) = &request.region {
            env.set("AWS_REGION", region.clone());
            env.set("AWS_DEFAULT_REGION", region.clone());
        }
        // CodeBuild's own variables cannot be overridden.
        let start_ms = jiff::Timestamp::now().as_millisecond();
        let fixed = [
            ("CODEBUILD_BUILD_ID", self.record.id.clone()),
            ("CODEBUILD_BUILD_ARN", self.record.arn.clone()),
            ("CODEBUILD_BUILD_NUMBER", request.build_number.to_string()),
            ("CODEBUILD_SRC_DIR", SRC_DIR.to_owned()),
            ("CODEBUILD_START_TIME", start_ms.to_string()),
            ("CODEBUILD_BUILD_IMAGE", request.image.clone()),
            ("CODEBUILD_INITIATOR", request.initiator.clone()),
            ("CODEBUILD_BUILD_SUCCEEDING", "1".to_owned()),
            ("HOME", HOME_DIR.to_owned()),
        ];
        for (key, value) in fixed {
            env.set(key, value);
        }
        if let Some(epoch) = request.source_date_epoch {
            env.set("SOURCE_DATE_EPOCH", epoch.to_string());
            env.set("TZ", "UTC".to_owned());
            env.set("LANG", "C.UTF-8".to_owned());
        }
        if let Some(commit) = &self.record.resolved_source_version {
            env.set("CODEBUILD_RESOLVED_SOURCE_VERSION", commit.clone());
            env.set("CODEBUILD_SOURCE_VERSION", commit.clone());
        }
        self.env = env.finish();
        self.record.environment.environment_variables = described;

        match workspace::Workspace::create(request.work_parent.as_deref()) {
            Ok(ws) => self.workspace = Some(ws),
            Err(e) => {
                return PhaseEnd::failed(
                    Status::Fault,
                    "CLIENT_ERROR",
                    format!("cannot create the workspace: {e}"),
                );
            }
        }
        PhaseEnd::ok()
    }

    /// DOWNLOAD_SOURCE: the source directory copied into the workspace.
    fn download_source(&mut self) -> PhaseEnd {
        let Some(ws) = &self.workspace else {
            return PhaseEnd::failed(Status::Fault, "CLIENT_ERROR", "no workspace");
        };
        let skip = vec![ws.root().to_owned(), self.request.out_dir.clone()];
        let started = Instant::now();
        match workspace::copy_tree(
            &self.request.src_dir,
            &ws.src,
            &skip,
            self.request.copy_order,
        ) {
            Ok(stats) => {
                self.seed_material.push(stats.listing_digest.clone());
                self.log.line(format!(
                    "Copied the source: {} files, {} bytes in {:.0} ms",
                    stats.files,
                    stats.bytes,
                    started.elapsed().as_secs_f64() * 1000.0
                ));
                self.log.line(format!("CODEBUILD_SRC_DIR={SRC_DIR}"));
                self.log.line(format!(
                    "YAML location is {SRC_DIR}/{}",
                    self.request.buildspec_name
                ));
                for warning in &self.request.buildspec.warnings {
                    self.log.line(format!(
                        "Warning: {}:{}:{}: {}",
                        self.request.buildspec_name, warning.line, warning.column, warning.message
                    ));
                }
                PhaseEnd::ok()
            }
            Err(e) => PhaseEnd::failed(
                Status::Fault,
                "CLIENT_ERROR",
                format!("cannot copy the source: {e}"),
            ),
        }
    }

    /// `runtime-versions`: each runtime's bundle joins the image.
    fn install_runtimes(&mut self, phase: Option<&Phase>) -> Result<(), PhaseEnd> {
        let Some(phase) = phase else { return Ok(()) };
        if self.image.is_none() {
            return Err(PhaseEnd::failed(Status::Fault, "CLIENT_ERROR", "no image"));
        }
        for (name, written) in &phase.runtime_versions {
            let request = self.runtime_request(name, written)?;
            let image = self.image.as_mut().expect("checked above");
            match image.add_runtime(&self.services.runtimes, name, &request) {
                Ok(version) => {
                    let asked = if *written == request {
                        request
                    } else {
                        format!("{written}, which is {request}")
                    };
                    self.log.line(format!(
                        "Selected runtime {name} {version} (asked for {asked})"
                    ));
                }
                Err(e) => {
                    return Err(PhaseEnd::failed(
                        Status::Failed,
                        "YAML_FILE_ERROR",
                        e.to_string(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A `runtime-versions` value as the build asks for it: `$NAME`/`${NAME}` expanded from
    /// the build's environment, as CodeBuild does; unset or not a version is the buildspec's
    /// error.
    fn runtime_request(&self, name: &str, written: &str) -> Result<String, PhaseEnd> {
        let Some(variable) = crate::buildspec::runtime_version_variable(written) else {
            return Ok(written.to_owned());
        };
        let failed = |message: String| {
            PhaseEnd::failed(
                Status::Failed,
                "YAML_FILE_ERROR",
                format!("runtime-versions {name}: {message}"),
            )
        };
        let value = self
            .env
            .iter()
            .rev()
            .find(|(key, _)| key == variable)
            .map(|(_, value)| value.trim())
            .ok_or_else(|| failed(format!("{written} is not set in the build's environment")))?;
        crate::buildspec::check_runtime_version(value)
            .map_err(|e| failed(format!("{written} is {value:?}: {e}")))?;
        Ok(value.to_owned())
    }

    /// The seed of a deterministic build's randomness: a digest of its inputs (the
    /// buildspec, the image, the source listing and `SOURCE_DATE_EPOCH`), never of its id.
    fn seed(&self, epoch: u64) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(std::fs::read(&self.request.buildspec_path).unwrap_or_default());
        hasher.update(self.request.image.as_bytes());
        hasher.update(epoch.to_le_bytes());
        for part in &self.seed_material {
            hasher.update(part.as_bytes());
        }
        hasher.finalize().into()
    }

    /// Mounts the image over the workspace and opens the shell(s).
    fn start_shells(&mut self, deadline: Instant) -> Result<(), PhaseEnd> {
        self.shells = Some(self.make_shells(deadline)?);
        Ok(())
    }

    /// Shell(s) over the workspace with the image as it is now.
    pub(super) fn make_shells(&mut self, deadline: Instant) -> Result<Shells, PhaseEnd> {
        let (Some(ws), Some(image)) = (&self.workspace, &self.image) else {
            return Err(PhaseEnd::failed(
                Status::Fault,
                "CLIENT_ERROR",
                "no workspace",
            ));
        };
        let image = Arc::new(image.clone());
        self.record.environment.runtimes = image
            .bundles
            .iter()
            .map(|b| format!("{} {}", b.manifest.name, b.manifest.version))
            .collect();
        let layout = Layout::build(ws.src.clone(), ws.tmp.clone(), ws.home.clone());
        let mut runner = ImageRunner::new(self.services.sandbox.clone(), image.clone(), layout);
        runner.deadline = Some(deadline);
        runner.cancel = Some(self.control.cancel.clone());
        runner.packages = Some(self.python.clone());
        if let Some(epoch) = self.request.source_date_epoch {
            runner.determinism = Some(Determinism {
                source_date_epoch: epoch,
                seed: self.seed(epoch),
            });
        }
        let fs = GuestFs::open(&runner.layout)
            .map_err(|e| PhaseEnd::failed(Status::Fault, "CLIENT_ERROR", e.to_string()))?;
        let mut env = self.env.clone();
        env.retain(|(k, _)| k != "PATH");
        env.push(("PATH".to_owned(), image.guest_path_var()));
        Ok(Shells {
            runner: Arc::new(runner),
            fs,
            env,
            session: None,
            per_command: self.request.buildspec.version == Version::V0_1,
            cancel: self.control.cancel.clone(),
            script_name: self.request.buildspec_name.clone(),
        })
    }

    /// A phase's `commands` (stopping at the first failure), then its `finally`; retried as
    /// `on-failure: RETRY…` says.
    fn run_phase_commands(&mut self, name: &str, phase: &Phase) -> PhaseEnd {
        let (attempts, pattern) = match &phase.on_failure {
            OnFailure::Retry { attempts, pattern } => (*attempts, pattern.as_ref()),
            _ => (0, None),
        };
        let mut attempt = 0;
        loop {
            let mut end = self.run_commands(&phase.commands, &phase.command_lines);
            let finally = self.run_commands(&phase.finally, &phase.finally_lines);
            if end.status == Status::Succeeded {
                end = finally;
            }
            let retry = end.status == Status::Failed
                && attempt < attempts
                && pattern.is_none_or(|re| {
                    end.context
                        .as_ref()
                        .is_some_and(|c| re.is_match(&c.message))
                });
            if !retry {
                return end;
            }
            attempt += 1;
            self.log.line(format!(
                "Retrying phase {name} (retry {attempt} of {attempts})"
            ));
        }
    }

    /// Runs `commands`, each starting on the buildspec line of the same index in `lines`.
    fn run_commands(&mut self, commands: &[String], lines: &[usize]) -> PhaseEnd {
        for (index, command) in commands.iter().enumerate() {
            let line = lines.get(index).copied().unwrap_or(0);
            if self.control.interruption().is_some() {
                return PhaseEnd::ok(); // the caller turns this into STOPPED / TIMED_OUT
            }
            let Some(shells) = &mut self.shells else {
                return PhaseEnd::failed(Status::Fault, "CLIENT_ERROR", "no shell");
            };
            self.log.line(format!("Running command {command}"));
            let status = match shells.run(command, line, &self.log) {
                Ok(status) => status,
                Err(ShellError::Syntax { .. }) | Err(ShellError::Interrupted)
                    if self.control.interruption().is_some() =>
                {
                    return PhaseEnd::ok();
                }
                Err(e @ ShellError::Syntax { .. }) => {
                    let message = e.to_string();
                    self.log.line(&message);
                    2
                }
                Err(ShellError::Interrupted) => return PhaseEnd::ok(),
                Err(ShellError::Host(e)) => {
                    return PhaseEnd::failed(
                        Status::Fault,
                        "CLIENT_ERROR",
                        format!("Error while executing command: {command}. Reason: {e}"),
                    );
                }
            };
            if self.control.interruption().is_some() {
                return PhaseEnd::ok();
            }
            if status != 0 {
                self.log.line(format!(
                    "Command did not exit successfully {command} exit status {status}"
                ));
                // `finally` and later phases already see the failure.
                shells.export("CODEBUILD_BUILD_SUCCEEDING", "0");
                return PhaseEnd::failed(
                    Status::Failed,
                    "COMMAND_EXECUTION_ERROR",
                    format!(
                        "Error while executing command: {command}. Reason: exit status {status}"
                    ),
                );
            }
        }
        PhaseEnd::ok()
    }

    /// The end of a phase's commands: the shell's background jobs get a grace period, then
    /// are stopped; a session that went over its process limit fails the phase.
    fn stop_jobs(&mut self, end: PhaseEnd) -> PhaseEnd {
        let Some(session) = self.shells.as_mut().and_then(|s| s.session.as_mut()) else {
            return end;
        };
        let report = session.stop_jobs();
        if self.control.interruption().is_some() {
            // Stopping the jobs may have lowered the flag for a moment: the build's stop stays.
            self.control.cancel.store(true, Ordering::SeqCst);
        }
        if report.stopped > 0 {
            self.log.line(format!(
                "Stopped {} background job(s) still running at the end of the phase",
                report.stopped
            ));
        }
        match report.error {
            Some(message) if end.status == Status::Succeeded => {
                self.log.line(&message);
                PhaseEnd::failed(Status::Failed, "COMMAND_EXECUTION_ERROR", message)
            }
            _ => end,
        }
    }

    /// UPLOAD_ARTIFACTS: every artifact set exported to the artifacts directory.
    fn upload_artifacts(&mut self) -> PhaseEnd {
        let Some(spec) = self.request.buildspec.artifacts.clone() else {
            return PhaseEnd::ok();
        };
        let Some(src) = self.workspace.as_ref().map(|ws| ws.src.clone()) else {
            return PhaseEnd::failed(Status::Fault, "CLIENT_ERROR", "no workspace");
        };
        let mut sets: Vec<(String, Artifacts)> = vec![("primary".to_owned(), spec.clone())];
        sets.extend(spec.secondary.iter().cloned());
        let mut end = PhaseEnd::ok();
        for (identifier, set) in sets {
            if set.files.is_empty() && identifier == "primary" && !spec.secondary.is_empty() {
                continue; // only secondary artifacts
            }
            let dir_name = match &set.name {
                Some(name) => match self.shells.as_mut().map(|s| s.expand(name)) {
                    Some(Ok(expanded)) => expanded,
                    Some(Err(e)) => {
                        end = PhaseEnd::failed(Status::Failed, "CLIENT_ERROR", e);
                        continue;
                    }
                    None => name.clone(),
                },
                None => identifier.clone(),
            };
            // A name made from a secret would write the secret as a directory name.
            if let Err(message) =
                self.refuse_secret_name(&format!("artifact set {identifier}: the name"), &dir_name)
            {
                end = PhaseEnd::failed(Status::Failed, "CLIENT_ERROR", message);
                continue;
            }
            self.log.line(format!(
                "Expanding base directory path: {}",
                set.base_directory.as_deref().unwrap_or(".")
            ));
            match artifacts::export(
                &src,
                &set,
                &identifier,
                &dir_name,
                &self.request.out_dir,
                self.request.zip,
            ) {
                Ok(exported) => {
                    // A file the guest named after a secret is not exported: the set is
                    // removed again and the upload fails, naming the variable.
                    let secret_path = exported.files.iter().find_map(|f| {
                        self.refuse_secret_name(
                            &format!("artifact set {identifier}: a file path"),
                            &f.path,
                        )
                        .err()
                    });
                    if let Some(message) = secret_path {
                        let _ = std::fs::remove_dir_all(&exported.location);
                        let _ = std::fs::remove_file(format!("{}.zip", exported.location));
                        end = PhaseEnd::failed(Status::Failed, "CLIENT_ERROR", message);
                        continue;
                    }
                    for warning in &exported.warnings {
                        self.log.line(format!("Warning: {warning}"));
                    }
                    self.log.line(format!(
                        "Found {} file(s); artifact set {identifier} written to {}",
                        exported.files.len(),
                        exported.location
                    ));
                    self.keep_artifact_set(&identifier, Path::new(&exported.location));
                    if identifier == "primary" {
                        self.record.artifacts = Some(exported);
                    } else {
                        self.record.secondary_artifacts.push(exported);
                    }
                }
                Err(artifacts::ArtifactError::Client(message)) => {
                    end = PhaseEnd::failed(Status::Failed, "CLIENT_ERROR", message);
                }
                Err(artifacts::ArtifactError::Io(message)) => {
                    end = PhaseEnd::failed(Status::Fault, "CLIENT_ERROR", message);
                }
            }
        }
        end
    }

    /// FINALIZING: exported variables collected (secret values masked), the workspace
    /// let go.
    fn finalize(&mut self) -> PhaseEnd {
        let mask = self.log.secret_mask();
        if let Some(shells) = &self.shells {
            for name in &self.request.buildspec.env.exported_variables {
                if let Some(value) = shells.var(name) {
                    self.record.exported_environment_variables.push(NameValue {
                        name: name.clone(),
                        value: mask.mask_str(&value),
                    });
                }
            }
        }
        self.shells = None;
        self.workspace = None;
        let packages = self.python.used();
        let failures = self.python.failures();
        if !packages.is_empty() || !failures.is_empty() || self.python.lock_name.is_some() {
            self.record.python = Some(PythonRecord {
                packages,
                lock: self.python.lock_name.clone(),
                offline: self.python.offline,
                failures,
            });
        }
        PhaseEnd::ok()
    }

    /// Refuses `text`, a name the build is about to use for a file, directory or store
    /// reference, when it holds a secret's value: the error names the variable, never the
    /// value, and is logged.
    pub(super) fn refuse_secret_name(&self, what: &str, text: &str) -> Result<(), String> {
        match self.log.secret_mask().find(text) {
            None => Ok(()),
            Some(variable) => {
                let message = format!(
                    "{what} holds the value of secret variable {variable}: refused, a secret \
                     never names a file, directory or store reference"
                );
                self.log.line(format!("Error: {message}"));
                Err(message)
            }
        }
    }

    fn write_record(&self) {
        let path = self.request.out_dir.join("build.json");
        // Masked: secret values never reach build.json.
        let bytes = self.record.to_json_pretty().into_bytes();
        let result = (|| {
            let mut file = tempfile::NamedTempFile::new_in(&self.request.out_dir)?;
            std::io::Write::write_all(&mut file, &bytes)?;
            file.persist(&path).map_err(|e| e.error)?;
            Ok::<(), std::io::Error>(())
        })();
        if let Err(e) = result {
            self.log
                .line(format!("Warning: cannot write {}: {e}", path.display()));
        }
        self.keep_record();
    }
}

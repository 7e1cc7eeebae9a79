//! The build lifecycle, as CodeBuild runs it: SUBMITTED, PROVISIONING, DOWNLOAD_SOURCE,
//! INSTALL, PRE_BUILD, BUILD, POST_BUILD, UPLOAD_ARTIFACTS, FINALIZING, COMPLETED. A build
//! takes a parsed buildspec and a source directory, copies the source into a private
//! workspace, restores the buildspec cache ([`cache`]), runs every command through one shell
//! session (version 0.2) or one per command (0.1), saves the cache, exports the artifacts
//! (also kept in the store, as is the record), and ends with a [`BuildRecord`] and its log.

pub mod artifacts;
pub mod cache;
pub mod env;
pub mod git;
pub mod keep;
pub mod log;
mod phases;
pub mod record;
pub mod reports;
pub mod verify;
pub mod workspace;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::buildspec::Buildspec;
use crate::runtime::Runtimes;
use crate::sandbox::Sandbox;

pub use env::{EnvError, Secrets, parse_env_file};
pub use log::BuildLog;
pub use record::{BuildRecord, Status};

use record::{Environment, Logs, StoreRecord, record_time};

use crate::python::pip::PythonPackages;

/// Everything a build is asked to do.
pub struct BuildRequest {
    /// The user's source directory (never written).
    pub src_dir: PathBuf,
    pub buildspec: Buildspec,
    /// The buildspec's path as the user named it, for the log and the record.
    pub buildspec_name: String,
    /// The buildspec's host path.
    pub buildspec_path: PathBuf,
    pub image: String,
    /// `-e` and `--env-file` variables: they win over the buildspec's.
    pub user_env: Vec<(String, String)>,
    pub secrets: Secrets,
    pub timeout: Duration,
    /// Where the artifact sets, `build.json` and `build.log` go.
    pub out_dir: PathBuf,
    pub zip: bool,
    pub project: String,
    pub build_number: u64,
    pub initiator: String,
    pub region: Option<String>,
    /// Where workspaces are made (the system's temporary directory if `None`).
    pub work_parent: Option<PathBuf>,
    /// Reproducible mode: virtual time from this `SOURCE_DATE_EPOCH`, seeded randomness.
    pub source_date_epoch: Option<u64>,
    /// The order in which the source copy creates files (`verify` perturbs it).
    pub copy_order: workspace::CopyOrder,
    /// Whether the buildspec's cache is restored and saved (`verify` keeps its two builds
    /// independent by turning it off).
    pub use_cache: bool,
    /// How pip commands get their packages.
    pub python: PythonOptions,
}

/// How the build's pip commands get their packages.
#[derive(Debug, Clone, Default)]
pub struct PythonOptions {
    /// From the store only: no index is asked.
    pub offline: bool,
    /// The pins of the build's lock (`wasmbuild.lock` beside the buildspec).
    pub locked: Vec<crate::python::Pin>,
    /// The lock's name as the user sees it.
    pub lock_name: Option<String>,
}

/// What a build runs with.
pub struct BuildServices {
    pub runtimes: Runtimes,
    pub sandbox: Arc<Sandbox>,
}

/// Stops a running build from another thread (Ctrl-C) and tells why it stopped.
#[derive(Clone, Default)]
pub struct BuildControl {
    cancel: Arc<AtomicBool>,
    reason: Arc<AtomicU8>,
    /// The build's deadline, once it runs: a guest stopped by it may return before the
    /// watchdog wakes, and the build must still end TIMED_OUT, not FAILED.
    deadline: Arc<Mutex<Option<Instant>>>,
}

const REASON_NONE: u8 = 0;
const REASON_STOPPED: u8 = 1;
const REASON_TIMED_OUT: u8 = 2;

impl BuildControl {
    /// Interrupts the running guest and ends the build as STOPPED.
    pub fn stop(&self) {
        let _ = self.reason.compare_exchange(
            REASON_NONE,
            REASON_STOPPED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.cancel.store(true, Ordering::SeqCst);
    }

    fn time_out(&self) {
        let _ = self.reason.compare_exchange(
            REASON_NONE,
            REASON_TIMED_OUT,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Whether [`BuildControl::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.reason.load(Ordering::SeqCst) == REASON_STOPPED
    }

    /// The status the build must end with because it was interrupted, if it was.
    fn interruption(&self) -> Option<Status> {
        let deadline = *self.deadline.lock().unwrap_or_else(|e| e.into_inner());
        if deadline.is_some_and(|d| Instant::now() >= d) {
            self.time_out();
        }
        match self.reason.load(Ordering::SeqCst) {
            REASON_STOPPED => Some(Status::Stopped),
            REASON_TIMED_OUT => Some(Status::TimedOut),
            _ => None,
        }
    }
}
/// Runs the build to its end and returns its record (also written as `build.json`).
pub fn run(
    request: &BuildRequest,
    services: &BuildServices,
    log: BuildLog,
    control: BuildControl,
) -> BuildRecord {
    let start = jiff::Timestamp::now();
    let id = format!("{}:{}", request.project, uuid::Uuid::new_v4());
    let region = request.region.clone().unwrap_or_else(|| "local".to_owned());
    let record = BuildRecord {
        arn: format!("arn:aws:codebuild:{region}:000000000000:build/{id}"),
        id,
        build_number: request.build_number,
        project_name: request.project.clone(),
        start_time: record_time(start),
        end_time: None,
        current_phase: "SUBMITTED".to_owned(),
        build_status: Status::InProgress,
        build_complete: false,
        initiator: request.initiator.clone(),
        timeout_in_minutes: request.timeout.as_secs().div_ceil(60),
        resolved_source_version: git::head(&request.src_dir),
        source: request.src_dir.to_string_lossy().into_owned(),
        buildspec: request.buildspec_name.clone(),
        environment: Environment {
            kind: "WASI_CONTAINER",
            image: request.image.clone(),
            runtimes: Vec::new(),
            environment_variables: Vec::new(),
        },
        phases: Vec::new(),
        artifacts: None,
        secondary_artifacts: Vec::new(),
        reports: Vec::new(),
        exported_environment_variables: Vec::new(),
        logs: Logs {
            location: request
                .out_dir
                .join("build.log")
                .to_string_lossy()
                .into_owned(),
        },
        cache: None,
        store: Some(StoreRecord {
            location: services.runtimes.store().spec(),
            record: keep::record_ref(&request.project, request.build_number),
            artifacts: Vec::new(),
            reports: Vec::new(),
            log: None,
        }),
        python: None,
        secret_mask: Default::default(),
    };
    let mut python = PythonPackages::new(services.runtimes.store().clone(), request.python.offline);
    python.locked = request.python.locked.clone();
    python.lock_name = request.python.lock_name.clone();
    phases::run(
        request,
        services,
        log,
        control,
        record,
        Arc::new(python),
        start,
    )
}

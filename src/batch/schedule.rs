//! Running a batch's builds: each starts as soon as the builds it depends on succeeded,
//! at most `jobs` at a time, through a [`Launcher`] — the one seam between the batch logic
//! and whatever runs a build (here: this machine; later, a cluster scheduler). With
//! `fast-fail`, the first build that fails (without `ignore-failure`) stops the running
//! ones and no other starts; a build whose dependency failed never starts.

use std::collections::HashMap;
use std::sync::mpsc;

use super::plan::Job;
use crate::lifecycle::{BuildControl, Status};

/// How one build of the batch ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    /// `project:uuid` and the ARN, when the build got that far.
    pub build_id: Option<String>,
    pub build_arn: Option<String>,
    pub build_number: Option<u64>,
    /// Where its record, log and artifacts are.
    pub out_dir: Option<std::path::PathBuf>,
    /// Why it could not start or ran badly, besides its status.
    pub message: Option<String>,
    pub started: Option<String>,
    pub ended: Option<String>,
    /// The build's report summaries (merged by report group for the batch).
    pub reports: Vec<crate::reports::Report>,
    /// The artifact sets it kept in the store: set identifier → tree reference.
    pub artifact_sets: Vec<(String, String)>,
}

impl Outcome {
    /// A build that never ran: `status` and why.
    pub fn not_run(status: Status, message: String) -> Outcome {
        Outcome {
            status,
            build_id: None,
            build_arn: None,
            build_number: None,
            out_dir: None,
            message: Some(message),
            started: None,
            ended: None,
            reports: Vec::new(),
            artifact_sets: Vec::new(),
        }
    }
}

/// Starts a build of the batch and tells how it ended. Called on a thread of its own per
/// build; `control` stops the build (fast-fail, Ctrl-C).
pub trait Launcher: Sync {
    fn run(&self, job: &Job, control: &BuildControl) -> Outcome;
}

/// A build of the batch that never started, and why.
pub const NOT_STARTED: &str = "NOT_STARTED";

/// What became of each job, in the jobs' order (`None`: never started).
pub fn run_all(
    jobs: &[Job],
    launcher: &dyn Launcher,
    parallel: usize,
    fast_fail: bool,
    stop_all: &BuildControl,
) -> Vec<Option<Outcome>> {
    let parallel = parallel.max(1);
    let index: HashMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.identifier.as_str(), i))
        .collect();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
    // 0 waiting, 1 running, 2 done, 3 will not start.
    let mut state = vec![0u8; jobs.len()];
    let controls: Vec<BuildControl> = jobs.iter().map(|_| BuildControl::default()).collect();
    let mut halted = false;
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<(usize, Outcome)>();
        let mut running = 0usize;
        loop {
            if stop_all.is_stopped() && !halted {
                halted = true;
                controls.iter().for_each(BuildControl::stop);
            }
            // Jobs whose dependencies failed (or will not run) will not start either.
            let mut changed = true;
            while changed {
                changed = false;
                for i in 0..jobs.len() {
                    if state[i] != 0 {
                        continue;
                    }
                    let blocked = jobs[i].depend_on.iter().any(|d| {
                        let d = index[d.as_str()];
                        state[d] == 3
                            || (state[d] == 2
                                && outcomes[d]
                                    .as_ref()
                                    .is_some_and(|o| o.status != Status::Succeeded))
                    });
                    if blocked || halted {
                        state[i] = 3;
                        changed = true;
                    }
                }
            }
            // Start what is ready, in the order written.
            for i in 0..jobs.len() {
                if running >= parallel {
                    break;
                }
                let ready = state[i] == 0
                    && jobs[i]
                        .depend_on
                        .iter()
                        .all(|d| state[index[d.as_str()]] == 2);
                if ready {
                    state[i] = 1;
                    running += 1;
                    let tx = done_tx.clone();
                    let job = &jobs[i];
                    let control = &controls[i];
                    scope.spawn(move || {
                        let outcome = launcher.run(job, control);
                        let _ = tx.send((i, outcome));
                    });
                }
            }
            if running == 0 {
                break;
            }
            // Wake at least every 200 ms to see a Ctrl-C.
            let Ok((i, outcome)) = done_rx.recv_timeout(std::time::Duration::from_millis(200))
            else {
                continue;
            };
            running -= 1;
            state[i] = 2;
            let failed = outcome.status != Status::Succeeded && !jobs[i].ignore_failure;
            outcomes[i] = Some(outcome);
            if failed && fast_fail && !halted {
                halted = true;
                for (j, control) in controls.iter().enumerate() {
                    if state[j] == 1 {
                        control.stop();
                    }
                }
            }
        }
    });
    outcomes
}

/// The batch's status from its builds': FAILED when a build that counts (no
/// `ignore-failure`) did not succeed or never started, STOPPED when stopped.
pub fn batch_status(jobs: &[Job], outcomes: &[Option<Outcome>], stopped: bool) -> Status {
    if stopped {
        return Status::Stopped;
    }
    let failed = jobs.iter().zip(outcomes).any(|(job, outcome)| {
        !job.ignore_failure
            && outcome
                .as_ref()
                .is_none_or(|o| o.status != Status::Succeeded)
    });
    if failed {
        Status::Failed
    } else {
        Status::Succeeded
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use super::*;

    /// Records when each build ran; `fail` fails, `slow` takes 300 ms unless stopped.
    struct Fake {
        log: Mutex<Vec<(String, Instant, Instant)>>,
    }

    impl Launcher for Fake {
        fn run(&self, job: &Job, control: &BuildControl) -> Outcome {
            let start = Instant::now();
            let mut status = if job.identifier.starts_with("fail") {
                Status::Failed
            } else {
                Status::Succeeded
            };
            let wait = if job.identifier.starts_with("slow") {
                300
            } else {
                30
            };
            while start.elapsed() < Duration::from_millis(wait) {
                if control.is_stopped() {
                    status = Status::Stopped;
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            self.log
                .lock()
                .unwrap()
                .push((job.identifier.clone(), start, Instant::now()));
            Outcome {
                message: None,
                ..Outcome::not_run(status, String::new())
            }
        }
    }

    fn job(id: &str, deps: &[&str]) -> Job {
        let b = crate::buildspec::Buildspec::parse(
            &format!(
                "version: 0.2\nbatch:\n  build-graph:\n    - identifier: {id}\n      depend-on: [{}]\n{}",
                deps.join(", "),
                deps.iter()
                    .map(|d| format!("    - identifier: {d}\n"))
                    .collect::<String>()
            ),
            "b",
        )
        .unwrap();
        super::super::plan::plan(b.batch.as_ref().unwrap())
            .unwrap()
            .remove(0)
    }

    #[test]
    fn dependencies_first_then_in_parallel() {
        let jobs = vec![
            job("a", &[]),
            job("b", &[]),
            job("c", &["a", "b"]),
            job("d", &["c"]),
        ];
        let fake = Fake {
            log: Mutex::default(),
        };
        let outcomes = run_all(&jobs, &fake, 2, false, &BuildControl::default());
        assert!(
            outcomes
                .iter()
                .all(|o| o.as_ref().unwrap().status == Status::Succeeded)
        );
        let log = fake.log.lock().unwrap();
        let at = |id: &str| log.iter().find(|(i, _, _)| i == id).unwrap().clone();
        assert!(at("c").1 >= at("a").2 && at("c").1 >= at("b").2);
        assert!(at("d").1 >= at("c").2);
        // a and b overlapped.
        assert!(at("b").1 < at("a").2 && at("a").1 < at("b").2);
        assert_eq!(batch_status(&jobs, &outcomes, false), Status::Succeeded);
    }

    #[test]
    fn a_failed_dependency_blocks_and_fast_fail_stops_the_rest() {
        let jobs = vec![
            job("fail1", &[]),
            job("after", &["fail1"]),
            job("slow1", &[]),
        ];
        let fake = Fake {
            log: Mutex::default(),
        };
        let outcomes = run_all(&jobs, &fake, 3, true, &BuildControl::default());
        assert_eq!(outcomes[0].as_ref().unwrap().status, Status::Failed);
        assert!(outcomes[1].is_none(), "never started");
        assert_eq!(outcomes[2].as_ref().unwrap().status, Status::Stopped);
        assert_eq!(batch_status(&jobs, &outcomes, false), Status::Failed);

        // Without fast-fail the independent build finishes.
        let outcomes = run_all(&jobs, &fake, 3, false, &BuildControl::default());
        assert_eq!(outcomes[2].as_ref().unwrap().status, Status::Succeeded);
        let mut ignored = jobs.clone();
        ignored[0].ignore_failure = true;
        ignored[1].ignore_failure = true;
        assert_eq!(batch_status(&ignored, &outcomes, false), Status::Succeeded);
    }
}

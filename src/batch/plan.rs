//! The builds of a batch, as CodeBuild's `StartBuildBatch` expands the `batch` section:
//! `build-list` and `build-graph` tasks as written, the `build-matrix` cross product
//! (every `buildspec` × `image` × `compute-type` × `fleet` × value of each variable, the
//! `static` settings under each), and `build-fanout`'s shards of the batch's own buildspec.

use crate::buildspec::{Batch, BatchEnv, BatchTask};

/// Most builds one batch may expand to (CodeBuild's own quota is 100).
pub const MAX_BATCH_BUILDS: usize = 1000;

/// One build of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// `CODEBUILD_BATCH_BUILD_IDENTIFIER`.
    pub identifier: String,
    /// Another buildspec (a path in the source); the batch's own when `None`.
    pub buildspec: Option<String>,
    /// Variables added to the build's environment (before `-e`).
    pub variables: Vec<(String, String)>,
    pub image: Option<String>,
    pub compute_type: Option<String>,
    /// Identifiers of the builds that must succeed before this one starts.
    pub depend_on: Vec<String>,
    pub ignore_failure: bool,
    /// Settings accepted that mean nothing on one machine (fleet, type, privileged mode,
    /// debug session), as `key=value`, for the record.
    pub accepted: Vec<String>,
    /// For a fanout shard: its number (0-based) and the shard count.
    pub shard: Option<(u32, u32)>,
}

impl Job {
    fn new(identifier: String) -> Job {
        Job {
            identifier,
            buildspec: None,
            variables: Vec::new(),
            image: None,
            compute_type: None,
            depend_on: Vec::new(),
            ignore_failure: false,
            accepted: Vec::new(),
            shard: None,
        }
    }

    fn apply_env(&mut self, env: &BatchEnv) {
        for (key, value) in &env.variables {
            self.variables.retain(|(k, _)| k != key);
            self.variables.push((key.clone(), value.clone()));
        }
        if let Some(image) = &env.image {
            self.set_image(image);
        }
        if env.compute_type.is_some() {
            self.compute_type.clone_from(&env.compute_type);
        }
        let accepted = [
            ("type", env.environment_type.clone()),
            ("fleet", env.fleet.clone()),
            (
                "privileged-mode",
                env.privileged_mode.map(|p| p.to_string()),
            ),
        ];
        for (key, value) in accepted {
            if let Some(value) = value {
                self.accepted.push(format!("{key}={value}"));
            }
        }
    }
}

impl Job {
    /// A wasmbuild image (`python:3.12`) is the build's image; a container image
    /// (`aws/codebuild/standard:7.0`, an ECR URI) is accepted and the build runs with the
    /// batch's image, as the record says.
    fn set_image(&mut self, image: &str) {
        if crate::image::ImageSpec::parse(image).is_ok() {
            self.image = Some(image.to_owned());
        } else {
            self.image = None;
            self.accepted.push(format!(
                "image={image} (a container image: the build runs with the batch's image)"
            ));
        }
    }
}

fn task_job(task: &BatchTask) -> Job {
    let mut job = Job::new(task.identifier.clone());
    job.buildspec.clone_from(&task.buildspec);
    if let Some(env) = &task.env {
        job.apply_env(env);
    }
    job.depend_on.clone_from(&task.depend_on);
    job.ignore_failure = task.ignore_failure;
    if task.debug_session {
        job.accepted.push("debug-session=true".into());
    }
    job
}

/// The builds of `batch`, in the order they are written (dependencies are not reordered;
/// the runner starts each when its dependencies succeeded).
pub fn plan(batch: &Batch) -> Result<Vec<Job>, String> {
    let jobs = if let Some(tasks) = batch.build_graph.as_ref().or(batch.build_list.as_ref()) {
        if tasks.is_empty() {
            return Err("the batch has no builds: the task list is empty".into());
        }
        tasks.iter().map(task_job).collect()
    } else if let Some(matrix) = &batch.build_matrix {
        matrix_jobs(matrix)?
    } else if let Some(fanout) = &batch.build_fanout {
        let shards = fanout.parallelism.unwrap_or(1);
        (0..shards)
            .map(|i| {
                let mut job = Job::new(format!("build_fanout_{}", i + 1));
                job.ignore_failure = fanout.ignore_failure;
                job.shard = Some((i, shards));
                job
            })
            .collect()
    } else {
        return Err(
            "`batch` names no builds: expected build-list, build-graph, build-matrix or build-fanout"
                .into(),
        );
    };
    if jobs.len() > MAX_BATCH_BUILDS {
        return Err(format!(
            "the batch expands to {} builds, over the limit of {MAX_BATCH_BUILDS} (MAX_BATCH_BUILDS)",
            jobs.len()
        ));
    }
    Ok(jobs)
}

fn matrix_jobs(matrix: &crate::buildspec::BuildMatrix) -> Result<Vec<Job>, String> {
    let dynamic = matrix.dynamic.clone().unwrap_or_default();
    let env = dynamic.env.clone().unwrap_or_default();
    // Each dimension: the values it takes, or one "unset" when the matrix does not vary it.
    let or_unset = |values: &[String]| -> Vec<Option<String>> {
        if values.is_empty() {
            vec![None]
        } else {
            values.iter().cloned().map(Some).collect()
        }
    };
    let mut dimensions: Vec<(&str, Vec<Option<String>>)> = vec![
        ("buildspec", or_unset(&dynamic.buildspec)),
        ("image", or_unset(&env.image)),
        ("compute-type", or_unset(&env.compute_type)),
        ("fleet", or_unset(&env.fleet)),
    ];
    for (name, values) in &env.variables {
        if values.is_empty() {
            return Err(format!(
                "build-matrix variable {name} has no values: the matrix would be empty"
            ));
        }
        dimensions.push((name.as_str(), or_unset(values)));
    }
    if dimensions.iter().all(|(_, values)| values == &[None]) {
        return Err("build-matrix has no dynamic values: the matrix is empty".into());
    }
    let count: usize = dimensions.iter().map(|(_, v)| v.len()).product();
    if count > MAX_BATCH_BUILDS {
        return Err(format!(
            "the build matrix has {count} combinations, over the limit of {MAX_BATCH_BUILDS} \
             (MAX_BATCH_BUILDS)"
        ));
    }
    let mut jobs = Vec::with_capacity(count);
    for n in 0..count {
        let mut job = Job::new(format!("build_matrix_{}", n + 1));
        if let Some(settings) = &matrix.static_settings {
            job.ignore_failure = settings.ignore_failure;
            if let Some(env) = &settings.env {
                job.apply_env(env);
            }
        }
        // Mixed-radix digits of n, the last dimension varying fastest.
        let mut rest = n;
        let mut picks = vec![None; dimensions.len()];
        for (i, (_, values)) in dimensions.iter().enumerate().rev() {
            picks[i] = values[rest % values.len()].clone();
            rest /= values.len();
        }
        for ((name, _), pick) in dimensions.iter().zip(picks) {
            let Some(value) = pick else { continue };
            match *name {
                "buildspec" => job.buildspec = Some(value),
                "image" => job.set_image(&value),
                "compute-type" => job.compute_type = Some(value),
                "fleet" => job.accepted.push(format!("fleet={value}")),
                variable => {
                    job.variables.retain(|(k, _)| k != variable);
                    job.variables.push((variable.to_owned(), value));
                }
            }
        }
        jobs.push(job);
    }
    Ok(jobs)
}

/// The memory limit (MiB) a CodeBuild compute type stands for, when it names one.
pub fn compute_type_memory_mib(compute_type: &str) -> Option<u64> {
    Some(match compute_type {
        "BUILD_GENERAL1_SMALL" => 3 * 1024,
        "BUILD_GENERAL1_MEDIUM" => 7 * 1024,
        "BUILD_GENERAL1_LARGE" => 15 * 1024,
        "BUILD_GENERAL1_XLARGE" => 70 * 1024,
        "BUILD_GENERAL1_2XLARGE" => 145 * 1024,
        "BUILD_LAMBDA_1GB" => 1024,
        "BUILD_LAMBDA_2GB" => 2 * 1024,
        "BUILD_LAMBDA_4GB" => 4 * 1024,
        "BUILD_LAMBDA_8GB" => 8 * 1024,
        "BUILD_LAMBDA_10GB" => 10 * 1024,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildspec::Buildspec;

    fn jobs(batch: &str) -> Result<Vec<Job>, String> {
        let b = Buildspec::parse(&format!("version: 0.2\nbatch:\n{batch}"), "b.yml").unwrap();
        plan(b.batch.as_ref().unwrap())
    }

    #[test]
    fn a_matrix_is_the_full_cross_product() {
        let jobs = jobs(
            "  build-matrix:\n    static:\n      ignore-failure: yes\n      env:\n        variables: {S: s}\n    dynamic:\n      buildspec: [a.yml, b.yml]\n      env:\n        variables:\n          V: [1, 2, 3]\n",
        )
        .unwrap();
        assert_eq!(jobs.len(), 6);
        let combos: Vec<(Option<&str>, &str)> = jobs
            .iter()
            .map(|j| {
                (
                    j.buildspec.as_deref(),
                    j.variables
                        .iter()
                        .find(|(k, _)| k == "V")
                        .unwrap()
                        .1
                        .as_str(),
                )
            })
            .collect();
        assert_eq!(
            combos,
            [
                (Some("a.yml"), "1"),
                (Some("a.yml"), "2"),
                (Some("a.yml"), "3"),
                (Some("b.yml"), "1"),
                (Some("b.yml"), "2"),
                (Some("b.yml"), "3"),
            ]
        );
        assert!(jobs.iter().all(|j| j.ignore_failure));
        assert!(
            jobs.iter()
                .all(|j| j.variables.contains(&("S".into(), "s".into())))
        );
        assert_eq!(jobs[5].identifier, "build_matrix_6");
    }

    #[test]
    fn empty_batches_are_refused() {
        assert!(
            jobs("  build-matrix:\n    dynamic: {}\n")
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            jobs(
                "  build-matrix:\n    dynamic:\n      env:\n        variables:\n          V: []\n"
            )
            .unwrap_err()
            .contains("no values")
        );
        assert!(jobs("  build-list: []\n").unwrap_err().contains("empty"));
        assert!(
            jobs("  fast-fail: no\n")
                .unwrap_err()
                .contains("names no builds")
        );
    }

    #[test]
    fn tasks_keep_their_settings_and_fanout_makes_shards() {
        let jobs = jobs(
            "  build-graph:\n    - identifier: a\n      env:\n        fleet: f\n        compute-type: BUILD_GENERAL1_SMALL\n        variables: {X: 1}\n    - identifier: b\n      depend-on: [a]\n      ignore-failure: yes\n",
        )
        .unwrap();
        assert_eq!(jobs[0].accepted, ["fleet=f"]);
        assert_eq!(
            jobs[0].compute_type.as_deref(),
            Some("BUILD_GENERAL1_SMALL")
        );
        assert_eq!(jobs[1].depend_on, ["a"]);
        assert!(jobs[1].ignore_failure);
        let fanout =
            super::super::plan::tests::jobs("  build-fanout:\n    parallelism: 3\n").unwrap();
        assert_eq!(fanout.len(), 3);
        assert_eq!(fanout[2].shard, Some((2, 3)));
        assert_eq!(compute_type_memory_mib("BUILD_GENERAL1_SMALL"), Some(3072));
        // A container image (AWS's own batch buildspecs name ECR and CodeBuild images).
        let jobs = super::super::plan::tests::jobs(
            "  build-list:\n    - identifier: a\n      env:\n        image: aws/codebuild/standard:7.0\n    - identifier: b\n      env:\n        image: python:3.12\n",
        )
        .unwrap();
        assert_eq!(jobs[0].image, None);
        assert!(
            jobs[0].accepted[0].contains("a container image"),
            "{:?}",
            jobs[0].accepted
        );
        assert_eq!(jobs[1].image.as_deref(), Some("python:3.12"));
    }
}

//! Batch builds end to end (`wasmbuild run --batch`, automatic for a batch-only
//! buildspec): a graph runs dependencies first and the rest in parallel, a matrix is the
//! full cross product, ignore-failure and fast-fail do what CodeBuild does, bad batches
//! are refused before anything runs, and concurrent builds share one store safely.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

struct Batch {
    status: i32,
    stdout: String,
    stderr: String,
    out: tempfile::TempDir,
}

impl Batch {
    fn record(&self) -> Value {
        let text = std::fs::read_to_string(self.out.path().join("build-batch.json"))
            .unwrap_or_else(|e| panic!("{e}\n{}\n{}", self.stdout, self.stderr));
        serde_json::from_str(&text).unwrap()
    }

    fn build(&self, identifier: &str) -> Value {
        let text =
            std::fs::read_to_string(self.out.path().join(identifier).join("build.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn group<'a>(record: &'a Value, identifier: &str) -> &'a Value {
        record["buildGroups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["identifier"] == identifier)
            .unwrap_or_else(|| panic!("no group {identifier}: {record:#}"))
    }
}

fn run_batch(src: &Path, args: &[&str]) -> Batch {
    common::ensure_bundle("base");
    let out = tempfile::tempdir().unwrap();
    let output = common::wasmbuild()
        .arg("run")
        .arg(src)
        .arg("-a")
        .arg(out.path())
        .args(args)
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .unwrap();
    Batch {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        out,
    }
}

#[test]
fn a_build_graph_runs_dependencies_first_and_the_rest_in_parallel() {
    let batch = run_batch(&fixture("batch-graph"), &["--jobs", "2"]);
    assert_eq!(batch.status, 0, "{}\n{}", batch.stdout, batch.stderr);
    let record = batch.record();
    assert_eq!(record["buildBatchStatus"], "SUCCEEDED");
    assert_eq!(record["buildBatchConfig"]["parallelBuilds"], 2);
    let times = |id: &str| {
        let build = batch.build(id);
        (
            build["startTime"].as_str().unwrap().to_owned(),
            build["endTime"].as_str().unwrap().to_owned(),
        )
    };
    // test waits for compile; package for test and lint.
    assert!(times("test").0 >= times("compile").1);
    assert!(times("package").0 >= times("test").1);
    assert!(times("package").0 >= times("lint").1);
    let mut numbers = Vec::new();
    for id in ["compile", "lint", "test", "package"] {
        let group = Batch::group(&record, id);
        assert_eq!(
            group["currentBuildSummary"]["buildStatus"], "SUCCEEDED",
            "{id}"
        );
        numbers.push(
            group["currentBuildSummary"]["buildNumber"]
                .as_u64()
                .unwrap(),
        );
        // Every line of its log is prefixed with its identifier.
        assert!(
            batch.stdout.contains(&format!("[{id}] [Container]")),
            "{id}"
        );
    }
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 4, "each build has its own number");
    assert_eq!(
        Batch::group(&record, "package")["dependsOn"],
        serde_json::json!(["test", "lint"])
    );
    assert!(
        batch.stdout.contains("[lint] lint, strict=1"),
        "{}",
        batch.stdout
    );
    let app =
        std::fs::read_to_string(batch.out.path().join("compile/primary/out/app.txt")).unwrap();
    assert_eq!(app, "compiled by compile\n");
}

#[test]
fn a_build_matrix_runs_the_full_cross_product() {
    let batch = run_batch(&fixture("batch-matrix"), &[]);
    assert_eq!(batch.status, 0, "{}\n{}", batch.stdout, batch.stderr);
    let mut seen: Vec<String> = batch
        .stdout
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest))
        .filter(|l| l.contains(" matrix shard "))
        .map(str::to_owned)
        .collect();
    seen.sort();
    let mut expected = Vec::new();
    for (n, (suite, shard)) in ["unit", "integration"]
        .iter()
        .flat_map(|s| ["a", "b", "c"].map(move |x| (*s, x)))
        .enumerate()
    {
        expected.push(format!(
            "{suite} matrix shard {shard} (build_matrix_{})",
            n + 1
        ));
    }
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(batch.record()["buildGroups"].as_array().unwrap().len(), 6);
}

#[test]
fn ignore_failure_forgives_and_fast_fail_stops_the_rest() {
    let batch = run_batch(&fixture("batch-list"), &["--batch"]);
    assert_eq!(batch.status, 0, "{}\n{}", batch.stdout, batch.stderr);
    let record = batch.record();
    assert_eq!(
        Batch::group(&record, "flaky")["currentBuildSummary"]["buildStatus"],
        "FAILED"
    );
    assert!(
        batch
            .stdout
            .contains("[release] build release with MODE=release")
    );
    // The same buildspec without --batch is one ordinary build.
    let single = run_batch(&fixture("batch-list"), &[]);
    assert_eq!(single.status, 0);
    assert!(!single.out.path().join("build-batch.json").exists());

    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - if [ \"$ROLE\" = bad ]; then exit 1; fi\n      - sleep 20\nbatch:\n  fast-fail: true\n  build-graph:\n    - identifier: slow\n      env: {variables: {ROLE: slow}}\n    - identifier: bad\n      env: {variables: {ROLE: bad}}\n    - identifier: later\n      depend-on: [bad]\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let batch = run_batch(src.path(), &["--batch", "--jobs", "2"]);
    assert_eq!(batch.status, 1, "{}\n{}", batch.stdout, batch.stderr);
    assert!(
        started.elapsed().as_secs() < 15,
        "fast-fail stopped the slow build"
    );
    let record = batch.record();
    assert_eq!(record["buildBatchStatus"], "FAILED");
    assert_eq!(
        Batch::group(&record, "slow")["currentBuildSummary"]["buildStatus"],
        "STOPPED"
    );
    assert!(Batch::group(&record, "later")["currentBuildSummary"].is_null());
}

#[test]
fn a_bad_batch_is_refused_before_anything_runs() {
    for (batch, needle) in [
        (
            "  build-graph:\n    - identifier: a\n      depend-on: [b]\n    - identifier: b\n      depend-on: [a]\n",
            "cycle",
        ),
        (
            "  build-graph:\n    - identifier: a\n      depend-on: [nobody]\n",
            "nobody",
        ),
        (
            "  build-matrix:\n    dynamic: {}\n",
            "buildspec.yml:3:3: batch: build-matrix has no dynamic values",
        ),
        (
            "  build-list:\n    - identifier: a\n      buildspec: ci/missing.yml\n",
            "buildspec.yml:5:18: batch build a: buildspec ci/missing.yml does not exist",
        ),
    ] {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(
            src.path().join("buildspec.yml"),
            format!("version: 0.2\nbatch:\n{batch}"),
        )
        .unwrap();
        let run = run_batch(src.path(), &[]);
        assert_eq!(run.status, 2, "{batch}: {}", run.stderr);
        assert!(run.stderr.contains("buildspec.yml"), "{}", run.stderr);
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
        assert!(!run.out.path().join("build-batch.json").exists());
    }
}

#[test]
fn eight_concurrent_builds_share_one_store_without_lost_or_torn_writes() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p deps out\n      - for i in $(seq 1 50); do echo \"dependency $i\" > deps/file$i.txt; done\n      - echo \"artifact of $N\" > out/result.txt\ncache:\n  key: shared-by-all-eight\n  paths:\n    - deps/**/*\nartifacts:\n  files:\n    - out/result.txt\nbatch:\n  build-matrix:\n    dynamic:\n      env:\n        variables:\n          N: [1, 2, 3, 4, 5, 6, 7, 8]\n",
    )
    .unwrap();
    let batch = run_batch(src.path(), &["--batch", "--jobs", "8"]);
    assert_eq!(batch.status, 0, "{}\n{}", batch.stdout, batch.stderr);
    for n in 1..=8 {
        let result = std::fs::read_to_string(
            batch
                .out
                .path()
                .join(format!("build_matrix_{n}/primary/out/result.txt")),
        )
        .unwrap();
        assert_eq!(result, format!("artifact of {n}\n"));
    }
    // Nothing the eight builds named is missing or corrupt in the store (the store is the
    // test suite's, shared with tests that damage objects on purpose: only this batch's
    // objects and references are looked at).
    let project = src
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let verify = common::wasmbuild()
        .args(["store", "verify"])
        .output()
        .unwrap();
    let problems = String::from_utf8_lossy(&verify.stdout).into_owned();
    for n in 1..=8 {
        let build = batch.build(&format!("build_matrix_{n}"));
        for file in build["artifacts"]["files"].as_array().unwrap() {
            let digest = file["sha256"].as_str().unwrap();
            assert!(!problems.contains(digest), "{digest}: {problems}");
        }
        let record = build["store"]["record"].as_str().unwrap();
        assert!(!problems.contains(record), "{record}: {problems}");
    }
    let encoded = wasmbuild::lifecycle::cache::encode_ref_part(&project);
    assert!(!problems.contains(&encoded), "{problems}");
    // The cache all eight saved under one key restores whole.
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - for i in $(seq 1 50); do grep -qx \"dependency $i\" deps/file$i.txt; done\ncache:\n  key: shared-by-all-eight\n  paths:\n    - deps/**/*\n",
    )
    .unwrap();
    let check = run_batch(src.path(), &[]);
    assert_eq!(check.status, 0, "{}\n{}", check.stdout, check.stderr);
    assert!(
        check
            .stdout
            .contains("Restoring cache from key shared-by-all-eight: 50 files"),
        "{}",
        check.stdout
    );
}

#[test]
fn a_fanout_splits_a_real_test_suite_and_merges_its_reports() {
    common::ensure_bundle("python:3.12");
    let buildspec = fixture("batch-fanout/buildspec.yml");
    let batch = run_batch(
        &fixture("python-project"),
        &["--batch", "-b", buildspec.to_str().unwrap()],
    );
    assert_eq!(batch.status, 0, "{}\n{}", batch.stdout, batch.stderr);
    let record = batch.record();
    let mut shard_totals = Vec::new();
    for n in 1..=3 {
        let build = batch.build(&format!("build_fanout_{n}"));
        let total = build["reports"][0]["testSummary"]["total"]
            .as_u64()
            .unwrap();
        assert!(total > 0 && total < 35, "shard {n} ran {total}");
        shard_totals.push(total);
    }
    // Every test of the suite ran once, and the batch's report says so.
    assert_eq!(shard_totals.iter().sum::<u64>(), 35);
    let merged = &record["reports"][0];
    assert_eq!(merged["testSummary"]["total"], 35, "{record:#}");
    assert_eq!(merged["testSummary"]["statusCounts"]["SUCCEEDED"], 35);
    assert_eq!(merged["files"].as_array().unwrap().len(), 3);
    assert!(
        batch.stdout.contains("codebuild-tests-run: shard 2 of 3"),
        "{}",
        batch.stdout
    );
}

#[test]
fn combine_artifacts_gathers_every_builds_sets_and_the_batch_timeout_stops_it() {
    let batch = run_batch(&fixture("batch-graph"), &["--combine-artifacts"]);
    assert_eq!(batch.status, 0, "{}\n{}", batch.stdout, batch.stderr);
    let combined = batch.out.path().join("combined");
    assert_eq!(
        std::fs::read_to_string(combined.join("compile/primary/out/app.txt")).unwrap(),
        "compiled by compile\n"
    );
    assert_eq!(
        std::fs::read_to_string(combined.join("package/primary/dist/package.txt")).unwrap(),
        "packaged\n"
    );
    assert_eq!(batch.record()["buildBatchConfig"]["combineArtifacts"], true);

    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nbatch:\n  build-list:\n    - identifier: long\n      buildspec: long.yml\n",
    )
    .unwrap();
    std::fs::write(
        src.path().join("long.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 30\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let batch = run_batch(src.path(), &["--batch-timeout", "0.02"]);
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    assert_eq!(batch.status, 4, "{}\n{}", batch.stdout, batch.stderr);
    assert_eq!(batch.record()["buildBatchStatus"], "TIMED_OUT");
}

//! The buildspec model through its public API: a buildspec that uses every key parses to
//! the expected model, and each kind of bad input is refused with its exact line and
//! column and a message naming the key or the problem.

use wasmbuild::buildspec::*;

/// Parses text that must be refused; returns line, column and message, and checks the
/// display form leads with `file:line:column: `.
fn refused(text: &str) -> (usize, usize, String) {
    let error = Buildspec::parse(text, "dir/buildspec.yml").expect_err("must be refused");
    let shown = error.to_string();
    match error {
        BuildspecError::Invalid {
            file,
            line,
            column,
            message,
        } => {
            assert_eq!(file, "dir/buildspec.yml");
            assert_eq!(
                shown,
                format!("dir/buildspec.yml:{line}:{column}: {message}")
            );
            (line, column, message)
        }
        other => panic!("not an Invalid error: {other}"),
    }
}

/// Asserts `text` is refused at `line`:`column` with a message containing every `needle`.
fn assert_refused(text: &str, line: usize, column: usize, needles: &[&str]) {
    let (l, c, message) = refused(text);
    assert_eq!((l, c), (line, column), "{message}");
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
}

/// Parses text that must be accepted with a warning at `line`:`column` whose message
/// contains every `needle`; returns the buildspec.
fn assert_warned(text: &str, line: usize, column: usize, needles: &[&str]) -> Buildspec {
    let b = Buildspec::parse(text, "dir/buildspec.yml").expect("accepted");
    let warning = b
        .warnings
        .iter()
        .find(|w| (w.line, w.column) == (line, column))
        .unwrap_or_else(|| panic!("no warning at {line}:{column}: {:?}", b.warnings));
    assert_eq!(warning.file, "dir/buildspec.yml");
    assert!(
        warning
            .to_string()
            .starts_with(&format!("dir/buildspec.yml:{line}:{column}: warning: ")),
        "{warning}"
    );
    for needle in needles {
        assert!(
            warning.message.contains(needle),
            "{needle:?} not in {warning}"
        );
    }
    b
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const FULL: &str = r#"version: 0.2
run-as: builder
env:
  shell: bash
  variables:
    JAVA_HOME: "/usr/lib/jvm/java-17"
    RETRIES: 3
    VERBOSE: yes
    RATIO: 1.50
    EMPTY: ""
  parameter-store:
    DB_PASSWORD: /app/db/password
  secrets-manager:
    TOKEN: prod/api:token
  exported-variables:
    - ARTIFACT_VERSION
  git-credential-helper: yes
proxy:
  upload-artifacts: yes
  logs: false
phases:
  install:
    run-as: root
    on-failure: CONTINUE
    runtime-versions:
      python: 3.10
      nodejs: 18
    commands:
      - pip install -r requirements.txt
    finally:
      - echo install done
  pre_build:
    on-failure: RETRY-2-timed out
    commands:
      - 42
      - true
      - |
        if [ -f x ]; then
          echo x
        fi
  build:
    on-failure: ABORT
    commands:
      - make all
  post_build:
    commands:
artifacts:
  files:
    - target/**/*
  name: app-$(date +%Y)
  discard-paths: no
  base-directory: out
  exclude-paths:
    - "**/*.tmp"
  enable-symlinks: yes
  s3-prefix: builds
  secondary-artifacts:
    docs:
      files:
        - docs/*.md
      discard-paths: yes
    logs:
      files: [logs/*]
      base-directory: build
cache:
  key: deps-$(codebuild-hash-files requirements.txt)
  fallback-keys:
    - deps-
  action: restore
  paths:
    - /root/.cache/pip/**/*
reports:
  unit-tests:
    files:
      - "**/*.xml"
    base-directory: reports
    discard-paths: yes
  coverage:
    files: [coverage.xml]
    file-format: COBERTURAXML
batch:
  fast-fail: true
  build-graph:
    - identifier: build1
      env:
        type: LINUX_CONTAINER
        compute-type: BUILD_GENERAL1_SMALL
        fleet: my-fleet
        image: aws/codebuild/standard:7.0
        privileged-mode: no
        variables:
          BUILD_ID: build1
      ignore-failure: false
    - identifier: build2
      buildspec: build2.yml
      depend-on:
        - build1
      debug-session: yes
"#;

#[test]
fn a_buildspec_using_every_key_parses_to_the_expected_model() {
    let parsed = Buildspec::parse(FULL, "buildspec.yml").unwrap();
    let expected = Buildspec {
        version: Version::V0_2,
        run_as: Some("builder".into()),
        env: Env {
            shell: Some("bash".into()),
            variables: pairs(&[
                ("JAVA_HOME", "/usr/lib/jvm/java-17"),
                ("RETRIES", "3"),
                ("VERBOSE", "yes"),
                ("RATIO", "1.50"),
                ("EMPTY", ""),
            ]),
            parameter_store: pairs(&[("DB_PASSWORD", "/app/db/password")]),
            secrets_manager: pairs(&[("TOKEN", "prod/api:token")]),
            exported_variables: strings(&["ARTIFACT_VERSION"]),
            git_credential_helper: true,
        },
        proxy: Some(Proxy {
            upload_artifacts: true,
            logs: false,
        }),
        phases: Some(Phases {
            install: Some(Phase {
                run_as: Some("root".into()),
                on_failure: OnFailure::Continue,
                runtime_versions: pairs(&[("python", "3.10"), ("nodejs", "18")]),
                commands: strings(&["pip install -r requirements.txt"]),
                finally: strings(&["echo install done"]),
                command_lines: vec![29],
                finally_lines: vec![31],
            }),
            pre_build: Some(Phase {
                on_failure: OnFailure::Retry {
                    attempts: 2,
                    pattern: Some(regex::Regex::new("timed out").unwrap()),
                },
                commands: strings(&["42", "true", "if [ -f x ]; then\n  echo x\nfi\n"]),
                command_lines: vec![35, 36, 38],
                ..Phase::default()
            }),
            build: Some(Phase {
                commands: strings(&["make all"]),
                command_lines: vec![44],
                ..Phase::default()
            }),
            post_build: Some(Phase::default()),
        }),
        artifacts: Some(Artifacts {
            files: strings(&["target/**/*"]),
            name: Some("app-$(date +%Y)".into()),
            discard_paths: false,
            base_directory: Some("out".into()),
            exclude_paths: strings(&["**/*.tmp"]),
            enable_symlinks: true,
            s3_prefix: Some("builds".into()),
            secondary: vec![
                (
                    "docs".into(),
                    Artifacts {
                        files: strings(&["docs/*.md"]),
                        discard_paths: true,
                        ..Artifacts::default()
                    },
                ),
                (
                    "logs".into(),
                    Artifacts {
                        files: strings(&["logs/*"]),
                        base_directory: Some("build".into()),
                        ..Artifacts::default()
                    },
                ),
            ],
        }),
        cache: Some(Cache {
            key: Some("deps-$(codebuild-hash-files requirements.txt)".into()),
            fallback_keys: strings(&["deps-"]),
            action: CacheAction::Restore,
            paths: strings(&["/root/.cache/pip/**/*"]),
        }),
        reports: vec![
            (
                "unit-tests".into(),
                Report {
                    files: strings(&["**/*.xml"]),
                    base_directory: Some("reports".into()),
                    discard_paths: true,
                    file_format: "JUNITXML".into(),
                },
            ),
            (
                "coverage".into(),
                Report {
                    files: strings(&["coverage.xml"]),
                    base_directory: None,
                    discard_paths: false,
                    file_format: "COBERTURAXML".into(),
                },
            ),
        ],
        batch: Some(Batch {
            fast_fail: true,
            build_graph: Some(vec![
                BatchTask {
                    identifier: "build1".into(),
                    env: Some(BatchEnv {
                        environment_type: Some("LINUX_CONTAINER".into()),
                        compute_type: Some("BUILD_GENERAL1_SMALL".into()),
                        fleet: Some("my-fleet".into()),
                        image: Some("aws/codebuild/standard:7.0".into()),
                        privileged_mode: Some(false),
                        variables: pairs(&[("BUILD_ID", "build1")]),
                    }),
                    ..BatchTask::default()
                },
                BatchTask {
                    identifier: "build2".into(),
                    buildspec: Some("build2.yml".into()),
                    depend_on: strings(&["build1"]),
                    debug_session: true,
                    ..BatchTask::default()
                },
            ]),
            ..Batch::default()
        }),
        warnings: Vec::new(),
    };
    assert_eq!(parsed, expected);
    // Spot checks that do not lean on PartialEq.
    let Some(OnFailure::Retry { pattern, .. }) = parsed
        .phases
        .as_ref()
        .unwrap()
        .pre_build
        .as_ref()
        .map(|p| &p.on_failure)
    else {
        panic!("pre_build retries");
    };
    assert!(pattern.as_ref().unwrap().is_match("connection timed out"));
    assert_eq!(
        parsed.phases_in_order()[2].1.unwrap().commands,
        ["make all"]
    );
}

#[test]
fn a_minimal_buildspec_takes_the_defaults() {
    let b = Buildspec::parse(
        "version: 0.1\nphases:\n  build:\n    commands:\n      - make\n",
        "b",
    )
    .unwrap();
    assert_eq!(b.version, Version::V0_1);
    assert_eq!(b.env, Env::default());
    assert!(!b.env.git_credential_helper);
    assert!(b.proxy.is_none() && b.artifacts.is_none() && b.cache.is_none() && b.batch.is_none());
    assert!(b.reports.is_empty());
    let build = b.phases.as_ref().unwrap().build.as_ref().unwrap();
    assert_eq!(build.on_failure, OnFailure::Abort);
    assert!(build.runtime_versions.is_empty() && build.finally.is_empty());
    let names: Vec<&str> = b.phases_in_order().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"]);
    assert!(b.phases_in_order()[0].1.is_none());
}

#[test]
fn bare_retry_means_three_attempts_without_a_pattern() {
    let b = Buildspec::parse(
        "version: 0.2\nphases:\n  build:\n    on-failure: RETRY\n",
        "b",
    )
    .unwrap();
    assert_eq!(
        b.phases.clone().unwrap().build.unwrap().on_failure,
        OnFailure::Retry {
            attempts: 3,
            pattern: None
        }
    );
    let b = Buildspec::parse(
        "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-7\n",
        "b",
    )
    .unwrap();
    assert_eq!(
        b.phases.clone().unwrap().build.unwrap().on_failure,
        OnFailure::Retry {
            attempts: 7,
            pattern: None
        }
    );
}

#[test]
fn cache_action_defaults_to_both_and_reports_to_junit() {
    let b = Buildspec::parse(
        "version: 0.2\nphases: {}\ncache:\n  paths: [a]\nreports:\n  r:\n    files: [x.xml]\n",
        "b",
    )
    .unwrap();
    assert_eq!(b.cache.unwrap().action, CacheAction::Both);
    assert_eq!(b.reports[0].1.file_format, "JUNITXML");
    let b = Buildspec::parse("version: 0.2\nphases: {}\ncache:\n  action: save\n", "b").unwrap();
    assert_eq!(b.cache.unwrap().action, CacheAction::Save);
}

#[test]
fn the_other_batch_kinds_parse() {
    let list = Buildspec::parse(
        "version: 0.2\nphases: {}\nbatch:\n  build-list:\n    - identifier: a\n      ignore-failure: yes\n    - identifier: b\n      buildspec: b.yml\n",
        "b",
    )
    .unwrap()
    .batch
    .unwrap();
    let tasks = list.build_list.unwrap();
    assert_eq!(tasks.len(), 2);
    assert!(tasks[0].ignore_failure && tasks[0].depend_on.is_empty());
    assert_eq!(tasks[1].buildspec.as_deref(), Some("b.yml"));
    assert!(list.build_graph.is_none() && !list.fast_fail);

    let matrix = Buildspec::parse(
        r#"version: 0.2
phases: {}
batch:
  build-matrix:
    static:
      ignore-failure: yes
      env:
        privileged-mode: true
    dynamic:
      buildspec:
        - a.yml
        - b.yml
      env:
        compute-type: [BUILD_GENERAL1_SMALL]
        fleet: [fleet-a, fleet-b]
        image:
          - aws/codebuild/standard:7.0
        variables:
          PY: [3.10, 3.12]
          MODE: [fast]
"#,
        "b",
    )
    .unwrap()
    .batch
    .unwrap()
    .build_matrix
    .unwrap();
    assert_eq!(
        matrix.static_settings,
        Some(MatrixStatic {
            ignore_failure: true,
            env: Some(BatchEnv {
                privileged_mode: Some(true),
                ..BatchEnv::default()
            }),
        })
    );
    let dynamic = matrix.dynamic.unwrap();
    assert_eq!(dynamic.buildspec, ["a.yml", "b.yml"]);
    let env = dynamic.env.unwrap();
    assert_eq!(env.compute_type, ["BUILD_GENERAL1_SMALL"]);
    assert_eq!(env.fleet, ["fleet-a", "fleet-b"]);
    assert_eq!(env.image, ["aws/codebuild/standard:7.0"]);
    assert_eq!(
        env.variables,
        vec![
            ("PY".to_owned(), strings(&["3.10", "3.12"])),
            ("MODE".to_owned(), strings(&["fast"]))
        ]
    );

    let fanout = Buildspec::parse(
        "version: 0.2\nphases: {}\nbatch:\n  build-fanout:\n    parallelism: 5\n    ignore-failure: false\n",
        "b",
    )
    .unwrap()
    .batch
    .unwrap()
    .build_fanout
    .unwrap();
    assert_eq!(
        fanout,
        BuildFanout {
            parallelism: Some(5),
            ignore_failure: false
        }
    );
}

#[test]
fn empty_phase_bodies_and_empty_lists_are_empty() {
    let b = Buildspec::parse(
        "version: 0.2\nphases:\n  install:\n  build:\n    commands:\n    finally: ~\n",
        "b",
    )
    .unwrap();
    assert_eq!(b.phases.clone().unwrap().install, Some(Phase::default()));
    assert_eq!(b.phases.clone().unwrap().build, Some(Phase::default()));
    assert_eq!(b.phases.clone().unwrap().pre_build, None);
}

// ---- refusals: exact line and column, and a message naming the key or problem ----

#[test]
fn an_unknown_top_level_key_is_a_warning() {
    assert_warned(
        "version: 0.2\nfoo: 1\nphases: {}\n",
        2,
        1,
        &["unknown key `foo` at the top level", "ignored"],
    );
}

#[test]
fn an_unknown_key_in_a_phase_is_a_warning_with_the_nearest_key() {
    let b = assert_warned(
        "version: 0.2\n\nphases:\n  build:\n    commands:\n      - echo hi\n    comands:\n      - echo typo\n",
        7,
        5,
        &["`comands` in `phases.build`", "did you mean `commands`?"],
    );
    assert_eq!(b.phases.unwrap().build.unwrap().commands, ["echo hi"]);
}

#[test]
fn unknown_keys_deeper_down_are_warnings() {
    assert_warned(
        "version: 0.2\nphases: {}\nartifacts:\n  secondary-artifacts:\n    a:\n      files: [x]\n      secondary-artifacts: {}\n",
        7,
        7,
        &["`secondary-artifacts` in `artifacts.secondary-artifacts.a`"],
    );
    assert_warned(
        "version: 0.2\nenv:\n  variable:\n    A: 1\nphases: {}\n",
        3,
        3,
        &["`variable` in `env`", "did you mean `variables`?"],
    );
    let b = assert_warned(
        "version: 0.2\nphases:\n  compile:\n    commands: [a]\n",
        3,
        3,
        &["`compile` in `phases`"],
    );
    assert_eq!(b.phases, Some(Phases::default()));
    assert_warned(
        "version: 0.2\nphases: {}\nbatch:\n  build-list:\n    - identifier: a\n      depend-on: [b]\n",
        6,
        7,
        &["`depend-on` in `batch.build-list[0]`"],
    );
}

#[test]
fn wrong_types() {
    assert_refused(
        "version: 0.2\nenv:\n  variables: [a, b]\nphases: {}\n",
        3,
        14,
        &[
            "env.variables",
            "invalid type: sequence",
            "expected a mapping",
        ],
    );
    assert_refused(
        "version: 0.2\nenv:\n  variables:\n    A: {x: 1}\nphases: {}\n",
        4,
        8,
        &["env.variables.A", "invalid type: map"],
    );
    assert_refused(
        "version: 0.2\nphases:\n  - build\n",
        3,
        3,
        &["phases", "invalid type: sequence"],
    );
    assert_refused(
        "version: 0.2\nproxy:\n  logs: maybe\nphases: {}\n",
        3,
        9,
        &["proxy.logs", "invalid boolean `maybe`"],
    );
    assert_refused(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - [a, b]\n",
        5,
        9,
        &["phases.build.commands", "invalid type: sequence"],
    );
}

#[test]
fn commands_must_be_a_list() {
    assert_refused(
        "version: 0.2\nphases:\n  build:\n    commands: echo hi\n",
        4,
        15,
        &[
            "phases.build.commands",
            "\"echo hi\"",
            "expected a sequence",
        ],
    );
    assert_refused(
        "version: 0.2\nphases:\n  build:\n    finally: echo bye\n",
        4,
        14,
        &["phases.build.finally", "expected a sequence"],
    );
}

#[test]
fn a_missing_version() {
    assert_refused(
        "phases:\n  build:\n    commands: [a]\n",
        1,
        1,
        &["missing field `version`"],
    );
}

#[test]
fn a_missing_phases() {
    assert_refused("version: 0.2\n", 1, 1, &["missing field `phases`"]);
}

#[test]
fn a_bad_version() {
    assert_refused(
        "version: 0.3\nphases: {}\n",
        1,
        10,
        &["version", "unsupported buildspec version `0.3`"],
    );
    assert_refused(
        "version: \"1.0\"\nphases: {}\n",
        1,
        10,
        &["unsupported buildspec version `1.0`"],
    );
    assert_refused(
        "version: [0.2]\nphases: {}\n",
        1,
        10,
        &["version", "invalid type: sequence"],
    );
}

#[test]
fn a_bad_on_failure() {
    assert_refused(
        "version: 0.2\nphases:\n  build:\n    on-failure: SOMETIMES\n    commands: [a]\n",
        4,
        17,
        &[
            "phases.build.on-failure",
            "invalid on-failure `SOMETIMES`",
            "RETRY-count-regex",
        ],
    );
    assert_refused(
        "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-0\n",
        4,
        17,
        &["retry count must be 1 to 100"],
    );
}

#[test]
fn a_bad_retry_regex() {
    assert_refused(
        "version: 0.2\nphases:\n  install:\n    commands: [a]\n  post_build:\n    on-failure: RETRY-2-(unclosed\n",
        6,
        17,
        &[
            "phases.post_build.on-failure",
            "bad regex `(unclosed`",
            "unclosed group",
        ],
    );
}

#[test]
fn runtime_versions_outside_install() {
    assert_refused(
        "version: 0.2\nphases:\n  build:\n    commands: [a]\n    runtime-versions:\n      python: 3.12\n",
        5,
        5,
        &[
            "phases.build",
            "`runtime-versions` is only allowed in the install phase",
        ],
    );
    assert_refused(
        "version: 0.2\nphases:\n  pre_build:\n    runtime-versions:\n      python: 3.12\n",
        4,
        5,
        &["phases.pre_build", "runtime-versions"],
    );
}

#[test]
fn a_bad_env_shell() {
    assert_refused(
        "version: 0.2\nenv:\n  shell: zsh\nphases: {}\n",
        3,
        10,
        &["env.shell", "unsupported shell `zsh`", "bash or /bin/sh"],
    );
    assert_eq!(
        Buildspec::parse("version: 0.2\nenv:\n  shell: /bin/sh\nphases: {}\n", "b")
            .unwrap()
            .env
            .shell
            .as_deref(),
        Some("/bin/sh")
    );
}

#[test]
fn bad_yaml_syntax() {
    assert_refused(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - a\n     - b\n",
        6,
        6,
        &["did not find expected key"],
    );
    assert_refused(
        "version: 0.2\nphases:\n  build:\n    commands: [a\n",
        5,
        1,
        &["did not find expected ',' or ']'"],
    );
    assert_refused(
        "version: 0.2\nphases:\n\tbuild: {}\n",
        3,
        1,
        &["cannot start any token"],
    );
}

#[test]
fn an_empty_file() {
    assert_refused("", 1, 1, &["empty buildspec"]);
    assert_refused("# only a comment\n", 1, 1, &["empty buildspec"]);
}

#[test]
fn repeated_keys() {
    // A variable written twice takes the last value, as CodeBuild reads it.
    let b = assert_warned(
        "version: 0.2\nenv:\n  variables:\n    A: 1\n    B: 2\n    A: 3\nphases: {}\n",
        6,
        5,
        &[
            "`A` is repeated in `env.variables` (first at line 4)",
            "last value",
        ],
    );
    assert_eq!(b.env.variables, pairs(&[("A", "3"), ("B", "2")]));
    assert_refused(
        "version: 0.2\nphases:\n  build:\n    commands: [a]\n    commands: [b]\n",
        5,
        5,
        &["phases.build", "duplicate field `commands`"],
    );
}

#[test]
fn bad_reports() {
    // A format CodeBuild does not know is found when the report is made: a warning here,
    // an INCOMPLETE report then (a real buildspec writes `file-format: PlainText`).
    let b = assert_warned(
        "version: 0.2\nphases: {}\nreports:\n  r:\n    files: [a]\n    file-format: PlainText\n",
        6,
        18,
        &[
            "unknown file-format `PlainText` in `reports.r.file-format`",
            "INCOMPLETE",
            "JUNITXML",
        ],
    );
    assert_eq!(b.reports[0].1.file_format, "PLAINTEXT");
    assert_refused(
        "version: 0.2\nphases: {}\nreports:\n  r:\n    base-directory: x\n",
        5,
        5,
        &["reports.r", "missing field `files`"],
    );
}

#[test]
fn bad_cache_action() {
    assert_refused(
        "version: 0.2\nphases: {}\ncache:\n  action: both\n",
        4,
        11,
        &["cache.action", "invalid cache action `both`"],
    );
}

#[test]
fn bad_batches() {
    assert_refused(
        "version: 0.2\nphases: {}\nbatch:\n  build-list:\n    - identifier: a\n  build-fanout:\n    parallelism: 2\n",
        4,
        3,
        &["batch", "only one of", "build-list and build-fanout"],
    );
    assert_refused(
        "version: 0.2\nphases: {}\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [b]\n    - identifier: b\n      depend-on: [a]\n",
        5,
        5,
        &["batch.build-graph", "dependency cycle: a -> b -> a"],
    );
    assert_refused(
        "version: 0.2\nphases: {}\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [nope]\n",
        5,
        5,
        &["`a` depends on `nope`"],
    );
    assert_refused(
        "version: 0.2\nphases: {}\nbatch:\n  build-list:\n    - identifier: a\n    - identifier: a\n",
        5,
        5,
        &["duplicate batch task identifier `a`"],
    );
    assert_refused(
        "version: 0.2\nphases: {}\nbatch:\n  build-fanout:\n    parallelism: 0\n",
        5,
        18,
        &["batch.build-fanout.parallelism", "invalid parallelism `0`"],
    );
    assert_refused(
        "version: 0.2\nphases: {}\nbatch:\n  build-graph:\n    - buildspec: x.yml\n",
        5,
        7,
        &["missing field `identifier`"],
    );
}

#[test]
fn from_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buildspec.yml");
    std::fs::write(&path, "version: 0.2\nphases:\n  build:\n    commands: x\n").unwrap();
    let error = Buildspec::from_file(&path).unwrap_err();
    assert_eq!(error.location(), Some((4, 15)));
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}:4:15: ", path.display())),
        "{error}"
    );

    std::fs::write(
        &path,
        "version: 0.2\nphases:\n  build:\n    commands: [x]\n",
    )
    .unwrap();
    let b = Buildspec::from_file(&path).unwrap();
    assert_eq!(b.phases.clone().unwrap().build.unwrap().commands, ["x"]);

    let missing = dir.path().join("nope.yml");
    match Buildspec::from_file(&missing).unwrap_err() {
        BuildspecError::Io { file, source } => {
            assert_eq!(file, missing.display().to_string());
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn one_path_written_as_a_string_is_a_list_of_one() {
    // AWS's ECS deployment examples write `files: imagedefinitions.json`.
    let b = Buildspec::parse(
        "version: 0.2\nphases: {}\nartifacts:\n  files: imagedefinitions.json\n  \
         exclude-paths: '**/*.tmp'\n  secondary-artifacts:\n    web:\n      files: dist/**/*\n\
         reports:\n  unit:\n    files: report.xml\ncache:\n  paths: /root/.m2/**/*\n",
        "buildspec.yml",
    )
    .unwrap();
    let artifacts = b.artifacts.unwrap();
    assert_eq!(artifacts.files, strings(&["imagedefinitions.json"]));
    assert_eq!(artifacts.exclude_paths, strings(&["**/*.tmp"]));
    assert_eq!(artifacts.secondary[0].1.files, strings(&["dist/**/*"]));
    assert_eq!(b.reports[0].1.files, strings(&["report.xml"]));
    assert_eq!(b.cache.unwrap().paths, strings(&["/root/.m2/**/*"]));
    // A mapping is still no list of paths, and is refused where it stands.
    assert_refused(
        "version: 0.2\nphases: {}\nartifacts:\n  files:\n    a: b\n",
        5,
        5,
        &["artifacts.files", "a string or a sequence of strings"],
    );
}

#[test]
fn report_formats_are_read_in_any_case() {
    let b = Buildspec::parse(
        "version: 0.2\nphases: {}\nreports:\n  a:\n    files: [x]\n    file-format: JunitXml\n  \
         b:\n    files: [y]\n    file-format: coberturaxml\n",
        "buildspec.yml",
    )
    .unwrap();
    let formats: Vec<&str> = b
        .reports
        .iter()
        .map(|(_, r)| r.file_format.as_str())
        .collect();
    assert_eq!(formats, ["JUNITXML", "COBERTURAXML"]);
}

#[test]
fn null_and_empty_commands_are_left_out() {
    // CodeBuild reads them as empty commands and runs nothing; a quoted '~' is a command.
    let b = Buildspec::parse(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo a\n      -\n      - ~\n      \
         - null\n      - ''\n      - '~'\n      - echo b\n    finally:\n      - ~\n      - echo c\n",
        "buildspec.yml",
    )
    .unwrap();
    let build = b.phases.clone().unwrap().build.unwrap();
    assert_eq!(build.commands, strings(&["echo a", "~", "echo b"]));
    assert_eq!(build.finally, strings(&["echo c"]));
}

#[test]
fn runtime_versions_may_name_a_variable() {
    let b = Buildspec::parse(
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: $PYTHON_VERSION\n      \
         nodejs: ${NODE_VERSION}\n",
        "buildspec.yml",
    )
    .unwrap();
    let install = b.phases.clone().unwrap().install.unwrap();
    assert_eq!(
        install.runtime_versions,
        pairs(&[("python", "$PYTHON_VERSION"), ("nodejs", "${NODE_VERSION}")])
    );
    for bad in ["$(uname)", "3.$MINOR", "${X", "$1X"] {
        let text = format!(
            "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: '{bad}'\n"
        );
        let (line, _, message) = refused(&text);
        assert_eq!(line, 5, "{bad}: {message}");
        assert!(
            message.contains("invalid runtime version"),
            "{bad}: {message}"
        );
    }
}

/// Each leniency CodeBuild shows, in a buildspec of the shape real ones have: accepted,
/// read as CodeBuild reads it, and warned about where CodeBuild ignores something.
#[test]
fn what_codebuild_accepts_is_accepted() {
    type Expect = fn(&Buildspec);
    let table: &[(&str, &str, Expect)] = &[
        (
            "one path as a string (AWS's ECS deployment docs)",
            "version: 0.2\nphases:\n  build:\n    commands:\n      - printf '[]' > imagedefinitions.json\nartifacts:\n  files: imagedefinitions.json\n",
            |b| {
                assert_eq!(
                    b.artifacts.as_ref().unwrap().files,
                    ["imagedefinitions.json"]
                )
            },
        ),
        (
            "file-format in another case",
            "version: 0.2\nphases:\n  build:\n    commands: [pytest]\nreports:\n  pytest_reports:\n    files: ['**/*']\n    base-directory: reports\n    file-format: JunitXml\n",
            |b| assert_eq!(b.reports[0].1.file_format, "JUNITXML"),
        ),
        (
            "batch-only",
            "version: 0.2\nbatch:\n  fast-fail: false\n  build-list:\n    - identifier: linux\n      buildspec: ci/linux.yml\n",
            |b| assert!(b.is_batch_only() && b.warnings.is_empty()),
        ),
        (
            "Elastic Beanstalk's settings",
            "version: 0.2\nphases:\n  build:\n    commands: [mvn package]\nartifacts:\n  files: [target/app.war]\neb_codebuild_settings:\n  CodeBuildServiceRole: my-role\n  ComputeType: BUILD_GENERAL1_SMALL\n  Image: aws/codebuild/standard:7.0\n  Timeout: 60\n",
            |b| {
                assert_eq!(b.warnings.len(), 1, "{:?}", b.warnings);
                assert_eq!((b.warnings[0].line, b.warnings[0].column), (7, 1));
                assert!(b.warnings[0].message.contains("Elastic Beanstalk"));
            },
        ),
        (
            "a misspelled key",
            "version: 0.2\nphases:\n  build:\n    commands: [make]\nartifacts:\n  files: ['**/*']\n  discard_paths: yes\n",
            |b| {
                assert!(
                    !b.artifacts.as_ref().unwrap().discard_paths,
                    "ignored, as CodeBuild does"
                );
                assert!(
                    b.warnings[0]
                        .message
                        .contains("did you mean `discard-paths`?")
                );
                assert_eq!((b.warnings[0].line, b.warnings[0].column), (7, 3));
            },
        ),
        (
            "a misplaced key",
            "version: 0.2\nphases:\n  build:\n    commands: [make]\nartifacts:\n  type: zip\n  files: ['**/*']\n",
            |b| assert!(b.warnings[0].message.contains("`type` in `artifacts`")),
        ),
        (
            "0.1-style environment_variables in a 0.2 file",
            "version: 0.2\nenvironment_variables:\n  plaintext:\n    KEY: value\nphases:\n  build:\n    commands: [make]\n",
            |b| {
                assert!(b.env.variables.is_empty());
                assert!(b.warnings[0].message.contains("`env: variables:`"));
            },
        ),
        (
            "fleet in a batch task's env",
            "version: 0.2\nbatch:\n  build-graph:\n    - identifier: arm\n      env:\n        fleet: arm-fleet\n        type: ARM_CONTAINER\n",
            |b| {
                let task = &b.batch.as_ref().unwrap().build_graph.as_ref().unwrap()[0];
                assert_eq!(
                    task.env.as_ref().unwrap().fleet.as_deref(),
                    Some("arm-fleet")
                );
            },
        ),
        (
            "a variable written twice",
            "version: 0.2\nenv:\n  variables:\n    STAGE: dev\n    STAGE: prod\nphases:\n  build:\n    commands: [echo $STAGE]\n",
            |b| {
                assert_eq!(b.env.variables, [("STAGE".to_owned(), "prod".to_owned())]);
                assert_eq!(b.warnings[0].line, 5);
            },
        ),
        (
            "null and empty command items",
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo a\n      -\n      - ''\n      - echo b\n",
            |b| {
                let build = b.phases.as_ref().unwrap().build.as_ref().unwrap();
                assert_eq!(build.commands, ["echo a", "echo b"]);
                assert_eq!(build.command_lines, [5, 8]);
            },
        ),
        (
            "runtime-versions from a variable",
            "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: $PYTHON_VERSION\n",
            |b| {
                let install = b.phases.as_ref().unwrap().install.as_ref().unwrap();
                assert_eq!(install.runtime_versions[0].1, "$PYTHON_VERSION");
            },
        ),
        (
            "3.10 as written, not the number 3.1",
            "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.10\n",
            |b| {
                let install = b.phases.as_ref().unwrap().install.as_ref().unwrap();
                assert_eq!(install.runtime_versions[0].1, "3.10");
            },
        ),
        (
            "CRLF line ends",
            "version: 0.2\r\nphases:\r\n  build:\r\n    commands:\r\n      - echo a\r\n      - echo b\r\n",
            |b| {
                let build = b.phases.as_ref().unwrap().build.as_ref().unwrap();
                assert_eq!(build.commands, ["echo a", "echo b"]);
                assert_eq!(build.command_lines, [5, 6]);
            },
        ),
        (
            "a top-level key written twice (the first left empty)",
            "phases:\nversion: 0.2\nphases:\n  build:\n    commands: [make]\n",
            |b| {
                let build = b.phases.as_ref().unwrap().build.as_ref().unwrap();
                assert_eq!(build.commands, ["make"]);
                assert_eq!(build.command_lines, [5]);
                assert_eq!(b.warnings[0].line, 3);
                assert!(
                    b.warnings[0]
                        .message
                        .contains("`phases` is repeated at the top level (first at line 1)")
                );
            },
        ),
        (
            "a byte-order mark",
            "\u{feff}version: 0.2\nphases:\n  build:\n    commands: [make]\n",
            |b| assert!(b.warnings.is_empty()),
        ),
    ];
    for (what, text, expect) in table {
        let parsed = Buildspec::parse(text, "buildspec.yml")
            .unwrap_or_else(|e| panic!("{what}: refused: {e}"));
        expect(&parsed);
    }
}

#[test]
fn an_unquoted_colon_in_a_command_says_to_quote_it() {
    // A real buildspec's line; CodeBuild refuses it too ("found subkeys instead").
    assert_refused(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"start\"\n      - echo Current directory: $(pwd)\n",
        6,
        9,
        &["commands[1]", "quote the whole command"],
    );
}

#[test]
fn a_tab_where_yaml_wants_spaces_is_named() {
    assert_refused(
        "version: 0.2\nphases:\n\tbuild:\n    commands: [a]\n",
        3,
        1,
        &["a tab: YAML indents with spaces only"],
    );
}

#[test]
fn diagnose_reports_one_error_per_top_level_entry() {
    let text = "version: 0.2\nenv:\n  shell: zsh\nphases:\n  build:\n    commands: x\ncache:\n  action: both\n";
    let diagnosis = Buildspec::diagnose(text, "b.yml");
    let found: Vec<Option<(usize, usize)>> =
        diagnosis.errors.iter().map(|e| e.location()).collect();
    assert_eq!(found, [Some((3, 10)), Some((6, 15)), Some((8, 11))]);
    assert!(diagnosis.buildspec.is_none());
    // The first is the one `parse` gives.
    let error = Buildspec::parse(text, "b.yml").unwrap_err();
    assert_eq!(error.location(), Some((3, 10)));
}

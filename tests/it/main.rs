//! The integration tests, one test binary (linking wasmtime once, not once per file): each
//! module drives the `wasmbuild` binary or the library against real components — runtime
//! bundles built from `runtimes/`, an S3 server in the process, a loopback package index.
//! `common` and `store_common` hold the shared set-up; `cargo test NAME` picks a module.

mod common;
mod store_common;

mod attack_build;
mod attack_files;
mod attack_sandbox;
mod attack_shell;
mod batch;
mod build;
mod buildspec;
mod cache;
mod check;
mod cli_snapshots;
mod code_cache;
mod fuzz_buildspec;
mod guest_posix;
mod guest_processes;
mod prefault;
mod python_313;
mod python_index;
mod python_install;
mod python_pip;
mod python_projects;
mod python_resolve;
mod reports;
mod runtime;
mod sandbox;
mod serve;
mod shell_differential;
mod shell_streaming;
mod store_local;
mod store_s3;
mod verify;

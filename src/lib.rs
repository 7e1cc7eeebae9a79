//! wasmbuild runs AWS CodeBuild-style builds with no Docker, no daemon and no root: every
//! command of a build runs as a WebAssembly (WASI) program in a wasmtime sandbox.
//!
//! Data flows one way: `runtime` bundles provide programs, the `sandbox` runs them, the
//! `shell` drives the sandbox, and `cli` only parses arguments and prints.

pub mod batch;
pub mod buildspec;
pub mod cli;
pub mod digest;
pub mod exit;
pub mod image;
pub mod lifecycle;
pub mod python;
pub mod reports;
pub mod runtime;
pub mod sandbox;
pub mod serve;
pub mod shell;
pub mod startup;
pub mod store;
mod tls;

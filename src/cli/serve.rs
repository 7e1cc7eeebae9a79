//! `wasmbuild serve`: the web console over the store (see [`crate::serve`]). Loopback by
//! default; another address only with a token.

use std::net::SocketAddr;

use super::{Context, Failure};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer token every request must carry (required off loopback).
    #[arg(long, env = "WASMBUILD_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

pub fn run(ctx: &Context, args: ServeArgs) -> Result<u8, Failure> {
    if !args.listen.ip().is_loopback() && args.token.is_none() {
        return Err(Failure::usage(format!(
            "--listen {}: off loopback the console needs --token (or WASMBUILD_SERVE_TOKEN)",
            args.listen
        )));
    }
    if args.token.as_deref() == Some("") {
        return Err(Failure::usage("--token: the token is empty"));
    }
    // A worker per core (`main` sets the default to one, for wasmtime-wasi's runtime).
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the server: {e}")))?;
    runtime
        .block_on(crate::serve::serve(
            ctx.store.clone(),
            args.listen,
            args.token,
        ))
        .map_err(|e| Failure::usage(format!("--listen {}: {e}", args.listen)))?;
    Ok(0)
}

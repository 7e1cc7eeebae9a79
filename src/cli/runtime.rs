//! `wasmbuild runtime build|list`.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Subcommand;

use super::{Context, Failure};
use crate::runtime::{Recipe, RuntimeError};

#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Build or import a bundle from its recipe and store it.
    Build {
        /// Recipe name (a directory under --recipes), e.g. `base` or `python`.
        name: String,
    },
    /// List the bundles in the store: name, version, digest, commands and size.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Context, command: RuntimeCommand) -> Result<u8, Failure> {
    match command {
        RuntimeCommand::Build { name } => build(ctx, &name),
        RuntimeCommand::List { json } => list(ctx, json),
    }
}

/// Builds or imports bundle `name` from its recipe, with a progress display.
pub(super) fn build(ctx: &Context, name: &str) -> Result<u8, Failure> {
    let recipe =
        Recipe::load(&ctx.global.recipes, name).map_err(|e| Failure::bad_input(e.to_string()))?;
    let sandbox = ctx.sandbox()?;
    let progress = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = |step: &str| {
        if progress.is_hidden() {
            eprintln!("wasmbuild: {step}");
        } else {
            progress.println(format!("  {step}"));
            progress.set_message(step.to_owned());
        }
    };
    let result = ctx.runtimes().build(&recipe, &sandbox, &report);
    progress.finish_and_clear();
    let bundle = result.map_err(|e| match e {
        RuntimeError::DigestMismatch { .. } | RuntimeError::Recipe(_) => {
            Failure::bad_input(e.to_string())
        }
        other => Failure::fault(other.to_string()),
    })?;
    eprintln!(
        "built {} {} ({}): {} commands, {}",
        bundle.manifest.name,
        bundle.manifest.version,
        &bundle.digest[..12],
        bundle.manifest.commands.len(),
        human_size(bundle.manifest.size())
    );
    Ok(0)
}

fn list(ctx: &Context, json: bool) -> Result<u8, Failure> {
    let bundles = ctx
        .runtimes()
        .list()
        .map_err(|e| Failure::fault(e.to_string()))?;
    if json {
        let text =
            serde_json::to_string_pretty(&bundles).map_err(|e| Failure::fault(e.to_string()))?;
        println!("{text}");
        return Ok(0);
    }
    if bundles.is_empty() {
        println!("no bundles in the store; build one with `wasmbuild runtime build base`");
        return Ok(0);
    }
    println!(
        "{:<10} {:<10} {:<14} {:>9}  COMMANDS",
        "NAME", "VERSION", "DIGEST", "SIZE"
    );
    for bundle in bundles {
        let mut commands = bundle.commands.join(" ");
        if commands.len() > 60 {
            let cut = commands
                .char_indices()
                .take_while(|(i, _)| *i < 56)
                .last()
                .map_or(0, |(i, c)| i + c.len_utf8());
            commands = format!("{}… ({} commands)", &commands[..cut], bundle.commands.len());
        }
        println!(
            "{:<10} {:<10} {:<14} {:>9}  {}",
            bundle.name,
            bundle.version,
            &bundle.digest[..12],
            human_size(bundle.size),
            commands
        );
    }
    Ok(0)
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

//! `wasmbuild runtime build|list|push|pull`. Push and pull move a bundle between this
//! machine's local store and the remote store named by `--store s3://…`, so a host with
//! no Rust toolchain runs builds from bundles another host built.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Subcommand;

use super::shared::{human_size, print_json};
use super::{Context, Failure};
use crate::image::ImageSpec;
use crate::runtime::{BundleCopy, Recipe, Runtimes};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Build or import a bundle from its recipe and store it.
    Build {
        /// Bundle name, optionally with a version: `base`, `python`, `python:3.13`.
        name: String,
    },
    /// List the bundles in the store: name, version, digest, commands and size.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Copy a bundle from this machine's local store to the remote `--store s3://…`.
    Push {
        name: String,
        /// A given version (default: the newest build).
        #[arg(long)]
        version: Option<String>,
    },
    /// Copy a bundle from the remote `--store s3://…` to this machine, verify and install it.
    Pull {
        name: String,
        /// A given version (default: the newest build).
        #[arg(long)]
        version: Option<String>,
    },
}

pub fn run(ctx: &Context, command: RuntimeCommand) -> Result<u8, Failure> {
    // Names and versions become store references and paths: bad ones are bad input.
    match &command {
        RuntimeCommand::Build { name } => {
            ImageSpec::parse(name)?;
        }
        RuntimeCommand::Push { name, version } | RuntimeCommand::Pull { name, version } => {
            ImageSpec::parse(name)?;
            if let Some(version) = version {
                crate::buildspec::check_runtime_version(version)
                    .map_err(|e| Failure::usage(format!("--version: {e}")))?;
            }
        }
        RuntimeCommand::List { .. } => {}
    }
    match command {
        RuntimeCommand::Build { name } => build(ctx, &name),
        RuntimeCommand::List { json } => list(ctx, json),
        RuntimeCommand::Push { name, version } => transfer(ctx, &name, version.as_deref(), true),
        RuntimeCommand::Pull { name, version } => transfer(ctx, &name, version.as_deref(), false),
    }
}

/// `push` (local → remote) or `pull` (remote → local, then installed).
fn transfer(ctx: &Context, name: &str, version: Option<&str>, push: bool) -> Result<u8, Failure> {
    let verb = if push { "push" } else { "pull" };
    if !ctx.store.is_remote() {
        return Err(Failure::usage(format!(
            "runtime {verb} moves a bundle between this machine and a remote store: \
             give --store s3://BUCKET/PREFIX (or WASMBUILD_STORE)"
        )));
    }
    let local = Store::open(ctx.store.root())?;
    let on_this_machine = Runtimes::new(local.clone());
    let (from, to) = if push {
        (&on_this_machine, &ctx.store)
    } else {
        (ctx.runtimes(), &local)
    };
    let what = match version {
        Some(version) => format!("{name} {version}"),
        None => name.to_owned(),
    };
    let copy: BundleCopy = from
        .copy_bundle(to, name, version)?
        .ok_or_else(|| {
            Failure::usage(if push {
                format!(
                    "no bundle {what} on this machine ({}); build it with `wasmbuild runtime build {name}`",
                    local.spec()
                )
            } else {
                format!("no bundle {what} in {}", ctx.store.spec())
            })
        })?;
    if !push {
        Runtimes::new(local).install(&copy.digest)?;
    }
    let (source, dest) = if push {
        (ctx.store.root().display().to_string(), ctx.store.spec())
    } else {
        (ctx.store.spec(), ctx.store.root().display().to_string())
    };
    eprintln!(
        "{verb}ed {} {} ({}) from {source} to {dest}: {} blobs copied ({}), {} already there{}",
        copy.name,
        copy.version,
        &copy.digest[..12],
        copy.copied_blobs,
        human_size(copy.copied_bytes),
        copy.present_blobs,
        if push { "" } else { "; installed" }
    );
    println!("{}", copy.digest);
    Ok(0)
}

/// Builds or imports bundle `NAME[:VERSION]` from its recipe, with a progress display.
pub(super) fn build(ctx: &Context, spec: &str) -> Result<u8, Failure> {
    let ImageSpec { name, version } = ImageSpec::parse(spec)?;
    let recipes = ctx.recipes()?;
    let Some(recipe) = Recipe::find(recipes, name, version)? else {
        return Err(crate::runtime::RecipeError::NotFound {
            name: spec.into(),
            dir: recipes.into(),
            available: Recipe::available(recipes).join(", "),
        }
        .into());
    };
    build_recipe(ctx, &recipe)
}

/// Builds or imports the bundle of `recipe`, with a progress display.
pub(super) fn build_recipe(ctx: &Context, recipe: &Recipe) -> Result<u8, Failure> {
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
    let result = ctx.runtimes().build(recipe, &sandbox, &report);
    progress.finish_and_clear();
    let bundle = result?;
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
    let bundles = ctx.runtimes().list()?;
    if json {
        print_json(&bundles)?;
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

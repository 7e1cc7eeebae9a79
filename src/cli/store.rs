//! `wasmbuild store verify|gc|stats`.

use std::time::Duration;

use clap::Subcommand;

use super::shared::{human_size, print_json};
use super::{Context, Failure};
use crate::store::GcOptions;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Re-hash every object and check what references reach; exit 1 listing what is wrong.
    Verify {
        /// Delete corrupt blobs (a later save writes them again).
        #[arg(long)]
        repair: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Drop what no reference reaches, and cache references by age or total size.
    Gc {
        /// Drop cache references not written or used for this many days.
        #[arg(long, value_name = "DAYS")]
        max_age: Option<f64>,
        /// Drop the oldest cache references until the store holds at most SIZE
        /// (e.g. 500M, 10G, 1.5GiB; plain numbers are bytes).
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
        /// Keep unreachable blobs younger than this many minutes (saves in progress).
        #[arg(long, value_name = "MINUTES", default_value_t = 60.0)]
        grace: f64,
        /// Only say what would be dropped.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Counts and sizes of blobs and references.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Parses `123`, `10K`, `500M`, `1.5G`, `2GiB`, `1T` (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 500M, 10G)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let factor: u64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(format!("{text:?}: unknown unit (use K, M, G or T)")),
    };
    Ok((number * factor as f64) as u64)
}

pub fn run(ctx: &Context, command: StoreCommand) -> Result<u8, Failure> {
    let store = &ctx.store;
    match command {
        StoreCommand::Verify {
            repair,
            json: as_json,
        } => {
            let report = store.verify(repair)?;
            if as_json {
                print_json(&report)?;
            } else {
                for p in &report.problems {
                    println!("{:<8} {}: {}", p.kind, p.object, p.detail);
                }
                println!(
                    "verified {} blobs ({}), {} references and {} installed bundles in {}: {}",
                    report.blobs,
                    human_size(report.bytes),
                    report.refs,
                    report.installed_bundles,
                    store.spec(),
                    match report.problems.len() {
                        0 => "all good".to_owned(),
                        1 => "1 problem".to_owned(),
                        n => format!("{n} problems"),
                    }
                );
                if report.repaired > 0 {
                    println!("deleted {} corrupt blobs", report.repaired);
                }
                if report.removed_installs > 0 {
                    println!(
                        "removed {} tampered installed bundles (reinstalled on next use)",
                        report.removed_installs
                    );
                }
            }
            Ok(if report.is_clean() { 0 } else { 1 })
        }
        StoreCommand::Gc {
            max_age,
            max_size,
            grace,
            dry_run,
            json: as_json,
        } => {
            let non_negative = |d: f64| d.is_finite() && d >= 0.0;
            if max_age.is_some_and(|d| !non_negative(d)) || !non_negative(grace) {
                return Err(Failure::usage("ages must be positive numbers"));
            }
            // Finite but huge numbers overflow a Duration: bad input, never a panic.
            let duration = |value: f64, seconds: f64| {
                Duration::try_from_secs_f64(value * seconds)
                    .map_err(|_| Failure::usage(format!("{value} is out of range")))
            };
            let options = GcOptions {
                max_age: max_age.map(|days| duration(days, 86400.0)).transpose()?,
                max_size,
                grace: duration(grace, 60.0)?,
                dry_run,
            };
            let report = store.gc(&options)?;
            if as_json {
                print_json(&report)?;
            } else {
                let verb = if dry_run { "would drop" } else { "dropped" };
                for name in &report.refs_dropped {
                    println!("{verb} reference {name}");
                }
                println!(
                    "{verb} {} blobs ({}); kept {} blobs ({}){}",
                    report.blobs_deleted,
                    human_size(report.bytes_deleted),
                    report.blobs_kept,
                    human_size(report.bytes_kept),
                    if report.blobs_young > 0 {
                        format!(", {} of them only for being recent", report.blobs_young)
                    } else {
                        String::new()
                    }
                );
            }
            Ok(0)
        }
        StoreCommand::Stats { json: as_json } => {
            let stats = store.stats()?;
            if as_json {
                print_json(&stats)?;
            } else {
                println!("store       {}", stats.store);
                println!(
                    "blobs       {} ({})",
                    stats.blobs,
                    human_size(stats.blob_bytes)
                );
                let total: u64 = stats.refs.values().sum();
                let parts: Vec<String> = stats
                    .refs
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                println!("references  {total} ({})", parts.join(", "));
                println!("local dir   {}", stats.local_dir);
                if let (Some(n), Some(b)) = (stats.local_cache_blobs, stats.local_cache_bytes) {
                    println!("local copies {n} blobs ({})", human_size(b));
                }
                if stats.tmp_files > 0 {
                    println!(
                        "temporary   {} files ({}); `store gc` removes old ones",
                        stats.tmp_files,
                        human_size(stats.tmp_bytes)
                    );
                }
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_size("10K").unwrap(), 10 << 10);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("2gb").unwrap(), 2 << 30);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5X").is_err());
    }
}

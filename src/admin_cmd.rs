//! The admin side of the command line (rollback, unhold, status, check):
//! arguments, and calls into the library.

use anyhow::{Context, Result};
use binarydist::install::{self, rollback};
use binarydist::names::Series;
use std::path::PathBuf;
use std::process::ExitCode;

/// `check`: something differs from the installed manifests.
pub const EXIT_DIFFERS: u8 = 4;

#[derive(clap::Args)]
pub struct RollbackArgs {
    /// The root to roll back
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// The series to roll back: world, kernel.CONF
    #[arg(long, default_value = "world")]
    series: String,
    /// The make program for `make upgrade` (bmake; DragonFly calls it make)
    #[arg(long, env = "BINARYDIST_MAKE")]
    make: Option<String>,
    /// Wait for another install on the same root instead of refusing
    #[arg(long)]
    wait: bool,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
    /// The configuration file [default: /usr/local/etc/binarydist.conf, when present]
    #[arg(long, env = "BINARYDIST_CONF")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct UnholdArgs {
    /// The root
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// The series to follow again: world, kernel.CONF
    #[arg(long, default_value = "world")]
    series: String,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The root
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Print JSON (docs/status.md)
    #[arg(long)]
    json: bool,
    /// The configuration file [default: /usr/local/etc/binarydist.conf, when present]
    #[arg(long, env = "BINARYDIST_CONF")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The root
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Print JSON
    #[arg(long)]
    json: bool,
    /// Hash every file, not only those whose size or mtime differ
    #[arg(long)]
    full: bool,
}

pub fn rollback(a: RollbackArgs) -> Result<ExitCode> {
    let c = crate::cmd::read_config(a.config.as_deref())?;
    let settings = crate::cmd::install_settings(&c)?;
    let make = a.make.or_else(|| c.get("MAKE").map(String::from)).unwrap_or_else(|| "make".into());
    let series = Series::parse(&a.series)?;
    let opts = install::Options { root: a.root.clone(), source: None, make, wait: a.wait, settings };
    let s = rollback::rollback(&opts, &series).with_context(|| format!("rollback of {} on {}", a.series, a.root.display()))?;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!("{s}");
        println!("{} is held: `update` leaves it here until `update --to NAME` or `binarydist unhold --series {}`", a.series, a.series);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn unhold(a: UnholdArgs) -> Result<ExitCode> {
    let series = Series::parse(&a.series)?;
    let held = rollback::unhold(&a.root, &series).with_context(|| format!("unhold of {} on {}", a.series, a.root.display()))?;
    println!("{}: {}", a.series, if held { "no longer held: `update` follows it again" } else { "was not held" });
    Ok(ExitCode::SUCCESS)
}

pub fn status(a: StatusArgs) -> Result<ExitCode> {
    let settings = crate::cmd::install_settings(&crate::cmd::read_config(a.config.as_deref())?)?;
    let s = binarydist::status::status(&a.root, settings.keep_generations).with_context(|| format!("status of {}", a.root.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!("{s}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn check(a: CheckArgs) -> Result<ExitCode> {
    let r = binarydist::check::check(&a.root, a.full).with_context(|| format!("check of {}", a.root.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{r}");
    }
    Ok(if r.differences() > 0 { ExitCode::from(EXIT_DIFFERS) } else { ExitCode::SUCCESS })
}

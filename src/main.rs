//! The `binarydist` command: parses arguments and calls the library.

use anyhow::{Context, Result};
use binarydist::names::{self, DistName, Series};
use binarydist::{info, pack};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "binarydist", version, about = "Binary updates for DragonFly BSD, built by the /usr/src Makefiles")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pack a staging DESTDIR into DISTDIR/NAME.tar.gz with MD5 and SHA-256 sidecars
    Pack(Box<PackArgs>),
    /// Check a dist against its sidecars and its manifest
    Verify {
        /// The dist (.tar.gz or .tar)
        dist: PathBuf,
    },
    /// Install a dist (or the result of patches to the kept base) onto a root:
    /// staged, verified, journaled, then renamed into place and `make upgrade`.
    /// Run with no dist, it finishes or undoes an interrupted install.
    Install(InstallArgs),
    /// Print what a dist is
    Info {
        /// The dist (.tar.gz or .tar)
        file: PathBuf,
        /// Print JSON, for scripts
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct InstallArgs {
    /// The root to install onto
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Apply these patches, in order, to the kept base and install the result
    #[arg(long = "patch", num_args = 1.., conflicts_with = "dist")]
    patches: Vec<PathBuf>,
    /// The make program for `make upgrade` (bmake; DragonFly calls it make)
    #[arg(long, env = "BINARYDIST_MAKE", default_value = "make")]
    make: String,
    /// Wait for another install on the same root instead of refusing
    #[arg(long)]
    wait: bool,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
    /// The dist to install (.tar.gz or .tar, with its .tar.md5 and .tar.sha256 beside it)
    dist: Option<PathBuf>,
}

#[derive(clap::Args)]
struct PackArgs {
    /// The staging DESTDIR that installworld or installkernel filled
    #[arg(long, env = "STAGE")]
    stage: PathBuf,
    /// world or kernel
    #[arg(long, value_parser = ["world", "kernel"])]
    series: String,
    /// Kernel config name, for --series kernel
    #[arg(long, env = "KERNCONF", required_if_eq("series", "kernel"))]
    kernconf: Option<String>,
    /// Machine architecture
    #[arg(long, env = "MACHINE_ARCH", default_value = std::env::consts::ARCH)]
    arch: String,
    /// Source branch (git branch of /usr/src)
    #[arg(long, env = "BRANCH")]
    branch: String,
    /// Git revision, `git describe --abbrev=5` with '-' turned into '.'
    #[arg(long, env = "GITREV")]
    rev: String,
    /// Build stamp YYYYMMDDTHHMMSSZ [default: SOURCE_DATE_EPOCH, else now]
    #[arg(long)]
    date: Option<String>,
    /// A /usr/src tree to take the `make upgrade` subset from
    #[arg(long)]
    upgrade_src: Option<PathBuf>,
    /// The upgrade-subset list [default: the built-in etc/upgrade-subset.conf]
    #[arg(long)]
    upgrade_list: Option<PathBuf>,
    /// The critical-file list [default: the built-in etc/critical.conf]
    #[arg(long)]
    critical_list: Option<PathBuf>,
    /// Output directory
    #[arg(short = 'o', long = "output", env = "DISTDIR")]
    out_dir: PathBuf,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("binarydist: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, without repeating a cause that the
/// message above it already quotes.
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !out.contains(&s) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&s);
        }
    }
    out
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Pack(a) => run_pack(*a),
        Command::Verify { dist } => {
            let (m, d) = info::verify_dist(&dist)?;
            println!("{}: OK ({} entries, {} bytes of tar, SHA256 {})", dist.display(), m.entries.len(), d.size, d.sha256_hex());
            Ok(())
        }
        Command::Install(a) => run_install(a),
        Command::Info { file, json } => {
            let i = info::dist_info(&file)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&i)?);
            } else {
                print!("{i}");
            }
            Ok(())
        }
    }
}

fn run_install(a: InstallArgs) -> Result<()> {
    use binarydist::install::{self, Source};
    let source = match (a.dist, a.patches.is_empty()) {
        (Some(d), _) => Some(Source::Dist(d)),
        (None, false) => Some(Source::Chain(a.patches)),
        (None, true) => None,
    };
    let opts = install::Options { root: a.root.clone(), source, make: a.make, wait: a.wait };
    let summary = install::install(&opts).with_context(|| format!("install onto {}", a.root.display()))?;
    if a.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{summary}");
    }
    Ok(())
}

fn read_list(path: Option<&Path>, default: &str) -> Result<String> {
    match path {
        Some(p) => std::fs::read_to_string(p).with_context(|| p.display().to_string()),
        None => Ok(default.to_string()),
    }
}

fn run_pack(a: PackArgs) -> Result<()> {
    let clamp = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) if !s.is_empty() => Some(s.trim().parse::<i64>().with_context(|| format!("SOURCE_DATE_EPOCH {s:?} is not a number"))?),
        _ => None,
    };
    let stamp = match a.date {
        Some(d) => d,
        None => names::stamp_from_epoch(clamp.unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
        })),
    };
    let series = Series::from_parts(&a.series, a.kernconf.as_deref())?;
    let name = DistName::new(series, &a.arch, &a.branch, &stamp, &a.rev)?;
    let opts = pack::PackOptions {
        stage: a.stage,
        name,
        upgrade_src: a.upgrade_src,
        upgrade_subset: read_list(a.upgrade_list.as_deref(), pack::DEFAULT_UPGRADE_SUBSET)?,
        critical: read_list(a.critical_list.as_deref(), pack::DEFAULT_CRITICAL)?,
        clamp_mtime: clamp,
        out_dir: a.out_dir,
    };
    let p = pack::pack(&opts)?;
    println!(
        "{}: {} entries, {} bytes of tar, {} gzipped, {} critical",
        p.dist.display(),
        p.manifest.entries.len(),
        p.tar.size,
        p.gz_size,
        p.manifest.critical().count()
    );
    Ok(())
}

//! The `binarydist` command: parses arguments and calls the library.

use anyhow::{Context, Result};
use binarydist::names::{DistName, Series};
use binarydist::{apply, delta, info, pack, patchfile};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "binarydist", version, about = "Binary updates for DragonFly BSD, built by the /usr/src Makefiles", after_help = EXIT_HELP)]
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
    /// Make the patch from one dist to another: DIR/<old>--<new>.bdpatch
    Diff(DiffArgs),
    /// Apply a patch, or a chain of patches in one pass, as a stream
    #[command(after_help = PATCH_HELP)]
    Patch(PatchArgs),
    /// Write a dist's (or any gzip file's) uncompressed bytes to standard output
    Cat {
        /// The dist (.tar.gz or .tar); `-` for standard input
        file: PathBuf,
    },
    /// Print what a dist or a patch is
    Info {
        /// The dist (.tar.gz or .tar) or patch (.bdpatch)
        file: PathBuf,
        /// Print JSON, for scripts
        #[arg(long)]
        json: bool,
    },
    /// Write DISTDIR/INDEX: every dist and patch, for every series, with a new serial and expiry
    Index(cmd::IndexArgs),
    /// Make a minisign key pair (the secret key 0600, never overwritten)
    Keygen(cmd::KeygenArgs),
    /// Sign files (FILE.minisig, minisign's format); an INDEX's trusted comment repeats its serial and expiry
    Sign(cmd::SignArgs),
    /// Append a signed statement to a mirror's KEYS chain: a key rotation or a revocation
    #[command(subcommand)]
    Keys(cmd::KeysCommand),
    /// Print what `update` would download and install, without doing it
    Plan(cmd::PlanArgs),
    /// Update this root from signed mirrors: verify INDEX, plan, download, install
    #[command(after_help = EXIT_HELP)]
    Update(cmd::UpdateArgs),
    /// Go back to the previous kept generation of a series (staged, journaled,
    /// then make upgrade), and hold the series there
    Rollback(admin_cmd::RollbackArgs),
    /// Let `update` follow a held series again
    Unhold(admin_cmd::UnholdArgs),
    /// Per series: the installed dist, hold, generations, snapshots; unfinished journal; disk used
    Status(admin_cmd::StatusArgs),
    /// Compare installed files with the installed dists' manifests (an IDS); exit 4 when something differs
    Check(admin_cmd::CheckArgs),
}

/// The exit codes of every command (docs/update.md, "Exit status").
const EXIT_HELP: &str = "\
Exit status, for every command: 0 done (or up to date), 1 error, 2 usage, \
3 an update is available (update --check, update --fetch-only), 4 something differs (check).";

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
    /// Say what would be added, replaced, left and removed, and the bytes to
    /// write; change nothing, take no lock
    #[arg(long)]
    dry_run: bool,
    /// Check the dist (or patches) against this signed INDEX first (INDEX.minisig
    /// and KEYS beside it); without it the dist is not authenticated
    #[arg(long)]
    index: Option<PathBuf>,
    #[command(flatten)]
    trust: cmd::TrustArgs,
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
    /// Threads for gzip [default: the number of CPUs]; the dist is the same for any number
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(clap::Args)]
struct DiffArgs {
    /// The old dist (.tar.gz or .tar)
    old: PathBuf,
    /// The new dist (.tar.gz or .tar)
    new: PathBuf,
    /// Output directory
    #[arg(short = 'o', long = "output")]
    out_dir: PathBuf,
    /// Most memory the applier may spend keeping old members for later use, and
    /// apart new members that later ones repeat (64M, 1G, bytes); past it, data
    /// is sent literally instead
    #[arg(long, default_value = "64M", value_parser = delta::parse_size)]
    keep_cap: u64,
    /// Compression of the patch's streams: lzma2 (smallest) or zstd (faster to apply)
    #[arg(long, default_value = "lzma2", value_parser = parse_codec)]
    compress: patchfile::Codec,
    /// Compression level [default: 9 for lzma2 (extreme), 19 for zstd]
    #[arg(long)]
    level: Option<u32>,
    /// Most memory diff may use (512M, 1G, bytes), whatever the member sizes:
    /// it sizes the windows of large members and the work in flight
    #[arg(long, default_value = "512M", value_parser = delta::parse_size)]
    memory: u64,
    /// Threads for member deltas [default: the number of CPUs]; the patch is
    /// the same for any number
    #[arg(long)]
    threads: Option<usize>,
    /// The old dist's name, when its file name is not a dist name
    #[arg(long)]
    from_name: Option<String>,
    /// The new dist's name, when its file name is not a dist name
    #[arg(long)]
    to_name: Option<String>,
}

const PATCH_HELP: &str = "\
Without --base the old tar (gzipped or not) is read from standard input; without -o \
the new tar goes to standard output. Both are checked (size, MD5, SHA-256) against \
each patch's header. With -o nothing appears under the name unless everything \
verified; on standard output bytes cannot be taken back, so a mismatch found at the \
end only makes binarydist exit non-zero. To update a system, use `binarydist install`: \
it stages the new files and commits them only after verification.

  gunzip < old.tar.gz | binarydist patch P | tar xpf -
  binarydist patch P1 P2 P3 --base old.tar.gz -o new.tar.gz";

#[derive(clap::Args)]
struct PatchArgs {
    /// Patches, in chain order
    #[arg(required = true)]
    patches: Vec<PathBuf>,
    /// The base dist (.tar.gz or .tar) [default: standard input]
    #[arg(long)]
    base: Option<PathBuf>,
    /// Write the new tar here (gzipped if the name ends in .gz) [default: standard output]
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
}

mod admin_cmd;
mod cmd;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            // The chain, each cause once: no message embeds its source.
            eprintln!("binarydist: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Index(a) => cmd::index(a),
        Command::Keygen(a) => cmd::keygen(a),
        Command::Sign(a) => cmd::sign(a),
        Command::Keys(a) => cmd::keys(a),
        Command::Plan(a) => cmd::plan(a),
        Command::Update(a) => cmd::update(a),
        Command::Rollback(a) => admin_cmd::rollback(a),
        Command::Unhold(a) => admin_cmd::unhold(a),
        Command::Status(a) => admin_cmd::status(a),
        Command::Check(a) => admin_cmd::check(a),
        other => run_build_side(other).map(|()| ExitCode::SUCCESS),
    }
}

fn run_build_side(command: Command) -> Result<()> {
    match command {
        Command::Pack(a) => run_pack(*a),
        Command::Verify { dist } => {
            let (m, d) = info::verify_dist(&dist)?;
            println!("{}: OK ({} entries, {} bytes of tar, SHA256 {})", dist.display(), m.entries.len(), d.size, d.sha256_hex());
            Ok(())
        }
        Command::Install(a) => run_install(a),
        Command::Diff(a) => run_diff(a),
        Command::Patch(a) => run_patch(a),
        Command::Cat { file } => run_cat(&file),
        Command::Info { file, json } if patchfile::looks_like_patch(&file) => {
            let p = patchfile::read_header(&file)?;
            patchfile::verify_streams(&p)?;
            if json {
                let info = serde_json::json!({ "file": p.path, "header": p.header });
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{p}");
            }
            Ok(())
        }
        Command::Info { file, json } => {
            let i = info::dist_info(&file)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&i)?);
            } else {
                print!("{i}");
            }
            Ok(())
        }
        _ => unreachable!("handled in run"),
    }
}

fn run_install(a: InstallArgs) -> Result<()> {
    use binarydist::install::{self, Source};
    let files: Vec<PathBuf> = a.dist.iter().chain(&a.patches).cloned().collect();
    let what = if a.dist.is_some() { "this dist is" } else { "these patches are" };
    let source = match (a.dist, a.patches.is_empty()) {
        (Some(d), _) => Some(Source::Dist(d)),
        (None, false) => Some(Source::Chain(a.patches)),
        (None, true) => None,
    };
    let settings = cmd::settings(&a.trust)?;
    let opts = install::Options { root: a.root.clone(), source, make: a.make, wait: a.wait, settings };
    if a.dry_run {
        let d = install::dryrun::dry_run(&opts).with_context(|| format!("install --dry-run onto {}", a.root.display()))?;
        if a.json {
            println!("{}", serde_json::to_string(&d)?);
        } else {
            println!("{d}");
        }
        return Ok(());
    }
    // (Not for a dry run: checking an INDEX pins its key and serial in the state.)
    if let (Some(index), false) = (&a.index, files.is_empty()) {
        cmd::verify_local(&a.root, index, &files, &a.trust)?;
    }
    let summary = install::install(&opts).with_context(|| format!("install onto {}", a.root.display()))?;
    // Said once it is installed: a refusal stays the one line that says why.
    if a.index.is_none() && !files.is_empty() && !summary.already_installed {
        eprintln!(
            "binarydist: warning: {what} not authenticated: only sidecars and headers from the same place vouch for it; give --index INDEX to check it against a signed INDEX"
        );
    }
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
    let clamp = pack::source_date_epoch()?;
    let stamp = a.date.unwrap_or_else(|| pack::default_stamp(clamp));
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
        gzip: binarydist::tario::gz::Options::dist().threads(a.threads),
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

fn run_cat(file: &Path) -> Result<()> {
    use binarydist::tario::gz;
    let (input, label) = match file.to_str() {
        Some("-") => (gz::maybe_gunzip(std::io::stdin()).context("standard input")?, "standard input".to_string()),
        _ => (gz::open_tar(file).with_context(|| file.display().to_string())?, file.display().to_string()),
    };
    match gz::copy_out(input, std::io::stdout().lock()) {
        Err(gz::CopyError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()), // `| head`: not an error
        Err(gz::CopyError::Output(e)) => Err(e).context("standard output"),
        Err(gz::CopyError::Input(e)) => Err(e).context(label),
        Ok(_) => Ok(()),
    }
}

fn run_diff(a: DiffArgs) -> Result<()> {
    let mut opts = delta::DiffOptions::new(a.old, a.new, a.out_dir);
    opts.old_name = a.from_name.as_deref().map(DistName::parse).transpose()?;
    opts.new_name = a.to_name.as_deref().map(DistName::parse).transpose()?;
    opts.keep_cap = a.keep_cap;
    opts.codec = a.compress;
    opts.level = a.level;
    opts.memory = a.memory;
    if let Some(t) = a.threads {
        opts.threads = t;
    }
    let d = delta::diff(&opts)?;
    let s = &d.header.stats;
    println!(
        "{}: {} bytes; {} copies, {} deltas, {} literal ({} bytes); applier keeps {} bytes",
        d.patch.display(),
        d.size,
        s.copies,
        s.deltas,
        s.literals,
        s.literal_bytes,
        d.header.kept_bytes
    );
    Ok(())
}

fn parse_codec(s: &str) -> std::result::Result<patchfile::Codec, String> {
    match s {
        "lzma2" | "xz" => Ok(patchfile::Codec::Lzma2),
        "zstd" => Ok(patchfile::Codec::Zstd),
        _ => Err(format!("{s:?}: expected lzma2 or zstd")),
    }
}

fn run_patch(a: PatchArgs) -> Result<()> {
    let patches = apply::open_patches(&a.patches)?;
    let (base, label): (Box<dyn std::io::Read + Send>, String) = match &a.base {
        Some(path) => {
            apply::check_base_name(path, &patches[0])?;
            let f = binarydist::tario::gz::open_tar(path).with_context(|| path.display().to_string())?;
            (f, path.display().to_string())
        }
        None => (binarydist::tario::gz::maybe_gunzip(std::io::stdin()).context("standard input")?, "standard input".into()),
    };
    match &a.output {
        Some(out) => {
            apply::apply_to_file(base, &label, &patches, out)?;
        }
        None => {
            let stdout = std::io::stdout().lock();
            apply::apply_chain(base, &label, &patches, std::io::BufWriter::with_capacity(256 * 1024, stdout))?;
        }
    }
    Ok(())
}

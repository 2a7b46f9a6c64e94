//! The mirror side of the command line (index, keygen, sign, keys, plan,
//! update, install --index): arguments, and calls into the library.

use anyhow::{bail, Context, Result};
use binarydist::names::{DistName, Series};
use binarydist::sign::{self, Password, Signer, StatementKind};
use binarydist::update::{self, config::Config, trust, Mode};
use binarydist::{fetch, index, plan};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// `update --check`: an update is available (0: up to date, 1: error, 2: usage).
pub const EXIT_UPDATE_AVAILABLE: u8 = 3;

#[derive(clap::Args)]
pub struct IndexArgs {
    /// The dist directory (DISTDIR)
    distdir: PathBuf,
    /// Keep the entries of the current INDEX (each file must still be there):
    /// a new serial and expiry without a rescan, for cron before the expiry
    #[arg(long)]
    resign: bool,
    /// How long the INDEX stays valid: 30d, 12h, 90m, 3600s
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    valid: Duration,
}

#[derive(clap::Args)]
pub struct PasswordArgs {
    /// Read the secret key's password from the first line of this file
    #[arg(long, conflicts_with = "no_password")]
    password_file: Option<PathBuf>,
    /// The secret key has no password (say so explicitly)
    #[arg(long)]
    no_password: bool,
}

impl PasswordArgs {
    fn password(&self) -> Result<Password> {
        match (&self.password_file, self.no_password) {
            (Some(f), _) => Ok(Password::File(f.clone())),
            (None, true) => Ok(Password::None),
            (None, false) => {
                bail!("give --password-file FILE, or --no-password for a key without one (a password is never taken from an argument)")
            }
        }
    }
}

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (created 0600; never overwritten)
    #[arg(long)]
    secret: PathBuf,
    /// Where to write the public key [default: the secret key's name with .pub]
    #[arg(long)]
    public: Option<PathBuf>,
    #[command(flatten)]
    password: PasswordArgs,
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// The secret key
    #[arg(long, env = "BINDIST_SIGNKEY")]
    key: PathBuf,
    #[command(flatten)]
    password: PasswordArgs,
    /// Files to sign (FILE.minisig is written beside each)
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// The current key says: from serial N on, NEW signs
    Rotate {
        /// The dist directory (its KEYS is appended to, its INDEX gives the next serial)
        distdir: PathBuf,
        /// The current (old) secret key, which signs the statement
        #[arg(long)]
        key: PathBuf,
        /// The new public key
        #[arg(long)]
        new: PathBuf,
        /// The first INDEX serial the new key signs [default: the INDEX's serial + 1]
        #[arg(long)]
        from_serial: Option<u64>,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// A key must not be trusted any more (signed by it, or by a key of the chain)
    Revoke {
        distdir: PathBuf,
        /// The secret key that signs the statement
        #[arg(long)]
        key: PathBuf,
        /// The public key to revoke
        #[arg(long)]
        revoke: PathBuf,
        #[command(flatten)]
        password: PasswordArgs,
    },
}

/// Where trust comes from, for update, plan and install --index.
#[derive(clap::Args, Clone)]
pub struct TrustArgs {
    /// The mirror's public key, pinned at first use (later the state's pinned key wins)
    #[arg(long)]
    pubkey: Option<PathBuf>,
    /// Never trust this key (a key id or public key); repeatable; adds to the state's list
    #[arg(long = "revoked-key")]
    revoked: Vec<String>,
    /// Accept an INDEX older than one already seen
    #[arg(long)]
    allow_replay: bool,
    /// Accept an INDEX past its expiry
    #[arg(long)]
    allow_expired: bool,
    /// The configuration file [default: /usr/local/etc/binarydist.conf, when present]
    #[arg(long, env = "BINARYDIST_CONF")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct PlanArgs {
    /// A mirror: http://, https://, file:// or a directory; repeatable, tried in order
    #[arg(long = "mirror")]
    mirrors: Vec<String>,
    /// The root to update
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Go to this dist (its series), instead of the newest; overrides a hold
    #[arg(long)]
    to: Option<String>,
    /// A series to install that is not installed yet: world, kernel.CONF; repeatable
    #[arg(long)]
    series: Vec<String>,
    /// Follow this branch instead of the installed one (a branch change is only ever asked for)
    #[arg(long)]
    branch: Option<String>,
    /// Install a dist older than the installed one
    #[arg(long)]
    allow_downgrade: bool,
    /// Install a dist for another arch than the installed one (or this machine's)
    #[arg(long)]
    allow_other_arch: bool,
    /// Seconds to wait to connect and for each read [default: 30]
    #[arg(long)]
    timeout: Option<u64>,
    /// Retries of a transient fault on one mirror before the next [default: 2]
    #[arg(long)]
    retries: Option<u32>,
    /// Trust only the certificates in this PEM file (a private mirror's CA)
    #[arg(long)]
    ca_file: Option<PathBuf>,
    #[command(flatten)]
    trust: TrustArgs,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    common: PlanArgs,
    /// Only say whether an update is available (exit 3 if one is, 0 if not)
    #[arg(long)]
    check: bool,
    /// Download what the update needs into the state directory, verified, and
    /// stop; the next update installs from there (exit 3 if an update is waiting)
    #[arg(long, conflicts_with = "check")]
    fetch_only: bool,
    /// The make program for `make upgrade`
    #[arg(long, env = "BINARYDIST_MAKE")]
    make: Option<String>,
    /// Wait for another install on the same root instead of refusing
    #[arg(long)]
    wait: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("{s:?}: expected a number and s, m, h or d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    match n.checked_mul(mult) {
        Some(secs) if secs <= index::MAX_VALIDITY => Ok(Duration::from_secs(secs)),
        _ => Err(format!("{s:?}: longer than {} days", index::MAX_VALIDITY / 86400)),
    }
}

pub fn index(a: IndexArgs) -> Result<ExitCode> {
    let opts = index::BuildOptions { validity: a.valid.as_secs(), resign: a.resign, now: index::now() };
    let i = index::build(&a.distdir, &opts)?;
    let path = index::write(&a.distdir, &i)?;
    let (dists, patches) = (i.dists().count(), i.patches().count());
    println!(
        "{}: serial {}, {dists} dists, {patches} patches, expires {}",
        path.display(),
        i.serial,
        binarydist::names::stamp_from_epoch(i.expires)
    );
    // An old signature no longer matches: better none than a wrong one.
    let sig = PathBuf::from(format!("{}{}", path.display(), index::SIG_SUFFIX));
    let _ = std::fs::remove_file(sig);
    Ok(ExitCode::SUCCESS)
}

pub fn keygen(a: KeygenArgs) -> Result<ExitCode> {
    let public = a.public.clone().unwrap_or_else(|| a.secret.with_extension("pub"));
    let key = sign::keygen(&a.secret, &public, &a.password.password()?)?;
    println!("key {}: secret {}, public {}", key.id, a.secret.display(), public.display());
    Ok(ExitCode::SUCCESS)
}

pub fn sign(a: SignArgs) -> Result<ExitCode> {
    let signer = Signer::load(&a.key, &a.password.password()?)?;
    for f in &a.files {
        let data = std::fs::read(f).with_context(|| f.display().to_string())?;
        let comment = if f.file_name().is_some_and(|n| n == index::FILE) {
            let text = std::str::from_utf8(&data).map_err(|_| anyhow::anyhow!("{}: not text", f.display()))?;
            index::Index::parse(text).with_context(|| f.display().to_string())?.trusted_comment()
        } else {
            format!("binarydist signature of {}", f.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
        };
        let sig = signer.sign(&data, &comment)?;
        let out = PathBuf::from(format!("{}{}", f.display(), index::SIG_SUFFIX));
        binarydist::os::write_atomically(&out, |w| std::io::Write::write_all(w, sig.as_bytes()))
            .with_context(|| out.display().to_string())?;
        println!("{}: signed by key {} ({comment})", out.display(), signer.key.id);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn keys(a: KeysCommand) -> Result<ExitCode> {
    let (distdir, key, password, what) = match a {
        KeysCommand::Rotate { distdir, key, new, from_serial, password } => {
            let from_serial = match from_serial {
                Some(s) => s,
                None => {
                    index::read(&distdir)?.map(|i| i.serial + 1).context("no INDEX to take the next serial from: give --from-serial")?
                }
            };
            let what = StatementKind::Rotate { from_serial, key: sign::Key::read(&new)? };
            (distdir, key, password, what)
        }
        KeysCommand::Revoke { distdir, key, revoke, password } => {
            (distdir, key, password, StatementKind::Revoke { key: sign::Key::read(&revoke)? })
        }
    };
    let signer = Signer::load(&key, &password.password()?)?;
    let statement = sign::make_statement(&signer, &what)?;
    let keys = distdir.join(sign::KEYS_FILE);
    sign::append_statement(&keys, &statement)?;
    println!("{}: {}", keys.display(), statement.lines().next().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

fn config(t: &TrustArgs) -> Result<Config> {
    read_config(t.config.as_deref())
}

/// The configuration file named, else the default one when present.
pub fn read_config(path: Option<&Path>) -> Result<Config> {
    let (path, required) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(update::config::DEFAULT_PATH), false),
    };
    Ok(Config::read(&path, required)?)
}

/// The installer's settings from the configuration.
pub fn install_settings(c: &Config) -> Result<binarydist::install::Settings> {
    binarydist::install::Settings::from_values(|n| c.get(n).map(String::from)).map_err(|e| anyhow::anyhow!("the configuration: {e}"))
}

/// The installer's settings, for `install`.
pub fn settings(t: &TrustArgs) -> Result<binarydist::install::Settings> {
    install_settings(&config(t)?)
}

fn allow(t: &TrustArgs) -> trust::Allow {
    trust::Allow { replay: t.allow_replay, expired: t.allow_expired }
}

fn revoked(t: &TrustArgs, c: &Config) -> Vec<String> {
    t.revoked.iter().cloned().chain(c.list("REVOKED_KEYS")).collect()
}

fn options(a: &PlanArgs, make: Option<String>, wait: bool) -> Result<update::Options> {
    let c = config(&a.trust)?;
    let mirrors = if a.mirrors.is_empty() { c.list("MIRRORS") } else { a.mirrors.clone() };
    if mirrors.is_empty() {
        bail!("no mirror: give --mirror URL, or MIRRORS in the configuration");
    }
    let num = |flag: Option<u64>, name: &str, default: u64| -> Result<u64> {
        match (flag, c.get(name)) {
            (Some(v), _) => Ok(v),
            (None, Some(v)) => v.parse().with_context(|| format!("{name}={v:?} in the configuration is not a number")),
            (None, None) => Ok(default),
        }
    };
    let fetch = fetch::Options {
        timeout: Duration::from_secs(num(a.timeout, "TIMEOUT", 30)?),
        retries: u32::try_from(num(a.retries.map(u64::from), "RETRIES", 2)?).context("RETRIES in the configuration is too large")?,
        ca_file: a.ca_file.clone().or_else(|| c.get("CA_FILE").map(PathBuf::from)),
        progress: true,
    };
    let series = a.series.iter().map(|s| Series::parse(s)).collect::<Result<Vec<_>, _>>()?;
    Ok(update::Options {
        root: a.root.clone(),
        mirrors,
        fetch,
        pubkey: a.trust.pubkey.clone().or_else(|| c.get("PUBKEY").map(PathBuf::from)),
        revoked: revoked(&a.trust, &c),
        to: a.to.as_deref().map(DistName::parse).transpose()?,
        series,
        branch: a.branch.clone().or_else(|| c.get("BRANCH").map(String::from)),
        arch: std::env::consts::ARCH.to_string(),
        allow: allow(&a.trust),
        allow_downgrade: a.allow_downgrade,
        allow_other_arch: a.allow_other_arch,
        make: make.or_else(|| c.get("MAKE").map(String::from)).unwrap_or_else(|| "make".into()),
        wait,
        settings: install_settings(&c)?,
    })
}

pub fn plan(a: PlanArgs) -> Result<ExitCode> {
    let r = update::run(&options(&a, None, false)?, Mode::Plan).context("plan")?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("INDEX serial {} from {}", r.serial, r.mirror);
        for p in &r.plans {
            print!("{p}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn update(a: UpdateArgs) -> Result<ExitCode> {
    let mode = match (a.check, a.fetch_only) {
        (true, _) => Mode::Check,
        (_, true) => Mode::Fetch,
        _ => Mode::Update,
    };
    let opts = options(&a.common, a.make, a.wait)?;
    let r = update::run(&opts, mode).with_context(|| format!("update of {}", opts.root.display()))?;
    if a.common.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    }
    let text = !a.common.json;
    if matches!(mode, Mode::Check | Mode::Fetch) {
        let what = if mode == Mode::Fetch { "downloaded" } else { "available" };
        for p in r.plans.iter().filter(|p| p.way != plan::Way::UpToDate) {
            if text {
                println!("update {what}: {} {} -> {} ({} bytes)", p.series, p.from.as_deref().unwrap_or("nothing"), p.to, p.bytes);
            }
        }
        if !r.update_available() {
            if text {
                println!("up to date (INDEX serial {})", r.serial);
            }
            return Ok(ExitCode::SUCCESS);
        }
        return Ok(ExitCode::from(EXIT_UPDATE_AVAILABLE));
    }
    if text {
        for p in r.plans.iter().filter(|p| p.way == plan::Way::UpToDate) {
            println!("{}: {} is up to date", p.series, p.to);
        }
        for s in &r.installed {
            println!("{s}");
        }
        if r.reboot_needed {
            println!("reboot needed: a new kernel or libc was installed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify_local(root: &Path, index: &Path, files: &[PathBuf], t: &TrustArgs) -> Result<()> {
    let c = config(t)?;
    let pubkey = t.pubkey.clone().or_else(|| c.get("PUBKEY").map(PathBuf::from));
    let v = update::verify_local(root, index, files, pubkey.as_deref(), &revoked(t, &c), &allow(t))?;
    eprintln!("binarydist: {} verified against {} (serial {}, key {})", files.len(), index.display(), v.index.serial, v.signer.id);
    Ok(())
}

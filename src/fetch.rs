//! Downloads from mirrors: HTTP and HTTPS (ureq over rustls), `file://` URLs
//! and plain directories, all the same way. A file the INDEX declares is
//! fetched into the downloads directory as `NAME.part`, resumed with a Range
//! request after a cut, never read past the size the INDEX gives, and renamed
//! to `NAME` only once its size and SHA-256 match. Transient faults (refused,
//! reset, timed out, cut) are retried with backoff; then the next mirror is
//! tried, and a mirror that failed goes to the back of the list for the rest
//! of the run, so that a hanging mirror costs its timeout once, not per file.
//!
//! Proxies as fetch(1) and pkg take them: `http_proxy`/`HTTP_PROXY` for http
//! URLs, `https_proxy`/`HTTPS_PROXY` for https ones, `no_proxy`/`NO_PROXY`
//! (comma-separated host suffixes, or `*`) to bypass them.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::statedir::{Dir, StateDirError};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}: not a mirror URL (http://, https://, file:// or a directory)")]
    BadMirror(String),
    #[error("{}", path.display())]
    CaFile { path: PathBuf, source: io::Error },
    #[error("{}: no certificate in it", .0.display())]
    NoCa(PathBuf),
    #[error(transparent)]
    State(#[from] StateDirError),
    #[error("{name}: {}", summary(.tried))]
    AllFailed { name: String, tried: Vec<(String, String)> },
    #[error("{name}: more than {max} bytes; refused (an endless or hostile file)")]
    TooLarge { name: String, max: u64 },
    #[error("not enough room in {}: {need} bytes to download, {free} available; nothing was downloaded", dir.display())]
    NoSpace { dir: PathBuf, need: u64, free: u64 },
}

fn summary(tried: &[(String, String)]) -> String {
    let each: Vec<String> = tried.iter().map(|(m, e)| format!("{m}: {e}")).collect();
    format!("no mirror served it intact ({})", each.join("; "))
}

/// What went wrong with one mirror for one file.
#[derive(Debug)]
enum Fault {
    /// Worth retrying on the same mirror: refused, reset, timed out, cut short.
    Transient(String),
    /// Not on this mirror (404), or served wrong: go to the next mirror.
    Final(String),
    NotFound,
    /// Our side (the disk): no mirror can help.
    Local(FetchError),
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Connect, and wait for each read, at most this long.
    pub timeout: Duration,
    /// Retries of a transient fault on one mirror before the next is tried.
    pub retries: u32,
    /// Trust only the certificates in this PEM file (a private mirror's CA).
    pub ca_file: Option<PathBuf>,
    /// Progress on standard error (when it is a terminal).
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { timeout: Duration::from_secs(30), retries: 2, ca_file: None, progress: true }
    }
}

enum Kind {
    Http { base: String, agent: ureq::Agent },
    Local(PathBuf),
}

struct Mirror {
    label: String,
    kind: Kind,
}

pub struct Fetcher {
    mirrors: Vec<Mirror>,
    /// Mirror indices, best first; a failing mirror moves to the back.
    order: RefCell<Vec<usize>>,
    opts: Options,
}

fn proxy_for(scheme: &str, host: &str) -> Option<ureq::Proxy> {
    let var = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()));
    let no = var(&["no_proxy", "NO_PROXY"]).unwrap_or_default();
    let host = host.to_ascii_lowercase();
    let bypass = no.split(',').map(str::trim).filter(|s| !s.is_empty()).any(|s| {
        let s = s.trim_start_matches('.').to_ascii_lowercase();
        s == "*" || host == s || host.ends_with(&format!(".{s}"))
    });
    if bypass {
        return None;
    }
    let url = if scheme == "https" { var(&["https_proxy", "HTTPS_PROXY"]) } else { var(&["http_proxy", "HTTP_PROXY"]) }?;
    ureq::Proxy::new(&url).ok()
}

fn load_ca(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, FetchError> {
    let pem = std::fs::read(path).map_err(|e| FetchError::CaFile { path: path.into(), source: e })?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|i| match i {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(FetchError::NoCa(path.into()));
    }
    Ok(certs)
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let auth = rest.split('/').next().unwrap_or("");
    let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    if let Some(v6) = auth.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    auth.split(':').next().unwrap_or("")
}

impl Fetcher {
    pub fn new(urls: &[String], opts: Options) -> Result<Fetcher, FetchError> {
        let roots = match &opts.ca_file {
            Some(p) => ureq::tls::RootCerts::Specific(Arc::new(load_ca(p)?)),
            None => ureq::tls::RootCerts::WebPki,
        };
        let mut mirrors = Vec::new();
        for url in urls {
            let kind = if let Some(path) = url.strip_prefix("file://") {
                Kind::Local(PathBuf::from(path))
            } else if let Some((scheme, _)) = url.split_once("://").filter(|(s, _)| *s == "http" || *s == "https") {
                let t = Some(opts.timeout);
                let config = ureq::Agent::config_builder()
                    .timeout_connect(t)
                    .timeout_resolve(t)
                    .timeout_send_request(t)
                    .timeout_recv_response(t)
                    .timeout_per_read(t)
                    .http_status_as_error(false)
                    .proxy(proxy_for(scheme, host_of(url)))
                    .user_agent(concat!("binarydist/", env!("CARGO_PKG_VERSION")))
                    .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots.clone()).build())
                    .build();
                Kind::Http { base: url.trim_end_matches('/').to_string(), agent: config.into() }
            } else if url.contains("://") || url.is_empty() {
                return Err(FetchError::BadMirror(url.clone()));
            } else {
                Kind::Local(PathBuf::from(url))
            };
            mirrors.push(Mirror { label: url.clone(), kind });
        }
        if mirrors.is_empty() {
            return Err(FetchError::BadMirror("(none given)".into()));
        }
        let order = RefCell::new((0..mirrors.len()).collect());
        Ok(Fetcher { mirrors, order, opts })
    }

    fn demote(&self, m: usize) {
        let mut o = self.order.borrow_mut();
        o.retain(|&x| x != m);
        o.push(m);
    }

    /// Opens `name` on mirror `m` from byte `offset`; says whether the body
    /// starts there (true) or at 0 (the server ignored the Range).
    fn open(&self, m: usize, name: &str, offset: u64) -> Result<(Box<dyn Read>, bool), Fault> {
        let Some(mirror) = self.mirrors.get(m) else { return Err(Fault::Final(format!("no mirror number {m}"))) };
        match &mirror.kind {
            Kind::Local(dir) => {
                let path = dir.join(name);
                let mut f = File::open(&path).map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => Fault::NotFound,
                    _ => Fault::Final(e.to_string()),
                })?;
                f.seek(SeekFrom::Start(offset)).map_err(|e| Fault::Final(e.to_string()))?;
                Ok((Box::new(f), true))
            }
            Kind::Http { base, agent } => {
                let url = format!("{base}/{name}");
                let mut req = agent.get(&url);
                if offset > 0 {
                    req = req.header("Range", format!("bytes={offset}-"));
                }
                let resp = req.call().map_err(|e| match e {
                    ureq::Error::Timeout(_) => Fault::Transient("timed out".into()),
                    // A certificate refused is refused again: not worth a retry.
                    ureq::Error::Io(e) if e.kind() == io::ErrorKind::InvalidData => Fault::Final(e.to_string()),
                    ureq::Error::Io(e) => Fault::Transient(e.to_string()),
                    ureq::Error::ConnectionFailed => Fault::Transient("connection failed".into()),
                    ureq::Error::HostNotFound => Fault::Final("host not found".into()),
                    other => Fault::Final(other.to_string()),
                })?;
                let status = resp.status().as_u16();
                let resumed = match status {
                    200 => false,
                    206 => {
                        let cr = resp.headers().get("content-range").and_then(|v| v.to_str().ok()).unwrap_or("");
                        if !cr.starts_with(&format!("bytes {offset}-")) {
                            return Err(Fault::Final(format!(
                                "answered a range from {offset} with Content-Range \"{}\"",
                                crate::errors::shown(cr)
                            )));
                        }
                        true
                    }
                    404 | 410 => return Err(Fault::NotFound),
                    500..=599 => return Err(Fault::Transient(format!("HTTP {status}"))),
                    _ => return Err(Fault::Final(format!("HTTP {status}"))),
                };
                Ok((Box::new(resp.into_body().into_reader()), resumed))
            }
        }
    }

    /// A small file (INDEX, its signature, KEYS) from mirror `m`, at most
    /// `max` bytes: more is refused, not read on. `None` when the mirror has none.
    fn small_from(&self, m: usize, name: &str, max: u64) -> Result<Option<Vec<u8>>, Fault> {
        let mut attempt = 0;
        loop {
            let r = self.open(m, name, 0).and_then(|(body, _)| {
                let mut v = Vec::new();
                body.take(max + 1).read_to_end(&mut v).map_err(|e| read_fault(&e))?;
                if v.len() as u64 > max {
                    return Err(Fault::Local(FetchError::TooLarge { name: name.into(), max }));
                }
                Ok(v)
            });
            match r {
                Ok(v) => return Ok(Some(v)),
                Err(Fault::NotFound) => return Ok(None),
                Err(Fault::Transient(e)) if attempt < self.opts.retries => {
                    attempt += 1;
                    backoff(attempt, &e, self.label(m), name);
                }
                Err(f) => return Err(f),
            }
        }
    }

    pub fn mirror_count(&self) -> usize {
        self.mirrors.len()
    }

    pub fn label(&self, m: usize) -> &str {
        self.mirrors.get(m).map_or("?", |x| x.label.as_str())
    }

    /// Mirrors in the order to try them now.
    pub fn order(&self) -> Vec<usize> {
        self.order.borrow().clone()
    }

    /// A small file from one mirror; errors are one line each.
    pub fn small(&self, m: usize, name: &str, max: u64) -> Result<Option<Vec<u8>>, String> {
        match self.small_from(m, name, max) {
            Ok(v) => Ok(v),
            Err(f) => {
                self.demote(m);
                Err(match f {
                    Fault::Transient(e) | Fault::Final(e) => e,
                    Fault::NotFound => "not found".into(),
                    Fault::Local(e) => crate::errors::chain(&e),
                })
            }
        }
    }

    /// Marks mirror `m` as bad for the rest of the run (it served a bad INDEX).
    pub fn mark_bad(&self, m: usize) {
        self.demote(m);
    }

    /// Fetches `name` (exactly `size` bytes with this SHA-256) into `dir`,
    /// resuming `NAME.part`, from the first mirror that serves it intact.
    /// Returns the path of the verified file, `dir/NAME`.
    pub fn file(&self, dir: &Dir, name: &str, size: u64, sha256: &str) -> Result<PathBuf, FetchError> {
        if let Some(f) = dir.open(name, libc::O_RDONLY, 0)? {
            if f.metadata().map(|m| m.len()).ok() == Some(size) && sha256_hex(f).ok().as_deref() == Some(sha256) {
                return Ok(dir.path().join(name));
            }
            dir.remove(name)?;
        }
        let part = format!("{name}.part");
        let mut tried = Vec::new();
        for m in self.order() {
            let label = self.label(m).to_string();
            let mut attempt = 0;
            let outcome = loop {
                match self.try_file(m, dir, name, &part, size, sha256) {
                    Err(Fault::Transient(e)) if attempt < self.opts.retries => {
                        attempt += 1;
                        backoff(attempt, &e, &label, name);
                    }
                    other => break other,
                }
            };
            match outcome {
                Ok(()) => {
                    crate::testhooks::kill_point("downloaded");
                    dir.rename(&part, name)?;
                    return Ok(dir.path().join(name));
                }
                Err(Fault::Local(e)) => return Err(e),
                Err(f) => {
                    let why = match f {
                        Fault::Transient(e) | Fault::Final(e) => e,
                        _ => "not found".into(),
                    };
                    eprintln!("binarydist: {label}: {name}: {why}; trying the next mirror");
                    tried.push((label, why));
                    self.demote(m);
                }
            }
        }
        Err(FetchError::AllFailed { name: name.into(), tried })
    }

    fn try_file(&self, m: usize, dir: &Dir, name: &str, part: &str, size: u64, sha256: &str) -> Result<(), Fault> {
        let local = |e: StateDirError| Fault::Local(e.into());
        let io_local = |e: io::Error| Fault::Local(StateDirError::Io { path: dir.path().join(part), source: e }.into());
        let opened = dir.open(part, libc::O_RDWR | libc::O_CREAT, 0o644).map_err(local)?;
        // None only if the directory went away between the two calls.
        let mut f = opened.ok_or_else(|| io_local(io::Error::other("missing right after it was made")))?;
        let mut have = f.seek(SeekFrom::End(0)).map_err(io_local)?;
        if have >= size {
            // Complete (or too long): only the digest can tell; start over if wrong.
            if have == size && sha256_hex(&f).map_err(io_local)? == sha256 {
                return Ok(());
            }
            f.set_len(0).map_err(io_local)?;
            have = 0;
        }
        let (body, resumed) = match self.open(m, name, have) {
            Ok(x) => x,
            Err(Fault::Final(e)) if have > 0 => {
                // A mirror that cannot resume: start from nothing there.
                let _ = e;
                f.set_len(0).map_err(io_local)?;
                have = 0;
                self.open(m, name, 0)?
            }
            Err(e) => return Err(e),
        };
        if !resumed {
            f.set_len(0).map_err(io_local)?;
            have = 0;
        }
        f.seek(SeekFrom::Start(have)).map_err(io_local)?;
        let resumed_at = have;
        let mut body = body.take(size - have);
        let mut buf = vec![0u8; 256 * 1024];
        let mut progress = Progress::new(name, size, have, self.opts.progress);
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    progress.done();
                    let _ = f.sync_data();
                    return Err(match read_fault(&e) {
                        Fault::Transient(why) => Fault::Transient(format!("{why} after {have} of {size} bytes")),
                        other => other,
                    });
                }
            };
            // A reader that says it read past its buffer is broken: refuse it.
            let data = buf.get(..n).ok_or_else(|| Fault::Final(format!("read {n} bytes into a buffer of {}", buf.len())))?;
            f.write_all(data).map_err(io_local)?;
            crate::testhooks::kill_at_fetched(n as u64);
            have += n as u64;
            progress.update(have);
        }
        progress.done();
        f.sync_data().map_err(io_local)?;
        if have < size {
            return Err(Fault::Transient(format!("cut after {have} of {size} bytes")));
        }
        let got = sha256_hex(&f).map_err(io_local)?;
        if got != sha256 {
            let _ = f.set_len(0);
            if resumed_at > 0 {
                // The bad bytes may be the earlier attempt's (another mirror's):
                // this mirror gets a retry from nothing before it is blamed.
                return Err(Fault::Transient(format!("SHA-256 is {got} after resuming at byte {resumed_at}; starting over")));
            }
            return Err(Fault::Final(format!("SHA-256 is {got}, the INDEX says {sha256}; discarded")));
        }
        Ok(())
    }

    /// Fails unless `need` bytes (plus a little slack) fit in `dir`.
    pub fn check_space(dir: &Dir, need: u64) -> Result<(), FetchError> {
        let free = dir.free_bytes()?;
        let want = need + (1 << 20);
        if free < want {
            return Err(FetchError::NoSpace { dir: dir.path().to_path_buf(), need: want, free });
        }
        Ok(())
    }
}

fn read_fault(e: &io::Error) -> Fault {
    let s = e.to_string();
    if s.to_ascii_lowercase().contains("timed out") || e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock {
        Fault::Transient("timed out".into())
    } else {
        Fault::Transient(s)
    }
}

fn backoff(attempt: u32, why: &str, mirror: &str, name: &str) {
    let wait = Duration::from_millis(250 << attempt.min(6));
    eprintln!("binarydist: {mirror}: {name}: {why}; retrying in {:.1} s", wait.as_secs_f64());
    std::thread::sleep(wait);
}

/// SHA-256 of a whole file, read from its start.
pub fn sha256_hex(mut f: impl Read + Seek) -> io::Result<String> {
    f.seek(SeekFrom::Start(0))?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// A progress line on a terminal, redrawn at most five times a second.
struct Progress {
    on: bool,
    name: String,
    size: u64,
    have: u64,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new(name: &str, size: u64, have: u64, wanted: bool) -> Progress {
        let on = wanted && io::stderr().is_terminal();
        let mut p = Progress { on, name: name.to_string(), size, have, last: Instant::now(), shown: false };
        if have > 0 && on {
            eprintln!("binarydist: {name}: resuming at {have} of {size} bytes");
        }
        p.update(have);
        p
    }

    fn update(&mut self, have: u64) {
        self.have = have;
        if !self.on || (self.shown && self.last.elapsed() < Duration::from_millis(200)) {
            return;
        }
        self.draw();
    }

    fn draw(&mut self) {
        self.last = Instant::now();
        self.shown = true;
        let pct = (self.have * 100).checked_div(self.size).unwrap_or(100);
        eprint!("\r{}: {:.1} of {:.1} MiB ({pct}%)\x1b[K", self.name, self.have as f64 / 1048576.0, self.size as f64 / 1048576.0);
    }

    /// The last state drawn, then a new line.
    fn done(&mut self) {
        if self.on && self.shown {
            self.draw();
            eprintln!();
            self.shown = false;
        }
    }
}

//! A small HTTP/1.1 server of the tests' own on 127.0.0.1 (std TcpListener and
//! a thread per connection), serving a directory with Range support, over TLS
//! too, and misbehaving on purpose: hanging, cutting a body after N bytes,
//! serving wrong bytes, more than declared, or bytes without end. It counts
//! the body bytes it sends per file and records every request. Dropped, it
//! stops and joins its threads.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the server does wrong for a file.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Reads the request, then never answers (until the server stops).
    Hang,
    /// Sends the headers (the full length) and this many body bytes, then closes.
    CutAfter(u64),
    /// Sends this many body bytes, then stalls (the client must time out or be killed).
    StallAfter(u64),
    /// Flips one byte in the middle of the body.
    Corrupt,
    /// Flips the 100th byte and cuts after this many body bytes.
    CorruptThenCut(u64),
    /// Serves the body, then garbage without end (no Content-Length), until the client goes.
    Endless,
    /// Declares and sends this many bytes more than the file has.
    Extra(u64),
    /// Serves another file's bytes under this name.
    Swap(String),
}

struct Rule {
    /// Matches when the request path contains this (empty: every path).
    path_contains: String,
    fault: Fault,
    /// How many more requests it applies to (None: all).
    times: Option<usize>,
}

#[derive(Default, Debug, Clone)]
pub struct Stats {
    /// (path, range start) of every request, in order.
    pub requests: Vec<(String, Option<u64>)>,
    /// Body bytes sent, per path.
    pub sent: HashMap<String, u64>,
}

type OnSend = Box<dyn FnMut(&str, u64) + Send>;

struct Shared {
    dir: PathBuf,
    rules: Mutex<Vec<Rule>>,
    stats: Mutex<Stats>,
    stop: AtomicBool,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Called with the path and the bytes sent so far, after each chunk.
    on_send: Mutex<Option<OnSend>>,
}

pub struct Server {
    pub url: String,
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// A URL where nothing listens: a port bound, then released.
pub fn down_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/")
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, None)
    }

    /// HTTPS with the certificate and key (PEM) the test made.
    pub fn start_tls(dir: &Path, cert: &Path, key: &Path) -> Server {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert).unwrap().map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Server::start_with(dir, Some(Arc::new(config)))
    }

    fn start_with(dir: &Path, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            rules: Mutex::new(Vec::new()),
            stats: Mutex::new(Stats::default()),
            stop: AtomicBool::new(false),
            tls,
            on_send: Mutex::new(None),
        });
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (s, c) = (shared.clone(), conns.clone());
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                c.lock().unwrap().push(std::thread::spawn(move || serve(&s, stream)));
            }
        });
        Server { url: format!("{scheme}://127.0.0.1:{}/", addr.port()), shared, addr, accept: Some(accept), conns }
    }

    /// Misbehave for paths containing `path_contains` (all paths when empty),
    /// for the next `times` requests (all when None).
    pub fn fault(&self, path_contains: &str, fault: Fault, times: Option<usize>) {
        self.shared.rules.lock().unwrap().push(Rule { path_contains: path_contains.into(), fault, times });
    }

    pub fn on_send(&self, f: impl FnMut(&str, u64) + Send + 'static) {
        *self.shared.on_send.lock().unwrap() = Some(Box::new(f));
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().unwrap().clone()
    }

    /// Body bytes sent for paths containing `part`.
    pub fn sent(&self, part: &str) -> u64 {
        self.stats().sent.iter().filter(|(p, _)| p.contains(part)).map(|(_, n)| n).sum()
    }

    /// Paths requested, in order.
    pub fn requested(&self) -> Vec<String> {
        self.stats().requests.into_iter().map(|(p, _)| p).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for h in self.conns.lock().unwrap().drain(..) {
            let _ = h.join();
        }
    }
}

fn fault_for(s: &Shared, path: &str) -> Option<Fault> {
    let mut rules = s.rules.lock().unwrap();
    for r in rules.iter_mut() {
        if path.contains(&r.path_contains) && r.times != Some(0) {
            if let Some(t) = &mut r.times {
                *t -= 1;
            }
            return Some(r.fault.clone());
        }
    }
    None
}

/// Sleeps until the server stops (at most a minute: a test never waits longer).
fn wait_for_stop(s: &Shared) {
    let start = Instant::now();
    while !s.stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn serve(s: &Shared, stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    match &s.tls {
        None => {
            let r = stream.try_clone().unwrap();
            handle(s, BufReader::new(r), stream);
        }
        Some(cfg) => {
            let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
            let tls = rustls::StreamOwned::new(conn, stream);
            let shared = Arc::new(Mutex::new(tls));
            handle(s, BufReader::new(LockedRead(shared.clone())), LockedWrite(shared));
        }
    }
}

struct LockedRead(Arc<Mutex<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>>);
struct LockedWrite(Arc<Mutex<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>>);
impl Read for LockedRead {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().read(b)
    }
}
impl Write for LockedWrite {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap().flush()
    }
}

trait Close {
    fn close(&mut self);
}
impl Close for TcpStream {
    fn close(&mut self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}
impl Close for LockedWrite {
    fn close(&mut self) {
        let mut t = self.0.lock().unwrap();
        t.conn.send_close_notify();
        let _ = t.flush();
        let _ = t.sock.shutdown(Shutdown::Both);
    }
}

fn handle(s: &Shared, mut r: impl BufRead, mut w: impl Write + Close) {
    // Request line and headers, bounded.
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        head.push(line.trim_end().to_string());
        if head.len() > 100 {
            return;
        }
    }
    let Some(path) = head.first().and_then(|l| l.split(' ').nth(1)).map(|p| p.trim_start_matches('/').to_string()) else {
        return;
    };
    let range = head.iter().find_map(|h| {
        let (k, v) = h.split_once(':')?;
        if !k.eq_ignore_ascii_case("range") {
            return None;
        }
        v.trim().strip_prefix("bytes=")?.strip_suffix('-')?.parse::<u64>().ok()
    });
    s.stats.lock().unwrap().requests.push((path.clone(), range));
    let fault = fault_for(s, &path);
    if fault == Some(Fault::Hang) {
        wait_for_stop(s);
        return;
    }
    let file = match &fault {
        Some(Fault::Swap(other)) => other.clone(),
        _ => path.clone(),
    };
    let data = if path.contains("..") { None } else { std::fs::read(s.dir.join(&file)).ok() };
    let Some(mut data) = data else {
        let _ = w.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        w.close();
        return;
    };
    if fault == Some(Fault::Corrupt) && !data.is_empty() {
        let mid = data.len() / 2;
        data[mid] ^= 0x55;
    }
    if matches!(fault, Some(Fault::CorruptThenCut(_))) && data.len() > 100 {
        data[100] ^= 0x55;
    }
    let total = data.len() as u64;
    let start = range.filter(|&r| r < total).unwrap_or(0);
    let mut body = data[start as usize..].to_vec();
    if let Some(Fault::Extra(n)) = fault {
        body.extend(std::iter::repeat_n(b'X', n as usize));
    }
    let mut headers = if range.is_some() && start > 0 {
        format!("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{total}\r\n", total - 1)
    } else {
        "HTTP/1.1 200 OK\r\n".to_string()
    };
    if fault != Some(Fault::Endless) {
        headers += &format!("Content-Length: {}\r\n", body.len());
    }
    headers += "Connection: close\r\n\r\n";
    if w.write_all(headers.as_bytes()).is_err() {
        return;
    }
    let limit = match fault {
        Some(Fault::CutAfter(n)) | Some(Fault::StallAfter(n)) | Some(Fault::CorruptThenCut(n)) => n.min(body.len() as u64),
        _ => body.len() as u64,
    };
    let mut sent = 0u64;
    let count = |n: u64| {
        *s.stats.lock().unwrap().sent.entry(path.clone()).or_default() += n;
        if let Some(f) = s.on_send.lock().unwrap().as_mut() {
            f(&path, n);
        }
    };
    for chunk in body[..limit as usize].chunks(4096) {
        if w.write_all(chunk).is_err() {
            return;
        }
        sent += chunk.len() as u64;
        count(chunk.len() as u64);
    }
    match fault {
        Some(Fault::StallAfter(_)) => {
            let _ = w.flush();
            wait_for_stop(s);
        }
        Some(Fault::Endless) => {
            // Until the client hangs up (or a bound no honest client reaches).
            let junk = vec![b'Z'; 65536];
            while sent < (1 << 30) && !s.stop.load(Ordering::SeqCst) {
                if w.write_all(&junk).is_err() {
                    break;
                }
                sent += junk.len() as u64;
                count(junk.len() as u64);
            }
        }
        _ => {}
    }
    let _ = w.flush();
    w.close();
}

/// An HTTP proxy that answers CONNECT (to 127.0.0.1 only) and pipes the bytes
/// both ways; it records the targets it was asked for.
pub struct Proxy {
    pub url: String,
    pub targets: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    pub fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let targets: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (t, st) = (targets.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = stream else { continue };
                let t = t.clone();
                std::thread::spawn(move || tunnel(client, &t));
            }
        });
        Proxy { url: format!("http://127.0.0.1:{}", addr.port()), targets, stop, addr, accept: Some(accept) }
    }
}

fn tunnel(client: TcpStream, targets: &Mutex<Vec<String>>) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let mut r = BufReader::new(client.try_clone().unwrap());
    let mut first = String::new();
    if r.read_line(&mut first).is_err() {
        return;
    }
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
            break;
        }
    }
    let target = first.split(' ').nth(1).unwrap_or("").to_string();
    targets.lock().unwrap().push(target.clone());
    let mut client = client;
    if !first.starts_with("CONNECT ") || !target.starts_with("127.0.0.1:") {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    let Ok(upstream) = TcpStream::connect(&target) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    let (mut up_r, mut up_w) = (upstream.try_clone().unwrap(), upstream);
    let mut client_w = client.try_clone().unwrap();
    let down = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_r, &mut client_w);
        let _ = client_w.shutdown(Shutdown::Both);
    });
    // What the client already sent past the CONNECT head is in r's buffer.
    let _ = std::io::copy(&mut r, &mut up_w);
    let _ = up_w.shutdown(Shutdown::Write);
    let _ = down.join();
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

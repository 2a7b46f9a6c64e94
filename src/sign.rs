//! Keys and signatures: ed25519 in minisign's format, through the minisign
//! crate (no crypto of our own), so that `minisign -Vm INDEX -p KEY.pub` checks
//! what binarydist signs and binarydist checks what the minisign CLI signs.
//!
//! Keys over time: the mirror's `KEYS` file is a chain of statements, each
//! signed by a key the target already trusts: `rotate SERIAL KEY` (signed by
//! the old key: from that INDEX serial on, KEY signs) and `revoke KEY` (signed
//! by the revoked key itself or by a key of the chain). A target walks the
//! chain from its pinned key, however many rotations it missed. The format is
//! in docs/index.md; why it is shaped so, in docs/security.md.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use minisign::{KeyPair, PublicKey, SecretKey, SecretKeyBox, SignatureBox};
use std::fmt;
use std::io::{self, Cursor, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const KEYS_FILE: &str = "KEYS";
pub const KEYS_MAGIC: &str = "binarydist-keys 1";
/// A signature box is four short lines; a KEYS file a few of them.
pub const MAX_SIG_SIZE: u64 = 4096;
pub const MAX_KEYS_SIZE: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {what}", path.display())]
    Key { path: PathBuf, what: String },
    #[error("{}: exists; remove it first (a secret key is never overwritten)", path.display())]
    Exists { path: PathBuf },
    #[error("{what}: {detail}")]
    Bad { what: String, detail: String },
    #[error("{what}: signed by key {found}, but the key for INDEX serial {serial} is {expected}{why}")]
    WrongKey { what: String, found: String, expected: String, serial: u64, why: String },
    #[error("{what}: signed by key {key}, which is revoked ({how})")]
    Revoked { what: String, key: String, how: String },
    #[error("KEYS: key {key} rotates to two different keys ({a} and {b}): the key may be compromised; re-pin a key you trust")]
    Fork { key: String, a: String, b: String },
}

/// A public key and its minisign key id (16 upper-case hex digits).
#[derive(Clone)]
pub struct Key {
    pub pk: PublicKey,
    pub id: String,
    pub b64: String,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.b64 == other.b64
    }
}

fn id_of(keynum: &[u8]) -> String {
    // minisign's key numbers are 8 bytes; a shorter one reads as zero-padded.
    let mut b = [0u8; 8];
    for (d, s) in b.iter_mut().zip(keynum) {
        *d = *s;
    }
    format!("{:016X}", u64::from_le_bytes(b))
}

impl Key {
    pub fn from_base64(b64: &str) -> Result<Key, String> {
        let pk = PublicKey::from_base64(b64.trim()).map_err(|e| e.to_string())?;
        Ok(Key { id: id_of(pk.keynum()), b64: pk.to_base64(), pk })
    }

    /// A minisign public key file: an untrusted comment, then the key.
    pub fn parse(text: &str) -> Result<Key, String> {
        let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"));
        Key::from_base64(line.ok_or("no public key in it")?)
    }

    pub fn read(path: &Path) -> Result<Key, SignError> {
        let text = std::fs::read_to_string(path).map_err(|e| SignError::Io { path: path.into(), source: e })?;
        Key::parse(&text).map_err(|what| SignError::Key { path: path.into(), what })
    }

    /// The public key file's text, as minisign writes it.
    pub fn to_file_text(&self) -> String {
        format!("untrusted comment: minisign public key {}\n{}\n", self.id, self.b64)
    }

    /// True when `entry` (a key id or a public key, from a revoked list) names this key.
    pub fn is_named_by(&self, entry: &str) -> bool {
        let e = entry.trim();
        e.eq_ignore_ascii_case(&self.id) || e == self.b64
    }
}

/// Where a secret key's password comes from: a file, or none (said explicitly).
/// Never from an argument, which any user can read in ps(1).
#[derive(Debug, Clone)]
pub enum Password {
    File(PathBuf),
    None,
}

impl Password {
    fn read(&self) -> Result<Option<String>, SignError> {
        match self {
            Password::None => Ok(None),
            Password::File(p) => {
                let t = std::fs::read_to_string(p).map_err(|e| SignError::Io { path: p.clone(), source: e })?;
                let pw = t.lines().next().unwrap_or("").to_string();
                if pw.is_empty() {
                    return Err(SignError::Key { path: p.clone(), what: "the password file is empty".into() });
                }
                Ok(Some(pw))
            }
        }
    }
}

/// `binarydist keygen`: a new key pair; the secret key is created 0600 and
/// never overwritten, the public key 0644. Returns the public key.
pub fn keygen(secret: &Path, public: &Path, password: &Password) -> Result<Key, SignError> {
    let bad = |what: String| SignError::Key { path: secret.into(), what };
    let kp = match password.read()? {
        Some(pw) => KeyPair::generate_encrypted_keypair(Some(pw)),
        None => KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| bad(e.to_string()))?;
    let sk_text = kp.sk.to_box(Some("binarydist secret key")).map_err(|e| bad(e.to_string()))?.into_string();
    let key = Key::from_base64(&kp.pk.to_base64()).map_err(bad)?;
    for p in [secret, public] {
        if p.symlink_metadata().is_ok() {
            return Err(SignError::Exists { path: p.into() });
        }
    }
    write_new(secret, sk_text.as_bytes(), 0o600)?;
    write_new(public, key.to_file_text().as_bytes(), 0o644)?;
    Ok(key)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SignError> {
    let io = |e| SignError::Io { path: path.into(), source: e };
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).custom_flags(libc::O_NOFOLLOW).open(path).map_err(io)?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(io)
}

/// A secret key, decrypted, and its public half.
pub struct Signer {
    sk: SecretKey,
    pub key: Key,
}

impl Signer {
    pub fn load(secret: &Path, password: &Password) -> Result<Signer, SignError> {
        let bad = |what: String| SignError::Key { path: secret.into(), what };
        let text = std::fs::read_to_string(secret).map_err(|e| SignError::Io { path: secret.into(), source: e })?;
        let sk_box = SecretKeyBox::from_string(&text).map_err(|e| bad(e.to_string()))?;
        let sk = match password.read()? {
            Some(pw) => sk_box.into_secret_key(Some(pw)).map_err(|e| bad(format!("{e} (wrong password?)")))?,
            None => sk_box.into_unencrypted_secret_key().map_err(|e| bad(format!("{e} (a key with a password needs --password-file)")))?,
        };
        if sk.is_encrypted() {
            return Err(bad("the secret key is encrypted: give its password with --password-file".into()));
        }
        let pk = PublicKey::from_secret_key(&sk).map_err(|e| bad(e.to_string()))?;
        let key = Key::from_base64(&pk.to_base64()).map_err(bad)?;
        Ok(Signer { sk, key })
    }

    /// A minisign signature box over `data`, with `trusted` as its trusted comment.
    pub fn sign(&self, data: &[u8], trusted: &str) -> Result<String, SignError> {
        let untrusted = format!("signature from binarydist secret key {}", self.key.id);
        let sig = minisign::sign(Some(&self.key.pk), &self.sk, Cursor::new(data), Some(trusted), Some(&untrusted))
            .map_err(|e| SignError::Bad { what: "signing".into(), detail: e.to_string() })?;
        Ok(sig.into_string())
    }
}

/// The key id a signature box says it was made with (not yet verified).
pub fn signature_key_id(sig: &str) -> Result<String, String> {
    let b = SignatureBox::from_string(sig).map_err(|e| e.to_string())?;
    Ok(id_of(b.keynum()))
}

/// minisign 0.10 decodes the global signature (the box's fourth line, over the
/// signature and the trusted comment) without checking its length, then slices
/// it as 64 bytes: a shorter one panicked (found by the index fuzz target; its
/// input is in fuzz/regressions/index). Refused here first.
fn check_global_signature(sig: &str) -> Result<(), String> {
    let line = sig.lines().nth(3).unwrap_or("").trim();
    let body = line.trim_end_matches('=');
    let pad = line.len() - body.len();
    let base64 = body.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/');
    if line.len() % 4 == 0 && pad <= 2 && base64 && (line.len() / 4 * 3).checked_sub(pad) == Some(64) {
        Ok(())
    } else {
        Err("the global signature (fourth line) is not 64 bytes of base64".into())
    }
}

/// Checks a minisign signature of `data` by `key`; returns its trusted comment.
pub fn verify(key: &Key, data: &[u8], sig: &str, what: &str) -> Result<String, SignError> {
    let bad = |detail: String| SignError::Bad { what: what.into(), detail };
    let b = SignatureBox::from_string(sig).map_err(|e| bad(format!("not a minisign signature: {e}")))?;
    check_global_signature(sig).map_err(bad)?;
    minisign::verify(&key.pk, &b, Cursor::new(data), true, false, false).map_err(|e| bad(format!("bad signature: {e}")))?;
    b.trusted_comment().map_err(|e| bad(e.to_string()))
}

/// One statement of the KEYS chain, with the signature over its line.
#[derive(Debug, Clone)]
pub struct Statement {
    pub what: StatementKind,
    /// The statement line, which is what is signed (plus a newline).
    pub line: String,
    pub sig: String,
}

#[derive(Debug, Clone)]
pub enum StatementKind {
    /// From INDEX serial `from_serial` on, `key` signs (said by the key before it).
    Rotate { from_serial: u64, key: Key },
    /// `key` must not be trusted any more.
    Revoke { key: Key },
}

/// Parses a KEYS file: the magic line, then statements, each a line followed
/// by the four lines of its minisign signature box.
pub fn parse_keys(text: &str) -> Result<Vec<Statement>, SignError> {
    let bad = |n: usize, detail: String| SignError::Bad { what: format!("KEYS line {n}"), detail };
    let lines: Vec<&str> = text.lines().collect();
    if lines.first() != Some(&KEYS_MAGIC) {
        return Err(bad(1, format!("not a KEYS file (no {KEYS_MAGIC:?} line)")));
    }
    let mut out = Vec::new();
    let mut i = 1;
    while let Some(&line) = lines.get(i) {
        if line.is_empty() {
            i += 1;
            continue;
        }
        let w: Vec<&str> = line.split(' ').collect();
        let what = match w[..] {
            ["rotate", serial, key] => StatementKind::Rotate {
                from_serial: serial.parse().map_err(|_| bad(i + 1, format!("\"{}\" is not a serial", crate::errors::shown(serial))))?,
                key: Key::from_base64(key).map_err(|e| bad(i + 1, e))?,
            },
            ["revoke", key] => StatementKind::Revoke { key: Key::from_base64(key).map_err(|e| bad(i + 1, e))? },
            _ => return Err(bad(i + 1, "expected `rotate SERIAL KEY` or `revoke KEY`".into())),
        };
        let sig = lines.get(i + 1..i + 5).ok_or_else(|| bad(i + 1, "statement without its four signature lines".into()))?;
        out.push(Statement { what, line: line.to_string(), sig: sig.join("\n") + "\n" });
        i += 5;
    }
    Ok(out)
}

/// A statement ready to append to KEYS, signed by `signer`.
pub fn make_statement(signer: &Signer, what: &StatementKind) -> Result<String, SignError> {
    let (line, comment) = match what {
        StatementKind::Rotate { from_serial, key } => {
            (format!("rotate {from_serial} {}", key.b64), format!("binarydist KEYS: from serial {from_serial} key {} signs", key.id))
        }
        StatementKind::Revoke { key } => (format!("revoke {}", key.b64), format!("binarydist KEYS: key {} is revoked", key.id)),
    };
    let sig = signer.sign(format!("{line}\n").as_bytes(), &comment)?;
    Ok(format!("{line}\n{sig}"))
}

/// Appends a signed statement to a KEYS file (created with its magic line).
pub fn append_statement(keys: &Path, statement: &str) -> Result<(), SignError> {
    let io = |e| SignError::Io { path: keys.into(), source: e };
    let mut text = match std::fs::read_to_string(keys) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => format!("{KEYS_MAGIC}\n"),
        Err(e) => return Err(io(e)),
    };
    parse_keys(&text)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(statement);
    crate::os::write_atomically(keys, |f| f.write_all(text.as_bytes())).map_err(io)
}

/// The keys a target trusts, in order, each from the serial it signs from.
#[derive(Debug, Clone)]
pub struct Chain {
    pub keys: Vec<(u64, Key)>,
    /// The first of `keys`: the key the target pinned.
    pub pinned: Key,
    /// Revocations that verified, by a key of the chain or the key itself.
    pub revoked: Vec<Key>,
}

/// Walks KEYS from the pinned key. A rotation is followed when it verifies
/// with the current end of the chain and moves the serial forward; two
/// different rotations from one key are a fork, refused. A key on the local
/// revoked list is not walked through (it may be in an attacker's hands).
pub fn walk(pinned: &Key, statements: &[Statement], local_revoked: &[String]) -> Result<Chain, SignError> {
    let mut keys = vec![(0u64, pinned.clone())];
    let (mut from, mut current) = (0u64, pinned.clone());
    loop {
        if local_revoked.iter().any(|r| current.is_named_by(r)) {
            break;
        }
        let mut next: Option<(u64, Key)> = None;
        for s in statements {
            let StatementKind::Rotate { from_serial, key } = &s.what else { continue };
            if verify(&current, format!("{}\n", s.line).as_bytes(), &s.sig, "KEYS").is_err() || *from_serial <= from && keys.len() > 1 {
                continue;
            }
            match &next {
                Some((_, k)) if k != key => return Err(SignError::Fork { key: current.id.clone(), a: k.id.clone(), b: key.id.clone() }),
                _ => next = Some((*from_serial, key.clone())),
            }
        }
        match next {
            Some(n) if !keys.iter().any(|(_, k)| *k == n.1) => {
                (from, current) = n.clone();
                keys.push(n);
            }
            _ => break,
        }
    }
    let mut revoked = Vec::new();
    for s in statements {
        let StatementKind::Revoke { key } = &s.what else { continue };
        let data = format!("{}\n", s.line);
        let by_chain = keys.iter().any(|(_, k)| verify(k, data.as_bytes(), &s.sig, "KEYS").is_ok());
        if by_chain || verify(key, data.as_bytes(), &s.sig, "KEYS").is_ok() {
            revoked.push(key.clone());
        }
    }
    Ok(Chain { pinned: pinned.clone(), keys, revoked })
}

impl Chain {
    /// The key that must have signed an INDEX of this serial.
    pub fn key_for(&self, serial: u64) -> &Key {
        self.keys.iter().rev().find(|(from, _)| *from <= serial).map_or(&self.pinned, |(_, k)| k)
    }
}

/// Checks the INDEX signature: by the key the chain gives for its serial, that
/// key revoked neither by KEYS nor locally. Returns the signing key.
pub fn verify_index(chain: &Chain, local_revoked: &[String], data: &[u8], serial: u64, sig: &str) -> Result<Key, SignError> {
    let what = "INDEX.minisig".to_string();
    let key = chain.key_for(serial);
    let found = signature_key_id(sig).map_err(|detail| SignError::Bad { what: what.clone(), detail })?;
    if found != key.id {
        let at = chain.keys.iter().position(|(_, k)| k.id == found);
        let why = match (at.and_then(|i| chain.keys.get(i)), at.and_then(|i| chain.keys.get(i + 1))) {
            (_, Some((next_from, next))) => format!(" (key {found} signs only serials below {next_from}, where key {} took over)", next.id),
            // The newest key of the chain, on an INDEX older than its rotation
            // (found by the index fuzz target and the indexing lint: this indexed
            // past the chain's end, a panic; fuzz/regressions/index).
            (Some((from, _)), None) => format!(" (key {found} signs only from serial {from} on)"),
            (None, _) if chain.keys.len() > 1 => format!(" (reached through KEYS from the pinned key {})", chain.pinned.id),
            (None, _) => " (the pinned key; no rotation in KEYS leads to another)".to_string(),
        };
        return Err(SignError::WrongKey { what, found, expected: key.id.clone(), serial, why });
    }
    if chain.revoked.contains(key) {
        return Err(SignError::Revoked { what, key: key.id.clone(), how: "a revocation in KEYS".into() });
    }
    if local_revoked.iter().any(|r| key.is_named_by(r)) {
        return Err(SignError::Revoked { what, key: key.id.clone(), how: "the local revoked list".into() });
    }
    verify(key, data, sig, &what)?;
    Ok(key.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(dir: &Path, name: &str) -> Signer {
        let (s, p) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
        keygen(&s, &p, &Password::None).unwrap();
        Signer::load(&s, &Password::None).unwrap()
    }

    #[test]
    fn signatures_verify_and_tampering_does_not() {
        let t = tempfile::tempdir().unwrap();
        let a = signer(t.path(), "a");
        let sig = a.sign(b"hello\n", "binarydist test").unwrap();
        assert_eq!(verify(&a.key, b"hello\n", &sig, "x").unwrap(), "binarydist test");
        assert!(verify(&a.key, b"hellp\n", &sig, "x").is_err());
        let b = signer(t.path(), "b");
        assert!(verify(&b.key, b"hello\n", &sig, "x").is_err());
        assert!(matches!(keygen(&t.path().join("a.key"), &t.path().join("c.pub"), &Password::None), Err(SignError::Exists { .. })));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(t.path().join("a.key")).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn the_chain_is_walked_across_rotations_and_forks_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let (k1, k2, k3, evil) = (signer(t.path(), "k1"), signer(t.path(), "k2"), signer(t.path(), "k3"), signer(t.path(), "e"));
        let mut text = format!("{KEYS_MAGIC}\n");
        text += &make_statement(&k1, &StatementKind::Rotate { from_serial: 10, key: k2.key.clone() }).unwrap();
        text += &make_statement(&k2, &StatementKind::Rotate { from_serial: 20, key: k3.key.clone() }).unwrap();
        text += &make_statement(&k3, &StatementKind::Revoke { key: k1.key.clone() }).unwrap();
        // A statement by a key nobody trusts is ignored.
        text += &make_statement(&evil, &StatementKind::Revoke { key: k3.key.clone() }).unwrap();
        let st = parse_keys(&text).unwrap();
        let chain = walk(&k1.key, &st, &[]).unwrap();
        let ids: Vec<&str> = chain.keys.iter().map(|(_, k)| k.id.as_str()).collect();
        assert_eq!(ids, [k1.key.id.as_str(), k2.key.id.as_str(), k3.key.id.as_str()]);
        assert_eq!(chain.key_for(5), &k1.key);
        assert_eq!(chain.key_for(15), &k2.key);
        assert_eq!(chain.key_for(25), &k3.key);
        assert_eq!(chain.revoked, std::slice::from_ref(&k1.key));
        let sig = k3.sign(b"index", "c").unwrap();
        verify_index(&chain, &[], b"index", 25, &sig).unwrap();
        assert!(matches!(verify_index(&chain, std::slice::from_ref(&k3.key.id), b"index", 25, &sig), Err(SignError::Revoked { .. })));
        let old = k1.sign(b"index", "c").unwrap();
        assert!(matches!(verify_index(&chain, &[], b"index", 1000, &old), Err(SignError::WrongKey { .. })));
        assert!(matches!(verify_index(&chain, &[], b"index", 5, &old), Err(SignError::Revoked { .. })));

        // The newest key on an INDEX older than its rotation: refused in one
        // line (this panicked, indexing past the chain; found by fuzzing).
        // A global signature cut short (this panicked inside minisign; found by fuzzing).
        let mut lines: Vec<&str> = sig.lines().collect();
        lines[3] = "nKm+FnlzaDFNgk3Poq1796158340";
        let cut = lines.join("\n") + "\n";
        let err = verify(&k3.key, b"index", &cut, "INDEX.minisig").unwrap_err();
        assert!(err.to_string().contains("global signature"), "{err}");
        let err = verify_index(&chain, &[], b"index", 15, &sig).unwrap_err();
        assert!(matches!(err, SignError::WrongKey { .. }), "{err}");
        assert!(err.to_string().contains("signs only from serial 20 on"), "{err}");

        text += &make_statement(&k1, &StatementKind::Rotate { from_serial: 11, key: evil.key.clone() }).unwrap();
        let st = parse_keys(&text).unwrap();
        assert!(matches!(walk(&k1.key, &st, &[]), Err(SignError::Fork { .. })));
    }
}

//! What a target trusts, and the checks an INDEX must pass before anything it
//! names is downloaded: signed by the key the KEYS chain gives for its serial
//! (walked from the pinned key), that key not revoked, its serial not below
//! the last one seen (replay), and not past its expiry (a frozen mirror).
//!
//! Kept in the state directory (see statedir.rs): `keys/pinned.pub`,
//! `keys/revoked`, `serial`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::index::{self, Index};
use crate::names::stamp_from_epoch;
use crate::sign::{self, Key, SignError};
use crate::statedir::{Dir, StateDirError};
use std::path::PathBuf;

pub const KEYS_DIR: &str = "keys";
pub const PINNED: &str = "pinned.pub";
pub const REVOKED: &str = "revoked";
pub const SERIAL: &str = "serial";

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("no key to check the INDEX with: give --pubkey FILE (the mirror's public key), or PUBKEY in the configuration")]
    NoKey,
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    State(#[from] StateDirError),
    #[error("{}: {what}", path.display())]
    BadState { path: PathBuf, what: String },
    #[error("INDEX")]
    Index(#[from] index::IndexError),
    #[error("INDEX serial {serial} is older than serial {seen}, already seen: a replayed INDEX or a mirror behind; refused (--allow-replay overrides)")]
    Replay { serial: u64, seen: u64 },
    #[error("INDEX expired at {expired} (the time here is {now}): a mirror frozen on old files, or a build machine that stopped re-signing; refused (--allow-expired overrides)")]
    Expired { expired: String, now: String },
    #[error("INDEX.minisig: missing")]
    NoSignature,
}

/// Overrides of the checks, each asked for by its own flag.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    pub replay: bool,
    pub expired: bool,
}

/// The target's trust anchor and memory.
#[derive(Debug, Clone)]
pub struct Anchor {
    pub pinned: Key,
    pub last_serial: u64,
    /// Key ids or public keys never to trust: the state's list and the configuration's.
    pub revoked: Vec<String>,
}

fn read_lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
}

/// The pinned key from the state directory, else from `pubkey` (the first
/// use: the admin's copy of the mirror's key); the last serial seen; the
/// revoked keys.
pub fn load(state: Option<&Dir>, pubkey: Option<&std::path::Path>, revoked: &[String]) -> Result<Anchor, TrustError> {
    let keys = match state {
        Some(s) => s.subdir(KEYS_DIR, false)?,
        None => None,
    };
    let pinned = match keys.as_ref().map(|k| k.read_text(PINNED)).transpose()?.flatten() {
        Some(text) => Key::parse(&text)
            .map_err(|what| TrustError::BadState { path: keys.as_ref().map(|k| k.path().join(PINNED)).unwrap_or_default(), what })?,
        None => match pubkey {
            Some(p) => Key::read(p)?,
            None => return Err(TrustError::NoKey),
        },
    };
    let mut all_revoked = revoked.to_vec();
    if let Some(text) = keys.as_ref().map(|k| k.read_text(REVOKED)).transpose()?.flatten() {
        all_revoked.extend(read_lines(&text));
    }
    let last_serial = match state.map(|s| s.read_text(SERIAL)).transpose()?.flatten() {
        Some(t) => t.trim().parse().map_err(|_| TrustError::BadState {
            path: state.map(|s| s.path().join(SERIAL)).unwrap_or_default(),
            what: format!("\"{}\" is not a serial", crate::errors::shown(t.trim())),
        })?,
        None => 0,
    };
    Ok(Anchor { pinned, last_serial, revoked: all_revoked })
}

/// An INDEX that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub index: Index,
    pub signer: Key,
    /// Revocations KEYS taught us, to remember.
    pub learned_revoked: Vec<Key>,
}

/// Checks INDEX bytes, their signature and KEYS (if the mirror has one).
pub fn check(anchor: &Anchor, text: &[u8], sig: &[u8], keys: Option<&[u8]>, allow: &Allow, now: i64) -> Result<Verified, TrustError> {
    let body = std::str::from_utf8(text).map_err(|_| index::IndexError::Parse { line: 0, what: "not UTF-8 text".into() })?;
    let index = Index::parse(body)?;
    let sig = std::str::from_utf8(sig).map_err(|_| SignError::Bad { what: "INDEX.minisig".into(), detail: "not text".into() })?;
    let statements = match keys {
        Some(k) => sign::parse_keys(std::str::from_utf8(k).unwrap_or(""))?,
        None => Vec::new(),
    };
    let chain = sign::walk(&anchor.pinned, &statements, &anchor.revoked)?;
    let signer = sign::verify_index(&chain, &anchor.revoked, text, index.serial, sig)?;
    if index.serial < anchor.last_serial && !allow.replay {
        return Err(TrustError::Replay { serial: index.serial, seen: anchor.last_serial });
    }
    if now > index.expires && !allow.expired {
        return Err(TrustError::Expired { expired: stamp_from_epoch(index.expires), now: stamp_from_epoch(now) });
    }
    let learned_revoked = chain.revoked.into_iter().filter(|k| !anchor.revoked.iter().any(|r| k.is_named_by(r))).collect();
    Ok(Verified { index, signer, learned_revoked })
}

/// Remembers what a verified INDEX taught: its signer becomes the pinned key,
/// its serial the last seen (never lowered), learned revocations are kept.
pub fn persist(state: &Dir, anchor: &Anchor, v: &Verified) -> Result<(), TrustError> {
    let keys = state
        .subdir(KEYS_DIR, true)?
        .ok_or_else(|| TrustError::BadState { path: state.path().join(KEYS_DIR), what: "could not be created".into() })?;
    if v.signer != anchor.pinned || keys.read_text(PINNED)?.is_none() {
        keys.write_atomically(PINNED, v.signer.to_file_text().as_bytes(), 0o644)?;
    }
    if !v.learned_revoked.is_empty() {
        let mut text = keys.read_text(REVOKED)?.unwrap_or_default();
        for k in &v.learned_revoked {
            text.push_str(&format!("# revoked by KEYS, learned with INDEX serial {}\n{}\n", v.index.serial, k.b64));
        }
        keys.write_atomically(REVOKED, text.as_bytes(), 0o644)?;
    }
    let serial = v.index.serial.max(anchor.last_serial);
    if serial != anchor.last_serial || state.read_text(SERIAL)?.is_none() {
        state.write_atomically(SERIAL, format!("{serial}\n").as_bytes(), 0o644)?;
    }
    Ok(())
}

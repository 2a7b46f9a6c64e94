//! binarydist: binary updates for DragonFly BSD, built by the /usr/src Makefiles.
//!
//! Data flows one way through these modules, layer by layer; none imports one
//! beside or above it (README.md's "Repository layout" has the table, docs/ the build side,
//! the installer and the mirror):
//!
//! - at the bottom: `names` (dist and patch names), `tario` (tar members, the
//!   hashing tee, gzip), `os` (the calls that differ between systems) and
//!   `testhooks` (test points, empty in a shipped build);
//! - over them: `manifest` (the `+MANIFEST` member), `sidecar` (the checksum
//!   files beside a dist), `patchfile` (the patch format) and `codec` (its
//!   streams' compression), `statedir` (the state directory, opened without
//!   following symlinks), `sign` (keys, signatures, KEYS);
//! - over those: `index` (the INDEX format, which describes dists and patches
//!   by their sidecars and patch headers);
//! - the steps: `pack` makes dists, `info` describes and verifies them, `delta`
//!   makes patches and `apply` streams them, `plan` finds the cheapest chain,
//!   `fetch` downloads;
//! - `install` puts a stream of members onto a root: a dist's, or a patch
//!   chain's through `apply`;
//! - `update` joins plan, fetch and install, and is the only one that knows
//!   the network.

pub mod apply;
pub mod check;
pub mod codec;
pub mod delta;
pub mod errors;
pub mod fetch;
pub mod index;
pub mod info;
pub mod install;
pub mod log;
pub mod manifest;
pub mod names;
pub mod os;
pub mod pack;
pub mod patchfile;
pub mod plan;
pub mod sidecar;
pub mod sign;
pub mod snapshot;
pub mod statedir;
pub mod status;
pub mod tario;
pub mod testhooks;
pub mod update;

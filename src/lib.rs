//! binarydist: binary updates for DragonFly BSD, built by the /usr/src Makefiles.
//!
//! Data flows one way through these modules; none imports one beside or above
//! it (README.md's "Repository layout" has the table, docs/ the build side,
//! the installer and the mirror):
//!
//! - at the bottom: `names` (dist and patch names), `tario` (tar members, the
//!   hashing tee, gzip), `os` (the calls that differ between systems) and
//!   `testhooks` (test points, empty in a shipped build);
//! - over them: `manifest` (the `+MANIFEST` member), `sidecar` (the checksum
//!   files beside a dist), `patchfile` (the patch format), `statedir` (the
//!   state directory, opened without following symlinks), `index` (the INDEX
//!   format) and `sign` (keys, signatures, KEYS);
//! - the steps: `pack` makes dists, `info` describes and verifies them, `delta`
//!   makes patches and `apply` streams them, `install` puts a stream of members
//!   onto a root, `plan` finds the cheapest chain, `fetch` downloads;
//! - `update` joins plan, fetch and install, and is the only one that knows
//!   the network.

pub mod apply;
pub mod check;
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

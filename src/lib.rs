//! binarydist: binary updates for DragonFly BSD, built by the /usr/src Makefiles.
//!
//! Data flows one way through these modules; none imports one beside or above
//! it (README.md's "Repository layout" has the table, docs/ the build side and
//! the installer):
//!
//! - at the bottom: `names` (dist and patch names), `tario` (tar members, the
//!   hashing tee, gzip), `os` (the calls that differ between systems) and
//!   `testhooks` (test points, empty in a shipped build);
//! - over them: `manifest` (the `+MANIFEST` member), `sidecar` (the checksum
//!   files beside a dist), `patchfile` (the patch format);
//! - the steps: `pack` makes dists, `info` describes and verifies them, `delta`
//!   makes patches and `apply` streams them, `install` puts a stream of members
//!   onto a root.

pub mod apply;
pub mod delta;
pub mod errors;
pub mod info;
pub mod install;
pub mod manifest;
pub mod names;
pub mod os;
pub mod pack;
pub mod patchfile;
pub mod sidecar;
pub mod tario;
pub mod testhooks;

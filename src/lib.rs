//! binarydist: binary updates for DragonFly BSD, built by the /usr/src Makefiles.
//!
//! Data flows one way through these modules (see docs/design.md):
//! `names` and `tario` at the bottom; `manifest` over them; `pack` makes dists;
//! `delta` makes patches and `apply` streams them; `install` puts a stream of
//! members onto a root; `info` describes dists and patches. The mirror side:
//! `index` (the INDEX format), `sign` (keys, signatures, KEYS), `plan` (the
//! cheapest chain), `fetch` (downloads), `statedir` (the state directory
//! without symlinks); `update` joins plan, fetch and install, and is the only
//! one that knows the network.

pub mod apply;
pub mod delta;
pub mod fetch;
pub mod index;
pub mod info;
pub mod install;
pub mod manifest;
pub mod names;
pub mod os;
pub mod pack;
pub mod plan;
pub mod sign;
pub mod statedir;
pub mod tario;
pub mod update;

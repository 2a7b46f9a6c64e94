//! binarydist: binary updates for DragonFly BSD, built by the /usr/src Makefiles.
//!
//! Data flows one way through these modules (see docs/design.md):
//! `names` and `tario` at the bottom; `manifest` over them; `pack` makes dists;
//! `delta` makes patches and `apply` streams them; `install` puts a stream of
//! members onto a root; `info` describes dists and patches.

pub mod apply;
pub mod delta;
pub mod info;
pub mod install;
pub mod manifest;
pub mod names;
pub mod os;
pub mod pack;
pub mod tario;
pub mod testhooks;

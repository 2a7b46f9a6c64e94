//! Integration tests: the real binary, real tar/bsdtar/gzip, real bmake.
//! One test binary; each area is a module, helpers are in `util`.

mod util;

mod bsd;
mod fragment;
mod httpd;
mod install;
mod install_crash;
mod install_guards;
mod install_hostile;
mod install_patch;
mod install_sample;
mod mirror;
mod mirror_attacks;
mod pack;
mod patch;
mod patch_memory;
mod realtree;
mod workflow;

//! Integration tests: the real binary, real tar/bsdtar/gzip, real bmake.
//! One test binary; each area is a module, helpers are in `util`.

mod util;

// The suite reaches into binarydist through its test points (kill points, fake
// flags, ...), which only a test-hooks build has: `make test` runs
// `cargo test --release --features test-hooks`.
#[cfg(not(feature = "test-hooks"))]
compile_error!("the integration tests need the test-hooks feature: run `make test`, or cargo test --features test-hooks");

mod admin;
mod bsd;
mod fragment;
mod fsmodel;
mod fsreplay;
mod fstrace;
mod fuzz_corpus;
mod gzip;
mod httpd;
mod install;
mod install_crash;
mod install_faults;
mod install_guards;
mod install_hostile;
mod install_patch;
mod install_sample;
mod install_state;
mod manuals;
mod mirror;
mod mirror_attacks;
mod pack;
mod patch;
mod patch_memory;
mod powerloss;
mod props;
mod realtree;
mod shipped;
mod update_faults;
mod workflow;

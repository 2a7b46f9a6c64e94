//! The fuzz targets' bodies, one module per parser that reads outside bytes.
//! `fuzz_targets/NAME.rs` hands libFuzzer's inputs to `NAME::run`; the test
//! suite (tests/it/fuzz_corpus.rs) replays the committed corpora and every
//! finding's input through the same functions, without libFuzzer.

pub mod config;
pub mod scratch;
pub mod gunzip;
pub mod index;
pub mod install;
pub mod journal;
pub mod manifest;
pub mod names;
pub mod patch_apply;
pub mod patch_header;
pub mod tar;

#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| binarydist_fuzz::install::run(data));

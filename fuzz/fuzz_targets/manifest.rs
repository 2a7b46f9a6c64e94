#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| binarydist_fuzz::manifest::run(data));

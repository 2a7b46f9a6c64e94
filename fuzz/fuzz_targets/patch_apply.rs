#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| binarydist_fuzz::patch_apply::run(data));

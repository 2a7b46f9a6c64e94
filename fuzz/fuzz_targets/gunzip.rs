#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| binarydist_fuzz::gunzip::run(data));

#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz::controller::rules_language(data));

//! Fuzz target `xmltv_time`: the property is checked by `lineup_fuzz::xmltv_time` (see fuzz/src/lib.rs),
//! shared with the stable replay test so a saved crash reproduces under `cargo test`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lineup_fuzz::run("xmltv_time", data));

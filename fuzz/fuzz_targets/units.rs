//! Fuzz target `units`: the property is checked by `lineup_fuzz::units` (see fuzz/src/lib.rs),
//! shared with the stable replay test so a saved crash reproduces under `cargo test`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lineup_fuzz::run("units", data));

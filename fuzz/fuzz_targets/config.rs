//! Fuzz target `config`: the property is checked by `lineup_fuzz::config` (see fuzz/src/lib.rs),
//! shared with the stable replay test so a saved crash reproduces under `cargo test`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lineup_fuzz::run("config", data));

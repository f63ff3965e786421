//! Runs every committed input of every target (the seed corpus in `corpus/TARGET/` and the
//! minimised crashes in `regressions/TARGET/`) through the target's check, on stable, without
//! libFuzzer: `cargo test --manifest-path fuzz/Cargo.toml`. A crash found by fuzzing is saved in
//! `regressions/` so it stays fixed.

use std::fs;
use std::path::Path;

#[test]
fn every_committed_input_passes_its_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    for target in lineup_fuzz::TARGETS {
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("readable directory").path();
                let data = fs::read(&path).expect("readable input");
                let outcome = std::panic::catch_unwind(|| lineup_fuzz::run(target, &data));
                assert!(outcome.is_ok(), "{target}: {} fails", path.display());
                ran += 1;
            }
        }
    }
    // The seed corpus is committed: no inputs means the test is looking in the wrong place.
    assert!(ran >= lineup_fuzz::TARGETS.len(), "only {ran} inputs found");
}

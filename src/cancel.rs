//! Ctrl-C and SIGTERM: the first one sets a flag that every long loop checks (so temporary
//! files are dropped and removed, and open transactions roll back); a second one ends the
//! process at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

/// Install the handlers and return the flag they set.
pub fn install() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Order matters: the conditional shutdown sees the flag already set on a second signal.
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag));
        let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
    }
    flag
}

pub fn requested(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}

//! Retrying a failed attempt: exponential backoff `base * 2^n` capped at `max`, with full jitter
//! (a random wait in `[0, cap]`, so that many `lineup` timers hitting one provider at the same
//! minute spread out), `Retry-After` honoured up to `max`, and two ways to stop early: the
//! build-wide `total_timeout` deadline and the Ctrl-C flag, both checked between attempts and
//! during the sleeps (which are cut into short slices for that).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::error::{FetchError, FetchErrorKind};
use super::settings::BackoffPolicy;

/// Longest uninterrupted sleep: how late a Ctrl-C may be noticed during a backoff.
const SLICE: Duration = Duration::from_millis(50);

/// What bounds all the fetching of one build.
#[derive(Debug, Clone, Copy)]
pub struct Control<'a> {
    /// End of `total_timeout`: no attempt starts or runs past it.
    pub deadline: Instant,
    /// Set on Ctrl-C.
    pub cancel: &'a AtomicBool,
}

impl Control<'_> {
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Time left before the deadline (zero once past it).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// The wait before retry number `n` (0 = the first retry), before jitter.
pub fn backoff_cap(policy: &BackoffPolicy, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
    policy
        .base
        .checked_mul(factor)
        .unwrap_or(policy.max)
        .min(policy.max)
}

/// The wait before retry number `n`, jittered when the policy says so.
pub fn backoff_delay(policy: &BackoffPolicy, n: u32, rng: &mut XorShift) -> Duration {
    let cap = backoff_cap(policy, n);
    if !policy.jitter || cap.is_zero() {
        return cap;
    }
    let nanos = cap.as_nanos().min(u64::MAX as u128) as u64;
    Duration::from_nanos(rng.next_u64() % (nanos + 1))
}

/// Run `attempt` up to `retries + 1` times. On failure the error carries the number of attempts
/// made; on success so does the returned count.
pub fn with_retries<T>(
    retries: u32,
    policy: &BackoffPolicy,
    ctl: &Control<'_>,
    mut attempt: impl FnMut() -> Result<T, FetchError>,
) -> Result<(T, u32), FetchError> {
    let mut rng = XorShift::seeded();
    let mut attempts = 0u32;
    loop {
        if ctl.cancelled() {
            return Err(stopped(FetchErrorKind::Cancelled, "interrupted", attempts));
        }
        if ctl.remaining().is_zero() {
            return Err(stopped(
                FetchErrorKind::DeadlineExceeded,
                "total_timeout reached before the download could start",
                attempts,
            ));
        }
        attempts += 1;
        let err = match attempt() {
            Ok(value) => return Ok((value, attempts)),
            Err(err) => err,
        };
        let mut err = FetchError { attempts, ..err };
        if !err.kind.is_retryable() || attempts > retries {
            return Err(err);
        }
        let wait = match err.retry_after {
            Some(asked) => asked.min(policy.max),
            None => backoff_delay(policy, attempts - 1, &mut rng),
        };
        if wait >= ctl.remaining() {
            err.message
                .push_str("; total_timeout leaves no time for another attempt");
            return Err(err);
        }
        if !sleep(wait, ctl) {
            return Err(stopped(FetchErrorKind::Cancelled, "interrupted", attempts));
        }
    }
}

fn stopped(kind: FetchErrorKind, message: &str, attempts: u32) -> FetchError {
    FetchError {
        attempts,
        ..FetchError::new(kind, message)
    }
}

/// Sleep in short slices; false when cancelled meanwhile.
fn sleep(total: Duration, ctl: &Control<'_>) -> bool {
    let end = Instant::now() + total;
    loop {
        if ctl.cancelled() {
            return false;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(SLICE));
    }
}

/// A tiny xorshift64* generator: jitter needs spread, not cryptographic quality, and this
/// avoids a dependency.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeded from the clock, the process id and a stack address, so that two processes
    /// started in the same instant still differ.
    pub fn seeded() -> XorShift {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let local = 0u8;
        let addr = &local as *const u8 as u64;
        XorShift::new(nanos ^ (u64::from(std::process::id()) << 32) ^ addr.rotate_left(17))
    }

    pub fn new(seed: u64) -> XorShift {
        // Zero is the one state xorshift never leaves.
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: bool) -> BackoffPolicy {
        BackoffPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter,
        }
    }

    #[test]
    fn exponential_capped_and_jittered_within_cap() {
        let p = policy(false);
        let caps: Vec<_> = (0..6).map(|n| backoff_cap(&p, n).as_millis()).collect();
        assert_eq!(caps, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff_cap(&p, 200), Duration::from_secs(1));
        let mut rng = XorShift::new(7);
        let p = policy(true);
        let delays: Vec<_> = (0..50).map(|_| backoff_delay(&p, 3, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(800)));
        // Full jitter spreads: not every draw is the same.
        assert!(delays.iter().any(|d| *d != delays[0]));
    }

    fn quick() -> BackoffPolicy {
        BackoffPolicy {
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
            jitter: true,
        }
    }

    #[test]
    fn retries_only_retryable_kinds_and_counts_attempts() {
        let cancel = AtomicBool::new(false);
        let ctl = Control {
            deadline: Instant::now() + Duration::from_secs(60),
            cancel: &cancel,
        };
        let mut calls = 0;
        let (value, attempts) = with_retries(3, &quick(), &ctl, || {
            calls += 1;
            if calls < 3 {
                Err(FetchError::new(FetchErrorKind::Status(503), "503"))
            } else {
                Ok("done")
            }
        })
        .unwrap();
        assert_eq!((value, attempts), ("done", 3));

        let err = with_retries(5, &quick(), &ctl, || -> Result<(), _> {
            Err(FetchError::new(FetchErrorKind::Status(404), "404"))
        })
        .unwrap_err();
        assert_eq!((err.kind, err.attempts), (FetchErrorKind::Status(404), 1));

        let err = with_retries(2, &quick(), &ctl, || -> Result<(), _> {
            Err(FetchError::new(FetchErrorKind::Timeout, "slow"))
        })
        .unwrap_err();
        assert_eq!((err.kind, err.attempts), (FetchErrorKind::Timeout, 3));
    }

    #[test]
    fn cancel_and_deadline_stop_retrying() {
        let cancel = AtomicBool::new(false);
        let ctl = Control {
            deadline: Instant::now() + Duration::from_secs(60),
            cancel: &cancel,
        };
        let err = with_retries(10, &quick(), &ctl, || -> Result<(), _> {
            cancel.store(true, Ordering::Relaxed);
            Err(FetchError::new(FetchErrorKind::Connect, "refused"))
        })
        .unwrap_err();
        assert_eq!((err.kind, err.attempts), (FetchErrorKind::Cancelled, 1));

        let cancel = AtomicBool::new(false);
        let past = Control {
            deadline: Instant::now(),
            cancel: &cancel,
        };
        let err = with_retries(3, &quick(), &past, || Ok(())).unwrap_err();
        assert_eq!(
            (err.kind, err.attempts),
            (FetchErrorKind::DeadlineExceeded, 0)
        );

        // A Retry-After longer than what is left of the deadline ends the retries at once.
        let soon = Control {
            deadline: Instant::now() + Duration::from_millis(500),
            cancel: &cancel,
        };
        let slow = BackoffPolicy {
            max: Duration::from_secs(30),
            ..quick()
        };
        let err = with_retries(3, &slow, &soon, || -> Result<(), _> {
            let mut e = FetchError::new(FetchErrorKind::Status(429), "busy");
            e.retry_after = Some(Duration::from_secs(20));
            Err(e)
        })
        .unwrap_err();
        assert_eq!((err.kind, err.attempts), (FetchErrorKind::Status(429), 1));
    }
}

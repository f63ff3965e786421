//! The memory budget and its pressure levels.
//!
//! The budget is `--memory-limit` / `settings.memory_limit`, else derived once at start from
//! sysinfo: half of the cgroup's memory limit when one is set (containers, systemd
//! `MemoryMax=`), else half of the memory available now, and never less than 64 MiB. Stages
//! reserve what they buffer ([`Budget::try_reserve`]); a reservation that would take the
//! accounted total past the budget fails, and the stage spills instead of growing.
//!
//! Pressure is the larger of the accounted bytes and the process's resident set size (a
//! cheap `/proc/self/statm` read, refreshed at most every [`RSS_EVERY`] checks), as a share of
//! the budget: optimal < 50%, moderate < 70%, high < 85%, critical < 95%, emergency beyond.
//! Resident size counts what accounting cannot see (allocator slack, SQLite's page cache,
//! libraries), so the two together keep the process near its budget; the sorts also write a
//! run when the resident size passes 15/16 of the budget ([`Budget::resident_full`]), so that
//! the budget bounds the process's peak resident size, not only what is accounted (issue 14:
//! 2M channels sorted under 256 MiB had peaked at 771 MiB). What a build reports
//! (peak resident size, worst pressure) comes from the kernel's high-water mark (`VmHWM`),
//! not from these samples.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

use crate::config::units::HumanBytes;

/// The smallest budget derived from the machine.
const MIN_DERIVED: u64 = 64 << 20;
/// Resident size is read once per this many pressure checks.
pub const RSS_EVERY: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pressure {
    Optimal = 0,
    Moderate = 1,
    High = 2,
    Critical = 3,
    Emergency = 4,
}

impl Pressure {
    pub fn from_share(share: f64) -> Pressure {
        match share {
            s if s < 0.50 => Pressure::Optimal,
            s if s < 0.70 => Pressure::Moderate,
            s if s < 0.85 => Pressure::High,
            s if s < 0.95 => Pressure::Critical,
            _ => Pressure::Emergency,
        }
    }

    fn from_u8(v: u8) -> Pressure {
        match v {
            0 => Pressure::Optimal,
            1 => Pressure::Moderate,
            2 => Pressure::High,
            3 => Pressure::Critical,
            _ => Pressure::Emergency,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Pressure::Optimal => "optimal",
            Pressure::Moderate => "moderate",
            Pressure::High => "high",
            Pressure::Critical => "critical",
            Pressure::Emergency => "emergency",
        }
    }

    /// How much to scale chunk and buffer sizes at this level.
    pub fn scale(self) -> f64 {
        match self {
            Pressure::Optimal => 1.0,
            Pressure::Moderate => 0.75,
            Pressure::High => 0.5,
            Pressure::Critical => 0.25,
            Pressure::Emergency => 0.1,
        }
    }
}

/// The budget, shared by every stage of a build.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    reserved: AtomicU64,
    peak_reserved: AtomicU64,
    level: AtomicU8,
    max_level: AtomicU8,
    checks: AtomicUsize,
    rss: AtomicU64,
    peak_rss: AtomicU64,
    /// Spilled bytes and files, across every accumulator.
    pub spilled_bytes: AtomicU64,
    pub spill_files: AtomicU64,
}

impl Budget {
    pub fn new(limit: u64) -> Arc<Budget> {
        Arc::new(Budget {
            limit: limit.max(1),
            reserved: AtomicU64::new(0),
            peak_reserved: AtomicU64::new(0),
            level: AtomicU8::new(0),
            max_level: AtomicU8::new(0),
            checks: AtomicUsize::new(0),
            rss: AtomicU64::new(0),
            peak_rss: AtomicU64::new(0),
            spilled_bytes: AtomicU64::new(0),
            spill_files: AtomicU64::new(0),
        })
    }

    /// The budget from the command line or configuration, else from the machine.
    pub fn from_settings(limit: Option<u64>) -> Arc<Budget> {
        Budget::new(limit.unwrap_or_else(derived_limit))
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Relaxed)
    }

    /// Reserve `bytes`, or `None` when that would pass the budget.
    pub fn try_reserve(self: &Arc<Self>, bytes: u64) -> Option<Reservation> {
        let mut current = self.reserved.load(Ordering::Relaxed);
        loop {
            let next = current.checked_add(bytes)?;
            if next > self.limit {
                return None;
            }
            match self.reserved.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
        self.peak_reserved
            .fetch_max(current + bytes, Ordering::Relaxed);
        Some(Reservation {
            budget: Arc::clone(self),
            bytes,
        })
    }

    /// An empty reservation, to grow later.
    pub fn empty(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: Arc::clone(self),
            bytes: 0,
        }
    }

    /// Re-evaluate the pressure level; logs a level worse than any before at info level, and
    /// other changes at debug level.
    pub fn pressure(&self) -> Pressure {
        let n = self.checks.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(RSS_EVERY) {
            let rss = current_rss();
            self.rss.store(rss, Ordering::Relaxed);
            self.peak_rss.fetch_max(rss, Ordering::Relaxed);
        }
        let used = self.reserved().max(self.rss.load(Ordering::Relaxed));
        let level = Pressure::from_share(used as f64 / self.limit as f64);
        let before = self.level.swap(level as u8, Ordering::Relaxed);
        let worst = self.max_level.fetch_max(level as u8, Ordering::Relaxed);
        if before != level as u8 {
            let line = format_args!(
                "memory: pressure {} ({} accounted, {} resident, budget {})",
                level.as_str(),
                HumanBytes(self.reserved()),
                HumanBytes(self.rss.load(Ordering::Relaxed)),
                HumanBytes(self.limit)
            );
            // A sort's resident size falls after each run it writes and rises with the next:
            // only a level worse than any before is news; the rest is for `-v`.
            if level as u8 > worst {
                crate::info!("{line}");
            } else {
                crate::debug!("{line}");
            }
        }
        level
    }

    /// The worst pressure of the build so far: the worst level seen by [`Budget::pressure`],
    /// or the level of the process's real peak resident size ([`peak_rss`], `VmHWM`) if that
    /// is worse. Sampling alone misses a spike between two reads.
    pub fn max_pressure(&self) -> Pressure {
        let sampled = Pressure::from_u8(self.max_level.load(Ordering::Relaxed));
        sampled.max(Pressure::from_share(peak_rss() as f64 / self.limit as f64))
    }

    /// Whether the process's resident size is past 15/16 of the budget (read now): the
    /// sorts write a run then even when their reservation would still grow.
    pub fn resident_full(&self) -> bool {
        let rss = current_rss();
        self.peak_rss.fetch_max(rss, Ordering::Relaxed);
        rss > self.limit - self.limit / 16
    }

    pub fn peak_reserved(&self) -> u64 {
        self.peak_reserved.load(Ordering::Relaxed)
    }
}

/// Bytes reserved from the budget; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Reservation {
    /// Grow by `more` bytes, or return false (and stay as is) when the budget says no.
    pub fn try_grow(&mut self, more: u64) -> bool {
        match self.budget.try_reserve(more) {
            Some(extra) => {
                self.bytes += extra.bytes;
                std::mem::forget(extra);
                true
            }
            None => false,
        }
    }

    /// Grow by `more` bytes whatever the budget says: for buffers that are bounded by other
    /// means (the rolling buffer's capacity, dedupe's keys) and must be seen by the pressure
    /// level even when they cannot shrink.
    pub fn grow_unchecked(&mut self, more: u64) {
        let now = self.budget.reserved.fetch_add(more, Ordering::AcqRel) + more;
        self.budget.peak_reserved.fetch_max(now, Ordering::Relaxed);
        self.bytes += more;
    }

    /// Shrink by `less` bytes (at most what is held).
    pub fn shrink(&mut self, less: u64) {
        let less = less.min(self.bytes);
        self.budget.reserved.fetch_sub(less, Ordering::AcqRel);
        self.bytes -= less;
    }

    /// Give back everything reserved so far.
    pub fn release(&mut self) {
        self.budget.reserved.fetch_sub(self.bytes, Ordering::AcqRel);
        self.bytes = 0;
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release();
    }
}

/// Half of the cgroup limit, else half of the available memory; at least [`MIN_DERIVED`].
fn derived_limit() -> u64 {
    let Ok(mut sys) = sysinfo::System::new() else {
        return MIN_DERIVED;
    };
    sys.refresh_memory();
    let available = sys.available_memory();
    let usable = match sys.cgroup_limits() {
        Some(c) if c.total_memory > 0 => c.total_memory.min(available),
        _ => available,
    };
    (usable / 2).max(MIN_DERIVED)
}

/// Resident set size of this process (Linux `/proc/self/statm`); 0 where unknown.
pub fn current_rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// Peak resident set size of this process so far (Linux `VmHWM`); 0 where unknown. Never
/// less than the resident size now: the kernel's counters behind `VmHWM` and `statm` are
/// per-CPU approximations, and on Linux 6.18 `VmHWM` was seen 0.7 MB below `statm`.
pub fn peak_rss() -> u64 {
    vm_hwm().max(current_rss())
}

fn vm_hwm() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_respect_the_limit_and_release_on_drop() {
        let budget = Budget::new(1000);
        let a = budget.try_reserve(600).unwrap();
        assert!(budget.try_reserve(500).is_none());
        let mut b = budget.empty();
        assert!(b.try_grow(400));
        assert!(!b.try_grow(1));
        assert_eq!(budget.reserved(), 1000);
        drop(a);
        assert!(b.try_grow(100));
        drop(b);
        assert_eq!(budget.reserved(), 0);
        assert_eq!(budget.peak_reserved(), 1000);
    }

    #[test]
    fn levels() {
        assert_eq!(Pressure::from_share(0.1), Pressure::Optimal);
        assert_eq!(Pressure::from_share(0.6), Pressure::Moderate);
        assert_eq!(Pressure::from_share(0.8), Pressure::High);
        assert_eq!(Pressure::from_share(0.9), Pressure::Critical);
        assert_eq!(Pressure::from_share(0.99), Pressure::Emergency);
        assert!(current_rss() > 0);
        // A budget smaller than what the process already holds is under pressure at once.
        let tiny = Budget::new(1);
        assert_eq!(tiny.pressure(), Pressure::Emergency);
        assert_eq!(tiny.max_pressure(), Pressure::Emergency);
    }

    #[test]
    fn resident_full_past_fifteen_sixteenths() {
        // The test process itself is far past 1 KiB and far below 1 TiB.
        assert!(Budget::new(1024).resident_full());
        assert!(!Budget::new(1 << 40).resident_full());
    }

    #[test]
    fn worst_pressure_counts_the_real_peak_between_samples() {
        // No pressure check ever ran, but the process did reach this size.
        let peak = peak_rss();
        // (Not compared with a later `current_rss()`: other tests of this process allocate
        // meanwhile.)
        assert!(peak > 0);
        let budget = Budget::new(peak);
        assert_eq!(budget.max_pressure(), Pressure::Emergency);
    }
}

//! The shrink guard: never replace a last good copy with a much smaller one. A fresh copy
//! (a source's channels, a guide's programmes, a proxy's playlist) with fewer items than
//! `(1 - max_shrink)` x the last good copy's is refused, and so is an empty copy when the
//! last good one had items. `max_shrink = "100%"` turns the guard off; a copy with no earlier
//! copy to compare with is always taken; `--accept-shrink NAME` takes one refused copy on
//! purpose. The same rule serves sources, guides and proxy outputs.

use crate::config::values::Percent;

/// How one copy is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guard {
    /// Items of the last good copy; `None` when there is none.
    pub previous: Option<u64>,
    pub max_shrink: Percent,
    /// `--accept-shrink` named this source, guide or proxy.
    pub accepted: bool,
}

/// A refused copy: the error the report and the log show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shrunk {
    pub new_items: u64,
    pub previous_items: u64,
    /// `channels` or `programmes`.
    pub what: &'static str,
    pub max_shrink: String,
}

impl std::fmt::Display for Shrunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}, the last good copy has {} (max_shrink {}); kept the last good copy \
             (--accept-shrink takes the new one)",
            thousands(self.new_items),
            self.what,
            thousands(self.previous_items),
            self.max_shrink
        )
    }
}

impl std::error::Error for Shrunk {}

impl Guard {
    /// Refuse `new_items` when it shrank too much against the last good copy.
    pub fn check(&self, new_items: u64, what: &'static str) -> Result<(), Shrunk> {
        match self.previous {
            Some(previous) if !self.accepted && shrank(new_items, previous, self.max_shrink) => {
                Err(Shrunk {
                    new_items,
                    previous_items: previous,
                    what,
                    max_shrink: self.max_shrink.to_string(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// Whether `new_items` is too few against `previous` under `max_shrink` (100% never is).
pub fn shrank(new_items: u64, previous: u64, max_shrink: Percent) -> bool {
    if max_shrink.0 >= 100.0 || previous == 0 {
        return false;
    }
    if new_items == 0 {
        return true;
    }
    (new_items as f64) < (1.0 - max_shrink.0 / 100.0) * previous as f64
}

/// `4210` as `4,210`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(previous: Option<u64>, pct: f64, accepted: bool) -> Guard {
        Guard {
            previous,
            max_shrink: Percent(pct),
            accepted,
        }
    }

    #[test]
    fn shrink_rule() {
        // 60% down is refused at 50%, 40% down is taken.
        assert!(guard(Some(100), 50.0, false).check(40, "channels").is_err());
        assert!(guard(Some(100), 50.0, false).check(60, "channels").is_ok());
        assert!(guard(Some(100), 50.0, false).check(50, "channels").is_ok());
        // Empty against a copy with items: refused even with a generous limit.
        assert!(guard(Some(3), 99.0, false).check(0, "channels").is_err());
        // Off, accepted, or nothing to compare with: taken.
        assert!(guard(Some(100), 100.0, false).check(0, "channels").is_ok());
        assert!(guard(Some(100), 50.0, true).check(0, "channels").is_ok());
        assert!(guard(None, 50.0, false).check(0, "channels").is_ok());
        assert!(guard(Some(0), 50.0, false).check(0, "channels").is_ok());
        // Growth is always fine.
        assert!(guard(Some(10), 0.0, false).check(11, "channels").is_ok());
        assert!(guard(Some(10), 0.0, false).check(9, "channels").is_err());
    }

    #[test]
    fn message_names_both_counts() {
        let e = guard(Some(4210), 50.0, false)
            .check(12, "channels")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("12 channels, the last good copy has 4,210 (max_shrink 50%)"),
            "{e}"
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}

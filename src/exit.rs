//! The exit codes of SPEC section 1, in one table, and the error that carries one.

use std::fmt;

/// Every exit code `lineup` uses. `lineup(1)` documents the same table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Success (or `unchanged` with `--if-changed`).
    Success = 0,
    /// A runtime error not covered below.
    Runtime = 1,
    /// Usage or configuration error: nothing fetched, nothing written.
    Usage = 2,
    /// Degraded: outputs written, but at least one source failed and its cached data (or
    /// nothing) was used (a shrunken copy refused, a source skipped or disabled), or a proxy's
    /// shrunken output was refused and its previous outputs kept, or a corrupt database was
    /// set aside and a fresh one started.
    Degraded = 3,
    /// Fewer than `min_successful_sources` sources fresh in this build (cached copies do not
    /// count), or `fail_fast` stopped it: previous outputs left untouched.
    TooFewSources = 4,
    /// Another `lineup build` holds the lock on this database.
    Locked = 5,
}

/// The table as printed in `--help` and the man page.
pub const TABLE: &str = "\
EXIT STATUS:
  0  success (or `unchanged` with --if-changed)
  1  runtime error not covered below
  2  usage or configuration error: nothing fetched, nothing written
  3  degraded: outputs written, but a source failed, was refused by max_shrink, skipped or
     disabled and its cached data (or nothing) was used, or a proxy's output shrank past
     max_shrink and its previous outputs were kept, or a corrupt database was set aside
     (renamed NAME.corrupt-<UTC time>) and a fresh one started
  4  fewer than min_successful_sources sources fresh in this build (fetched or not modified;
     cached, refused, skipped and disabled ones do not count), or fail_fast stopped it:
     previous outputs left untouched
  5  another `lineup build` holds the lock on this database";

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error that decides the exit code.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            exit,
            error: error.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Failure {}

/// Anything else is a runtime error.
impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        match error.downcast::<Failure>() {
            Ok(f) => f,
            Err(error) => match error.downcast::<crate::config::ConfigErrors>() {
                Ok(c) => Failure::new(Exit::Usage, c),
                Err(error) => Failure::new(Exit::Runtime, error),
            },
        }
    }
}

//! Getting source data over the network: HTTP downloads with retries, limits and conditional
//! requests (`http`, `retry`), the per-source settings they run with (`settings`), and the
//! Xtream Codes API turned into channels (`xtream`). Every download lands in a spool file that
//! the parsers then read; errors are typed (`error`) and masked when shown.

pub mod error;
pub mod http;
pub mod retry;
pub mod settings;
pub mod xtream;
pub mod xtream_json;

pub use error::{FetchError, FetchErrorKind};
pub use http::{Client, Download, FetchOutcome, MAX_REDIRECTS, SPOOL_PREFIX, Validators};
pub use retry::Control;
pub use settings::{BackoffPolicy, SourceFetch};

#[cfg(test)]
#[path = "../../tests/support/http_server.rs"]
mod http_server;

#[cfg(test)]
mod tests;

//! Why a download failed, typed so that the retry loop and the build decide from the kind (retry
//! or not, cached copy or exit code) and never from message text. Messages are masked when they
//! are shown: URLs carry Xtream credentials and userinfo passwords.

use std::fmt;
use std::time::Duration;

/// What went wrong, as far as a caller needs to decide on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchErrorKind {
    /// The attempt took longer than `timeout` (or than what was left of `total_timeout`).
    Timeout,
    /// Name resolution or the TCP/TLS connection failed.
    Connect,
    /// The server answered with this (error) status.
    Status(u16),
    /// The body is larger than `max_size`.
    TooLarge,
    /// The connection ended before the announced body was complete.
    Truncated,
    /// More redirects than allowed, e.g. a loop.
    TooManyRedirects,
    /// The server broke HTTP (bad status line, bad chunking).
    Protocol,
    /// A network read or write failed mid-way.
    Io,
    /// The spool file could not be written: a local problem, not the source's.
    Spool,
    /// The request could not be made: not an http(s) URL, an invalid header.
    BadRequest,
    /// TLS failed (certificate not trusted, handshake error).
    Tls,
    /// The build was interrupted (Ctrl-C).
    Cancelled,
    /// `total_timeout` was used up before this source could be tried.
    DeadlineExceeded,
}

impl FetchErrorKind {
    /// Whether another attempt may succeed: connection trouble, timeouts, cut bodies, 5xx, 408
    /// and 429. Other 4xx, size and redirect problems will not change by asking again.
    pub fn is_retryable(self) -> bool {
        match self {
            FetchErrorKind::Timeout
            | FetchErrorKind::Connect
            | FetchErrorKind::Truncated
            | FetchErrorKind::Protocol
            | FetchErrorKind::Io => true,
            FetchErrorKind::Status(code) => code >= 500 || code == 408 || code == 429,
            FetchErrorKind::TooLarge
            | FetchErrorKind::TooManyRedirects
            | FetchErrorKind::Spool
            | FetchErrorKind::BadRequest
            | FetchErrorKind::Tls
            | FetchErrorKind::Cancelled
            | FetchErrorKind::DeadlineExceeded => false,
        }
    }

    /// Short stable name, for reports and the health table.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchErrorKind::Timeout => "timeout",
            FetchErrorKind::Connect => "connect",
            FetchErrorKind::Status(_) => "status",
            FetchErrorKind::TooLarge => "too_large",
            FetchErrorKind::Truncated => "truncated",
            FetchErrorKind::TooManyRedirects => "too_many_redirects",
            FetchErrorKind::Protocol => "protocol",
            FetchErrorKind::Io => "io",
            FetchErrorKind::Spool => "spool",
            FetchErrorKind::BadRequest => "bad_request",
            FetchErrorKind::Tls => "tls",
            FetchErrorKind::Cancelled => "cancelled",
            FetchErrorKind::DeadlineExceeded => "deadline_exceeded",
        }
    }
}

/// A failed download, after all its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    pub kind: FetchErrorKind,
    /// Every try, the failed last one included (0 when none could start).
    pub attempts: u32,
    /// What happened, unmasked; shown only through `Display`, which masks it.
    pub message: String,
    /// The HTTP status of the last response, if one arrived.
    pub http_status: Option<u16>,
    /// A `Retry-After` the server asked for (429/503), honoured by the retry loop.
    pub retry_after: Option<Duration>,
}

impl FetchError {
    pub fn new(kind: FetchErrorKind, message: impl Into<String>) -> FetchError {
        FetchError {
            kind,
            attempts: 0,
            message: message.into(),
            http_status: match kind {
                FetchErrorKind::Status(code) => Some(code),
                _ => None,
            },
            retry_after: None,
        }
    }

    /// The masked message with its attempt count: what logs, reports and the health table get.
    pub fn masked(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::secrets::mask(&self.message))?;
        match self.attempts {
            0 | 1 => Ok(()),
            n => write!(f, " (after {n} attempts)"),
        }
    }
}

impl std::error::Error for FetchError {}

//! Downloading one URL: a synchronous ureq client (rustls, certificates verified), one request
//! per attempt with the attempt's timeout covering connect, headers and the whole body, at most
//! [`MAX_REDIRECTS`] redirects, conditional headers from the stored validators, and the body
//! streamed to a spool file while it is counted against `max_size` and hashed. Nothing here
//! holds a body in memory: playlists of a few hundred megabytes are common. Each attempt runs
//! on a thread of its own so that Ctrl-C or SIGTERM ends a fetch at once, whatever it waits on.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use super::error::{FetchError, FetchErrorKind};
use super::retry::{Control, with_retries};
use super::settings::SourceFetch;

/// Spool files are `lineup-fetch-<pid>-*`, in the build's spill directory.
pub const SPOOL_PREFIX: &str = "lineup-fetch-";

/// Redirects followed per attempt; one more is an error (a loop ends here quickly).
pub const MAX_REDIRECTS: u32 = 5;

/// HTTP validators of the last good copy, sent back as `If-None-Match`/`If-Modified-Since`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// A body that arrived whole.
#[derive(Debug)]
pub struct Download {
    /// The raw body (possibly `.gz`/`.xz`; open it with `parse::decode::open`). Deleted on
    /// drop.
    pub spool: NamedTempFile,
    /// Bytes in the spool file.
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the spool file: tells whether the content changed.
    pub sha256: String,
    /// Validators to store for the next conditional request.
    pub validators: Validators,
    pub status: u16,
    pub attempts: u32,
    /// From the first attempt to the last byte, backoff sleeps included.
    pub elapsed: Duration,
}

/// The result of a download that did not fail.
#[derive(Debug)]
pub enum FetchOutcome {
    Fetched(Download),
    /// `304 Not Modified`: the cached copy is current.
    NotModified {
        attempts: u32,
        elapsed: Duration,
    },
}

impl FetchOutcome {
    pub fn attempts(&self) -> u32 {
        match self {
            FetchOutcome::Fetched(d) => d.attempts,
            FetchOutcome::NotModified { attempts, .. } => *attempts,
        }
    }

    pub fn elapsed(&self) -> Duration {
        match self {
            FetchOutcome::Fetched(d) => d.elapsed,
            FetchOutcome::NotModified { elapsed, .. } => *elapsed,
        }
    }
}

/// One attempt's success, before the retry loop adds its counts.
enum Attempt {
    Body {
        spool: NamedTempFile,
        bytes: u64,
        sha256: String,
        validators: Validators,
        status: u16,
    },
    NotModified,
}

/// The HTTP client of a build. Cheap to share between threads (`&Client`); create one per build
/// so that TLS setup and connection pools are shared.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    spool_dir: PathBuf,
}

impl Client {
    /// Where this client's spool files go (the build's spill directory).
    pub fn spool_dir(&self) -> &std::path::Path {
        &self.spool_dir
    }

    /// A client whose spool files go to `spool_dir` (the build's spill directory).
    pub fn new(spool_dir: impl Into<PathBuf>) -> Client {
        let config = ureq::Agent::config_builder()
            // Statuses are decided here, with their Retry-After, not turned into bare errors.
            .http_status_as_error(false)
            .max_redirects(MAX_REDIRECTS)
            .max_redirects_will_error(true)
            .build();
        Client {
            agent: config.new_agent(),
            spool_dir: spool_dir.into(),
        }
    }

    /// Download `url` with retries. `validators` (from the last good copy) make the request
    /// conditional; pass `Validators::default()` when there is no cached copy to fall back on.
    pub fn fetch(
        &self,
        url: &str,
        cfg: &SourceFetch,
        validators: &Validators,
        ctl: &Control<'_>,
    ) -> Result<FetchOutcome, FetchError> {
        // The config registers credentials it knows of; a URL built elsewhere may carry its own.
        crate::secrets::register_url(url);
        let started = Instant::now();
        let (attempt, attempts) = with_retries(cfg.retries, &cfg.backoff, ctl, || {
            self.attempt(url, cfg, validators, ctl)
        })?;
        let elapsed = started.elapsed();
        Ok(match attempt {
            Attempt::NotModified => FetchOutcome::NotModified { attempts, elapsed },
            Attempt::Body {
                spool,
                bytes,
                sha256,
                validators,
                status,
            } => FetchOutcome::Fetched(Download {
                spool,
                bytes,
                sha256,
                validators,
                status,
                attempts,
                elapsed,
            }),
        })
    }

    /// One attempt, run on a thread of its own while this one watches the Ctrl-C/SIGTERM
    /// flag: a blocking connect, TLS handshake or wait for headers cannot be interrupted, so on
    /// a signal the attempt is abandoned (its thread ends with the process) and this returns
    /// at once. The spool file belongs to this side, so an abandoned attempt leaves none.
    fn attempt(
        &self,
        url: &str,
        cfg: &SourceFetch,
        validators: &Validators,
        ctl: &Control<'_>,
    ) -> Result<Attempt, FetchError> {
        let budget = cfg.timeout.min(ctl.remaining());
        let spool_err = |e: io::Error| {
            FetchError::new(
                FetchErrorKind::Spool,
                format!("spool file in {}: {e}", self.spool_dir.display()),
            )
        };
        let spool = tempfile::Builder::new()
            .prefix(&crate::tempfiles::prefix(SPOOL_PREFIX))
            .tempfile_in(&self.spool_dir)
            .map_err(spool_err)?;
        let file = spool.as_file().try_clone().map_err(spool_err)?;
        let abandoned = Arc::new(AtomicBool::new(false));
        let job = AttemptJob {
            agent: self.agent.clone(),
            url: url.to_string(),
            cfg: cfg.clone(),
            validators: validators.clone(),
            budget,
            abandoned: Arc::clone(&abandoned),
            spool_dir: self.spool_dir.clone(),
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name("lineup-fetch".into())
            .spawn(move || {
                let _ = tx.send(job.run(file));
            })
            .map_err(|e| FetchError::new(FetchErrorKind::Io, format!("{url}: {e}")))?;
        let received = loop {
            match rx.recv_timeout(POLL) {
                Ok(result) => break result?,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if ctl.cancelled() {
                        abandoned.store(true, Ordering::Relaxed);
                        return Err(FetchError::new(FetchErrorKind::Cancelled, "interrupted"));
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err(FetchError::new(
                        FetchErrorKind::Io,
                        format!("{url}: the download thread ended without an answer"),
                    ));
                }
            }
        };
        Ok(match received {
            Received::NotModified => Attempt::NotModified,
            Received::Body {
                bytes,
                sha256,
                validators,
                status,
            } => Attempt::Body {
                spool,
                bytes,
                sha256,
                validators,
                status,
            },
        })
    }
}

/// How often a waiting fetch looks at the Ctrl-C/SIGTERM flag.
const POLL: Duration = Duration::from_millis(50);

/// What an attempt's thread hands back (the spool file stays with the caller).
enum Received {
    Body {
        bytes: u64,
        sha256: String,
        validators: Validators,
        status: u16,
    },
    NotModified,
}

/// Everything an attempt's thread owns.
struct AttemptJob {
    agent: ureq::Agent,
    url: String,
    cfg: SourceFetch,
    validators: Validators,
    budget: Duration,
    /// Set when the caller gave up (a signal): stop writing.
    abandoned: Arc<AtomicBool>,
    spool_dir: PathBuf,
}

impl AttemptJob {
    fn run(self, spool: File) -> Result<Received, FetchError> {
        let (url, cfg, budget) = (self.url.as_str(), &self.cfg, self.budget);
        let mut request = self
            .agent
            .get(url)
            .config()
            // Global = this whole attempt, body included: a slow drip is a timeout too.
            .timeout_global(Some(budget))
            .user_agent(cfg.user_agent.as_str())
            .build();
        for (name, value) in &cfg.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(etag) = &self.validators.etag {
            request = request.header("If-None-Match", etag.as_str());
        }
        if let Some(date) = &self.validators.last_modified {
            request = request.header("If-Modified-Since", date.as_str());
        }
        let response = request.call().map_err(|e| classify(url, e, budget))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if status == 304 && !self.validators.is_empty() {
            return Ok(Received::NotModified);
        }
        if !(200..300).contains(&status) {
            let mut err = FetchError::new(
                FetchErrorKind::Status(status),
                format!("{url}: HTTP {status}"),
            );
            err.retry_after = header("Retry-After").and_then(|v| parse_retry_after(&v));
            return Err(err);
        }
        let validators = Validators {
            etag: header("ETag"),
            last_modified: header("Last-Modified"),
        };
        let body = response.into_body();
        // None when ureq decompresses a Content-Encoding: its reader checks the length then.
        let announced = body.content_length();
        let reader = body.into_with_config().limit(u64::MAX).reader();
        let (bytes, sha256) = self.spool(reader, spool)?;
        if let Some(len) = announced
            && len != bytes
        {
            return Err(FetchError::new(
                FetchErrorKind::Truncated,
                format!("{url}: body ended after {bytes} of {len} bytes"),
            ));
        }
        Ok(Received::Body {
            bytes,
            sha256,
            validators,
            status,
        })
    }

    /// Stream a body into the spool file, counting and hashing as it goes.
    fn spool(&self, mut reader: impl Read, spool: File) -> Result<(u64, String), FetchError> {
        let spool_err = |e: io::Error| {
            FetchError::new(
                FetchErrorKind::Spool,
                format!("spool file in {}: {e}", self.spool_dir.display()),
            )
        };
        let mut spool = io::BufWriter::with_capacity(64 * 1024, spool);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut bytes = 0u64;
        loop {
            if self.abandoned.load(Ordering::Relaxed) {
                return Err(FetchError::new(FetchErrorKind::Cancelled, "interrupted"));
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(classify(&self.url, ureq::Error::from(e), self.budget));
                }
            };
            bytes += n as u64;
            if bytes > self.cfg.max_size {
                return Err(FetchError::new(
                    FetchErrorKind::TooLarge,
                    format!(
                        "{}: body larger than {} (max_size)",
                        self.url,
                        crate::config::units::HumanBytes(self.cfg.max_size)
                    ),
                ));
            }
            hasher.update(&buf[..n]);
            spool.write_all(&buf[..n]).map_err(spool_err)?;
        }
        spool.flush().map_err(spool_err)?;
        Ok((bytes, crate::output::hex(&hasher.finalize())))
    }
}

/// `Retry-After` in seconds. The HTTP-date form is rare from IPTV panels and is ignored (the
/// normal backoff applies).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Sort a ureq error into a kind the retry loop and the build can decide on.
fn classify(url: &str, err: ureq::Error, budget: Duration) -> FetchError {
    use FetchErrorKind as K;
    let (kind, detail) = match &err {
        ureq::Error::Timeout(_) => (
            K::Timeout,
            format!("no complete response within {budget:?} (timeout)"),
        ),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => (K::Connect, err.to_string()),
        ureq::Error::Io(e) => (
            match e.kind() {
                io::ErrorKind::ConnectionRefused
                | io::ErrorKind::AddrNotAvailable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NotConnected => K::Connect,
                io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted => K::Truncated,
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => K::Timeout,
                _ => K::Io,
            },
            e.to_string(),
        ),
        ureq::Error::TooManyRedirects => (
            K::TooManyRedirects,
            format!("more than {MAX_REDIRECTS} redirects (a redirect loop?)"),
        ),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            (K::Tls, err.to_string())
        }
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RequireHttpsOnly(_) => {
            (K::BadRequest, err.to_string())
        }
        ureq::Error::Protocol(_)
        | ureq::Error::LargeResponseHeader(..)
        | ureq::Error::Decompress(..) => (K::Protocol, err.to_string()),
        _ => (K::Io, err.to_string()),
    };
    FetchError::new(kind, format!("{url}: {detail}"))
}

//! Bringing each source's data into the store before any proxy is built.
//!
//! Two phases. *Acquire* (in parallel, up to `max_concurrent_sources` at once): hash a local
//! file, or download a URL or an Xtream account into a spool file, with retries. *Store* (on
//! the one writer thread, as acquisitions finish): parse and replace the source's copy in one
//! transaction, unless the content is what the store already has. A source that fails keeps
//! its last good copy and the build goes on with it (status `cached`); every fetch is recorded
//! in the health history.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use sha2::Digest;

use crate::config::{Config, EpgDef, SourceDef, XtreamAccount, is_url};
use crate::fetch::xtream::{self, XtreamDownload};
use crate::fetch::{Client, Control, Download, FetchOutcome, SourceFetch, Validators};
use crate::parse::xmltv::XmltvReader;
use crate::parse::{decode, m3u::M3uReader};
use crate::store::health::{self, FetchKind, FetchRecord, Outcome};
use crate::store::{Store, now_ms};
use crate::{info, warn};

/// What happened to a source in this build (the report's `sources[].status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    Fetched,
    NotModified,
    Cached,
    Failed,
    Disabled,
    Inactive,
}

impl SourceStatus {
    /// Whether the build has data for the source.
    /// `Disabled` only ever has data: a disabled source with no copy to fall back on is
    /// reported `Failed` (see `from_cache`).
    pub fn usable(self) -> bool {
        matches!(
            self,
            SourceStatus::Fetched
                | SourceStatus::NotModified
                | SourceStatus::Cached
                | SourceStatus::Disabled
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceOutcome {
    pub name: String,
    pub kind: &'static str,
    pub status: SourceStatus,
    pub attempts: u32,
    pub bytes: u64,
    pub items: u64,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// Whether this source failed this build (it may still be usable from its cached copy).
    #[serde(skip)]
    pub failed: bool,
}

pub fn kind(source: &SourceDef) -> &'static str {
    Job::Stream(source).kind()
}

/// One thing to refresh: a stream source or a guide.
#[derive(Clone, Copy)]
pub enum Job<'a> {
    Stream(&'a SourceDef),
    Guide(&'a EpgDef),
}

/// Where a job's data comes from.
enum Location<'a> {
    File(PathBuf),
    Url(String),
    Xtream(&'a XtreamAccount),
}

impl<'a> Job<'a> {
    pub fn name(&self) -> &'a str {
        match self {
            Job::Stream(s) => &s.name.get_ref().0,
            Job::Guide(e) => &e.name.get_ref().0,
        }
    }

    /// The report's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Stream(s) if s.xtream.is_some() => "xtream",
            Job::Stream(_) => "m3u",
            Job::Guide(_) => "xmltv",
        }
    }

    fn fetch_kind(&self) -> FetchKind {
        match self {
            Job::Stream(s) if s.xtream.is_some() => FetchKind::Xtream,
            Job::Stream(_) => FetchKind::M3u,
            Job::Guide(_) => FetchKind::Xmltv,
        }
    }

    fn settings(&self, config: &Config) -> SourceFetch {
        match self {
            Job::Stream(s) => SourceFetch::for_source(&config.file.settings.fetch, s),
            Job::Guide(e) => SourceFetch::for_epg(&config.file.settings.fetch, e),
        }
    }

    fn location(&self, config: &'a Config) -> Location<'a> {
        let text = match self {
            Job::Stream(s) => match (&s.m3u, &s.xtream) {
                (_, Some(x)) => return Location::Xtream(x.get_ref()),
                (Some(m), None) => m.get_ref().as_str(),
                (None, None) => "",
            },
            Job::Guide(e) => match (&e.xmltv, &e.xtream) {
                (Some(x), _) => x.get_ref().as_str(),
                (None, Some(source)) => {
                    // Validation guarantees an Xtream source of that name.
                    let account = config
                        .source(&source.get_ref().0)
                        .and_then(|s| s.xtream.as_ref())
                        .map(|x| x.get_ref());
                    return match account {
                        Some(a) => Location::Url(xtream::guide_url(a)),
                        None => Location::File(PathBuf::new()),
                    };
                }
                (None, None) => "",
            },
        };
        if is_url(text) {
            Location::Url(text.to_string())
        } else {
            Location::File(config.resolve(text))
        }
    }
}

/// How a build refreshes its sources.
pub struct Refresh<'a> {
    pub offline: bool,
    pub client: &'a Client,
    /// Build start + `total_timeout`.
    pub deadline: Instant,
    pub cancel: &'a AtomicBool,
}

/// What the acquire phase brought back for one source.
enum Acquired {
    File {
        path: PathBuf,
        key: String,
        bytes: u64,
    },
    Http {
        download: Download,
        key: String,
    },
    NotModified,
    Xtream {
        download: Box<XtreamDownload>,
        key: String,
    },
}

struct Attempt {
    result: Result<Acquired, String>,
    attempts: u32,
    http_status: Option<u16>,
    started_at: i64,
    elapsed_ms: u64,
}

/// The error of a build stopped by `fail_fast`.
#[derive(Debug)]
pub struct FailFast(pub String);

impl std::fmt::Display for FailFast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "source {} failed and fail_fast is set", self.0)
    }
}

impl std::error::Error for FailFast {}

/// Refresh `jobs` (stream sources in priority order, then guides) into the store. Returns one
/// outcome per job, in the same order.
pub fn refresh(
    store: &mut Store,
    config: &Config,
    jobs: &[Job<'_>],
    how: &Refresh<'_>,
) -> Result<Vec<SourceOutcome>> {
    let settings = &config.file.settings;
    let now = now_ms();
    let mut outcomes: Vec<Option<SourceOutcome>> = vec![None; jobs.len()];

    // Which jobs to acquire: not offline, not auto-disabled by their health.
    let mut todo = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let name = job.name();
        if how.offline {
            outcomes[i] = Some(from_cache(store, job, SourceStatus::Cached, None, false)?);
        } else if health::should_skip(&store.conn, name, job.fetch_kind(), now, &settings.health)? {
            warn!(
                "source {name}: disabled after repeated failures; using the last good copy until it is probed again"
            );
            outcomes[i] = Some(from_cache(
                store,
                job,
                SourceStatus::Disabled,
                Some("disabled after repeated failures".into()),
                true,
            )?);
        } else {
            let validators = if has_copy(store, job)? {
                health::validators(&store.conn, name, job.fetch_kind())?
            } else {
                Validators::default()
            };
            todo.push((i, *job, validators));
        }
    }

    let workers = settings
        .buffer
        .max_concurrent_sources
        .clamp(1, todo.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = crossbeam_channel::unbounded::<(usize, Attempt)>();
    let result = std::thread::scope(|scope| -> Result<()> {
        for _ in 0..workers {
            let tx = tx.clone();
            let (todo, next, stop) = (&todo, &next, &stop);
            scope.spawn(move || {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some((i, job, validators)) = todo.get(k) else {
                        break;
                    };
                    if stop.load(Ordering::Relaxed) || crate::cancel::requested(how.cancel) {
                        break;
                    }
                    let attempt = acquire(config, job, validators, how);
                    if tx.send((*i, attempt)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // The one writer: store what arrives, as it arrives.
        for (i, attempt) in rx.iter() {
            let job = &jobs[i];
            let outcome = store_acquired(store, config, job, attempt, how.cancel)?;
            let failed = outcome.failed;
            outcomes[i] = Some(outcome);
            if failed && settings.fetch.fail_fast && !crate::cancel::requested(how.cancel) {
                stop.store(true, Ordering::Relaxed);
                return Err(anyhow::Error::new(FailFast(job.name().to_string())));
            }
        }
        Ok(())
    });
    if crate::cancel::requested(how.cancel) {
        return Err(anyhow!("interrupted"));
    }
    result?;
    Ok(outcomes.into_iter().flatten().collect())
}

/// Whether the store has a last good copy of a job's data, and how many items it holds.
fn stored_items(store: &Store, job: &Job<'_>) -> Result<Option<u64>> {
    Ok(match job {
        Job::Stream(_) => store
            .source_record(job.name())?
            .filter(|r| r.updated_at.is_some())
            .map(|r| r.items.unwrap_or(0)),
        Job::Guide(_) => crate::store::guide::stored_programmes(&store.conn, job.name())?,
    })
}

fn has_copy(store: &Store, job: &Job<'_>) -> Result<bool> {
    Ok(stored_items(store, job)?.is_some())
}

/// The outcome of a job served from the store (or not at all).
fn from_cache(
    store: &Store,
    job: &Job<'_>,
    status: SourceStatus,
    error: Option<String>,
    failed: bool,
) -> Result<SourceOutcome> {
    let name = job.name().to_string();
    let items = stored_items(store, job)?;
    let (status, error) = match (items, status) {
        (Some(_), s) => (s, error),
        (None, _) => (
            SourceStatus::Failed,
            Some(error.unwrap_or_else(|| "offline, and no copy in the database".into())),
        ),
    };
    if status == SourceStatus::Cached && error.is_none() {
        info!(
            "source {name}: {} items from the database (offline)",
            items.unwrap_or(0)
        );
    } else if status == SourceStatus::Failed && !failed {
        warn!("source {name}: {}", error.as_deref().unwrap_or(""));
    }
    Ok(SourceOutcome {
        name,
        kind: job.kind(),
        status,
        attempts: 0,
        bytes: 0,
        items: items.unwrap_or(0),
        duration_ms: 0,
        error,
        failed: failed || status == SourceStatus::Failed,
    })
}

/// Acquire one job (runs on a worker thread; touches no database).
fn acquire(config: &Config, job: &Job<'_>, validators: &Validators, how: &Refresh<'_>) -> Attempt {
    let _spinner = crate::progress::SourceSpinner::start(job.name());
    let started = Instant::now();
    let started_at = now_ms();
    let cfg = job.settings(config);
    let ctl = Control {
        deadline: how.deadline,
        cancel: how.cancel,
    };
    let (result, attempts, http_status) = match job.location(config) {
        Location::Xtream(account) => {
            match xtream::download_live(how.client, job.name(), account, &cfg, &ctl) {
                Ok(dl) => {
                    // Stream URLs are built from the account as well as the lists: a new
                    // server, password or `output` must rebuild them even when the panel's
                    // lists did not change.
                    let key = content_key(&format!(
                        "{}\0{}\0{}\0{}\0{}",
                        dl.content_sha256,
                        account.server.0,
                        account.username.0,
                        account.password.0,
                        account.output
                    ));
                    let attempts = dl.attempts;
                    (
                        Ok(Acquired::Xtream {
                            download: Box::new(dl),
                            key,
                        }),
                        attempts,
                        Some(200),
                    )
                }
                Err(e) => {
                    let status = e.fetch_error().and_then(|f| f.http_status);
                    (Err(e.masked()), e.attempts(), status)
                }
            }
        }
        Location::Url(url) => match how.client.fetch(&url, &cfg, validators, &ctl) {
            Ok(FetchOutcome::Fetched(download)) => {
                let key = content_key(&download.sha256);
                let (attempts, status) = (download.attempts, download.status);
                (Ok(Acquired::Http { download, key }), attempts, Some(status))
            }
            Ok(FetchOutcome::NotModified { attempts, .. }) => {
                (Ok(Acquired::NotModified), attempts, Some(304))
            }
            Err(e) => (Err(e.to_string()), e.attempts, e.http_status),
        },
        Location::File(path) => match file_sha256(&path) {
            Ok((sha, bytes)) => (
                Ok(Acquired::File {
                    key: content_key(&sha),
                    path,
                    bytes,
                }),
                1,
                None,
            ),
            Err(e) => (Err(format!("cannot read {}: {e}", path.display())), 1, None),
        },
    };
    Attempt {
        result,
        attempts,
        http_status,
        started_at,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// Store what was acquired (on the writer thread), record the fetch and the source's health,
/// and fall back on the last good copy when anything failed.
fn store_acquired(
    store: &mut Store,
    config: &Config,
    job: &Job<'_>,
    attempt: Attempt,
    cancel: &AtomicBool,
) -> Result<SourceOutcome> {
    let name = job.name().to_string();
    let started = Instant::now();
    let max_size = job.settings(config).max_size;
    let stored = match attempt.result {
        Err(e) => Err(e),
        Ok(acquired) => {
            store_one(store, job, acquired, max_size, cancel).map_err(|e| format!("{e:#}"))
        }
    };
    if crate::cancel::requested(cancel) {
        return Err(anyhow!("interrupted"));
    }
    let duration_ms = attempt.elapsed_ms + started.elapsed().as_millis() as u64;
    let fetch_kind = job.fetch_kind();
    let error = stored.as_ref().err().map(|e| crate::secrets::mask(e));
    let record = FetchRecord {
        source: &name,
        kind: fetch_kind,
        started_at: attempt.started_at,
        latency_ms: duration_ms as i64,
        outcome: match &stored {
            Ok(s) if s.status == SourceStatus::NotModified => Outcome::NotModified,
            Ok(_) => Outcome::Fetched,
            Err(_) => Outcome::Failed,
        },
        bytes: stored.as_ref().ok().map(|s| s.bytes),
        http_status: attempt.http_status,
        attempts: attempt.attempts,
        error: error.as_deref(),
    };
    health::record_fetch(&store.conn, &record)?;
    health::record_build(
        &store.conn,
        &name,
        fetch_kind,
        stored.is_ok(),
        now_ms(),
        &config.file.settings.health,
    )?;

    let mut outcome = match stored {
        Ok(s) => {
            if let Some(v) = &s.validators {
                health::set_validators(&store.conn, &name, fetch_kind, v)?;
            }
            let what = if matches!(job, Job::Guide(_)) {
                "programmes"
            } else {
                "channels"
            };
            if s.status == SourceStatus::NotModified {
                info!(
                    "source {name}: unchanged, {} {what} from the database",
                    s.items
                );
            } else {
                info!(
                    "source {name}: {} {what} ({} bytes), {:.1}s",
                    s.items,
                    s.bytes,
                    duration_ms as f64 / 1000.0
                );
            }
            SourceOutcome {
                name: name.clone(),
                kind: job.kind(),
                status: s.status,
                attempts: attempt.attempts,
                bytes: s.bytes,
                items: s.items,
                duration_ms,
                error: None,
                failed: false,
            }
        }
        Err(e) => {
            let outcome = from_cache(store, job, SourceStatus::Cached, Some(e.clone()), true)?;
            match outcome.status {
                SourceStatus::Cached => warn!(
                    "source {name}: {e}; using the last good copy ({} items)",
                    outcome.items
                ),
                _ => warn!("source {name}: {e}; no earlier copy to fall back on"),
            }
            outcome
        }
    };
    outcome.attempts = attempt.attempts;
    outcome.duration_ms = duration_ms;
    Ok(outcome)
}

struct Stored {
    status: SourceStatus,
    bytes: u64,
    items: u64,
    validators: Option<Validators>,
}

fn store_one(
    store: &mut Store,
    job: &Job<'_>,
    acquired: Acquired,
    max_size: u64,
    cancel: &AtomicBool,
) -> Result<Stored> {
    let name = job.name();
    let stored_key = match job {
        Job::Stream(_) => store.source_record(name)?.and_then(|r| r.content_sha256),
        Job::Guide(_) => health::content_hash(&store.conn, name, FetchKind::Xmltv)?,
    };
    let items = stored_items(store, job)?;
    // Unchanged content is neither parsed nor written again.
    let unchanged = |key: &str| items.filter(|_| stored_key.as_deref() == Some(key));
    let (status, bytes, items, validators) = match acquired {
        Acquired::NotModified => {
            let items = items
                .context("the server answered 304 Not Modified, but the database has no copy")?;
            (SourceStatus::NotModified, 0, items, None)
        }
        Acquired::File { path, key, bytes } => match unchanged(&key) {
            Some(items) => (SourceStatus::NotModified, bytes, items, None),
            None => {
                let label = path.display().to_string();
                let items = store_file(store, job, &path, &label, bytes, &key, max_size, cancel)?;
                (SourceStatus::Fetched, bytes, items, None)
            }
        },
        Acquired::Http { download, key } => {
            let validators = Some(download.validators.clone());
            match unchanged(&key) {
                Some(items) => (SourceStatus::NotModified, download.bytes, items, validators),
                None => {
                    let label = format!("source {name}");
                    let path = download.spool.path();
                    let items = store_file(
                        store,
                        job,
                        path,
                        &label,
                        download.bytes,
                        &key,
                        max_size,
                        cancel,
                    )?;
                    (SourceStatus::Fetched, download.bytes, items, validators)
                }
            }
        }
        Acquired::Xtream { download, key } => match (unchanged(&key), job) {
            (Some(items), _) => (SourceStatus::NotModified, download.bytes, items, None),
            (None, Job::Stream(source)) => {
                let account = source.xtream.as_ref().expect("an Xtream source").get_ref();
                let source_name: Arc<str> = Arc::from(name);
                let summary = store.replace_channels_with(
                    name,
                    download.bytes,
                    Some(&key),
                    cancel,
                    |sink| {
                        let mut failure = None;
                        download
                            .channels(source_name, account, max_size, |ch| match sink(ch) {
                                Ok(()) => ControlFlow::Continue(()),
                                Err(e) => {
                                    failure = Some(e);
                                    ControlFlow::Break(())
                                }
                            })
                            .map_err(|e| anyhow!(e.masked()))?;
                        failure.map_or(Ok(()), Err)
                    },
                )?;
                (SourceStatus::Fetched, download.bytes, summary.items, None)
            }
            (None, Job::Guide(_)) => unreachable!("guides are fetched as XMLTV URLs"),
        },
    };
    Ok(Stored {
        status,
        bytes,
        items,
        validators,
    })
}

/// Parse a file (local, or a download's spool) into the store: an M3U for a stream source, an
/// XMLTV guide for a guide. Returns the items stored.
#[allow(clippy::too_many_arguments)]
fn store_file(
    store: &mut Store,
    job: &Job<'_>,
    path: &Path,
    label: &str,
    bytes: u64,
    key: &str,
    max_size: u64,
    cancel: &AtomicBool,
) -> Result<u64> {
    match job {
        Job::Stream(_) => store_m3u(store, job.name(), path, label, bytes, key, max_size, cancel),
        Job::Guide(_) => store_xmltv(store, job.name(), path, label, key, max_size),
    }
}

/// Parse an XMLTV guide into the store, in one transaction.
fn store_xmltv(
    store: &mut Store,
    name: &str,
    path: &Path,
    label: &str,
    key: &str,
    max_size: u64,
) -> Result<u64> {
    let input = decode::open(path, max_size).with_context(|| format!("cannot read {label}"))?;
    let mut reader = XmltvReader::new(input, label)?;
    let tx = store.conn.transaction()?;
    let stats = crate::store::guide::replace_source(&tx, name, &mut reader)?;
    tx.commit()
        .with_context(|| format!("cannot store the guide `{name}`"))?;
    health::set_content_hash(&store.conn, name, FetchKind::Xmltv, key)?;
    for warning in &stats.warnings {
        warn!("{warning}");
    }
    if stats.suppressed_warnings > 0 {
        warn!(
            "{label}: {} more warnings not shown",
            stats.suppressed_warnings
        );
    }
    Ok(stats.programmes)
}

/// Parse an M3U file (local, or a download's spool) into the store. Returns the channels
/// stored. A source with content but no channel at all is an error: it is not a playlist (an
/// HTML error page, a captive portal), and its last good copy is worth more.
#[allow(clippy::too_many_arguments)]
fn store_m3u(
    store: &mut Store,
    name: &str,
    path: &Path,
    label: &str,
    bytes: u64,
    key: &str,
    max_size: u64,
    cancel: &AtomicBool,
) -> Result<u64> {
    let reader = decode::open(path, max_size).with_context(|| format!("cannot read {label}"))?;
    let mut m3u = M3uReader::new(reader, label.to_string(), Arc::from(name));
    let summary = store.replace_channels_with(name, bytes, Some(key), cancel, |sink| {
        for ch in m3u.by_ref() {
            sink(ch.with_context(|| format!("cannot read {label}"))?)?;
        }
        if m3u.channels_read() == 0 && m3u.warnings.count > 0 {
            anyhow::bail!("{label} has no channel: not an M3U playlist?");
        }
        Ok(())
    })?;
    for message in &m3u.warnings.messages {
        warn!("{message}");
    }
    if m3u.warnings.count > m3u.warnings.messages.len() as u64 {
        warn!(
            "{label}: {} more warnings not shown",
            m3u.warnings.count - m3u.warnings.messages.len() as u64
        );
    }
    Ok(summary.items)
}

/// The key the store keeps for a source's content: SHA-256 of lineup's version and the raw
/// content's SHA-256. The version is part of it so that an upgraded reader parses every
/// source again.
fn content_key(raw_sha256: &str) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.update(b"\0");
    hasher.update(raw_sha256.as_bytes());
    crate::output::hex(&hasher.finalize())
}

/// SHA-256 (hex) and size of a file's bytes, as stored (before decompression).
fn file_sha256(path: &Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((crate::output::hex(&hasher.finalize()), bytes))
}

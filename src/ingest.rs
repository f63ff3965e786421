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

use crate::config::{Config, SourceDef, is_url};
use crate::fetch::xtream::{self, XtreamDownload};
use crate::fetch::{Client, Control, Download, FetchOutcome, SourceFetch, Validators};
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
    pub fn usable(self) -> bool {
        matches!(
            self,
            SourceStatus::Fetched | SourceStatus::NotModified | SourceStatus::Cached
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
    if source.xtream.is_some() {
        "xtream"
    } else {
        "m3u"
    }
}

fn fetch_kind(source: &SourceDef) -> FetchKind {
    if source.xtream.is_some() {
        FetchKind::Xtream
    } else {
        FetchKind::M3u
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

/// Refresh `sources` (in priority order) into the store. Returns one outcome per source, in
/// the same order.
pub fn refresh(
    store: &mut Store,
    config: &Config,
    sources: &[&SourceDef],
    how: &Refresh<'_>,
) -> Result<Vec<SourceOutcome>> {
    let settings = &config.file.settings;
    let now = now_ms();
    let mut outcomes: Vec<Option<SourceOutcome>> = vec![None; sources.len()];

    // Which sources to acquire: not offline, not auto-disabled by their health.
    let mut todo = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let name = &source.name.get_ref().0;
        if how.offline {
            outcomes[i] = Some(from_cache(
                store,
                source,
                SourceStatus::Cached,
                None,
                false,
            )?);
        } else if health::should_skip(&store.conn, name, fetch_kind(source), now, &settings.health)?
        {
            warn!(
                "source {name}: disabled after repeated failures; using the last good copy until it is probed again"
            );
            outcomes[i] = Some(from_cache(
                store,
                source,
                SourceStatus::Disabled,
                Some("disabled after repeated failures".into()),
                true,
            )?);
        } else {
            let validators = if store.has_copy(name)? {
                health::validators(&store.conn, name, fetch_kind(source))?
            } else {
                Validators::default()
            };
            todo.push((i, *source, validators));
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
                    let Some((i, source, validators)) = todo.get(k) else {
                        break;
                    };
                    if stop.load(Ordering::Relaxed) || crate::cancel::requested(how.cancel) {
                        break;
                    }
                    let attempt = acquire(config, source, validators, how);
                    if tx.send((*i, attempt)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // The one writer: store what arrives, as it arrives.
        for (i, attempt) in rx.iter() {
            let source = sources[i];
            let outcome = store_acquired(store, config, source, attempt, how.cancel)?;
            if outcome.failed && settings.fetch.fail_fast && !crate::cancel::requested(how.cancel) {
                stop.store(true, Ordering::Relaxed);
                outcomes[i] = Some(outcome);
                return Err(anyhow::Error::new(FailFast(
                    source.name.get_ref().0.clone(),
                )));
            }
            outcomes[i] = Some(outcome);
        }
        Ok(())
    });
    if crate::cancel::requested(how.cancel) {
        return Err(anyhow!("interrupted"));
    }
    result?;
    Ok(outcomes.into_iter().flatten().collect())
}

/// The outcome of a source served from the store (or not at all).
fn from_cache(
    store: &Store,
    source: &SourceDef,
    status: SourceStatus,
    error: Option<String>,
    failed: bool,
) -> Result<SourceOutcome> {
    let name = source.name.get_ref().0.clone();
    let record = store
        .source_record(&name)?
        .filter(|r| r.updated_at.is_some());
    let (status, error) = match (&record, status) {
        (Some(_), s) => (s, error),
        (None, SourceStatus::Disabled) => (SourceStatus::Disabled, error),
        (None, _) => (
            SourceStatus::Failed,
            Some(error.unwrap_or_else(|| "offline, and no copy in the database".into())),
        ),
    };
    if status == SourceStatus::Cached && error.is_none() {
        info!(
            "source {name}: {} channels from the database (offline)",
            record.as_ref().and_then(|r| r.items).unwrap_or(0)
        );
    } else if status == SourceStatus::Failed && !failed {
        warn!("source {name}: {}", error.as_deref().unwrap_or(""));
    }
    Ok(SourceOutcome {
        name,
        kind: kind(source),
        status,
        attempts: 0,
        bytes: 0,
        items: record.and_then(|r| r.items).unwrap_or(0),
        duration_ms: 0,
        error,
        failed: failed || status == SourceStatus::Failed,
    })
}

/// Acquire one source (runs on a worker thread; touches no database).
fn acquire(
    config: &Config,
    source: &SourceDef,
    validators: &Validators,
    how: &Refresh<'_>,
) -> Attempt {
    let started = Instant::now();
    let started_at = now_ms();
    let cfg = SourceFetch::for_source(&config.file.settings.fetch, source);
    let ctl = Control {
        deadline: how.deadline,
        cancel: how.cancel,
    };
    let name = &source.name.get_ref().0;
    let (result, attempts, http_status) = if let Some(account) = &source.xtream {
        match xtream::download_live(how.client, name, account.get_ref(), &cfg, &ctl) {
            Ok(dl) => {
                let key = content_key(&dl.content_sha256);
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
    } else {
        let location = source
            .m3u
            .as_ref()
            .map(|m| m.get_ref().as_str())
            .unwrap_or_default();
        if is_url(location) {
            match how.client.fetch(location, &cfg, validators, &ctl) {
                Ok(FetchOutcome::Fetched(download)) => {
                    let key = content_key(&download.sha256);
                    let (attempts, status) = (download.attempts, download.status);
                    (Ok(Acquired::Http { download, key }), attempts, Some(status))
                }
                Ok(FetchOutcome::NotModified { attempts, .. }) => {
                    (Ok(Acquired::NotModified), attempts, Some(304))
                }
                Err(e) => (Err(e.to_string()), e.attempts, e.http_status),
            }
        } else {
            let path = config.resolve(location);
            match file_sha256(&path) {
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
            }
        }
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
    source: &SourceDef,
    attempt: Attempt,
    cancel: &AtomicBool,
) -> Result<SourceOutcome> {
    let name = source.name.get_ref().0.clone();
    let started = Instant::now();
    let max_size = SourceFetch::for_source(&config.file.settings.fetch, source).max_size;
    let stored = match attempt.result {
        Err(e) => Err(e),
        Ok(acquired) => {
            store_one(store, source, acquired, max_size, cancel).map_err(|e| format!("{e:#}"))
        }
    };
    if crate::cancel::requested(cancel) {
        return Err(anyhow!("interrupted"));
    }
    let duration_ms = attempt.elapsed_ms + started.elapsed().as_millis() as u64;
    let kind_ = fetch_kind(source);
    let error = stored.as_ref().err().map(|e| crate::secrets::mask(e));
    let record = FetchRecord {
        source: &name,
        kind: kind_,
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
        kind_,
        stored.is_ok(),
        now_ms(),
        &config.file.settings.health,
    )?;

    let mut outcome = match stored {
        Ok(s) => {
            if let Some(v) = &s.validators {
                health::set_validators(&store.conn, &name, kind_, v)?;
            }
            if s.status == SourceStatus::NotModified {
                info!(
                    "source {name}: unchanged, {} channels from the database",
                    s.items
                );
            } else {
                info!(
                    "source {name}: {} channels ({} bytes), {:.1}s",
                    s.items,
                    s.bytes,
                    duration_ms as f64 / 1000.0
                );
            }
            SourceOutcome {
                name: name.clone(),
                kind: kind(source),
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
            let outcome = from_cache(store, source, SourceStatus::Cached, Some(e.clone()), true)?;
            match outcome.status {
                SourceStatus::Cached => warn!(
                    "source {name}: {e}; using the last good copy ({} channels)",
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
    source: &SourceDef,
    acquired: Acquired,
    max_size: u64,
    cancel: &AtomicBool,
) -> Result<Stored> {
    let name = source.name.get_ref().0.as_str();
    let record = store.source_record(name)?;
    let unchanged = |key: &str| {
        record
            .as_ref()
            .filter(|r| r.content_sha256.as_deref() == Some(key))
            .map(|r| r.items.unwrap_or(0))
    };
    let source_name: Arc<str> = Arc::from(name);
    Ok(match acquired {
        Acquired::NotModified => {
            let items = record
                .filter(|r| r.updated_at.is_some())
                .and_then(|r| r.items)
                .context("the server answered 304 Not Modified, but the database has no copy")?;
            Stored {
                status: SourceStatus::NotModified,
                bytes: 0,
                items,
                validators: None,
            }
        }
        Acquired::File { path, key, bytes } => match unchanged(&key) {
            Some(items) => Stored {
                status: SourceStatus::NotModified,
                bytes,
                items,
                validators: None,
            },
            None => {
                let items = store_m3u(
                    store,
                    name,
                    &path,
                    &path.display().to_string(),
                    bytes,
                    &key,
                    max_size,
                    cancel,
                )?;
                Stored {
                    status: SourceStatus::Fetched,
                    bytes,
                    items,
                    validators: None,
                }
            }
        },
        Acquired::Http { download, key } => {
            let validators = Some(download.validators.clone());
            match unchanged(&key) {
                Some(items) => Stored {
                    status: SourceStatus::NotModified,
                    bytes: download.bytes,
                    items,
                    validators,
                },
                None => {
                    let label = format!("source {name}");
                    let items = store_m3u(
                        store,
                        name,
                        download.spool.path(),
                        &label,
                        download.bytes,
                        &key,
                        max_size,
                        cancel,
                    )?;
                    Stored {
                        status: SourceStatus::Fetched,
                        bytes: download.bytes,
                        items,
                        validators,
                    }
                }
            }
        }
        Acquired::Xtream { download, key } => match unchanged(&key) {
            Some(items) => Stored {
                status: SourceStatus::NotModified,
                bytes: download.bytes,
                items,
                validators: None,
            },
            None => {
                let account = source.xtream.as_ref().expect("an Xtream source").get_ref();
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
                Stored {
                    status: SourceStatus::Fetched,
                    bytes: download.bytes,
                    items: summary.items,
                    validators: None,
                }
            }
        },
    })
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

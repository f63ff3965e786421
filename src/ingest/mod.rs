//! Bringing each source's data into the store before any proxy is built.
//!
//! Two phases. *Acquire* (in parallel, up to `max_concurrent_sources` at once): hash a local
//! file, or download a URL or an Xtream account into a spool file, with retries. *Store* (on
//! the one writer thread, as acquisitions finish): parse and replace the source's copy in one
//! transaction, unless the content is what the store already has. A source that fails keeps
//! its last good copy and the build goes on with it (status `cached`); every fetch is recorded
//! in the health history. A fresh copy that shrank past `max_shrink` is refused the same way
//! (status `failed`, the last good copy stays and is used; see `guard.rs`). A source the build
//! never got to (its `total_timeout` spent, or cancelled) is `skipped`: it keeps its copy and
//! its health is left as it was.

mod acquire;
pub mod guard;
mod store;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Result, anyhow};
use serde::Serialize;

use crate::config::{Config, EpgDef, SourceDef, XtreamAccount, is_url};
use crate::fetch::xtream::{self, XtreamDownload};
use crate::fetch::{Client, Download, SourceFetch, Validators};
use crate::store::health::{self, FetchKind};
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
    /// Not attempted in this build: `total_timeout` was spent before its turn, or the build
    /// was cancelled. Its health is not touched.
    Skipped,
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

    /// Whether the source's data is fresh from this build: what `min_successful_sources`
    /// counts. Cached, refused, skipped and disabled copies are not fresh.
    pub fn fresh(self) -> bool {
        matches!(self, SourceStatus::Fetched | SourceStatus::NotModified)
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
    /// Items of the last good copy before this build; `None` when there was none.
    pub previous_items: Option<u64>,
    /// Guide elements skipped this build because something in them ran past a size cap.
    pub oversized: u64,
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

    /// The shrink guard's limit: the source's or guide's own `max_shrink`, else the global one.
    fn max_shrink(&self, config: &Config) -> crate::config::values::Percent {
        let own = match self {
            Job::Stream(s) => s.max_shrink,
            Job::Guide(e) => e.max_shrink,
        };
        own.unwrap_or(config.file.settings.fetch.max_shrink)
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
    /// `--accept-shrink`: sources and guides whose shrunken copy is taken on purpose.
    pub accept_shrink: &'a [String],
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
    /// A guide whose content changed, already parsed on the worker (see
    /// [`acquire::parse_guide`]); `None` for everything else.
    guide: Option<Result<crate::store::guide::ParsedGuide>>,
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
            let next = health::next_probe(&store.conn, name, job.fetch_kind(), &settings.health)?
                .map_or_else(|| "-".into(), crate::report::rfc3339);
            warn!(
                "source {name}: disabled after repeated failures; using the last good copy until it is probed again at {next} (or `lineup sources --enable {name}`)"
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
            // What a guide's worker compares its content with, to parse only what changed.
            let stored_key = match job {
                Job::Guide(_) if has_copy(store, job)? => {
                    health::content_hash(&store.conn, name, FetchKind::Xmltv)?
                }
                _ => None,
            };
            todo.push((i, *job, validators, stored_key));
        }
    }
    // Guides first: parsing one is the longest job, and it runs on a worker while the writer
    // stores the stream sources.
    todo.sort_by_key(|(_, job, _, _)| !matches!(job, Job::Guide(_)));

    let workers = settings
        .buffer
        .max_concurrent_sources
        .clamp(1, todo.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    // `None`: the job was not attempted (the total timeout was spent before its turn).
    let (tx, rx) = crossbeam_channel::unbounded::<(usize, Option<Attempt>)>();
    let result = std::thread::scope(|scope| -> Result<()> {
        for _ in 0..workers {
            let tx = tx.clone();
            let (todo, next, stop) = (&todo, &next, &stop);
            scope.spawn(move || {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some((i, job, validators, stored_key)) = todo.get(k) else {
                        break;
                    };
                    if stop.load(Ordering::Relaxed) || crate::cancel::requested(how.cancel) {
                        break;
                    }
                    // Past `total_timeout`, nothing more is fetched; a local file is no
                    // fetch and is always read.
                    let local = matches!(job.location(config), Location::File(_));
                    let attempt = (local || Instant::now() < how.deadline).then(|| {
                        let mut attempt = acquire::acquire(config, job, validators, how);
                        if matches!(job, Job::Guide(_)) {
                            let parsing = Instant::now();
                            attempt.guide = acquire::parse_guide(
                                config,
                                job,
                                &attempt,
                                stored_key.as_deref(),
                                how,
                            );
                            attempt.elapsed_ms += parsing.elapsed().as_millis() as u64;
                        }
                        attempt
                    });
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
            let Some(attempt) = attempt else {
                outcomes[i] = Some(skipped(store, job)?);
                continue;
            };
            let outcome = store::store_acquired(store, config, job, attempt, how)?;
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
    outcomes
        .into_iter()
        .zip(jobs)
        .map(|(outcome, job)| outcome.map_or_else(|| skipped(store, job), Ok))
        .collect()
}

/// The outcome of a job the build never got to: its copy is used, its health is left alone
/// (no fetch, no failed build), so it is never disabled for it.
fn skipped(store: &Store, job: &Job<'_>) -> Result<SourceOutcome> {
    let name = job.name();
    let error = "not attempted: total_timeout was spent before its turn";
    // (Also the outcome of a job left unattempted by a stopped build.)
    let outcome = from_cache(store, job, SourceStatus::Skipped, Some(error.into()), true)?;
    match outcome.status {
        SourceStatus::Skipped => warn!(
            "source {name}: {error}; using the last good copy ({} items)",
            outcome.items
        ),
        _ => warn!("source {name}: {error}; no earlier copy to fall back on"),
    }
    Ok(outcome)
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
        previous_items: items,
        oversized: 0,
        duration_ms: 0,
        error,
        failed: failed || status == SourceStatus::Failed,
    })
}

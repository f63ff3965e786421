//! The store phase: on the one writer thread, parse what was acquired and replace the
//! source's copy in one transaction, unless the content is what the store already has, or it
//! shrank past `max_shrink` (the count is checked before the commit, so a refused copy never
//! replaces the last good one); record the fetch and the source's health.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};

use super::guard::{Guard, Shrunk};
use super::{
    Acquired, Attempt, Job, Refresh, SourceOutcome, SourceStatus, from_cache, stored_items,
};
use crate::config::Config;
use crate::fetch::Validators;
use crate::parse::xmltv::XmltvReader;
use crate::parse::{decode, m3u::M3uReader};
use crate::store::guide::ParsedGuide;
use crate::store::health::{self, FetchKind, FetchRecord, Outcome};
use crate::store::{Store, now_ms};
use crate::{info, warn};

/// Store what was acquired (on the writer thread), record the fetch and the source's health,
/// and fall back on the last good copy when anything failed.
pub(super) fn store_acquired(
    store: &mut Store,
    config: &Config,
    job: &Job<'_>,
    attempt: Attempt,
    how: &Refresh<'_>,
) -> Result<SourceOutcome> {
    let cancel = how.cancel;
    let name = job.name().to_string();
    let started = Instant::now();
    let max_size = job.settings(config).max_size;
    let previous_items = stored_items(store, job)?;
    let guard = Guard {
        previous: previous_items,
        max_shrink: job.max_shrink(config),
        accepted: how.accept_shrink.contains(&name),
    };
    let mut refused = false;
    let stored = match attempt.result {
        Err(e) => Err(e),
        Ok(acquired) => store_one(store, job, acquired, attempt.guide, max_size, guard, cancel)
            .map_err(|e| {
                refused = e.downcast_ref::<Shrunk>().is_some();
                format!("{e:#}")
            }),
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
            if s.items == 0 && previous_items.is_none_or(|p| p == 0) {
                warn!("source {name}: no {what} in the first copy stored");
            }
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
                previous_items,
                oversized: s.oversized,
                duration_ms,
                error: None,
                failed: false,
            }
        }
        Err(e) if refused => {
            // The shrink guard refused the copy: the last good one stays and is used, but the
            // source is reported failed, with both counts in the error.
            let mut outcome = from_cache(store, job, SourceStatus::Cached, Some(e.clone()), true)?;
            outcome.status = SourceStatus::Failed;
            warn!("source {name}: refused: {e}");
            outcome
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
    /// Guide elements skipped at a cap (see `parse::xmltv::bounded`).
    oversized: u64,
    validators: Option<Validators>,
}

/// What parsing one file stored.
struct Parsed {
    items: u64,
    /// Guide elements skipped at a cap; 0 for playlists.
    oversized: u64,
}

fn store_one(
    store: &mut Store,
    job: &Job<'_>,
    acquired: Acquired,
    parsed: Option<Result<ParsedGuide>>,
    max_size: u64,
    guard: Guard,
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
    let mut oversized = 0;
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
                let parsed = store_file(
                    store, job, &path, &label, bytes, &key, parsed, max_size, guard, cancel,
                )?;
                oversized = parsed.oversized;
                (SourceStatus::Fetched, bytes, parsed.items, None)
            }
        },
        Acquired::Http { download, key } => {
            let validators = Some(download.validators.clone());
            match unchanged(&key) {
                Some(items) => (SourceStatus::NotModified, download.bytes, items, validators),
                None => {
                    let label = format!("source {name}");
                    let path = download.spool.path();
                    let parsed = store_file(
                        store,
                        job,
                        path,
                        &label,
                        download.bytes,
                        &key,
                        parsed,
                        max_size,
                        guard,
                        cancel,
                    )?;
                    oversized = parsed.oversized;
                    (
                        SourceStatus::Fetched,
                        download.bytes,
                        parsed.items,
                        validators,
                    )
                }
            }
        }
        Acquired::Xtream { download, key } => match (unchanged(&key), job) {
            (Some(items), _) => (SourceStatus::NotModified, download.bytes, items, None),
            (None, Job::Stream(source)) => {
                let account = source.xtream.as_ref().expect("an Xtream source").get_ref();
                let source_name: Arc<str> = Arc::from(name);
                let summary = store.replace_channels_guarded(
                    name,
                    download.bytes,
                    Some(&key),
                    cancel,
                    |items| Ok(guard.check(items, "channels")?),
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
        oversized,
        validators,
    })
}

/// Parse a file (local, or a download's spool) into the store: an M3U for a stream source, an
/// XMLTV guide for a guide. Returns the items stored (and guide elements skipped at a cap).
#[allow(clippy::too_many_arguments)]
fn store_file(
    store: &mut Store,
    job: &Job<'_>,
    path: &Path,
    label: &str,
    bytes: u64,
    key: &str,
    parsed: Option<Result<ParsedGuide>>,
    max_size: u64,
    guard: Guard,
    cancel: &AtomicBool,
) -> Result<Parsed> {
    let name = job.name();
    match job {
        Job::Stream(_) => Ok(Parsed {
            items: store_m3u(
                store, name, path, label, bytes, key, max_size, guard, cancel,
            )?,
            oversized: 0,
        }),
        Job::Guide(_) => store_xmltv(store, name, path, label, key, parsed, max_size, guard),
    }
}

/// Store an XMLTV guide, in one transaction: `parsed` when a worker parsed it already,
/// otherwise parsed here.
#[allow(clippy::too_many_arguments)]
fn store_xmltv(
    store: &mut Store,
    name: &str,
    path: &Path,
    label: &str,
    key: &str,
    parsed: Option<Result<ParsedGuide>>,
    max_size: u64,
    guard: Guard,
) -> Result<Parsed> {
    let parsed = match parsed {
        Some(parsed) => parsed?,
        None => {
            let input =
                decode::open(path, max_size).with_context(|| format!("cannot read {label}"))?;
            let mut reader = XmltvReader::new(input, label)?;
            // Normally parsed on the fetch worker (spooled in the spill directory); this is
            // the fallback.
            crate::store::guide::parse(&mut reader, &std::env::temp_dir())?
        }
    };
    let tx = store.conn.transaction()?;
    // Refused before anything is written: the last good copy stays.
    guard.check(parsed.programmes(), "programmes")?;
    let stats = crate::store::guide::store(&tx, name, parsed)?;
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
    if stats.oversized > 0 {
        warn!(
            "{label}: {} elements skipped past a size cap (text 1 MiB, attribute 64 KiB, element 16 MiB)",
            stats.oversized
        );
    }
    Ok(Parsed {
        items: stats.programmes,
        oversized: stats.oversized,
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
    guard: Guard,
    cancel: &AtomicBool,
) -> Result<u64> {
    let reader = decode::open(path, max_size).with_context(|| format!("cannot read {label}"))?;
    let mut m3u = M3uReader::new(reader, label.to_string(), Arc::from(name));
    let accept = |items| Ok(guard.check(items, "channels")?);
    let summary =
        store.replace_channels_guarded(name, bytes, Some(key), cancel, accept, |sink| {
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

//! Bringing each source's data into the store before any proxy is built: read (or fetch) it,
//! parse it, and replace the source's copy in one transaction. A source that cannot be read
//! keeps its last good copy, and the build goes on with it (status `cached`).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::{Config, SourceDef};
use crate::parse::{decode, m3u::M3uReader};
use crate::store::Store;
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

/// Refresh the given sources (in order) into the store. `offline` reads nothing and uses what
/// the store has.
pub fn refresh(
    store: &mut Store,
    config: &Config,
    sources: &[&SourceDef],
    offline: bool,
    cancel: &AtomicBool,
) -> Result<Vec<SourceOutcome>> {
    let mut outcomes = Vec::new();
    for source in sources {
        if crate::cancel::requested(cancel) {
            anyhow::bail!("interrupted");
        }
        let name = source.name.get_ref().0.clone();
        let started = Instant::now();
        let mut outcome = SourceOutcome {
            name: name.clone(),
            kind: kind(source),
            status: SourceStatus::Failed,
            attempts: 0,
            bytes: 0,
            items: 0,
            duration_ms: 0,
            error: None,
            failed: false,
        };
        let result = if offline {
            Err(anyhow::anyhow!("offline"))
        } else {
            outcome.attempts = 1;
            ingest_source(store, config, source, cancel)
        };
        match result {
            Ok((bytes, items)) => {
                outcome.status = SourceStatus::Fetched;
                outcome.bytes = bytes;
                outcome.items = items;
                info!(
                    "source {name}: {items} channels ({bytes} bytes), {:.1}s",
                    started.elapsed().as_secs_f64()
                );
            }
            Err(e) => {
                if crate::cancel::requested(cancel) {
                    return Err(e);
                }
                let cached = store
                    .source_record(&name)?
                    .filter(|r| r.updated_at.is_some());
                if !offline {
                    outcome.failed = true;
                    outcome.error = Some(crate::secrets::mask(&format!("{e:#}")));
                }
                match cached {
                    Some(record) => {
                        outcome.status = SourceStatus::Cached;
                        outcome.items = record.items.unwrap_or(0);
                        if offline {
                            info!(
                                "source {name}: {} channels from the database (offline)",
                                outcome.items
                            );
                        } else {
                            warn!(
                                "source {name}: {e:#}; using the last good copy ({} channels)",
                                outcome.items
                            );
                        }
                    }
                    None => {
                        outcome.failed = true;
                        outcome.status = SourceStatus::Failed;
                        if offline {
                            outcome.error = Some("offline, and no copy in the database".into());
                            warn!("source {name}: offline, and no copy in the database");
                        } else {
                            warn!("source {name}: {e:#}; no earlier copy to fall back on");
                        }
                    }
                }
            }
        }
        outcome.duration_ms = started.elapsed().as_millis() as u64;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Read one source into the store. Returns (bytes read, channels stored).
fn ingest_source(
    store: &mut Store,
    config: &Config,
    source: &SourceDef,
    cancel: &AtomicBool,
) -> Result<(u64, u64)> {
    let name = &source.name.get_ref().0;
    let location = source
        .m3u
        .as_ref()
        .map(|m| m.get_ref().as_str())
        .context("only M3U sources can be read yet")?;
    let path: PathBuf = config.resolve(location);
    let max_size = source
        .max_size
        .unwrap_or(config.file.settings.fetch.max_size)
        .0;
    let bytes = std::fs::metadata(&path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    let reader =
        decode::open(&path, max_size).with_context(|| format!("cannot read {}", path.display()))?;
    let label = path.display().to_string();
    let mut m3u = M3uReader::new(reader, label.clone(), std::sync::Arc::from(name.as_str()));
    let channels = m3u
        .by_ref()
        .map(|r| r.with_context(|| format!("cannot read {label}")));
    let summary = store.replace_channels(name, channels, bytes, None, cancel)?;
    for message in &m3u.warnings.messages {
        warn!("{message}");
    }
    if m3u.warnings.count > m3u.warnings.messages.len() as u64 {
        warn!(
            "{label}: {} more warnings not shown",
            m3u.warnings.count - m3u.warnings.messages.len() as u64
        );
    }
    Ok((bytes, summary.items))
}

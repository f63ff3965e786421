//! `lineup sources [CONFIG] [--json]`: each configured source's health and cache state, read
//! from the database: a plain aligned table, or a JSON array for scripts.
//!
//! `--enable NAME` clears an auto-disabled source's state (under the build lock) before the
//! table is shown. Otherwise it only reads. It takes no build lock (so it answers while a
//! build runs), and it never creates a database: with none yet, every source is shown as `unknown` with nothing cached,
//! and a note on stderr says so (exit 0: "nothing known yet" is an answer, not an error).
//! Guide sources (`[[epg]]`) are listed too, once a build has recorded a fetch for them.

use super::table::short_time;
use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::cli::SourcesArgs;
use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::report::rfc3339;
use crate::store::Store;
use crate::store::health::{self, FetchKind, HealthState, SourceHealth};

/// One row of the table; one element of the JSON array.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    /// `m3u`, `xtream` or `xmltv`.
    kind: &'static str,
    active: bool,
    state: HealthState,
    /// Share of the last 100 fetches that succeeded, in percent.
    uptime_percent: Option<f64>,
    /// Fetches the uptime is over (at most 100).
    fetches: u32,
    /// Mean latency of the last 10 successful fetches.
    mean_latency_ms: Option<f64>,
    consecutive_failures: u32,
    last_success: Option<String>,
    /// Masked.
    last_error: Option<String>,
    disabled_since: Option<String>,
    /// When a disabled source is next tried (UTC); none when it is not disabled.
    next_probe: Option<String>,
    /// Channels in the last good copy (none when nothing is cached).
    cached_channels: Option<u64>,
    /// When the last good copy was stored.
    cached_at: Option<String>,
}

pub fn run(args: &SourcesArgs) -> Result<Exit, Failure> {
    let config = super::load_config(args.config.config.as_deref())?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| config.resolve(&config.file.settings.database));
    if !args.enable.is_empty() {
        enable(&config, &db, &args.enable)?;
    }
    // Checked before opening: `Store::open` would create an empty database. Read-only: a
    // user who may read the database but not write it (or its directory) gets an answer.
    let store = if db.exists() {
        Some(Store::open_read_only(&db)?)
    } else {
        crate::info!(
            "no database yet at {}: every source is unknown until `lineup build` runs",
            db.display()
        );
        None
    };
    let rows = rows(&config, store.as_ref()).map_err(|e| crate::store::file::name_file(e, &db))?;
    super::table::print(args.json, &rows, |rows| table(rows))?;
    Ok(Exit::Success)
}

/// `--enable`: every name must be a configured source or guide; each is re-enabled under the
/// build lock.
fn enable(config: &Config, db: &std::path::Path, names: &[String]) -> Result<(), Failure> {
    let mut kinds = Vec::new();
    for name in names {
        let mut found: Vec<FetchKind> = config
            .file
            .sources
            .iter()
            .filter(|s| s.name.get_ref().0 == *name)
            .map(|s| {
                if s.xtream.is_some() {
                    FetchKind::Xtream
                } else {
                    FetchKind::M3u
                }
            })
            .collect();
        if config.file.epgs.iter().any(|e| e.name.get_ref().0 == *name) {
            found.push(FetchKind::Xmltv);
        }
        if found.is_empty() {
            return Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!(
                    "--enable {name}: no source or guide of that name in {}",
                    config.path.display()
                ),
            ));
        }
        kinds.extend(found.into_iter().map(|k| (name.as_str(), k)));
    }
    if !db.exists() {
        crate::info!("no database yet at {}: nothing is disabled", db.display());
        return Ok(());
    }
    let _lock = crate::lock::BuildLock::acquire(db, None)?;
    let store = Store::open(db)?;
    for (name, kind) in kinds {
        let was = health::health(&store.conn, name, kind)
            .with_context(|| format!("cannot read the health of {name}"))?;
        health::enable(&store.conn, name, kind).with_context(|| format!("cannot enable {name}"))?;
        if was.state == HealthState::Disabled {
            crate::info!("source {name}: enabled; the next build fetches it");
        } else {
            crate::info!("source {name}: was not disabled; failures cleared");
        }
    }
    Ok(())
}

fn rows(config: &Config, store: Option<&Store>) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for source in &config.file.sources {
        let name = source.name.get_ref().0.as_str();
        let kind = if source.xtream.is_some() {
            FetchKind::Xtream
        } else {
            FetchKind::M3u
        };
        let Some(store) = store else {
            rows.push(unknown(name, kind, source.active));
            continue;
        };
        let h = health::health(&store.conn, name, kind)
            .with_context(|| format!("cannot read the health of source {name}"))?;
        let cached = store
            .source_record(name)?
            .filter(|r| r.updated_at.is_some());
        let next = health::next_probe(&store.conn, name, kind, &config.file.settings.health)?;
        rows.push(row(
            name,
            kind,
            source.active,
            h,
            next,
            cached.as_ref().map(|r| r.items.unwrap_or(0)),
            cached.and_then(|r| r.updated_at),
        ));
    }
    let Some(store) = store else {
        return Ok(rows);
    };
    for epg in &config.file.epgs {
        let name = epg.name.get_ref().0.as_str();
        if !has_history(&store.conn, name, FetchKind::Xmltv)? {
            continue;
        }
        let h = health::health(&store.conn, name, FetchKind::Xmltv)
            .with_context(|| format!("cannot read the health of guide {name}"))?;
        // The guide tables keep no storing time: the last successful fetch is when the
        // cached copy was last confirmed.
        let stored_at = h.last_success;
        let channels = guide_channels(&store.conn, name)?;
        let next = health::next_probe(
            &store.conn,
            name,
            FetchKind::Xmltv,
            &config.file.settings.health,
        )?;
        rows.push(row(
            name,
            FetchKind::Xmltv,
            epg.active,
            h,
            next,
            channels,
            channels.and(stored_at),
        ));
    }
    Ok(rows)
}

fn row(
    name: &str,
    kind: FetchKind,
    active: bool,
    h: SourceHealth,
    next_probe: Option<i64>,
    cached_channels: Option<u64>,
    cached_at: Option<i64>,
) -> Row {
    Row {
        name: name.to_string(),
        kind: kind.as_str(),
        active,
        state: h.state,
        uptime_percent: h.uptime_percent,
        fetches: h.fetches,
        mean_latency_ms: h.mean_latency_ms,
        consecutive_failures: h.consecutive_failures,
        last_success: h.last_success.map(rfc3339),
        last_error: h.last_error.map(|e| crate::secrets::mask(&e)),
        disabled_since: h.disabled_since.map(rfc3339),
        next_probe: next_probe.map(rfc3339),
        cached_channels,
        cached_at: cached_at.map(rfc3339),
    }
}

fn unknown(name: &str, kind: FetchKind, active: bool) -> Row {
    Row {
        name: name.to_string(),
        kind: kind.as_str(),
        active,
        state: HealthState::Unknown,
        uptime_percent: None,
        fetches: 0,
        mean_latency_ms: None,
        consecutive_failures: 0,
        last_success: None,
        last_error: None,
        disabled_since: None,
        next_probe: None,
        cached_channels: None,
        cached_at: None,
    }
}

/// Whether any fetch or health state was recorded for this source and kind.
fn has_history(conn: &Connection, name: &str, kind: FetchKind) -> anyhow::Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT (SELECT count(*) FROM fetches WHERE source = ?1 AND kind = ?2)
              + (SELECT count(*) FROM source_health WHERE source = ?1 AND kind = ?2)",
        params![name, kind.as_str()],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

fn guide_channels(conn: &Connection, name: &str) -> anyhow::Result<Option<u64>> {
    Ok(conn
        .query_row(
            "SELECT channels FROM guide_sources WHERE name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .map(|n| n.max(0) as u64))
}

/// The plain table: one line per source, columns padded to the widest cell, the (long) last
/// error last so that it never pushes the other columns apart.
fn table(rows: &[Row]) -> String {
    const HEAD: [&str; 11] = [
        "SOURCE",
        "KIND",
        "STATE",
        "ACTIVE",
        "UPTIME",
        "LATENCY",
        "FAILS",
        "LAST SUCCESS",
        "CACHED",
        "STORED",
        "LAST ERROR",
    ];
    let dash = || "-".to_string();
    let cells: Vec<[String; 11]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.kind.to_string(),
                match &r.next_probe {
                    Some(at) => format!("{} (next probe {})", r.state.as_str(), short_time(at)),
                    None => r.state.as_str().to_string(),
                },
                if r.active { "yes" } else { "no" }.to_string(),
                r.uptime_percent
                    .map_or_else(dash, |u| format!("{u:.0}% of {}", r.fetches)),
                r.mean_latency_ms
                    .map_or_else(dash, |l| format!("{}ms", l.round() as u64)),
                r.consecutive_failures.to_string(),
                r.last_success.as_deref().map_or_else(dash, short_time),
                r.cached_channels.map_or_else(dash, |n| n.to_string()),
                r.cached_at.as_deref().map_or_else(dash, short_time),
                r.last_error.clone().unwrap_or_else(dash),
            ]
        })
        .collect();
    super::table::render(HEAD, &cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_keeps_the_error_last() {
        let mut a = unknown("alpha", FetchKind::M3u, true);
        a.state = HealthState::Down;
        a.uptime_percent = Some(50.0);
        a.fetches = 2;
        a.mean_latency_ms = Some(12.4);
        a.consecutive_failures = 1;
        a.last_success = Some(rfc3339(0));
        a.last_error = Some("HTTP 500".into());
        a.cached_channels = Some(3);
        a.cached_at = Some(rfc3339(1_000));
        let b = unknown("a-much-longer-name", FetchKind::Xtream, false);
        let text = table(&[a, b]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        // Every column starts at the same offset on every line.
        let kind_at = lines[0].find("KIND").unwrap();
        assert_eq!(lines[1].find("m3u"), Some(kind_at));
        assert_eq!(lines[2].find("xtream"), Some(kind_at));
        assert!(
            lines[1].contains("50% of 2") && lines[1].contains("12ms"),
            "{text}"
        );
        assert!(lines[1].contains("1970-01-01 00:00:00Z"), "{text}");
        assert!(lines[1].ends_with("HTTP 500"), "{text}");
        assert!(
            lines[2].contains("unknown") && lines[2].contains(" no "),
            "{text}"
        );
    }
}

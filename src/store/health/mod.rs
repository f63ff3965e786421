//! Source health: every fetch is recorded (time, latency, outcome, attempts, masked error), and
//! each source keeps a small state across builds: consecutive failed builds, when it was
//! auto-disabled, and the validators and content hash of its last good copy. `lineup build`
//! asks [`should_skip`] before fetching and reports back with [`record_build`]; `lineup
//! sources` shows [`health`].
//!
//! Rows are keyed by the source's name *and* kind (`m3u`, `xtream`, `xmltv`): a `[[source]]`
//! and an `[[epg]]` may share a name, and their histories must not mix.
//!
//! States, in the order they are decided:
//! - `unknown`: no fetch recorded yet;
//! - `disabled`: auto-disabled after `disable_after` consecutive failed builds (it is tried
//!   again every `reprobe_after`, and re-enabled by one success);
//! - `down`: the last build that tried it failed;
//! - `degraded`: it works, but not every one of the last 100 fetches succeeded, or the last
//!   fetch needed retries;
//! - `healthy`: otherwise.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::config::HealthSettings;
use crate::fetch::{FetchError, FetchOutcome, Validators};

/// Appended to the store's migrations. Idempotent.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS fetches (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('m3u', 'xtream', 'xmltv')),
    started_at  INTEGER NOT NULL,            -- Unix ms
    latency_ms  INTEGER NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('fetched', 'not_modified', 'failed')),
    bytes       INTEGER,
    http_status INTEGER,
    attempts    INTEGER NOT NULL,
    error       TEXT                         -- masked
);
CREATE INDEX IF NOT EXISTS fetches_by_source ON fetches (source, kind, id);
CREATE TABLE IF NOT EXISTS source_health (
    source         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    consecutive_failed_builds INTEGER NOT NULL DEFAULT 0,
    disabled_since INTEGER,                  -- Unix ms; NULL = enabled
    last_build_at  INTEGER,                  -- Unix ms of the last build that tried it
    etag           TEXT,
    last_modified  TEXT,
    content_sha256 TEXT,
    PRIMARY KEY (source, kind)
) WITHOUT ROWID;
";

/// Fetch rows kept per source: well above the 100 that uptime looks at.
const KEEP_FETCHES: i64 = 1000;
/// Fetches uptime is computed over.
const UPTIME_WINDOW: i64 = 100;
/// Successful fetches mean latency is computed over.
const LATENCY_WINDOW: i64 = 10;

/// What kind of download a source makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchKind {
    M3u,
    Xtream,
    Xmltv,
}

impl FetchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FetchKind::M3u => "m3u",
            FetchKind::Xtream => "xtream",
            FetchKind::Xmltv => "xmltv",
        }
    }
}

/// How a fetch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Fetched,
    NotModified,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Fetched => "fetched",
            Outcome::NotModified => "not_modified",
            Outcome::Failed => "failed",
        }
    }
}

/// One fetch, as recorded.
#[derive(Debug, Clone)]
pub struct FetchRecord<'a> {
    pub source: &'a str,
    pub kind: FetchKind,
    /// Unix ms.
    pub started_at: i64,
    pub latency_ms: i64,
    pub outcome: Outcome,
    pub bytes: Option<u64>,
    pub http_status: Option<u16>,
    pub attempts: u32,
    /// Masked again on the way in, whatever the caller did.
    pub error: Option<&'a str>,
}

impl<'a> FetchRecord<'a> {
    /// The record of an HTTP download (`fetch::Client::fetch`). `latency_ms` is measured by the
    /// caller (a failed fetch carries no duration of its own).
    pub fn from_http(
        source: &'a str,
        kind: FetchKind,
        started_at: i64,
        latency_ms: i64,
        result: &'a Result<FetchOutcome, FetchError>,
    ) -> FetchRecord<'a> {
        let (outcome, bytes, http_status, attempts, error) = match result {
            Ok(FetchOutcome::Fetched(d)) => (
                Outcome::Fetched,
                Some(d.bytes),
                Some(d.status),
                d.attempts,
                None,
            ),
            Ok(FetchOutcome::NotModified { attempts, .. }) => {
                (Outcome::NotModified, None, Some(304), *attempts, None)
            }
            Err(e) => (
                Outcome::Failed,
                None,
                e.http_status,
                e.attempts,
                Some(e.message.as_str()),
            ),
        };
        FetchRecord {
            source,
            kind,
            started_at,
            latency_ms,
            outcome,
            bytes,
            http_status,
            attempts,
            error,
        }
    }
}

/// Record a fetch (and forget the oldest beyond the kept history).
pub fn record_fetch(conn: &Connection, r: &FetchRecord<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO fetches (source, kind, started_at, latency_ms, outcome, bytes, http_status,
                              attempts, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        r.source,
        r.kind.as_str(),
        r.started_at,
        r.latency_ms,
        r.outcome.as_str(),
        r.bytes.map(|b| b.min(i64::MAX as u64) as i64),
        r.http_status,
        r.attempts,
        r.error.map(crate::secrets::mask),
    ])?;
    conn.prepare_cached(
        "DELETE FROM fetches WHERE source = ?1 AND kind = ?2 AND id <= (
             SELECT id FROM fetches WHERE source = ?1 AND kind = ?2
             ORDER BY id DESC LIMIT 1 OFFSET ?3)",
    )?
    .execute(params![r.source, r.kind.as_str(), KEEP_FETCHES])?;
    Ok(())
}

/// Where a source stands after [`record_build`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildState {
    pub consecutive_failed_builds: u32,
    /// Set when the source is (now or still) disabled.
    pub disabled_since: Option<i64>,
}

/// After a build tried a source: a success resets the failure count and re-enables it; a
/// failure counts, and the `disable_after`-th one in a row disables it (0 = never).
pub fn record_build(
    conn: &Connection,
    source: &str,
    kind: FetchKind,
    succeeded: bool,
    now: i64,
    settings: &HealthSettings,
) -> rusqlite::Result<BuildState> {
    ensure_row(conn, source, kind)?;
    if succeeded {
        conn.execute(
            "UPDATE source_health SET consecutive_failed_builds = 0, disabled_since = NULL,
                 last_build_at = ?3
             WHERE source = ?1 AND kind = ?2",
            params![source, kind.as_str(), now],
        )?;
    } else {
        conn.execute(
            "UPDATE source_health SET consecutive_failed_builds = consecutive_failed_builds + 1,
                 last_build_at = ?3,
                 disabled_since = CASE
                     WHEN disabled_since IS NOT NULL THEN disabled_since
                     WHEN ?4 > 0 AND consecutive_failed_builds + 1 >= ?4 THEN ?3
                     ELSE NULL END
             WHERE source = ?1 AND kind = ?2",
            params![source, kind.as_str(), now, settings.disable_after],
        )?;
    }
    conn.query_row(
        "SELECT consecutive_failed_builds, disabled_since FROM source_health
         WHERE source = ?1 AND kind = ?2",
        params![source, kind.as_str()],
        |r| {
            Ok(BuildState {
                consecutive_failed_builds: r.get(0)?,
                disabled_since: r.get(1)?,
            })
        },
    )
}

/// Whether a build should leave this source alone: it is disabled and was last tried less
/// than `reprobe_after` ago. Once the interval has passed it is tried again (a re-probe).
pub fn should_skip(
    conn: &Connection,
    source: &str,
    kind: FetchKind,
    now: i64,
    settings: &HealthSettings,
) -> rusqlite::Result<bool> {
    Ok(next_probe(conn, source, kind, settings)?.is_some_and(|at| now < at))
}

/// When a disabled source will next be tried (Unix ms), as [`should_skip`] decides it; `None`
/// when it is not disabled.
pub fn next_probe(
    conn: &Connection,
    source: &str,
    kind: FetchKind,
    settings: &HealthSettings,
) -> rusqlite::Result<Option<i64>> {
    let row: Option<(Option<i64>, Option<i64>)> = conn
        .query_row(
            "SELECT disabled_since, last_build_at FROM source_health
             WHERE source = ?1 AND kind = ?2",
            params![source, kind.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((Some(disabled_since), last_try)) = row else {
        return Ok(None);
    };
    let last_try = last_try.unwrap_or(disabled_since).max(disabled_since);
    let reprobe_ms = settings.reprobe_after.0.as_millis().min(i64::MAX as u128) as i64;
    Ok(Some(last_try.saturating_add(reprobe_ms)))
}

/// `lineup sources --enable`: clear a source's disabled state and consecutive failures so the
/// next build fetches it. Returns whether there was a health row to clear.
pub fn enable(conn: &Connection, source: &str, kind: FetchKind) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE source_health SET disabled_since = NULL, consecutive_failed_builds = 0
         WHERE source = ?1 AND kind = ?2",
        params![source, kind.as_str()],
    )?;
    Ok(changed > 0)
}

/// A source's health, as `lineup sources` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Healthy,
    Degraded,
    Down,
    Disabled,
    Unknown,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Down => "down",
            HealthState::Disabled => "disabled",
            HealthState::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceHealth {
    pub state: HealthState,
    /// Share of the last 100 fetches that succeeded (fetched or not modified), in percent.
    pub uptime_percent: Option<f64>,
    /// How many fetches `uptime_percent` is over (at most 100).
    pub fetches: u32,
    /// Mean latency of the last 10 successful fetches.
    pub mean_latency_ms: Option<f64>,
    pub consecutive_failures: u32,
    /// Unix ms of the last successful fetch.
    pub last_success: Option<i64>,
    /// Masked error of the last failed fetch.
    pub last_error: Option<String>,
    pub disabled_since: Option<i64>,
}

/// The health of one source (see the module docs for the state rules).
pub fn health(conn: &Connection, source: &str, kind: FetchKind) -> rusqlite::Result<SourceHealth> {
    let k = kind.as_str();
    let (fetches, ok): (u32, u32) = conn.query_row(
        "SELECT count(*), coalesce(sum(outcome != 'failed'), 0) FROM (
             SELECT outcome FROM fetches WHERE source = ?1 AND kind = ?2
             ORDER BY id DESC LIMIT ?3)",
        params![source, k, UPTIME_WINDOW],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mean_latency_ms: Option<f64> = conn.query_row(
        "SELECT avg(latency_ms) FROM (
             SELECT latency_ms FROM fetches WHERE source = ?1 AND kind = ?2
                 AND outcome != 'failed'
             ORDER BY id DESC LIMIT ?3)",
        params![source, k, LATENCY_WINDOW],
        |r| r.get(0),
    )?;
    let last_success: Option<i64> = conn.query_row(
        "SELECT max(started_at) FROM fetches
         WHERE source = ?1 AND kind = ?2 AND outcome != 'failed'",
        params![source, k],
        |r| r.get(0),
    )?;
    let last_error: Option<String> = conn
        .query_row(
            "SELECT error FROM fetches WHERE source = ?1 AND kind = ?2 AND outcome = 'failed'
             ORDER BY id DESC LIMIT 1",
            params![source, k],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let last: Option<(String, u32)> = conn
        .query_row(
            "SELECT outcome, attempts FROM fetches WHERE source = ?1 AND kind = ?2
             ORDER BY id DESC LIMIT 1",
            params![source, k],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (consecutive, disabled_since): (u32, Option<i64>) = conn
        .query_row(
            "SELECT consecutive_failed_builds, disabled_since FROM source_health
             WHERE source = ?1 AND kind = ?2",
            params![source, k],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, None));
    let uptime_percent = (fetches > 0).then(|| f64::from(ok) * 100.0 / f64::from(fetches));
    let state = match &last {
        None => HealthState::Unknown,
        Some(_) if disabled_since.is_some() => HealthState::Disabled,
        Some(_) if consecutive > 0 => HealthState::Down,
        // No build recorded a result yet: judge by the last fetch alone.
        Some((outcome, _)) if outcome == "failed" => HealthState::Down,
        Some((_, attempts)) if ok < fetches || *attempts > requests_per_fetch(kind) => {
            HealthState::Degraded
        }
        Some(_) => HealthState::Healthy,
    };
    Ok(SourceHealth {
        state,
        uptime_percent,
        fetches,
        mean_latency_ms,
        consecutive_failures: consecutive,
        last_success,
        last_error,
        disabled_since,
    })
}

/// Requests a fetch makes when nothing is retried: an Xtream source counts the attempts of its
/// three calls (account, categories, streams) together, so 3 is a clean fetch, not retries.
fn requests_per_fetch(kind: FetchKind) -> u32 {
    match kind {
        FetchKind::Xtream => 3,
        FetchKind::M3u | FetchKind::Xmltv => 1,
    }
}

/// Validators of the last good copy (empty when none were stored).
pub fn validators(
    conn: &Connection,
    source: &str,
    kind: FetchKind,
) -> rusqlite::Result<Validators> {
    Ok(conn
        .query_row(
            "SELECT etag, last_modified FROM source_health WHERE source = ?1 AND kind = ?2",
            params![source, kind.as_str()],
            |r| {
                Ok(Validators {
                    etag: r.get(0)?,
                    last_modified: r.get(1)?,
                })
            },
        )
        .optional()?
        .unwrap_or_default())
}

/// Store the validators of a copy that was just stored as the last good one.
pub fn set_validators(
    conn: &Connection,
    source: &str,
    kind: FetchKind,
    v: &Validators,
) -> rusqlite::Result<()> {
    ensure_row(conn, source, kind)?;
    conn.execute(
        "UPDATE source_health SET etag = ?3, last_modified = ?4 WHERE source = ?1 AND kind = ?2",
        params![source, kind.as_str(), v.etag, v.last_modified],
    )?;
    Ok(())
}

/// SHA-256 (hex) of the last good copy's content.
pub fn content_hash(
    conn: &Connection,
    source: &str,
    kind: FetchKind,
) -> rusqlite::Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT content_sha256 FROM source_health WHERE source = ?1 AND kind = ?2",
            params![source, kind.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

pub fn set_content_hash(
    conn: &Connection,
    source: &str,
    kind: FetchKind,
    sha256: &str,
) -> rusqlite::Result<()> {
    ensure_row(conn, source, kind)?;
    conn.execute(
        "UPDATE source_health SET content_sha256 = ?3 WHERE source = ?1 AND kind = ?2",
        params![source, kind.as_str(), sha256],
    )?;
    Ok(())
}

fn ensure_row(conn: &Connection, source: &str, kind: FetchKind) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO source_health (source, kind) VALUES (?1, ?2)")?
        .execute(params![source, kind.as_str()])?;
    Ok(())
}

#[cfg(test)]
mod tests;

//! Probe results in the database, one row per stream URL (`streams`), and which proxy lists
//! which stream (`stream_proxies`). A stream is `dead` only after `dead_after` consecutive failed
//! probes; one success makes it `alive`; a stream that failed fewer times keeps its status
//! (`unknown` when it was never alive). Other schemes are `unknown`. Times are Unix seconds
//! of the build clock (`$LINEUP_NOW` in tests).

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128;

use super::check::{Finding, Target, Verdict};

/// Appended to the store's migrations. Idempotent.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS streams (
    id          INTEGER PRIMARY KEY,
    url         TEXT NOT NULL UNIQUE,        -- as written in the playlist
    headers     TEXT NOT NULL DEFAULT '',    -- the channel's User-Agent/Referer lines
    status      TEXT CHECK (status IN ('alive', 'dead', 'unknown')),  -- NULL: never probed
    result      TEXT CHECK (result IN ('ok', 'fail', 'skipped')),     -- of the last probe
    reason      TEXT,
    http_status INTEGER,
    latency_ms  INTEGER,
    failures    INTEGER NOT NULL DEFAULT 0,  -- consecutive failed probes
    checked_at  INTEGER,                     -- Unix s of the last probe
    last_alive  INTEGER                      -- Unix s of the last success
);
CREATE INDEX IF NOT EXISTS streams_by_check ON streams (checked_at, id);
CREATE TABLE IF NOT EXISTS stream_proxies (
    proxy     TEXT NOT NULL,
    stream_id INTEGER NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    PRIMARY KEY (proxy, stream_id)
) WITHOUT ROWID;
";

/// A stream waiting for its probe.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: i64,
    pub target: Target,
    /// Order key: when it was last checked (`-1`: never).
    pub checked_at: i64,
}

/// Forget which streams `proxy` listed (their history stays), before listing them anew.
pub fn clear_listing(conn: &Connection, proxy: &str) -> Result<()> {
    conn.execute("DELETE FROM stream_proxies WHERE proxy = ?1", [proxy])?;
    Ok(())
}

/// Record that `proxy` lists these streams, keeping each stream's history. `channels`
/// yields (URL as written, the channel's directives).
pub fn list_streams<'a>(
    conn: &Connection,
    proxy: &str,
    channels: impl Iterator<Item = (&'a str, &'a [String])>,
) -> Result<()> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO streams (url, headers) VALUES (?1, ?2)
         ON CONFLICT (url) DO UPDATE SET headers = excluded.headers
         RETURNING id",
    )?;
    let mut own = conn.prepare_cached(
        "INSERT OR IGNORE INTO stream_proxies (proxy, stream_id) VALUES (?1, ?2)",
    )?;
    for (url, directives) in channels {
        if url.is_empty() {
            continue;
        }
        let headers = Target::from_channel(url, directives).headers_text();
        let id: i64 = upsert.query_row(params![url, headers], |r| r.get(0))?;
        own.execute(params![proxy, id])?;
    }
    Ok(())
}

/// Whether a stream is due (never probed, alive for `?3` s, failing for `?4` s at `?2`). One
/// probed at this very clock is not, even with a zero interval: a run probes a stream once.
const DUE: &str = "(s.checked_at IS NULL
    OR (s.checked_at < ?2
        AND ((s.status = 'alive' AND s.checked_at <= ?2 - ?3)
             OR (s.status IS NOT 'alive' AND s.checked_at <= ?2 - ?4))))";

/// How many streams of `proxy` are due after the order key `after`.
pub fn count_due(
    conn: &Connection,
    proxy: &str,
    now: i64,
    recheck: (i64, i64),
    after: (i64, i64),
) -> Result<u64> {
    let n: i64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM streams s
             JOIN stream_proxies p ON p.stream_id = s.id AND p.proxy = ?1
             WHERE {DUE} AND (COALESCE(s.checked_at, -1), s.id) > (?5, ?6)"
        ),
        params![proxy, now, recheck.0, recheck.1, after.0, after.1],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// The next `limit` streams of `proxy` that are due, oldest result first (never probed
/// first), after the order key `after`.
pub fn due(
    conn: &Connection,
    proxy: &str,
    now: i64,
    recheck_alive: i64,
    recheck_dead: i64,
    after: (i64, i64),
    limit: usize,
) -> Result<Vec<Due>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT s.id, s.url, s.headers, COALESCE(s.checked_at, -1) AS k FROM streams s
         JOIN stream_proxies p ON p.stream_id = s.id AND p.proxy = ?1
         WHERE {DUE} AND (k, s.id) > (?5, ?6)
         ORDER BY k, s.id LIMIT ?7"
    ))?;
    let rows = stmt.query_map(
        params![
            proxy,
            now,
            recheck_alive,
            recheck_dead,
            after.0,
            after.1,
            limit as i64
        ],
        |r| {
            let url: String = r.get(1)?;
            let headers: String = r.get(2)?;
            Ok(Due {
                id: r.get(0)?,
                target: target_of(&url, &headers),
                checked_at: r.get(3)?,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn target_of(url: &str, headers: &str) -> Target {
    let mut t = Target::from_channel(url, &[]);
    for line in headers.lines() {
        match line.split_once(": ") {
            Some(("User-Agent", v)) => t.user_agent = Some(v.to_string()),
            Some(("Referer", v)) => t.referrer = Some(v.to_string()),
            _ => {}
        }
    }
    t
}

/// Store one probe's finding, applying the hysteresis. Returns the stream's new status.
pub fn record(
    conn: &Connection,
    id: i64,
    finding: &Finding,
    now: i64,
    dead_after: u32,
) -> Result<&'static str> {
    let (status, failures): (Option<String>, i64) = conn
        .query_row(
            "SELECT status, failures FROM streams WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((None, 0));
    let (new_status, failures, result) = match finding.verdict {
        Verdict::Ok => ("alive", 0, "ok"),
        Verdict::Skipped => ("unknown", 0, "skipped"),
        Verdict::Fail => {
            let failures = failures + 1;
            let status = if failures >= i64::from(dead_after) {
                "dead"
            } else if status.as_deref() == Some("alive") {
                "alive"
            } else if status.as_deref() == Some("dead") {
                "dead"
            } else {
                "unknown"
            };
            (status, failures, "fail")
        }
    };
    conn.execute(
        "UPDATE streams SET status = ?2, result = ?3, reason = ?4, http_status = ?5,
             latency_ms = ?6, failures = ?7, checked_at = ?8,
             last_alive = CASE WHEN ?3 = 'ok' THEN ?8 ELSE last_alive END
         WHERE id = ?1",
        params![
            id,
            new_status,
            result,
            crate::secrets::mask(&finding.reason),
            finding.http_status,
            finding.latency_ms as i64,
            failures,
            now
        ],
    )?;
    Ok(new_status)
}

/// A digest of every stream's status: a build whose line-up depends on probe results is not
/// `--if-changed`-unchanged when a status changed. Zero when nothing was probed.
pub fn status_digest(conn: &Connection) -> Result<u128> {
    let mut stmt =
        conn.prepare("SELECT id, status FROM streams WHERE status IS NOT NULL ORDER BY id")?;
    let mut rows = stmt.query([])?;
    let mut digest = 0u128;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let status = row.get_ref(1)?.as_str()?;
        let h = xxh3_128(format!("{id}:{status}").as_bytes());
        digest = digest.rotate_left(1) ^ h;
    }
    Ok(digest)
}

/// Counts of a proxy's streams by status (`not_probed` for those never probed).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StatusCounts {
    pub alive: u64,
    pub dead: u64,
    pub unknown: u64,
    pub not_probed: u64,
}

pub fn counts(conn: &Connection, proxy: &str) -> Result<StatusCounts> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.status, count(*) FROM streams s
         JOIN stream_proxies p ON p.stream_id = s.id AND p.proxy = ?1 GROUP BY s.status",
    )?;
    let mut out = StatusCounts::default();
    let mut rows = stmt.query([proxy])?;
    while let Some(row) = rows.next()? {
        let n = row.get::<_, i64>(1)? as u64;
        match row.get::<_, Option<String>>(0)?.as_deref() {
            Some("alive") => out.alive = n,
            Some("dead") => out.dead = n,
            Some(_) => out.unknown += n,
            None => out.not_probed = n,
        }
    }
    Ok(out)
}

/// One stream as `lineup streams` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StreamRow {
    /// Credentials masked.
    pub url: String,
    pub proxies: Vec<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub http_status: Option<i64>,
    pub latency_ms: Option<i64>,
    pub failures: i64,
    /// RFC 3339 UTC.
    pub checked_at: Option<String>,
    pub last_alive: Option<String>,
}

/// Streams listed by `proxy` (or by any proxy), only dead ones with `dead_only`.
pub fn rows(conn: &Connection, proxy: Option<&str>, dead_only: bool) -> Result<Vec<StreamRow>> {
    let mut stmt = conn.prepare(
        "SELECT s.url, group_concat(p.proxy, ','), s.status, s.reason, s.http_status,
                s.latency_ms, s.failures, s.checked_at, s.last_alive
         FROM streams s JOIN stream_proxies p ON p.stream_id = s.id
         WHERE (?1 IS NULL OR p.proxy = ?1) AND (?2 = 0 OR s.status = 'dead')
         GROUP BY s.id ORDER BY s.status IS NULL, s.status, s.url",
    )?;
    let time = |t: Option<i64>| t.map(|s| crate::report::rfc3339(s * 1000));
    let rows = stmt.query_map(params![proxy, dead_only as i64], |r| {
        let proxies: String = r.get(1)?;
        Ok(StreamRow {
            url: super::display_url(&r.get::<_, String>(0)?),
            proxies: proxies.split(',').map(str::to_string).collect(),
            status: r.get(2)?,
            reason: r.get(3)?,
            http_status: r.get(4)?,
            latency_ms: r.get(5)?,
            failures: r.get(6)?,
            checked_at: time(r.get(7)?),
            last_alive: time(r.get(8)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Probe results by URL hash, for the rules fields and dedupe of one build.
#[derive(Debug, Default)]
pub struct Marks {
    by_url: HashMap<u128, (&'static str, i64)>,
    now: i64,
}

impl Marks {
    /// Every probed stream (empty when probing was never used).
    pub fn load(conn: &Connection, now: i64) -> Result<Marks> {
        let mut stmt = conn
            .prepare("SELECT url, status, checked_at FROM streams WHERE checked_at IS NOT NULL")?;
        let mut rows = stmt.query([])?;
        let mut by_url = HashMap::new();
        while let Some(row) = rows.next()? {
            let url = row.get_ref(0)?.as_str()?;
            let status = match row.get_ref(1)?.as_str_or_null()? {
                Some("alive") => "alive",
                Some("dead") => "dead",
                _ => "unknown",
            };
            by_url.insert(xxh3_128(url.as_bytes()), (status, row.get::<_, i64>(2)?));
        }
        Ok(Marks { by_url, now })
    }

    pub fn is_empty(&self) -> bool {
        self.by_url.is_empty()
    }

    /// Whether any stream is alive (dedupe's preference only matters then).
    pub fn any_alive(&self) -> bool {
        self.by_url.values().any(|(s, _)| *s == "alive")
    }

    /// Give each channel its stream's probe result (by its URL as stored).
    pub fn annotate(&self, channels: &mut [crate::model::Channel]) {
        if self.by_url.is_empty() {
            return;
        }
        for ch in channels {
            if let Some((status, days)) = self.get(&ch.url) {
                ch.probe.status = status;
                ch.probe.checked_days = days.to_string();
            }
        }
    }

    /// Status and days since the last probe of a URL.
    pub fn get(&self, url: &str) -> Option<(&'static str, i64)> {
        self.by_url
            .get(&xxh3_128(url.as_bytes()))
            .map(|&(s, at)| (s, (self.now - at).max(0) / 86_400))
    }

    /// Approximate heap held, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.by_url.capacity() * (16 + 24 + 1) * 8 / 7
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::check::Finding;

    fn finding(verdict: Verdict) -> Finding {
        Finding {
            verdict,
            reason: "r".into(),
            http_status: Some(200),
            latency_ms: 5,
        }
    }

    #[test]
    fn an_older_database_is_carried_forward() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut conn = Connection::open(&path).unwrap();
        crate::store::schema::migrate_until(&mut conn, |sql| sql == SCHEMA).unwrap();
        let before: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert!(
            !conn
                .prepare("SELECT 1 FROM sqlite_master WHERE name = 'streams'")
                .unwrap()
                .exists([])
                .unwrap(),
            "the old schema has no streams table"
        );
        conn.execute(
            "INSERT INTO sources (name, kind) VALUES ('kept', 'm3u')",
            [],
        )
        .unwrap();
        drop(conn);
        let store = crate::store::Store::open(&path).unwrap();
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert!(version > before);
        let kept: String = store
            .conn
            .query_row("SELECT name FROM sources", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, "kept");
        list_streams(&store.conn, "p", [("http://h/1", &[][..])].into_iter()).unwrap();
        assert_eq!(counts(&store.conn, "p").unwrap().not_probed, 1);
    }

    #[test]
    fn dead_only_after_dead_after_failures_and_alive_after_one_success() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        let c = &store.conn;
        list_streams(c, "p", [("http://h/1", &[][..])].into_iter()).unwrap();
        let id = due(c, "p", 0, 10, 10, (i64::MIN, i64::MIN), 10).unwrap()[0].id;
        assert_eq!(
            record(c, id, &finding(Verdict::Fail), 1, 2).unwrap(),
            "unknown"
        );
        assert_eq!(
            record(c, id, &finding(Verdict::Fail), 2, 2).unwrap(),
            "dead"
        );
        assert_eq!(record(c, id, &finding(Verdict::Ok), 3, 2).unwrap(), "alive");
        assert_eq!(
            record(c, id, &finding(Verdict::Fail), 4, 2).unwrap(),
            "alive"
        );
        assert_eq!(
            record(c, id, &finding(Verdict::Fail), 5, 2).unwrap(),
            "dead"
        );
        // Due again only after recheck_dead.
        assert!(
            due(c, "p", 10, 100, 10, (i64::MIN, i64::MIN), 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            due(c, "p", 15, 100, 10, (i64::MIN, i64::MIN), 10)
                .unwrap()
                .len(),
            1
        );
        let marks = Marks::load(c, 5 + 3 * 86_400).unwrap();
        assert_eq!(marks.get("http://h/1"), Some(("dead", 3)));
    }
}

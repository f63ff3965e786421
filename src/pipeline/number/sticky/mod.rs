//! Sticky numbering's identities and their numbers in the database (`store::numbers`).
//!
//! Identity (`numbering.key`): a list of entries tried in order; an entry is a field or
//! several joined with `+`. The first entry with a non-empty value (any of its fields) names
//! the channel, as `field=value` (entries of several fields: `a=x, b=y`); when no entry has a
//! value, the last one is used with its empty values. Values are compared trimmed, lowercase,
//! with runs of whitespace as one space. The default key is
//! `["tvg_id", "channel_name+group_title"]`: the `tvg-id` when there is one, else the
//! channel's name within its group. So with the default, a channel the provider renames keeps
//! its number when its `tvg-id` stays; a changed `tvg-id` (or, without one, a changed name or
//! group) is a new identity: it gets a new number, and the old identity's number stays held
//! until `forget_after` passes. When several channels of one build share an identity, the
//! first in output order is `identity`, the next `identity #2`, and so on; an identity that
//! itself ends in ` #` and digits is written with ` #1` after it (`name=sky #2 #1`), so that it
//! is never taken for another identity's second.
//!
//! During the build the stored assignments are never loaded whole: sticky numbering takes
//! two passes over the channels (as `preserve` does). The first ([`Assignments::stage`])
//! appends each channel's identity to a temporary table of the same connection (SQLite's
//! temporary store, on disk). Between the passes one statement ([`Assignments::prepare`])
//! numbers the duplicates (`#2`, `#3`, ...) and looks up the numbers the identities hold, both
//! through SQLite's external sorter, so the lookups walk the stored table in key order; its
//! answer lands in another temporary table in output order. The second pass reads it back a
//! batch at a time ([`Assignments::next_held`]) and appends the numbers given
//! ([`Assignments::record`]). Only after the outputs are committed does
//! [`Assignments::commit`] write them to `channel_numbers`, in key order. A dry run or a failed
//! build never commits, so the database is unchanged. What stays in memory is SQLite's page
//! cache and sorter buffer (accounted against the budget) and one batch of answers.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow};
use rusqlite::{Connection, params};

use crate::config::Numbering;
use crate::model::{Channel, Field};

/// The default `numbering.key`.
pub const DEFAULT_KEY: &[&str] = &["tvg_id", "channel_name+group_title"];

/// Parse `numbering.key` (entries of `+`-joined field names).
pub fn parse_key(numbering: &Numbering) -> Result<Vec<Vec<Field>>, String> {
    let entries = match &numbering.key {
        Some(key) => key.entries(),
        None => DEFAULT_KEY.iter().map(|s| s.to_string()).collect(),
    };
    if entries.is_empty() {
        return Err("numbering.key is empty: name at least one field".into());
    }
    entries
        .iter()
        .map(|entry| {
            entry
                .split('+')
                .map(|f| Field::parse(f.trim()).map_err(|e| format!("numbering.key: {e}")))
                .collect()
        })
        .collect()
}

/// A channel's identity under `key` (see the module doc).
pub fn identity(key: &[Vec<Field>], ch: &Channel) -> String {
    let chosen = key
        .iter()
        .find(|entry| entry.iter().any(|f| !ch.get(f).trim().is_empty()))
        .or(key.last());
    let Some(entry) = chosen else {
        return String::new();
    };
    entry
        .iter()
        .map(|f| format!("{}={}", f.name(), normalise(ch.get(f))))
        .collect::<Vec<_>>()
        .join(", ")
}

fn normalise(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// What sticky numbering did in one build (the report's `proxies[].sticky_numbers`).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct StickyStats {
    /// Channels that got the number their identity held.
    pub kept: u64,
    /// Channels whose identity held no number (new, expired or forgotten).
    pub new: u64,
    /// Identities forgotten because they were not seen within `forget_after`.
    pub forgotten: u64,
}

/// Run `f` on `conn`, interrupting it if `cancel` is set meanwhile: a watcher thread repeats
/// the interrupt every 50 ms until `f` returns (an interrupt sent before a statement starts
/// is lost).
fn interruptible<T>(
    conn: &Connection,
    cancel: Option<&AtomicBool>,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let Some(cancel) = cancel else {
        return f(conn);
    };
    let done = AtomicBool::new(false);
    let handle = conn.get_interrupt_handle();
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if crate::cancel::requested(cancel) {
                    handle.interrupt();
                }
                std::thread::park_timeout(std::time::Duration::from_millis(50));
            }
        });
        let result = f(conn);
        done.store(true, Ordering::Relaxed);
        watcher.thread().unpark();
        result
    })
}

/// One proxy's stored assignments and this build's.
pub struct Assignments {
    conn: Connection,
    proxy: String,
    key: Vec<Vec<Field>>,
    now: i64,
    /// Stored assignments last seen before this are forgotten.
    cutoff: i64,
    /// Channels seen by the first pass.
    staged: u64,
    /// Channels numbered by the second pass.
    numbered: u64,
    prepared: bool,
    /// The held numbers of the next channels of the second pass (one batch).
    ahead: std::collections::VecDeque<Option<u64>>,
    /// Rows written since the last [`Assignments::flush`].
    pending: u64,
    /// SQLite's page cache for the database and for the temporary tables, each, in bytes.
    cache_bytes: u64,
    /// Ctrl-C or SIGTERM: interrupts the one long statement, between the passes.
    cancel: Option<Arc<AtomicBool>>,
    pub stats: StickyStats,
}

/// Rows per temporary-table transaction, and answers per batch of the second pass.
const BATCH: u64 = 8192;

impl Assignments {
    /// Open the database, and pass every number held for `proxy` (seen within
    /// `forget_after`) to `held`. `cache_bytes` is the page cache the database and the
    /// temporary tables may use, each.
    pub fn open(
        db: &Path,
        proxy: &str,
        numbering: &Numbering,
        now: i64,
        cache_bytes: u64,
        cancel: Option<Arc<AtomicBool>>,
        mut held: impl FnMut(u64),
    ) -> Result<Assignments> {
        let key = parse_key(numbering).map_err(|e| anyhow!(e))?;
        let conn = Connection::open(db)
            .with_context(|| format!("cannot open database {}", db.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch(&format!(
            "PRAGMA temp_store = FILE;
             PRAGMA main.cache_size = -{0};
             PRAGMA temp.cache_size = -{0};
             CREATE TEMP TABLE staged (seq INTEGER PRIMARY KEY, base TEXT NOT NULL);
             CREATE TEMP TABLE resolved (
                 seq INTEGER PRIMARY KEY, identity TEXT NOT NULL, held INTEGER);
             CREATE TEMP TABLE given (seq INTEGER PRIMARY KEY, number INTEGER NOT NULL);",
            (cache_bytes / 1024).max(64)
        ))
        .context("cannot prepare sticky numbering")?;
        let cutoff = now.saturating_sub(numbering.forget_after().as_secs() as i64);
        {
            let mut stmt = conn.prepare(
                "SELECT number FROM main.channel_numbers WHERE proxy = ?1 AND last_seen >= ?2",
            )?;
            let mut rows = stmt.query(params![proxy, cutoff])?;
            while let Some(row) = rows.next().context("cannot read channel numbers")? {
                held(row.get::<_, i64>(0)?.max(0) as u64);
            }
        }
        conn.execute_batch("BEGIN")?;
        Ok(Assignments {
            conn,
            proxy: proxy.to_string(),
            key,
            now,
            cutoff,
            staged: 0,
            numbered: 0,
            prepared: false,
            ahead: Default::default(),
            pending: 0,
            cache_bytes,
            cancel,
            stats: StickyStats::default(),
        })
    }

    /// Memory SQLite may use for this build's assignments: the page caches of the database
    /// and of the temporary tables, and the sorter's buffer (sized like the first).
    pub fn memory_bytes(&self) -> u64 {
        3 * self.cache_bytes
    }

    /// First pass: the next channel in output order.
    pub fn stage(&mut self, ch: &Channel) -> Result<()> {
        if self.prepared {
            return Err(anyhow!(
                "sticky numbering: a channel came after the first pass"
            ));
        }
        self.conn
            .prepare_cached("INSERT INTO temp.staged (seq, base) VALUES (?1, ?2)")?
            .execute(params![self.staged as i64, identity(&self.key, ch)])
            .context("cannot stage a channel identity")?;
        self.staged += 1;
        self.wrote()
    }

    /// Between the passes: name duplicates (`identity #2`, ...) in output order and look up
    /// the number each identity holds.
    fn prepare(&mut self) -> Result<()> {
        self.flush()?;
        // The statement takes seconds on millions of channels: it is interrupted when the build
        // is cancelled.
        let cancel = self.cancel.as_deref();
        if cancel.is_some_and(crate::cancel::requested) {
            return Err(anyhow!("interrupted"));
        }
        interruptible(&self.conn, cancel, |conn| {
            Self::resolve(conn, &self.proxy, self.cutoff)
        })
        .context("cannot read channel numbers")?;
        self.conn
            .execute_batch("DROP TABLE temp.staged; COMMIT; BEGIN")?;
        self.prepared = true;
        Ok(())
    }

    /// The statement of [`Assignments::prepare`].
    fn resolve(conn: &Connection, proxy: &str, cutoff: i64) -> rusqlite::Result<usize> {
        conn.execute(
            "INSERT INTO temp.resolved (seq, identity, held)
                 SELECT w.seq, w.identity, c.number
                 FROM (SELECT seq,
                              CASE WHEN k > 1 THEN base || ' #' || k
                                   WHEN rtrim(base, '0123456789') <> base
                                        AND rtrim(base, '0123456789') GLOB '* #'
                                   THEN base || ' #1'
                                   ELSE base END AS identity
                       FROM (SELECT seq, base,
                                    row_number() OVER (PARTITION BY base ORDER BY seq) AS k
                             FROM temp.staged)) AS w
                 LEFT JOIN main.channel_numbers AS c
                     ON c.proxy = ?1 AND c.identity = w.identity AND c.last_seen >= ?2
                 ORDER BY w.seq",
            params![proxy, cutoff],
        )
    }

    /// Second pass: the number the next channel's identity holds, if any.
    pub fn next_held(&mut self) -> Result<Option<u64>> {
        if !self.prepared {
            self.prepare()?;
        }
        if self.ahead.is_empty() {
            let mut stmt = self.conn.prepare_cached(
                "SELECT held FROM temp.resolved WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![self.numbered as i64, BATCH as i64], |r| {
                    r.get::<_, Option<i64>>(0)
                })
                .context("cannot read channel numbers")?;
            for held in rows {
                let held = held.context("cannot read channel numbers")?;
                self.ahead.push_back(held.map(|n| n.max(0) as u64));
            }
        }
        self.ahead.pop_front().ok_or_else(|| {
            anyhow!(
                "sticky numbering: the second pass saw more channels than the first ({})",
                self.staged
            )
        })
    }

    /// Second pass: the number the channel of the last [`Assignments::next_held`] got.
    pub fn record(&mut self, number: u64) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO temp.given (seq, number) VALUES (?1, ?2)")?
            .execute(params![self.numbered as i64, number as i64])
            .context("cannot stage a channel number")?;
        self.numbered += 1;
        self.wrote()
    }

    fn wrote(&mut self) -> Result<()> {
        self.pending += 1;
        if self.pending >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// End the current batch of the temporary tables.
    fn flush(&mut self) -> Result<()> {
        self.conn.execute_batch("COMMIT; BEGIN")?;
        self.pending = 0;
        Ok(())
    }

    /// Write this build's assignments (the outputs are committed; so this is not interrupted
    /// by a cancel, which would leave the published numbers unsaved): every identity seen now
    /// gets `last_seen` = now (and `first_seen` when new, expired or renumbered); identities
    /// not seen within `forget_after` are forgotten.
    pub fn commit(mut self) -> Result<StickyStats> {
        if !self.prepared {
            self.prepare()?;
        }
        if self.numbered != self.staged {
            return Err(anyhow!(
                "sticky numbering: {} channels numbered but {} staged",
                self.numbered,
                self.staged
            ));
        }
        let Assignments {
            mut conn,
            proxy,
            now,
            cutoff,
            mut stats,
            ..
        } = self;
        conn.execute_batch("COMMIT")?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .context("cannot write channel numbers")?;
        // In key order, so that the writes walk the table instead of jumping about it.
        tx.execute(
            "INSERT INTO main.channel_numbers (proxy, identity, number, first_seen, last_seen)
             SELECT ?1, r.identity, g.number, ?2, ?2
             FROM temp.resolved AS r JOIN temp.given AS g ON g.seq = r.seq
             WHERE true ORDER BY r.identity
             ON CONFLICT (proxy, identity) DO UPDATE SET
                 number = excluded.number,
                 first_seen = CASE WHEN channel_numbers.last_seen < ?3
                     OR channel_numbers.number <> excluded.number
                     THEN excluded.first_seen ELSE channel_numbers.first_seen END,
                 last_seen = excluded.last_seen",
            params![proxy, now, cutoff],
        )
        .context("cannot write channel numbers")?;
        let forgotten = tx
            .execute(
                "DELETE FROM main.channel_numbers WHERE proxy = ?1 AND last_seen < ?2",
                params![proxy, cutoff],
            )
            .context("cannot write channel numbers")?;
        tx.commit().context("cannot write channel numbers")?;
        stats.forgotten = forgotten as u64;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests;

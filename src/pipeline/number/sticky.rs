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
        // The statement takes seconds on millions of channels: a watcher interrupts it when the
        // build is cancelled (an interrupt sent before the statement starts is lost, so the
        // watcher repeats it until the statement ends).
        let done = AtomicBool::new(false);
        let handle = self.conn.get_interrupt_handle();
        let cancel = self.cancel.clone();
        let conn = &self.conn;
        let (proxy, cutoff) = (&self.proxy, self.cutoff);
        let resolved = std::thread::scope(|scope| {
            if let Some(cancel) = cancel.as_deref() {
                let done = &done;
                scope.spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        if crate::cancel::requested(cancel) {
                            handle.interrupt();
                        }
                        std::thread::park_timeout(std::time::Duration::from_millis(50));
                    }
                });
            }
            let resolved = Self::resolve(conn, proxy, cutoff);
            done.store(true, Ordering::Relaxed);
            resolved
        });
        resolved.context("cannot read channel numbers")?;
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
mod tests {
    use super::*;
    use crate::config::NumberingMode;

    fn numbering(key: Option<crate::config::NumberingKey>) -> Numbering {
        Numbering {
            start: 1,
            mode: NumberingMode::Sticky,
            groups: Default::default(),
            key,
            prefer_own: None,
            forget_after: None,
        }
    }

    fn ch(id: &str, name: &str, group: &str) -> Channel {
        let mut c = Channel {
            name: name.into(),
            ..Default::default()
        };
        c.set_attr("tvg-id", id);
        c.set_attr("group-title", group);
        c
    }

    #[test]
    fn identities() {
        let key = parse_key(&numbering(None)).unwrap();
        assert_eq!(identity(&key, &ch("BBC.uk", "x", "y")), "tvg_id=bbc.uk");
        assert_eq!(
            identity(&key, &ch(" ", "  BBC   One ", "UK")),
            "channel_name=bbc one, group_title=uk"
        );
        assert_eq!(
            identity(&key, &ch("", "", "")),
            "channel_name=, group_title="
        );
        let one = numbering(Some(crate::config::NumberingKey::One("tvg_name".into())));
        assert_eq!(
            identity(&parse_key(&one).unwrap(), &ch("a", "b", "c")),
            "tvg_name="
        );
        let bad = numbering(Some(crate::config::NumberingKey::List(vec![])));
        assert!(parse_key(&bad).is_err());
    }

    fn open(db: &Path, n: &Numbering, now: i64) -> (Assignments, Vec<u64>) {
        let mut held = Vec::new();
        let a = Assignments::open(db, "p", n, now, 1 << 20, None, |n| held.push(n)).unwrap();
        held.sort();
        (a, held)
    }

    /// Ctrl-C or SIGTERM interrupts the statement between the passes, and nothing is saved.
    #[test]
    fn cancel_interrupts_between_the_passes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let store = crate::store::Store::open(&db).unwrap();
        let cancel = Arc::new(AtomicBool::new(false));
        let n = numbering(None);
        let mut a =
            Assignments::open(&db, "p", &n, 1000, 1 << 20, Some(cancel.clone()), |_| {}).unwrap();
        for i in 0..1000 {
            a.stage(&ch(&format!("c{i}"), "", "")).unwrap();
        }
        cancel.store(true, Ordering::Relaxed);
        let err = format!("{:#}", a.next_held().unwrap_err());
        assert!(err.contains("interrupted"), "{err}");
        drop(a);
        assert!(
            crate::store::numbers::list(&store.conn, "p")
                .unwrap()
                .is_empty()
        );
    }

    /// An identity that looks like another's second keeps apart from it.
    #[test]
    fn suffixes_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let store = crate::store::Store::open(&db).unwrap();
        let n = numbering(Some(crate::config::NumberingKey::One(
            "channel_name".into(),
        )));
        let (mut a, _) = open(&db, &n, 1000);
        let names = ["Sky", "Sky", "Sky #2", "Sky #2", "Sky #", "Sky #x1"];
        for name in names {
            a.stage(&ch("", name, "")).unwrap();
        }
        for number in 1..=names.len() as u64 {
            a.next_held().unwrap();
            a.record(number).unwrap();
        }
        a.commit().unwrap();
        let got: Vec<(String, u64)> = crate::store::numbers::list(&store.conn, "p")
            .unwrap()
            .into_iter()
            .map(|a| (a.identity, a.number))
            .collect();
        let want = [
            "channel_name=sky",
            "channel_name=sky #2",
            "channel_name=sky #2 #1",
            "channel_name=sky #2 #2",
            "channel_name=sky #",
            "channel_name=sky #x1",
        ];
        let want: Vec<(String, u64)> = want
            .iter()
            .zip(1..)
            .map(|(id, n)| (id.to_string(), n))
            .collect();
        assert_eq!(got, want);
    }

    /// Channels sharing an identity in one build are told apart by their order, and only a
    /// commit writes anything.
    #[test]
    fn duplicates_and_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        drop(crate::store::Store::open(&db).unwrap());
        let n = numbering(None);
        let store = crate::store::Store::open(&db).unwrap();
        let list = || crate::store::numbers::list(&store.conn, "p").unwrap();

        // Numbered, not committed: nothing written.
        let (mut a, held) = open(&db, &n, 1000);
        assert!(held.is_empty());
        let (x, y) = (ch("x", "X", "G"), ch("", "Y", "G"));
        for c in [&x, &y, &x] {
            a.stage(c).unwrap();
        }
        for number in [1, 2, 3] {
            assert_eq!(a.next_held().unwrap(), None);
            a.record(number).unwrap();
        }
        drop(a);
        assert!(list().is_empty());

        // Committed: the second `x` is `x #2`.
        let (mut a, _) = open(&db, &n, 1000);
        for c in [&x, &y, &x] {
            a.stage(c).unwrap();
        }
        for number in [5, 6, 7] {
            a.next_held().unwrap();
            a.record(number).unwrap();
        }
        assert!(a.next_held().is_err(), "more channels than staged");
        assert_eq!(a.commit().unwrap().forgotten, 0);
        let got: Vec<(String, u64)> = list().into_iter().map(|a| (a.identity, a.number)).collect();
        assert_eq!(
            got,
            [
                ("tvg_id=x".into(), 5),
                ("channel_name=y, group_title=g".into(), 6),
                ("tvg_id=x #2".into(), 7)
            ]
        );
        assert_eq!((list()[2].first_seen, list()[2].last_seen), (1000, 1000));

        // The next build sees them held, in its own order of duplicates.
        let (mut a, held) = open(&db, &n, 2000);
        assert_eq!(held, [5, 6, 7]);
        for c in [&x, &x] {
            a.stage(c).unwrap();
        }
        assert_eq!(a.next_held().unwrap(), Some(5));
        a.record(5).unwrap();
        assert_eq!(a.next_held().unwrap(), Some(7));
        a.record(7).unwrap();
        a.commit().unwrap();
        assert_eq!(list()[0].last_seen, 2000);
        assert_eq!(list()[1].last_seen, 1000, "y was not seen");

        // Past forget_after (30 days), `y` is forgotten; an empty build commits too.
        let (a, held) = open(&db, &n, 1500 + 30 * 86_400);
        assert_eq!(held, [5, 7]);
        assert_eq!(a.commit().unwrap().forgotten, 1);
    }
}

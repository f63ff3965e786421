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
//! first in output order is `identity`, the next `identity #2`, and so on.
//!
//! During the build, the stored assignments are read with point lookups (no map of them in
//! memory); this build's assignments go to a temporary table of the same connection (SQLite's
//! temporary store, on disk), and are copied into `channel_numbers` by [`Assignments::commit`]
//! only after the outputs are committed. A dry run or a failed build never commits, so the
//! database is unchanged.

use std::path::Path;

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
    /// Rows recorded since the last [`Assignments::flush`].
    pending: u64,
    pub recorded: u64,
    pub stats: StickyStats,
}

impl Assignments {
    /// Open the database and return the numbers held for `proxy` (seen within
    /// `forget_after`).
    pub fn open(
        db: &Path,
        proxy: &str,
        numbering: &Numbering,
        now: i64,
    ) -> Result<(Assignments, Vec<u64>)> {
        let key = parse_key(numbering).map_err(|e| anyhow!(e))?;
        let conn = Connection::open(db)
            .with_context(|| format!("cannot open database {}", db.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch(
            "PRAGMA temp_store = FILE;
             CREATE TEMP TABLE assigned (identity TEXT PRIMARY KEY, number INTEGER NOT NULL)
                 WITHOUT ROWID;",
        )
        .context("cannot prepare sticky numbering")?;
        let cutoff = now.saturating_sub(numbering.forget_after().as_secs() as i64);
        let held = {
            let mut stmt = conn.prepare(
                "SELECT number FROM main.channel_numbers WHERE proxy = ?1 AND last_seen >= ?2",
            )?;
            stmt.query_map(params![proxy, cutoff], |r| r.get::<_, i64>(0))?
                .map(|n| n.map(|n| n.max(0) as u64))
                .collect::<rusqlite::Result<Vec<u64>>>()
                .context("cannot read channel numbers")?
        };
        conn.execute_batch("BEGIN")?;
        Ok((
            Assignments {
                conn,
                proxy: proxy.to_string(),
                key,
                now,
                cutoff,
                pending: 0,
                recorded: 0,
                stats: StickyStats::default(),
            },
            held,
        ))
    }

    /// The channel's identity in this build (suffixed when an earlier channel had it) and the
    /// number it holds, if any.
    pub fn identify(&mut self, ch: &Channel) -> Result<(String, Option<u64>)> {
        let base = identity(&self.key, ch);
        let mut id = base.clone();
        let mut k = 1;
        loop {
            // One statement: whether an earlier channel of this build had the identity, and
            // the number the identity holds.
            let (taken, stored): (bool, Option<i64>) = self
                .conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM temp.assigned WHERE identity = ?1),
                            (SELECT number FROM main.channel_numbers
                             WHERE proxy = ?2 AND identity = ?1 AND last_seen >= ?3)",
                )?
                .query_row(params![id, self.proxy, self.cutoff], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .context("cannot read channel numbers")?;
            if !taken {
                return Ok((id, stored.map(|n| n.max(0) as u64)));
            }
            k += 1;
            id = format!("{base} #{k}");
        }
    }

    /// Remember this build's number for `identity`.
    pub fn record(&mut self, identity: &str, number: u64) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO temp.assigned (identity, number) VALUES (?1, ?2)")?
            .execute(params![identity, number as i64])
            .context("cannot stage a channel number")?;
        self.recorded += 1;
        self.pending += 1;
        if self.pending >= 10_000 {
            self.flush()?;
        }
        Ok(())
    }

    /// End the current batch, so that no read transaction stays open for the whole build.
    fn flush(&mut self) -> Result<()> {
        self.conn.execute_batch("COMMIT; BEGIN")?;
        self.pending = 0;
        Ok(())
    }

    /// Write this build's assignments (the outputs are committed): every identity seen now
    /// gets `last_seen` = now (and `first_seen` when new or expired); identities not seen
    /// within `forget_after` are forgotten.
    pub fn commit(self) -> Result<StickyStats> {
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
        tx.execute(
            "INSERT INTO main.channel_numbers (proxy, identity, number, first_seen, last_seen)
             SELECT ?1, identity, number, ?2, ?2 FROM temp.assigned WHERE true
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

    /// Channels sharing an identity in one build are told apart by their order, and only a
    /// commit writes anything.
    #[test]
    fn duplicates_and_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        drop(crate::store::Store::open(&db).unwrap());
        let n = numbering(None);
        let (mut a, held) = Assignments::open(&db, "p", &n, 1000).unwrap();
        assert!(held.is_empty());
        let c = ch("x", "X", "G");
        let (id1, _) = a.identify(&c).unwrap();
        a.record(&id1, 1).unwrap();
        let (id2, _) = a.identify(&c).unwrap();
        a.record(&id2, 2).unwrap();
        assert_eq!((id1.as_str(), id2.as_str()), ("tvg_id=x", "tvg_id=x #2"));
        drop(a);
        let store = crate::store::Store::open(&db).unwrap();
        assert!(
            crate::store::numbers::list(&store.conn, "p")
                .unwrap()
                .is_empty()
        );

        let (mut a, _) = Assignments::open(&db, "p", &n, 1000).unwrap();
        for (i, _) in [1, 2].iter().enumerate() {
            let (id, stored) = a.identify(&c).unwrap();
            assert_eq!(stored, None);
            a.record(&id, i as u64 + 1).unwrap();
        }
        assert_eq!(a.commit().unwrap().forgotten, 0);
        let (mut a, held) = Assignments::open(&db, "p", &n, 2000).unwrap();
        assert_eq!(held, [1, 2]);
        assert_eq!(a.identify(&c).unwrap(), ("tvg_id=x".into(), Some(1)));
        let list = crate::store::numbers::list(&store.conn, "p").unwrap();
        assert_eq!(list[1].identity, "tvg_id=x #2");
        assert_eq!((list[1].first_seen, list[1].last_seen), (1000, 1000));
    }
}

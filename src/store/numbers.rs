//! Sticky channel numbers (`numbering.mode = "sticky"`): per proxy, the number each channel
//! identity holds, when it was first and last seen. The build reads them through
//! `pipeline::number::sticky` and writes them back only after its outputs are committed;
//! `lineup numbers` lists and forgets them.

use anyhow::{Context, Result};
use rusqlite::{Connection, params};
use serde::Serialize;

/// Migration: the assignments table. Times are UTC epoch seconds (the build's clock, which
/// `$LINEUP_NOW` pins).
pub const SCHEMA: &str = "
    CREATE TABLE channel_numbers (
        proxy      TEXT NOT NULL,
        identity   TEXT NOT NULL,
        number     INTEGER NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        PRIMARY KEY (proxy, identity)
    ) WITHOUT ROWID;
    CREATE INDEX channel_numbers_by_number ON channel_numbers (proxy, number);
";

/// Migration: drop the index by number. Nothing looks numbers up by number, and keeping it
/// made every build's write of millions of assignments (in identity order) pay a random
/// write into it per channel. `lineup numbers` sorts instead.
pub const DROP_BY_NUMBER: &str = "DROP INDEX channel_numbers_by_number;";

/// One held number (`lineup numbers` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assignment {
    pub identity: String,
    pub number: u64,
    /// UTC epoch seconds.
    pub first_seen: i64,
    pub last_seen: i64,
}

/// Every assignment of `proxy`, by number.
pub fn list(conn: &Connection, proxy: &str) -> Result<Vec<Assignment>> {
    let mut stmt = conn
        .prepare(
            "SELECT identity, number, first_seen, last_seen FROM channel_numbers
             WHERE proxy = ?1 ORDER BY number, identity",
        )
        .context("cannot read channel numbers")?;
    let rows = stmt
        .query_map(params![proxy], |r| {
            Ok(Assignment {
                identity: r.get(0)?,
                number: r.get::<_, i64>(1)? as u64,
                first_seen: r.get(2)?,
                last_seen: r.get(3)?,
            })
        })
        .context("cannot read channel numbers")?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .context("cannot read channel numbers")
}

/// An `--if-changed` build that wrote nothing: the outputs in place still show the identities
/// of the last committed build, so they count as seen now (else a provider that does not
/// change for `forget_after` would lose every number). Returns how many were touched.
pub fn touch(conn: &Connection, proxy: &str, now: i64) -> Result<u64> {
    let n = conn
        .execute(
            "UPDATE channel_numbers SET last_seen = ?2
             WHERE proxy = ?1 AND last_seen < ?2 AND last_seen =
                 (SELECT max(last_seen) FROM channel_numbers WHERE proxy = ?1)",
            params![proxy, now],
        )
        .context("cannot update channel numbers")?;
    Ok(n as u64)
}

/// Forget one identity of `proxy`; false when it held no number.
pub fn forget(conn: &Connection, proxy: &str, identity: &str) -> Result<bool> {
    let n = conn
        .execute(
            "DELETE FROM channel_numbers WHERE proxy = ?1 AND identity = ?2",
            params![proxy, identity],
        )
        .context("cannot forget a channel number")?;
    Ok(n > 0)
}

/// Forget every assignment of `proxy`; returns how many there were.
pub fn reset(conn: &Connection, proxy: &str) -> Result<u64> {
    let n = conn
        .execute(
            "DELETE FROM channel_numbers WHERE proxy = ?1",
            params![proxy],
        )
        .context("cannot reset channel numbers")?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database made by the schema before this table existed is carried forward: its data
    /// stays, and the table works.
    #[test]
    fn migrates_an_older_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            super::super::schema::migrate_before(&mut conn, SCHEMA).unwrap();
            conn.execute(
                "INSERT INTO sources (name, kind) VALUES ('alpha', 'm3u')",
                [],
            )
            .unwrap();
            let missing: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'channel_numbers'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(missing, 0);
        }
        let store = crate::store::Store::open(&path).unwrap();
        let name: String = store
            .conn
            .query_row("SELECT name FROM sources", [], |r| r.get(0))
            .unwrap();
        assert_eq!(name, "alpha");
        store
            .conn
            .execute(
                "INSERT INTO channel_numbers VALUES ('home', 'tvg_id=a', 7, 10, 20)",
                [],
            )
            .unwrap();
        assert_eq!(
            list(&store.conn, "home").unwrap(),
            [Assignment {
                identity: "tvg_id=a".into(),
                number: 7,
                first_seen: 10,
                last_seen: 20
            }]
        );
        assert!(forget(&store.conn, "home", "tvg_id=a").unwrap());
        assert_eq!(index_count(&store.conn), 0);
        assert!(!forget(&store.conn, "home", "tvg_id=a").unwrap());
        assert_eq!(reset(&store.conn, "home").unwrap(), 0);
    }

    fn index_count(conn: &Connection) -> i64 {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'channel_numbers_by_number'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// A database with numbers and the old index by number: the index goes, the numbers stay.
    #[test]
    fn drops_the_index_by_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            super::super::schema::migrate_before(&mut conn, DROP_BY_NUMBER).unwrap();
            conn.execute(
                "INSERT INTO channel_numbers VALUES ('home', 'tvg_id=b', 9, 10, 20),
                                                   ('home', 'tvg_id=a', 7, 10, 20)",
                [],
            )
            .unwrap();
            assert_eq!(index_count(&conn), 1);
        }
        let store = crate::store::Store::open(&path).unwrap();
        assert_eq!(index_count(&store.conn), 0);
        let numbers: Vec<u64> = list(&store.conn, "home")
            .unwrap()
            .iter()
            .map(|a| a.number)
            .collect();
        assert_eq!(numbers, [7, 9]);
    }
}

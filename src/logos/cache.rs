//! The logo cache in the database: for every logo URL fetched before, the file it was stored
//! as (a content hash, see `fetch.rs`) and the validators to ask "has it changed?" with. The
//! files themselves live in the proxy's `logos.dir`; a row whose file is gone there is fetched
//! again unconditionally. The `logos` table is created by migration 4 in `store/schema.rs`.

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::fetch::Validators;

/// What the cache knows of one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// File name inside `logos.dir` (never a path).
    pub file: String,
    pub validators: Validators,
}

/// The cached entry of `url`, if any.
pub fn lookup(conn: &Connection, url: &str) -> Result<Option<Known>> {
    let mut stmt =
        conn.prepare_cached("SELECT file, etag, last_modified FROM logos WHERE url = ?1")?;
    stmt.query_row(params![url], |r| {
        Ok(Known {
            file: r.get(0)?,
            validators: Validators {
                etag: r.get(1)?,
                last_modified: r.get(2)?,
            },
        })
    })
    .optional()
    .context("cannot read the logo cache")
}

/// What one run learnt about one URL, to be written back.
pub enum Update<'a> {
    /// A new body arrived (or the same one again without validators): remember its file and
    /// validators.
    Stored {
        url: &'a str,
        file: &'a str,
        validators: &'a Validators,
    },
    /// `304 Not Modified`: only the time of the check changes.
    Checked { url: &'a str },
}

/// Write a run's updates in one transaction.
pub fn record<'a>(
    conn: &mut Connection,
    updates: impl IntoIterator<Item = Update<'a>>,
) -> Result<()> {
    let now = crate::store::now_ms();
    let tx = conn.transaction().context("cannot write the logo cache")?;
    {
        let mut store = tx.prepare_cached(
            "INSERT INTO logos (url, file, etag, last_modified, fetched_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(url) DO UPDATE SET file = excluded.file, etag = excluded.etag,
                 last_modified = excluded.last_modified, fetched_at = excluded.fetched_at",
        )?;
        let mut touch = tx.prepare_cached("UPDATE logos SET fetched_at = ?2 WHERE url = ?1")?;
        for update in updates {
            match update {
                Update::Stored {
                    url,
                    file,
                    validators,
                } => store.execute(params![
                    url,
                    file,
                    validators.etag,
                    validators.last_modified,
                    now
                ])?,
                Update::Checked { url } => touch.execute(params![url, now])?,
            };
        }
    }
    tx.commit().context("cannot write the logo cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_then_check_then_replace() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::Store::open(&dir.path().join("db.sqlite")).unwrap();
        let conn = &mut store.conn;
        assert_eq!(lookup(conn, "http://a/x.png").unwrap(), None);
        let v = Validators {
            etag: Some("\"1\"".into()),
            last_modified: None,
        };
        let url = "http://a/x.png";
        record(
            conn,
            [Update::Stored {
                url,
                file: "ab.png",
                validators: &v,
            }],
        )
        .unwrap();
        record(conn, [Update::Checked { url }]).unwrap();
        assert_eq!(
            lookup(conn, url).unwrap(),
            Some(Known {
                file: "ab.png".into(),
                validators: v.clone()
            })
        );
        let none = Validators::default();
        record(
            conn,
            [Update::Stored {
                url,
                file: "cd.svg",
                validators: &none,
            }],
        )
        .unwrap();
        let known = lookup(conn, url).unwrap().unwrap();
        assert_eq!(known.file, "cd.svg");
        assert!(known.validators.is_empty());
    }
}

//! `lineup numbers [CONFIG] PROXY [--json] [--forget IDENTITY] [--reset]`: the sticky channel
//! numbers a proxy holds (identity, number, first and last seen), and ways to let go of them.
//!
//! Listing only reads: it takes no lock and never creates the database (with none yet, the
//! list is empty and a note on stderr says so). `--forget` and `--reset` change the database,
//! so they take the build lock (exit 5 while a build runs); the next build gives a forgotten
//! identity a number as if it were new.

use anyhow::anyhow;
use serde::Serialize;

use crate::cli::NumbersArgs;
use crate::exit::{Exit, Failure};
use crate::report::rfc3339;
use crate::store::Store;
use crate::store::numbers::{self, Assignment};

/// One element of the JSON array.
#[derive(Debug, Serialize)]
struct Row {
    identity: String,
    number: u64,
    first_seen: String,
    last_seen: String,
}

pub fn run(args: &NumbersArgs) -> Result<Exit, Failure> {
    let proxy = &args.proxy;
    let config = super::load_config(args.config.config.as_deref())?;
    let def = super::find_proxy(&config, proxy)?;
    if !def
        .numbering
        .as_ref()
        .is_some_and(|n| n.mode == crate::config::NumberingMode::Sticky)
    {
        crate::info!("proxy {proxy} does not use numbering.mode = \"sticky\" (now)");
    }
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| config.resolve(&config.file.settings.database));
    let changing = args.reset || args.forget.is_some();
    // Checked before opening: `Store::open` would create an empty database.
    if !db.exists() {
        if changing {
            crate::info!("no database yet at {}: nothing to forget", db.display());
        } else {
            crate::info!(
                "no database yet at {}: no numbers until `lineup build` runs",
                db.display()
            );
            print(&[], args.json)?;
        }
        return Ok(Exit::Success);
    }
    if changing {
        let _lock = crate::lock::BuildLock::acquire(&db, None)?;
        let store = Store::open(&db)?;
        if args.reset {
            let n = numbers::reset(&store.conn, proxy)?;
            crate::info!("proxy {proxy}: forgot {n} channel numbers; the next build renumbers");
        }
        if let Some(identity) = &args.forget {
            if numbers::forget(&store.conn, proxy, identity)? {
                crate::info!("proxy {proxy}: forgot the number of `{identity}`");
            } else if !args.reset {
                return Err(Failure::new(
                    Exit::Usage,
                    anyhow!(
                        "proxy {proxy} holds no number for `{identity}` (see `lineup numbers {proxy}`)"
                    ),
                ));
            }
        }
        return Ok(Exit::Success);
    }
    let store = Store::open(&db)?;
    let list = numbers::list(&store.conn, proxy)?;
    print(&list, args.json)?;
    Ok(Exit::Success)
}

fn print(list: &[Assignment], json: bool) -> Result<(), Failure> {
    let rows: Vec<Row> = list
        .iter()
        .map(|a| Row {
            identity: a.identity.clone(),
            number: a.number,
            first_seen: rfc3339(a.first_seen.saturating_mul(1000)),
            last_seen: rfc3339(a.last_seen.saturating_mul(1000)),
        })
        .collect();
    super::table::print(json, &rows, |rows| table(rows))?;
    Ok(())
}

/// Number, first seen, last seen, identity (last: it is the long one).
fn table(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|r| r.number.to_string().len())
        .max()
        .unwrap_or(0)
        .max("NUMBER".len());
    let mut out = format!(
        "{:<width$}  {:<20}  {:<20}  IDENTITY\n",
        "NUMBER", "FIRST SEEN", "LAST SEEN"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<width$}  {:<20}  {:<20}  {}\n",
            r.number,
            short(&r.first_seen),
            short(&r.last_seen),
            r.identity
        ));
    }
    out
}

/// `2026-01-02T03:04:05.000Z` -> `2026-01-02T03:04:05Z`.
fn short(t: &str) -> String {
    match t.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => t.to_string(),
    }
}

//! `lineup streams [CONFIG] [--proxy NAME] [--dead] [--json]`: the probed streams with their
//! status, the reason of the last probe and when it ran; an aligned table, or a JSON array for
//! scripts. Credentials in URLs are masked. It only reads (a read-only connection, no lock),
//! and it never creates a database (with none yet it prints nothing and says so on stderr).

use anyhow::Context;

use crate::cli::StreamsArgs;
use crate::exit::{Exit, Failure};
use crate::probe::store::{StreamRow, rows};
use crate::store::Store;

pub fn run(args: &StreamsArgs) -> Result<Exit, Failure> {
    let config = super::load_config(args.config.config.as_deref())?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| config.resolve(&config.file.settings.database));
    let rows = if db.exists() {
        // Read-only: a database of an older lineup, without probe results, reads as empty.
        let conn = Store::open_reader(&db)?;
        let probed = conn
            .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'streams'")
            .and_then(|mut s| s.exists([]))
            .with_context(|| format!("cannot read database {}", db.display()))?;
        if probed {
            rows(&conn, args.proxy.as_deref(), args.dead)
                .context("cannot read the stream probe results")?
        } else {
            Vec::new()
        }
    } else {
        crate::info!(
            "no database yet at {}: no stream was probed (`probe = true`, then `lineup build` or `lineup probe`)",
            db.display()
        );
        Vec::new()
    };
    super::table::print(args.json, &rows, |rows| table(rows))?;
    Ok(Exit::Success)
}

fn table(rows: &[StreamRow]) -> String {
    const HEAD: [&str; 7] = [
        "STATUS", "FAILS", "HTTP", "LATENCY", "CHECKED", "URL", "REASON",
    ];
    let dash = || "-".to_string();
    let short = super::table::short_time;
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.status.clone().unwrap_or_else(|| "not probed".into()),
                r.failures.to_string(),
                r.http_status.map_or_else(dash, |s| s.to_string()),
                r.latency_ms.map_or_else(dash, |l| format!("{l}ms")),
                r.checked_at.as_deref().map_or_else(dash, short),
                r.url.clone(),
                r.reason.clone().unwrap_or_else(dash),
            ]
        })
        .collect();
    super::table::render(HEAD, &cells)
}

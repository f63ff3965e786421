//! The SQLite database (`settings.database`): the last good copy of every source's data, fetch
//! and health history, and run history. One writer connection, owned by the thread that builds;
//! the pipeline's loaders open read-only connections of their own (WAL lets them read while the
//! writer writes). Schema changes are migrations keyed on `PRAGMA user_version`.

pub mod channels;
pub mod guide;
mod guide_ingest;
pub mod health;
pub mod listing;
pub(crate) mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};

pub use channels::{ChannelPage, IngestSummary, SourceRecord};

pub struct Store {
    pub conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create database directory {}", dir.display()))?;
        }
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        configure(&conn)
            .with_context(|| format!("cannot configure database {}", path.display()))?;
        schema::migrate(&mut conn)
            .with_context(|| format!("cannot migrate database {}", path.display()))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// A read-only connection to the same database, for a loader thread.
    pub fn open_reader(path: &Path) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        stable_plans(&conn)?;
        Ok(conn)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Keep a prepared statement's query plan whatever values are bound. The bundled SQLite is
/// built with STAT4, which otherwise re-prepares (parses and plans again) a cached statement on
/// every new binding: the loaders and the guide writer run one query per page or channel.
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    stable_plans(conn)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Milliseconds since the Unix epoch, as stored.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

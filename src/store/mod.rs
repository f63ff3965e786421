//! The SQLite database (`settings.database`): the last good copy of every source's data, fetch
//! and health history, and run history. One writer connection, owned by the thread that builds;
//! the pipeline's loaders open read-only connections of their own (WAL lets them read while the
//! writer writes). Schema changes are migrations keyed on `PRAGMA user_version`.

pub mod builds;
pub mod channels;
pub mod file;
pub mod guide;
mod guide_ingest;
mod guide_migrate;
pub mod health;
pub mod listing;
pub mod numbers;
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
        file::create_private(path)
            .with_context(|| format!("cannot create database {}", path.display()))?;
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

    /// [`Store::open`] for a build, which holds the lock: a file SQLite cannot read as a
    /// database, or reports corrupt, is renamed aside with a warning and a fresh database
    /// created. The second value is where the bad file went (the build is then degraded: no
    /// cached copy exists).
    pub fn open_for_build(path: &Path) -> Result<(Store, Option<PathBuf>)> {
        match Store::open(path) {
            Ok(store) => Ok((store, None)),
            Err(e) if file::is_corrupt(&e) => {
                let aside = file::set_aside(path)
                    .with_context(|| format!("{e:#}; and cannot rename it aside to start over"))?;
                crate::warn!(
                    "{e:#}: renamed it to {} and started a new database (the cached copies of the sources are gone)",
                    aside.display()
                );
                Ok((Store::open(path)?, Some(aside)))
            }
            Err(e) => Err(e),
        }
    }

    /// The database opened read-only, not migrated: for commands that only look (`lineup
    /// sources`), which then work where the database or its directory is not writable. A
    /// database an older lineup wrote is migrated first, which needs write access once.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let ctx = || format!("cannot read database {}", path.display());
        let conn = Store::open_reader(path)?;
        let conn = match schema::is_current(&conn) {
            Ok(true) => conn,
            Ok(false) => {
                drop(conn);
                Store::open(path)?;
                return Store::open_read_only(path);
            }
            // WAL needs a `-shm` file beside the database; where this user cannot create one,
            // read the file as it is (what the last build left, checkpointed on close).
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly) => {
                drop(conn);
                let conn = immutable(path).with_context(ctx)?;
                if !schema::is_current(&conn).with_context(ctx)? {
                    anyhow::bail!(
                        "database {} was written by an older lineup; run `lineup build` once to upgrade it",
                        path.display()
                    );
                }
                conn
            }
            Err(e) => return Err(anyhow::Error::new(e).context(ctx())),
        };
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

/// `path` opened read-only as an immutable file: no locks, no `-shm`.
fn immutable(path: &Path) -> rusqlite::Result<Connection> {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
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

//! Migrations, applied in order; `PRAGMA user_version` records how many ran. Append only: a
//! released migration is never edited, so every database can be brought forward.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: sources and their channels, run history.
    "
    CREATE TABLE sources (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        kind          TEXT NOT NULL,
        active        INTEGER NOT NULL DEFAULT 1,
        items         INTEGER,
        bytes         INTEGER,
        content_sha256 TEXT,
        updated_at    INTEGER
    );
    CREATE TABLE channels (
        source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        pos       INTEGER NOT NULL,
        data      BLOB NOT NULL,
        PRIMARY KEY (source_id, pos)
    ) WITHOUT ROWID;
    CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        started_at  INTEGER NOT NULL,
        duration_ms INTEGER,
        exit_code   INTEGER,
        config_sha256 TEXT,
        summary     TEXT
    );
    ",
    // 2: fetch history and per-source health (store/health.rs).
    super::health::SCHEMA,
    // 3: guides (store/guide.rs).
    super::guide::SCHEMA,
    // 4: the logo cache (read and written by logos/cache.rs).
    LOGOS,
    // 5: what each proxy's outputs were last built from (store/builds.rs).
    super::builds::SCHEMA,
    // 6: stream probe results (probe/store.rs).
    crate::probe::store::SCHEMA,
    // 7: sticky channel numbers (store/numbers.rs).
    super::numbers::SCHEMA,
    // 8: guides: one listing per channel instead of one row per programme (store/guide.rs).
    super::guide::LISTINGS_SCHEMA,
    // 9: sticky numbers without the index by number (store/numbers.rs).
    super::numbers::DROP_BY_NUMBER,
];

/// Whether every migration has run (a read-only reader can use the database as it is).
pub fn is_current(conn: &Connection) -> rusqlite::Result<bool> {
    let done: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    Ok(done.max(0) as usize >= MIGRATIONS.len())
}
/// Migration 4: the logo cache, URL -> cached file and validators. Its SQL lives here, not in
/// `logos/cache.rs` that uses the table, so that the store depends on nothing above it.
const LOGOS: &str = "
    CREATE TABLE logos (
        url           TEXT PRIMARY KEY,
        file          TEXT NOT NULL,
        etag          TEXT,
        last_modified TEXT,
        fetched_at    INTEGER NOT NULL
    ) WITHOUT ROWID;
";

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    migrate_to(conn, MIGRATIONS.len())
}

/// Every migration, in order (tests find theirs to build the database before it).
#[cfg(test)]
#[allow(dead_code)]
pub fn migrations() -> &'static [&'static str] {
    MIGRATIONS
}

/// How many migrations this build knows.
#[cfg(test)]
pub fn count() -> usize {
    MIGRATIONS.len()
}

/// Apply the migrations up to the `target`-th (tests use it to build an older database).
pub fn migrate_to(conn: &mut Connection, target: usize) -> rusqlite::Result<()> {
    let done: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let done = done.max(0) as usize;
    if done > MIGRATIONS.len() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "database schema version {done} is newer than this lineup knows ({}); upgrade lineup",
                MIGRATIONS.len()
            )),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().take(target).skip(done) {
        apply(conn, i, sql)?;
    }
    Ok(())
}

/// Run the `i`-th migration, `sql`, and the Rust step that goes with it (if any) in one
/// transaction, and count it in `user_version`: a database is either wholly before or wholly
/// after a migration.
fn apply(conn: &mut Connection, i: usize, sql: &str) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch(sql)?;
    step(&tx, sql)?;
    tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    tx.commit()
}

/// The work a migration needs beyond SQL (converting data SQL cannot), keyed by the
/// migration's text so its place in the list stays free to change.
fn step(tx: &rusqlite::Transaction<'_>, sql: &str) -> rusqlite::Result<()> {
    if std::ptr::eq(sql, super::guide::LISTINGS_SCHEMA) || sql == super::guide::LISTINGS_SCHEMA {
        super::guide_migrate::convert(tx, super::listing::FLUSH_BYTES)?;
    }
    Ok(())
}

/// Apply the migrations before the first one `stop` picks (all when none does): a database of
/// the schema as it was before that migration, for tests that carry it forward.
#[cfg(test)]
pub(crate) fn migrate_until(
    conn: &mut Connection,
    stop: impl Fn(&str) -> bool,
) -> rusqlite::Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        if stop(sql) {
            break;
        }
        apply(conn, i, sql)?;
    }
    Ok(())
}

/// Bring `conn` to the schema just before the migration `sql` (a test's "old" database),
/// without knowing that migration's index.
#[cfg(test)]
pub fn migrate_before(conn: &mut Connection, sql: &str) -> rusqlite::Result<()> {
    assert!(
        MIGRATIONS
            .iter()
            .any(|m| std::ptr::eq(*m, sql) || *m == sql),
        "migration is listed"
    );
    migrate_until(conn, |m| std::ptr::eq(m, sql) || m == sql)
}

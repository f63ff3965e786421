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
];

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
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

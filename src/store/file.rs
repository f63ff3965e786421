//! The database as a file: created private (`0600`, and SQLite gives its `-wal` and `-shm`
//! files the database's mode), errors that name it, and a file SQLite cannot read as a
//! database set aside (`NAME.corrupt-<UTC time>`) so that a build can start over: the
//! database is a cache of the sources, never the only copy of anything a user wrote.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

/// Create `path` empty with mode `0600` unless it exists (SQLite takes an empty file for a
/// new database).
pub fn create_private(path: &Path) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether SQLite said the file is not a database or is corrupt.
pub fn is_corrupt(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<rusqlite::Error>()
            .and_then(rusqlite::Error::sqlite_error_code)
            .is_some_and(|code| {
                matches!(code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
            })
    })
}

/// Rename `path` (and its `-wal`/`-shm` files) to `NAME.corrupt-<UTC time>`; returns the new
/// name of the database file.
pub fn set_aside(path: &Path) -> io::Result<PathBuf> {
    let stamp: String = crate::report::rfc3339(super::now_ms())
        .chars()
        .filter(|c| *c != ':' && *c != '-')
        .collect();
    let stamp = stamp.split('.').next().unwrap_or_default().to_string() + "Z";
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{stamp}"));
    let aside = path.with_file_name(name);
    std::fs::rename(path, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let mut from = path.as_os_str().to_os_string();
        from.push(suffix);
        let mut to = aside.as_os_str().to_os_string();
        to.push(suffix);
        // They may not exist: nothing to move then.
        let _ = std::fs::rename(&from, &to);
    }
    Ok(aside)
}

/// `err` with the database file named, unless its message already names it: SQLite's own
/// messages ("attempt to write a readonly database") do not say which file.
pub fn name_file(err: anyhow::Error, path: &Path) -> anyhow::Error {
    let shown = path.display().to_string();
    let from_sqlite = err
        .chain()
        .any(|c| c.downcast_ref::<rusqlite::Error>().is_some());
    if !from_sqlite || format!("{err:#}").contains(&shown) {
        return err;
    }
    err.context(format!("database {shown}"))
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;

    #[test]
    fn created_private_and_a_corrupt_file_is_set_aside() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("lineup.db");
        let store = Store::open(&db).unwrap();
        store
            .conn
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        for name in ["lineup.db", "lineup.db-wal", "lineup.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        drop(store);

        std::fs::write(&db, vec![b'x'; 8192]).unwrap();
        let err = Store::open(&db).err().unwrap();
        assert!(is_corrupt(&err), "{err:#}");
        assert!(format!("{err:#}").contains("lineup.db"), "{err:#}");
        let (store, aside) = Store::open_for_build(&db).unwrap();
        let aside = aside.expect("set aside");
        assert!(
            aside
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("lineup.db.corrupt-"),
            "{}",
            aside.display()
        );
        assert_eq!(std::fs::read(&aside).unwrap(), vec![b'x'; 8192]);
        let tables: i64 = store
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert!(tables > 0, "a fresh, migrated database");
    }
}

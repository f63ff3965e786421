//! One build per database at a time: an OS file lock on `<database>.lock`, released by the
//! kernel when the process ends however it ends (so a killed build never leaves a stale lock).
//! The file holds the holder's PID, for the message a second build prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};

use crate::exit::{Exit, Failure};

/// Held for the whole build; dropping it releases the lock.
pub struct BuildLock {
    _file: File,
    pub path: PathBuf,
}

/// The lock file that guards `db`: beside the file the path leads to, so that a database
/// reached through a symlink or another relative path shares one lock.
pub fn lock_path(db: &Path) -> PathBuf {
    let db = canonical(db);
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    db.with_file_name(name)
}

/// `db` with symlinks resolved; when it does not exist yet, its directory resolved.
pub fn canonical(db: &Path) -> PathBuf {
    if let Ok(path) = db.canonicalize() {
        return path;
    }
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (dir.canonicalize(), db.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => db.to_path_buf(),
    }
}

impl BuildLock {
    /// Take the lock, waiting up to `wait` for another build to finish; without `wait`, or
    /// when it runs out, fail with exit code 5 naming the holder's PID.
    pub fn acquire(db: &Path, wait: Option<Duration>) -> Result<BuildLock, Failure> {
        if let Some(dir) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let path = lock_path(db);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        let deadline = wait.map(|w| Instant::now() + w);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    if deadline.is_some_and(|d| Instant::now() < d) {
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    let who = if holder.is_empty() {
                        "another lineup build".to_string()
                    } else {
                        format!("another lineup build (pid {holder})")
                    };
                    let waited = match wait {
                        Some(w) => format!(" (waited {}s)", w.as_secs_f64()),
                        None => " (use --wait DURATION to wait for it)".into(),
                    };
                    return Err(Failure::new(
                        Exit::Locked,
                        anyhow!("{who} holds the lock on {}{waited}", db.display()),
                    ));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot lock {}", path.display()))
                        .into());
                }
            }
        }
        // Record who holds it; a failure here is cosmetic.
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(BuildLock { _file: file, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let first = BuildLock::acquire(&db, None).unwrap();
        let err = BuildLock::acquire(&db, None).err().unwrap();
        assert_eq!(err.exit, Exit::Locked);
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        let err = BuildLock::acquire(&db, Some(Duration::from_millis(200)))
            .err()
            .unwrap();
        assert_eq!(err.exit, Exit::Locked);
        drop(first);
        let held = BuildLock::acquire(&db, None).unwrap();

        // The same database through a symlink is the same lock.
        std::fs::write(&db, "").unwrap();
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&db, &link).unwrap();
        let err = BuildLock::acquire(&link, None).err().unwrap();
        assert_eq!(err.exit, Exit::Locked);
        drop(held);
    }
}

//! Writing outputs. Every writer (M3U, XMLTV, the HDHomeRun files) shares one shape and nothing else: write into a
//! temporary file in the destination's directory, finish, fsync, rename over the destination.
//! A crash or kill at any moment leaves the previous file or the new one, never a mix, and a
//! dropped (failed, interrupted) [`AtomicFile`] removes its temporary file. Temporary files are
//! named `.NAME.<pid>-*.tmp`; a build removes those of dead builds only (see `tempfiles`).

mod background;
pub mod hdhr;
pub mod m3u;
pub mod xmltv;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// What a finished output was: for the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// A file being written next to its destination; renamed into place by [`AtomicFile::commit`].
pub struct AtomicFile {
    dest: PathBuf,
    /// Written and hashed on a thread of its own (`background`). Declared before `temp`: a
    /// dropped file stops its thread before the temporary file is removed.
    writer: background::BackgroundWriter,
    temp: Option<tempfile::NamedTempFile>,
    mode: u32,
}

impl AtomicFile {
    /// Start writing `dest`. The file gets permissions `0644` unless [`AtomicFile::set_mode`]
    /// says otherwise; until it is committed it is private (`0600`).
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output directory {}", dir.display()))?;
        if dest.is_dir() {
            anyhow::bail!("output {} is a directory", dest.display());
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        crate::tempfiles::sweep(dir, &format!(".{name}."), ".tmp");
        let temp = tempfile::Builder::new()
            .prefix(&crate::tempfiles::prefix(&format!(".{name}.")))
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        let file = temp
            .as_file()
            .try_clone()
            .with_context(|| format!("cannot write {}", temp.path().display()))?;
        Ok(AtomicFile {
            dest: dest.to_path_buf(),
            temp: Some(temp),
            writer: background::BackgroundWriter::new(file)
                .with_context(|| format!("cannot start writing {}", dest.display()))?,
            mode: 0o644,
        })
    }

    /// The permissions the file gets when committed (Unix).
    pub fn set_mode(&mut self, mode: u32) {
        self.mode = mode;
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flush, fsync, set the mode and rename over the destination.
    pub fn commit(mut self) -> Result<Written> {
        let dest = self.dest.clone();
        let ctx = || format!("cannot write {}", dest.display());
        let hashing = self.writer.finish().with_context(ctx)?;
        let temp = self.temp.take().expect("committed once");
        let bytes = hashing.bytes;
        let sha256 = hex(&hashing.hasher.clone().finalize());
        hashing.inner.sync_all().with_context(ctx)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(temp.path(), fs::Permissions::from_mode(self.mode))
                .with_context(ctx)?;
        }
        temp.persist(&dest).map_err(|e| e.error).with_context(ctx)?;
        // Make the rename itself durable.
        if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(Written {
            path: dest,
            bytes,
            sha256,
        })
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// SHA-256 (hex) of a file's bytes: what [`Written::sha256`] says of a file still in place.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hasher)?;
    Ok(hex(&hasher.hasher.finalize()))
}

/// Counts and hashes what passes through, so the report gets size and sha256 for free.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_leaves_previous() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.m3u");
        fs::write(&dest, "old").unwrap();
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"half").unwrap();
            // dropped without commit: a failed build
        }
        assert_eq!(fs::read_to_string(&dest).unwrap(), "old");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file removed"
        );
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"new").unwrap();
        let w = f.commit().unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "new");
        assert_eq!(w.bytes, 3);
        assert_eq!(w.sha256.len(), 64);
    }

    #[test]
    fn a_live_builds_temp_survives_and_a_dead_ones_goes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("home.m3u");
        // A build that died (no such pid) left this; one still running (us) writes another.
        fs::write(dir.path().join(".home.m3u.4294967-xyz.tmp"), "left").unwrap();
        let mut first = AtomicFile::create(&dest).unwrap();
        let mut second = AtomicFile::create(&dest).unwrap();
        first.write_all(b"one").unwrap();
        second.write_all(b"two").unwrap();
        first.commit().unwrap();
        second.commit().unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

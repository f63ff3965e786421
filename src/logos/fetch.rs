//! Downloading logos: a few worker threads share the build's HTTP client and take URLs from a
//! common queue. Each logo is one conditional request (the cache's validators, when its file
//! is still on disk), capped at [`MAX_LOGO_SIZE`], sniffed (`sniff.rs`) and stored in the logo
//! directory under a name made from its content: the SHA-256 of the body and the extension of
//! its kind. Nothing of the URL ever reaches the file system, so `../` or `%2F` in a URL cannot
//! place a file anywhere else, and two URLs serving the same picture share one file.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::cache::Known;
use super::sniff::{SNIFF_LEN, sniff};
use crate::fetch::{Client, Control, Download, FetchOutcome, SourceFetch, Validators};

/// The largest logo accepted. Channel logos are a few KB; anything near this is a mistake
/// (a video, an archive) that should not fill the logo directory.
pub const MAX_LOGO_SIZE: u64 = 2 * 1024 * 1024;

/// Concurrent downloads. Enough to hide latency on a few hundred logos without hammering the
/// provider that serves them (often the same panel as the streams).
const WORKERS: usize = 4;

/// Hex digits of the content hash kept in a file name: 128 bits, no collisions in practice.
const NAME_HASH_LEN: usize = 32;

/// One logo to fetch.
#[derive(Debug, Clone)]
pub struct Job {
    pub url: String,
    /// What the cache knows of it from earlier runs, when its file is still in the directory.
    pub known: Option<Known>,
}

/// What became of one logo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An image arrived and is stored as `file` in the logo directory.
    Stored {
        file: String,
        bytes: u64,
        validators: Validators,
    },
    /// `304 Not Modified`: the cached file is current.
    NotModified,
    /// Not fetched, not an image, or too large; the masked reason.
    Failed(String),
}

/// Where and how logos are fetched.
pub struct Fetcher<'a> {
    pub client: &'a Client,
    /// `[settings.fetch]`, with `max_size` capped at [`MAX_LOGO_SIZE`].
    pub settings: SourceFetch,
    pub ctl: Control<'a>,
    /// The logo directory (exists).
    pub dir: &'a Path,
}

impl Fetcher<'_> {
    /// Fetch every job on up to [`WORKERS`] threads; outcomes in job order.
    pub fn fetch_all(&self, jobs: &[Job]) -> Vec<Outcome> {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; jobs.len()]);
        std::thread::scope(|scope| {
            for _ in 0..WORKERS.min(jobs.len()) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        let outcome = self.fetch_one(job);
                        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
                    }
                });
            }
        });
        results
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::Failed("not fetched".into())))
            .collect()
    }

    fn fetch_one(&self, job: &Job) -> Outcome {
        let validators = job
            .known
            .as_ref()
            .map(|k| k.validators.clone())
            .unwrap_or_default();
        match self
            .client
            .fetch(&job.url, &self.settings, &validators, &self.ctl)
        {
            Ok(FetchOutcome::NotModified { .. }) => Outcome::NotModified,
            Ok(FetchOutcome::Fetched(download)) => match self.keep(&job.url, &download) {
                Ok(file) => Outcome::Stored {
                    file,
                    bytes: download.bytes,
                    validators: download.validators,
                },
                Err(reason) => Outcome::Failed(reason),
            },
            Err(e) => Outcome::Failed(e.masked()),
        }
    }

    /// Check that a download is an image and store it under its content name.
    fn keep(&self, url: &str, download: &Download) -> Result<String, String> {
        let spool = download.spool.path();
        let mut head = Vec::with_capacity(SNIFF_LEN);
        File::open(spool)
            .and_then(|f| f.take(SNIFF_LEN as u64).read_to_end(&mut head))
            .map_err(|e| format!("cannot read spool file {}: {e}", spool.display()))?;
        let kind = sniff(&head).ok_or_else(|| {
            crate::secrets::mask(&format!(
                "{url}: not an image (PNG, JPEG, GIF, WebP or SVG expected)"
            ))
        })?;
        let file = format!("{}.{}", &download.sha256[..NAME_HASH_LEN], kind.extension());
        let dest = self.dir.join(&file);
        // Same name, same content: an earlier run (or another URL) stored it already.
        if !dest.is_file() {
            store(spool, &dest).map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        }
        Ok(file)
    }
}

/// Logo temporaries are `.logo-<pid>-*.tmp` in the logo directory.
pub const TEMP_PREFIX: &str = ".logo-";

/// Copy `spool` to `dest` through a temporary file in the same directory, so that a reader
/// (the web server behind `base_url`) never sees half a logo. Readable by everyone: logos are
/// public pictures and are meant to be served.
fn store(spool: &Path, dest: &Path) -> io::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(&crate::tempfiles::prefix(TEMP_PREFIX))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    io::copy(&mut File::open(spool)?, &mut temp)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o644))?;
    }
    temp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

//! The acquire phase: hash a local file, or download a URL or an Xtream account into a spool
//! file, with retries; parse a changed guide into a spool. Runs on worker threads and touches
//! no database.

use std::path::Path;
use std::time::Instant;

use sha2::Digest;

use super::{Acquired, Attempt, Job, Location, Refresh};
use crate::config::Config;
use crate::fetch::xtream;
use crate::fetch::{Control, FetchOutcome, Validators};
use crate::parse::xmltv::XmltvReader;
use crate::store::guide::ParsedGuide;
use crate::store::now_ms;

/// Acquire one job (runs on a worker thread; touches no database).
pub(super) fn acquire(
    config: &Config,
    job: &Job<'_>,
    validators: &Validators,
    how: &Refresh<'_>,
) -> Attempt {
    let _spinner = crate::progress::SourceSpinner::start(job.name());
    let started = Instant::now();
    let started_at = now_ms();
    let cfg = job.settings(config);
    let ctl = Control {
        deadline: how.deadline,
        cancel: how.cancel,
    };
    let (result, attempts, http_status) = match job.location(config) {
        Location::Xtream(account) => {
            match xtream::download_live(how.client, job.name(), account, &cfg, &ctl) {
                Ok(dl) => {
                    // Stream URLs are built from the account as well as the lists: a new
                    // server, password or `output` must rebuild them even when the panel's
                    // lists did not change.
                    let key = content_key(&format!(
                        "{}\0{}\0{}\0{}\0{}",
                        dl.content_sha256,
                        account.server.0,
                        account.username.0,
                        account.password.0,
                        account.output
                    ));
                    let attempts = dl.attempts;
                    (
                        Ok(Acquired::Xtream {
                            download: Box::new(dl),
                            key,
                        }),
                        attempts,
                        Some(200),
                    )
                }
                Err(e) => {
                    let status = e.fetch_error().and_then(|f| f.http_status);
                    (Err(e.masked()), e.attempts(), status)
                }
            }
        }
        Location::Url(url) => match how.client.fetch(&url, &cfg, validators, &ctl) {
            Ok(FetchOutcome::Fetched(download)) => {
                let key = content_key(&download.sha256);
                let (attempts, status) = (download.attempts, download.status);
                (Ok(Acquired::Http { download, key }), attempts, Some(status))
            }
            Ok(FetchOutcome::NotModified { attempts, .. }) => {
                (Ok(Acquired::NotModified), attempts, Some(304))
            }
            Err(e) => (Err(e.to_string()), e.attempts, e.http_status),
        },
        Location::File(path) => match file_xxh3(&path) {
            Ok((sha, bytes)) => (
                Ok(Acquired::File {
                    key: content_key(&sha),
                    path,
                    bytes,
                }),
                1,
                None,
            ),
            Err(e) => (Err(format!("cannot read {}: {e}", path.display())), 1, None),
        },
    };
    Attempt {
        guide: None,
        result,
        attempts,
        http_status,
        started_at,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// Parse a guide whose content is not the stored copy's (`stored_key`) into a spool, on the
/// worker: the writer then only copies it into the store. `None` when there is nothing to
/// parse (a failed or unchanged fetch, an Xtream download).
pub(super) fn parse_guide(
    config: &Config,
    job: &Job<'_>,
    attempt: &Attempt,
    stored_key: Option<&str>,
    how: &Refresh<'_>,
) -> Option<anyhow::Result<ParsedGuide>> {
    use anyhow::Context;
    let (path, label, key) = match attempt.result.as_ref().ok()? {
        Acquired::File { path, key, .. } => (path.as_path(), path.display().to_string(), key),
        Acquired::Http { download, key } => {
            (download.spool.path(), format!("source {}", job.name()), key)
        }
        Acquired::NotModified | Acquired::Xtream { .. } => return None,
    };
    if stored_key == Some(key.as_str()) {
        return None;
    }
    let max_size = job.settings(config).max_size;
    let _spinner = crate::progress::SourceSpinner::start(job.name());
    Some((|| {
        let input = crate::parse::decode::open(path, max_size)
            .with_context(|| format!("cannot read {label}"))?;
        let mut reader = XmltvReader::new(input, &label)?;
        Ok(crate::store::guide::parse(
            &mut reader,
            how.client.spool_dir(),
        )?)
    })())
}

/// The key the store keeps for a source's content: SHA-256 of lineup's version and the raw
/// content's hash (SHA-256 of a download, XXH3 of a local file). The version is part of it
/// so that an upgraded reader parses every source again.
fn content_key(raw_sha256: &str) -> String {
    let mut hasher = sha2::Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.update(b"\0");
    hasher.update(raw_sha256.as_bytes());
    crate::output::hex(&hasher.finalize())
}

/// A change key (`xxh3:` and the hex XXH3-128 of its bytes, as stored: before decompression)
/// and the size of a local file. A key only, never shown: a fast non-cryptographic hash keeps
/// `--if-changed` with nothing changed cheap on large inputs.
fn file_xxh3(path: &Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((format!("xxh3:{:032x}", hasher.digest128()), bytes))
}

//! Logo prefetch (`logos = { prefetch = true, dir, base_url }` on a proxy): every distinct
//! `tvg-logo` of the proxy's playlist (after mappings and filters) and every `<icon>` of its
//! guide's channels is downloaded into `<output_dir>/<dir>/`, named by content
//! (`fetch.rs`, `sniff.rs`), remembered in the database with its validators so that later runs
//! ask with conditional requests (`cache.rs`), and, with `base_url`, written into the playlist
//! and the guide as `base_url/FILE` (`rewrite.rs`). Without `base_url` the files are only
//! cached (a web server or a script can use them) and the outputs keep the original URLs.
//!
//! A logo that fails (network, status, not an image, larger than 2 MiB) never fails the build:
//! it keeps its last good copy when there is one, and its original URL otherwise.

pub mod cache;
pub mod fetch;
pub mod rewrite;
pub mod sniff;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::config::{Config, Logos};
use crate::fetch::{Client, Control, SourceFetch};
use crate::memory::Budget;
use crate::memory::spill::SpillArea;
use crate::model::Channel;
use crate::output::m3u::M3uWriter;
use crate::store::Store;
use crate::{info, warn};

pub use rewrite::{ChannelSpool, LogoMap, is_fetchable};

/// Failure lines shown per proxy; the rest are counted. A provider with hundreds of dead logos
/// should not bury the build's other messages.
const WARNINGS_SHOWN: u64 = 20;

/// The logo part of a proxy's report.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct LogoStats {
    /// Distinct logo URLs of the playlist and the guide.
    pub distinct: u64,
    /// Downloaded, new or changed.
    pub fetched: u64,
    /// Current already: `304 Not Modified`, or the same content as the cached file.
    pub cached: u64,
    /// Not usable this run (their last good copy, if any, is still used).
    pub failed: u64,
    /// Bytes downloaded this run.
    pub bytes: u64,
}

/// What logo prefetch needs of the build (the pipeline lends it from its build context).
pub struct LogoContext<'a> {
    pub config: &'a Config,
    pub db: &'a Path,
    pub output_dir: &'a Path,
    pub cancel: &'a AtomicBool,
    pub budget: &'a Arc<Budget>,
    pub spill: &'a Arc<SpillArea>,
}

/// The playlist side of a prefetching proxy: channels wait in a spool until the logos are in.
pub struct LogoPass {
    settings: Logos,
    spool: ChannelSpool,
}

impl LogoPass {
    /// The pass for `logos`, or `None` when prefetch is off.
    pub fn new(logos: Option<&Logos>, ctx: &LogoContext<'_>) -> Option<LogoPass> {
        match logos {
            Some(l) if l.prefetch => Some(LogoPass {
                settings: l.clone(),
                spool: ChannelSpool::new(ctx.budget, ctx.spill),
            }),
            _ => None,
        }
    }

    /// Take one channel of the playlist, in output order.
    pub fn write(&mut self, ch: Channel) -> Result<()> {
        self.spool.write(ch)
    }

    /// Fetch the playlist's logos and `guide_icons`, write the playlist to `writer`, and return
    /// the stats and the map for the guide's icons (empty without `base_url`).
    pub fn finish(
        self,
        ctx: &LogoContext<'_>,
        proxy: &str,
        guide_icons: Vec<String>,
        writer: &mut M3uWriter,
    ) -> Result<(LogoStats, LogoMap)> {
        let LogoPass { settings, spool } = self;
        let mut urls: Vec<String> = spool.logos.iter().cloned().collect();
        urls.extend(guide_icons);
        urls.sort_unstable();
        urls.dedup();
        let dir = ctx.output_dir.join(settings.dir.as_str());
        let (stats, files) = prefetch(ctx, proxy, &urls, &dir)?;
        let map: LogoMap = match &settings.base_url {
            Some(base) => files
                .into_iter()
                .map(|(url, file)| {
                    let public = format!("{}/{file}", base.as_str().trim_end_matches('/'));
                    (url, public)
                })
                .collect(),
            None => LogoMap::new(),
        };
        spool.replay(&map, writer)?;
        info!(
            "proxy {proxy}: logos: {} distinct, {} fetched, {} cached, {} failed, {}",
            stats.distinct,
            stats.fetched,
            stats.cached,
            stats.failed,
            crate::config::units::HumanBytes(stats.bytes)
        );
        Ok((stats, map))
    }
}

/// Fetch `urls` into `dir`; returns the stats and, per URL with a usable copy, its file name.
fn prefetch(
    ctx: &LogoContext<'_>,
    proxy: &str,
    urls: &[String],
    dir: &Path,
) -> Result<(LogoStats, Vec<(String, String)>)> {
    let mut stats = LogoStats {
        distinct: urls.len() as u64,
        ..LogoStats::default()
    };
    if urls.is_empty() {
        return Ok((stats, Vec::new()));
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        // A local problem, but still only logos: the playlist is built with the original URLs.
        warn!(
            "proxy {proxy}: logos not fetched: cannot create {}: {e}",
            dir.display()
        );
        stats.failed = stats.distinct;
        return Ok((stats, Vec::new()));
    }
    // What a killed build left half-copied.
    crate::tempfiles::sweep(dir, fetch::TEMP_PREFIX, ".tmp");
    let mut store = Store::open(ctx.db)?;
    let jobs = urls
        .iter()
        .map(|url| {
            // A cache entry whose file is gone is no cached copy: fetched unconditionally.
            let known = cache::lookup(&store.conn, url)?.filter(|k| dir.join(&k.file).is_file());
            Ok(fetch::Job {
                url: url.clone(),
                known,
            })
        })
        .collect::<Result<Vec<_>>>()?;

    let mut settings = SourceFetch::resolve(&ctx.config.file.settings.fetch, &Default::default());
    settings.max_size = settings.max_size.min(fetch::MAX_LOGO_SIZE);
    let client = Client::new(&ctx.spill.dir);
    let fetcher = fetch::Fetcher {
        client: &client,
        settings,
        // The sources' `total_timeout` was spent on the sources; logos get one of their own.
        ctl: Control {
            deadline: std::time::Instant::now() + ctx.config.file.settings.fetch.total_timeout.0,
            cancel: ctx.cancel,
        },
        dir,
    };
    let outcomes = fetcher.fetch_all(&jobs);
    // Ctrl-C failed every logo still to come: no warning per logo for that.
    if crate::cancel::requested(ctx.cancel) {
        bail!("interrupted");
    }

    let mut files = Vec::new();
    let mut updates = Vec::new();
    for (job, outcome) in jobs.iter().zip(&outcomes) {
        let url = job.url.as_str();
        let known_file = job.known.as_ref().map(|k| k.file.as_str());
        match outcome {
            fetch::Outcome::Stored {
                file,
                bytes,
                validators,
            } => {
                stats.bytes += bytes;
                if known_file == Some(file.as_str()) {
                    stats.cached += 1;
                } else {
                    stats.fetched += 1;
                }
                files.push((job.url.clone(), file.clone()));
                updates.push(cache::Update::Stored {
                    url,
                    file,
                    validators,
                });
            }
            fetch::Outcome::NotModified => {
                stats.cached += 1;
                if let Some(file) = known_file {
                    files.push((job.url.clone(), file.to_string()));
                }
                updates.push(cache::Update::Checked { url });
            }
            fetch::Outcome::Failed(reason) => {
                stats.failed += 1;
                // The last good copy, as for sources: better than flipping to a dead URL.
                let fallback = match known_file {
                    Some(file) => {
                        files.push((job.url.clone(), file.to_string()));
                        "the copy of an earlier run is used"
                    }
                    None => "its URL is kept",
                };
                if stats.failed <= WARNINGS_SHOWN {
                    warn!("proxy {proxy}: logo failed, {fallback}: {reason}");
                }
            }
        }
    }
    if stats.failed > WARNINGS_SHOWN {
        warn!(
            "proxy {proxy}: {} more logos failed (not shown)",
            stats.failed - WARNINGS_SHOWN
        );
    }
    cache::record(&mut store.conn, updates)?;
    Ok((stats, files))
}

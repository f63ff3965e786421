//! Building one proxy: chunks flow one way through the stages and into the writer.
//!
//! load (rolling buffer over the store, `load.rs`) -> write (M3U).
//!
//! What is held in memory: the rolling buffer (at most `buffer_size` items plus one chunk) and
//! the chunk in flight. Nothing else holds channels.

pub mod load;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::config::{Config, ProxyDef};
use crate::output::{Written, m3u::M3uWriter};

/// What a build needs to know beyond the configuration.
pub struct BuildContext<'a> {
    pub config: &'a Config,
    pub db: PathBuf,
    pub output_dir: PathBuf,
    pub dry_run: bool,
    pub cancel: Arc<AtomicBool>,
}

/// Items and time of one stage (the report's `stages[]`).
#[derive(Debug, Clone, Serialize)]
pub struct StageStats {
    pub name: &'static str,
    pub items: u64,
    pub duration_ms: u64,
}

/// The result of building one proxy (the report's `proxies[]`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct ProxyReport {
    pub name: String,
    pub channels_in: u64,
    pub channels_out: u64,
    pub filtered_out: u64,
    pub deduped: u64,
    /// Channels of the playlist that got a guide, and their programmes.
    pub epg_channels: u64,
    pub programmes: u64,
    pub stages: Vec<StageStats>,
    pub outputs: Vec<Written>,
}

struct StageClock {
    name: &'static str,
    items: u64,
    spent: Duration,
}

impl StageClock {
    fn new(name: &'static str) -> Self {
        StageClock {
            name,
            items: 0,
            spent: Duration::ZERO,
        }
    }

    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.spent += start.elapsed();
        out
    }

    fn stats(&self) -> StageStats {
        StageStats {
            name: self.name,
            items: self.items,
            duration_ms: self.spent.as_millis() as u64,
        }
    }
}

/// Build one proxy from the sources already in the store.
pub fn run_proxy(ctx: &BuildContext<'_>, proxy: &ProxyDef) -> Result<ProxyReport> {
    let config = ctx.config;
    let name = proxy.name.get_ref().0.clone();
    let sources: Vec<String> = config
        .active_sources(proxy)
        .map(|s| s.name.get_ref().0.clone())
        .collect();
    let limits = load::Limits::from(&config.file.settings.buffer);

    let mut load = StageClock::new("load");
    let mut write = StageClock::new("write");
    let dest = ctx.output_dir.join(proxy.m3u.get_ref().as_str());
    let mut writer = if ctx.dry_run {
        None
    } else {
        Some(M3uWriter::create(
            &dest,
            proxy.epg_url.as_ref().map(|u| u.as_str()),
            proxy.file_mode.map(|m| m.0),
        )?)
    };

    let mut report = ProxyReport {
        name,
        ..Default::default()
    };
    let mut loader = load::RollingLoader::start(&ctx.db, sources, limits, Arc::clone(&ctx.cancel));
    loop {
        let Some(chunk) = load.time(|| loader.next()) else {
            break;
        };
        let chunk = chunk.context("cannot load channels from the database")?;
        if crate::cancel::requested(&ctx.cancel) {
            bail!("interrupted");
        }
        load.items += chunk.len() as u64;
        report.channels_in += chunk.len() as u64;

        write.items += chunk.len() as u64;
        if let Some(w) = writer.as_mut() {
            write.time(|| chunk.iter().try_for_each(|ch| w.write(ch)))?;
        }
        report.channels_out += chunk.len() as u64;
    }
    drop(loader);
    if let Some(w) = writer {
        let written = write.time(|| w.commit())?;
        report.outputs.push(written);
    }
    report.stages = vec![load.stats(), write.stats()];
    Ok(report)
}

//! Building one proxy: chunks flow one way through the stages and into the writer.
//!
//! load (rolling buffer over the store, `load.rs`) -> rules (map then filter, in parallel on
//! rayon, `crate::rules`) -> dedupe (`dedupe.rs`) -> sort (`sort.rs`) -> number (`number.rs`)
//! -> write (M3U).
//!
//! What is held in memory: the rolling buffer (at most `buffer_size` items plus one chunk),
//! the chunk in flight, dedupe's key hashes (16 bytes per distinct key) and numbering's used
//! numbers. With `sort` by fields, the sort stage holds every channel that reaches it: it is
//! the one stage that needs them all.

pub mod dedupe;
pub mod guide;
pub mod load;
pub mod number;
pub mod sort;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use crate::config::{Config, ProxyDef, Sort};
use crate::model::{Channel, Field};
use crate::output::{Written, m3u::M3uWriter};
use crate::rules::ProxyRules;

/// What a build needs to know beyond the configuration.
pub struct BuildContext<'a> {
    pub config: &'a Config,
    pub db: PathBuf,
    pub output_dir: PathBuf,
    pub dry_run: bool,
    pub cancel: Arc<AtomicBool>,
    /// The build's clock (UTC epoch seconds) for the guide window.
    pub now: i64,
    /// The memory budget every buffering stage reserves from, and where spills go.
    pub budget: Arc<crate::memory::Budget>,
    pub spill: Arc<crate::memory::spill::SpillArea>,
    /// Channels stored per source, for the progress bar's total.
    pub source_items: std::collections::HashMap<String, u64>,
}

impl BuildContext<'_> {
    /// What logo prefetch needs of the build.
    pub fn logos(&self) -> crate::logos::LogoContext<'_> {
        crate::logos::LogoContext {
            config: self.config,
            db: &self.db,
            output_dir: &self.output_dir,
            cancel: &self.cancel,
            budget: &self.budget,
            spill: &self.spill,
        }
    }
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
    /// Channels that at least one mapping changed.
    pub changed_by_mappings: u64,
    pub filtered_out: u64,
    /// What removed the filtered-out channels: each exclude filter by name, and
    /// `(no include matched)`.
    pub filtered_by: BTreeMap<String, u64>,
    pub deduped: u64,
    /// Channels of the playlist that got a guide, and their programmes.
    pub epg_channels: u64,
    pub programmes: u64,
    pub stages: Vec<StageStats>,
    pub outputs: Vec<Written>,
    /// Guide matching, when the proxy has guides.
    pub guide: Option<guide::GuideReport>,
    /// Logo prefetch, when the proxy has `logos.prefetch` (and this is not a dry run).
    pub logos: Option<crate::logos::LogoStats>,
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
    let rules = ProxyRules::compile(config, proxy)
        .map_err(|errors| anyhow!(crate::config::ConfigErrors(errors).to_string()))?;
    let mut deduper = dedupe::Deduper::new(proxy.dedupe);
    let mut numberer = proxy.numbering.as_ref().map(number::Numberer::new);
    let sort_key = match &proxy.sort {
        Sort::Source => None,
        Sort::Fields(fields) => Some(sort::SortKey::new(
            &fields
                .iter()
                .map(|f| Field::parse(f.get_ref()).map_err(|e| anyhow!(e)))
                .collect::<Result<Vec<_>>>()?,
        )),
    };

    let mut guide_stage = guide::GuideStage::open(config, proxy, &ctx.db)?;
    let mut clocks = Clocks::default();
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

    // With logo prefetch the channels wait in a spool, not the playlist: which logos the
    // playlist uses, and so their new addresses, are only known after the last channel.
    let mut logo_pass = match &writer {
        Some(_) => crate::logos::LogoPass::new(proxy.logos.as_ref(), &ctx.logos()),
        None => None,
    };

    let mut report = ProxyReport {
        name,
        ..Default::default()
    };
    let mut rule_stats = rules.empty_stats();
    let mut sorter = sort_key
        .clone()
        .map(|key| crate::memory::sorter::Sorter::new(key, &ctx.budget, &ctx.spill));
    let bar = crate::progress::ProxyBar::start(
        &report.name,
        sources
            .iter()
            .map(|s| ctx.source_items.get(s).copied().unwrap_or(0))
            .sum(),
    );
    let mut loader = load::RollingLoader::start(
        &ctx.db,
        sources,
        limits,
        &ctx.budget,
        Arc::clone(&ctx.cancel),
    );
    // Dedupe's key hashes are accounted as they grow (they cannot shrink during a build).
    let mut dedupe_reservation = ctx.budget.empty();
    loop {
        let Some(chunk) = clocks.load.time(|| loader.next()) else {
            break;
        };
        let chunk = chunk.context("cannot load channels from the database")?;
        if crate::cancel::requested(&ctx.cancel) {
            bail!("interrupted");
        }
        clocks.load.items += chunk.len() as u64;
        bar.inc(chunk.len() as u64);

        let (mut chunk, stats) = clocks.rules.time(|| rules.apply(chunk));
        clocks.rules.items += stats.channels_in;
        rule_stats.merge(stats);

        clocks.dedupe.items += chunk.len() as u64;
        clocks.dedupe.time(|| chunk.retain(|ch| deduper.keep(ch)));
        let dedupe_bytes = deduper.heap_bytes() as u64;
        if dedupe_bytes > dedupe_reservation.bytes() {
            dedupe_reservation.grow_unchecked(dedupe_bytes - dedupe_reservation.bytes());
        }

        if let Some(sorter) = sorter.as_mut() {
            clocks.sort.items += chunk.len() as u64;
            clocks
                .sort
                .time(|| chunk.into_iter().try_for_each(|ch| sorter.push(ch)))?;
            continue;
        }
        emit(
            &mut clocks,
            chunk,
            numberer.as_mut(),
            guide_stage.as_mut(),
            writer.as_mut(),
            logo_pass.as_mut(),
        )?;
    }
    drop(loader);
    if let Some(sorter) = sorter.take() {
        let mut sorted = clocks.sort.time(|| sorter.finish())?;
        // Emit the sorted channels a chunk at a time, as the loader would.
        let chunk_size = config.file.settings.buffer.chunk_size.max(1);
        loop {
            let chunk = clocks
                .sort
                .time(|| sorted.by_ref().take(chunk_size).collect::<Result<Vec<_>>>())?;
            if chunk.is_empty() {
                break;
            }
            if crate::cancel::requested(&ctx.cancel) {
                bail!("interrupted");
            }
            emit(
                &mut clocks,
                chunk,
                numberer.as_mut(),
                guide_stage.as_mut(),
                writer.as_mut(),
                logo_pass.as_mut(),
            )?;
        }
    }
    // Fetch the logos of the playlist and of the guide's channels, then write the playlist
    // from the spool with the new logo addresses; the guide gets them when it is written.
    if let (Some(pass), Some(w)) = (logo_pass.take(), writer.as_mut()) {
        let icons = match &guide_stage {
            Some(stage) => stage.icon_urls()?,
            None => Vec::new(),
        };
        let (stats, map) = clocks
            .logos
            .time(|| pass.finish(&ctx.logos(), &report.name, icons, w))?;
        clocks.logos.items = stats.distinct;
        if let Some(stage) = guide_stage.as_mut() {
            stage.set_icon_map(map);
        }
        report.logos = Some(stats);
    }
    // The guide is written before the playlist is committed, so that a failing guide leaves
    // the previous pair of files, not a new playlist beside an old guide.
    let mut guide_written = None;
    if let Some(stage) = guide_stage.as_mut() {
        let dest = proxy
            .xmltv
            .as_ref()
            .map(|x| ctx.output_dir.join(x.get_ref().as_str()))
            .filter(|_| !ctx.dry_run);
        let mode = proxy.file_mode.map_or(0o644, |m| m.0);
        let (channels, programmes, written) = clocks
            .guide_write
            .time(|| stage.finish(proxy, dest.as_deref(), ctx.now, mode))?;
        clocks.guide_write.items = programmes;
        report.epg_channels = channels;
        report.programmes = programmes;
        guide_written = written;
        report.guide = Some(stage.report.clone());
    }
    if let Some(w) = writer {
        let written = clocks.write.time(|| w.commit())?;
        report.outputs.push(written);
    }
    report.outputs.extend(guide_written);

    report.channels_in = rule_stats.channels_in;
    report.changed_by_mappings = rule_stats.changed_by_mappings;
    report.filtered_out = rule_stats.filtered_out;
    report.filtered_by = rule_stats.excluded_by.clone();
    if rule_stats.not_included > 0 {
        report
            .filtered_by
            .insert("(no include matched)".into(), rule_stats.not_included);
    }
    report.deduped = deduper.removed();
    report.channels_out = clocks.write.items;
    report.stages = clocks.stats(
        sort_key.is_some(),
        numberer.is_some(),
        report.guide.is_some(),
        report.logos.is_some(),
    );
    Ok(report)
}

/// Number and write channels in output order (to the logo spool when prefetching logos).
fn emit(
    clocks: &mut Clocks,
    mut chunk: Vec<Channel>,
    numberer: Option<&mut number::Numberer>,
    guide: Option<&mut guide::GuideStage>,
    writer: Option<&mut M3uWriter>,
    logos: Option<&mut crate::logos::LogoPass>,
) -> Result<()> {
    if let Some(n) = numberer {
        clocks.number.items += chunk.len() as u64;
        clocks.number.time(|| {
            chunk.iter_mut().for_each(|ch| {
                n.assign(ch);
            })
        });
    }
    if let Some(g) = guide {
        clocks.guide_match.items += chunk.len() as u64;
        clocks
            .guide_match
            .time(|| chunk.iter_mut().for_each(|ch| g.visit(ch)));
    }
    clocks.write.items += chunk.len() as u64;
    if let Some(pass) = logos {
        clocks
            .write
            .time(|| chunk.into_iter().try_for_each(|ch| pass.write(ch)))?;
    } else if let Some(w) = writer {
        clocks
            .write
            .time(|| chunk.iter().try_for_each(|ch| w.write(ch)))?;
    }
    Ok(())
}

/// Time and items of every stage.
struct Clocks {
    load: StageClock,
    rules: StageClock,
    dedupe: StageClock,
    sort: StageClock,
    number: StageClock,
    guide_match: StageClock,
    write: StageClock,
    logos: StageClock,
    guide_write: StageClock,
}

impl Default for Clocks {
    fn default() -> Self {
        Clocks {
            load: StageClock::new("load"),
            rules: StageClock::new("map+filter"),
            dedupe: StageClock::new("dedupe"),
            sort: StageClock::new("sort"),
            number: StageClock::new("number"),
            guide_match: StageClock::new("guide match"),
            write: StageClock::new("write"),
            logos: StageClock::new("logos"),
            guide_write: StageClock::new("guide write"),
        }
    }
}

impl Clocks {
    fn stats(&self, sorted: bool, numbered: bool, guided: bool, logos: bool) -> Vec<StageStats> {
        let mut stages = vec![self.load.stats(), self.rules.stats(), self.dedupe.stats()];
        if sorted {
            stages.push(self.sort.stats());
        }
        if numbered {
            stages.push(self.number.stats());
        }
        if guided {
            stages.push(self.guide_match.stats());
        }
        stages.push(self.write.stats());
        if logos {
            stages.push(self.logos.stats());
        }
        if guided {
            stages.push(self.guide_write.stats());
        }
        stages
    }
}

//! Building one proxy: chunks flow one way through the stages and into the writer.
//!
//! load (rolling buffer over the store, `load.rs`) -> probe marks (`crate::probe::Marks`: the
//! stored probe result of each stream, for `stream_status`) -> rules (map then filter, in
//! parallel on rayon, `crate::rules`) -> dedupe (`dedupe.rs`) -> sort by fields (`sort.rs`) ->
//! number (`number.rs`) -> sort by number -> guide match -> write (M3U, and the HDHomeRun files
//! with `hdhr`).
//!
//! What is held in memory: the rolling buffer (at most `buffer_size` items plus one chunk),
//! the chunk in flight, dedupe's key hashes (16 bytes per distinct key) and numbering's used
//! and reserved numbers. Three stages may need every channel, each through a sorter that
//! spills past the budget (`memory::sorter`): the sort by fields, numbering's first pass
//! (`preserve` and `sticky` see every owned number and identity before handing out any: an
//! unkeyed sorter keeps the channels in order) and the sort by number (`sort = "number"`,
//! after numbering). Sticky identities and numbers go through SQLite's temporary tables and
//! external sorter (`number::sticky`), never loaded whole.

pub mod dedupe;
pub mod guide;
pub mod load;
pub mod number;
pub mod sort;
mod tail;

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
use tail::Tail;

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
    /// Per proxy: the shrink guard on what it writes (against what it last wrote).
    pub output_guards: std::collections::HashMap<String, crate::ingest::guard::Guard>,
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
    /// `built` (or previewed by a dry run), `unchanged` (left alone by `--if-changed`), or
    /// `failed` (its previous outputs stay).
    pub status: ProxyStatus,
    /// Why it failed; `None` otherwise.
    pub error: Option<String>,
    /// Channels in the playlist it last wrote; `None` when it never wrote one.
    pub previous_channels: Option<u64>,
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
    /// Of `epg_channels`, those given placeholder data (`epg_placeholder`).
    pub placeholder_channels: u64,
    pub stages: Vec<StageStats>,
    pub outputs: Vec<Written>,
    /// Guide matching, when the proxy has guides.
    pub guide: Option<guide::GuideReport>,
    /// Logo prefetch, when the proxy has `logos.prefetch` (and this is not a dry run).
    pub logos: Option<crate::logos::LogoStats>,
    /// Stream probing, when the build probed this proxy (`probe = true`).
    pub probe: Option<crate::probe::ProbeReport>,
    /// Numbering's warnings: groups whose start collided with numbers in use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub numbering_warnings: Vec<String>,
    /// Sticky numbering's counts, when the proxy uses it and its outputs were committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sticky_numbers: Option<number::sticky::StickyStats>,
}

/// What happened to a proxy in this build (the report's `proxies[].status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProxyStatus {
    #[default]
    Built,
    Unchanged,
    Failed,
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
    let marks = crate::store::Store::open_reader(&ctx.db)
        .and_then(|conn| crate::probe::Marks::load(&conn, ctx.now))
        .context("cannot read stream probe results")?;
    let mut marks_reservation = ctx.budget.empty();
    marks_reservation.grow_unchecked(marks.heap_bytes() as u64);
    // Dedupe prefers alive streams: a first pass finds the keys that have one.
    let mut first_pass = Duration::ZERO;
    if deduper.key().is_some() && marks.any_alive() {
        let started = Instant::now();
        let alive = alive_keys(ctx, &sources, &limits, &rules, &marks, &deduper)?;
        first_pass = started.elapsed();
        marks_reservation.grow_unchecked(dedupe::set_bytes(&alive) as u64);
        deduper.prefer_alive(alive);
    }
    let numberer = match &proxy.numbering {
        Some(n) => Some(number::Numberer::for_build(
            n,
            &name,
            &ctx.db,
            ctx.now,
            &ctx.budget,
            &ctx.cancel,
        )?),
        None => None,
    };
    let sort_key = match &proxy.sort {
        Sort::Source | Sort::Number => None,
        Sort::Fields(fields) => Some(sort::SortKey::new(
            &fields
                .iter()
                .map(|f| Field::parse(f.get_ref()).map_err(|e| anyhow!(e)))
                .collect::<Result<Vec<_>>>()?,
        )),
    };
    let new_sorter =
        |key: sort::SortKey| crate::memory::sorter::Sorter::new(key, &ctx.budget, &ctx.spill);

    let guide_stage = guide::GuideStage::open(config, proxy, &ctx.db)?;
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
    // Providers repeat the credentials of a playlist URL in its stream URLs (in forms not
    // always recognizable): such a playlist is private.
    if let Some(w) = writer.as_mut()
        && config.active_sources(proxy).any(|s| {
            s.m3u
                .as_ref()
                .is_some_and(|m| crate::secrets::url_has_credentials(m.get_ref()))
        })
    {
        w.mark_credentials();
    }

    let hdhr = match (&proxy.hdhr, &writer) {
        (Some(h), Some(_)) => Some(crate::output::hdhr::HdhrWriter::create(
            &ctx.output_dir.join(h.dir.as_str()),
            &proxy.name.get_ref().0,
            h,
            proxy.file_mode.map(|m| m.0),
        )?),
        _ => None,
    };

    // With logo prefetch the channels wait in a spool, not the playlist: which logos the
    // playlist uses, and so their new addresses, are only known after the last channel.
    let logo_pass = match &writer {
        Some(_) => crate::logos::LogoPass::new(proxy.logos.as_ref(), &ctx.logos()),
        None => None,
    };
    let mut tail = Tail {
        clocks: Clocks::default(),
        // Numbering that reserves owned numbers sees every channel once before numbering
        // any: they wait in order (an unkeyed sorter keeps order and spills under pressure).
        first_pass: numberer
            .as_ref()
            .filter(|n| n.two_pass())
            .map(|_| new_sorter(sort::SortKey::new(&[]))),
        numberer,
        by_number: matches!(proxy.sort, Sort::Number)
            .then(|| new_sorter(sort::SortKey::new(&[Field::TvgChno]))),
        guide: guide_stage,
        writer,
        logos: logo_pass,
        hdhr,
    };
    // Dedupe's first pass counts as dedupe time.
    tail.clocks.dedupe.spent += first_pass;

    let mut report = ProxyReport {
        name,
        ..Default::default()
    };
    let mut rule_stats = rules.empty_stats();
    let mut sorter = sort_key.clone().map(new_sorter);
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
        let Some(chunk) = tail.clocks.load.time(|| loader.next()) else {
            break;
        };
        let chunk = chunk.context("cannot load channels from the database")?;
        if crate::cancel::requested(&ctx.cancel) {
            bail!("interrupted");
        }
        let clocks = &mut tail.clocks;
        clocks.load.items += chunk.len() as u64;
        bar.inc(chunk.len() as u64);
        let mut chunk = chunk;
        marks.annotate(&mut chunk);

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
        tail.ordered(chunk)?;
    }
    drop(loader);
    // Emit a finished sorter's channels a chunk at a time, as the loader would.
    let chunk_size = config.file.settings.buffer.chunk_size.max(1);
    let drain = |sorted: crate::memory::sorter::Sorted,
                 clock: fn(&mut Tail) -> &mut StageClock,
                 tail: &mut Tail,
                 then: fn(&mut Tail, Vec<Channel>) -> Result<()>|
     -> Result<()> {
        let mut sorted = sorted;
        loop {
            let chunk = clock(tail)
                .time(|| sorted.by_ref().take(chunk_size).collect::<Result<Vec<_>>>())?;
            if chunk.is_empty() {
                return Ok(());
            }
            if crate::cancel::requested(&ctx.cancel) {
                bail!("interrupted");
            }
            then(tail, chunk)?;
        }
    };
    if let Some(sorter) = sorter.take() {
        let sorted = tail.clocks.sort.time(|| sorter.finish())?;
        drain(sorted, |t| &mut t.clocks.sort, &mut tail, Tail::ordered)?;
    }
    if let Some(spool) = tail.first_pass.take() {
        let spooled = tail.clocks.number.time(|| spool.finish())?;
        drain(spooled, |t| &mut t.clocks.number, &mut tail, Tail::numbered)?;
    }
    if let Some(by_number) = tail.by_number.take() {
        let sorted = tail.clocks.sort.time(|| by_number.finish())?;
        drain(sorted, |t| &mut t.clocks.sort, &mut tail, Tail::emit)?;
    }
    let (warnings, sticky) = match tail.numberer.take() {
        Some(n) => n.finish(),
        None => (Vec::new(), None),
    };
    for w in &warnings {
        crate::warn!("proxy {}: {w}", report.name);
    }
    report.numbering_warnings = warnings;
    let Tail {
        mut clocks,
        guide: mut guide_stage,
        mut writer,
        logos: mut logo_pass,
        hdhr,
        ..
    } = tail;
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
    // The shrink guard, before anything is committed: a refused playlist leaves the previous
    // pair of files in place.
    let guard = ctx.output_guards.get(&report.name);
    report.previous_channels = guard.and_then(|g| g.previous);
    if let Some(guard) = guard {
        match guard.check(clocks.write.items, "channels") {
            Err(refused) if ctx.dry_run => {
                crate::warn!(
                    "proxy {}: a real build would refuse it: {refused}",
                    report.name
                )
            }
            result => result?,
        }
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
        report.epg_channels = channels + stage.placeholder_channels();
        report.placeholder_channels = stage.placeholder_channels();
        report.programmes = programmes;
        guide_written = written;
        report.guide = Some(stage.report.clone());
    }
    // The tuner files before the playlist too: they list the playlist's channels.
    let hdhr_written = match hdhr {
        Some(h) => clocks.write.time(|| h.commit())?,
        None => Vec::new(),
    };
    if let Some(w) = writer {
        let written = clocks.write.time(|| w.commit())?;
        report.outputs.push(written);
        // Sticky numbers are kept only once the playlist that shows them is in place.
        if let Some(sticky) = sticky {
            // Saving them counts as numbering time.
            let stats = clocks.number.time(|| sticky.commit()).with_context(|| {
                format!(
                    "proxy {}: outputs written, but the sticky channel numbers could not be saved",
                    report.name
                )
            })?;
            crate::info!(
                "proxy {}: sticky numbers: {} kept, {} new, {} forgotten",
                report.name,
                stats.kept,
                stats.new,
                stats.forgotten
            );
            report.sticky_numbers = Some(stats);
        }
    }
    report.outputs.extend(guide_written);
    report.outputs.extend(hdhr_written);

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
        sort_key.is_some() || matches!(proxy.sort, Sort::Number),
        proxy.numbering.is_some(),
        report.guide.is_some(),
        report.logos.is_some(),
    );
    Ok(report)
}

/// Dedupe's first pass when streams were probed: the key hashes that have an alive channel
/// after the rules.
fn alive_keys(
    ctx: &BuildContext<'_>,
    sources: &[String],
    limits: &load::Limits,
    rules: &ProxyRules,
    marks: &crate::probe::Marks,
    deduper: &dedupe::Deduper,
) -> Result<dedupe::KeySet> {
    let mut alive = dedupe::KeySet::default();
    let loader = load::RollingLoader::start(
        &ctx.db,
        sources.to_vec(),
        limits.clone(),
        &ctx.budget,
        Arc::clone(&ctx.cancel),
    );
    for chunk in loader {
        let mut chunk = chunk.context("cannot load channels from the database")?;
        if crate::cancel::requested(&ctx.cancel) {
            bail!("interrupted");
        }
        marks.annotate(&mut chunk);
        let (chunk, _) = rules.apply(chunk);
        alive.extend(chunk.iter().filter_map(|ch| deduper.alive_key(ch)));
    }
    Ok(alive)
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

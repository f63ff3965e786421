//! `lineup build`: take the lock, refresh the sources into the store, then build every
//! selected proxy, each independently (one failing does not stop the others), decide the exit
//! code, and leave a report and a line of run history.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, anyhow};

use crate::cli::BuildArgs;
use crate::config::{Config, EpgDef, ProxyDef, SourceDef};
use crate::exit::{Exit, Failure};
use crate::ingest::{self, Job, SourceOutcome};
use crate::lock::BuildLock;
use crate::pipeline::{self, BuildContext, ProxyReport};
use crate::report::{MemoryReport, Report};
use crate::store::Store;
use crate::{error, info};

/// What a build found out, whatever its outcome: the report's material.
#[derive(Default)]
struct Findings {
    sources: Vec<SourceOutcome>,
    proxies: Vec<ProxyReport>,
    /// What `--if-changed` compares; `None` for dry runs, which build nothing.
    fingerprint: Option<String>,
}

pub fn run(args: &BuildArgs, cancel: Arc<AtomicBool>) -> Result<Exit, Failure> {
    let started = Instant::now();
    let started_at = crate::store::now_ms();
    // A configuration error writes nothing at all, not even a report.
    let config = super::load_config(args.config.config.as_deref())?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| config.resolve(&config.file.settings.database));

    let budget = crate::memory::Budget::from_settings(
        args.memory_limit
            .or(config.file.settings.memory_limit.map(|m| m.0)),
    );
    crate::debug!(
        "memory: budget {}",
        crate::config::units::HumanBytes(budget.limit())
    );
    let mut findings = Findings::default();
    let result = build(args, &config, &db, &budget, cancel, &mut findings);
    let (exit, error) = match &result {
        Ok(exit) => (*exit, None),
        Err(f) => (f.exit, Some(crate::secrets::mask(&format!("{f}")))),
    };
    let findings_fingerprint = findings.fingerprint.take();
    let report = Report {
        version: env!("CARGO_PKG_VERSION"),
        started_at: crate::report::rfc3339(started_at),
        duration_ms: started.elapsed().as_millis() as u64,
        exit_code: exit.code(),
        error,
        sources: findings.sources,
        proxies: findings.proxies,
        memory: MemoryReport {
            budget_bytes: budget.limit(),
            peak_rss_bytes: crate::memory::budget::peak_rss(),
            spilled_bytes: budget
                .spilled_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
            spill_files: budget
                .spill_files
                .load(std::sync::atomic::Ordering::Relaxed),
            max_pressure: budget.max_pressure().as_str().into(),
        },
    };
    if exit != Exit::Locked {
        record_run(&db, findings_fingerprint.as_deref(), started_at, &report);
    }
    if let Some(target) = &args.report {
        report.write(target)?;
    }
    result
}

fn build(
    args: &BuildArgs,
    config: &Config,
    db: &std::path::Path,
    budget: &Arc<crate::memory::Budget>,
    cancel: Arc<AtomicBool>,
    findings: &mut Findings,
) -> Result<Exit, Failure> {
    let settings = &config.file.settings;
    let spill_dir = (!settings.spill_dir.is_empty()).then(|| config.resolve(&settings.spill_dir));
    let proxies = selected_proxies(config, &args.proxies)?;
    let output_dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| config.resolve(&settings.output_dir));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(settings.jobs))
        .build()
        .context("cannot start worker threads")?;

    let _lock = BuildLock::acquire(db, args.wait)?;
    let mut store = Store::open(db)?;
    store.sync_sources(
        config
            .file
            .sources
            .iter()
            .map(|s| (s.name.get_ref().0.as_str(), ingest::kind(s), s.active)),
    )?;

    // Every active source that a selected proxy reads, once, in first-use order; then every
    // active guide they use.
    let mut needed: Vec<&SourceDef> = Vec::new();
    let mut guides: Vec<&EpgDef> = Vec::new();
    for proxy in &proxies {
        for source in config.active_sources(proxy) {
            if !needed
                .iter()
                .any(|s| s.name.get_ref() == source.name.get_ref())
            {
                needed.push(source);
            }
        }
        for epg in proxy.epg.iter().filter_map(|n| config.epg(n.get_ref())) {
            if epg.active
                && !guides
                    .iter()
                    .any(|g| g.name.get_ref() == epg.name.get_ref())
            {
                guides.push(epg);
            }
        }
    }
    let jobs: Vec<Job<'_>> = needed
        .iter()
        .map(|s| Job::Stream(s))
        .chain(guides.iter().map(|g| Job::Guide(g)))
        .collect();
    let client = crate::fetch::Client::new(std::env::temp_dir());
    let refresh = ingest::Refresh {
        offline: args.offline,
        client: &client,
        deadline: Instant::now() + settings.fetch.total_timeout.0,
        cancel: &cancel,
    };
    findings.sources = match ingest::refresh(&mut store, config, &jobs, &refresh) {
        Ok(outcomes) => outcomes,
        Err(e) if e.is::<ingest::FailFast>() => {
            return Err(Failure::new(
                Exit::TooFewSources,
                e.context("previous outputs left untouched"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    // Guides do not count: a line-up needs channels.
    let usable = findings
        .sources
        .iter()
        .filter(|o| o.kind != "xmltv" && o.status.usable())
        .count();
    let min = settings.fetch.min_successful_sources;
    // A build that reads fewer sources than the minimum (say, all but one are inactive) needs
    // them all.
    if usable < min.min(needed.len()) {
        return Err(Failure::new(
            Exit::TooFewSources,
            anyhow!(
                "only {usable} of {} sources usable (min_successful_sources = {min}); previous outputs left untouched",
                needed.len()
            ),
        ));
    }

    let fingerprint = fingerprint(config, &proxies, &output_dir);
    findings.fingerprint = (!args.dry_run).then(|| fingerprint.clone());
    if args.if_changed && unchanged(&store, findings, &fingerprint, &proxies, &output_dir)? {
        println!("unchanged");
        info!("nothing changed since the last successful build; nothing written");
        // The playlists in place still show their channels: sticky numbers stay fresh.
        for proxy in proxies.iter().filter(|p| {
            p.numbering
                .as_ref()
                .is_some_and(|n| n.mode == crate::config::NumberingMode::Sticky)
        }) {
            crate::store::numbers::touch(&store.conn, &proxy.name.get_ref().0, build_clock())?;
        }
        return Ok(Exit::Success);
    }

    let ctx = BuildContext {
        config,
        db: db.to_path_buf(),
        output_dir,
        dry_run: args.dry_run,
        cancel: Arc::clone(&cancel),
        now: build_clock(),
        budget: Arc::clone(budget),
        source_items: findings
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.items))
            .collect(),
        spill: crate::memory::spill::SpillArea::new(
            spill_dir.as_deref(),
            None,
            Arc::clone(budget),
        )?,
    };
    let mut failed_proxies = 0;
    for proxy in &proxies {
        let name = &proxy.name.get_ref().0;
        match pool.install(|| pipeline::run_proxy(&ctx, proxy)) {
            Ok(report) => {
                summarize(&report, args.dry_run);
                findings.proxies.push(report);
            }
            Err(e) => {
                if crate::cancel::requested(&cancel) {
                    return Err(Failure::new(Exit::Runtime, anyhow!("interrupted")));
                }
                failed_proxies += 1;
                error!("proxy {name}: {e:#}");
            }
        }
    }
    if failed_proxies > 0 {
        return Err(Failure::new(
            Exit::Runtime,
            anyhow!("{failed_proxies} of {} proxies failed", proxies.len()),
        ));
    }
    Ok(if findings.sources.iter().any(|o| o.failed) {
        Exit::Degraded
    } else {
        Exit::Success
    })
}

/// The build's clock in UTC epoch seconds: now, or `$LINEUP_NOW` (epoch seconds) so that
/// tests and reproducible builds can pin the guide window.
fn build_clock() -> i64 {
    std::env::var("LINEUP_NOW")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| crate::store::now_ms() / 1000)
}

fn selected_proxies<'a>(
    config: &'a Config,
    wanted: &[String],
) -> Result<Vec<&'a ProxyDef>, Failure> {
    if wanted.is_empty() {
        return Ok(config.file.proxies.iter().collect());
    }
    wanted
        .iter()
        .map(|w| {
            config
                .file
                .proxies
                .iter()
                .find(|p| p.name.get_ref().0 == *w)
                .ok_or_else(|| {
                    Failure::new(
                        Exit::Usage,
                        anyhow!("no proxy named `{w}` in {}", config.path.display()),
                    )
                })
        })
        .collect()
}

fn summarize(report: &ProxyReport, dry_run: bool) {
    if dry_run {
        let removed: Vec<String> = report
            .filtered_by
            .iter()
            .map(|(name, n)| format!("{name}: {n}"))
            .collect();
        println!(
            "{}: {} in, {} after mapping ({} changed), {} after filters ({}), {} deduped, {} out",
            report.name,
            report.channels_in,
            report.channels_in,
            report.changed_by_mappings,
            report.channels_in - report.filtered_out,
            if removed.is_empty() {
                "none removed".to_string()
            } else {
                removed.join(", ")
            },
            report.deduped,
            report.channels_out
        );
        return;
    }
    for stage in &report.stages {
        info!(
            "proxy {}: {}: {} items, {:.1}s",
            report.name,
            stage.name,
            stage.items,
            stage.duration_ms as f64 / 1000.0
        );
    }
    if let Some(g) = &report.guide {
        info!(
            "proxy {}: guide: {} channels matched by id, {} by name, {} without guide; {} channels, {} programmes",
            report.name,
            g.matched_by_id,
            g.matched_by_name,
            g.unmatched,
            report.epg_channels,
            report.programmes
        );
        if !g.dropped.is_empty() {
            let dropped: Vec<String> = g.dropped.iter().map(|(k, n)| format!("{k} x{n}")).collect();
            info!(
                "proxy {}: guide: dropped what the XMLTV DTD does not declare: {}",
                report.name,
                dropped.join(", ")
            );
        }
    }
    for output in &report.outputs {
        info!(
            "proxy {}: {} -> {}",
            report.name,
            if output
                .path
                .extension()
                .is_some_and(|e| e == "m3u" || e == "m3u8")
            {
                format!("{} channels", report.channels_out)
            } else {
                "guide".to_string()
            },
            output.path.display()
        );
    }
}

/// What decides whether a build would write the same files: lineup's version, the
/// configuration text, the proxies selected and where outputs go. Source content is compared
/// separately (each source's stored content key).
fn fingerprint(config: &Config, proxies: &[&ProxyDef], output_dir: &std::path::Path) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.update(b"\0");
    hasher.update(config.text.as_bytes());
    for proxy in proxies {
        hasher.update(b"\0proxy:");
        hasher.update(proxy.name.get_ref().0.as_bytes());
    }
    hasher.update(b"\0out:");
    hasher.update(output_dir.as_os_str().as_encoded_bytes());
    crate::output::hex(&hasher.finalize())
}

/// `--if-changed`: nothing to do when every source came back unchanged, the last successful
/// build had the same fingerprint, and its outputs are still there.
fn unchanged(
    store: &Store,
    findings: &Findings,
    fingerprint: &str,
    proxies: &[&ProxyDef],
    output_dir: &std::path::Path,
) -> Result<bool, Failure> {
    use rusqlite::OptionalExtension;
    let sources_unchanged = findings
        .sources
        .iter()
        .all(|s| s.status == ingest::SourceStatus::NotModified);
    if !sources_unchanged {
        return Ok(false);
    }
    let last: Option<Option<String>> = store
        .conn
        .query_row(
            "SELECT config_sha256 FROM runs WHERE exit_code IN (0, 3) AND config_sha256 IS NOT NULL
             ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .context("cannot read the run history")?;
    if last.flatten().as_deref() != Some(fingerprint) {
        return Ok(false);
    }
    let outputs_exist = proxies.iter().all(|p| {
        output_dir.join(p.m3u.get_ref().as_str()).exists()
            && p.xmltv
                .as_ref()
                .is_none_or(|x| output_dir.join(x.get_ref().as_str()).exists())
    });
    Ok(outputs_exist)
}

/// Keep a line of run history in the database; a failure here never fails the build. The
/// `config_sha256` column holds the build's fingerprint (see [`fingerprint`]).
fn record_run(db: &std::path::Path, fingerprint: Option<&str>, started_at: i64, report: &Report) {
    if !db.exists() {
        return;
    }
    let summary = serde_json::to_string(report).unwrap_or_default();
    let result = Store::open(db).and_then(|store| {
        store
            .conn
            .execute(
                "INSERT INTO runs (started_at, duration_ms, exit_code, config_sha256, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    started_at,
                    report.duration_ms as i64,
                    report.exit_code,
                    fingerprint,
                    crate::secrets::mask(&summary)
                ],
            )
            .map_err(anyhow::Error::from)
    });
    if let Err(e) = result {
        crate::warn!("cannot record the run in the database: {e:#}");
    }
}

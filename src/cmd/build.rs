//! `lineup build`: take the lock, refresh the sources into the store, then build every
//! selected proxy, each independently (one failing does not stop the others), decide the exit
//! code, and leave a report and a line of run history.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, anyhow};

use super::if_changed;
use crate::cli::BuildArgs;
use crate::config::{Config, EpgDef, ProxyDef, SourceDef};
use crate::exit::{Exit, Failure};
use crate::ingest::guard::Shrunk;
use crate::ingest::{self, Job, SourceOutcome};
use crate::lock::BuildLock;
use crate::pipeline::{self, BuildContext, ProxyReport, ProxyStatus};
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
    // A configuration error writes nothing at all, not even a report file; with `--report -`
    // stdout still gets its one JSON document.
    let config = match super::load_config(args.config.config.as_deref()) {
        Ok(config) => config,
        Err(f) => {
            if report_to_stdout(args) {
                let budget = crate::memory::Budget::from_settings(args.memory_limit);
                let result = Err(f);
                let report =
                    make_report(started, started_at, &result, Findings::default(), &budget);
                report.write(std::path::Path::new("-"))?;
                return result;
            }
            return Err(f);
        }
    };
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
    let result = build(args, &config, &db, &budget, cancel, &mut findings).map_err(|mut f| {
        f.error = crate::store::file::name_file(f.error, &db);
        f
    });
    let findings_fingerprint = findings.fingerprint.take();
    let report = make_report(started, started_at, &result, findings, &budget);
    if result.as_ref().err().is_none_or(|f| f.exit != Exit::Locked) {
        record_run(&db, findings_fingerprint.as_deref(), started_at, &report);
    }
    if let Some(target) = &args.report {
        report.write(target)?;
    }
    result
}

/// Whether `--report -` asked for the report on stdout, which then carries nothing else.
fn report_to_stdout(args: &BuildArgs) -> bool {
    args.report.as_deref() == Some(std::path::Path::new("-"))
}

/// A line for the user: on stdout, or on stderr when stdout carries the JSON report.
fn say(args: &BuildArgs, line: &str) {
    if report_to_stdout(args) {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

fn make_report(
    started: Instant,
    started_at: i64,
    result: &Result<Exit, Failure>,
    findings: Findings,
    budget: &crate::memory::Budget,
) -> Report {
    let (exit, error) = match result {
        Ok(exit) => (*exit, None),
        Err(f) => (f.exit, Some(crate::secrets::mask(&format!("{f}")))),
    };
    Report {
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
    }
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
    check_accept_shrink(config, &args.accept_shrink)?;
    let output_dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| config.resolve(&settings.output_dir));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(settings.jobs))
        .build()
        .context("cannot start worker threads")?;

    let _lock = BuildLock::acquire(db, args.wait)?;
    let (mut store, set_aside) = Store::open_for_build(db)?;
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
    // Fetch spools go where spill files go; creating the area also removes what killed
    // builds left there.
    let spill =
        crate::memory::spill::SpillArea::new(spill_dir.as_deref(), None, Arc::clone(budget))?;
    let client = crate::fetch::Client::new(&spill.dir);
    let refresh = ingest::Refresh {
        offline: args.offline,
        client: &client,
        deadline: Instant::now() + settings.fetch.total_timeout.0,
        cancel: &cancel,
        accept_shrink: &args.accept_shrink,
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
    // Only data fresh from this build counts (fetched, or confirmed not modified): cached,
    // refused, skipped and disabled copies do not. Guides do not count: a line-up needs
    // channels. An `--offline` build fetches nothing on purpose: there, a copy in the
    // database counts.
    let fresh = findings
        .sources
        .iter()
        .filter(|o| o.kind != "xmltv")
        .filter(|o| match args.offline {
            true => o.status.usable(),
            false => o.status.fresh(),
        })
        .count();
    let min = settings.fetch.min_successful_sources;
    // A build that reads fewer sources than the minimum (say, all but one are inactive) needs
    // them all.
    if fresh < min.min(needed.len()) {
        return Err(Failure::new(
            Exit::TooFewSources,
            anyhow!(
                "only {fresh} of {} sources {} (min_successful_sources = {min}); previous outputs left untouched",
                needed.len(),
                if args.offline {
                    "in the database"
                } else {
                    "fresh in this build"
                }
            ),
        ));
    }

    // Probe the streams of proxies with `probe = true` (not on dry or offline runs: probing
    // is network traffic and takes up to the budget).
    let now = build_clock();
    let mut probes: std::collections::HashMap<String, crate::probe::ProbeReport> =
        Default::default();
    if !args.dry_run && !args.offline && proxies.iter().any(|p| p.probe) {
        let run = crate::probe::Run::new(config, now, Arc::clone(&cancel));
        match crate::probe::probe_proxies(
            &mut store,
            config,
            proxies.iter().copied().filter(|p| p.probe),
            &run,
        ) {
            Ok(reports) => probes.extend(reports),
            Err(_) if crate::cancel::requested(&cancel) => {
                return Err(Failure::new(Exit::Runtime, anyhow!("interrupted")));
            }
            Err(e) => return Err(e.context("probing streams").into()),
        }
    }

    findings.fingerprint = (!args.dry_run).then(|| fingerprint(config, &proxies, &output_dir));
    let mut states = Vec::with_capacity(proxies.len());
    for proxy in &proxies {
        states.push(if_changed::ProxyState::load(
            &store,
            config,
            proxy,
            &output_dir,
            now,
        )?);
    }
    // `--if-changed` decides per proxy: one whose outputs were written from exactly these
    // inputs, and are still in place, is left alone; the others are rebuilt.
    let mut todo: Vec<(&ProxyDef, if_changed::ProxyState)> = Vec::new();
    for (proxy, state) in proxies.iter().zip(states) {
        if args.if_changed && state.unchanged() {
            info!(
                "proxy {}: unchanged since its last write; left alone",
                proxy.name.get_ref().0
            );
            // Its playlist in place still shows its channels: sticky numbers stay fresh.
            if proxy
                .numbering
                .as_ref()
                .is_some_and(|n| n.mode == crate::config::NumberingMode::Sticky)
            {
                crate::store::numbers::touch(&store.conn, &proxy.name.get_ref().0, now)?;
            }
            findings.proxies.push(ProxyReport {
                name: proxy.name.get_ref().0.clone(),
                status: ProxyStatus::Unchanged,
                previous_channels: state.last.as_ref().map(|l| l.channels),
                channels_out: state.last.as_ref().map_or(0, |l| l.channels),
                ..Default::default()
            });
        } else {
            todo.push((proxy, state));
        }
    }
    if args.if_changed && todo.is_empty() {
        say(args, "unchanged");
        info!("nothing changed since the last successful build; nothing written");
        return Ok(degraded_or_success(findings, set_aside.is_some()));
    }

    let ctx = BuildContext {
        config,
        db: db.to_path_buf(),
        output_dir,
        dry_run: args.dry_run,
        cancel: Arc::clone(&cancel),
        now,
        budget: Arc::clone(budget),
        source_items: findings
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.items))
            .collect(),
        spill,
        output_guards: todo
            .iter()
            .map(|(p, state)| {
                let guard = state.guard(config, p, &args.accept_shrink);
                (p.name.get_ref().0.clone(), guard)
            })
            .collect(),
    };
    let mut failed_proxies = 0;
    for (proxy, state) in todo {
        let name = &proxy.name.get_ref().0;
        match pool.install(|| pipeline::run_proxy(&ctx, proxy)) {
            Ok(mut report) => {
                report.probe = probes.remove(name);
                summarize(&report, args);
                // Without this record the next `--if-changed` rebuilds the proxy: a failure
                // here costs a rebuild, never a skipped change, so it does not fail the build.
                if !args.dry_run
                    && let Err(e) = state.record(&store, name, &report.outputs, report.channels_out)
                {
                    let e = crate::store::file::name_file(e, db);
                    crate::warn!(
                        "proxy {name}: cannot record what its outputs were built from: {e:#}"
                    );
                }
                findings.proxies.push(report);
            }
            Err(e) => {
                if crate::cancel::requested(&cancel) {
                    return Err(Failure::new(Exit::Runtime, anyhow!("interrupted")));
                }
                let e = crate::store::file::name_file(e, db);
                let message = crate::secrets::mask(&format!("{e:#}"));
                error!("proxy {name}: {message}");
                let shrunk = e.downcast_ref::<Shrunk>();
                if shrunk.is_none() {
                    failed_proxies += 1;
                }
                findings.proxies.push(ProxyReport {
                    name: name.clone(),
                    status: ProxyStatus::Failed,
                    error: Some(message),
                    previous_channels: state.last.as_ref().map(|l| l.channels),
                    channels_out: shrunk.map_or(0, |s| s.new_items),
                    ..Default::default()
                });
            }
        }
    }
    if failed_proxies > 0 {
        return Err(Failure::new(
            Exit::Runtime,
            anyhow!("{failed_proxies} of {} proxies failed", proxies.len()),
        ));
    }
    Ok(degraded_or_success(findings, set_aside.is_some()))
}

/// Exit 3 when a source failed (its cached copy used, or refused by the shrink guard, or
/// skipped), a proxy's output was refused by the shrink guard, or the database was set aside
/// as corrupt (which took every cached copy with it); else 0.
fn degraded_or_success(findings: &Findings, db_set_aside: bool) -> Exit {
    let proxy_refused = findings
        .proxies
        .iter()
        .any(|p| p.status == ProxyStatus::Failed);
    if db_set_aside || proxy_refused || findings.sources.iter().any(|o| o.failed) {
        Exit::Degraded
    } else {
        Exit::Success
    }
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
        .map(|w| super::find_proxy(config, w))
        .collect()
}

/// Every `--accept-shrink` name must be a source, a guide or a proxy: a typo must not look
/// like an accepted copy.
fn check_accept_shrink(config: &Config, names: &[String]) -> Result<(), Failure> {
    let file = &config.file;
    for name in names {
        let known = file.sources.iter().any(|s| s.name.get_ref().0 == *name)
            || file.epgs.iter().any(|e| e.name.get_ref().0 == *name)
            || file.proxies.iter().any(|p| p.name.get_ref().0 == *name);
        if !known {
            return Err(Failure::new(
                Exit::Usage,
                anyhow!(
                    "--accept-shrink {name}: no source, guide or proxy of that name in {}",
                    config.path.display()
                ),
            ));
        }
    }
    Ok(())
}

fn summarize(report: &ProxyReport, args: &BuildArgs) {
    if args.dry_run {
        let removed: Vec<String> = report
            .filtered_by
            .iter()
            .map(|(name, n)| format!("{name}: {n}"))
            .collect();
        let line = format!(
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
        say(args, &line);
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
        if report.placeholder_channels > 0 {
            info!(
                "proxy {}: guide: {} channels given placeholder programmes",
                report.name, report.placeholder_channels
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
            } else if output.path.extension().is_some_and(|e| e == "json")
                || output.path.file_name().is_some_and(|n| n == "device.xml")
            {
                "HDHomeRun file".to_string()
            } else {
                "guide".to_string()
            },
            output.path.display()
        );
    }
}

/// The run history's fingerprint of the whole build: every selected proxy's, together.
fn fingerprint(config: &Config, proxies: &[&ProxyDef], output_dir: &std::path::Path) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for proxy in proxies {
        hasher.update(if_changed::fingerprint(config, proxy, output_dir).as_bytes());
    }
    crate::output::hex(&hasher.finalize())
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
        let e = crate::store::file::name_file(e, db);
        crate::warn!("cannot record the run in the database: {e:#}");
    }
}

//! `lineup build`: refresh the sources into the store, then build every selected proxy, each
//! independently (one failing does not stop the others), and decide the exit code.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context, anyhow};

use crate::cli::BuildArgs;
use crate::config::ProxyDef;
use crate::exit::{Exit, Failure};
use crate::ingest::{self, SourceOutcome};
use crate::pipeline::{self, BuildContext, ProxyReport};
use crate::store::Store;
use crate::{error, info};

pub fn run(args: &BuildArgs, cancel: Arc<AtomicBool>) -> Result<Exit, Failure> {
    let started = Instant::now();
    let started_at = crate::store::now_ms();
    let config = super::load_config(args.config.config.as_deref())?;
    let settings = &config.file.settings;

    let proxies: Vec<&ProxyDef> = if args.proxies.is_empty() {
        config.file.proxies.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for wanted in &args.proxies {
            let found = config
                .file
                .proxies
                .iter()
                .find(|p| p.name.get_ref().0 == *wanted)
                .ok_or_else(|| {
                    Failure::new(
                        Exit::Usage,
                        anyhow!("no proxy named `{wanted}` in {}", config.path.display()),
                    )
                })?;
            chosen.push(found);
        }
        chosen
    };

    let db = args
        .db
        .clone()
        .unwrap_or_else(|| config.resolve(&settings.database));
    let output_dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| config.resolve(&settings.output_dir));
    let jobs = args.jobs.unwrap_or(settings.jobs);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("cannot start worker threads")?;

    let mut store = Store::open(&db)?;
    store.sync_sources(
        config
            .file
            .sources
            .iter()
            .map(|s| (s.name.get_ref().0.as_str(), ingest::kind(s), s.active)),
    )?;

    // Every active source that a selected proxy reads, once, in first-use order.
    let mut needed = Vec::new();
    for proxy in &proxies {
        for source in config.active_sources(proxy) {
            if !needed
                .iter()
                .any(|s: &&crate::config::SourceDef| s.name.get_ref() == source.name.get_ref())
            {
                needed.push(source);
            }
        }
    }
    let outcomes = ingest::refresh(&mut store, &config, &needed, args.offline, &cancel)?;
    let usable = outcomes.iter().filter(|o| o.status.usable()).count();
    let min = settings.fetch.min_successful_sources;
    // A build that needs fewer sources than the minimum (say, every source but one is
    // inactive) needs them all.
    if usable < min.min(needed.len()) {
        return Err(Failure::new(
            Exit::TooFewSources,
            anyhow!(
                "only {usable} of {} sources usable (min_successful_sources = {min}); previous outputs left untouched",
                needed.len()
            ),
        ));
    }

    let ctx = BuildContext {
        config: &config,
        db: db.clone(),
        output_dir,
        dry_run: args.dry_run,
        cancel: Arc::clone(&cancel),
    };
    let mut reports = Vec::new();
    let mut failed_proxies = 0;
    for proxy in &proxies {
        let name = &proxy.name.get_ref().0;
        match pool.install(|| pipeline::run_proxy(&ctx, proxy)) {
            Ok(report) => {
                summarize(&report, args.dry_run);
                reports.push(report);
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

    let exit = if failed_proxies > 0 {
        Exit::Runtime
    } else if outcomes.iter().any(|o| o.failed) {
        Exit::Degraded
    } else {
        Exit::Success
    };
    record_run(
        &store, &config, started_at, started, exit, &outcomes, &reports,
    );
    if failed_proxies > 0 {
        return Err(Failure::new(
            Exit::Runtime,
            anyhow!("{failed_proxies} of {} proxies failed", proxies.len()),
        ));
    }
    Ok(exit)
}

fn summarize(report: &ProxyReport, dry_run: bool) {
    if dry_run {
        println!(
            "{}: {} in, {} filtered out, {} deduped, {} out",
            report.name,
            report.channels_in,
            report.filtered_out,
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
    for output in &report.outputs {
        info!(
            "proxy {}: {} channels -> {}",
            report.name,
            report.channels_out,
            output.path.display()
        );
    }
}

/// Keep a line of run history in the database; a failure here never fails the build.
fn record_run(
    store: &Store,
    config: &crate::config::Config,
    started_at: i64,
    started: Instant,
    exit: Exit,
    sources: &[SourceOutcome],
    proxies: &[ProxyReport],
) {
    use sha2::Digest;
    let config_sha = crate::output::hex(&sha2::Sha256::digest(config.text.as_bytes()));
    let summary = serde_json::json!({ "sources": sources, "proxies": proxies }).to_string();
    let result = store.conn.execute(
        "INSERT INTO runs (started_at, duration_ms, exit_code, config_sha256, summary) VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![
            started_at,
            started.elapsed().as_millis() as i64,
            exit.code(),
            config_sha,
            crate::secrets::mask(&summary)
        ],
    );
    if let Err(e) = result {
        crate::warn!("cannot record the run in the database: {e}");
    }
}

//! Stream probing (`probe = true` on a proxy, `[settings.probe]`, `lineup probe`): which of a
//! proxy's stream URLs play. `check.rs` probes one URL, `schedule.rs` runs probes within the
//! total and per-host connection caps and the time budget, `store.rs` keeps the results per
//! URL across builds (with the `dead_after` hysteresis) and hands them to the rules
//! (`stream_status`, `stream_checked_days`) and to dedupe.
//!
//! A run lists the proxy's streams (the channels of its active sources that its mappings and
//! filters keep when their streams are taken as alive, so that a filter dropping dead
//! channels does not stop them from being checked again; before dedupe, so that every
//! candidate of a key is known), then probes those that are due (never probed, alive for `recheck_alive`, failing for
//! `recheck_dead`), oldest result first, until none is left or the budget is spent; what is
//! left is due first next time.

pub mod check;
pub mod schedule;
pub mod store;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::{Config, ProbeSettings, ProxyDef};
use crate::store::Store;

pub use store::Marks;

/// A proxy's probing figures (the report's `proxies[].probe`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProbeReport {
    /// Streams probed by this run.
    pub probed: u64,
    /// The proxy's streams by status after this run.
    pub alive: u64,
    pub dead: u64,
    pub unknown: u64,
    pub not_probed: u64,
    /// Streams that were due but left for a later run (budget spent).
    pub left_over: u64,
    pub duration_ms: u64,
}

impl ProbeReport {
    /// The one-line summary for the log.
    pub fn summary(&self, proxy: &str) -> String {
        format!(
            "proxy {proxy}: probed {} streams in {:.1}s: {} alive, {} dead, {} unknown, {} not yet probed{}",
            self.probed,
            self.duration_ms as f64 / 1000.0,
            self.alive,
            self.dead,
            self.unknown,
            self.not_probed,
            if self.left_over > 0 {
                format!(
                    " ({} due, left for the next run: budget spent)",
                    self.left_over
                )
            } else {
                String::new()
            }
        )
    }
}

/// What one probing run needs.
pub struct Run<'a> {
    pub settings: &'a ProbeSettings,
    /// Sent when a channel names no user agent of its own.
    pub user_agent: &'a str,
    /// The build clock, Unix seconds.
    pub now: i64,
    /// When the run's budget is spent (shared by every proxy of the run).
    pub deadline: Instant,
    pub cancel: Arc<AtomicBool>,
}

impl<'a> Run<'a> {
    pub fn new(config: &'a Config, now: i64, cancel: Arc<AtomicBool>) -> Run<'a> {
        let settings = &config.file.settings.probe;
        Run {
            settings,
            user_agent: config.file.settings.fetch.user_agent.as_str(),
            now,
            deadline: Instant::now() + settings.budget.0,
            cancel,
        }
    }
}

/// List and probe one proxy's streams.
pub fn probe_proxy(
    store: &mut Store,
    config: &Config,
    proxy: &ProxyDef,
    run: &Run<'_>,
) -> Result<ProbeReport> {
    let started = Instant::now();
    let name = proxy.name.get_ref().0.as_str();
    list_proxy(store, config, proxy, run.now)
        .with_context(|| format!("cannot list the streams of proxy `{name}`"))?;
    let s = run.settings;
    let prober = check::Prober::new(run.user_agent, s.timeout.0);
    let pool = schedule::Pool::start(
        prober,
        s.concurrency,
        s.per_host,
        run.deadline,
        Arc::clone(&run.cancel),
    );
    let secs = |d: Duration| d.as_secs() as i64;
    let mut cursor = (i64::MIN, i64::MIN);
    let mut exhausted = false;
    let mut report = ProbeReport::default();
    let bar = crate::progress::ProbeBar::start(name);
    loop {
        if crate::cancel::requested(&run.cancel) {
            anyhow::bail!("interrupted");
        }
        if Instant::now() >= pool.deadline() {
            pool.stop();
        }
        if !exhausted && pool.queued() < schedule::LOW_WATER {
            let jobs = store::due(
                &store.conn,
                name,
                run.now,
                secs(s.recheck_alive.0),
                secs(s.recheck_dead.0),
                cursor,
                schedule::LOW_WATER * 2,
            )?;
            if let Some(last) = jobs.last() {
                cursor = (last.checked_at, last.id);
            }
            exhausted = jobs.len() < schedule::LOW_WATER * 2;
            bar.add(jobs.len() as u64);
            pool.push(jobs);
            if exhausted {
                pool.close();
            }
        }
        match pool.next(Duration::from_millis(100)) {
            Some((id, finding)) => {
                store::record(&store.conn, id, &finding, run.now, s.dead_after)?;
                report.probed += 1;
                bar.inc();
            }
            None if pool.finished() => {
                while let Some((id, finding)) = pool.next(Duration::ZERO) {
                    store::record(&store.conn, id, &finding, run.now, s.dead_after)?;
                    report.probed += 1;
                }
                break;
            }
            None => {}
        }
    }
    report.left_over = pool.left_over() as u64;
    if !exhausted {
        // Due rows not even loaded yet: count them for the report.
        report.left_over += store::count_due(
            &store.conn,
            name,
            run.now,
            (secs(s.recheck_alive.0), secs(s.recheck_dead.0)),
            cursor,
        )?;
    }
    let counts = store::counts(&store.conn, name)?;
    report.alive = counts.alive;
    report.dead = counts.dead;
    report.unknown = counts.unknown;
    report.not_probed = counts.not_probed;
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Record the streams the proxy lists now: the channels of its active sources that its rules
/// keep, either as if their streams were alive or with their stored status. Recorded by the
/// URL as the source wrote it (what `stream_status` is looked up by).
fn list_proxy(store: &mut Store, config: &Config, proxy: &ProxyDef, now: i64) -> Result<()> {
    let name = proxy.name.get_ref().0.as_str();
    let rules = crate::rules::ProxyRules::compile(config, proxy)
        .map_err(|errors| anyhow::anyhow!(crate::config::ConfigErrors(errors).to_string()))?;
    let marks = Marks::load(&store.conn, now)?;
    let kept = |ch: &crate::model::Channel| {
        if rules.is_empty() {
            return true;
        }
        let mut probe = ch.clone();
        probe.probe = crate::model::ProbeMark {
            status: "alive",
            checked_days: "0".into(),
        };
        if rules.apply_one(&mut probe).1 == crate::rules::Verdict::Keep {
            return true;
        }
        let mut stored = ch.clone();
        marks.annotate(std::slice::from_mut(&mut stored));
        rules.apply_one(&mut stored).1 == crate::rules::Verdict::Keep
    };
    let tx = store.conn.transaction()?;
    store::clear_listing(&tx, name)?;
    for source in config.active_sources(proxy) {
        let source = source.name.get_ref().0.as_str();
        let arc: Arc<str> = Arc::from(source);
        let mut after = None;
        loop {
            let page = crate::store::channels::read_page(&tx, source, &arc, after, 1000)?;
            store::list_streams(
                &tx,
                name,
                page.channels
                    .iter()
                    .filter(|c| kept(c))
                    .map(|c| (c.url.as_str(), c.directives.as_slice())),
            )?;
            match page.last_pos {
                Some(p) => after = Some(p),
                None => break,
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// A URL as shown to people: credentials masked (registered secrets, userinfo, and the
/// `user/password` path segments and query values Xtream-style panels put in stream URLs).
pub fn display_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b.to_string(), Some(q)),
        None => (url.to_string(), None),
    };
    let mut parts: Vec<String> = base.split('/').map(str::to_string).collect();
    // scheme: "" host ... : Xtream paths are /live/USER/PASS/ID.ext or /USER/PASS/ID.
    if parts.len() >= 6 && matches!(parts[3].as_str(), "live" | "movie" | "series" | "timeshift") {
        parts[4] = "***".into();
        parts[5] = "***".into();
    } else if parts.len() == 6
        && parts[5]
            .split('.')
            .next()
            .is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()))
    {
        parts[3] = "***".into();
        parts[4] = "***".into();
    }
    let mut out = parts.join("/");
    if let Some(q) = query {
        let q: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _))
                    if matches!(
                        k.to_ascii_lowercase().as_str(),
                        "username" | "password" | "user" | "pass" | "token"
                    ) =>
                {
                    format!("{k}=***")
                }
                _ => kv.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&q.join("&"));
    }
    crate::secrets::mask(&out)
}

/// Probe every selected proxy that has `probe = true` (or every selected one, for
/// `lineup probe`), one after another within the run's budget.
pub fn probe_proxies<'p>(
    store: &mut Store,
    config: &Config,
    proxies: impl Iterator<Item = &'p ProxyDef>,
    run: &Run<'_>,
) -> Result<Vec<(String, ProbeReport)>> {
    let mut out = Vec::new();
    for proxy in proxies {
        let report = probe_proxy(store, config, proxy, run)?;
        let name = proxy.name.get_ref().0.clone();
        crate::info!("{}", report.summary(&name));
        out.push((name, report));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            display_url("http://h:8080/live/pr0be-u/pr0be-p/12.ts"),
            "http://h:8080/live/***/***/12.ts"
        );
        assert_eq!(
            display_url("http://h:8080/pr0be-u/pr0be-p/12"),
            "http://h:8080/***/***/12"
        );
        // Other tests register secrets (such as `user`) in this process: check the values.
        let shown = display_url("http://h/get.php?username=a1b&password=c2d&x=1");
        assert!(!shown.contains("a1b") && !shown.contains("c2d"), "{shown}");
        assert!(shown.ends_with("&x=1"), "{shown}");
        assert_eq!(display_url("http://h/a/b.m3u8"), "http://h/a/b.m3u8");
    }
}

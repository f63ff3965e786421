//! `lineup probe [CONFIG] [--proxy NAME]`: probe stream URLs without building, for a separate
//! (slower, less frequent) timer. It takes the build lock, lists each proxy's streams from the
//! channels the last build stored, probes those that are due within the budget
//! (`--budget` or `settings.probe.budget`) and prints one summary line per proxy. The next
//! build reads the results (`stream_status`, dedupe's preference).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::anyhow;

use crate::cli::ProbeArgs;
use crate::config::ProxyDef;
use crate::exit::{Exit, Failure};
use crate::lock::BuildLock;
use crate::store::Store;

pub fn run(args: &ProbeArgs, cancel: Arc<AtomicBool>) -> Result<Exit, Failure> {
    let config = super::load_config(args.config.config.as_deref())?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| config.resolve(&config.file.settings.database));
    let proxies: Vec<&ProxyDef> = if args.proxies.is_empty() {
        config.file.proxies.iter().filter(|p| p.probe).collect()
    } else {
        args.proxies
            .iter()
            .map(|w| super::find_proxy(&config, w))
            .collect::<Result<_, _>>()?
    };
    if proxies.is_empty() {
        return Err(Failure::new(
            Exit::Usage,
            anyhow!(
                "no proxy to probe: set `probe = true` on a proxy in {} or name one with --proxy",
                config.path.display()
            ),
        ));
    }
    let _lock = BuildLock::acquire(&db, args.wait)?;
    let mut store = Store::open(&db)?;
    let now = std::env::var("LINEUP_NOW")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| crate::store::now_ms() / 1000);
    let mut run = crate::probe::Run::new(&config, now, Arc::clone(&cancel));
    if let Some(budget) = args.budget {
        run.deadline = Instant::now() + budget;
    }
    match crate::probe::probe_proxies(&mut store, &config, proxies.into_iter(), &run) {
        Ok(_) => Ok(Exit::Success),
        Err(_) if crate::cancel::requested(&cancel) => {
            Err(Failure::new(Exit::Runtime, anyhow!("interrupted")))
        }
        Err(e) => Err(e.context("probing streams").into()),
    }
}

//! `lineup build`'s memory of what each proxy was built from: the state recorded at every
//! successful write (`store/builds.rs`), what this build would build each proxy from, and the
//! `--if-changed` decision made against it, proxy by proxy.

use std::path::Path;

use anyhow::Result;

use crate::config::{Config, ProxyDef};
use crate::ingest::guard::Guard;
use crate::output::Written;
use crate::store::Store;
use crate::store::builds::{self, ProxyBuild};
use crate::store::health::{self, FetchKind};

const DAY: i64 = 86_400;

/// What decides whether a proxy would be written the same: lineup's version, the
/// configuration text, the proxy's name and where outputs go. Source content is compared
/// separately (each source's stored content key).
pub fn fingerprint(config: &Config, proxy: &ProxyDef, output_dir: &Path) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.update(b"\0");
    hasher.update(config.text.as_bytes());
    hasher.update(b"\0proxy:");
    hasher.update(proxy.name.get_ref().0.as_bytes());
    hasher.update(b"\0out:");
    hasher.update(output_dir.as_os_str().as_encoded_bytes());
    crate::output::hex(&hasher.finalize())
}

/// What this build would build `proxy` from (its outputs still to be filled in): the content
/// keys of the copies in the store, the fingerprint, and the first day (UTC day number) of its
/// guide window at `now` (UTC epoch seconds), when it writes a guide.
pub fn inputs(
    store: &Store,
    config: &Config,
    proxy: &ProxyDef,
    output_dir: &Path,
    now: i64,
) -> Result<ProxyBuild> {
    let mut inputs = Vec::new();
    for source in config.active_sources(proxy) {
        let name = &source.name.get_ref().0;
        let key = store
            .source_record(name)?
            .and_then(|r| r.content_sha256)
            .unwrap_or_default();
        inputs.push((format!("source:{name}"), key));
    }
    let guides: Vec<_> = proxy
        .epg
        .iter()
        .filter_map(|n| config.epg(n.get_ref()))
        .filter(|e| e.active)
        .collect();
    for epg in &guides {
        let name = &epg.name.get_ref().0;
        let key = health::content_hash(&store.conn, name, FetchKind::Xmltv)?.unwrap_or_default();
        inputs.push((format!("epg:{name}"), key));
    }
    // A proxy that probes its streams is written differently when a stream's status changes.
    if proxy.probe {
        let digest = crate::probe::store::status_digest(&store.conn)?;
        inputs.push(("streams".into(), format!("{digest:032x}")));
    }
    let past = i64::try_from(proxy.epg_days.past).unwrap_or(i64::MAX / DAY);
    let window_first_day = proxy
        .xmltv
        .as_ref()
        .map(|_| now.saturating_sub(past.saturating_mul(DAY)).div_euclid(DAY));
    Ok(ProxyBuild {
        config_sha256: fingerprint(config, proxy, output_dir),
        inputs,
        window_first_day,
        outputs: Vec::new(),
        channels: 0,
    })
}

/// How `proxy` stands against its last successful write.
pub struct ProxyState {
    pub now: ProxyBuild,
    pub last: Option<ProxyBuild>,
}

impl ProxyState {
    pub fn load(
        store: &Store,
        config: &Config,
        proxy: &ProxyDef,
        output_dir: &Path,
        now: i64,
    ) -> Result<ProxyState> {
        Ok(ProxyState {
            now: inputs(store, config, proxy, output_dir, now)?,
            last: builds::last(&store.conn, &proxy.name.get_ref().0)?,
        })
    }

    /// `--if-changed`: unchanged only when built from the same inputs and every output file is
    /// still there with the hash it was written with.
    pub fn unchanged(&self) -> bool {
        self.last
            .as_ref()
            .is_some_and(|last| last.same_inputs(&self.now) && last.outputs_intact())
    }

    /// The shrink guard on what the proxy writes. `--accept-shrink` naming the proxy, or one
    /// of its sources (whose shrunken copy is then taken on purpose), accepts it.
    pub fn guard(&self, config: &Config, proxy: &ProxyDef, accept: &[String]) -> Guard {
        let named = |name: &str| accept.iter().any(|a| a == name);
        Guard {
            previous: self.last.as_ref().map(|l| l.channels),
            max_shrink: proxy
                .max_shrink
                .unwrap_or(config.file.settings.fetch.max_shrink),
            accepted: named(&proxy.name.get_ref().0)
                || config
                    .active_sources(proxy)
                    .any(|s| named(&s.name.get_ref().0)),
        }
    }

    /// Record a successful write.
    pub fn record(
        mut self,
        store: &Store,
        proxy: &str,
        outputs: &[Written],
        channels: u64,
    ) -> Result<()> {
        self.now.outputs = outputs
            .iter()
            .map(|w| (w.path.display().to_string(), w.sha256.clone()))
            .collect();
        self.now.channels = channels;
        builds::record(&store.conn, proxy, &self.now, crate::store::now_ms())
    }
}

//! The run report of SPEC section 7 (`--report FILE|-`): one JSON object per build, written
//! whatever the outcome once the configuration has loaded. Its schema is
//! `docs/report.schema.json`; a test validates real reports against it.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::ingest::SourceOutcome;
use crate::pipeline::ProxyReport;

#[derive(Debug, Serialize)]
pub struct Report {
    pub version: &'static str,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_ms: u64,
    pub exit_code: u8,
    /// The error that ended the build, if one did (masked).
    pub error: Option<String>,
    pub sources: Vec<SourceOutcome>,
    pub proxies: Vec<ProxyReport>,
    pub memory: MemoryReport,
}

#[derive(Debug, Serialize, Default, Clone)]
pub struct MemoryReport {
    pub budget_bytes: u64,
    pub peak_rss_bytes: u64,
    pub spilled_bytes: u64,
    pub spill_files: u64,
    pub max_pressure: String,
}

impl Report {
    /// Write the report to `target` (`-` is stdout), atomically for files.
    pub fn write(&self, target: &Path) -> Result<()> {
        let mut json = serde_json::to_string_pretty(self).context("cannot serialise the report")?;
        json = crate::secrets::mask(&json);
        json.push('\n');
        if target == Path::new("-") {
            let mut out = std::io::stdout().lock();
            out.write_all(json.as_bytes())
                .context("cannot write the report")?;
            return Ok(());
        }
        let mut file = crate::output::AtomicFile::create(target)?;
        file.write_all(json.as_bytes())
            .with_context(|| format!("cannot write report {}", target.display()))?;
        file.commit()?;
        Ok(())
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC (`2026-11-22T08:30:00.123Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (y, m, d) = crate::guide::time::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_350_600_123), "2026-11-22T12:30:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}

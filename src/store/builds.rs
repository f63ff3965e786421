//! What each proxy's outputs were last built from: recorded at every successful write, read
//! by `--if-changed` (is this proxy unchanged?) and by the proxy output shrink guard (how many
//! channels did it last write?). A dry run, a failed or interrupted build writes no row, so
//! it can never make a later `--if-changed` skip.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// Appended to the store's migrations. Idempotent.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS proxy_builds (
    proxy            TEXT PRIMARY KEY,
    built_at         INTEGER NOT NULL,   -- Unix ms
    config_sha256    TEXT NOT NULL,      -- the build's configuration fingerprint
    inputs           TEXT NOT NULL,      -- JSON: [[name, content key]] of its sources, guides
    window_first_day INTEGER,            -- UTC day number; NULL without a guide
    outputs          TEXT NOT NULL,      -- JSON: [[path, sha256]] of the files written
    channels         INTEGER NOT NULL    -- channels in the playlist written
) WITHOUT ROWID;
";

/// What one proxy's outputs were built from, and what they were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyBuild {
    pub config_sha256: String,
    /// `(name, content key)` of every source and guide it read, in order; a source with no
    /// copy has an empty key.
    pub inputs: Vec<(String, String)>,
    pub window_first_day: Option<i64>,
    /// `(path, sha256)` of every file written.
    pub outputs: Vec<(String, String)>,
    pub channels: u64,
}

impl ProxyBuild {
    /// Whether `self` (the last write) was built from the same inputs as `now` would be.
    pub fn same_inputs(&self, now: &ProxyBuild) -> bool {
        self.config_sha256 == now.config_sha256
            && self.inputs == now.inputs
            && self.window_first_day == now.window_first_day
    }

    /// Whether every output file is still there with the hash it was written with.
    pub fn outputs_intact(&self) -> bool {
        !self.outputs.is_empty()
            && self.outputs.iter().all(|(path, sha)| {
                crate::output::sha256_file(std::path::Path::new(path))
                    .is_ok_and(|actual| actual == *sha)
            })
    }
}

/// The last successful write of `proxy`, if any.
pub fn last(conn: &Connection, proxy: &str) -> anyhow::Result<Option<ProxyBuild>> {
    let row: Option<(String, String, Option<i64>, String, i64)> = conn
        .query_row(
            "SELECT config_sha256, inputs, window_first_day, outputs, channels
             FROM proxy_builds WHERE proxy = ?1",
            [proxy],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((config_sha256, inputs, window_first_day, outputs, channels)) = row else {
        return Ok(None);
    };
    // A row this lineup cannot read is as good as none: the proxy is rebuilt.
    let (Ok(inputs), Ok(outputs)) = (
        serde_json::from_str(&inputs),
        serde_json::from_str(&outputs),
    ) else {
        return Ok(None);
    };
    Ok(Some(ProxyBuild {
        config_sha256,
        inputs,
        window_first_day,
        outputs,
        channels: channels.max(0) as u64,
    }))
}

/// Record a successful write of `proxy`.
pub fn record(conn: &Connection, proxy: &str, build: &ProxyBuild, now: i64) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO proxy_builds
             (proxy, built_at, config_sha256, inputs, window_first_day, outputs, channels)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (proxy) DO UPDATE SET built_at = excluded.built_at,
             config_sha256 = excluded.config_sha256, inputs = excluded.inputs,
             window_first_day = excluded.window_first_day, outputs = excluded.outputs,
             channels = excluded.channels",
        params![
            proxy,
            now,
            build.config_sha256,
            serde_json::to_string(&build.inputs)?,
            build.window_first_day,
            serde_json::to_string(&build.outputs)?,
            build.channels.min(i64::MAX as u64) as i64,
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_of_the_previous_schema_is_carried_forward() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("old.db");
        // The schema as it was before this table: every migration but the ones after it.
        {
            let mut conn = Connection::open(&db).unwrap();
            crate::store::schema::migrate_until(&mut conn, |sql| sql == SCHEMA).unwrap();
            conn.execute("INSERT INTO sources (name, kind) VALUES ('a', 'm3u')", [])
                .unwrap();
            let has: bool = conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'proxy_builds')",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(!has);
        }
        let store = crate::store::Store::open(&db).unwrap();
        assert!(store.source_record("a").unwrap().is_some());
        assert_eq!(last(&store.conn, "p").unwrap(), None);
        let build = ProxyBuild {
            config_sha256: "c".into(),
            inputs: vec![("a".into(), "k".into())],
            window_first_day: Some(20_000),
            outputs: vec![(dir.path().join("p.m3u").display().to_string(), "x".into())],
            channels: 3,
        };
        record(&store.conn, "p", &build, 1).unwrap();
        let back = last(&store.conn, "p").unwrap().unwrap();
        assert_eq!(back, build);
        assert!(back.same_inputs(&build));
        // The file is not there: not intact.
        assert!(!back.outputs_intact());
    }
}

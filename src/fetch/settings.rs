//! The fetch settings that apply to one source: `[settings.fetch]` with the source's own
//! overrides laid over it, resolved once so that the HTTP code never looks at the config again.

use std::time::Duration;

use crate::config::{Backoff, EpgDef, FetchOverrides, FetchSettings, SourceDef};

/// Exponential backoff between attempts: `base * 2^n`, capped at `max`, with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub base: Duration,
    pub max: Duration,
    pub jitter: bool,
}

impl From<&Backoff> for BackoffPolicy {
    fn from(b: &Backoff) -> Self {
        BackoffPolicy {
            base: b.base.0,
            max: b.max.0,
            jitter: b.jitter,
        }
    }
}

/// Everything one download of one source needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFetch {
    /// One attempt, from connecting to the last byte of the body.
    pub timeout: Duration,
    /// Retries after the first attempt (so `retries + 1` attempts at most).
    pub retries: u32,
    pub backoff: BackoffPolicy,
    /// Largest body accepted, in bytes (and again after decompression, by `parse::decode`).
    pub max_size: u64,
    pub user_agent: String,
    /// Extra request headers: the global ones, then the source's (which win on a clash).
    pub headers: Vec<(String, String)>,
}

impl SourceFetch {
    /// Lay a source's overrides over the global settings.
    pub fn resolve(global: &FetchSettings, o: &FetchOverrides) -> SourceFetch {
        let mut headers: Vec<(String, String)> = Vec::new();
        // Header names are case-insensitive: a source's `user-agent` replaces a global
        // `User-Agent` instead of sending both.
        for (k, v) in global.headers.iter().chain(o.headers.iter()) {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            headers.push((k.clone(), v.0.clone()));
        }
        SourceFetch {
            timeout: o.timeout.unwrap_or(global.timeout).0,
            retries: o.retries.unwrap_or(global.retries),
            backoff: BackoffPolicy::from(o.backoff.as_ref().unwrap_or(&global.backoff)),
            max_size: o.max_size.unwrap_or(global.max_size).0,
            user_agent: o
                .user_agent
                .as_ref()
                .unwrap_or(&global.user_agent)
                .0
                .clone(),
            headers,
        }
    }

    /// The settings of a `[[source]]`.
    pub fn for_source(global: &FetchSettings, s: &SourceDef) -> SourceFetch {
        Self::resolve(
            global,
            &FetchOverrides {
                timeout: s.timeout,
                retries: s.retries,
                backoff: s.backoff.clone(),
                max_size: s.max_size,
                user_agent: s.user_agent.clone(),
                headers: s.headers.clone(),
            },
        )
    }

    /// The settings of an `[[epg]]`.
    pub fn for_epg(global: &FetchSettings, e: &EpgDef) -> SourceFetch {
        Self::resolve(
            global,
            &FetchOverrides {
                timeout: e.timeout,
                retries: e.retries,
                backoff: e.backoff.clone(),
                max_size: e.max_size,
                user_agent: e.user_agent.clone(),
                headers: e.headers.clone(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::{DurationValue, EnvString, SizeValue};

    #[test]
    fn overrides_win_and_headers_merge() {
        let mut global = FetchSettings::default();
        global
            .headers
            .insert("X-Token".into(), EnvString("global".into()));
        global
            .headers
            .insert("Accept".into(), EnvString("*/*".into()));
        let mut o = FetchOverrides {
            timeout: Some(DurationValue(Duration::from_secs(5))),
            max_size: Some(SizeValue(1024)),
            ..FetchOverrides::default()
        };
        o.headers.insert("x-token".into(), EnvString("mine".into()));
        let s = SourceFetch::resolve(&global, &o);
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.max_size, 1024);
        assert_eq!(s.retries, global.retries);
        assert_eq!(s.backoff, BackoffPolicy::from(&global.backoff));
        assert_eq!(s.user_agent, global.user_agent.0);
        assert_eq!(
            s.headers,
            vec![
                ("Accept".to_string(), "*/*".to_string()),
                ("x-token".to_string(), "mine".to_string()),
            ]
        );
    }
}

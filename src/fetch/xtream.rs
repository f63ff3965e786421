//! Xtream Codes sources: check the account (`player_api.php`), download the live categories and
//! streams, and turn each stream into a [`Channel`] shaped like the provider's own `m3u_plus`
//! playlist would have it. The stream list is downloaded to a spool file first (with the usual
//! retries and limits) and read from there one stream at a time.
//!
//! Credentials sit in every URL built here; they are registered as secrets (also percent-encoded,
//! as they appear in URLs) before any request, so no error message can show them.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::error::{FetchError, FetchErrorKind};
use super::http::{Client, Download, FetchOutcome, Validators};
use super::retry::Control;
use super::settings::SourceFetch;
use super::xtream_json::{self, Flex, RawCategory, RawStream};
use crate::config::XtreamAccount;
use crate::model::Channel;

/// Why an Xtream source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum XtreamError {
    #[error("source `{name}`: Xtream {what}: {error}")]
    Fetch {
        name: String,
        what: &'static str,
        /// Attempts of every request of this source so far, the failed one included.
        attempts: u32,
        error: FetchError,
    },
    #[error("source `{name}`: Xtream login refused (wrong username or password?)")]
    AuthFailed { name: String, attempts: u32 },
    #[error("source `{name}`: Xtream account not usable: {detail}")]
    Expired {
        name: String,
        detail: String,
        attempts: u32,
    },
    #[error("source `{name}`: the Xtream {what} reply is not valid JSON ({detail})")]
    BadJson {
        name: String,
        what: &'static str,
        detail: String,
    },
    #[error("source `{name}`: reading the Xtream {what} reply: {error}")]
    Read {
        name: String,
        what: &'static str,
        error: io::Error,
    },
}

impl XtreamError {
    /// Requests tried before the failure (for the health table).
    pub fn attempts(&self) -> u32 {
        match self {
            XtreamError::Fetch { attempts, .. }
            | XtreamError::AuthFailed { attempts, .. }
            | XtreamError::Expired { attempts, .. } => *attempts,
            XtreamError::BadJson { .. } | XtreamError::Read { .. } => 0,
        }
    }

    /// The HTTP-level failure, when that is what it was.
    pub fn fetch_error(&self) -> Option<&FetchError> {
        match self {
            XtreamError::Fetch { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The message with every credential masked.
    pub fn masked(&self) -> String {
        crate::secrets::mask(&self.to_string())
    }
}

/// What `user_info` says about the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub status: String,
    /// Expiry, Unix seconds; `None` = never.
    pub exp_date: Option<i64>,
    pub max_connections: Option<i64>,
    pub active_connections: Option<i64>,
}

/// A downloaded Xtream line-up, not parsed yet.
#[derive(Debug)]
pub struct XtreamDownload {
    pub account: AccountInfo,
    /// category_id -> category_name.
    pub categories: HashMap<String, String>,
    /// The raw `get_live_streams` reply.
    pub streams: Download,
    /// Hash over categories and streams: the content changed when this did.
    pub content_sha256: String,
    /// Requests tried, over the three calls.
    pub attempts: u32,
    /// Bytes received, over the three calls.
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Counts from turning the streams into channels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounts {
    pub channels: u64,
    /// Elements without a `stream_id` or that were not objects.
    pub skipped: u64,
}

/// The XMLTV guide of an account (`[[epg]] xtream = "NAME"`).
pub fn guide_url(account: &XtreamAccount) -> String {
    register(account);
    format!(
        "{}/xmltv.php?{}",
        server(account),
        credentials_query(account)
    )
}

/// `player_api.php` with the credentials and an optional `action`.
pub fn api_url(account: &XtreamAccount, action: Option<&str>) -> String {
    let mut url = format!(
        "{}/player_api.php?{}",
        server(account),
        credentials_query(account)
    );
    if let Some(action) = action {
        url.push_str("&action=");
        url.push_str(action);
    }
    url
}

/// The playable URL of a live stream.
pub fn stream_url(account: &XtreamAccount, stream_id: &str) -> String {
    format!(
        "{}/live/{}/{}/{}.{}",
        server(account),
        encode(&account.username),
        encode(&account.password),
        encode(stream_id),
        account.output
    )
}

/// Check the account, then download categories and streams. The `name` is the source's, for
/// messages.
pub fn download_live(
    client: &Client,
    name: &str,
    account: &XtreamAccount,
    cfg: &SourceFetch,
    ctl: &Control<'_>,
) -> Result<XtreamDownload, XtreamError> {
    register(account);
    let started = Instant::now();
    let mut total = Totals::default();

    let info = get(
        client,
        name,
        "account check",
        &api_url(account, None),
        cfg,
        ctl,
        &mut total,
    )?;
    let value: serde_json::Value = read_json(name, "account check", &info, cfg.max_size)?;
    let account_info = check_account(name, &value, unix_now(), total.attempts)?;

    let cats = get(
        client,
        name,
        "categories",
        &api_url(account, Some("get_live_categories")),
        cfg,
        ctl,
        &mut total,
    )?;
    let categories = read_categories(name, &cats, cfg.max_size)?;

    let streams = get(
        client,
        name,
        "streams",
        &api_url(account, Some("get_live_streams")),
        cfg,
        ctl,
        &mut total,
    )?;
    let mut hasher = Sha256::new();
    hasher.update(cats.sha256.as_bytes());
    hasher.update(streams.sha256.as_bytes());
    Ok(XtreamDownload {
        account: account_info,
        categories,
        content_sha256: crate::output::hex(&hasher.finalize()),
        streams,
        attempts: total.attempts,
        bytes: total.bytes,
        elapsed: started.elapsed(),
    })
}

impl XtreamDownload {
    /// Read the streams one at a time and hand each channel to `f`, which may stop early with
    /// `ControlFlow::Break`.
    pub fn channels(
        &self,
        source: Arc<str>,
        account: &XtreamAccount,
        max_size: u64,
        mut f: impl FnMut(Channel) -> ControlFlow<()>,
    ) -> Result<StreamCounts, XtreamError> {
        let what = "streams";
        let reader = crate::parse::decode::open(self.streams.spool.path(), max_size)
            .map_err(|error| read_error(&source, what, error))?;
        let mut de = serde_json::Deserializer::from_reader(reader);
        let mut counts = StreamCounts::default();
        let result = xtream_json::for_each(&mut de, |raw: RawStream| {
            match to_channel(&raw, &source, account, &self.categories) {
                Some(ch) => {
                    counts.channels += 1;
                    f(ch)
                }
                None => {
                    counts.skipped += 1;
                    ControlFlow::Continue(())
                }
            }
        });
        let (_, not_objects) = result.map_err(|e| json_error(&source, what, e))?;
        counts.skipped += not_objects;
        Ok(counts)
    }
}

/// A stream as a channel: the attributes of the provider's `m3u_plus`, plus `tvg-chno` from
/// `num` and `catchup="xc"` with `catchup-days` for streams with an archive.
fn to_channel(
    raw: &RawStream,
    source: &Arc<str>,
    account: &XtreamAccount,
    categories: &HashMap<String, String>,
) -> Option<Channel> {
    let id = raw.stream_id.as_str();
    if id.is_empty() {
        return None;
    }
    let category = std::iter::once(&raw.category_id)
        .chain(raw.category_ids.0.iter())
        .find_map(|c| categories.get(c.as_str()))
        .cloned()
        .unwrap_or_default();
    let text = |f: &Flex| f.0.clone().unwrap_or_default();
    let mut attrs = vec![
        ("tvg-id".to_string(), text(&raw.epg_channel_id)),
        ("tvg-name".to_string(), text(&raw.name)),
        ("tvg-logo".to_string(), text(&raw.stream_icon)),
    ];
    if !raw.num.as_str().is_empty() {
        attrs.push(("tvg-chno".to_string(), raw.num.as_str().to_string()));
    }
    attrs.push(("group-title".to_string(), category));
    if raw.tv_archive.is_true() {
        attrs.push(("catchup".to_string(), "xc".to_string()));
        let days = raw.tv_archive_duration.as_i64().unwrap_or(0);
        if days > 0 {
            attrs.push(("catchup-days".to_string(), days.to_string()));
        }
    }
    Some(Channel {
        source: source.clone(),
        duration: "-1".to_string(),
        attrs,
        name: text(&raw.name),
        directives: Vec::new(),
        url: stream_url(account, id),
        extgrp: String::new(),
        extinf: String::new(),
    })
}

/// Decide on `user_info`. Panels answer bad credentials in several ways: `auth: 0`, an empty
/// array, no `user_info` at all.
fn check_account(
    name: &str,
    reply: &serde_json::Value,
    now: i64,
    attempts: u32,
) -> Result<AccountInfo, XtreamError> {
    let auth_failed = || XtreamError::AuthFailed {
        name: name.to_string(),
        attempts,
    };
    let Some(user) = reply.get("user_info").filter(|u| u.is_object()) else {
        return Err(auth_failed());
    };
    let field = |key: &str| -> Flex {
        serde_json::from_value(user.get(key).cloned().unwrap_or_default()).unwrap_or_default()
    };
    // `auth` is the verdict; a few old panels leave it out, and then a `status` is needed.
    let auth = field("auth");
    let refused = match auth.0 {
        Some(_) => !auth.is_true(),
        None => field("status").as_str().is_empty(),
    };
    if refused {
        return Err(auth_failed());
    }
    let info = AccountInfo {
        status: field("status").as_str().to_string(),
        // 0 and null both mean "no expiry" on the panels seen.
        exp_date: field("exp_date").as_i64().filter(|&t| t > 0),
        max_connections: field("max_connections").as_i64(),
        active_connections: field("active_cons").as_i64(),
    };
    let expired = |detail: String| XtreamError::Expired {
        name: name.to_string(),
        detail,
        attempts,
    };
    if !info.status.is_empty() && !info.status.eq_ignore_ascii_case("active") {
        return Err(expired(format!("status is `{}`", info.status)));
    }
    if let Some(exp) = info.exp_date
        && exp < now
    {
        return Err(expired(format!("expired on {}", utc_date(exp))));
    }
    Ok(info)
}

fn read_categories(
    name: &str,
    download: &Download,
    max_size: u64,
) -> Result<HashMap<String, String>, XtreamError> {
    let what = "categories";
    let reader = crate::parse::decode::open(download.spool.path(), max_size)
        .map_err(|error| read_error(name, what, error))?;
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut map = HashMap::new();
    xtream_json::for_each(&mut de, |c: RawCategory| {
        map.insert(
            c.category_id.as_str().to_string(),
            c.category_name.as_str().to_string(),
        );
        ControlFlow::Continue(())
    })
    .and_then(|_| de.end())
    .map_err(|e| json_error(name, what, e))?;
    Ok(map)
}

fn read_json<T: serde::de::DeserializeOwned>(
    name: &str,
    what: &'static str,
    download: &Download,
    max_size: u64,
) -> Result<T, XtreamError> {
    let file = File::open(download.spool.path()).map_err(|error| read_error(name, what, error))?;
    let reader = crate::parse::decode::decode(BufReader::new(file), max_size)
        .map_err(|error| read_error(name, what, error))?;
    serde_json::from_reader(reader).map_err(|e| json_error(name, what, e))
}

fn json_error(name: &str, what: &'static str, e: serde_json::Error) -> XtreamError {
    // An I/O error inside serde_json (the max_size limit) is not a JSON problem.
    if e.is_io() {
        return read_error(name, what, io::Error::other(e.to_string()));
    }
    XtreamError::BadJson {
        name: name.to_string(),
        what,
        detail: e.to_string(),
    }
}

fn read_error(name: &str, what: &'static str, error: io::Error) -> XtreamError {
    XtreamError::Read {
        name: name.to_string(),
        what,
        error,
    }
}

#[derive(Default)]
struct Totals {
    attempts: u32,
    bytes: u64,
}

/// One API call. A 304 cannot happen (no validators are sent); 401/403 are a refused login.
fn get(
    client: &Client,
    name: &str,
    what: &'static str,
    url: &str,
    cfg: &SourceFetch,
    ctl: &Control<'_>,
    total: &mut Totals,
) -> Result<Download, XtreamError> {
    match client.fetch(url, cfg, &Validators::default(), ctl) {
        Ok(FetchOutcome::Fetched(d)) => {
            total.attempts += d.attempts;
            total.bytes += d.bytes;
            Ok(d)
        }
        Ok(FetchOutcome::NotModified { attempts, .. }) => {
            total.attempts += attempts;
            Err(XtreamError::Fetch {
                name: name.to_string(),
                what,
                attempts: total.attempts,
                error: FetchError::new(FetchErrorKind::Status(304), "unexpected 304"),
            })
        }
        Err(error) => {
            total.attempts += error.attempts;
            if matches!(error.kind, FetchErrorKind::Status(401 | 403)) {
                return Err(XtreamError::AuthFailed {
                    name: name.to_string(),
                    attempts: total.attempts,
                });
            }
            Err(XtreamError::Fetch {
                name: name.to_string(),
                what,
                attempts: total.attempts,
                error,
            })
        }
    }
}

fn register(account: &XtreamAccount) {
    for secret in [&account.username.0, &account.password.0] {
        crate::secrets::register(secret);
        crate::secrets::register(&encode(secret));
    }
}

fn server(account: &XtreamAccount) -> &str {
    account.server.trim_end_matches('/')
}

fn credentials_query(account: &XtreamAccount) -> String {
    format!(
        "username={}&password={}",
        encode(&account.username),
        encode(&account.password)
    )
}

/// Percent-encode everything but RFC 3986 unreserved characters: safe in a path segment and
/// in a query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `YYYY-MM-DD` (UTC) of a Unix time, for messages.
fn utc_date(secs: i64) -> String {
    let (year, month, day) = crate::guide::time::civil_from_days(secs.div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
#[path = "xtream_tests.rs"]
mod tests;

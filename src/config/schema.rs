//! The TOML schema of SPEC section 2, as typed structs with their defaults. Unknown keys are
//! errors everywhere (`deny_unknown_fields`). Cross-references (a proxy naming a source) are
//! checked in `validate.rs`, with the spans kept here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::values::{DurationValue, EnvString, FileMode, Name, Percent, ShiftValue, SizeValue};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub settings: Settings,
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceDef>,
    #[serde(default, rename = "epg")]
    pub epgs: Vec<EpgDef>,
    #[serde(default, rename = "filter")]
    pub filters: Vec<FilterDef>,
    #[serde(default, rename = "mapping")]
    pub mappings: Vec<MappingDef>,
    #[serde(default, rename = "proxy")]
    pub proxies: Vec<ProxyDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub database: EnvString,
    pub output_dir: EnvString,
    pub memory_limit: Option<SizeValue>,
    pub spill_dir: EnvString,
    pub jobs: usize,
    pub buffer: BufferSettings,
    pub fetch: FetchSettings,
    pub health: HealthSettings,
    pub probe: ProbeSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database: EnvString("lineup.db".into()),
            output_dir: EnvString("out".into()),
            memory_limit: None,
            spill_dir: EnvString::default(),
            jobs: 0,
            buffer: BufferSettings::default(),
            fetch: FetchSettings::default(),
            health: HealthSettings::default(),
            probe: ProbeSettings::default(),
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct BufferSettings {
    pub buffer_size: usize,
    pub trigger_threshold: f64,
    pub chunk_size: usize,
    pub max_concurrent_sources: usize,
}

impl Default for BufferSettings {
    fn default() -> Self {
        BufferSettings {
            buffer_size: 1000,
            trigger_threshold: 0.5,
            chunk_size: 100,
            max_concurrent_sources: 2,
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct Backoff {
    pub base: DurationValue,
    pub max: DurationValue,
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: DurationValue(Duration::from_secs(1)),
            max: DurationValue(Duration::from_secs(10)),
            jitter: true,
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct FetchSettings {
    pub timeout: DurationValue,
    pub total_timeout: DurationValue,
    pub retries: u32,
    pub backoff: Backoff,
    pub max_size: SizeValue,
    pub user_agent: EnvString,
    pub headers: BTreeMap<String, EnvString>,
    pub min_successful_sources: usize,
    pub fail_fast: bool,
    /// The shrink guard: a fresh copy with fewer items than `(1 - max_shrink)` x the last good
    /// copy's is refused. `"100%"` turns it off.
    pub max_shrink: Percent,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            timeout: DurationValue(Duration::from_secs(30)),
            total_timeout: DurationValue(Duration::from_secs(600)),
            retries: 3,
            backoff: Backoff::default(),
            max_size: SizeValue(2 << 30),
            user_agent: EnvString(format!("lineup/{}", env!("CARGO_PKG_VERSION"))),
            headers: BTreeMap::new(),
            min_successful_sources: 1,
            fail_fast: false,
            max_shrink: Percent(50.0),
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSettings {
    pub disable_after: u32,
    pub reprobe_after: DurationValue,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            disable_after: 5,
            reprobe_after: DurationValue(Duration::from_secs(6 * 3600)),
        }
    }
}

/// `[settings.probe]`: stream probing of proxies with `probe = true` (see `crate::probe`).
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSettings {
    /// One probe, connect to last byte read (HLS: playlist, variant and segment together).
    pub timeout: DurationValue,
    /// Probes in flight at once, over all hosts.
    pub concurrency: usize,
    /// Open connections to one host at once: providers cap connections per account.
    pub per_host: usize,
    /// Probe an alive stream again after this long.
    pub recheck_alive: DurationValue,
    /// Probe a dead (or failing) stream again after this long.
    pub recheck_dead: DurationValue,
    /// Consecutive failed probes (over separate builds) before a stream counts as dead.
    pub dead_after: u32,
    /// Time one build (or `lineup probe`) may spend probing; the rest waits for the next one.
    pub budget: DurationValue,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            timeout: DurationValue(Duration::from_secs(10)),
            concurrency: 8,
            per_host: 1,
            recheck_alive: DurationValue(Duration::from_secs(7 * 86_400)),
            recheck_dead: DurationValue(Duration::from_secs(12 * 3600)),
            dead_after: 2,
            budget: DurationValue(Duration::from_secs(120)),
        }
    }
}

/// Per-source overrides of `[settings.fetch]`.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct FetchOverrides {
    pub timeout: Option<DurationValue>,
    pub retries: Option<u32>,
    pub backoff: Option<Backoff>,
    pub max_size: Option<SizeValue>,
    pub user_agent: Option<EnvString>,
    #[serde(default)]
    pub headers: BTreeMap<String, EnvString>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct XtreamAccount {
    pub server: EnvString,
    pub username: EnvString,
    pub password: EnvString,
    /// Stream container in the URLs: `ts` (default) or `m3u8`.
    #[serde(default = "default_xtream_output")]
    pub output: String,
}

fn default_xtream_output() -> String {
    "ts".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    pub name: Spanned<Name>,
    pub m3u: Option<Spanned<EnvString>>,
    pub xtream: Option<Spanned<XtreamAccount>>,
    #[serde(default = "yes")]
    pub active: bool,
    // Overrides of [settings.fetch], written directly in the source table.
    pub timeout: Option<DurationValue>,
    pub retries: Option<u32>,
    pub backoff: Option<Backoff>,
    pub max_size: Option<SizeValue>,
    pub user_agent: Option<EnvString>,
    #[serde(default)]
    pub headers: BTreeMap<String, EnvString>,
    /// Overrides `[settings.fetch] max_shrink` for this source.
    pub max_shrink: Option<Percent>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct EpgDef {
    pub name: Spanned<Name>,
    pub xmltv: Option<Spanned<EnvString>>,
    /// The guide of an Xtream `[[source]]`, by name.
    pub xtream: Option<Spanned<Name>>,
    #[serde(default)]
    pub shift: ShiftValue,
    #[serde(default = "yes")]
    pub active: bool,
    pub timeout: Option<DurationValue>,
    pub retries: Option<u32>,
    pub backoff: Option<Backoff>,
    pub max_size: Option<SizeValue>,
    pub user_agent: Option<EnvString>,
    #[serde(default)]
    pub headers: BTreeMap<String, EnvString>,
    /// Overrides `[settings.fetch] max_shrink` for this guide (counted in programmes).
    pub max_shrink: Option<Percent>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FilterDef {
    pub name: Spanned<Name>,
    pub include: Option<Spanned<String>>,
    pub exclude: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct MappingDef {
    pub name: Spanned<Name>,
    pub when: Option<Spanned<String>>,
    #[serde(default)]
    pub set: BTreeMap<Spanned<String>, Spanned<EnvString>>,
    #[serde(default)]
    pub default: BTreeMap<Spanned<String>, Spanned<EnvString>>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Dedupe {
    #[default]
    None,
    StreamUrl,
    TvgId,
    ChannelName,
}

/// `sort = "source"` or `sort = ["group_title", "channel_name"]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Source,
    /// The final channel number (`tvg-chno` after numbering), ascending.
    Number,
    Fields(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for Sort {
    // A visitor rather than an untagged enum: untagged enums buffer their input, and buffered
    // values lose the spans that `Spanned` fields need.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SortVisitor;
        impl<'de> serde::de::Visitor<'de> for SortVisitor {
            type Value = Sort;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"source\", \"number\" or a list of fields")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Sort, E> {
                match s {
                    "source" => Ok(Sort::Source),
                    "number" => Ok(Sort::Number),
                    _ => Err(E::custom(format!(
                        "invalid sort `{s}`: expected \"source\", \"number\" or a list of fields"
                    ))),
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Sort, A::Error> {
                let mut fields = Vec::new();
                while let Some(field) = seq.next_element::<Spanned<String>>()? {
                    fields.push(field);
                }
                if fields.is_empty() {
                    return Err(serde::de::Error::custom(
                        "sort list is empty: use \"source\" or name at least one field",
                    ));
                }
                Ok(Sort::Fields(fields))
            }
        }
        deserializer.deserialize_any(SortVisitor)
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum NumberingMode {
    #[default]
    Sequential,
    Preserve,
    /// Numbers kept per channel identity across builds (`pipeline/number.rs`).
    Sticky,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Numbering {
    #[serde(default = "one")]
    pub start: u64,
    #[serde(default)]
    pub mode: NumberingMode,
    #[serde(default)]
    pub groups: BTreeMap<String, u64>,
    /// With `sticky`: what identifies a channel, a field or a list of fields tried in order;
    /// an entry may join fields with `+` (`"channel_name+group_title"`).
    pub key: Option<NumberingKey>,
    /// With `sticky`: a new channel takes its own `tvg-chno` when it is free (default true).
    pub prefer_own: Option<bool>,
    /// With `sticky`: how long an identity keeps its number after it was last seen (default
    /// 30 days).
    pub forget_after: Option<super::values::DurationValue>,
}

impl Numbering {
    pub fn prefer_own(&self) -> bool {
        self.prefer_own.unwrap_or(true)
    }

    pub fn forget_after(&self) -> std::time::Duration {
        self.forget_after
            .map_or(std::time::Duration::from_secs(30 * 86_400), |d| d.0)
    }

    /// The keys that only `sticky` reads, when set with another mode.
    pub fn sticky_only_keys(&self) -> Vec<&'static str> {
        if self.mode == NumberingMode::Sticky {
            return Vec::new();
        }
        [
            ("key", self.key.is_some()),
            ("prefer_own", self.prefer_own.is_some()),
            ("forget_after", self.forget_after.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    }
}

/// `key = "tvg_id"` or `key = ["tvg_id", "channel_name+group_title"]`.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum NumberingKey {
    One(String),
    List(Vec<String>),
}

impl NumberingKey {
    pub fn entries(&self) -> Vec<String> {
        match self {
            NumberingKey::One(s) => vec![s.clone()],
            NumberingKey::List(l) => l.clone(),
        }
    }
}

fn one() -> u64 {
    1
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct EpgDays {
    #[serde(default = "one")]
    pub past: u64,
    #[serde(default = "seven")]
    pub future: u64,
}

fn seven() -> u64 {
    7
}

impl Default for EpgDays {
    fn default() -> Self {
        EpgDays { past: 1, future: 7 }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum EpgMatch {
    Id,
    #[default]
    IdThenName,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Logos {
    #[serde(default)]
    pub prefetch: bool,
    #[serde(default = "default_logo_dir")]
    pub dir: EnvString,
    pub base_url: Option<EnvString>,
    /// A channel without `tvg-logo` takes its guide channel's `<icon>`.
    #[serde(default)]
    pub from_guide: bool,
}

/// `hdhr = { dir, base_url, friendly_name, tuners }`: HDHomeRun-compatible files (the
/// `discover.json` family) for Plex, Jellyfin and Emby, served by the user's web server.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Hdhr {
    /// Directory of the four files, relative to `output_dir`.
    #[serde(default = "default_hdhr_dir")]
    pub dir: EnvString,
    /// Where the web server serves `dir`, as players reach it (`http://nas:8080/hdhr`).
    pub base_url: Spanned<EnvString>,
    /// The tuner's name in the player; default `lineup PROXY`.
    pub friendly_name: Option<String>,
    /// Concurrent streams the player may open.
    #[serde(default = "two")]
    pub tuners: Spanned<u32>,
}

fn default_hdhr_dir() -> EnvString {
    EnvString("hdhr".into())
}

fn two() -> Spanned<u32> {
    Spanned::new(0..0, 2)
}

/// `epg_placeholder = { block, title }`: guide data for channels that have none.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct EpgPlaceholder {
    /// Length of each programme block, aligned to multiples of it in UTC.
    #[serde(default = "one_hour")]
    pub block: Spanned<DurationValue>,
    /// Programme title template: `{channel_name}`, `{tvg_id}`, `{group_title}`.
    #[serde(default = "default_placeholder_title")]
    pub title: String,
}

fn one_hour() -> Spanned<DurationValue> {
    Spanned::new(0..0, DurationValue(Duration::from_secs(3600)))
}

fn default_placeholder_title() -> String {
    "{channel_name}".into()
}

/// The undeclared XMLTV items kept by default: Kodi's catch-up reads `programme@catchup-id`.
pub fn default_xmltv_keep() -> Vec<String> {
    vec!["catchup-id".into()]
}

fn default_logo_dir() -> EnvString {
    EnvString("logos".into())
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ProxyDef {
    pub name: Spanned<Name>,
    pub sources: Spanned<Vec<Spanned<Name>>>,
    #[serde(default)]
    pub epg: Vec<Spanned<Name>>,
    #[serde(default)]
    pub filters: Vec<Spanned<Name>>,
    #[serde(default)]
    pub mappings: Vec<Spanned<Name>>,
    #[serde(default)]
    pub dedupe: Dedupe,
    #[serde(default)]
    pub sort: Sort,
    pub numbering: Option<Numbering>,
    pub m3u: Spanned<EnvString>,
    pub xmltv: Option<Spanned<EnvString>>,
    pub epg_url: Option<EnvString>,
    #[serde(default)]
    pub epg_days: EpgDays,
    #[serde(default)]
    pub epg_match: EpgMatch,
    pub logos: Option<Logos>,
    /// Keep XMLTV elements and attributes the DTD does not declare (output is then not
    /// DTD-valid).
    #[serde(default)]
    pub xmltv_keep_unknown: bool,
    /// Probe this proxy's stream URLs during builds (`[settings.probe]`).
    #[serde(default)]
    pub probe: bool,
    /// Undeclared XMLTV attributes and elements kept by name (the rest are dropped).
    #[serde(default = "default_xmltv_keep")]
    pub xmltv_keep: Vec<String>,
    /// Placeholder guide data for playlist channels without any (off when absent).
    pub epg_placeholder: Option<EpgPlaceholder>,
    /// HDHomeRun-compatible files beside the playlist (off when absent).
    pub hdhr: Option<Hdhr>,
    /// Mode of the written files; default 0600 when the playlist carries credentials, else
    /// 0644.
    pub file_mode: Option<FileMode>,
    /// Overrides `[settings.fetch] max_shrink` for what this proxy writes (its playlist's
    /// channels against what it last wrote).
    pub max_shrink: Option<Percent>,
}

//! One playlist entry, kept losslessly: every `#EXTINF` attribute in the order it was written,
//! every directive line, the title and the URL. Fields of the expression language map onto it
//! through [`Field`].

use std::sync::Arc;

/// A channel as read from a stream source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Channel {
    /// Name of the source it came from (read-only `source_name`). Shared, not copied.
    pub source: Arc<str>,
    /// The duration token after `#EXTINF:` as written (`-1`, `0`, ...).
    pub duration: String,
    /// Every `#EXTINF` attribute, in the order written: (name as written, value).
    pub attrs: Vec<(String, String)>,
    /// The title after the attributes' comma (`channel_name`).
    pub name: String,
    /// Directive lines (`#EXTVLCOPT:...`, `#KODIPROP:...`, `#EXTGRP:...`, any other `#` line)
    /// that belong to this channel, in order, without line terminators.
    pub directives: Vec<String>,
    /// The stream URL (`stream_url`).
    pub url: String,
    /// The group an `#EXTGRP:` line gives this channel: its own, or the last one above it in
    /// its playlist (Kodi reads `#EXTGRP` as sticky). Read as `group_title` when the channel
    /// has no `group-title`; never written (the `#EXTGRP` line itself is in `directives`).
    pub extgrp: String,
    /// The `#EXTINF` line as read, when the writer would not have written it byte for byte
    /// the same (unquoted or single-quoted values, extra spaces); empty otherwise, and for
    /// lines that needed quirk recovery. The writer writes it back while the channel still
    /// reads the same from it, so nothing unchanged is rewritten.
    pub extinf: String,
    /// What probing found out about the stream (read-only `stream_status` and
    /// `stream_checked_days`): set by the build from the database before the rules run, never
    /// stored with the channel nor written to a playlist.
    pub probe: ProbeMark,
}

/// A stream's probe result as the rules see it; empty when it was never probed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProbeMark {
    /// `alive`, `dead`, `unknown`, or empty.
    pub status: &'static str,
    /// Whole days since the last probe, or empty.
    pub checked_days: String,
}

/// A field of a channel as named in expressions, templates, `sort` and `dedupe`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    ChannelName,
    TvgId,
    TvgName,
    TvgLogo,
    TvgChno,
    TvgShift,
    GroupTitle,
    StreamUrl,
    SourceName,
    StreamStatus,
    StreamCheckedDays,
    /// Any other `#EXTINF` attribute, by its name as written in the playlist (`catchup-days`).
    /// Matched case-insensitively.
    Attr(String),
}

/// The fields with names of their own, as users write them.
pub const NAMED_FIELDS: &[&str] = &[
    "channel_name",
    "tvg_id",
    "tvg_name",
    "tvg_logo",
    "tvg_chno",
    "tvg_shift",
    "group_title",
    "stream_url",
    "source_name",
    "stream_status",
    "stream_checked_days",
];

impl Field {
    /// Resolve a field name. The named fields are `snake_case`; any other name is taken as an
    /// `#EXTINF` attribute name (`catchup-days`, `tvg-rec`). The attribute spellings of named
    /// fields (`tvg-id`, `group-title`) resolve to the named field. A `snake_case` name that is
    /// not a named field is rejected, so a typo such as `group_titel` is an error, not an
    /// attribute that is always empty.
    pub fn parse(name: &str) -> Result<Field, String> {
        let lower = name.to_ascii_lowercase();
        let field = match lower.as_str() {
            "channel_name" => Field::ChannelName,
            "tvg_id" | "tvg-id" => Field::TvgId,
            "tvg_name" | "tvg-name" => Field::TvgName,
            "tvg_logo" | "tvg-logo" => Field::TvgLogo,
            "tvg_chno" | "tvg-chno" => Field::TvgChno,
            "tvg_shift" | "tvg-shift" => Field::TvgShift,
            "group_title" | "group-title" => Field::GroupTitle,
            "stream_url" => Field::StreamUrl,
            "source_name" => Field::SourceName,
            "stream_status" => Field::StreamStatus,
            "stream_checked_days" => Field::StreamCheckedDays,
            _ => {
                let valid = !name.is_empty()
                    && name.chars().all(|c| {
                        c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || c == ':'
                    });
                if !valid {
                    return Err(format!("`{name}` is not a field name"));
                }
                if name.contains('_') && !name.contains('-') {
                    return Err(format!(
                        "unknown field `{name}` (fields: {}; any other #EXTINF attribute by its name as written, e.g. catchup-days)",
                        NAMED_FIELDS.join(", ")
                    ));
                }
                Field::Attr(name.to_string())
            }
        };
        Ok(field)
    }

    /// The `#EXTINF` attribute that stores this field, if it is one.
    pub fn attr_name(&self) -> Option<&str> {
        Some(match self {
            Field::TvgId => "tvg-id",
            Field::TvgName => "tvg-name",
            Field::TvgLogo => "tvg-logo",
            Field::TvgChno => "tvg-chno",
            Field::TvgShift => "tvg-shift",
            Field::GroupTitle => "group-title",
            Field::Attr(name) => name,
            Field::ChannelName
            | Field::StreamUrl
            | Field::SourceName
            | Field::StreamStatus
            | Field::StreamCheckedDays => return None,
        })
    }

    /// Whether mappings may set this field.
    pub fn is_writable(&self) -> bool {
        !matches!(
            self,
            Field::SourceName | Field::StreamStatus | Field::StreamCheckedDays
        )
    }

    /// The name users write for this field.
    pub fn name(&self) -> &str {
        match self {
            Field::ChannelName => "channel_name",
            Field::TvgId => "tvg_id",
            Field::TvgName => "tvg_name",
            Field::TvgLogo => "tvg_logo",
            Field::TvgChno => "tvg_chno",
            Field::TvgShift => "tvg_shift",
            Field::GroupTitle => "group_title",
            Field::StreamUrl => "stream_url",
            Field::SourceName => "source_name",
            Field::StreamStatus => "stream_status",
            Field::StreamCheckedDays => "stream_checked_days",
            Field::Attr(name) => name,
        }
    }
}

/// Overwrite `s` with `value`, keeping its buffer.
fn replace(s: &mut String, value: &str) {
    s.clear();
    s.push_str(value);
}

impl Channel {
    /// The value of an attribute, matched case-insensitively; the first one wins when a
    /// playlist repeats an attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attr_index(name).map(|i| self.attrs[i].1.as_str())
    }

    /// Index of the first attribute named `name`, ignoring ASCII case. Rules read attributes
    /// tens of times per channel (issue 4): lengths are compared first and the exact spelling
    /// (the usual case) with `memcmp` before the byte-by-byte case fold.
    fn attr_index(&self, name: &str) -> Option<usize> {
        let name = name.as_bytes();
        self.attrs.iter().position(|(k, _)| {
            let k = k.as_bytes();
            k.len() == name.len() && (k == name || k.eq_ignore_ascii_case(name))
        })
    }

    /// Set an attribute in place (keeping its position and the others' order), or append it.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attr_index(name) {
            Some(i) => self.attrs[i].1 = value,
            None => self.attrs.push((name.to_string(), value)),
        }
    }

    /// [`Channel::set_attr`] from a borrowed value, reusing the old value's allocation.
    pub fn set_attr_str(&mut self, name: &str, value: &str) {
        match self.attr_index(name) {
            Some(i) => replace(&mut self.attrs[i].1, value),
            None => self.attrs.push((name.to_string(), value.to_string())),
        }
    }

    /// Read a field; an absent attribute reads as the empty string, an absent `group-title`
    /// as the `#EXTGRP` group.
    pub fn get(&self, field: &Field) -> &str {
        match field {
            Field::ChannelName => &self.name,
            Field::StreamUrl => &self.url,
            Field::SourceName => &self.source,
            Field::StreamStatus => self.probe.status,
            Field::StreamCheckedDays => &self.probe.checked_days,
            Field::GroupTitle => self.attr("group-title").unwrap_or(&self.extgrp),
            other => other
                .attr_name()
                .and_then(|name| self.attr(name))
                .unwrap_or(""),
        }
    }

    /// Write a field. The read-only fields (`source_name`, `stream_*`) are left alone.
    pub fn set(&mut self, field: &Field, value: impl Into<String>) {
        match field {
            Field::ChannelName => self.name = value.into(),
            Field::StreamUrl => self.url = value.into(),
            Field::SourceName | Field::StreamStatus | Field::StreamCheckedDays => {}
            other => {
                if let Some(name) = other.attr_name() {
                    self.set_attr(name, value);
                }
            }
        }
    }

    /// [`Channel::set`] from a borrowed value: the field's old allocation is reused when it is
    /// large enough, so rewriting a field (the common mapping) does not allocate.
    pub fn set_str(&mut self, field: &Field, value: &str) {
        match field {
            Field::ChannelName => replace(&mut self.name, value),
            Field::StreamUrl => replace(&mut self.url, value),
            Field::SourceName | Field::StreamStatus | Field::StreamCheckedDays => {}
            other => {
                if let Some(name) = other.attr_name() {
                    self.set_attr_str(name, value);
                }
            }
        }
    }

    /// What this channel takes in memory, for memory accounting: the struct itself (its
    /// slot in a `Vec`) and every heap block it owns, each counted as the allocator hands it
    /// out ([`alloc_size`]), with the spare capacity of its vectors. Counting the bytes asked
    /// for instead (the string lengths) under-counted a synthetic channel by 45% (371 bytes
    /// against 676 taken from malloc), and sorts held that much more than their budget.
    pub fn heap_size(&self) -> usize {
        let string = |s: &String| alloc_size(s.capacity());
        let strings = string(&self.duration)
            + string(&self.name)
            + string(&self.url)
            + string(&self.extgrp)
            + string(&self.extinf);
        let attrs = alloc_size(self.attrs.capacity() * std::mem::size_of::<(String, String)>())
            + self
                .attrs
                .iter()
                .map(|(k, v)| string(k) + string(v))
                .sum::<usize>();
        let directives = alloc_size(self.directives.capacity() * std::mem::size_of::<String>())
            + self.directives.iter().map(string).sum::<usize>();
        std::mem::size_of::<Self>() + strings + attrs + directives
    }
}

/// The bytes a heap block of `bytes` takes from the allocator: glibc's malloc rounds a
/// request plus its 8-byte header up to 16 bytes, and never hands out less than 32. Other
/// allocators round similarly (size classes); this is the common case, not an exact figure.
pub fn alloc_size(bytes: usize) -> usize {
    match bytes {
        0 => 0,
        n => ((n + 8 + 15) & !15).max(32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_size_counts_blocks_as_malloc_hands_them_out() {
        assert_eq!(alloc_size(0), 0);
        assert_eq!(alloc_size(1), 32);
        assert_eq!(alloc_size(24), 32);
        assert_eq!(alloc_size(25), 48);
        let mut ch = Channel {
            name: "BBC One".into(),
            attrs: Vec::with_capacity(4),
            ..Channel::default()
        };
        ch.attrs.push(("tvg-id".into(), "bbc1.uk".into()));
        let pair = std::mem::size_of::<(String, String)>();
        let expected = std::mem::size_of::<Channel>()
            + alloc_size(ch.name.capacity())
            + alloc_size(4 * pair)
            + alloc_size(ch.attrs[0].0.capacity())
            + alloc_size(ch.attrs[0].1.capacity());
        assert_eq!(ch.heap_size(), expected);
        // Spare capacity counts: the vector's block is taken whether used or not.
        ch.attrs.shrink_to_fit();
        assert_eq!(
            ch.heap_size(),
            expected - alloc_size(4 * pair) + alloc_size(pair)
        );
    }

    #[test]
    fn named_fields_and_attributes() {
        assert_eq!(Field::parse("tvg_id").unwrap(), Field::TvgId);
        assert_eq!(Field::parse("group-title").unwrap(), Field::GroupTitle);
        assert_eq!(
            Field::parse("catchup-days").unwrap(),
            Field::Attr("catchup-days".into())
        );
        assert!(Field::parse("group_titel").is_err());
        for read_only in ["source_name", "stream_status", "stream_checked_days"] {
            assert!(
                !Field::parse(read_only).unwrap().is_writable(),
                "{read_only}"
            );
        }
        assert!(Field::parse("a b").is_err());
    }

    #[test]
    fn set_keeps_attribute_order() {
        let mut ch = Channel {
            attrs: vec![
                ("tvg-id".into(), "a".into()),
                ("tvg-name".into(), "b".into()),
            ],
            ..Default::default()
        };
        ch.set(&Field::TvgId, "z");
        ch.set(&Field::GroupTitle, "g");
        assert_eq!(
            ch.attrs,
            vec![
                ("tvg-id".to_string(), "z".to_string()),
                ("tvg-name".to_string(), "b".to_string()),
                ("group-title".to_string(), "g".to_string()),
            ]
        );
        assert_eq!(ch.get(&Field::Attr("TVG-NAME".into())), "b");
    }
}

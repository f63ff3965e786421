//! The XMLTV guide reader: a streaming pull parser (quick-xml events, never a tree of the
//! whole file) that yields one `<channel>` or `<programme>` at a time, each kept losslessly as
//! a small element tree ([`tree`]). What it guarantees:
//!
//! - declared encodings are honoured ([`utf8`]); gzip and xz are unpacked by `decode::open`;
//! - the DOCTYPE is skipped and never read: only the five predefined entities and numeric
//!   references are expanded, so external entities are never fetched and entity bombs stay
//!   one reference long; an element using another entity is malformed;
//! - a malformed `<channel>` or `<programme>` is skipped with a [`Warning`] naming the file and
//!   line, and reading goes on with the next one;
//! - memory is bounded whatever the guide holds ([`bounded`]): one text node, one attribute
//!   value and one element have caps, and an element past one is skipped (never buffered
//!   whole) with a located warning and a count ([`XmltvReader::oversized`]); text outside
//!   elements (whitespace, NUL runs, junk) is skipped without being buffered;
//! - input that is not XML, has no `<tv>` root, or ends before `</tv>` (a truncated download)
//!   is an [`XmltvError`]: the whole source failed, and its previous copy should be kept.

pub mod bounded;
mod items;
mod reader;
pub mod tree;
pub mod utf8;
mod walk;

use std::fmt;

pub use reader::XmltvReader;
pub use tree::{Element, Node};

use crate::guide::time::XmltvTime;

/// A `<channel>`: its id and everything else as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuideChannel {
    pub id: String,
    /// Attributes other than `id` (the DTD declares none; kept for `xmltv_keep_unknown`).
    pub attrs: Vec<(String, String)>,
    /// `display-name`, `icon`, `url` and anything else, in document order.
    pub children: Vec<Node>,
}

impl GuideChannel {
    /// `(lang, name)` of every `display-name`, in order; `lang` is empty when not given.
    pub fn display_names(&self) -> impl Iterator<Item = (&str, String)> + '_ {
        tree::child_elements(&self.children, "display-name")
            .map(|e| (e.attr("lang").unwrap_or(""), e.text()))
    }

    /// `src` of every `icon`.
    pub fn icons(&self) -> impl Iterator<Item = &str> + '_ {
        tree::child_elements(&self.children, "icon").filter_map(|e| e.attr("src"))
    }

    /// Text of every `url`.
    pub fn urls(&self) -> impl Iterator<Item = String> + '_ {
        tree::child_elements(&self.children, "url").map(Element::text)
    }
}

/// A `<programme>`: channel and times read, everything else as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Programme {
    pub channel: String,
    pub start: XmltvTime,
    pub stop: Option<XmltvTime>,
    /// Attributes other than `start`, `stop` and `channel`, in document order.
    pub attrs: Vec<(String, String)>,
    /// `title`, `desc`, `credits`, ... in document order (not necessarily the DTD's).
    pub children: Vec<Node>,
}

/// One item of a guide, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Channel(GuideChannel),
    Programme(Programme),
}

/// Something skipped or repaired in a guide that did not fail it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: String,
    pub line: u64,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Why a guide could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum XmltvError {
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: not an XML document: {detail}")]
    NotXml {
        file: String,
        line: u64,
        detail: String,
    },
    #[error("{file}:{line}: not an XMLTV guide: the root element is <{found}>, not <tv>")]
    NotXmltv {
        file: String,
        line: u64,
        found: String,
    },
    #[error("{file}:{line}: guide ends before </tv> (truncated?)")]
    Truncated { file: String, line: u64 },
}

#[cfg(test)]
mod tests;

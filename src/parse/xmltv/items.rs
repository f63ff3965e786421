//! From a read element to an [`Item`]: attributes unescaped and checked against
//! [`ATTR_CAP`], references resolved, and the required attributes of `<channel>` and
//! `<programme>` taken out.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesRef, BytesStart};

use super::bounded::ATTR_CAP;
use super::tree::{Element, Node};
use super::{GuideChannel, Item, Programme};
use crate::guide::time::XmltvTime;

pub(super) fn attach(stack: &mut [Element], mut child: Element) {
    child.drop_layout_text();
    if let Some(parent) = stack.last_mut() {
        parent.children.push(Node::Element(child));
    }
}

/// The text of `&name;`: only predefined entities and character references.
pub(super) fn resolve_ref(r: &BytesRef<'_>) -> Result<Cow<'static, str>, String> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(Cow::Owned(c.to_string())),
            _ => Err(format!("bad character reference &{};", r.xml10_content())),
        };
    }
    let name = r.xml10_content();
    match quick_xml::escape::resolve_predefined_entity(&name) {
        Some(text) => Ok(Cow::Borrowed(text)),
        None => Err(format!(
            "entity &{name}; is not expanded (only the XML predefined ones are)"
        )),
    }
}

/// Why a tag's attributes were not read.
pub(super) struct AttrError {
    pub message: String,
    /// A value longer than [`ATTR_CAP`] (counted as skipped at a cap).
    pub over_cap: bool,
}

/// Attributes in order, values unescaped (predefined entities and character references only).
pub(super) fn parse_attrs(e: &BytesStart<'_>) -> Result<Vec<(String, String)>, AttrError> {
    let bad = |message: String| AttrError {
        message,
        over_cap: false,
    };
    let mut attrs = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| bad(err.to_string()))?;
        let key = attr.key.as_ref().to_string();
        if attr.value.len() > ATTR_CAP {
            return Err(AttrError {
                message: format!(
                    "attribute {key} is longer than {} KiB (cap)",
                    ATTR_CAP >> 10
                ),
                over_cap: true,
            });
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| bad(format!("attribute {key}: {err}")))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(attrs)
}

fn take_attr(attrs: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let at = attrs.iter().position(|(k, _)| k == name)?;
    Some(attrs.remove(at).1)
}

pub(super) fn channel(mut e: Element) -> Result<Item, String> {
    let id = take_attr(&mut e.attrs, "id").filter(|id| !id.trim().is_empty());
    let id = id.ok_or("no id attribute")?;
    Ok(Item::Channel(GuideChannel {
        id,
        attrs: e.attrs,
        children: e.children,
    }))
}

pub(super) fn programme(mut e: Element) -> Result<Item, String> {
    let channel = take_attr(&mut e.attrs, "channel")
        .filter(|c| !c.trim().is_empty())
        .ok_or("no channel attribute")?;
    let start = take_attr(&mut e.attrs, "start").ok_or("no start attribute")?;
    let start = XmltvTime::parse(&start).map_err(|err| format!("start: {err}"))?;
    let stop = match take_attr(&mut e.attrs, "stop") {
        Some(s) if !s.trim().is_empty() => {
            Some(XmltvTime::parse(&s).map_err(|err| format!("stop: {err}"))?)
        }
        _ => None,
    };
    Ok(Item::Programme(Programme {
        channel,
        start,
        stop,
        attrs: e.attrs,
        children: e.children,
    }))
}

//! What the XMLTV DTD (xmltv.dtd, as shipped by Debian's `xmltv-util`) declares, and the
//! clean-up that makes a stored channel or programme valid against it: children put in DTD
//! order (stable among equals), undeclared elements and attributes dropped and counted by name
//! (or kept verbatim: all with `xmltv_keep_unknown`, by name with `xmltv_keep`, see [`Keep`]), repeats of `?` elements and attribute values
//! outside an enumeration dropped, elements missing what they require dropped.

use std::collections::BTreeMap;

use crate::parse::xmltv::tree::{Element, Node};

/// What was dropped, by name: `series-id` (element), `programme@catchup-id` (attribute),
/// `date (repeated)`, `length@units (invalid value)`, `icon (incomplete)`.
pub type Dropped = BTreeMap<String, u64>;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Card {
    One,
    Opt,
    Many,
    Plus,
}

pub(super) enum Content {
    Empty,
    /// `(#PCDATA)`
    Text,
    /// `(#PCDATA | a | b)*`: any order.
    Mixed(&'static [&'static str]),
    /// A sequence, in this order.
    Seq(&'static [(&'static str, Card)]),
}

pub(super) struct Attr {
    pub(super) name: &'static str,
    pub(super) required: bool,
    pub(super) values: Option<&'static [&'static str]>,
}

/// An optional CDATA attribute. A macro, not a `const fn`, so that arrays of them are
/// promoted to `'static`.
macro_rules! opt {
    ($name:literal) => {
        Attr {
            name: $name,
            required: false,
            values: None,
        }
    };
}

const LANG: &[Attr] = &[opt!("lang")];
const NONE: &[Attr] = &[];
const PERSON: Content = Content::Mixed(&["image", "url"]);

use Card::{Many, One, Opt, Plus};

/// The declaration of element `name`, if the DTD has one.
pub(super) fn declaration(name: &str) -> Option<(&'static [Attr], Content)> {
    Some(match name {
        "channel" => (
            &[Attr {
                name: "id",
                required: true,
                values: None,
            }],
            Content::Seq(&[("display-name", Plus), ("icon", Many), ("url", Many)]),
        ),
        "display-name" | "title" | "sub-title" | "desc" | "category" | "keyword" | "language"
        | "orig-language" | "country" | "premiere" | "last-chance" => (LANG, Content::Text),
        "icon" => (
            &[
                Attr {
                    name: "src",
                    required: true,
                    values: None,
                },
                opt!("width"),
                opt!("height"),
            ],
            Content::Empty,
        ),
        "url" => (&[opt!("system")], Content::Text),
        "programme" => (
            &[
                opt!("start"),
                opt!("stop"),
                opt!("pdc-start"),
                opt!("vps-start"),
                opt!("showview"),
                opt!("videoplus"),
                opt!("channel"),
                opt!("clumpidx"),
            ],
            Content::Seq(&[
                ("title", Plus),
                ("sub-title", Many),
                ("desc", Many),
                ("credits", Opt),
                ("date", Opt),
                ("category", Many),
                ("keyword", Many),
                ("language", Opt),
                ("orig-language", Opt),
                ("length", Opt),
                ("icon", Many),
                ("url", Many),
                ("country", Many),
                ("episode-num", Many),
                ("video", Opt),
                ("audio", Opt),
                ("previously-shown", Opt),
                ("premiere", Opt),
                ("last-chance", Opt),
                ("new", Opt),
                ("subtitles", Many),
                ("rating", Many),
                ("star-rating", Many),
                ("review", Many),
                ("image", Many),
            ]),
        ),
        "credits" => (
            NONE,
            Content::Seq(&[
                ("director", Many),
                ("actor", Many),
                ("writer", Many),
                ("adapter", Many),
                ("producer", Many),
                ("composer", Many),
                ("editor", Many),
                ("presenter", Many),
                ("commentator", Many),
                ("guest", Many),
            ]),
        ),
        "actor" => (
            &[
                opt!("role"),
                Attr {
                    name: "guest",
                    required: false,
                    values: Some(&["no", "yes"]),
                },
            ],
            PERSON,
        ),
        "director" | "writer" | "adapter" | "producer" | "composer" | "editor" | "presenter"
        | "commentator" | "guest" => (NONE, PERSON),
        "date" | "present" | "colour" | "aspect" | "quality" | "stereo" | "value" => {
            (NONE, Content::Text)
        }
        "length" => (
            &[Attr {
                name: "units",
                required: true,
                values: Some(&["seconds", "minutes", "hours"]),
            }],
            Content::Text,
        ),
        "episode-num" => (&[opt!("system")], Content::Text),
        "video" => (
            NONE,
            Content::Seq(&[
                ("present", Opt),
                ("colour", Opt),
                ("aspect", Opt),
                ("quality", Opt),
            ]),
        ),
        "audio" => (NONE, Content::Seq(&[("present", Opt), ("stereo", Opt)])),
        "previously-shown" => (&[opt!("start"), opt!("channel")], Content::Empty),
        "new" => (NONE, Content::Empty),
        "subtitles" => (
            &[Attr {
                name: "type",
                required: false,
                values: Some(&["teletext", "onscreen", "deaf-signed"]),
            }],
            Content::Seq(&[("language", Opt)]),
        ),
        "rating" | "star-rating" => (
            &[opt!("system")],
            Content::Seq(&[("value", One), ("icon", Many)]),
        ),
        "review" => (
            &[
                Attr {
                    name: "type",
                    required: true,
                    values: Some(&["text", "url"]),
                },
                opt!("source"),
                opt!("reviewer"),
                opt!("lang"),
            ],
            Content::Text,
        ),
        "image" => (
            &[
                Attr {
                    name: "type",
                    required: false,
                    values: Some(&["poster", "backdrop", "still", "person", "character"]),
                },
                Attr {
                    name: "size",
                    required: false,
                    values: Some(&["1", "2", "3"]),
                },
                Attr {
                    name: "orient",
                    required: false,
                    values: Some(&["P", "L"]),
                },
                opt!("system"),
            ],
            Content::Text,
        ),
        _ => return None,
    })
}

/// Whether the DTD declares element `name`.
pub fn is_declared(name: &str) -> bool {
    declaration(name).is_some()
}

fn count(dropped: &mut Dropped, key: String) {
    *dropped.entry(key).or_insert(0) += 1;
}

/// What is kept of what the DTD does not declare: everything (`xmltv_keep_unknown`) or the
/// items named in `xmltv_keep`. A name is an element (`series-id`), an attribute on any element
/// (`catchup-id`) or on one (`programme@catchup-id`). Kept items are written verbatim, elements
/// with everything inside them; each one makes the guide invalid against the DTD where it
/// occurs, nothing else does. A declared element in a place the DTD does not allow is only
/// kept by `all`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keep {
    pub all: bool,
    pub names: Vec<String>,
}

impl Keep {
    /// Keep everything undeclared (`xmltv_keep_unknown = true`).
    pub fn all() -> Keep {
        Keep {
            all: true,
            names: Vec::new(),
        }
    }

    /// Whether undeclared attribute `attr` of `element` is kept.
    pub fn attribute(&self, element: &str, attr: &str) -> bool {
        self.all
            || self.names.iter().any(|n| {
                n == attr
                    || n.split_once('@')
                        .is_some_and(|(e, a)| e == element && a == attr)
            })
    }

    /// Whether an element not allowed where it is, named `name`, is kept.
    pub fn element(&self, name: &str) -> bool {
        self.all || (!is_declared(name) && self.names.iter().any(|n| n == name))
    }
}

/// Make `e` (a `channel` or `programme` body, or any declared element) valid. Returns the
/// name of a required child that is missing (`title` for a programme without one,
/// `display-name` for a channel without one), for the caller to decide; nested elements
/// missing what they need are dropped and counted here.
pub fn clean(e: &mut Element, keep: &Keep, dropped: &mut Dropped) -> Result<(), &'static str> {
    let Some((attrs, content)) = declaration(&e.name) else {
        return Ok(());
    };
    clean_attrs(e, attrs, keep, dropped)?;
    let children = std::mem::take(&mut e.children);
    e.children = match content {
        Content::Empty => {
            text_not_allowed(&e.name, &children, dropped);
            keep_elements(&e.name, children, &[], keep, dropped)
        }
        Content::Text => children
            .into_iter()
            .filter_map(|child| match child {
                Node::Text(t) => Some(Node::Text(t)),
                Node::Element(c) => unknown(c, keep, dropped),
            })
            .collect(),
        Content::Mixed(allowed) => children
            .into_iter()
            .filter_map(|child| match child {
                Node::Text(t) => Some(Node::Text(t)),
                Node::Element(c) => known_or_unknown(c, allowed, keep, dropped),
            })
            .collect(),
        Content::Seq(seq) => {
            text_not_allowed(&e.name, &children, dropped);
            let names: Vec<&str> = seq.iter().map(|(n, _)| *n).collect();
            let kept = keep_elements(&e.name, children, &names, keep, dropped);
            order(kept, seq, dropped)?
        }
    };
    Ok(())
}

/// Attributes: undeclared ones dropped (or kept), enumerations checked, required ones present.
fn clean_attrs(
    e: &mut Element,
    decl: &[Attr],
    keep: &Keep,
    dropped: &mut Dropped,
) -> Result<(), &'static str> {
    let name = e.name.clone();
    e.attrs
        .retain(|(k, v)| match decl.iter().find(|a| a.name == k) {
            None if keep.attribute(&name, k) => true,
            None => {
                count(dropped, format!("{name}@{k}"));
                false
            }
            Some(a) => match a.values {
                Some(values) if !values.contains(&v.as_str()) => {
                    count(dropped, format!("{name}@{k} (invalid value)"));
                    false
                }
                _ => true,
            },
        });
    match decl.iter().find(|a| a.required && e.attr(a.name).is_none()) {
        // channel@id, programme@start/channel are held outside the attribute list.
        Some(a) if !(name == "channel" && a.name == "id") => Err(a.name),
        _ => Ok(()),
    }
}

fn text_not_allowed(name: &str, children: &[Node], dropped: &mut Dropped) {
    if children
        .iter()
        .any(|c| matches!(c, Node::Text(t) if !t.trim().is_empty()))
    {
        count(dropped, format!("{name} (text)"));
    }
}

/// Elements of `children` that are allowed here (cleaned) or unknown (kept verbatim with
/// `keep`); text dropped.
fn keep_elements(
    _parent: &str,
    children: Vec<Node>,
    allowed: &[&str],
    keep: &Keep,
    dropped: &mut Dropped,
) -> Vec<Node> {
    children
        .into_iter()
        .filter_map(|child| match child {
            Node::Text(_) => None,
            Node::Element(c) => known_or_unknown(c, allowed, keep, dropped),
        })
        .collect()
}

fn known_or_unknown(
    mut c: Element,
    allowed: &[&str],
    keep: &Keep,
    dropped: &mut Dropped,
) -> Option<Node> {
    if !allowed.contains(&c.name.as_str()) {
        return unknown(c, keep, dropped);
    }
    match clean(&mut c, keep, dropped) {
        Ok(()) => Some(Node::Element(c)),
        Err(_) => {
            count(dropped, format!("{} (incomplete)", c.name));
            None
        }
    }
}

/// An element not allowed where it is: kept verbatim or dropped and counted. A declared
/// element in the wrong place counts under its name like an undeclared one.
fn unknown(c: Element, keep: &Keep, dropped: &mut Dropped) -> Option<Node> {
    if keep.element(&c.name) {
        Some(Node::Element(c))
    } else {
        count(dropped, c.name);
        None
    }
}

/// Put `children` in the order of `seq`, stably; unknown children (kept) travel with the
/// known child before them. Extra `?`/single elements are dropped; a missing required one is
/// an error naming it.
fn order(
    children: Vec<Node>,
    seq: &[(&'static str, Card)],
    dropped: &mut Dropped,
) -> Result<Vec<Node>, &'static str> {
    let mut seen = vec![0usize; seq.len()];
    let mut keyed: Vec<(usize, Node)> = Vec::with_capacity(children.len());
    let mut last = 0;
    for child in children {
        let Node::Element(e) = &child else { continue };
        match seq.iter().position(|(n, _)| *n == e.name) {
            Some(at) => {
                if matches!(seq[at].1, One | Opt) && seen[at] > 0 {
                    count(dropped, format!("{} (repeated)", e.name));
                    continue;
                }
                seen[at] += 1;
                last = at;
                keyed.push((at, child));
            }
            None => keyed.push((last, child)),
        }
    }
    if let Some(((name, _), _)) = seq
        .iter()
        .zip(&seen)
        .find(|((_, card), n)| matches!(card, One | Plus) && **n == 0)
    {
        return Err(name);
    }
    keyed.sort_by_key(|(at, _)| *at);
    Ok(keyed.into_iter().map(|(_, n)| n).collect())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An element node, for tests here and in `direct.rs`.
    pub(in crate::guide) fn el(name: &str, attrs: &[(&str, &str)], children: Vec<Node>) -> Node {
        Node::Element(Element {
            name: name.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            children,
        })
    }

    pub(in crate::guide) fn text(s: &str) -> Node {
        Node::Text(s.into())
    }

    fn names(e: &Element) -> Vec<&str> {
        e.children
            .iter()
            .filter_map(|c| match c {
                Node::Element(e) => Some(e.name.as_str()),
                Node::Text(_) => None,
            })
            .collect()
    }

    fn programme() -> Element {
        Element {
            name: "programme".into(),
            attrs: vec![("catchup-id".into(), "7".into())],
            children: vec![
                el("desc", &[], vec![text("d")]),
                el("series-id", &[("system", "x")], vec![text("s1")]),
                el("category", &[], vec![text("c1")]),
                el("title", &[("lang", "en"), ("foo", "bar")], vec![text("t")]),
                el("date", &[], vec![text("2020")]),
                el("date", &[], vec![text("2021")]),
                el("length", &[("units", "days")], vec![text("1")]),
                el("category", &[], vec![text("c2")]),
                el("rating", &[], vec![el("icon", &[("src", "r.png")], vec![])]),
            ],
        }
    }

    #[test]
    fn orders_drops_and_counts() {
        let mut p = programme();
        let mut dropped = Dropped::new();
        clean(&mut p, &Keep::default(), &mut dropped).unwrap();
        assert_eq!(names(&p), ["title", "desc", "date", "category", "category"]);
        assert!(p.attrs.is_empty());
        let Node::Element(title) = &p.children[0] else {
            panic!()
        };
        assert_eq!(title.attrs, [("lang".to_string(), "en".to_string())]);
        let Node::Element(c1) = &p.children[3] else {
            panic!()
        };
        assert_eq!(c1.text(), "c1", "stable among equals");
        let expected: Dropped = [
            ("date (repeated)", 1),
            ("length (incomplete)", 1),
            ("length@units (invalid value)", 1),
            ("programme@catchup-id", 1),
            ("rating (incomplete)", 1),
            ("series-id", 1),
            ("title@foo", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(dropped, expected);
    }

    #[test]
    fn keep_unknown_keeps_them_in_place() {
        let mut p = programme();
        let mut dropped = Dropped::new();
        clean(&mut p, &Keep::all(), &mut dropped).unwrap();
        assert_eq!(
            names(&p),
            ["title", "desc", "series-id", "date", "category", "category"]
        );
        assert_eq!(p.attrs.len(), 1);
        assert!(!dropped.contains_key("series-id"));
    }

    #[test]
    fn missing_required_child_is_reported() {
        let mut p = Element {
            name: "programme".into(),
            attrs: vec![],
            children: vec![el("desc", &[], vec![text("no title")])],
        };
        assert_eq!(
            clean(&mut p, &Keep::default(), &mut Dropped::new()),
            Err("title")
        );
        let mut c = Element {
            name: "channel".into(),
            attrs: vec![],
            children: vec![el("icon", &[("src", "a.png")], vec![])],
        };
        assert_eq!(
            clean(&mut c, &Keep::default(), &mut Dropped::new()),
            Err("display-name")
        );
    }
}

//! Writing a stored programme straight from its binary form (`parse::xmltv::tree`) when it is
//! already valid against the DTD: no tree is decoded, nothing is allocated, strings are
//! borrowed from the listing. Most programmes of real guides (and every one of the scale
//! job's) need no cleaning, and decoding plus [`dtd::clean`] was most of a guide write's time
//! (issue 13).
//!
//! The output is byte for byte what `dtd::clean` followed by `XmltvWriter::programme` gives.
//! Anything `clean` would change or count (an undeclared or invalid attribute or element, an
//! element out of DTD order, a repeat, a missing required item, non-blank text where only
//! elements go), and anything unusual in the encoding, makes [`programme`] return `None`: the
//! caller then takes the tree path, which cleans, counts and applies `xmltv_keep`. Blank text
//! between elements is the only thing dropped here, silently, as `clean` does.

use super::dtd::{self, Card, Content};
use crate::output::xmltv::escape_into;

const TAG_ELEMENT: u8 = 0;
const TAG_TEXT: u8 = 1;
/// As `tree::decode`'s bound: deeper blobs take the tree path (and its error).
const MAX_DEPTH: usize = 64;

/// Serialise a programme body into `out` as `XmltvWriter::programme_serialized` takes it:
/// returns where the attributes end and the children begin. `None` when the programme needs
/// cleaning (or is not a well-formed body); `out` then holds garbage to clear.
pub fn programme(body: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let mut cur = Cursor {
        bytes: body,
        pos: 0,
    };
    let (attrs, content) = dtd::declaration("programme")?;
    write_attrs(&mut cur, attrs, out)?;
    let split = out.len();
    let Content::Seq(seq) = content else {
        return None;
    };
    // The writer lays a programme's children out one per line at depth 2.
    let wrote = seq_children(&mut cur, seq, 2, false, out, 0)?;
    debug_assert!(wrote || out.len() == split);
    (cur.pos == body.len()).then_some(split)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn len(&mut self) -> Option<usize> {
        let mut n: usize = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            n |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = self.len()?;
        let end = self.pos.checked_add(n)?;
        let raw = self.bytes.get(self.pos..end)?;
        self.pos = end;
        std::str::from_utf8(raw).ok()
    }

    /// Whether any of the next `n` children is text, without moving.
    fn any_text(&self, n: usize) -> Option<bool> {
        let mut probe = Cursor {
            bytes: self.bytes,
            pos: self.pos,
        };
        for _ in 0..n {
            match probe.byte()? {
                TAG_TEXT => return Some(true),
                TAG_ELEMENT => {
                    probe.str()?;
                    probe.skip_body(0)?;
                }
                _ => return None,
            }
        }
        Some(false)
    }

    fn skip_body(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        for _ in 0..self.len()? {
            self.str()?;
            self.str()?;
        }
        for _ in 0..self.len()? {
            match self.byte()? {
                TAG_TEXT => {
                    self.str()?;
                }
                TAG_ELEMENT => {
                    self.str()?;
                    self.skip_body(depth + 1)?;
                }
                _ => return None,
            }
        }
        Some(())
    }
}

/// ` name="value"` for every attribute, each declared with a valid value, and every required
/// one present.
fn write_attrs(cur: &mut Cursor<'_>, decl: &[dtd::Attr], out: &mut Vec<u8>) -> Option<()> {
    let mut present = 0u64;
    for _ in 0..cur.len()? {
        let name = cur.str()?;
        let value = cur.str()?;
        let at = decl.iter().position(|a| a.name == name)?;
        if decl[at]
            .values
            .is_some_and(|values| !values.contains(&value))
        {
            return None;
        }
        present |= 1 << at.min(63);
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_into(out, value, true);
        out.push(b'"');
    }
    let missing = decl
        .iter()
        .enumerate()
        .any(|(i, a)| a.required && present & (1 << i.min(63)) == 0);
    (!missing).then_some(())
}

fn indent(out: &mut Vec<u8>, depth: usize) {
    for _ in 0..depth {
        out.extend_from_slice(b"  ");
    }
}

/// One child element `name` (its body at the cursor), allowed where it is: `<name ...>` and its
/// content, laid out as `XmltvWriter` does: one child per line at `depth`, or `inline`.
fn element(
    cur: &mut Cursor<'_>,
    name: &str,
    depth: usize,
    inline: bool,
    out: &mut Vec<u8>,
    level: usize,
) -> Option<()> {
    if level > MAX_DEPTH {
        return None;
    }
    let (attrs, content) = dtd::declaration(name)?;
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    write_attrs(cur, attrs, out)?;
    let open = out.len();
    out.push(b'>');
    let n = cur.len()?;
    let wrote = match content {
        Content::Empty => {
            blank_text_only(cur, n)?;
            false
        }
        Content::Text => {
            for _ in 0..n {
                if cur.byte()? != TAG_TEXT {
                    return None;
                }
                escape_into(out, cur.str()?, false);
            }
            n > 0
        }
        Content::Mixed(allowed) => {
            if inline || cur.any_text(n)? {
                for _ in 0..n {
                    match cur.byte()? {
                        TAG_TEXT => escape_into(out, cur.str()?, false),
                        TAG_ELEMENT => {
                            let child = cur.str()?;
                            if !allowed.contains(&child) {
                                return None;
                            }
                            element(cur, child, depth, true, out, level + 1)?;
                        }
                        _ => return None,
                    }
                }
                n > 0
            } else {
                // No text: element children only, in any order.
                out.push(b'\n');
                let mut wrote = false;
                for _ in 0..n {
                    if cur.byte()? != TAG_ELEMENT {
                        return None;
                    }
                    let child = cur.str()?;
                    if !allowed.contains(&child) {
                        return None;
                    }
                    indent(out, depth + 1);
                    element(cur, child, depth + 1, false, out, level + 1)?;
                    out.push(b'\n');
                    wrote = true;
                }
                if wrote {
                    indent(out, depth);
                }
                wrote
            }
        }
        Content::Seq(seq) => {
            if !inline {
                out.push(b'\n');
            }
            let wrote = seq_children_n(cur, n, seq, depth + 1, inline, out, level + 1)?;
            if wrote && !inline {
                indent(out, depth);
            }
            wrote
        }
    };
    if wrote {
        out.extend_from_slice(b"</");
        out.extend_from_slice(name.as_bytes());
        out.push(b'>');
    } else {
        // Nothing inside once cleaned: `<name .../>`.
        out.truncate(open);
        out.extend_from_slice(b"/>");
    }
    Some(())
}

/// `n` children that may only be blank text (dropped).
fn blank_text_only(cur: &mut Cursor<'_>, n: usize) -> Option<()> {
    for _ in 0..n {
        if cur.byte()? != TAG_TEXT || !cur.str()?.trim().is_empty() {
            return None;
        }
    }
    Some(())
}

fn seq_children(
    cur: &mut Cursor<'_>,
    seq: &[(&'static str, Card)],
    depth: usize,
    inline: bool,
    out: &mut Vec<u8>,
    level: usize,
) -> Option<bool> {
    let n = cur.len()?;
    seq_children_n(cur, n, seq, depth, inline, out, level)
}

/// `n` children of an element whose content is the sequence `seq`: elements already in `seq`
/// order, no repeats of single ones, every required one present; blank text dropped. Each
/// child goes on its own line at `depth` (or inline). Returns whether any was written.
fn seq_children_n(
    cur: &mut Cursor<'_>,
    n: usize,
    seq: &[(&'static str, Card)],
    depth: usize,
    inline: bool,
    out: &mut Vec<u8>,
    level: usize,
) -> Option<bool> {
    // Index into `seq` of the last child, and how many of it so far.
    let mut at = 0;
    let mut seen_at = 0usize;
    let mut wrote = false;
    let mut required_done = 0;
    for _ in 0..n {
        match cur.byte()? {
            TAG_TEXT => {
                if !cur.str()?.trim().is_empty() {
                    return None;
                }
            }
            TAG_ELEMENT => {
                let name = cur.str()?;
                let pos = at + seq[at..].iter().position(|(s, _)| *s == name)?;
                if pos == at && wrote {
                    if matches!(seq[at].1, Card::One | Card::Opt) {
                        return None;
                    }
                    seen_at += 1;
                } else {
                    // Every required item skipped over must have been seen.
                    let from = if wrote { at + 1 } else { 0 };
                    if seq[from..pos]
                        .iter()
                        .any(|(_, c)| matches!(c, Card::One | Card::Plus))
                    {
                        return None;
                    }
                    at = pos;
                    seen_at = 1;
                }
                required_done = at + 1;
                if !inline {
                    indent(out, depth);
                }
                element(cur, name, depth, inline, out, level)?;
                if !inline {
                    out.push(b'\n');
                }
                wrote = true;
            }
            _ => return None,
        }
    }
    debug_assert!(seen_at <= n);
    if seq[required_done..]
        .iter()
        .any(|(_, c)| matches!(c, Card::One | Card::Plus))
    {
        return None;
    }
    Some(wrote)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guide::dtd::tests::{el, text};
    use crate::guide::time::XmltvTime;
    use crate::output::xmltv::XmltvWriter;
    use crate::parse::xmltv::tree::{self, Element, Node};
    use crate::parse::xmltv::{Item, XmltvReader};

    /// What the tree path writes for a programme body, or `None` if cleaning changed or
    /// counted anything.
    fn via_tree(body: &[u8], keep: &dtd::Keep) -> (Vec<u8>, bool) {
        let (attrs, children) = tree::decode(body).unwrap();
        let mut p = Element {
            name: "programme".into(),
            attrs,
            children,
        };
        let mut dropped = dtd::Dropped::new();
        let ok = dtd::clean(&mut p, keep, &mut dropped).is_ok();
        let mut w = XmltvWriter::start(Vec::new(), &[]).unwrap();
        let t = XmltvTime { utc: 0, offset: 0 };
        w.programme("c", t, None, &p.attrs, &p.children).unwrap();
        (w.finish().unwrap(), ok && dropped.is_empty())
    }

    fn via_direct(body: &[u8]) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        let split = programme(body, &mut buf)?;
        let mut w = XmltvWriter::start(Vec::new(), &[]).unwrap();
        let t = XmltvTime { utc: 0, offset: 0 };
        w.programme_serialized("c", t, None, &buf[..split], &buf[split..])
            .unwrap();
        Some(w.finish().unwrap())
    }

    /// Direct output equals the tree path's whenever direct takes a programme, and direct
    /// takes none that the tree path cleans with a count.
    fn check(attrs: &[(String, String)], children: &[Node]) -> bool {
        let mut body = Vec::new();
        tree::encode(attrs, children, &mut body);
        let (expected, clean) = via_tree(&body, &dtd::Keep::default());
        let direct = via_direct(&body);
        if let Some(got) = &direct {
            assert_eq!(
                String::from_utf8_lossy(got),
                String::from_utf8_lossy(&expected),
                "{children:?}"
            );
            // Keeping unknown items changes nothing for a programme that has none.
            assert_eq!(via_tree(&body, &dtd::Keep::all()).0, expected);
        }
        // (The tree path also re-orders silently: that takes the tree path too.)
        assert!(direct.is_none() || clean, "{children:?}");
        direct.is_some()
    }

    #[test]
    fn same_bytes_as_the_tree_path_for_every_fixture_programme() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/xmltv");
        let mut direct = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let Ok(mut reader) = XmltvReader::open(&entry.unwrap().path(), 1 << 30) else {
                continue;
            };
            while let Ok(Some(item)) = reader.next_item() {
                if let Item::Programme(p) = item {
                    direct += usize::from(check(&p.attrs, &p.children));
                }
            }
        }
        assert!(direct > 10, "the fixtures' valid programmes go direct");
    }

    #[test]
    fn same_bytes_as_the_tree_path_for_edge_cases() {
        let title = || {
            el(
                "title",
                &[("lang", "en")],
                vec![text("T & <t> \"q\"\u{1}\u{fffe}é")],
            )
        };
        let person = |c| el("actor", &[("role", "R\n\t")], c);
        // (programme attributes, children, whether it goes direct)
        type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<Node>, bool);
        let cases: Vec<Case> = vec![
            (vec![], vec![title()], true),
            (
                vec![("clumpidx", "0/1")],
                vec![text("\n  "), title(), text(" ")],
                true,
            ),
            (
                vec![],
                vec![title(), title(), el("desc", &[], vec![])],
                true,
            ),
            (
                vec![],
                vec![el("title", &[], vec![text(""), text("x")])],
                true,
            ),
            (
                vec![],
                vec![title(), el("new", &[], vec![text("  ")])],
                true,
            ),
            (
                vec![],
                vec![title(), el("new", &[], vec![text("x")])],
                false,
            ),
            (vec![], vec![title(), el("credits", &[], vec![])], true),
            (
                vec![],
                vec![title(), el("credits", &[], vec![text(" ")])],
                true,
            ),
            (
                vec![],
                vec![
                    title(),
                    el(
                        "credits",
                        &[],
                        vec![
                            el("director", &[], vec![text("D")]),
                            person(vec![text("A "), el("image", &[], vec![text("i")])]),
                            person(vec![el("url", &[], vec![text("u")])]),
                            person(vec![]),
                            el("writer", &[], vec![]),
                        ],
                    ),
                ],
                true,
            ),
            (
                vec![],
                vec![
                    title(),
                    el(
                        "credits",
                        &[],
                        vec![el("writer", &[], vec![]), person(vec![])],
                    ),
                ],
                false,
            ),
            (
                vec![],
                vec![
                    title(),
                    el(
                        "video",
                        &[],
                        vec![
                            el("present", &[], vec![text("yes")]),
                            el("aspect", &[], vec![]),
                        ],
                    ),
                    el(
                        "rating",
                        &[("system", "s")],
                        vec![
                            el("value", &[], vec![text("7")]),
                            el("icon", &[("src", "i")], vec![]),
                        ],
                    ),
                    el("star-rating", &[], vec![]),
                ],
                false,
            ),
            (
                vec![],
                vec![title(), el("length", &[("units", "days")], vec![])],
                false,
            ),
            (
                vec![],
                vec![title(), el("length", &[("units", "hours")], vec![])],
                true,
            ),
            (vec![], vec![title(), el("icon", &[], vec![])], false),
            (
                vec![],
                vec![title(), el("date", &[], vec![]), el("date", &[], vec![])],
                false,
            ),
            (vec![], vec![el("desc", &[], vec![]), title()], false),
            (vec![], vec![el("desc", &[], vec![])], false),
            (vec![], vec![], false),
            (vec![("catchup-id", "1")], vec![title()], false),
            (vec![], vec![title(), el("series-id", &[], vec![])], false),
            (vec![], vec![title(), text("stray")], false),
            (
                vec![],
                vec![el("title", &[], vec![el("b", &[], vec![])])],
                false,
            ),
            (
                vec![],
                vec![
                    title(),
                    el(
                        "subtitles",
                        &[("type", "onscreen")],
                        vec![el("language", &[], vec![text("en")])],
                    ),
                ],
                true,
            ),
        ];
        for (attrs, children, direct) in cases {
            let attrs: Vec<(String, String)> = attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(check(&attrs, &children), direct, "{children:?}");
        }
    }

    #[test]
    fn corrupt_bodies_take_the_tree_path() {
        let mut body = Vec::new();
        tree::encode(&[], &[el("title", &[], vec![text("hello")])], &mut body);
        for cut in 0..body.len() {
            assert!(programme(&body[..cut], &mut Vec::new()).is_none());
        }
        body.push(0);
        assert!(
            programme(&body, &mut Vec::new()).is_none(),
            "trailing bytes"
        );
    }
}

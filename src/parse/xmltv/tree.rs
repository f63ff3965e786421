//! A small element tree for the children of one `<channel>` or `<programme>`, kept losslessly
//! (names, attributes in order, text, child order) so a guide can be stored, re-ordered and
//! written back. Also a compact binary form of it for the store: length-prefixed strings,
//! cheaper to store and to decode than re-parsing XML for every programme of a build.

/// An XML element: name as written (prefix included), attributes in document order (values
/// unescaped), children in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

/// A child of an element. Comments and processing instructions are not kept: they carry no
/// guide data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    pub fn new(name: impl Into<String>) -> Element {
        Element {
            name: name.into(),
            ..Element::default()
        }
    }

    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The concatenated text children (not descendants).
    pub fn text(&self) -> String {
        let mut s = String::new();
        for child in &self.children {
            if let Node::Text(t) = child {
                s.push_str(t);
            }
        }
        s
    }

    /// Child elements named `name`, in order.
    pub fn elements<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        child_elements(&self.children, name)
    }

    /// Append text, merging with a preceding text node (text arrives in pieces around
    /// entity references).
    pub fn push_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(Node::Text(last)) = self.children.last_mut() {
            last.push_str(text);
        } else {
            self.children.push(Node::Text(text.to_string()));
        }
    }

    /// Drop whitespace-only text between child elements (indentation): it is layout, not data,
    /// and the writer lays out again.
    pub fn drop_layout_text(&mut self) {
        if self.children.iter().any(|c| matches!(c, Node::Element(_))) {
            self.children
                .retain(|c| !matches!(c, Node::Text(t) if t.trim().is_empty()));
        }
    }
}

/// Elements named `name` among `nodes`.
pub fn child_elements<'a>(
    nodes: &'a [Node],
    name: &'a str,
) -> impl Iterator<Item = &'a Element> + 'a {
    nodes.iter().filter_map(move |n| match n {
        Node::Element(e) if e.name == name => Some(e),
        _ => None,
    })
}

/// Attributes and children of an element, as stored.
pub type Body = (Vec<(String, String)>, Vec<Node>);

/// The stored form could not be read back: the database was written by something else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt stored guide element (offset {offset})")]
pub struct CodecError {
    pub offset: usize,
}

const TAG_ELEMENT: u8 = 0;
const TAG_TEXT: u8 = 1;

/// Append the binary form of (attributes, children) to `out`.
pub fn encode(attrs: &[(String, String)], children: &[Node], out: &mut Vec<u8>) {
    put_len(out, attrs.len());
    for (k, v) in attrs {
        put_str(out, k);
        put_str(out, v);
    }
    put_len(out, children.len());
    for child in children {
        match child {
            Node::Element(e) => {
                out.push(TAG_ELEMENT);
                put_str(out, &e.name);
                encode(&e.attrs, &e.children, out);
            }
            Node::Text(t) => {
                out.push(TAG_TEXT);
                put_str(out, t);
            }
        }
    }
}

/// Read back what [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<Body, CodecError> {
    let mut cur = Cursor { bytes, pos: 0 };
    let body = cur.body(0)?;
    if cur.pos != bytes.len() {
        return Err(CodecError { offset: cur.pos });
    }
    Ok(body)
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    // LEB128: most lengths fit in one byte.
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// Deeper than any real guide nests; bounds recursion on a corrupt blob.
const MAX_DEPTH: usize = 64;

impl Cursor<'_> {
    fn err(&self) -> CodecError {
        CodecError { offset: self.pos }
    }

    fn len(&mut self) -> Result<usize, CodecError> {
        let mut n: usize = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.pos).ok_or_else(|| self.err())?;
            self.pos += 1;
            n |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(self.err())
    }

    fn string(&mut self) -> Result<String, CodecError> {
        let n = self.len()?;
        let end = self.pos.checked_add(n).ok_or_else(|| self.err())?;
        let raw = self.bytes.get(self.pos..end).ok_or_else(|| self.err())?;
        let s = std::str::from_utf8(raw)
            .map_err(|_| self.err())?
            .to_string();
        self.pos = end;
        Ok(s)
    }

    fn body(&mut self, depth: usize) -> Result<Body, CodecError> {
        if depth > MAX_DEPTH {
            return Err(self.err());
        }
        let n = self.len()?;
        let mut attrs = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            attrs.push((self.string()?, self.string()?));
        }
        let n = self.len()?;
        let mut children = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let tag = *self.bytes.get(self.pos).ok_or_else(|| self.err())?;
            self.pos += 1;
            children.push(match tag {
                TAG_ELEMENT => {
                    let name = self.string()?;
                    let (attrs, children) = self.body(depth + 1)?;
                    Node::Element(Element {
                        name,
                        attrs,
                        children,
                    })
                }
                TAG_TEXT => Node::Text(self.string()?),
                _ => return Err(self.err()),
            });
        }
        Ok((attrs, children))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_nested_elements_and_unicode() {
        let mut credits = Element::new("credits");
        let mut actor = Element::new("actor");
        actor.attrs.push(("role".into(), "Ünïcødé & <co>".into()));
        actor.push_text("A. Actor");
        actor.children.push(Node::Element(Element::new("image")));
        credits.children.push(Node::Element(actor));
        let mut title = Element::new("title");
        title.push_text(&"x".repeat(300)); // length needs two LEB128 bytes
        let attrs = vec![("clumpidx".to_string(), "0/1".to_string())];
        let children = vec![Node::Element(title), Node::Element(credits)];
        let mut out = Vec::new();
        encode(&attrs, &children, &mut out);
        assert_eq!(decode(&out).unwrap(), (attrs, children));
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        let mut e = Element::new("desc");
        e.push_text("hello");
        encode(&[], &[Node::Element(e)], &mut out);
        for cut in 0..out.len() {
            assert!(decode(&out[..cut]).is_err());
        }
        assert!(decode(&[0, 1, 9]).is_err());
        assert!(decode(&[0xff; 12]).is_err());
    }

    #[test]
    fn layout_text_is_dropped_only_between_elements() {
        let mut e = Element::new("credits");
        e.push_text("\n  ");
        e.children.push(Node::Element(Element::new("actor")));
        e.push_text("\n");
        e.drop_layout_text();
        assert_eq!(e.children.len(), 1);
        let mut t = Element::new("title");
        t.push_text("  ");
        t.drop_layout_text();
        assert_eq!(t.text(), "  ");
    }
}

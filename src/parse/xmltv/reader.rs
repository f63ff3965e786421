//! The pull loop over quick-xml events. quick-xml's own end-tag checks are off: this reader
//! keeps its own stack per item so that after a bad end tag it can tell which element was
//! broken, skip just that `<programme>` or `<channel>`, and resume at the next one.

use std::borrow::Cow;
use std::io::BufRead;
use std::path::Path;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesRef, BytesStart, Event};

use super::tree::{Element, Node};
use super::utf8::{self, Utf8Reader};
use super::{GuideChannel, Item, Programme, Warning, XmltvError};
use crate::guide::time::XmltvTime;

/// Warnings kept per file; past this they are only counted, so a broken guide with a million
/// bad programmes does not fill memory with messages.
const MAX_WARNINGS: usize = 1000;
/// quick-xml errors in a row (without any good event) after which the input is not XML.
const MAX_CONSECUTIVE_ERRORS: u32 = 100;

/// Count one more markup error in a row; past [`MAX_CONSECUTIVE_ERRORS`] the input is taken
/// for something that is not XML at all (a source failure, not a warning).
fn count_error(
    errors: &mut u32,
    file: &str,
    line: u64,
    e: &quick_xml::Error,
) -> Result<(), XmltvError> {
    *errors += 1;
    if *errors > MAX_CONSECUTIVE_ERRORS {
        return Err(XmltvError::NotXml {
            file: file.to_string(),
            line,
            detail: e.to_string(),
        });
    }
    Ok(())
}

type Source = Utf8Reader<Box<dyn BufRead + Send>>;

/// Streaming reader of one guide file. Call [`XmltvReader::next_item`] until `None`.
pub struct XmltvReader {
    xml: quick_xml::Reader<Source>,
    buf: Vec<u8>,
    file: String,
    /// Attributes of `<tv>`.
    tv_attrs: Vec<(String, String)>,
    warnings: Vec<Warning>,
    suppressed: u64,
    done: bool,
}

/// The outcome of reading one item's subtree.
enum Subtree {
    Ok(Element),
    /// Malformed: why. The item is skipped.
    Bad(String),
}

impl XmltvReader {
    /// Open a guide file (gzip and xz by magic bytes) and read up to its `<tv>` root.
    pub fn open(path: &Path, max_size: u64) -> Result<XmltvReader, XmltvError> {
        let file = path.display().to_string();
        let input =
            crate::parse::decode::open(path, max_size).map_err(|source| XmltvError::Io {
                file: file.clone(),
                source,
            })?;
        XmltvReader::new(input, file)
    }

    /// Read a guide from any (already unpacked) reader; `file` names it in messages.
    pub fn new(
        mut input: Box<dyn BufRead + Send>,
        file: impl Into<String>,
    ) -> Result<XmltvReader, XmltvError> {
        let file = file.into();
        let head = input.fill_buf().map_err(|source| XmltvError::Io {
            file: file.clone(),
            source,
        })?;
        let (encoding, unknown) = utf8::sniff(head);
        let mut xml = quick_xml::Reader::from_reader(Utf8Reader::new(input, encoding));
        let config = xml.config_mut();
        // Our own stack matches end tags (see the module doc).
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        config.expand_empty_elements = false;
        let mut reader = XmltvReader {
            xml,
            buf: Vec::with_capacity(4096),
            file,
            tv_attrs: Vec::new(),
            warnings: Vec::new(),
            suppressed: 0,
            done: false,
        };
        if let Some(label) = unknown {
            reader.warn_at(1, format!("unknown encoding `{label}`, read as UTF-8"));
        }
        reader.find_root()?;
        Ok(reader)
    }

    /// The file name used in messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Attributes of the `<tv>` root.
    pub fn tv_attrs(&self) -> &[(String, String)] {
        &self.tv_attrs
    }

    /// Warnings so far (at most [`MAX_WARNINGS`]); see [`Self::suppressed_warnings`].
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    pub fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    /// Warnings past the cap, counted only.
    pub fn suppressed_warnings(&self) -> u64 {
        self.suppressed
    }

    /// 1-based line the reader is at.
    pub fn line(&self) -> u64 {
        self.xml.get_ref().line()
    }

    /// Record a warning about what is being read now (for callers that find something wrong
    /// in an item, such as a duplicate channel id).
    pub fn warn(&mut self, message: impl Into<String>) {
        let line = self.line();
        self.warn_at(line, message.into());
    }

    fn warn_at(&mut self, line: u64, message: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(Warning {
                file: self.file.clone(),
                line,
                message,
            });
        } else {
            self.suppressed += 1;
        }
    }

    fn read_event(&mut self) -> Result<Result<Event<'_>, quick_xml::Error>, XmltvError> {
        self.buf.clear();
        match self.xml.read_event_into(&mut self.buf) {
            Err(quick_xml::Error::Io(e)) => Err(XmltvError::Io {
                file: self.file.clone(),
                source: std::io::Error::new(e.kind(), e.to_string()),
            }),
            other => Ok(other),
        }
    }

    /// Skip the prolog (declaration, DOCTYPE, comments) up to `<tv>`.
    fn find_root(&mut self) -> Result<(), XmltvError> {
        let not_xml = |r: &Self, detail: String| XmltvError::NotXml {
            file: r.file.clone(),
            line: r.line(),
            detail,
        };
        loop {
            let event = match self.read_event()? {
                Ok(e) => e,
                Err(e) => {
                    let detail = e.to_string();
                    return Err(not_xml(self, detail));
                }
            };
            match event {
                Event::Start(ref e) | Event::Empty(ref e) if e.name().as_ref() == "tv" => {
                    let empty = matches!(event, Event::Empty(_));
                    let attrs = parse_attrs(e);
                    match attrs {
                        Ok(attrs) => self.tv_attrs = attrs,
                        Err(why) => {
                            let line = self.line();
                            self.warn_at(line, format!("<tv> attributes ignored: {why}"));
                        }
                    }
                    self.done = empty;
                    return Ok(());
                }
                Event::Start(e) | Event::Empty(e) => {
                    let found = e.name().as_ref().to_string();
                    return Err(XmltvError::NotXmltv {
                        file: self.file.clone(),
                        line: self.line(),
                        found,
                    });
                }
                Event::Text(t) if !t.xml10_content().trim().is_empty() => {
                    return Err(not_xml(self, "text before the root element".into()));
                }
                Event::End(_) | Event::GeneralRef(_) | Event::CData(_) => {
                    return Err(not_xml(self, "content before the root element".into()));
                }
                Event::Eof => return Err(not_xml(self, "no root element".into())),
                // Declaration, DOCTYPE (never interpreted), comments, PIs, blank text.
                _ => {}
            }
        }
    }

    /// The next channel or programme; `None` after `</tv>`.
    pub fn next_item(&mut self) -> Result<Option<Item>, XmltvError> {
        let mut errors = 0;
        loop {
            if self.done {
                return Ok(None);
            }
            let line = self.line();
            let event = match self.read_event()? {
                Ok(e) => e,
                Err(e) => {
                    count_error(&mut errors, &self.file, line, &e)?;
                    let msg = format!("skipped malformed markup: {e}");
                    self.warn_at(line, msg);
                    continue;
                }
            };
            errors = 0;
            let (start, empty) = match event {
                Event::Start(e) => (e.into_owned(), false),
                Event::Empty(e) => (e.into_owned(), true),
                Event::End(e) if e.name().as_ref() == "tv" => {
                    self.done = true;
                    return Ok(None);
                }
                Event::End(e) => {
                    let name = e.name().as_ref().to_string();
                    self.warn_at(line, format!("stray end tag </{name}> ignored"));
                    continue;
                }
                Event::Eof => {
                    return Err(XmltvError::Truncated {
                        file: self.file.clone(),
                        line,
                    });
                }
                _ => continue,
            };
            let name = start.name().as_ref().to_string();
            let line = self.line();
            let root = match parse_attrs(&start) {
                Ok(attrs) => Ok(Element {
                    name: name.clone(),
                    attrs,
                    children: Vec::new(),
                }),
                Err(why) => Err(why),
            };
            let subtree = match (root, empty) {
                (Ok(root), true) => Subtree::Ok(root),
                (Ok(root), false) => self.read_subtree(root)?,
                (Err(why), true) => Subtree::Bad(why),
                (Err(why), false) => {
                    // Read (and drop) the children so that reading resumes after it.
                    match self.read_subtree(Element::new(name.clone()))? {
                        Subtree::Ok(_) => Subtree::Bad(why),
                        bad => bad,
                    }
                }
            };
            let element = match subtree {
                Subtree::Ok(e) => e,
                Subtree::Bad(why) => {
                    self.warn_at(line, format!("skipped malformed <{name}>: {why}"));
                    continue;
                }
            };
            let item = match name.as_str() {
                "channel" => channel(element),
                "programme" => programme(element),
                _ => {
                    self.warn_at(
                        line,
                        format!("skipped <{name}>: not a channel or programme"),
                    );
                    continue;
                }
            };
            match item {
                Ok(item) => return Ok(Some(item)),
                Err(why) => self.warn_at(line, format!("skipped <{name}>: {why}")),
            }
        }
    }

    /// Read the children of `root` (whose start tag was just read) up to its end tag.
    fn read_subtree(&mut self, root: Element) -> Result<Subtree, XmltvError> {
        let mut stack = vec![root];
        let mut bad: Option<String> = None;
        let mut errors = 0;
        loop {
            let line = self.line();
            let event = match self.read_event()? {
                Ok(e) => e,
                Err(e) => {
                    count_error(&mut errors, &self.file, line, &e)?;
                    bad.get_or_insert_with(|| e.to_string());
                    continue;
                }
            };
            errors = 0;
            let top = stack
                .last_mut()
                .expect("stack holds the item until it closes");
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let is_empty = matches!(event, Event::Empty(_));
                    let name = e.name().as_ref().to_string();
                    let attrs = parse_attrs(e).unwrap_or_else(|why| {
                        bad.get_or_insert(why);
                        Vec::new()
                    });
                    let element = Element {
                        name,
                        attrs,
                        children: Vec::new(),
                    };
                    if is_empty {
                        top.children.push(Node::Element(element));
                    } else {
                        stack.push(element);
                    }
                }
                Event::End(e) => {
                    let name = e.name();
                    let name = name.as_ref();
                    let Some(at) = stack.iter().rposition(|el| el.name == name) else {
                        if name == "tv" {
                            // The guide ends inside this item.
                            self.done = true;
                            return Ok(Subtree::Bad("unclosed at </tv>".into()));
                        }
                        bad.get_or_insert_with(|| format!("stray end tag </{}>", name));
                        continue;
                    };
                    if at + 1 != stack.len() {
                        bad.get_or_insert_with(|| {
                            format!(
                                "<{}> closed by </{}>",
                                stack.last().map_or("", |e| e.name.as_str()),
                                name
                            )
                        });
                    }
                    // Close everything down to the matching element.
                    while stack.len() > at + 1 {
                        let child = stack.pop().expect("len > at + 1");
                        attach(&mut stack, child);
                    }
                    let mut closed = stack.pop().expect("matched element");
                    closed.drop_layout_text();
                    if stack.is_empty() {
                        return Ok(match bad {
                            Some(why) => Subtree::Bad(why),
                            None => Subtree::Ok(closed),
                        });
                    }
                    attach(&mut stack, closed);
                }
                Event::Text(t) => top.push_text(&t.xml10_content()),
                Event::CData(c) => top.push_text(&c.xml10_content()),
                Event::GeneralRef(r) => match resolve_ref(&r) {
                    Ok(text) => top.push_text(&text),
                    Err(why) => {
                        bad.get_or_insert(why);
                    }
                },
                Event::Eof => {
                    return Err(XmltvError::Truncated {
                        file: self.file.clone(),
                        line,
                    });
                }
                // Comments, PIs, a DOCTYPE in the wrong place: not data.
                _ => {}
            }
        }
    }
}

fn attach(stack: &mut [Element], mut child: Element) {
    child.drop_layout_text();
    if let Some(parent) = stack.last_mut() {
        parent.children.push(Node::Element(child));
    }
}

/// The text of `&name;`: only predefined entities and character references.
fn resolve_ref(r: &BytesRef<'_>) -> Result<Cow<'static, str>, String> {
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

/// Attributes in order, values unescaped (predefined entities and character references only).
fn parse_attrs(e: &BytesStart<'_>) -> Result<Vec<(String, String)>, String> {
    let mut attrs = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| err.to_string())?;
        let key = attr.key.as_ref().to_string();
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| format!("attribute {key}: {err}"))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(attrs)
}

fn take_attr(attrs: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let at = attrs.iter().position(|(k, _)| k == name)?;
    Some(attrs.remove(at).1)
}

fn channel(mut e: Element) -> Result<Item, String> {
    let id = take_attr(&mut e.attrs, "id").filter(|id| !id.trim().is_empty());
    let id = id.ok_or("no id attribute")?;
    Ok(Item::Channel(GuideChannel {
        id,
        attrs: e.attrs,
        children: e.children,
    }))
}

fn programme(mut e: Element) -> Result<Item, String> {
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

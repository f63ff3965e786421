//! The pull loop over quick-xml events. quick-xml's own end-tag checks are off: this reader
//! keeps its own stack per item so that after a bad end tag it can tell which element was
//! broken, skip just that `<programme>` or `<channel>`, and resume at the next one. quick-xml
//! never sees text, and only sees markup that fits its cap: [`bounded`] reads text and skips
//! what runs past a cap, so memory stays bounded whatever the guide holds.

use std::io::BufRead;
use std::path::Path;

use quick_xml::events::Event;

use super::bounded::{self, Ahead, Kind, Skipped, TEXT_CAP};
use super::items::{channel, parse_attrs, programme, resolve_ref};
use super::tree::Element;
use super::utf8::{self, Utf8Reader};
use super::walk::{Closed, NODE_COST, Subtree, Walk, normalize_newlines};
use super::{Item, Warning, XmltvError};

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
    /// Elements skipped because something in them ran past a cap.
    oversized: u64,
    /// Text read by [`bounded::text`], reused.
    text: Vec<u8>,
    done: bool,
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
            oversized: 0,
            text: Vec::new(),
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

    /// Elements skipped (with a warning) because text, a tag, an attribute value or the
    /// whole element ran past its cap (see [`bounded`]).
    pub fn oversized(&self) -> u64 {
        self.oversized
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

    fn io_error(&self, e: std::io::Error) -> XmltvError {
        XmltvError::Io {
            file: self.file.clone(),
            source: e,
        }
    }

    /// Read (and skip) text outside any item: whitespace, or junk that is warned about.
    /// Before the root, junk is not XML: stop at its first byte.
    fn skip_outside_text(&mut self, before_root: bool) -> Result<bool, XmltvError> {
        let line = self.line();
        let run = bounded::text(self.xml.get_mut(), 0, None, before_root)
            .map_err(|e| self.io_error(e))?;
        if run.junk && !before_root {
            let msg = format!("skipped {} bytes of text outside elements", run.len);
            self.warn_at(line, msg);
        }
        Ok(run.junk)
    }

    fn ahead(&mut self) -> Result<Ahead, XmltvError> {
        bounded::ahead(self.xml.get_mut()).map_err(|e| self.io_error(e))
    }

    /// Skip the prolog (declaration, DOCTYPE, comments) up to `<tv>`.
    fn find_root(&mut self) -> Result<(), XmltvError> {
        let not_xml = |r: &Self, detail: String| XmltvError::NotXml {
            file: r.file.clone(),
            line: r.line(),
            detail,
        };
        loop {
            if self.skip_outside_text(true)? {
                return Err(not_xml(self, "text before the root element".into()));
            }
            match self.ahead()? {
                Ahead::Fits => {}
                Ahead::BadRef => {
                    return Err(not_xml(self, "content before the root element".into()));
                }
                Ahead::Oversized(s) if matches!(s.kind, Kind::Start | Kind::End | Kind::CData) => {
                    let detail = format!("markup longer than {} MiB", bounded::MARKUP_CAP >> 20);
                    return Err(not_xml(self, detail));
                }
                // A huge comment, PI or DOCTYPE: skipped, never interpreted.
                Ahead::Oversized(_) => continue,
            }
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
                            let msg = format!("<tv> attributes ignored: {}", why.message);
                            self.warn_at(line, msg);
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

    /// Report a skipped item.
    fn skipped(&mut self, line: u64, name: &str, why: &str, over_cap: bool) {
        if over_cap {
            self.oversized += 1;
        }
        self.warn_at(line, format!("skipped malformed <{name}>: {why}"));
    }

    /// The next channel or programme; `None` after `</tv>`.
    pub fn next_item(&mut self) -> Result<Option<Item>, XmltvError> {
        let mut errors = 0;
        loop {
            if self.done {
                return Ok(None);
            }
            self.skip_outside_text(false)?;
            let line = self.line();
            match self.ahead()? {
                Ahead::Fits => {}
                Ahead::BadRef => {
                    self.warn_at(line, "skipped a malformed reference".into());
                    continue;
                }
                Ahead::Oversized(s) => {
                    self.oversized_outside(line, s)?;
                    continue;
                }
            }
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
            let subtree = match (parse_attrs(&start), empty) {
                (Ok(attrs), true) => Subtree::Ok(Element {
                    name: name.clone(),
                    attrs,
                    children: Vec::new(),
                }),
                (Ok(attrs), false) => {
                    let root = Element {
                        name: name.clone(),
                        attrs,
                        children: Vec::new(),
                    };
                    self.read_subtree(root, true)?
                }
                (Err(why), true) => Subtree::Bad(why.message, why.over_cap),
                (Err(why), false) => {
                    // Read (and drop) the children so that reading resumes after it.
                    match self.read_subtree(Element::new(name.clone()), false)? {
                        Subtree::Bad(_, true) => Subtree::Bad(why.message, true),
                        _ => Subtree::Bad(why.message, why.over_cap),
                    }
                }
            };
            let element = match subtree {
                Subtree::Ok(e) => e,
                Subtree::Bad(why, over_cap) => {
                    self.skipped(line, &name, &why, over_cap);
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

    /// Markup past its cap between items: an oversized start tag skips its whole element.
    fn oversized_outside(&mut self, line: u64, s: Skipped) -> Result<(), XmltvError> {
        match s.kind {
            Kind::Start => {
                if !s.self_closing {
                    self.read_subtree(Element::new(s.name.clone()), false)?;
                }
                let why = format!("start tag longer than {} MiB (cap)", TEXT_CAP >> 20);
                self.skipped(line, &s.name, &why, true);
            }
            Kind::End if s.name == "tv" => self.done = true,
            Kind::End => {
                let msg = format!("stray end tag </{}> ignored", s.name);
                self.warn_at(line, msg);
            }
            Kind::CData => {
                self.oversized += 1;
                let msg = format!("skipped CDATA longer than {} MiB (cap)", TEXT_CAP >> 20);
                self.warn_at(line, msg);
            }
            // Comments, PIs, declarations carry no data.
            Kind::Comment | Kind::Pi | Kind::Decl => {}
        }
        Ok(())
    }

    /// Read the children of `root` (whose start tag was just read) up to its end tag. With
    /// `keep` false (or once something passed a cap) nothing is built: the subtree is only
    /// read through, its end tags matched by name (and past [`MAX_DEPTH`] only counted).
    fn read_subtree(&mut self, root: Element, keep: bool) -> Result<Subtree, XmltvError> {
        let mut walk = Walk {
            cost: NODE_COST + root.name.len(),
            stack: vec![root],
            deeper: 0,
            keep,
            bad: None,
            over_cap: false,
        };
        let mut errors = 0;
        loop {
            // Text, read here (bounded), never by quick-xml.
            self.text.clear();
            let keep_text = walk.keep.then_some(&mut self.text);
            let run = bounded::text(self.xml.get_mut(), TEXT_CAP, keep_text, false)
                .map_err(|e| self.io_error(e))?;
            if run.over {
                walk.capped(format!("text longer than {} MiB (cap)", TEXT_CAP >> 20));
            } else if walk.keep && run.len > 0 {
                let text = String::from_utf8_lossy(&self.text);
                walk.push_text(&normalize_newlines(&text));
            }
            match self.ahead()? {
                Ahead::Fits => {}
                Ahead::BadRef => {
                    walk.fail("malformed reference".into());
                    continue;
                }
                Ahead::Oversized(s) => {
                    match s.kind {
                        Kind::Start => {
                            let mib = bounded::MARKUP_CAP >> 20;
                            let why = format!("<{}> tag longer than {mib} MiB (cap)", s.name);
                            walk.capped(why);
                            if !s.self_closing {
                                walk.open(Element::new(s.name));
                            }
                        }
                        Kind::End => {
                            if let Some(done) = walk.close(&s.name) {
                                return Ok(self.finish(done));
                            }
                        }
                        Kind::CData => {
                            walk.capped(format!("CDATA longer than {} MiB (cap)", TEXT_CAP >> 20));
                        }
                        Kind::Comment | Kind::Pi | Kind::Decl => {}
                    }
                    continue;
                }
            }
            let event = match self.read_event()? {
                Ok(e) => e,
                Err(e) => {
                    let line = self.line();
                    count_error(&mut errors, &self.file, line, &e)?;
                    walk.fail(e.to_string());
                    continue;
                }
            };
            errors = 0;
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let is_empty = matches!(event, Event::Empty(_));
                    let mut element = Element::new(e.name().as_ref());
                    if walk.keep {
                        match parse_attrs(e) {
                            Ok(attrs) => element.attrs = attrs,
                            Err(why) if why.over_cap => walk.capped(why.message),
                            Err(why) => walk.fail(why.message),
                        }
                    }
                    if is_empty {
                        walk.add_empty(element);
                    } else {
                        walk.open(element);
                    }
                }
                Event::End(e) => {
                    if let Some(done) = walk.close(e.name().as_ref()) {
                        return Ok(self.finish(done));
                    }
                }
                Event::Text(t) => walk.push_text(&t.xml10_content()),
                Event::CData(c) => walk.push_text(&c.xml10_content()),
                Event::GeneralRef(r) => match resolve_ref(&r) {
                    Ok(text) => walk.push_text(&text),
                    Err(why) => walk.fail(why),
                },
                Event::Eof => {
                    return Err(XmltvError::Truncated {
                        file: self.file.clone(),
                        line: self.line(),
                    });
                }
                // Comments, PIs, a DOCTYPE in the wrong place: not data.
                _ => {}
            }
        }
    }

    fn finish(&mut self, done: Closed) -> Subtree {
        match done {
            Closed::Item(subtree) => subtree,
            Closed::AtTv(subtree) => {
                // The guide ends inside this item.
                self.done = true;
                subtree
            }
        }
    }
}

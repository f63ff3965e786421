//! One `<channel>` or `<programme>` subtree as it is read: the stack of open elements, what
//! it costs against [`SUBTREE_CAP`], how deep it is, and whether it is already known bad. Past
//! a cap nothing more is built; the rest of the subtree is only read through.

use super::bounded::{MAX_DEPTH, SUBTREE_CAP, TEXT_CAP};
use super::items::attach;
use super::tree::{Element, Node};

/// Fixed cost counted per element, attribute and text node against [`SUBTREE_CAP`] (the
/// structs and vectors around the bytes).
pub(super) const NODE_COST: usize = 64;

/// The outcome of reading one item's subtree.
pub(super) enum Subtree {
    Ok(Element),
    /// Malformed: why, and whether a cap was passed. The item is skipped.
    Bad(String, bool),
}

/// How a subtree ended.
pub(super) enum Closed {
    Item(Subtree),
    /// `</tv>` came first: the item is bad and the guide is over.
    AtTv(Subtree),
}

/// The state of one item's subtree while it is read.
pub(super) struct Walk {
    pub(super) stack: Vec<Element>,
    /// Open elements past [`MAX_DEPTH`], counted only.
    pub(super) deeper: u64,
    /// Whether content is still being built (false once the item is known bad at a cap).
    pub(super) keep: bool,
    /// What [`SUBTREE_CAP`] counts so far.
    pub(super) cost: usize,
    pub(super) bad: Option<String>,
    pub(super) over_cap: bool,
}

impl Walk {
    /// Something is malformed: the item will be skipped (the first reason is kept).
    pub(super) fn fail(&mut self, why: String) {
        self.bad.get_or_insert(why);
    }

    /// Something ran past a cap: the item will be skipped, and nothing more is built.
    pub(super) fn capped(&mut self, why: String) {
        if !self.over_cap {
            self.over_cap = true;
            self.bad = Some(why);
        }
        if self.keep {
            self.keep = false;
            for element in &mut self.stack {
                element.attrs = Vec::new();
                element.children = Vec::new();
            }
        }
    }

    fn charge(&mut self, bytes: usize) {
        self.cost += bytes;
        if self.cost > SUBTREE_CAP {
            self.capped(format!(
                "element larger than {} MiB (cap)",
                SUBTREE_CAP >> 20
            ));
        }
    }

    fn element_cost(element: &Element) -> usize {
        NODE_COST
            + element.name.len()
            + element
                .attrs
                .iter()
                .map(|(k, v)| NODE_COST + k.len() + v.len())
                .sum::<usize>()
    }

    fn top(&mut self) -> &mut Element {
        self.stack
            .last_mut()
            .expect("stack holds the item until it closes")
    }

    pub(super) fn push_text(&mut self, text: &str) {
        if !self.keep || text.is_empty() || self.deeper > 0 {
            return;
        }
        self.charge(text.len() + NODE_COST);
        if !self.keep {
            return;
        }
        self.top().push_text(text);
        if let Some(Node::Text(t)) = self.top().children.last()
            && t.len() > TEXT_CAP
        {
            self.capped(format!("text longer than {} MiB (cap)", TEXT_CAP >> 20));
        }
    }

    pub(super) fn add_empty(&mut self, element: Element) {
        if self.keep && self.deeper == 0 {
            self.charge(Self::element_cost(&element));
            if self.keep {
                self.top().children.push(Node::Element(element));
            }
        }
    }

    pub(super) fn open(&mut self, element: Element) {
        if self.deeper > 0 || self.stack.len() >= MAX_DEPTH {
            self.deeper += 1;
            self.capped(format!("nested deeper than {MAX_DEPTH}"));
            return;
        }
        if self.keep {
            self.charge(Self::element_cost(&element));
        }
        self.stack.push(element);
    }

    /// An end tag; `Some` when it closes the item (or the guide).
    pub(super) fn close(&mut self, name: &str) -> Option<Closed> {
        if self.deeper > 0 {
            self.deeper -= 1;
            return None;
        }
        let Some(at) = self.stack.iter().rposition(|el| el.name == name) else {
            if name == "tv" {
                let why = self
                    .bad
                    .take()
                    .unwrap_or_else(|| "unclosed at </tv>".into());
                return Some(Closed::AtTv(Subtree::Bad(why, self.over_cap)));
            }
            self.fail(format!("stray end tag </{name}>"));
            return None;
        };
        if at + 1 != self.stack.len() {
            let top = self.stack.last().map_or("", |e| e.name.as_str());
            let why = format!("<{top}> closed by </{name}>");
            self.fail(why);
        }
        // Close everything down to the matching element.
        while self.stack.len() > at + 1 {
            let child = self.stack.pop().expect("len > at + 1");
            attach(&mut self.stack, child);
        }
        let mut closed = self.stack.pop().expect("matched element");
        closed.drop_layout_text();
        if self.stack.is_empty() {
            return Some(Closed::Item(match self.bad.take() {
                Some(why) => Subtree::Bad(why, self.over_cap),
                None => Subtree::Ok(closed),
            }));
        }
        attach(&mut self.stack, closed);
        None
    }
}

/// XML end-of-line handling: `\r\n` and lone `\r` read as `\n`.
pub(super) fn normalize_newlines(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\r') {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
}

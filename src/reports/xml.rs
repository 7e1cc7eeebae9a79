//! The XML reader every XML report format shares: quick-xml's streaming reader, turned
//! into start/end/text callbacks with local names (namespaces dropped), attributes and
//! text unescaped. A DTD is skipped and never read: entities it declares are never
//! expanded (a reference to one stays as written), so a billion laughs costs nothing and
//! an external entity is never fetched. Nesting is bounded by [`MAX_XML_DEPTH`].

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// Deepest element nesting read (real reports nest about 6).
pub const MAX_XML_DEPTH: usize = 256;

/// What the reader hands to a format.
pub(super) enum Xml<'a> {
    /// An element starts: its local name, and its attributes and depth (a self-closing one
    /// ends at once).
    Start(&'a str, &'a Element),
    End(&'a str),
    /// Text or CDATA inside the current element.
    Text(&'a str),
}

/// An element as it starts: its attributes (unescaped, local names) and its depth (the
/// root is 1), so a format can tell an element's own children from deeper ones.
#[derive(Debug, Default)]
pub(super) struct Element {
    attrs: Vec<(String, String)>,
    depth: usize,
}

impl Element {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    fn read(start: &BytesStart, depth: usize) -> Element {
        let mut attrs = Vec::new();
        for attr in start.attributes().with_checks(false).flatten() {
            let name = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
            let value = match attr.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
                Ok(value) => value.into_owned(),
                // An entity of a DTD is not expanded: the value stays as written.
                Err(_) => String::from_utf8_lossy(&attr.value).into_owned(),
            };
            attrs.push((name, value));
        }
        Element { attrs, depth }
    }
}

/// Reads XML from `input`, calling `on` for each element and text; `root` says which root
/// elements this format takes (else the error names the root found). An `Err` from `on`
/// stops the reading with that reason.
pub(super) fn read(
    input: impl BufRead,
    root: &[&str],
    mut on: impl FnMut(Xml) -> Result<(), String>,
) -> Result<(), String> {
    let mut reader = Reader::from_reader(input);
    reader.config_mut().trim_text(false);
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        buf.clear();
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if !seen_root {
                    if !root.contains(&name.as_str()) {
                        return Err(format!(
                            "the root element is <{name}>, not <{}>",
                            root.join("> or <")
                        ));
                    }
                    seen_root = true;
                }
                depth += 1;
                if depth > MAX_XML_DEPTH {
                    return Err(format!(
                        "elements nested more than {MAX_XML_DEPTH} deep (MAX_XML_DEPTH)"
                    ));
                }
                let element = Element::read(start, depth);
                on(Xml::Start(&name, &element))?;
                if empty {
                    depth -= 1;
                    on(Xml::End(&name))?;
                }
            }
            Event::End(ref end) => {
                depth = depth.saturating_sub(1);
                let name = String::from_utf8_lossy(end.local_name().as_ref()).into_owned();
                on(Xml::End(&name))?;
            }
            Event::Text(text) => {
                if let Ok(text) = text.decode() {
                    on(Xml::Text(&text))?;
                }
            }
            Event::CData(data) => {
                on(Xml::Text(&String::from_utf8_lossy(&data)))?;
            }
            Event::GeneralRef(reference) => {
                let text = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => {
                        let name = String::from_utf8_lossy(&reference).into_owned();
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .map_or_else(|| format!("&{name};"), str::to_owned)
                    }
                };
                on(Xml::Text(&text))?;
            }
            Event::Eof if depth > 0 => {
                return Err(format!(
                    "malformed XML: the file ends inside {depth} open element(s)"
                ));
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !seen_root {
        return Err("no XML element found".into());
    }
    Ok(())
}

/// A test case being read whose message is the text of a `<message>`-like element inside
/// it (TestNG, NUnit, TRX): fed every event, it hands the case back at its end tag.
#[derive(Debug, Default)]
pub(super) struct PendingCase {
    case: Option<super::TestCase>,
    message: Option<Bounded>,
    in_message: bool,
}

impl PendingCase {
    /// A case starts (its message comes later, if at all).
    pub fn start(&mut self, case: super::TestCase) {
        self.case = Some(case);
        self.message = None;
        self.in_message = false;
    }

    /// Reads `event`: the text of `message` elements becomes the message; at `end`, the
    /// finished case comes back.
    pub fn read(&mut self, event: &Xml, message: &str, end: &str) -> Option<super::TestCase> {
        match *event {
            Xml::Start(name, _) if name == message && self.case.is_some() => {
                self.in_message = true;
                self.message.get_or_insert_with(Bounded::default);
            }
            Xml::Text(text) if self.in_message => {
                if let Some(m) = &mut self.message {
                    m.push(text);
                }
            }
            Xml::End(name) if name == message => self.in_message = false,
            Xml::End(name) if name == end => {
                let mut case = self.case.take()?;
                case.message = self
                    .message
                    .take()
                    .map(|m| m.text.trim().to_owned())
                    .filter(|m| !m.is_empty());
                return Some(case);
            }
            _ => {}
        }
        None
    }
}

/// Text gathered up to a bound, for messages (the rest is dropped, marked `…`).
#[derive(Debug, Default)]
pub(super) struct Bounded {
    pub text: String,
    full: bool,
}

/// Longest message kept for a test case.
pub const MAX_MESSAGE_BYTES: usize = 4096;

impl Bounded {
    pub fn push(&mut self, more: &str) {
        if self.full {
            return;
        }
        if self.text.len() + more.len() > MAX_MESSAGE_BYTES {
            let mut cut = MAX_MESSAGE_BYTES.saturating_sub(self.text.len());
            while !more.is_char_boundary(cut) {
                cut -= 1;
            }
            self.text.push_str(&more[..cut]);
            self.text.push('…');
            self.full = true;
        } else {
            self.text.push_str(more);
        }
    }
}

//! Reader tests on the fixtures in fixtures/xmltv/, one quirk per file.

use std::path::PathBuf;

use super::*;

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/xmltv")
        .join(name)
}

fn read(name: &str) -> Result<(Vec<Item>, Vec<Warning>), XmltvError> {
    let mut reader = XmltvReader::open(&fixture(name), 1 << 30)?;
    let mut items = Vec::new();
    while let Some(item) = reader.next_item()? {
        items.push(item);
    }
    Ok((items, reader.take_warnings()))
}

fn channels(items: &[Item]) -> Vec<&GuideChannel> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Channel(c) => Some(c),
            Item::Programme(_) => None,
        })
        .collect()
}

fn programmes(items: &[Item]) -> Vec<&Programme> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Programme(p) => Some(p),
            Item::Channel(_) => None,
        })
        .collect()
}

fn title(p: &Programme) -> String {
    tree::child_elements(&p.children, "title")
        .next()
        .map(Element::text)
        .unwrap_or_default()
}

fn child_names(nodes: &[Node]) -> Vec<&str> {
    nodes
        .iter()
        .filter_map(|n| match n {
            Node::Element(e) => Some(e.name.as_str()),
            Node::Text(_) => None,
        })
        .collect()
}

#[test]
fn rich_guide_is_read_losslessly() {
    let (items, warnings) = read("rich.xml").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let chans = channels(&items);
    assert_eq!(chans.len(), 2);
    let bbc = chans[0];
    assert_eq!(bbc.id, "bbc1.uk");
    assert_eq!(
        bbc.display_names().collect::<Vec<_>>(),
        [("en", "BBC One".to_string()), ("", "BBC 1".to_string())]
    );
    assert_eq!(
        bbc.icons().collect::<Vec<_>>(),
        ["http://logo.example/bbc1.png"]
    );
    assert_eq!(bbc.urls().collect::<Vec<_>>(), ["http://bbc.example/one"]);

    let progs = programmes(&items);
    assert_eq!(progs.len(), 3);
    let p = progs[0];
    assert_eq!(p.channel, "bbc1.uk");
    assert_eq!(p.start.to_string(), "20240301060000 +0000");
    assert_eq!(p.stop.unwrap().to_string(), "20240301070000 +0000");
    let attr_names: Vec<&str> = p.attrs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        attr_names,
        [
            "pdc-start",
            "vps-start",
            "showview",
            "videoplus",
            "clumpidx"
        ]
    );
    assert_eq!(child_names(&p.children).len(), 28);
    assert_eq!(title(p), "Breakfast & News");
    let desc = tree::child_elements(&p.children, "desc").next().unwrap();
    assert_eq!(desc.text(), "The news, with <tags> éscaped.");
    let credits = tree::child_elements(&p.children, "credits").next().unwrap();
    let actor = credits.elements("actor").next().unwrap();
    assert_eq!(actor.attr("role"), Some("Host"));
    assert_eq!(actor.text(), "A. Ctor");
    assert_eq!(child_names(&actor.children), ["image", "url"]);
    assert_eq!(progs[2].start.offset, 3600);
}

#[test]
fn gzip_and_xz_by_magic_bytes() {
    let plain = read("rich.xml").unwrap().0;
    assert_eq!(read("rich.xml.gz").unwrap().0, plain);
    assert_eq!(read("rich.xml.xz").unwrap().0, plain);
}

#[test]
fn out_of_order_and_undeclared_are_kept_as_written() {
    let (items, warnings) = read("out-of-order.xml").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let c = channels(&items)[0];
    assert_eq!(c.attrs, [("x-number".to_string(), "7".to_string())]);
    assert_eq!(child_names(&c.children), ["icon", "display-name", "url"]);
    let p = programmes(&items)[0];
    assert_eq!(p.attrs, [("catchup-id".to_string(), "991".to_string())]);
    assert_eq!(
        child_names(&p.children),
        [
            "episode-num",
            "desc",
            "series-id",
            "title",
            "category",
            "date",
            "category"
        ]
    );
    assert_eq!(p.start.offset, -5 * 3600);
}

#[test]
fn declared_encodings() {
    let (items, _) = read("latin1.xml").unwrap();
    assert_eq!(
        channels(&items)[0].display_names().next().unwrap().1,
        "Télé Française"
    );
    assert_eq!(title(programmes(&items)[0]), "Le Journal de 20h à la télé");
    let (items, _) = read("cp1252.xml").unwrap();
    assert_eq!(title(programmes(&items)[0]), "\u{201c}Prices\u{201d} in €");
}

#[test]
fn short_times_and_missing_offsets() {
    let (items, warnings) = read("times.xml").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let progs = programmes(&items);
    let shown: Vec<(String, Option<String>)> = progs
        .iter()
        .map(|p| (p.start.to_string(), p.stop.map(|t| t.to_string())))
        .collect();
    assert_eq!(
        shown,
        [
            (
                "20240301120000 +0000".to_string(),
                Some("20240301130000 +0000".to_string())
            ),
            (
                "20240301130000 +0100".to_string(),
                Some("20240301000000 +0000".to_string())
            ),
            ("20240302000000 +0000".to_string(), None),
        ]
    );
}

#[test]
fn malformed_items_are_skipped_with_file_and_line() {
    let (items, warnings) = read("malformed.xml").unwrap();
    assert_eq!(channels(&items).len(), 1);
    let titles: Vec<String> = programmes(&items).into_iter().map(title).collect();
    assert_eq!(titles, ["First good", "Last good & fine"]);
    let lines: Vec<u64> = warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [4, 8, 12, 15], "{warnings:#?}");
    for w in &warnings {
        assert!(w.file.ends_with("malformed.xml"));
        assert!(
            w.to_string()
                .contains(&format!("malformed.xml:{}: skipped", w.line)),
            "{w}"
        );
    }
    assert!(warnings[1].message.contains("</titel>"), "{}", warnings[1]);
    assert!(warnings[2].message.contains("start"), "{}", warnings[2]);
}

#[test]
fn not_a_guide_is_an_error() {
    assert!(matches!(
        read("not-xml.xml"),
        Err(XmltvError::NotXml { .. })
    ));
    match read("not-xmltv.xml") {
        Err(XmltvError::NotXmltv { found, line, .. }) => {
            assert_eq!((found.as_str(), line), ("rss", 2))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        read("truncated.xml"),
        Err(XmltvError::Truncated { .. })
    ));
    let missing = XmltvReader::open(&fixture("no-such-file.xml"), 1 << 20);
    assert!(matches!(missing, Err(XmltvError::Io { .. })));
}

#[test]
fn entity_declarations_are_never_expanded() {
    let (items, warnings) = read("billion-laughs.xml").unwrap();
    let titles: Vec<String> = programmes(&items).into_iter().map(title).collect();
    assert_eq!(titles, ["Survivor"]);
    assert_eq!(warnings.len(), 2);
    assert!(
        warnings.iter().all(|w| w.message.contains("lol9")),
        "{warnings:?}"
    );

    let (items, warnings) = read("external-entity.xml").unwrap();
    let debug = format!("{items:?}");
    assert!(!debug.contains("root:"), "external entity was read");
    assert_eq!(
        channels(&items)
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        ["y.uk"]
    );
    assert_eq!(
        programmes(&items)
            .into_iter()
            .map(title)
            .collect::<Vec<_>>(),
        ["Safe"]
    );
    assert_eq!(warnings.len(), 2, "{warnings:?}");
}

#[test]
fn bytes_not_in_the_encoding_are_replaced_not_fatal() {
    let text =
        b"<tv><channel id=\"a\"><display-name>Bad \xff byte</display-name></channel></tv>".to_vec();
    let input: Box<dyn std::io::BufRead + Send> = Box::new(std::io::Cursor::new(text));
    let mut reader = XmltvReader::new(input, "mem").unwrap();
    let Some(Item::Channel(c)) = reader.next_item().unwrap() else {
        panic!()
    };
    assert_eq!(c.display_names().next().unwrap().1, "Bad \u{fffd} byte");
    assert!(reader.next_item().unwrap().is_none());
}

fn read_bytes(doc: Vec<u8>) -> (Vec<Item>, Vec<Warning>, u64) {
    let input: Box<dyn std::io::BufRead + Send> = Box::new(std::io::Cursor::new(doc));
    let mut reader = XmltvReader::new(input, "big.xml").unwrap();
    let mut items = Vec::new();
    while let Some(item) = reader.next_item().unwrap() {
        items.push(item);
    }
    let oversized = reader.oversized();
    (items, reader.take_warnings(), oversized)
}

fn guide(middle: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\"?>\n<tv>\n<channel id=\"a\"><display-name>A</display-name></channel>\n\
         {middle}\n<channel id=\"z\"><display-name>Z</display-name></channel>\n</tv>\n"
    )
    .into_bytes()
}

fn ids(items: &[Item]) -> Vec<&str> {
    channels(items).iter().map(|c| c.id.as_str()).collect()
}

#[test]
fn elements_past_a_cap_are_skipped_with_a_located_warning() {
    use super::bounded::{ATTR_CAP, SUBTREE_CAP, TEXT_CAP};
    let huge_text = "x".repeat(TEXT_CAP + 1);
    let huge_attr = "y".repeat(ATTR_CAP + 1);
    let huge_tag = format!("<icon src=\"{}\"/>", "z".repeat(TEXT_CAP + 1));
    let many = "<display-name>0123456789abcdef</display-name>".repeat(SUBTREE_CAP / 100);
    let deep = "<a>".repeat(100) + &"</a>".repeat(100);
    for (what, body) in [
        ("text", format!("<display-name>{huge_text}</display-name>")),
        (
            "text around references",
            format!(
                "<display-name>{0}&amp;{0}</display-name>",
                "x".repeat(TEXT_CAP / 2 + 1)
            ),
        ),
        (
            "CDATA",
            format!("<display-name><![CDATA[{huge_text}]]></display-name>"),
        ),
        ("attribute", format!("<icon src=\"{huge_attr}\"/>")),
        ("tag", huge_tag),
        ("subtree", many),
        ("depth", deep),
    ] {
        let doc = guide(&format!("<channel id=\"big\">\n{body}</channel>"));
        let (items, warnings, oversized) = read_bytes(doc);
        assert_eq!(ids(&items), ["a", "z"], "{what}");
        assert_eq!(oversized, 1, "{what}");
        assert_eq!(warnings.len(), 1, "{what}: {warnings:?}");
        assert_eq!(warnings[0].line, 4, "{what}");
        assert!(
            warnings[0].message.contains("<channel>"),
            "{what}: {}",
            warnings[0]
        );
    }
}

#[test]
fn junk_between_elements_is_skipped_and_warned() {
    let nul = "\0".repeat(3 << 20);
    let (items, warnings, oversized) = read_bytes(guide(&nul));
    assert_eq!(ids(&items), ["a", "z"]);
    assert_eq!(oversized, 0);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].message.contains("outside elements"),
        "{}",
        warnings[0]
    );
    let comment = format!("<!--{}-->", "c".repeat(3 << 20));
    let (items, warnings, _) = read_bytes(guide(&comment));
    assert_eq!((ids(&items), warnings.len()), (vec!["a", "z"], 0));
    // Junk before the root is not XML, found without reading it all.
    let input: Box<dyn std::io::BufRead + Send> =
        Box::new(std::io::Cursor::new(format!("{nul}<tv></tv>").into_bytes()));
    let err = XmltvReader::new(input, "nul.xml").err().expect("not XML");
    assert!(matches!(err, XmltvError::NotXml { .. }), "{err}");
}

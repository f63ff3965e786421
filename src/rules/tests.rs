//! Tests of compiled mappings and filters against configurations written as users write them,
//! and properties: printing re-parses to the same tree, and results do not depend on the
//! number of threads.

use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::config::Config;
use crate::model::{Channel, Field};

const SOURCE: &str = r#"
[[source]]
name = "a"
m3u = "a.m3u"
"#;

fn config(rules: &str, proxy: &str) -> Result<Config, String> {
    let text = format!(
        "{SOURCE}\n{rules}\n[[proxy]]\nname = \"p\"\nsources = [\"a\"]\nm3u = \"p.m3u\"\n{proxy}\n"
    );
    Config::from_text_checked(Path::new("/tmp/lineup.toml"), text, &[validate])
        .map_err(|e| e.to_string())
}

fn rules(rules: &str, proxy: &str) -> ProxyRules {
    let config = config(rules, proxy).unwrap_or_else(|e| panic!("{e}"));
    ProxyRules::compile(&config, &config.file.proxies[0]).unwrap()
}

fn channel(name: &str, group: &str, id: &str) -> Channel {
    Channel {
        source: "a".into(),
        duration: "-1".into(),
        attrs: vec![
            ("tvg-id".into(), id.into()),
            ("tvg-name".into(), name.into()),
            ("group-title".into(), group.into()),
        ],
        name: name.into(),
        directives: vec![],
        url: format!("http://x/{id}"),
        ..Channel::default()
    }
}

#[test]
fn mapping_templates_with_captures_and_fields() {
    let r = rules(
        r#"
[[mapping]]
name = "shift"
when = 'channel_name matches "^(.+) \+([0-9]{1,2})$"'
set = { channel_name = "$1", tvg_shift = "$2", tvg_name = "{channel_name} ({group_title})" }
"#,
        r#"mappings = ["shift"]"#,
    );
    let (out, stats) = r.apply(vec![
        channel("BBC One +1", "UK", "bbcone.uk"),
        channel("BBC Two", "UK", "bbctwo.uk"),
    ]);
    assert_eq!(out[0].name, "BBC One");
    assert_eq!(out[0].get(&Field::TvgShift), "1");
    // Templates read the channel as it was before the mapping.
    assert_eq!(out[0].get(&Field::TvgName), "BBC One +1 (UK)");
    // tvg-shift was appended; the others kept their places.
    let keys: Vec<&str> = out[0].attrs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["tvg-id", "tvg-name", "group-title", "tvg-shift"]);
    assert_eq!(out[1], channel("BBC Two", "UK", "bbctwo.uk"));
    assert_eq!(stats.changed_by_mappings, 1);
    assert_eq!(stats.channels_in, 2);
}

#[test]
fn mappings_run_in_order_and_default_fills_only_empty_fields() {
    let r = rules(
        r#"
[[mapping]]
name = "strip"
when = 'channel_name matches "^[A-Z]{2}: (.*)$"'
set = { channel_name = "$1" }
[[mapping]]
name = "groups"
set = { group_title = "{catchup-days}" }
default = { group_title = "Other", tvg_logo = "{tvg_id}.png", catchup-days = "0" }
"#,
        r#"mappings = ["strip", "groups"]"#,
    );
    let mut with_days = channel("UK: Sky", "Movies", "sky");
    with_days.set_attr("catchup-days", "3");
    with_days.set_attr("tvg-logo", "logo.png");
    let (out, _) = r.apply(vec![with_days, channel("DE: ARD", "News", "ard")]);
    assert_eq!(out[0].name, "Sky");
    assert_eq!(out[0].get(&Field::GroupTitle), "3");
    assert_eq!(out[0].get(&Field::TvgLogo), "logo.png");
    assert_eq!(out[0].get(&Field::Attr("catchup-days".into())), "3");
    assert_eq!(out[1].name, "ARD");
    // `set` left group_title empty, so `default` filled it.
    assert_eq!(out[1].get(&Field::GroupTitle), "Other");
    assert_eq!(out[1].get(&Field::TvgLogo), "ard.png");
    assert_eq!(out[1].get(&Field::Attr("catchup-days".into())), "0");
}

#[test]
fn include_and_exclude_filters() {
    let filters = r#"
[[filter]]
name = "uk"
include = 'tvg_id ends_with ".uk" OR group_title starts_with "UK"'
[[filter]]
name = "de"
include = 'group_title equals "DE"'
[[filter]]
name = "no-adult"
exclude = 'group_title matches "adult|xxx"'
[[filter]]
name = "no-hd"
exclude = 'channel_name ends_with " HD"'
"#;
    let input = vec![
        channel("BBC One", "UK | General", "bbcone.uk"), // kept by uk
        channel("ARD", "DE", "ard.de"),                  // kept by de
        channel("TF1", "FR", "tf1.fr"),                  // no include
        channel("Blue", "UK | Adult", "blue.uk"),        // excluded
        channel("Sky HD", "XXX", "sky.uk"),              // both excludes: counted once
    ];
    let r = rules(filters, r#"filters = ["no-hd", "uk", "no-adult", "de"]"#);
    let (out, stats) = r.apply(input.clone());
    let names: Vec<&str> = out.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["BBC One", "ARD"]);
    assert_eq!(stats.filtered_out, 3);
    assert_eq!(stats.not_included, 1);
    assert_eq!(stats.excluded_by["no-adult"], 1);
    assert_eq!(stats.excluded_by["no-hd"], 1);

    // Excludes only: everything not excluded is kept.
    let r = rules(filters, r#"filters = ["no-adult"]"#);
    let (out, stats) = r.apply(input.clone());
    assert_eq!(out.len(), 3);
    assert_eq!(stats.excluded_by["no-adult"], 2);
    assert_eq!(stats.not_included, 0);

    // No rules at all: channels pass unchanged.
    let r = rules(filters, "");
    assert!(r.is_empty());
    assert_eq!(r.apply(input.clone()).0, input);

    let mut total = RuleStats::default();
    total.merge(stats.clone());
    total.merge(stats);
    assert_eq!(total.excluded_by["no-adult"], 4);
    assert_eq!(total.channels_in, 10);
}

#[test]
fn every_bad_rule_is_reported_with_its_column() {
    let err = config(
        r#"
[[filter]]
name = "bad1"
include = 'group_title equalz "x"'
[[filter]]
name = "bad2"
exclude = 'tvg_id matches "(" OR tvg_id equals "x"'
[[mapping]]
name = "bad3"
when = 'channel_name matches "^(.+)$"'
set = { channel_name = "$2", tvg_name = "{nope_field}" }
[[mapping]]
name = "bad4"
set = { channel_name = "$1" }
"#,
        "",
    )
    .unwrap_err();
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("/tmp")).collect();
    assert_eq!(lines.len(), 5, "{err}");
    assert!(
        lines[0].starts_with(
            "/tmp/lineup.toml:9:24: filter `bad1` (include): unknown operator `equalz`"
        ),
        "{err}"
    );
    assert!(
        lines[1].starts_with("/tmp/lineup.toml:12:27: filter `bad2` (exclude): invalid regex"),
        "{err}"
    );
    assert!(
        err.contains("    group_title equalz \"x\"\n                ^"),
        "{err}"
    );
    assert!(
        err.contains("mapping `bad3`: set.channel_name: `$2`"),
        "{err}"
    );
    assert!(
        err.contains("mapping `bad3`: set.tvg_name: unknown field `nope_field`"),
        "{err}"
    );
    assert!(
        err.contains("mapping `bad4`: set.channel_name: `$1` needs a `when`"),
        "{err}"
    );
}

/// A small fixed set of rules exercised by the property tests.
fn sample_rules() -> ProxyRules {
    rules(
        r#"
[[mapping]]
name = "prefix"
when = 'channel_name matches "^([A-Z]{2}): (.+)$"'
set = { channel_name = "$2", tvg_name = "$1 {tvg_id}" }
[[mapping]]
name = "group"
when = 'group_title contains "|"'
set = { group_title = "{channel_name}" }
default = { tvg_logo = "x" }
[[filter]]
name = "keep"
include = 'tvg_id contains "a" OR channel_name < "M"'
[[filter]]
name = "drop"
exclude = 'channel_name ends_with "9"'
"#,
        r#"mappings = ["prefix", "group"]
filters = ["keep", "drop"]"#,
    )
}

fn arb_channel() -> impl Strategy<Value = Channel> {
    (
        "([A-Z]{2}: )?[A-Za-z0-9 ]{0,12}",
        "[A-Za-z |]{0,8}",
        "[a-z.]{0,6}",
    )
        .prop_map(|(name, group, id)| channel(&name, &group, &id))
}

fn arb_expr() -> impl Strategy<Value = String> {
    let field = prop::sample::select(vec![
        "channel_name",
        "tvg_id",
        "catchup-days",
        "GROUP_TITLE",
    ]);
    let op = prop::sample::select(vec![
        "equals",
        "not_contains",
        "not starts_with",
        "ENDS_WITH",
        "matches",
        ">",
        "<=",
    ]);
    let leaf = (field, any::<bool>(), op, "[a-z\\\\\"0-9 ]{0,5}").prop_map(|(f, cs, op, v)| {
        let cs = if cs { " case_sensitive" } else { "" };
        // `matches` needs a valid regex, but parsing does not compile it.
        let v = v.replace('\\', "\\\\").replace('"', "\\\"");
        format!("{f}{cs} {op} \"{v}\"")
    });
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("NOT ({e})")),
            inner.clone().prop_map(|e| format!("not {e}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} AND {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{a} OR ({b})")),
        ]
    })
}

proptest! {
    #[test]
    fn printing_re_parses_to_the_same_tree(text in arb_expr()) {
        let expr = parse(&text).unwrap();
        let printed = expr.to_string();
        prop_assert_eq!(parse(&printed).unwrap(), expr.clone(), "{}", printed);
        prop_assert_eq!(parse(&printed).unwrap().to_string(), printed);
    }

    #[test]
    fn output_does_not_depend_on_thread_count(chunk in prop::collection::vec(arb_channel(), 0..200)) {
        let r = sample_rules();
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let four = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
        let a = one.install(|| r.apply(chunk.clone()));
        let b = four.install(|| r.apply(chunk.clone()));
        // Sequential reference: apply_one in order.
        let mut reference = Vec::new();
        for mut ch in chunk {
            if r.apply_one(&mut ch).1 == Verdict::Keep {
                reference.push(ch);
            }
        }
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.0, reference);
    }
}

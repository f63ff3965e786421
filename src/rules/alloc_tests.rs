//! Allocation counts of the rules engine (issue 13): a channel that no mapping touches costs
//! no allocation, and a `matches` whose groups are used runs once and allocates nothing when
//! its values fit the fields' buffers. Counted by a global allocator wrapper, per thread, so
//! other tests running at the same time do not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use crate::config::Config;
use crate::model::Channel;
use crate::rules::ProxyRules;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed to `System` unchanged; the counter is a const-initialised
// thread-local without a destructor, safe to touch from inside the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn channel(name: &str, group: &str, logo: &str) -> Channel {
    Channel {
        source: "a".into(),
        duration: "-1".into(),
        attrs: vec![
            ("tvg-id".into(), "x.uk".into()),
            ("tvg-logo".into(), logo.into()),
            ("group-title".into(), group.into()),
        ],
        name: name.into(),
        directives: vec![],
        url: "http://x/1".into(),
        ..Channel::default()
    }
}

#[test]
fn untouched_channels_and_in_place_captures_allocate_nothing() {
    let text = r#"
[[source]]
name = "a"
m3u = "a.m3u"

[[mapping]]
name = "prefix"
when = 'channel_name matches "^([A-Z]{2}): (.+)$"'
set = { channel_name = "$2" }
[[mapping]]
name = "quality"
when = 'channel_name matches "^(.+) (HD|FHD|UHD|4K)$"'
set = { channel_name = "$1" }
[[mapping]]
name = "logo"
when = 'tvg_logo equals ""'
set = { tvg_logo = "http://logos.local/{tvg_id}.png" }
[[mapping]]
name = "group"
when = 'group_title ends_with "| News"'
set = { group_title = "News" }
[[mapping]]
name = "default-group"
default = { group_title = "Other" }

[[filter]]
name = "no-adult"
exclude = 'group_title matches "adult|xxx"'

[[proxy]]
name = "p"
sources = ["a"]
m3u = "p.m3u"
mappings = ["prefix", "quality", "logo", "group", "default-group"]
filters = ["no-adult"]
"#;
    let config = Config::from_text(Path::new("/tmp/lineup.toml"), text.into()).unwrap();
    let rules = ProxyRules::compile(&config, &config.file.proxies[0]).unwrap();
    // Warm up this thread's buffers and the regexes' caches.
    for mut ch in [
        channel("UK: BBC One HD", "UK | News", ""),
        channel("Plain", "Films", "http://l/1.png"),
    ] {
        rules.apply_one(&mut ch);
    }

    let mut untouched = channel("Plain", "Films", "http://l/1.png");
    let n = allocations_in(|| {
        let (changed, _) = rules.apply_one(&mut untouched);
        assert!(!changed);
    });
    assert_eq!(n, 0, "allocations for a channel no mapping touches");

    // Two capturing mappings and a rename, all values shorter than what they replace.
    let mut captured = channel("DE: ZDF HD", "DE | News", "http://l/2.png");
    let n = allocations_in(|| {
        let (changed, _) = rules.apply_one(&mut captured);
        assert!(changed);
    });
    assert_eq!(captured.name, "ZDF");
    assert_eq!(captured.attr("group-title"), Some("News"));
    assert_eq!(n, 0, "allocations for in-place captures");
}

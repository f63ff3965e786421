//! Hostile inputs against the real binary (issue 8): each test checks the documented exit
//! code, a message that names the file at fault, and that earlier outputs survive. Big inputs
//! are generated as concatenated gzip members (the reader decodes multi-member gzip), so a
//! 1 GiB line costs about 1 MiB of disk and is never held in the test's memory either.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Env, names, playlist, simple_config};

/// One gzip member holding `data`.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A gzip stream of `head`, then `count` copies of `chunk`, then `tail`: what a reader sees is
/// `head + chunk * count + tail`, at the disk cost of one compressed chunk per copy.
pub(crate) fn gzip_stream(head: &[u8], chunk: &[u8], count: usize, tail: &[u8]) -> Vec<u8> {
    let member = gzip(chunk);
    let mut out = gzip(head);
    for _ in 0..count {
        out.extend_from_slice(&member);
    }
    out.extend_from_slice(&gzip(tail));
    out
}

fn report(env: &Env, rel: &str) -> serde_json::Value {
    serde_json::from_str(&env.read(rel)).expect("report is JSON")
}

#[test]
fn one_gib_line_without_newline_is_skipped_in_bounded_memory() {
    let env = Env::new();
    let mib = vec![b'x'; 1 << 20];
    env.write(
        "a.m3u.gz",
        gzip_stream(
            b"#EXTM3U\n#EXTINF:-1,Good\nhttp://good\n#EXTINF:-1,Huge\n",
            &mib,
            1024,
            b"",
        ),
    );
    assert!(std::fs::metadata(env.path("a.m3u.gz")).unwrap().len() < 4 << 20);
    env.write("lineup.toml", simple_config(&[("a", "a.m3u.gz", true)], ""));
    let run = env.lineup(&["build", "--report", "r.json"]);
    run.ok();
    assert_eq!(names(&env.read("out/p.m3u")), ["Good"]);
    assert!(
        run.stderr
            .contains("a.m3u.gz:5: line of 1073741824 bytes is too long; skipped"),
        "{}",
        run.stderr
    );
    // Lines over 1 MiB are skipped, not buffered: the whole process stays far below the 1 GiB
    // a buffered line would take.
    let peak = report(&env, "r.json")["memory"]["peak_rss_bytes"]
        .as_u64()
        .unwrap();
    assert!(peak > 0 && peak < 256 << 20, "peak RSS {peak} bytes");
}

#[test]
fn gzip_bomb_stops_at_max_size_and_the_last_good_copy_is_used() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 3));
    let config = format!(
        "[settings.fetch]\nmax_size = \"4MiB\"\nmin_successful_sources = 0\n\n{}",
        simple_config(&[("a", "a.m3u", true)], "")
    );
    env.write("lineup.toml", &config);
    env.lineup(&["build"]).ok();
    let before = env.read("out/p.m3u");

    // 1 GiB of zeros in about 1 MiB, under the same name: gzip is found by its magic bytes.
    env.write("a.m3u", gzip_stream(b"", &vec![0u8; 1 << 20], 1024, b""));
    let run = env.lineup(&["build", "--report", "r.json"]);
    run.expect(3);
    assert!(
        run.stderr.contains("a.m3u") && run.stderr.contains("max_size"),
        "{}",
        run.stderr
    );
    assert_eq!(env.read("out/p.m3u"), before);
    let r = report(&env, "r.json");
    assert_eq!(r["sources"][0]["status"], "cached", "{r:#}");
    let peak = r["memory"]["peak_rss_bytes"].as_u64().unwrap();
    assert!(peak < 256 << 20, "peak RSS {peak} bytes");
}

#[test]
fn invalid_utf8_and_nul_bytes_in_a_playlist_are_read_not_fatal() {
    let env = Env::new();
    let mut m3u = b"#EXTM3U\n".to_vec();
    // Windows-1252 bytes in attributes, title, directive and URL; a truncated UTF-8 sequence;
    // NUL bytes in a title and a URL.
    m3u.extend_from_slice(
        b"#EXTINF:-1 tvg-id=\"caf\xe9\" group-title=\"\xff\xfe\",Caf\xe9 \x00One\n",
    );
    m3u.extend_from_slice(b"#EXTVLCOPT:http-referrer=\x81\x8d\n");
    m3u.extend_from_slice(b"http://s/\xe9\x00/1\n");
    m3u.extend_from_slice(b"#EXTINF:-1,Half \xe2\x82\nhttp://s/2\n");
    m3u.extend_from_slice(b"#EXTINF:-1,Plain\nhttp://s/3\n");
    env.write("a.m3u", &m3u);
    env.write("lineup.toml", simple_config(&[("a", "a.m3u", true)], ""));
    let run = env.lineup(&["build"]);
    run.ok();
    assert!(
        run.stderr
            .contains("a.m3u:2: not valid UTF-8; read as Windows-1252"),
        "{}",
        run.stderr
    );
    // The output is UTF-8 whatever came in, and every channel is kept.
    let out =
        String::from_utf8(std::fs::read(env.path("out/p.m3u")).unwrap()).expect("output is UTF-8");
    assert_eq!(names(&out), ["Café \0One", "Half â‚", "Plain"]);
    assert!(out.contains("tvg-id=\"café\" group-title=\"ÿþ\""), "{out}");
    assert!(out.contains("http://s/é\0/1\n"), "{out}");

    // A configuration that is not UTF-8 is a configuration error naming the file.
    env.write("bad.toml", b"[[source]]\nname = \"\xff\"\n");
    let run = env.lineup(&["build", "bad.toml"]);
    run.expect(2);
    assert!(run.stderr.contains("bad.toml"), "{}", run.stderr);
    assert_eq!(env.read("out/p.m3u"), out);
}

#[test]
fn hundred_megabyte_attribute_value_skips_its_line() {
    let env = Env::new();
    env.write(
        "a.m3u.gz",
        gzip_stream(
            b"#EXTM3U\n#EXTINF:-1,Before\nhttp://before\n#EXTINF:-1 tvg-logo=\"",
            &vec![b'a'; 1_000_000],
            100,
            b"\",Big\nhttp://big\n#EXTINF:-1,After\nhttp://after\n",
        ),
    );
    env.write("lineup.toml", simple_config(&[("a", "a.m3u.gz", true)], ""));
    let run = env.lineup(&["build"]);
    run.ok();
    assert_eq!(names(&env.read("out/p.m3u")), ["Before", "After"]);
    assert!(
        run.stderr
            .contains("a.m3u.gz:4: line of 100000027 bytes is too long"),
        "{}",
        run.stderr
    );
    // Its URL, left without an #EXTINF, is skipped too.
    assert!(
        run.stderr
            .contains("a.m3u.gz:5: stream URL without #EXTINF; skipped"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_million_channels_in_one_group_complete() {
    const N: usize = 1_000_000;
    let env = Env::new();
    let mut text = String::with_capacity(N * 50);
    text.push_str("#EXTM3U\n");
    for i in 0..N {
        text.push_str(&format!(
            "#EXTINF:-1 group-title=\"All\",C{i}\nhttp://s/{i}\n"
        ));
    }
    env.write("a.m3u", text);
    env.write(
        "lineup.toml",
        simple_config(
            &[("a", "a.m3u", true)],
            "sort = [\"group_title\", \"channel_name\"]\nnumbering = { start = 1 }",
        ),
    );
    let run = env.lineup(&["build"]);
    run.ok();
    let out = env.read("out/p.m3u");
    assert_eq!(out.matches("#EXTINF:").count(), N);
    assert_eq!(out.matches("group-title=\"All\"").count(), N);
    assert!(
        out.contains(&format!("tvg-chno=\"{N}\"")),
        "numbered to the end"
    );
    std::fs::remove_file(env.path("a.m3u")).unwrap();
}

#[test]
fn deeply_nested_filter_is_a_configuration_error_not_a_stack_overflow() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 2));
    env.write("lineup.toml", simple_config(&[("a", "a.m3u", true)], ""));
    env.lineup(&["build"]).ok();
    let before = env.read("out/p.m3u");

    let deep = format!(
        "{}channel_name equals \"x\"{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let config = simple_config(&[("a", "a.m3u", true)], "filters = [\"deep\"]")
        + &format!("\n[[filter]]\nname = \"deep\"\ninclude = '{deep}'\n");
    env.write("lineup.toml", config);
    for command in ["build", "check"] {
        let run = env.lineup(&[command]);
        run.expect(2);
        assert!(
            run.stderr.contains("lineup.toml")
                && run.stderr.contains("deep")
                && run.stderr.contains("nested deeper than"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(env.read("out/p.m3u"), before);
}

#[test]
fn catastrophic_regex_completes_on_a_long_name() {
    let env = Env::new();
    let long = format!("{}b", "a".repeat(100_000));
    env.write(
        "a.m3u",
        format!("#EXTM3U\n#EXTINF:-1,{long}\nhttp://s/1\n#EXTINF:-1,aaaa\nhttp://s/2\n"),
    );
    let config = simple_config(&[("a", "a.m3u", true)], "filters = [\"evil\"]")
        + "\n[[filter]]\nname = \"evil\"\ninclude = 'channel_name case_sensitive matches \"(a+)+$\"'\n";
    env.write("lineup.toml", config);
    env.lineup(&["build"]).ok();
    // A backtracking engine would take about 2^100000 steps on the first name; the regex
    // crate is linear in the input.
    assert_eq!(names(&env.read("out/p.m3u")), ["aaaa"]);
}

/// A config whose `[settings] output_dir` is `dir`, over one local playlist.
fn config_with_output_dir(dir: &str) -> String {
    format!(
        "[settings]\noutput_dir = \"{dir}\"\n\n{}",
        simple_config(&[("a", "a.m3u", true)], "")
    )
}

#[test]
fn output_dir_that_is_a_file_fails_and_leaves_other_outputs() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 2));
    env.write("lineup.toml", config_with_output_dir("out"));
    env.lineup(&["build"]).ok();
    let before = env.read("out/p.m3u");
    env.write("blocker", "not a directory\n");

    env.write("a.m3u", playlist("new", 3));
    // The directory is a file, or sits under one (so it cannot be created, even by root).
    for dir in ["blocker", "blocker/out"] {
        env.write("lineup.toml", config_with_output_dir(dir));
        let run = env.lineup(&["build"]);
        run.expect(1);
        assert!(run.stderr.contains(dir), "{dir}: {}", run.stderr);
        assert_eq!(env.read("blocker"), "not a directory\n");
        assert_eq!(env.read("out/p.m3u"), before);
    }
    // The same through --output-dir.
    env.write("lineup.toml", config_with_output_dir("out"));
    let run = env.lineup(&["build", "--output-dir", "blocker"]);
    run.expect(1);
    assert!(run.stderr.contains("blocker"), "{}", run.stderr);
    assert_eq!(env.read("out/p.m3u"), before);
}

/// A tmpfs mounted for one test, unmounted when dropped. Mounting needs root (or
/// CAP_SYS_ADMIN), which CI has; elsewhere [`Tmpfs::mount`] returns `None`.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, options: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Tmpfs {
            path: path.to_path_buf(),
        })
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// Says why a test could not run its check here; the test then passes without it. Only used
/// where the check needs privileges a developer machine may not grant.
fn cannot_mount(test: &str) {
    eprintln!("{test}: cannot mount a tmpfs here (needs root); check not run");
}

#[test]
fn read_only_output_dir_fails_and_keeps_the_previous_output() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 2));
    env.write("lineup.toml", config_with_output_dir("ro"));
    // Permission bits do not stop root, a read-only file system does.
    let Some(fs) = Tmpfs::mount(&env.path("ro"), "size=1m") else {
        return cannot_mount("read_only_output_dir");
    };
    env.lineup(&["build"]).ok();
    let before = env.read("ro/p.m3u");
    fs.remount("ro");

    env.write("a.m3u", playlist("new", 3));
    let run = env.lineup(&["build"]);
    run.expect(1);
    assert!(run.stderr.contains("ro"), "{}", run.stderr);
    assert!(
        run.stderr.to_lowercase().contains("read-only"),
        "{}",
        run.stderr
    );
    assert_eq!(env.read("ro/p.m3u"), before);
    assert_eq!(env.list("ro"), ["p.m3u"]);
}

#[test]
fn full_disk_fails_the_write_and_keeps_the_previous_output() {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 2));
    env.write("lineup.toml", config_with_output_dir("full"));
    let Some(_fs) = Tmpfs::mount(&env.path("full"), "size=64k") else {
        return cannot_mount("full_disk");
    };
    env.lineup(&["build"]).ok();
    let before = env.read("full/p.m3u");

    // About 150 KB of playlist: more than the 64 KiB file system holds next to the old copy.
    env.write("a.m3u", playlist("big", 2000));
    let run = env.lineup(&["build"]);
    run.expect(1);
    assert!(run.stderr.contains("full/p.m3u"), "{}", run.stderr);
    assert!(
        run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    assert_eq!(env.read("full/p.m3u"), before);
    // The temporary file was removed, so the next build has the room it had.
    assert_eq!(env.list("full"), ["p.m3u"]);
}

/// One playlist channel with `tvg_id` and a proxy that takes its guide from `guide.xml`.
fn guide_env(xml_fixture: &str, tvg_id: &str) -> Env {
    let env = Env::new();
    env.fixture(&format!("xmltv/{xml_fixture}"), "guide.xml");
    env.write(
        "a.m3u",
        format!("#EXTM3U\n#EXTINF:-1 tvg-id=\"{tvg_id}\",Chan\nhttp://s/1\n"),
    );
    env.write(
        "lineup.toml",
        "[[source]]\nname = \"a\"\nm3u = \"a.m3u\"\n\n\
         [[epg]]\nname = \"g\"\nxmltv = \"guide.xml\"\n\n\
         [[proxy]]\nname = \"p\"\nsources = [\"a\"]\nm3u = \"p.m3u\"\nepg = [\"g\"]\n\
         xmltv = \"p.xml\"\nepg_days = { past = 1, future = 2 }\n",
    );
    env
}

fn build_on_2024_03_01(env: &Env) -> crate::harness::Run {
    let output = env
        .command(&["build"])
        .env("LINEUP_NOW", "1709294400")
        .output()
        .unwrap();
    crate::harness::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn billion_laughs_guide_is_not_expanded() {
    let env = guide_env("billion-laughs.xml", "lol.uk");
    let run = build_on_2024_03_01(&env);
    run.ok();
    let guide = env.read("out/p.xml");
    // The entity is never expanded: the programmes that use it are skipped with a warning
    // naming the file, the one that does not is kept, and the output stays small.
    assert!(guide.contains("Survivor"), "{guide}");
    assert!(!guide.contains("lollol"), "{guide}");
    assert!(guide.len() < 4096, "{} bytes", guide.len());
    assert!(run.stderr.contains("guide.xml"), "{}", run.stderr);
}

#[test]
fn external_entity_guide_reads_no_file_and_no_url() {
    let env = guide_env("external-entity.xml", "y.uk");
    let run = build_on_2024_03_01(&env);
    run.ok();
    let guide = env.read("out/p.xml");
    assert!(guide.contains("Safe"), "{guide}");
    assert!(!guide.contains("root:"), "{guide}");
    assert!(run.stderr.contains("guide.xml"), "{}", run.stderr);
}

//! HDHomeRun-compatible files (`hdhr`): served by a real static web server (Python's
//! `http.server`, as the README suggests) and walked as Plex does: `discover.json` ->
//! `LineupURL` -> `lineup.json` -> each stream URL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::harness::{Env, simple_config};

/// `python3 -m http.server` on a port the system picks, serving `dir`; killed when dropped.
struct StaticServer {
    child: Child,
    port: u16,
}

impl StaticServer {
    fn start(dir: &std::path::Path) -> StaticServer {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        StaticServer { child, port }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `url`: (content type, body).
fn get(url: &str) -> (String, String) {
    let mut response = ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response.body_mut().read_to_string().unwrap();
    (content_type, body)
}

fn json(url: &str) -> Value {
    let (content_type, body) = get(url);
    assert!(
        content_type.starts_with("application/json"),
        "{url}: {content_type}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}\n{body}"))
}

#[test]
fn a_client_walks_discover_lineup_and_streams() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("out/streams")).unwrap();
    let server = StaticServer::start(&env.path("out"));
    let root = format!("http://127.0.0.1:{}", server.port);
    let mut m3u = String::from("#EXTM3U\n");
    for (i, name) in ["News & More", "Sport \"Live\"", "Films"]
        .iter()
        .enumerate()
    {
        env.write(&format!("out/streams/{i}.ts"), format!("stream {i}"));
        m3u.push_str(&format!(
            "#EXTINF:-1 tvg-id=\"c{i}\",{name}\n{root}/streams/{i}.ts\n"
        ));
    }
    env.write("s.m3u", m3u);
    env.write(
        "lineup.toml",
        simple_config(
            &[("s", "s.m3u", true)],
            &format!(
                "numbering = {{ start = 101 }}\n\
                 hdhr = {{ dir = \"tuner\", base_url = \"{root}/tuner/\", friendly_name = \"Living <Room>\", tuners = 3 }}"
            ),
        ),
    );
    env.lineup(&["build"]).ok();
    let first: Vec<Vec<u8>> = [
        "discover.json",
        "lineup.json",
        "lineup_status.json",
        "device.xml",
    ]
    .iter()
    .map(|f| std::fs::read(env.path(&format!("out/tuner/{f}"))).unwrap())
    .collect();

    let discover = json(&format!("{root}/tuner/discover.json"));
    assert_eq!(discover["FriendlyName"], "Living <Room>");
    assert_eq!(discover["TunerCount"], 3);
    assert_eq!(discover["BaseURL"], format!("{root}/tuner"));
    let id = discover["DeviceID"].as_str().unwrap();
    assert_eq!(id.len(), 8);
    assert!(lineup::output::hdhr::device_id_is_valid(
        u32::from_str_radix(id, 16).unwrap()
    ));
    for key in [
        "Manufacturer",
        "ModelNumber",
        "FirmwareName",
        "FirmwareVersion",
        "DeviceAuth",
    ] {
        assert!(discover[key].is_string(), "{key}");
    }

    let lineup_url = discover["LineupURL"].as_str().unwrap();
    let lineup = json(lineup_url);
    let entries = lineup.as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["GuideName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["News & More", "Sport \"Live\"", "Films"]);
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(
            entry["GuideNumber"],
            format!("{}", 101 + i),
            "numbers are strings"
        );
        let (_, body) = get(entry["URL"].as_str().unwrap());
        assert_eq!(body, format!("stream {i}"));
    }

    let status = json(&format!("{root}/tuner/lineup_status.json"));
    assert_eq!(status["ScanInProgress"], 0);
    assert_eq!(
        status["ScanPossible"], 1,
        "Plex imports nothing from a tuner that cannot scan"
    );
    assert!(status["SourceList"].is_array());
    let (_, xml) = get(&format!("{root}/tuner/device.xml"));
    assert!(xml.contains(&format!("<UDN>uuid:{id}</UDN>")), "{xml}");
    assert!(
        xml.contains("<friendlyName>Living &lt;Room&gt;</friendlyName>"),
        "{xml}"
    );

    // Deterministic: a second build writes the same bytes (and the same DeviceID).
    env.lineup(&["build"]).ok();
    for (f, before) in [
        "discover.json",
        "lineup.json",
        "lineup_status.json",
        "device.xml",
    ]
    .iter()
    .zip(&first)
    {
        assert_eq!(
            &std::fs::read(env.path(&format!("out/tuner/{f}"))).unwrap(),
            before,
            "{f}"
        );
    }
    drop(server);
}

#[test]
fn bad_hdhr_keys_are_located() {
    let env = Env::new();
    env.write("s.m3u", "#EXTM3U\n#EXTINF:-1,A\nhttp://s/a\n");
    env.write(
        "lineup.toml",
        simple_config(
            &[("s", "s.m3u", true)],
            "hdhr = { base_url = \"nas:8080\", tuners = 0 }",
        ),
    );
    let run = env.lineup(&["check"]);
    run.expect(2);
    assert!(run.stderr.contains("lineup.toml:10:21:"), "{}", run.stderr);
    assert!(run.stderr.contains("hdhr.base_url"), "{}", run.stderr);
    assert!(run.stderr.contains("hdhr.tuners"), "{}", run.stderr);
}

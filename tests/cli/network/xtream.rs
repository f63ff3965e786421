//! Xtream Codes accounts end to end, against the panel of `fixtures/net/xtream/`: a normal
//! line-up (written `0600`, since every stream URL carries the credentials), a refused login
//! and an expired account, each with and without a cached copy.

use std::os::unix::fs::PermissionsExt;

use super::{Net, assert_error, proxy, source};
use crate::harness::{fixtures, names};
use crate::http_server::{Body, Route};

const BASE: &str = "/player_api.php?username=xt-user&password=pa%3As";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join("net/xtream").join(name)).expect(name)
}

/// Serve the panel with this `player_api.php` account reply.
fn panel(net: &Net, user_info: &str) {
    net.server.route(BASE, Route::Ok(Body::json(user_info)));
    net.server.route(
        &format!("{BASE}&action=get_live_categories"),
        Route::Ok(Body::json(&fixture("get_live_categories.json"))),
    );
    net.server.route(
        &format!("{BASE}&action=get_live_streams"),
        Route::Ok(Body::json(&fixture("get_live_streams.json")).gzip_encoded()),
    );
}

fn xtream_config(net: &Net, output: &str) {
    let source = format!(
        "[[source]]\nname = \"beta\"\nxtream = {{ server = \"{}\", username = \"xt-user\", \
         password = \"${{BETA_PASS}}\"{output} }}\n\n",
        net.server.url("/")
    );
    net.config("", &format!("{source}{}", proxy(&["beta"])));
}

/// `lineup build --report -` with the account's password in the environment.
fn build(net: &Net) -> (i32, serde_json::Value, String) {
    let out = net
        .env
        .command(&["build", "--report", "-"])
        .env("BETA_PASS", "pa:s")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not a report ({e}): {stdout}\n{stderr}"));
    (out.status.code().unwrap(), report, stderr)
}

fn health(net: &Net) -> serde_json::Value {
    let out = net
        .env
        .command(&["sources", "--json"])
        .env("BETA_PASS", "pa:s")
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()[0].clone()
}

#[test]
fn xtream_line_up_is_written_private() {
    let net = Net::new();
    panel(&net, &fixture("player_api.json"));
    xtream_config(&net, "");
    let (code, report, stderr) = build(&net);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(source(&report)["kind"], "xtream");
    assert_eq!(source(&report)["status"], "fetched");
    assert_eq!(source(&report)["attempts"], 3);
    // Four streams, one without a stream_id.
    assert_eq!(source(&report)["items"], 3);
    let text = net.env.read("out/p.m3u");
    assert_eq!(names(&text), ["News One", "Sport Two", "Orphan"]);
    assert!(
        text.contains(&net.server.url("/live/xt-user/pa%3As/101.ts")),
        "{text}"
    );
    assert!(text.contains("group-title=\"Sports\""), "{text}");
    let mode = std::fs::metadata(net.env.path("out/p.m3u"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "a playlist with credentials is private"
    );
    assert_eq!(health(&net)["state"], "healthy");

    // `output = "m3u8"` changes the stream URLs.
    xtream_config(&net, ", output = \"m3u8\"");
    let (code, _, stderr) = build(&net);
    assert_eq!(code, 0, "{stderr}");
    let text = net.env.read("out/p.m3u");
    assert!(text.contains("/live/xt-user/pa%3As/101.m3u8"), "{text}");
}

/// A panel that refuses the account: exit 4 (a cached line-up is not fresh data) with the
/// previous output kept, 4 without a cached one either, the
/// stream list never asked for, and the password nowhere.
fn refused(user_info: &str, error: &str) {
    let net = Net::new();
    panel(&net, &fixture("player_api.json"));
    xtream_config(&net, "");
    assert_eq!(build(&net).0, 0);
    let output = net.env.read("out/p.m3u");
    let before = net.server.hits("/player_api.php");

    net.server.route(BASE, Route::Ok(Body::json(user_info)));
    let (code, report, stderr) = build(&net);
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(source(&report)["status"], "cached");
    assert_eq!(source(&report)["items"], 3);
    assert_eq!(source(&report)["attempts"], 1);
    assert_error(&report, error);
    assert_eq!(
        net.server.hits("/player_api.php"),
        before + 1,
        "only the account check"
    );
    assert_eq!(net.env.read("out/p.m3u"), output);
    let h = health(&net);
    assert_eq!(h["state"], "down");
    assert!(h["last_error"].as_str().unwrap().contains(error), "{h:#}");
    for shown in [report.to_string(), stderr, h.to_string()] {
        assert!(
            !shown.contains("pa:s") && !shown.contains("pa%3As"),
            "{shown}"
        );
    }

    let fresh = Net::new();
    panel(&fresh, user_info);
    xtream_config(&fresh, "");
    let (code, report, _) = build(&fresh);
    assert_eq!(code, 4);
    assert_eq!(source(&report)["status"], "failed");
    assert_error(&report, error);
    assert!(!fresh.env.path("out/p.m3u").exists());
}

#[test]
fn refused_login_keeps_last_good_copy() {
    refused(r#"{"user_info":{"auth":0}}"#, "login refused");
}

#[test]
fn expired_account_keeps_last_good_copy() {
    refused(
        r#"{"user_info":{"auth":1,"status":"Active","exp_date":"1000000000"}}"#,
        "not usable",
    );
}

//! Xtream sources against a real HTTP server playing a panel: logins refused or expired, a
//! normal line-up, a reply that is not JSON, credentials kept out of messages.

use std::ops::ControlFlow;
use std::sync::Arc;

use super::super::http_server::{Body, Route, TestServer};
use super::super::tests::{ctl, quick_cfg, spool_dir};
use super::*;
use crate::config::values::EnvString;

fn account(server: &TestServer, password: &str) -> XtreamAccount {
    XtreamAccount {
        server: EnvString(server.url("/")),
        username: EnvString("xt-user".into()),
        password: EnvString(password.into()),
        output: "ts".into(),
    }
}

const ACTIVE: &str = include_str!("../../fixtures/net/xtream/player_api.json");
const CATEGORIES: &str = include_str!("../../fixtures/net/xtream/get_live_categories.json");
const STREAMS: &str = include_str!("../../fixtures/net/xtream/get_live_streams.json");

fn panel(server: &TestServer, user_info: &str) {
    let base = "/player_api.php?username=xt-user&password=pa%3As";
    server.route(base, Route::Ok(Body::json(user_info)));
    server.route(
        &format!("{base}&action=get_live_categories"),
        Route::Ok(Body::json(CATEGORIES)),
    );
    server.route(
        &format!("{base}&action=get_live_streams"),
        Route::Ok(Body::json(STREAMS).gzip_encoded()),
    );
}

fn download(server: &TestServer) -> Result<XtreamDownload, XtreamError> {
    let dir = spool_dir();
    let client = Client::new(dir.path());
    let acc = account(server, "pa:s");
    let d = download_live(&client, "beta", &acc, &quick_cfg(), &ctl())?;
    // Keep the spool readable after the TempDir goes: read channels here.
    let _ = d.channels("beta".into(), &acc, 1 << 20, |_| ControlFlow::Continue(()))?;
    Ok(d)
}

#[test]
fn happy_path_turns_streams_into_channels() {
    let server = TestServer::start();
    panel(&server, ACTIVE);
    let dir = spool_dir();
    let client = Client::new(dir.path());
    let acc = account(&server, "pa:s");
    let d = download_live(&client, "beta", &acc, &quick_cfg(), &ctl()).unwrap();
    assert_eq!(d.account.status, "Active");
    assert_eq!(d.account.exp_date, Some(4_102_444_800));
    assert_eq!(d.categories.get("2").map(String::as_str), Some("Sports"));
    assert_eq!(d.attempts, 3);

    let mut channels = Vec::new();
    let counts = d
        .channels(Arc::from("beta"), &acc, 1 << 20, |ch| {
            channels.push(ch);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(
        counts,
        StreamCounts {
            channels: 3,
            skipped: 1
        }
    );
    let news = &channels[0];
    assert_eq!(&*news.source, "beta");
    assert_eq!(news.name, "News One");
    assert_eq!(news.url, server.url("/live/xt-user/pa%3As/101.ts"));
    let attrs: Vec<(&str, &str)> = news
        .attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        attrs,
        vec![
            ("tvg-id", "news1.uk"),
            ("tvg-name", "News One"),
            ("tvg-logo", "http://logo/1.png"),
            ("tvg-chno", "1"),
            ("group-title", "News"),
            ("catchup", "xc"),
            ("catchup-days", "7"),
        ]
    );
    let sport = &channels[1];
    assert_eq!(sport.attr("tvg-id"), Some(""));
    assert_eq!(sport.attr("group-title"), Some("Sports"));
    assert_eq!(sport.attr("catchup"), None);
    // An unknown category_id falls back to category_ids.
    assert_eq!(channels[2].attr("group-title"), Some("Sports"));

    // Two downloads of the same content hash alike.
    let again = download_live(&client, "beta", &acc, &quick_cfg(), &ctl()).unwrap();
    assert_eq!(again.content_sha256, d.content_sha256);
}

#[test]
fn refused_login_is_an_auth_error_without_the_password() {
    let server = TestServer::start();
    panel(&server, r#"{"user_info":{"auth":0}}"#);
    let err = download(&server).unwrap_err();
    assert!(matches!(err, XtreamError::AuthFailed { .. }), "{err}");
    // Panels that answer `[]` or 401 mean the same.
    let server = TestServer::start();
    panel(&server, "[]");
    assert!(matches!(
        download(&server).unwrap_err(),
        XtreamError::AuthFailed { .. }
    ));
    let server = TestServer::start();
    server.route("/player_api.php", Route::Status(401));
    let err = download(&server).unwrap_err();
    assert!(
        matches!(err, XtreamError::AuthFailed { attempts: 1, .. }),
        "{err}"
    );
    assert_eq!(server.hits("/player_api.php"), 1);
    // Nothing shows the password, raw or percent-encoded.
    for shown in [err.to_string(), err.masked()] {
        assert!(
            !shown.contains("pa:s") && !shown.contains("pa%3As"),
            "{shown}"
        );
    }
}

#[test]
fn expired_or_banned_accounts_are_refused() {
    let server = TestServer::start();
    panel(
        &server,
        r#"{"user_info":{"auth":"1","status":"Active","exp_date":1000000000}}"#,
    );
    let err = download(&server).unwrap_err();
    let XtreamError::Expired { detail, .. } = &err else {
        panic!("expected an expired account, got {err}");
    };
    assert!(detail.contains("2001-09-09"), "{detail}");
    assert_eq!(
        server.hits("/player_api.php"),
        1,
        "no stream list after a refused account"
    );

    let server = TestServer::start();
    panel(
        &server,
        r#"{"user_info":{"auth":1,"status":"Banned","exp_date":null}}"#,
    );
    assert!(matches!(
        download(&server).unwrap_err(),
        XtreamError::Expired { .. }
    ));
}

#[test]
fn bad_json_names_the_source() {
    let server = TestServer::start();
    panel(&server, ACTIVE);
    server.route(
        "/player_api.php?username=xt-user&password=pa%3As&action=get_live_streams",
        Route::garbage(),
    );
    let err = download(&server).unwrap_err();
    assert!(
        matches!(
            err,
            XtreamError::BadJson {
                what: "streams",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("source `beta`"), "{err}");

    let server = TestServer::start();
    server.route(
        "/player_api.php",
        Route::Ok(Body::json("<html>maintenance</html>")),
    );
    assert!(matches!(
        download(&server).unwrap_err(),
        XtreamError::BadJson {
            what: "account check",
            ..
        }
    ));
}

#[test]
fn guide_url_and_server_errors() {
    let server = TestServer::start();
    let acc = account(&server, "pa:s");
    assert_eq!(
        guide_url(&acc),
        server.url("/xmltv.php?username=xt-user&password=pa%3As")
    );
    server.route("/player_api.php", Route::Status(502));
    let err = download(&server).unwrap_err();
    let fe = err.fetch_error().expect("an HTTP failure");
    assert_eq!(fe.kind, FetchErrorKind::Status(502));
    assert_eq!(err.attempts(), 4);
    assert!(!err.to_string().contains("pa%3As"), "{err}");
}

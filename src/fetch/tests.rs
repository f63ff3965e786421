//! Downloads against a real HTTP server on 127.0.0.1 (`tests/support/http_server.rs`) playing
//! the faults providers show in the wild. Timeouts are short on purpose; nothing asserts on
//! elapsed time.

use std::io::Read;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::http_server::{Body, Route, TestServer, gzip};
use super::*;

pub(super) fn quick_cfg() -> SourceFetch {
    SourceFetch {
        timeout: Duration::from_secs(5),
        retries: 3,
        backoff: BackoffPolicy {
            base: Duration::from_millis(5),
            max: Duration::from_millis(20),
            jitter: true,
        },
        max_size: 1 << 20,
        user_agent: "lineup-test/1".into(),
        headers: vec![("X-Lineup-Test".into(), "yes".into())],
    }
}

pub(super) fn spool_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

static NOT_CANCELLED: AtomicBool = AtomicBool::new(false);

pub(super) fn ctl() -> Control<'static> {
    Control {
        deadline: Instant::now() + Duration::from_secs(60),
        cancel: &NOT_CANCELLED,
    }
}

fn fetch(server: &TestServer, path: &str, cfg: &SourceFetch) -> Result<FetchOutcome, FetchError> {
    // The system temp dir outlives the returned spool file (a TempDir here would not).
    Client::new(std::env::temp_dir()).fetch(&server.url(path), cfg, &Validators::default(), &ctl())
}

fn body_of(outcome: FetchOutcome) -> (Download, Vec<u8>) {
    let FetchOutcome::Fetched(d) = outcome else {
        panic!("expected a body, got {outcome:?}");
    };
    let bytes = std::fs::read(d.spool.path()).unwrap();
    (d, bytes)
}

#[test]
fn plain_body_lands_in_spool_with_hash_headers_and_user_agent() {
    let server = TestServer::start();
    server.route("/a.m3u", Route::Ok(Body::new("#EXTM3U\n").etag("\"v1\"")));
    let (d, bytes) = body_of(fetch(&server, "/a.m3u", &quick_cfg()).unwrap());
    assert_eq!(bytes, b"#EXTM3U\n");
    assert_eq!(d.bytes, 8);
    assert_eq!(d.status, 200);
    assert_eq!(d.attempts, 1);
    assert_eq!(d.validators.etag.as_deref(), Some("\"v1\""));
    let sha = <sha2::Sha256 as sha2::Digest>::digest(b"#EXTM3U\n");
    assert_eq!(d.sha256, crate::output::hex(&sha));
    let req = &server.requests()[0];
    assert_eq!(req.header("user-agent"), Some("lineup-test/1"));
    assert_eq!(req.header("x-lineup-test"), Some("yes"));
}

#[test]
fn gzip_content_encoding_and_gz_bodies() {
    let server = TestServer::start();
    let text = "#EXTM3U\n#EXTINF:-1,One\nhttp://x/1\n".repeat(50);
    server.route("/enc", Route::Ok(Body::new(text.clone()).gzip_encoded()));
    server.route("/file.gz", Route::Ok(Body::new(gzip(text.as_bytes()))));
    let (_, bytes) = body_of(fetch(&server, "/enc", &quick_cfg()).unwrap());
    assert_eq!(bytes, text.as_bytes());
    // A .gz body is stored as sent; decode::open unpacks it by its magic bytes.
    let (d, _) = body_of(fetch(&server, "/file.gz", &quick_cfg()).unwrap());
    let mut out = String::new();
    crate::parse::decode::open(d.spool.path(), 1 << 20)
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, text);
}

#[test]
fn server_errors_are_retried_until_success() {
    let server = TestServer::start();
    server.route(
        "/flaky",
        Route::fail_then(500, 2, Route::Ok(Body::new("#EXTM3U\n"))),
    );
    let (d, _) = body_of(fetch(&server, "/flaky", &quick_cfg()).unwrap());
    assert_eq!(d.attempts, 3);
    assert_eq!(server.hits("/flaky"), 3);

    server.route("/down", Route::Status(503));
    let err = fetch(&server, "/down", &quick_cfg()).unwrap_err();
    assert_eq!(err.kind, FetchErrorKind::Status(503));
    assert_eq!(err.attempts, 4);
    assert_eq!(err.http_status, Some(503));
    assert_eq!(server.hits("/down"), 4);
}

#[test]
fn not_found_is_not_retried() {
    let server = TestServer::start();
    let err = fetch(&server, "/missing", &quick_cfg()).unwrap_err();
    assert_eq!(err.kind, FetchErrorKind::Status(404));
    assert_eq!(err.attempts, 1);
    assert_eq!(server.hits("/missing"), 1);
}

#[test]
fn too_many_requests_honours_retry_after_capped_by_backoff_max() {
    let server = TestServer::start();
    // Retry-After: 30 is capped at backoff.max (20ms here), so the test stays quick.
    server.route(
        "/busy",
        Route::Sequence(vec![Route::RetryAfter(30), Route::Ok(Body::new("ok"))]),
    );
    let (d, bytes) = body_of(fetch(&server, "/busy", &quick_cfg()).unwrap());
    assert_eq!((d.attempts, bytes.as_slice()), (2, &b"ok"[..]));
}

#[test]
fn truncated_body_is_retried_then_fails() {
    let server = TestServer::start();
    server.route(
        "/cut",
        Route::Truncated {
            declared: 10_000,
            body: b"#EXTM3U\n#EXTINF:-1,Half".to_vec(),
        },
    );
    let err = fetch(&server, "/cut", &quick_cfg()).unwrap_err();
    assert_eq!(err.kind, FetchErrorKind::Truncated, "{err}");
    assert_eq!(err.attempts, 4);
    assert_eq!(server.hits("/cut"), 4);
}

#[test]
fn slow_drip_and_stalled_headers_time_out() {
    let server = TestServer::start();
    server.route(
        "/drip",
        Route::Drip {
            body: vec![b'x'; 100],
            interval: Duration::from_millis(50),
        },
    );
    server.route("/stall", Route::Stall(Duration::from_secs(3)));
    let cfg = SourceFetch {
        timeout: Duration::from_millis(300),
        retries: 1,
        ..quick_cfg()
    };
    for path in ["/drip", "/stall"] {
        let err = fetch(&server, path, &cfg).unwrap_err();
        assert_eq!(err.kind, FetchErrorKind::Timeout, "{path}: {err}");
        assert_eq!(err.attempts, 2, "{path}");
    }
}

#[test]
fn bodies_past_max_size_fail_raw_and_after_decompression() {
    let server = TestServer::start();
    server.route("/big", Route::Ok(Body::new(vec![b'a'; 4096])));
    let bomb = gzip(&vec![b'a'; 8 << 20]);
    assert!(bomb.len() < 64 * 1024);
    server.route("/bomb.gz", Route::Ok(Body::new(bomb)));
    let cfg = SourceFetch {
        max_size: 1024,
        ..quick_cfg()
    };
    let err = fetch(&server, "/big", &cfg).unwrap_err();
    assert_eq!((err.kind, err.attempts), (FetchErrorKind::TooLarge, 1));

    // The bomb is small on the wire, so the download passes; decoding stops at max_size.
    let cfg = SourceFetch {
        max_size: 1 << 20,
        ..quick_cfg()
    };
    let (d, _) = body_of(fetch(&server, "/bomb.gz", &cfg).unwrap());
    let err = crate::parse::decode::open(d.spool.path(), cfg.max_size)
        .unwrap()
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
}

#[test]
fn redirects_are_followed_and_loops_fail() {
    let server = TestServer::start();
    server.route("/old", Route::Redirect("/new".into()));
    server.route("/new", Route::Ok(Body::new("moved")));
    server.route("/loop-a", Route::Redirect("/loop-b".into()));
    server.route("/loop-b", Route::Redirect("/loop-a".into()));
    let (_, bytes) = body_of(fetch(&server, "/old", &quick_cfg()).unwrap());
    assert_eq!(bytes, b"moved");
    let err = fetch(&server, "/loop-a", &quick_cfg()).unwrap_err();
    assert_eq!(
        (err.kind, err.attempts),
        (FetchErrorKind::TooManyRedirects, 1)
    );
}

#[test]
fn stored_validators_give_not_modified() {
    let server = TestServer::start();
    server.route(
        "/cond",
        Route::Ok(
            Body::new("#EXTM3U\n")
                .etag("\"abc\"")
                .last_modified("Wed, 21 Oct 2015 07:28:00 GMT"),
        ),
    );
    let dir = spool_dir();
    let client = Client::new(dir.path());
    let url = server.url("/cond");
    let FetchOutcome::Fetched(first) = client
        .fetch(&url, &quick_cfg(), &Validators::default(), &ctl())
        .unwrap()
    else {
        panic!("first fetch must download");
    };
    let second = client
        .fetch(&url, &quick_cfg(), &first.validators, &ctl())
        .unwrap();
    assert!(
        matches!(second, FetchOutcome::NotModified { attempts: 1, .. }),
        "{second:?}"
    );
    let req = &server.requests()[1];
    assert_eq!(req.header("if-none-match"), Some("\"abc\""));
    assert_eq!(
        req.header("if-modified-since"),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
    // A changed ETag downloads again.
    let stale = Validators {
        etag: Some("\"old\"".into()),
        last_modified: None,
    };
    assert!(matches!(
        client.fetch(&url, &quick_cfg(), &stale, &ctl()).unwrap(),
        FetchOutcome::Fetched(_)
    ));
}

#[test]
fn garbage_body_is_a_successful_download() {
    // Whether it is a playlist is the parser's call; the download itself worked.
    let server = TestServer::start();
    server.route("/portal", Route::garbage());
    let (d, bytes) = body_of(fetch(&server, "/portal", &quick_cfg()).unwrap());
    assert_eq!(d.status, 200);
    assert!(bytes.starts_with(b"<html>"));
    let reader = crate::parse::decode::open(d.spool.path(), 1 << 20).unwrap();
    let channels = crate::parse::m3u::M3uReader::new(reader, "portal", "t".into())
        .collect::<std::io::Result<Vec<_>>>()
        .unwrap();
    assert!(channels.is_empty());
}

#[test]
fn connection_refused_is_a_connect_error() {
    // Bind then drop a listener: its port is (almost certainly) closed now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = spool_dir();
    let cfg = SourceFetch {
        retries: 1,
        ..quick_cfg()
    };
    let err = Client::new(dir.path())
        .fetch(
            &format!("http://127.0.0.1:{port}/x"),
            &cfg,
            &Validators::default(),
            &ctl(),
        )
        .unwrap_err();
    assert_eq!(
        (err.kind, err.attempts),
        (FetchErrorKind::Connect, 2),
        "{err}"
    );
}

#[test]
fn errors_never_show_url_passwords() {
    let server = TestServer::start();
    server.route("/private.m3u", Route::Status(403));
    // Not registered beforehand: fetching registers the userinfo itself, so the copy in the
    // query is masked too.
    let url = format!(
        "http://user:s3cr3t-pw@{}/private.m3u?password=s3cr3t-pw",
        server.addr()
    );
    let dir = spool_dir();
    let err = Client::new(dir.path())
        .fetch(&url, &quick_cfg(), &Validators::default(), &ctl())
        .unwrap_err();
    assert_eq!(err.kind, FetchErrorKind::Status(403));
    let shown = err.to_string();
    assert!(!shown.contains("s3cr3t-pw"), "{shown}");
    assert!(shown.contains("403"), "{shown}");
}

#[test]
fn cancel_stops_before_the_next_attempt() {
    let server = TestServer::start();
    server.route("/down", Route::Status(500));
    let cancel = AtomicBool::new(true);
    let dir = spool_dir();
    let err = Client::new(dir.path())
        .fetch(
            &server.url("/down"),
            &quick_cfg(),
            &Validators::default(),
            &Control {
                deadline: Instant::now() + Duration::from_secs(60),
                cancel: &cancel,
            },
        )
        .unwrap_err();
    assert_eq!((err.kind, err.attempts), (FetchErrorKind::Cancelled, 0));
    assert_eq!(server.hits("/down"), 0);
}

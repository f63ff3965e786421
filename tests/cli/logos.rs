//! Logo prefetch through the binary, against the scripted HTTP server: files named by content
//! inside `logos.dir`, the cache and its conditional requests on the next run, bodies that are
//! not images or too large rejected with the URL kept, URLs that look like path traversal
//! stored safely, and `base_url` written into the playlist and the guide.

use std::path::Path;

use crate::harness::{Env, parse_m3u, validate_report};
use crate::http_server::{Body, Route, TestServer};

/// A 1x1 transparent PNG.
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\
\0\0\0\rIDATx\x9cc\xf8\x0f\x04\0\x09\xfb\x03\xfd\xe3U\xf2\x9c\0\0\0\0IEND\xaeB`\x82";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xff\xd9";
const SVG: &[u8] = b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\"/>\n";

fn image(bytes: &[u8]) -> Body {
    Body {
        content_type: "image/png".into(),
        ..Body::new(bytes)
    }
}

/// A config with one local playlist, prefetch on, and `extra` lines for the proxy.
fn config(logos: &str, extra: &str) -> String {
    format!(
        "[settings.fetch]\nretries = 0\n\n[[source]]\nname = \"s\"\nm3u = \"s.m3u\"\n\n\
         [[proxy]]\nname = \"p\"\nsources = [\"s\"]\nm3u = \"p.m3u\"\nlogos = {logos}\n{extra}"
    )
}

/// A playlist whose channel `i` has logo `logos[i]`.
fn playlist(logos: &[String]) -> String {
    let mut text = String::from("#EXTM3U\n");
    for (i, logo) in logos.iter().enumerate() {
        text.push_str(&format!(
            "#EXTINF:-1 tvg-id=\"c{i}\" tvg-logo=\"{logo}\",Channel {i}\nhttp://s.example/{i}\n"
        ));
    }
    text
}

fn report(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).expect("stdout is the report")
}

/// `[0-9a-f]{32}.EXT`: the only names a logo file may have.
fn is_hash_name(name: &str, ext: &str) -> bool {
    name.strip_suffix(&format!(".{ext}")).is_some_and(|h| {
        h.len() == 32
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Logo URLs of the written playlist, in order.
fn written_logos(env: &Env) -> Vec<String> {
    parse_m3u(env.read("out/p.m3u").as_bytes())
        .iter()
        .map(|c| c.attr("tvg-logo").unwrap_or("").to_string())
        .collect()
}

#[test]
fn logos_are_stored_by_content_and_revalidated_on_the_next_run() {
    let server = TestServer::start();
    server
        .route("/a.png", Route::Ok(image(PNG).etag("\"a1\"")))
        .route(
            "/b.jpg",
            Route::Ok(image(JPEG).last_modified("Tue, 01 Oct 2024 10:00:00 GMT")),
        )
        // No validators: fetched again each run, recognised by its content.
        .route("/c.svg", Route::Ok(image(SVG)))
        .route("/same-as-a.png", Route::Ok(image(PNG)));
    let env = Env::new();
    let logos: Vec<String> = ["/a.png", "/b.jpg", "/c.svg", "/same-as-a.png", "/a.png"]
        .iter()
        .map(|p| server.url(p))
        .collect();
    env.write("s.m3u", playlist(&logos));
    env.write("lineup.toml", config("{ prefetch = true }", ""));

    let run = env.lineup(&["build", "--report", "-"]);
    run.ok();
    let stats = &report(&run.stdout)["proxies"][0]["logos"];
    assert_eq!(stats["distinct"], 4, "{stats}");
    assert_eq!(stats["fetched"], 4);
    assert_eq!(stats["cached"], 0);
    assert_eq!(stats["failed"], 0);
    let total = (PNG.len() * 2 + JPEG.len() + SVG.len()) as u64;
    assert_eq!(stats["bytes"], total);
    // Two URLs with one picture share a file; every name is a content hash.
    let files = env.list("out/logos");
    assert_eq!(files.len(), 3, "{files:?}");
    for (ext, bytes) in [("png", PNG), ("jpg", JPEG), ("svg", SVG)] {
        let name = files.iter().find(|f| f.ends_with(ext)).expect(ext);
        assert!(is_hash_name(name, ext), "{name}");
        assert_eq!(
            std::fs::read(env.path("out/logos").join(name)).unwrap(),
            bytes
        );
    }
    // Without base_url the playlist keeps its URLs: the files are only cached.
    assert_eq!(written_logos(&env), logos);

    let run = env.lineup(&["build", "--report", "-"]);
    run.ok();
    let stats = &report(&run.stdout)["proxies"][0]["logos"];
    assert_eq!(stats["fetched"], 0, "{stats}");
    assert_eq!(stats["cached"], 4);
    assert_eq!(stats["bytes"], (SVG.len() + PNG.len()) as u64);
    let second = |path: &str| {
        server
            .requests()
            .into_iter()
            .filter(|r| r.target == path)
            .nth(1)
            .unwrap_or_else(|| panic!("no second request for {path}"))
    };
    assert_eq!(second("/a.png").header("if-none-match"), Some("\"a1\""));
    assert_eq!(
        second("/b.jpg").header("if-modified-since"),
        Some("Tue, 01 Oct 2024 10:00:00 GMT")
    );
    assert_eq!(
        server.hits("/a.png"),
        2,
        "one request per distinct URL and run"
    );
    assert_eq!(env.list("out/logos"), files);

    // A cache entry whose file is gone is fetched again, unconditionally.
    std::fs::remove_dir_all(env.path("out/logos")).unwrap();
    let run = env.lineup(&["build", "--report", "-"]);
    run.ok();
    assert_eq!(report(&run.stdout)["proxies"][0]["logos"]["fetched"], 4);
    let third = server
        .requests()
        .into_iter()
        .filter(|r| r.target == "/a.png")
        .nth(2)
        .unwrap();
    assert_eq!(third.header("if-none-match"), None);
    assert_eq!(env.list("out/logos"), files);
}

#[test]
fn failed_logos_keep_their_urls_and_never_fail_the_build() {
    let server = TestServer::start();
    let oversize = {
        let mut b = PNG.to_vec();
        b.resize(2 * 1024 * 1024 + 1, 0);
        b
    };
    server
        .route("/ok.png", Route::Ok(image(PNG)))
        .route("/page.png", Route::garbage())
        .route("/huge.png", Route::Ok(image(&oversize)))
        .route("/gone.png", Route::Status(404));
    let env = Env::new();
    let logos: Vec<String> = ["/ok.png", "/page.png", "/huge.png", "/gone.png"]
        .iter()
        .map(|p| server.url(p))
        .chain(["relative/logo.png".to_string(), String::new()])
        .collect();
    env.write("s.m3u", playlist(&logos));
    env.write(
        "lineup.toml",
        config(
            "{ prefetch = true, dir = \"img\", base_url = \"http://nas.local/img/\" }",
            "",
        ),
    );

    // A dry run writes nothing and fetches nothing.
    // (A dry run prints its summary on stdout: the report goes to a file.)
    env.lineup(&["build", "--dry-run", "--report", "dry.json"])
        .ok();
    assert!(report(&env.read("dry.json"))["proxies"][0]["logos"].is_null());
    assert!(server.requests().is_empty());

    let run = env.lineup(&["build", "--report", "-"]);
    run.ok();
    let r = report(&run.stdout);
    validate_report(&r);
    let stats = &r["proxies"][0]["logos"];
    // Only absolute http(s) URLs are logos to fetch.
    assert_eq!(stats["distinct"], 4, "{stats}");
    assert_eq!(stats["fetched"], 1);
    assert_eq!(stats["failed"], 3);
    for what in [
        "page.png: not an image",
        "huge.png: body larger than",
        "gone.png: HTTP 404",
    ] {
        assert!(
            run.stderr.contains(what),
            "no warning with {what:?}:\n{}",
            run.stderr
        );
    }
    assert_eq!(
        run.stderr.matches("warning: proxy p: logo failed").count(),
        3
    );

    let files = env.list("out/img");
    assert_eq!(files.len(), 1, "only the image is kept: {files:?}");
    assert!(is_hash_name(&files[0], "png"));
    let mut expected = logos.clone();
    expected[0] = format!("http://nas.local/img/{}", files[0]);
    assert_eq!(written_logos(&env), expected);
}

#[test]
fn traversal_looking_urls_are_stored_by_hash_inside_the_logo_dir() {
    let server = TestServer::start();
    let evil = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";
    // Whether the client sends the dots or resolves them, the server has a picture for it.
    for target in [
        "/../../etc/passwd.png",
        "/etc/passwd.png",
        "/x/..%2F..%2Fevil.png",
    ] {
        server.route(
            target,
            Route::Ok(image(if target.contains("evil") { evil } else { SVG })),
        );
    }
    let env = Env::new();
    let logos = vec![
        format!("http://{}/../../etc/passwd.png", server.addr()),
        format!("http://{}/x/..%2F..%2Fevil.png", server.addr()),
    ];
    env.write("s.m3u", playlist(&logos));
    env.write(
        "lineup.toml",
        config(
            "{ prefetch = true, dir = \"logos\", base_url = \"http://nas.local/logos\" }",
            "",
        ),
    );
    let run = env.lineup(&["build", "--report", "-"]);
    run.ok();
    assert_eq!(
        report(&run.stdout)["proxies"][0]["logos"]["fetched"],
        2,
        "{}",
        run.stderr
    );

    let files = env.list("out/logos");
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().any(|f| is_hash_name(f, "svg")), "{files:?}");
    assert!(files.iter().any(|f| is_hash_name(f, "gif")), "{files:?}");
    // Nothing named after the URLs anywhere in the test directory.
    let mut all = Vec::new();
    walk(env.dir.path(), env.dir.path(), &mut all);
    assert!(
        !all.iter()
            .any(|p| p.contains("passwd") || p.contains("evil") || p.contains("etc")),
        "{all:#?}"
    );
    for logo in written_logos(&env) {
        let file = logo.strip_prefix("http://nas.local/logos/").expect(&logo);
        assert!(files.iter().any(|f| f == file), "{logo}");
    }
}

#[test]
fn base_url_is_written_into_the_playlist_and_the_guide() {
    let server = TestServer::start();
    let other = b"\x89PNG\r\n\x1a\nanother picture";
    let third = b"\xff\xd8\xff\xdbthird";
    server
        .route("/one.png", Route::Ok(image(PNG)))
        .route("/two.png", Route::Ok(image(other)))
        .route("/guide-one.jpg", Route::Ok(image(third)));
    let env = Env::new();
    env.write(
        "s.m3u",
        playlist(&[server.url("/one.png"), server.url("/two.png")]),
    );
    // Channel c0 has its own icon in the guide; c1 has none and gets the playlist's logo.
    env.write(
        "g.xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tv>\n\
             <channel id=\"c0\"><display-name>Zero</display-name><icon src=\"{}\"/></channel>\n\
             <channel id=\"c1\"><display-name>One</display-name></channel>\n\
             <programme start=\"20261122060000 +0000\" stop=\"20261122070000 +0000\" channel=\"c0\"><title>A</title></programme>\n\
             <programme start=\"20261122060000 +0000\" stop=\"20261122070000 +0000\" channel=\"c1\"><title>B</title></programme>\n\
             </tv>\n",
            server.url("/guide-one.jpg")
        ),
    );
    let mut text = config(
        "{ prefetch = true, base_url = \"http://nas.local/logos\" }",
        "epg = [\"g\"]\nxmltv = \"p.xml\"\nepg_days = { past = 36500, future = 36500 }\n",
    );
    text = text.replace(
        "[[proxy]]",
        "[[epg]]\nname = \"g\"\nxmltv = \"g.xml\"\n\n[[proxy]]",
    );
    env.write("lineup.toml", text);

    let run = env.lineup(&["build", "--report", "-"]);
    run.ok();
    let r = report(&run.stdout);
    validate_report(&r);
    assert_eq!(
        r["proxies"][0]["logos"]["distinct"], 3,
        "{:#}",
        r["proxies"][0]
    );
    assert_eq!(r["proxies"][0]["logos"]["fetched"], 3);

    let file_of = |bytes: &[u8]| {
        env.list("out/logos")
            .into_iter()
            .find(|f| std::fs::read(env.path("out/logos").join(f)).unwrap() == bytes)
            .expect("a file with these bytes")
    };
    let base = "http://nas.local/logos";
    assert_eq!(
        written_logos(&env),
        [
            format!("{base}/{}", file_of(PNG)),
            format!("{base}/{}", file_of(other))
        ]
    );
    let guide = env.read("out/p.xml");
    assert!(
        guide.contains(&format!("<icon src=\"{base}/{}\"", file_of(third))),
        "{guide}"
    );
    assert!(
        guide.contains(&format!("<icon src=\"{base}/{}\"", file_of(other))),
        "{guide}"
    );
    assert!(!guide.contains("127.0.0.1"), "{guide}");
}

/// Every path under `dir`, relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.strip_prefix(root).unwrap().display().to_string());
        if path.is_dir() {
            walk(root, &path, out);
        }
    }
}

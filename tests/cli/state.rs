//! The database and outputs as private state: files created `0600`, playlists of sources whose
//! URL carries credentials written `0600`, a corrupt database set aside and rebuilt (exit 3),
//! and `lineup sources` answering for a user who may read the database but not write it.

use std::os::unix::fs::PermissionsExt;

use crate::harness::Env;
use crate::http_server::{Body, Route, TestServer};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn database_is_private_and_a_corrupt_one_is_set_aside_and_rebuilt() {
    let env = Env::demo();
    env.lineup(&["build"]).ok();
    assert_eq!(mode(&env.path("lineup.db")), 0o600);

    for name in ["lineup.db-wal", "lineup.db-shm"] {
        let _ = std::fs::remove_file(env.path(name));
    }
    env.write("lineup.db", vec![b'#'; 4096]);
    let run = env.lineup(&["build"]);
    run.expect(3);
    assert!(run.stderr.contains("lineup.db"), "{}", run.stderr);
    assert!(run.stderr.contains("renamed it to"), "{}", run.stderr);
    let aside: Vec<String> = env
        .list(".")
        .into_iter()
        .filter(|f| f.starts_with("lineup.db.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{:?}", env.list("."));
    assert_eq!(
        std::fs::read(env.path(&aside[0])).unwrap(),
        vec![b'#'; 4096]
    );
    assert!(env.read("out/home.m3u").contains("#EXTINF"));
    // The fresh database is a normal one: the next build is a plain success.
    env.lineup(&["build"]).ok();
}

#[test]
fn playlist_of_a_source_url_with_credentials_is_private_and_masked() {
    let server = TestServer::start();
    // The provider's stream URLs do not show the credentials in a recognizable form.
    server.route(
        "/get.php",
        Route::Ok(Body::new(
            "#EXTM3U\n#EXTINF:-1,One\nhttp://cdn.example/a/1.ts\n",
        )),
    );
    let env = Env::new();
    let url = server.url("/get.php?username=alice77&password=hunter22&type=m3u");
    env.write(
        "lineup.toml",
        format!(
            "[[source]]\nname = \"paid\"\nm3u = \"{url}\"\n\n\
             [[proxy]]\nname = \"p\"\nsources = [\"paid\"]\nm3u = \"p.m3u\"\n"
        ),
    );
    let run = env.lineup(&["build", "-v", "--report", "-"]);
    run.ok();
    assert_eq!(mode(&env.path("out/p.m3u")), 0o600);
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains("hunter22"), "{text}");
    }
}

/// `lineup sources` opens the database read-only: it answers for a user who can read the
/// database but not write it or its directory. Needs root to switch to `nobody` (CI runs as
/// root); elsewhere it checks the read-only open on a database in a read-only directory.
#[test]
fn sources_reads_a_database_it_cannot_write() {
    let env = Env::demo();
    env.lineup(&["build"]).ok();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["lineup.toml", "lineup.db"] {
        std::fs::set_permissions(env.path(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let bin = env!("CARGO_BIN_EXE_lineup");
    let out = if root {
        std::process::Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(bin)
            .args(["sources", "--json"])
            .current_dir(env.dir.path())
            .env_remove("LINEUP_CONFIG")
            .output()
            .unwrap()
    } else {
        env.command(&["sources", "--json"]).output().unwrap()
    };
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["name"], "freeview");
    assert!(rows[0]["cached_channels"].as_u64().unwrap() > 0, "{rows}");
}

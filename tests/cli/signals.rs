//! Ctrl-C (SIGINT) in the middle of a build stops it cleanly: no temporary file is left, the
//! previous output stays whole, the database stays consistent and the next build works.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::harness::{Env, names, playlist, simple_config};

#[test]
fn sigint_mid_build_leaves_previous_output_and_a_usable_database() {
    let env = Env::new();
    env.write("small.m3u", playlist("s", 2));
    env.write(
        "lineup.toml",
        simple_config(&[("a", "small.m3u", true)], ""),
    );
    env.lineup(&["build"]).ok();
    let before = env.read("out/p.m3u");

    // A source big enough that the build is still running when the signal arrives (if it has
    // finished, the assertions below hold all the same).
    env.write("big.m3u", playlist("b", 200_000));
    env.write("lineup.toml", simple_config(&[("a", "big.m3u", true)], ""));
    let mut child = env
        .command(&["build", "-v"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    let _ = stderr.read_line(&mut first);
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    let status = child.wait().unwrap();

    let files = env.list("out");
    assert_eq!(files, ["p.m3u"], "no temporary file left");
    let after = env.read("out/p.m3u");
    if !status.success() {
        assert_eq!(after, before, "interrupted build kept the previous output");
        assert!(rest.contains("interrupted"), "{first}{rest}");
    }
    let conn = rusqlite::Connection::open(env.path("lineup.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);

    env.lineup(&["build"]).ok();
    assert_eq!(names(&env.read("out/p.m3u")).len(), 200_000);
}

//! Locking (exit 5, `--wait`) and the run report validated against its JSON Schema.

use std::fs::OpenOptions;
use std::io::Write;

use crate::harness::{Env, playlist, simple_config};

fn env_with_one_source() -> Env {
    let env = Env::new();
    env.write("a.m3u", playlist("a", 3));
    env.write("lineup.toml", simple_config(&[("a", "a.m3u", true)], ""));
    env
}

/// Hold the build lock of `lineup.db` as another build would.
fn hold_lock(env: &Env) -> std::fs::File {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(env.path("lineup.db.lock"))
        .unwrap();
    file.try_lock().unwrap();
    write!(file, "424242").unwrap();
    file
}

#[test]
fn concurrent_build_exits_5_naming_the_holder() {
    let env = env_with_one_source();
    let lock = hold_lock(&env);
    let run = env.lineup(&["build"]);
    run.expect(5);
    assert!(run.stderr.contains("pid 424242"), "{}", run.stderr);
    assert!(!env.path("out").exists());
    drop(lock);
    env.lineup(&["build"]).ok();
}

#[test]
fn wait_takes_the_lock_once_it_is_released() {
    let env = env_with_one_source();
    let lock = hold_lock(&env);
    let child = env.command(&["build", "--wait", "120s"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(lock);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(env.path("out/p.m3u").exists());

    let lock = hold_lock(&env);
    env.lineup(&["build", "--wait", "200ms"]).expect(5);
    drop(lock);
}

fn validate(report: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/report.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match docs/report.schema.json:\n{}\n{report:#}",
        errors.join("\n")
    );
}

#[test]
fn report_matches_its_schema_on_success_degraded_and_failure() {
    let env = env_with_one_source();
    let run = env.lineup(&["build", "--report", "-"]);
    run.ok();
    let report: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("stdout is only the report");
    validate(&report);
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["sources"][0]["status"], "fetched");
    assert_eq!(report["sources"][0]["items"], 3);
    assert_eq!(report["proxies"][0]["channels_out"], 3);
    let output = &report["proxies"][0]["outputs"][0];
    assert_eq!(
        output["bytes"],
        std::fs::metadata(env.path("out/p.m3u")).unwrap().len()
    );
    assert!(report["memory"]["peak_rss_bytes"].as_u64().unwrap() > 0);

    // Degraded: the source is gone, its cached copy is used.
    std::fs::remove_file(env.path("a.m3u")).unwrap();
    env.lineup(&["build", "--report", "r.json"]).expect(3);
    let report: serde_json::Value = serde_json::from_str(&env.read("r.json")).unwrap();
    validate(&report);
    assert_eq!(report["exit_code"], 3);
    assert_eq!(report["sources"][0]["status"], "cached");
    assert!(
        report["sources"][0]["error"]
            .as_str()
            .unwrap()
            .contains("a.m3u")
    );

    // Too few sources: exit 4, and the report says why.
    let fresh = Env::new();
    fresh.write(
        "lineup.toml",
        simple_config(&[("a", "missing.m3u", true)], ""),
    );
    fresh.lineup(&["build", "--report", "r.json"]).expect(4);
    let report: serde_json::Value = serde_json::from_str(&fresh.read("r.json")).unwrap();
    validate(&report);
    assert_eq!(report["exit_code"], 4);
    assert_eq!(report["sources"][0]["status"], "failed");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("min_successful_sources")
    );
}

#[test]
fn run_history_is_kept_in_the_database() {
    let env = env_with_one_source();
    env.lineup(&["build"]).ok();
    env.lineup(&["build"]).ok();
    let conn = rusqlite::Connection::open(env.path("lineup.db")).unwrap();
    let runs: i64 = conn
        .query_row("SELECT count(*) FROM runs WHERE exit_code = 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(runs, 2);
}

//! The unattended story as documented: the CI job script (docs/ci/build.sh) and the systemd
//! service's command line (docs/systemd/lineup.service, also printed in lineup(1)), run for
//! real against the demo.

use std::process::Command;

use crate::harness::Env;

fn ci_job(env: &Env) -> (i32, String) {
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ci/build.sh"))
        .current_dir(env.dir.path())
        .env("LINEUP", env!("CARGO_BIN_EXE_lineup"))
        .env("CONFIG", "lineup.toml")
        .env("ARTIFACTS", "artifacts")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn ci_job_publishes_artifacts_and_fails_only_on_failure_codes() {
    let env = Env::demo();
    let (code, output) = ci_job(&env);
    assert_eq!(code, 0, "{output}");
    assert_eq!(
        env.list("artifacts"),
        ["home.m3u", "home.xml", "report.json"]
    );

    // Degraded (exit 3): the job passes with a warning.
    std::fs::remove_file(env.path("freeview.m3u")).unwrap();
    let (code, output) = ci_job(&env);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("::warning::lineup: degraded"), "{output}");

    // A configuration error (exit 2) fails the job with lineup's code.
    env.write("lineup.toml", "[[proxy]]\nbogus = true\n");
    let (code, output) = ci_job(&env);
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains("::error::lineup build failed with exit code 2"),
        "{output}"
    );
}

/// The value of `Key=` in a unit.
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
}

/// The units in docs/systemd are the ones the README and lineup(1) show, and have what a
/// timer-driven build needs.
#[test]
fn systemd_units_in_the_docs_are_the_ones_shown_and_complete() {
    use lineup::cmd::man::{SERVICE, TIMER};
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(SERVICE),
        "README shows docs/systemd/lineup.service verbatim"
    );
    assert!(
        readme.contains(TIMER),
        "README shows docs/systemd/lineup.timer verbatim"
    );
    for line in [
        "Type=oneshot",
        "StateDirectory=lineup",
        "SuccessExitStatus=3",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
    ] {
        assert!(SERVICE.lines().any(|l| l == line), "{line}");
    }
    unit_value(SERVICE, "TimeoutStopSec");
    let exec = unit_value(SERVICE, "ExecStart");
    assert!(
        exec.contains(" --db /var/lib/lineup/") && exec.contains(" --output-dir /var/lib/lineup/"),
        "{exec}"
    );
    assert!(TIMER.lines().any(|l| l == "Persistent=true"));
    unit_value(TIMER, "RandomizedDelaySec");
}

/// `systemd-analyze verify` accepts the units (with ExecStart pointing at the built binary).
/// CI installs Debian's `systemd` package for the tool (.ci/run); elsewhere the test is
/// skipped when the tool is missing.
#[test]
fn systemd_analyze_verifies_the_units() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing: CI installs the `systemd` package for it"
        );
        eprintln!("skipped: systemd-analyze not installed (apt-get install systemd)");
        return;
    }
    let env = Env::new();
    let service =
        lineup::cmd::man::SERVICE.replace("/usr/local/bin/lineup", env!("CARGO_BIN_EXE_lineup"));
    env.write("lineup.service", service);
    env.write("lineup.timer", lineup::cmd::man::TIMER);
    let out = Command::new("systemd-analyze")
        .args(["verify", "lineup.service", "lineup.timer"])
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("lineup.")).collect();
    assert!(ours.is_empty(), "systemd-analyze complains: {ours:?}");
}

/// The service's ExecStart line, run as an unprivileged user (`nobody` when the tests run as
/// root, as CI does) against the starter config `lineup init` writes, kept in a directory that
/// user cannot write (like /etc/lineup), with a state directory of its own (what
/// `StateDirectory=` gives): builds, then reports `unchanged`.
#[test]
fn systemd_service_command_builds_as_an_unprivileged_user_then_reports_unchanged() {
    use std::os::unix::fs::PermissionsExt;
    let service = lineup::cmd::man::SERVICE;
    let env = Env::new();
    let top = env.dir.path();
    std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o755)).unwrap();
    let etc = env.path("etc");
    let state = env.path("state");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(state.join("tmp")).unwrap();
    env.lineup(&["init", "etc/lineup.toml"]).ok();
    env.fixture("demo/freeview.m3u", "etc/channels.m3u");

    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut prefix: Vec<String> = Vec::new();
    if root {
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        for dir in [&state, &state.join("tmp")] {
            std::os::unix::fs::chown(dir, Some(id("-u")), Some(id("-g"))).unwrap();
        }
        prefix = [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--",
        ]
        .map(String::from)
        .to_vec();
    }
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o555)).unwrap();

    let state_dir = state.to_str().unwrap();
    let exec = unit_value(service, "ExecStart")
        .replace("/usr/local/bin/lineup", env!("CARGO_BIN_EXE_lineup"))
        .replace("/var/lib/lineup", state_dir);
    let config = unit_value(service, "Environment")
        .strip_prefix("LINEUP_CONFIG=")
        .unwrap()
        .replace("/etc/lineup", etc.to_str().unwrap());
    assert_eq!(unit_value(service, "WorkingDirectory"), "/var/lib/lineup");
    let words: Vec<String> = prefix
        .into_iter()
        .chain(exec.split_whitespace().map(String::from))
        .collect();
    let run = || {
        let out = Command::new(&words[0])
            .args(&words[1..])
            .current_dir(&state)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LINEUP_CONFIG", &config)
            .env("TMPDIR", state.join("tmp"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{words:?}\n{stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(run(), "");
    assert!(state.join("out/home.m3u").is_file());
    let db_mode = std::fs::metadata(state.join("lineup.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(db_mode & 0o777, 0o600);
    assert_eq!(run(), "unchanged\n");
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// With `--report -` stdout is exactly one JSON document in every mode; the human lines
/// (`unchanged`, the dry-run counts) go to stderr.
#[test]
fn report_on_stdout_is_the_only_thing_there_in_every_mode() {
    let env = Env::demo();
    let parse = |args: &[&str], code: i32| {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--report", "-"]);
        let run = env.lineup(&all);
        run.expect(code);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: stdout is not one JSON document ({e}):\n{}",
                run.stdout
            )
        });
        assert_eq!(report["exit_code"], code, "{args:?}");
        crate::harness::validate_report(&report);
        run.stderr.clone()
    };
    let stderr = parse(&["--dry-run"], 0);
    assert!(
        stderr.contains(" in, "),
        "dry-run counts on stderr: {stderr}"
    );
    parse(&[], 0);
    let stderr = parse(&["--if-changed"], 0);
    assert!(stderr.contains("unchanged"), "{stderr}");
    env.write("lineup.toml", "[[proxy]]\nbogus = true\n");
    parse(&[], 2);
}

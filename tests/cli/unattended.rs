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

#[test]
fn systemd_service_command_builds_then_reports_unchanged() {
    let service = lineup::cmd::man::SERVICE;
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let mut words = exec.split_whitespace();
    assert!(words.next().unwrap().ends_with("/lineup"));
    let args: Vec<&str> = words.collect();
    assert!(service.lines().any(|l| l == "SuccessExitStatus=3"));
    assert!(service.contains("Type=oneshot"));

    let env = Env::demo();
    let run = |expected_stdout: &str| {
        let out = env
            .command(&args)
            .env("LINEUP_CONFIG", env.path("lineup.toml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected_stdout);
    };
    run("");
    assert!(env.path("out/home.m3u").exists());
    run("unchanged\n");
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
        run.stderr
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

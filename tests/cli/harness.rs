//! A small harness: a fresh directory per test, the binary from `CARGO_BIN_EXE_lineup`, and
//! failure messages that show the command's whole output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Env {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The result of a command run by hand (`Env::command`).
    pub fn from_output(output: Output) -> Run {
        Run::from(output)
    }

    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Assert the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Run {
        self.expect(0)
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A fresh directory holding the shipped demo (fixtures/demo).
    pub fn demo() -> Env {
        let env = Env::new();
        for f in [
            "freeview.m3u",
            "premium.m3u",
            "archive.m3u",
            "guide.xml",
            "lineup.toml",
        ] {
            env.fixture(&format!("demo/{f}"), f);
        }
        env
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Copy `fixtures/<fixture>` to `<dest>` in the test directory.
    pub fn fixture(&self, fixture: &str, dest: &str) -> PathBuf {
        let bytes = std::fs::read(fixtures().join(fixture)).expect(fixture);
        self.write(dest, bytes)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lineup"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("LINEUP_CONFIG")
            .env("NO_COLOR", "1");
        cmd
    }

    pub fn lineup(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run lineup"))
    }

    /// Files in a directory of the test env, sorted.
    pub fn list(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(rel))
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Parse an M3U text with the library's reader.
pub fn parse_m3u(text: &[u8]) -> Vec<lineup::model::Channel> {
    let reader = lineup::parse::m3u::M3uReader::new(text, "test", std::sync::Arc::from("t"));
    reader.collect::<std::io::Result<Vec<_>>>().unwrap()
}

/// Names of the channels in an M3U text, in order.
pub fn names(text: &str) -> Vec<String> {
    parse_m3u(text.as_bytes())
        .into_iter()
        .map(|c| c.name)
        .collect()
}

/// A config with one proxy over the given (name, m3u path, active) sources.
pub fn simple_config(sources: &[(&str, &str, bool)], proxy_extra: &str) -> String {
    let mut text = String::new();
    for (name, path, active) in sources {
        text.push_str(&format!(
            "[[source]]\nname = \"{name}\"\nm3u = \"{path}\"\nactive = {active}\n\n"
        ));
    }
    let list: Vec<String> = sources.iter().map(|(n, _, _)| format!("\"{n}\"")).collect();
    text.push_str(&format!(
        "[[proxy]]\nname = \"p\"\nsources = [{}]\nm3u = \"p.m3u\"\n{proxy_extra}\n",
        list.join(", ")
    ));
    text
}

/// An M3U with `n` channels named `{prefix}-{i}`.
pub fn playlist(prefix: &str, n: usize) -> String {
    let mut text = String::from("#EXTM3U\n");
    for i in 0..n {
        text.push_str(&format!(
            "#EXTINF:-1 tvg-id=\"{prefix}{i}.id\" group-title=\"G{}\",{prefix}-{i}\nhttp://s.example/{prefix}/{i}\n",
            i % 3
        ));
    }
    text
}

/// Check a run report against docs/report.schema.json, showing every violation.
pub fn validate_report(report: &serde_json::Value) {
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

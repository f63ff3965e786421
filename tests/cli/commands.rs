//! `check`, `init`, `completions`, and the man page that must match the command line.

use crate::harness::Env;

#[test]
fn init_writes_a_config_that_check_accepts_and_refuses_to_overwrite() {
    let env = Env::new();
    env.lineup(&["init"]).ok();
    let text = env.read("lineup.toml");
    assert!(text.contains("[[proxy]]"));
    env.lineup(&["check"]).ok();
    let again = env.lineup(&["init"]);
    again.expect(2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(env.read("lineup.toml"), text);
    env.lineup(&["init", "other.toml"]).ok();
    env.lineup(&["check", "other.toml"]).ok();
}

#[test]
fn completions_for_each_shell() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = env.lineup(&["completions", shell]);
        run.ok();
        assert!(run.stdout.contains("lineup"), "{shell}");
    }
    env.lineup(&["completions", "tcsh"]).expect(2);
}

#[test]
fn man_page_in_the_repo_is_current() {
    let env = Env::new();
    let run = env.lineup(&["man"]);
    run.ok();
    let checked_in = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/lineup.1"))
        .expect("man/lineup.1");
    assert!(
        checked_in == run.stdout,
        "man/lineup.1 is stale: run `cargo run -q -- man > man/lineup.1`"
    );
    assert!(run.stdout.contains("EXIT STATUS"));
}

#[test]
fn help_shows_exit_codes_and_usage_errors_exit_2() {
    let env = Env::new();
    let run = env.lineup(&["--help"]);
    run.ok();
    assert!(run.stdout.contains("EXIT STATUS"));
    env.lineup(&["build", "--no-such-flag"]).expect(2);
    env.lineup(&[]).expect(2);
}

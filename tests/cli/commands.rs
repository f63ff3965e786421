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

/// `lineup numbers` takes an optional CONFIG before the required PROXY, and says so.
#[test]
fn numbers_usage_reads_config_then_proxy() {
    let env = Env::new();
    let run = env.lineup(&["numbers", "--help"]);
    run.ok();
    assert!(
        run.stdout
            .contains("Usage: lineup numbers [OPTIONS] [CONFIG] <PROXY>"),
        "{}",
        run.stdout
    );
    let run = env.lineup(&["numbers"]);
    run.expect(2);
    assert!(run.stderr.contains("<PROXY>"), "{}", run.stderr);
    env.lineup(&["numbers", "a.toml", "home", "extra"])
        .expect(2);
}

#[test]
fn readme_configurations_pass_check() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut checked = 0;
    for block in readme.split("```toml").skip(1) {
        let block = block.split("```").next().unwrap();
        if !block.contains("[[proxy]]") {
            continue;
        }
        // A fragment (`# ...` in a proxy) gets the keys a proxy needs and a source.
        let block = &if block.contains("# ...") {
            format!(
                "[[source]]\nname = \"s\"\nm3u = \"s.m3u\"\n\n{}",
                block.replace(
                    "# ...\n",
                    "name = \"p\"\nsources = [\"s\"]\nm3u = \"p.m3u\"\n"
                )
            )
        } else {
            block.to_string()
        };
        let env = Env::new();
        env.write("lineup.toml", block);
        let mut cmd = env.command(&["check"]);
        // Every ${NAME} the example uses, set to something.
        for part in block.split("${").skip(1) {
            let name = part.split('}').next().unwrap();
            cmd.env(name, "example-value");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "README example fails `lineup check`:\n{block}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 5, "found {checked} README configurations");
}

/// The demo the README's first command builds, and the example of lineup.toml(5), pass
/// `lineup check`; the demo ships every file it names, so it draws no warning either.
#[test]
fn demo_and_config_man_page_example_pass_check() {
    let env = Env::demo();
    let run = env.lineup(&["check"]);
    run.ok();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    assert!(run.stdout.contains("proxy home:"), "{}", run.stdout);

    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/lineup.toml.5")).unwrap();
    let example = page
        .split(".SH EXAMPLE\n.nf\n")
        .nth(1)
        .expect("EXAMPLE section")
        .split("\n.fi")
        .next()
        .unwrap()
        .replace("\\-", "-");
    let env = Env::new();
    env.write("lineup.toml", &example);
    let run = env.lineup(&["check"]);
    run.ok();
    assert!(run.stdout.contains("proxy home:"), "{}", run.stdout);
}

#[test]
fn expression_examples_in_the_config_man_page_pass_check() {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/lineup.toml.5")).unwrap();
    let section = page
        .split(".SH EXPRESSIONS")
        .nth(1)
        .expect("EXPRESSIONS section");
    let example = section
        .split(".nf\n")
        .nth(1)
        .unwrap()
        .split("\n.fi")
        .next()
        .unwrap();
    let toml = example.replace("\\-", "-").replace("\\e", "\\");
    let names: Vec<String> = toml
        .lines()
        .filter_map(|l| l.strip_prefix("name"))
        .map(|l| l.split('"').nth(1).unwrap().to_string())
        .collect();
    let filters: Vec<String> = names[..3].iter().map(|n| format!("\"{n}\"")).collect();
    let mappings: Vec<String> = names[3..].iter().map(|n| format!("\"{n}\"")).collect();
    let env = Env::new();
    env.write(
        "a.m3u",
        "#EXTM3U\n#EXTINF:-1 tvg-id=\"a.uk\" catchup-days=\"3\",UK: BBC One +1\nhttp://s/1\n",
    );
    env.write(
        "lineup.toml",
        format!(
            "[[source]]\nname = \"s\"\nm3u = \"a.m3u\"\n\n{toml}\n\n[[proxy]]\nname = \"p\"\nsources = [\"s\"]\nm3u = \"p.m3u\"\nfilters = [{}]\nmappings = [{}]\n",
            filters.join(", "),
            mappings.join(", ")
        ),
    );
    env.lineup(&["check"]).ok();
    env.lineup(&["build"]).ok();
    assert_eq!(
        env.read("out/p.m3u"),
        "#EXTM3U\n#EXTINF:-1 tvg-id=\"a.uk\" catchup-days=\"3\" tvg-shift=\"1\" group-title=\"Other\" tvg-name=\"BBC One (s)\",BBC One\nhttp://s/1\n"
    );
}

#[test]
fn check_refuses_two_outputs_on_one_path_and_warns_of_missing_local_files() {
    let env = Env::new();
    env.write("a.m3u", "#EXTM3U\n#EXTINF:-1,A\nhttp://x/a\n");
    let config = "[[source]]\nname = \"a\"\nm3u = \"a.m3u\"\n\n\
                  [[source]]\nname = \"gone\"\nm3u = \"gone.m3u\"\n\n\
                  [[epg]]\nname = \"g\"\nxmltv = \"missing.xml\"\n\n\
                  [[proxy]]\nname = \"one\"\nsources = [\"a\", \"gone\"]\nm3u = \"tv.m3u\"\n\n\
                  [[proxy]]\nname = \"two\"\nsources = [\"a\"]\nm3u = \"./tv.m3u\"\n";
    env.write("lineup.toml", config);
    let run = env.lineup(&["check"]);
    run.expect(2);
    assert!(
        run.stderr.contains(
            "lineup.toml:21:7: proxy `two` `m3u` writes `./tv.m3u`, as proxy `one` `m3u` does"
        ),
        "{}",
        run.stderr
    );

    env.write("lineup.toml", config.replace("./tv.m3u", "tv2.m3u"));
    let run = env.lineup(&["check"]);
    run.ok();
    assert!(
        run.stderr.contains("source `gone`:") && run.stderr.contains("gone.m3u does not exist"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("epg `g`:"), "{}", run.stderr);
    assert!(!run.stderr.contains("source `a`"), "{}", run.stderr);
}

/// `lineup check`'s plan shows dedupe (with the alive preference when the proxy probes), probing
/// and the placeholder guide, so the plan says what a build will do.
#[test]
fn check_plan_shows_dedupe_probe_and_placeholder() {
    let env = Env::new();
    env.write("a.m3u", crate::harness::playlist("a", 2));
    env.write(
        "lineup.toml",
        "[settings.probe]\nbudget = \"90s\"\n\n[[source]]\nname = \"a\"\nm3u = \"a.m3u\"\n\n\
         [[proxy]]\nname = \"p\"\nsources = [\"a\"]\nm3u = \"p.m3u\"\ndedupe = \"tvg_id\"\n\
         probe = true\nxmltv = \"p.xml\"\nepg_placeholder = { block = \"30m\" }\n",
    );
    let run = env.lineup(&["check"]);
    run.ok();
    for line in [
        "  dedupe: by tvg_id, keeping the first alive channel in priority order, else the first\n",
        "  probe: stream URLs during builds, within 90s per build\n",
        "  placeholder guide: 30m blocks for channels no guide covers\n",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
}

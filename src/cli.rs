//! The command line (SPEC section 1), as clap derive types. The doc comments are the `--help`
//! text and the man page `man/lineup.1`, which is generated from this definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "lineup",
    version,
    about = "Build clean, numbered, deduplicated IPTV line-ups (M3U) and matching guides (XMLTV) from many sources",
    long_about = "lineup reads a TOML file that defines sources (M3U playlists, Xtream Codes accounts, \
XMLTV guides) and proxies (output line-ups built from an ordered set of those sources), and writes, \
for each proxy, an M3U playlist (and an XMLTV guide) to disk, then exits. It keeps the last good copy \
of every source, its health and the run history in an SQLite database.",
    after_help = crate::exit::TABLE,
    propagate_version = true
)]
pub struct Cli {
    /// Print errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail on stderr (-vv for even more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch the sources and write each proxy's outputs (playlist, guide, tuner files).
    ///
    /// A source that fails is served from its last good copy in the database.
    Build(BuildArgs),
    /// Validate the configuration and every expression (no network) and print the plan.
    ///
    /// Two outputs on one path are an error; a missing or unreadable local source or guide
    /// file draws a warning (exit still 0).
    Check(ConfigArg),
    /// Write a commented starter configuration (refuses to overwrite).
    Init(InitArgs),
    /// Show each source's health and cache state from the database.
    ///
    /// Never creates the database, and reads it without a lock (so it works during a build),
    /// except that `--enable` takes the build lock to write.
    Sources(SourcesArgs),
    /// Probe the stream URLs of proxies without building: which streams play.
    ///
    /// Uses the channels stored by the last build and the settings of [settings.probe]; takes
    /// the build lock. Each probe opens a real stream, which the provider counts as a viewer:
    /// keep `per_host = 1` for accounts that limit connections.
    Probe(ProbeArgs),
    /// List probed streams with their status, reason and last check.
    ///
    /// Takes no lock and never creates the database.
    Streams(StreamsArgs),
    /// List a proxy's sticky channel numbers, or forget some.
    ///
    /// Lists identity, number, first and last seen; `--forget` and `--reset` make the next
    /// build number those channels anew.
    Numbers(NumbersArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page lineup(1) (for packaging; CI checks man/lineup.1 against it).
    #[command(hide = true)]
    Man,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The configuration file [default: $LINEUP_CONFIG, else ./lineup.toml]. Relative paths
    /// inside it resolve against its directory.
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Build only this proxy (repeatable); default: every proxy.
    #[arg(long = "proxy", value_name = "NAME")]
    pub proxies: Vec<String>,
    /// Write outputs here instead of settings.output_dir.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Use this database instead of settings.database.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Worker threads for mapping and filtering (0 = all cores) instead of settings.jobs.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Fetch nothing: build from the last good data cached in the database.
    #[arg(long)]
    pub offline: bool,
    /// Memory budget (e.g. 256MiB, 2GiB) instead of settings.memory_limit; default: half the
    /// memory available (or of the cgroup limit). It bounds the peak resident size: past it,
    /// stages spill to temporary files.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory_limit: Option<u64>,
    /// Run every stage and print per-proxy counts, but write no output file.
    #[arg(long)]
    pub dry_run: bool,
    /// Progress bars: `auto` shows them when stderr is a terminal; otherwise one plain line
    /// per source and per stage.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = crate::progress::ProgressMode::Auto)]
    pub progress: crate::progress::ProgressMode,
    /// Rebuild only the proxies whose outputs would change: a proxy is left alone when its
    /// sources' and guides' content, the configuration and its guide window's first day are
    /// what its outputs were last written from, and those files are still in place unchanged.
    /// When every proxy is left alone, print `unchanged` and exit 0.
    #[arg(long)]
    pub if_changed: bool,
    /// Take a copy the shrink guard (max_shrink) would refuse, on purpose: NAME is a source,
    /// a guide or a proxy (repeatable; an unknown name exits 2).
    #[arg(long = "accept-shrink", value_name = "NAME")]
    pub accept_shrink: Vec<String>,
    /// Write the run report as JSON to FILE, or to stdout with `-` (stdout then carries that
    /// one JSON document only: dry-run counts and `unchanged` go to stderr).
    #[arg(long, value_name = "FILE|-")]
    pub report: Option<PathBuf>,
    /// When another build holds the lock on the database, wait up to DURATION (e.g. 30s, 5m)
    /// instead of exiting 5.
    #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
    pub wait: Option<std::time::Duration>,
}

fn parse_size(text: &str) -> Result<u64, String> {
    crate::config::units::parse_size(text)
}

fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    crate::config::units::parse_duration(text)
}

#[derive(Debug, Args)]
pub struct SourcesArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print a JSON array instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Read this database instead of settings.database.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Re-enable a source or guide that was auto-disabled (repeatable): clear its disabled
    /// state and consecutive failures so that the next build fetches it, then show the table.
    /// Takes the build lock (exit 5 while a build runs).
    #[arg(long = "enable", value_name = "NAME")]
    pub enable: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Probe only this proxy (repeatable), whether or not it has `probe = true`; default:
    /// every proxy with `probe = true`.
    #[arg(long = "proxy", value_name = "NAME")]
    pub proxies: Vec<String>,
    /// Use this database instead of settings.database.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Time to spend probing (e.g. 30m) instead of settings.probe.budget: a separate, slower
    /// timer can take longer than a build may.
    #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
    pub budget: Option<std::time::Duration>,
    /// Progress bar: `auto` shows it when stderr is a terminal; otherwise one summary line
    /// per proxy.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = crate::progress::ProgressMode::Auto)]
    pub progress: crate::progress::ProgressMode,
    /// When a build holds the lock on the database, wait up to DURATION instead of exiting 5.
    #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
    pub wait: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct StreamsArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only the streams of this proxy.
    #[arg(long = "proxy", value_name = "NAME")]
    pub proxy: Option<String>,
    /// Only dead streams.
    #[arg(long)]
    pub dead: bool,
    /// Print a JSON array instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Read this database instead of settings.database.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

/// `lineup numbers [CONFIG] PROXY`: an optional positional before a required one, which clap
/// takes with `allow_missing_positional` (one argument is the PROXY).
#[derive(Debug, Args)]
#[command(allow_missing_positional = true)]
pub struct NumbersArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The proxy whose numbers to show or change.
    #[arg(value_name = "PROXY")]
    pub proxy: String,
    /// Print a JSON array (identity, number, first_seen, last_seen) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Forget the number this identity holds (as `lineup numbers` prints it); takes the
    /// build lock.
    #[arg(long, value_name = "IDENTITY")]
    pub forget: Option<String>,
    /// Forget every number of the proxy: the next build renumbers it from scratch; takes the
    /// build lock.
    #[arg(long)]
    pub reset: bool,
    /// Use this database instead of settings.database.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the starter configuration.
    #[arg(default_value = "lineup.toml")]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: Shell,
}

//! Progress bars on a terminal (indicatif): a spinner per source while it is fetched and
//! stored, and a bar per proxy as its channels go through the pipeline. Off a terminal
//! (`--progress auto` under systemd, in CI, piped) there are no bars and no control
//! characters at all: the plain per-source and per-stage log lines say the same.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal.
    Auto,
    /// Bars even when stderr is not a terminal.
    Always,
    /// Never bars.
    Never,
}

static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Turn bars on for this process (at most once), if `mode` and stderr say so.
pub fn init(mode: ProgressMode, quiet: bool) {
    let on = match mode {
        ProgressMode::Never => false,
        ProgressMode::Always => true,
        ProgressMode::Auto => !quiet && std::io::stderr().is_terminal(),
    };
    if on {
        let target = match mode {
            // indicatif's stderr target hides itself off a terminal; `always` means always.
            ProgressMode::Always => ProgressDrawTarget::term(console::Term::stderr(), 10),
            _ => ProgressDrawTarget::stderr_with_hz(10),
        };
        let _ = BARS.set(MultiProgress::with_draw_target(target));
    }
}

/// Print a log line above the bars (`None` when there are no bars: print it plainly).
pub fn println(line: &str) -> Option<()> {
    let bars = BARS.get()?;
    let _ = bars.println(line);
    Some(())
}

/// A spinner for one source; cleared when dropped.
pub struct SourceSpinner(Option<ProgressBar>);

impl SourceSpinner {
    pub fn start(name: &str) -> SourceSpinner {
        SourceSpinner(BARS.get().map(|bars| {
            let bar = bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} source {prefix}: {msg} {elapsed}")
                    .expect("valid template"),
            );
            bar.set_prefix(name.to_string());
            bar.set_message("fetching");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        }))
    }

    pub fn set_message(&self, message: &'static str) {
        if let Some(bar) = &self.0 {
            bar.set_message(message);
        }
    }
}

impl Drop for SourceSpinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// A bar for one proxy's channels; cleared when dropped.
pub struct ProxyBar(Option<ProgressBar>);

impl ProxyBar {
    pub fn start(name: &str, total: u64) -> ProxyBar {
        ProxyBar(BARS.get().map(|bars| {
            let bar = bars.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(
                    "proxy {prefix}: [{bar:30}] {pos}/{len} channels {per_sec} {elapsed}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar
        }))
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }
}

impl Drop for ProxyBar {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// A bar for one proxy's stream probes; its length grows as due streams are queued.
pub struct ProbeBar(Option<ProgressBar>);

impl ProbeBar {
    pub fn start(name: &str) -> ProbeBar {
        ProbeBar(BARS.get().map(|bars| {
            let bar = bars.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "probe {prefix}: [{bar:30}] {pos}/{len} streams {per_sec} {elapsed}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar
        }))
    }

    /// More streams queued.
    pub fn add(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc_length(n);
        }
    }

    pub fn inc(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }
}

impl Drop for ProbeBar {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

//! `lineup man`: render lineup(1) from the clap definition, with the subcommands and the exit
//! codes, so the man page can never drift from `--help` (CI regenerates and diffs it).

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;
use clap_mangen::Man;

use crate::cli::Cli;
use crate::exit::{Exit, Failure};

pub fn render() -> std::io::Result<Vec<u8>> {
    let cmd = Cli::command();
    let man = Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("lineup {}", sub.get_name());
        out.extend_from_slice(format!(".SS \"{name}\"\n").as_bytes());
        let sub = sub.clone().bin_name(name);
        let sub_man = Man::new(sub.clone());
        let mut section = Vec::new();
        sub_man.render_synopsis_section(&mut section)?;
        sub_man.render_description_section(&mut section)?;
        sub_man.render_options_section(&mut section)?;
        // Sub-sections instead of sections, so the page keeps one outline.
        let text = String::from_utf8_lossy(&section)
            .replace(".SH SYNOPSIS\n", "")
            .replace(".SH DESCRIPTION\n", "")
            .replace(".SH OPTIONS\n", ".PP\nOptions:\n");
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(EXTRA.as_bytes());
    out.extend_from_slice(examples().as_bytes());
    man.render_version_section(&mut out)?;
    Ok(out)
}

const EXTRA: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
success (or \fBunchanged\fR with \-\-if\-changed)
.TP
\fB1\fR
runtime error not covered below (one proxy could not be written while the others were; the
build was interrupted by SIGINT or SIGTERM)
.TP
\fB2\fR
usage or configuration error: nothing fetched, nothing written
.TP
\fB3\fR
degraded: outputs written, but at least one source failed, was refused by \fImax_shrink\fR,
was skipped or is disabled, and its cached data (or nothing) was used; or a proxy's output
shrank past \fImax_shrink\fR and its previous outputs were kept; or a corrupt database was set
aside and a fresh one started
.TP
\fB4\fR
fewer than \fImin_successful_sources\fR sources fresh in this build (\fBfetched\fR or
\fBnot_modified\fR; cached, refused, skipped and disabled sources do not count), or
\fIfail_fast\fR stopped the build: previous outputs left untouched
.TP
\fB5\fR
another \fBlineup build\fR holds the lock on this database
.SH ENVIRONMENT
.TP
\fBLINEUP_CONFIG\fR
the configuration file when none is named (default \fI./lineup.toml\fR)
.TP
\fBLINEUP_NOW\fR
Unix seconds: the clock for the guide window, stream probe rechecks and sticky numbering's
\fIforget_after\fR (reproducible builds and tests)
.TP
\fBTMPDIR\fR
spill files and download spools when \fIsettings.spill_dir\fR is empty
.TP
\fBSQLITE_TMPDIR\fR
SQLite's temporary tables (sticky numbering's pending assignments), else \fBTMPDIR\fR, else
\fI/var/tmp\fR
.TP
\fBNO_COLOR\fR
honoured: lineup prints no colour
.SH FILES
.TP
\fIlineup.toml\fR
the configuration; see \fBlineup.toml\fR(5)
.TP
\fIlineup.db\fR
the SQLite database (\fIsettings.database\fR): last good copy of every source, health, run
history, sticky numbers and stream probe results; created 0600 with its \fI\-wal\fR and
\fI\-shm\fR files
.TP
\fIlineup.db.lock\fR
the build lock, beside the database's canonical path
.TP
\fIlineup.db.corrupt\-\fRTIME
a database SQLite could not read, set aside by a build that then started a fresh one
.TP
\fI.NAME.\fRPID\fI\-*.tmp\fR, \fIlineup\-spill\-\fRPID\fI\-*\fR, \fIlineup\-fetch\-\fRPID\fI\-*\fR
a build's temporary files (beside its outputs; in \fIspill_dir\fR or \fBTMPDIR\fR), removed
when it ends; those of a killed build are removed by the next build once its pid is gone
.SH "SEE ALSO"
\fBlineup.toml\fR(5)
"#;

/// The EXAMPLES section: the systemd units shipped in docs/systemd, verbatim, so the page and
/// the files cannot disagree.
fn examples() -> String {
    let literal = |text: &str| {
        text.lines()
            .map(|l| {
                let l = l.replace('\\', "\\e").replace('-', "\\-");
                if l.starts_with('.') || l.starts_with('\'') {
                    format!("\\&{l}")
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        ".SH EXAMPLES\n\
.SS \"Run it from a systemd timer\"\n\
A oneshot service rebuilds with \\fB\\-\\-if\\-changed\\fR (nothing is written when no source and \
not the configuration changed) and treats exit code 3 (degraded) as success. It runs as the \
system user \\fBlineup\\fR (create it first: \\fBuseradd \\-\\-system \\-\\-user\\-group \
\\-\\-home\\-dir /var/lib/lineup \\-\\-shell /usr/sbin/nologin lineup\\fR) with the binary in \
/usr/local/bin and the configuration in /etc/lineup/lineup.toml; the database and the outputs live \
in /var/lib/lineup (\\fBStateDirectory\\fR), named on the command line so that the relative paths of \
the starter configuration do not resolve in the read\\-only /etc/lineup. SIGTERM stops a build \
within 2 seconds, previous outputs intact.\n\
.PP\n\
\\fI/etc/systemd/system/lineup.service\\fR:\n\
.PP\n.nf\n{}\n.fi\n.PP\n\
\\fI/etc/systemd/system/lineup.timer\\fR:\n\
.PP\n.nf\n{}\n.fi\n",
        literal(SERVICE),
        literal(TIMER)
    )
}

pub const SERVICE: &str = include_str!("../../docs/systemd/lineup.service");
pub const TIMER: &str = include_str!("../../docs/systemd/lineup.timer");

pub fn run() -> Result<Exit, Failure> {
    let page = render().context("cannot render the man page")?;
    std::io::stdout()
        .write_all(&page)
        .context("cannot write the man page")?;
    Ok(Exit::Success)
}

//! Temporary files a build makes outside its outputs (output temps beside the destination,
//! spill files, fetch spools) carry the build's pid in their names. Each is removed when the
//! build drops it; nothing runs on SIGKILL, so a build starting up removes the leftovers of
//! builds whose pid is no longer alive, and never a file of a build that is still running
//! (say, one on another database writing to the same output directory).

use std::fs;
use std::path::Path;

/// `lineup-spill-` and the like become `lineup-spill-<pid>-`, the prefix of this build's files.
pub fn prefix(kind: &str) -> String {
    format!("{kind}{}-", std::process::id())
}

/// Whether a process with this pid exists. Unknown (no `/proc`) counts as alive: a leftover
/// stays rather than a live file going.
pub fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc_dir = Path::new("/proc");
    if !proc_dir.join("self").exists() {
        return true;
    }
    proc_dir.join(pid.to_string()).exists()
}

/// The pid in `<kind><pid>-...`, if `file` is named like that.
fn pid_of(file: &str, kind: &str) -> Option<u32> {
    let rest = file.strip_prefix(kind)?;
    let (pid, _) = rest.split_once(['-', '.'])?;
    pid.parse().ok()
}

/// Remove the files in `dir` named `<kind><pid>-...` (and ending in `suffix`) whose pid is no
/// longer alive. Returns how many went.
pub fn sweep(dir: &Path, kind: &str, suffix: &str) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.ends_with(suffix) {
            continue;
        }
        let Some(pid) = pid_of(&name, kind) else {
            continue;
        };
        if !pid_alive(pid) && fs::remove_file(entry.path()).is_ok() {
            crate::debug!(
                "removed {} (left by a build that died)",
                entry.path().display()
            );
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_only_files_of_dead_pids() {
        let dir = tempfile::tempdir().unwrap();
        // Pids are below 2^22 on Linux: this one never runs.
        let dead = "lineup-spill-4294967-abc";
        let live = format!("{}abc", prefix("lineup-spill-"));
        let other = "lineup-spillover";
        for name in [dead, live.as_str(), other] {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        assert_eq!(sweep(dir.path(), "lineup-spill-", ""), 1);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [live.as_str(), other]);
        assert_eq!(pid_of(".home.m3u.77-x.tmp", ".home.m3u."), Some(77));
    }
}

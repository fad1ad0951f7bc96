//! Runners a killed daemon left behind, and how the next daemon finds and stops them.
//!
//! While a recorded runner runs, `$OLLMLX_HOME/runs/<pid>.json` names it: its pid and start
//! time, and the pid and start time of the daemon that started it. The file goes when the runner
//! has been reaped. A daemon killed with SIGKILL cannot remove it: the next daemon, at start-up,
//! SIGKILLs the process group of every runner whose daemon is gone, but only when the pid still
//! belongs to the same process (same start time), so a recycled pid is never killed. Runners of
//! another daemon that is still alive (two daemons sharing one home) are left alone.
//!
//! On Linux a runner normally dies with its daemon anyway (`PR_SET_PDEATHSIG`, see
//! [`super::process`]); this is the net under that, and the only guarantee elsewhere.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the records live, under the daemon's home.
pub fn dir(home: &Path) -> PathBuf {
    home.join("runs")
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    pid: u32,
    start: String,
    daemon_pid: u32,
    daemon_start: String,
    label: String,
}

/// The record of one running runner: the file is removed when this value is dropped (after the
/// runner has been reaped).
#[derive(Debug)]
pub struct Record(PathBuf);

impl Record {
    /// Records runner `pid`, started by this process.
    pub fn write(dir: &Path, pid: u32, label: &str) -> std::io::Result<Record> {
        let missing = || std::io::Error::other(format!("process {pid} has no start time"));
        let entry = Entry {
            pid,
            start: start_time(pid).ok_or_else(missing)?,
            daemon_pid: std::process::id(),
            daemon_start: start_time(std::process::id()).ok_or_else(missing)?,
            label: label.to_owned(),
        };
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{pid}.json"));
        let bytes = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        crate::store::ollama::write_atomic(&path, &bytes)?;
        Ok(Record(path))
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Stops the runners that daemons no longer alive left behind; returns how many were killed.
pub fn reap(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut killed = 0;
    for path in rd.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let entry = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Entry>(&b).ok());
        let Some(e) = entry else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        if is_running(e.daemon_pid, &e.daemon_start) {
            continue; // another daemon's runner: that daemon still owns it
        }
        if e.pid > 1 && is_running(e.pid, &e.start) {
            tracing::warn!(pid = e.pid, runner = %e.label, "stopping a runner a previous daemon left behind");
            // SAFETY: kill(2) has no memory-safety preconditions. The runner leads its own
            // process group (see `process`), and the start time matched: it is the same process.
            unsafe {
                libc::kill(-(e.pid as libc::pid_t), libc::SIGKILL);
                libc::kill(e.pid as libc::pid_t, libc::SIGKILL);
            }
            killed += 1;
        }
        let _ = std::fs::remove_file(&path);
    }
    killed
}

/// Whether `pid` is the process that started at `start`.
fn is_running(pid: u32, start: &str) -> bool {
    start_time(pid).is_some_and(|s| s == start)
}

/// When a process started, as an opaque token that differs between two processes that had the
/// same pid: the kernel's start time in clock ticks (Linux), else `ps`'s `lstart`.
fn start_time(pid: u32) -> Option<String> {
    if cfg!(target_os = "linux") {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command may contain spaces and parentheses: fields resume after the last ')'.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `state` is field 3 and `starttime` field 22; a zombie is already dead.
        if fields.first() == Some(&"Z") {
            return None;
        }
        fields.get(19).map(|s| (*s).to_owned())
    } else {
        let out = std::process::Command::new("ps")
            .args(["-o", "lstart=", "-p", &pid.to_string()])
            .output()
            .ok()?;
        let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !s.is_empty()).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};

    /// `sleep 30` in its own process group, as runners are started.
    fn sleeper() -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn gone(child: &mut std::process::Child) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn write(dir: &Path, e: &Entry) {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(format!("{}.json", e.pid));
        std::fs::write(path, serde_json::to_vec(e).unwrap()).unwrap();
    }

    #[test]
    fn a_dead_daemons_runner_is_killed_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let runs = dir(d.path());
        let me = (std::process::id(), start_time(std::process::id()).unwrap());
        let (mut orphan, mut recycled, mut owned) = (sleeper(), sleeper(), sleeper());
        let entry = |pid: u32, start: String, daemon: (u32, String)| Entry {
            pid,
            start,
            daemon_pid: daemon.0,
            daemon_start: daemon.1,
            label: "test".into(),
        };
        // A daemon that is gone: same pid as ours, another start time.
        let dead = (me.0, "0".to_owned());
        write(
            &runs,
            &entry(orphan.id(), start_time(orphan.id()).unwrap(), dead.clone()),
        );
        // The pid now belongs to another process (a different start time): never killed.
        write(&runs, &entry(recycled.id(), "1".into(), dead));
        // A live daemon's (ours) runner: left alone.
        write(
            &runs,
            &entry(owned.id(), start_time(owned.id()).unwrap(), me),
        );
        std::fs::write(runs.join("junk.json"), b"{").unwrap();

        assert_eq!(reap(&runs), 1);
        assert!(gone(&mut orphan), "the orphan is killed");
        assert!(
            recycled.try_wait().unwrap().is_none(),
            "a recycled pid is spared"
        );
        assert!(
            owned.try_wait().unwrap().is_none(),
            "a live daemon's runner is spared"
        );
        let left: Vec<_> = std::fs::read_dir(&runs)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from(format!("{}.json", owned.id()))]
        );
        for mut c in [recycled, owned] {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    #[test]
    fn a_record_lasts_as_long_as_its_value() {
        let d = tempfile::tempdir().unwrap();
        let runs = dir(d.path());
        let mut c = sleeper();
        let r = Record::write(&runs, c.id(), "test").unwrap();
        assert!(runs.join(format!("{}.json", c.id())).is_file());
        assert_eq!(reap(&runs), 0, "its daemon (this process) is alive");
        drop(r);
        assert!(!runs.join(format!("{}.json", c.id())).exists());
        c.kill().unwrap();
        c.wait().unwrap();
    }
}

//! A supervised child process, owned by a value.
//!
//! - It runs in its own process group, so a Ctrl-C in the daemon's terminal does not reach it
//!   directly: the daemon decides when runners stop (SIGTERM, a grace period, SIGKILL).
//! - It dies with the daemon, even when the daemon is killed with SIGKILL: on Linux the kernel
//!   sends it SIGKILL (`PR_SET_PDEATHSIG`, set between fork and exec, so llama-server, which
//!   knows nothing of us, gets it too). Its stdin is also a pipe the daemon never writes to: when
//!   the daemon dies the pipe closes, and the MLX runner exits on that EOF (its guarantee on
//!   macOS). A runner spawned with a record ([`ChildProcess::spawn_recorded`]) is also listed
//!   under the daemon's home, so the next daemon stops it if all that failed (see `leftovers`).
//! - Its stderr is pumped line by line into `tracing` (JSON log lines at their own level) and into
//!   a small ring, so every load or runtime error can carry the runner's last words.
//! - A waiter task reaps it and publishes the exit status on a watch channel.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::watch;

/// How many stderr lines to remember for error messages.
const RING_LINES: usize = 40;

pub struct ChildProcess {
    pid: u32,
    label: String,
    exit: watch::Receiver<Option<ExitStatus>>,
    /// Held, never written: its closing is the runner's signal that the daemon is gone.
    _stdin: Option<ChildStdin>,
    log: Arc<LogRing>,
    /// True once stderr has been read to its end.
    drained: watch::Receiver<bool>,
}

impl ChildProcess {
    /// Spawns `cmd` with piped stdio in a new process group.
    ///
    /// Call it from an async task (a long-lived runtime worker), never from `spawn_blocking`: on
    /// Linux the child gets `PR_SET_PDEATHSIG`, which fires when the *thread* that forked it
    /// exits, and blocking-pool threads exit after a while idle. Returns the process and its stdout,
    /// which the caller reads for the ready line.
    pub fn spawn(cmd: Command, label: &str) -> std::io::Result<(ChildProcess, ChildStdout)> {
        Self::spawn_recorded(cmd, label, None)
    }

    /// [`ChildProcess::spawn`], recording the process in `records` (see `leftovers`) until it has
    /// been reaped, so that a later daemon can stop it should this one die without doing so.
    pub fn spawn_recorded(
        mut cmd: Command,
        label: &str,
        records: Option<&std::path::Path>,
    ) -> std::io::Result<(ChildProcess, ChildStdout)> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn()?;
        let pid = child.id().unwrap_or(0);
        let record = records.and_then(|dir| {
            super::leftovers::Record::write(dir, pid, label)
                .inspect_err(|e| tracing::warn!(runner = %label, pid, error = %e, "cannot record the runner"))
                .ok()
        });
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(LogRing::new());

        let (tx, rx) = watch::channel(None);
        let label_owned = label.to_owned();
        tokio::spawn(async move {
            let status = child.wait().await;
            match &status {
                Ok(s) => tracing::debug!(runner = %label_owned, pid, status = %s, "runner exited"),
                Err(e) => {
                    tracing::warn!(runner = %label_owned, pid, error = %e, "waiting for runner failed")
                }
            }
            // Reaped: nothing is left for a later daemon to stop.
            drop(record);
            // An error from wait() means the child is gone all the same.
            let _ = tx.send(Some(status.unwrap_or_else(|_| exit_status_failed())));
        });

        let pump_log = log.clone();
        let pump_label = label.to_owned();
        let (drained_tx, drained) = watch::channel(false);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                pump_log.push(&pump_label, pid, &line);
            }
            let _ = drained_tx.send(true);
        });

        Ok((
            ChildProcess {
                pid,
                label: label.to_owned(),
                exit: rx,
                _stdin: stdin,
                log,
                drained,
            },
            stdout,
        ))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn is_alive(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// Resolves with the exit status once the process has exited.
    pub async fn exited(&self) -> ExitStatus {
        let mut rx = self.exit.clone();
        loop {
            if let Some(s) = *rx.borrow_and_update() {
                return s;
            }
            if rx.changed().await.is_err() {
                return exit_status_failed();
            }
        }
    }

    /// SIGTERM to the process group, wait up to `grace`, then SIGKILL, then wait for the reap.
    pub async fn terminate(&self, grace: Duration) {
        if !self.is_alive() {
            return;
        }
        signal_group(self.pid, libc::SIGTERM);
        if tokio::time::timeout(grace, self.exited()).await.is_err() {
            tracing::warn!(runner = %self.label, pid = self.pid, "runner ignored SIGTERM; killing it");
            signal_group(self.pid, libc::SIGKILL);
            let _ = tokio::time::timeout(Duration::from_secs(5), self.exited()).await;
        }
    }

    /// Waits (at most `limit`) until everything the process wrote to stderr has been read: its
    /// exit can be seen before its last lines are, and those say why it exited.
    pub async fn log_drained(&self, limit: Duration) {
        let mut rx = self.drained.clone();
        let _ = tokio::time::timeout(limit, rx.wait_for(|done| *done)).await;
    }

    /// The runner's last error-looking stderr line (empty when it logged none), for crashes.
    pub fn last_error(&self) -> String {
        self.log.last_error()
    }

    /// Whether one of the runner's recent stderr lines contains `needle`.
    pub fn log_mentions(&self, needle: &str) -> bool {
        self.log.mentions(needle)
    }

    /// The runner's last recent stderr line containing `needle`.
    pub fn log_line_with(&self, needle: &str) -> Option<String> {
        self.log.line_with(needle)
    }

    /// The last error-looking line, else the last line, for a failed or stalled load.
    pub fn last_words(&self) -> String {
        self.log.last_words()
    }

    /// A receiver of the exit status (`Some` once exited), for streams that outlive a borrow.
    pub fn clone_exit_watch(&self) -> watch::Receiver<Option<ExitStatus>> {
        self.exit.clone()
    }

    /// A handle to the stderr ring, for streams that outlive a borrow.
    pub fn log_handle(&self) -> Arc<LogRing> {
        self.log.clone()
    }

    /// When the runner last wrote anything to stderr: loading progress for the stall timeout.
    pub fn last_activity(&self) -> Instant {
        self.log.last_activity()
    }
}

/// Asks the kernel to SIGKILL the child when the thread that forks it dies (Linux only; that
/// thread is a runtime worker, which lives as long as the daemon: see [`ChildProcess::spawn`]).
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: prctl(2), getppid(2) and reading errno are, and nothing here allocates.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The daemon died before the request took effect: nobody would ever send it.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// Sends `sig` to the process group led by `pid` (the runner and anything it started).
fn signal_group(pid: u32, sig: libc::c_int) {
    if pid == 0 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a stale pgid is harmless (ESRCH).
    unsafe {
        libc::kill(-(pid as libc::pid_t), sig);
    }
}

fn exit_status_failed() -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(1 << 8)
}

/// The last stderr lines of a runner, each tagged with whether it reads as an error.
pub struct LogRing {
    lines: Mutex<VecDeque<(bool, String)>>,
    started: Instant,
    /// Milliseconds after `started` of the last line.
    last_ms: AtomicU64,
}

impl LogRing {
    fn new() -> LogRing {
        LogRing {
            lines: Mutex::new(VecDeque::with_capacity(RING_LINES)),
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Records a line and re-emits it through tracing. JSON lines (`{"level","msg",...}`) keep
    /// their level; other lines (Python tracebacks, C++ aborts) are debug noise unless they look
    /// like errors.
    fn push(&self, label: &str, pid: u32, line: &str) {
        self.last_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        let (is_error, text) = match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) if v.get("msg").is_some() => {
                let level = v
                    .get("level")
                    .and_then(|l| l.as_str())
                    .unwrap_or("info")
                    .to_owned();
                let msg = v["msg"].as_str().unwrap_or_default().to_owned();
                let fields = strip(&v);
                match level.as_str() {
                    "error" | "critical" => {
                        tracing::error!(target: "runner", runner = %label, pid, fields = %fields, "{msg}")
                    }
                    "warning" | "warn" => {
                        tracing::warn!(target: "runner", runner = %label, pid, fields = %fields, "{msg}")
                    }
                    "debug" => {
                        tracing::debug!(target: "runner", runner = %label, pid, fields = %fields, "{msg}")
                    }
                    _ => {
                        tracing::info!(target: "runner", runner = %label, pid, fields = %fields, "{msg}")
                    }
                }
                let err_text = v
                    .get("error")
                    .and_then(|e| e.as_str())
                    .map(|e| format!("{msg}: {e}"));
                (
                    level == "error" || level == "critical",
                    err_text.unwrap_or(msg),
                )
            }
            _ => {
                let looks_bad = [
                    "Error",
                    "error:",
                    "Traceback",
                    "terminate called",
                    "Killed",
                    "[METAL]",
                    // llama.cpp's RPC backend aborts with `<file>:<line>: <why>` (a lost
                    // rpc-server: "Remote RPC server crashed ..."): say why the runner died.
                    "ggml-rpc.cpp:",
                ]
                .iter()
                .any(|p| line.contains(p));
                tracing::debug!(target: "runner", runner = %label, pid, "{line}");
                (looks_bad, line.trim_end().to_owned())
            }
        };
        if text.is_empty() {
            return;
        }
        let mut lines = self.lines.lock().unwrap();
        if lines.len() == RING_LINES {
            lines.pop_front();
        }
        lines.push_back((is_error, text));
    }

    /// The last error-looking line (for a Python traceback: the exception line), or nothing: a
    /// runner that crashed after logging "ready" must not be reported as "details: ready".
    pub fn last_error(&self) -> String {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .rev()
            .find(|(e, _)| *e)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    }

    /// The last recent line containing `needle`.
    pub fn line_with(&self, needle: &str) -> Option<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(_, t)| t.contains(needle))
            .map(|(_, t)| t.clone())
    }

    /// Whether one of the recent lines contains `needle`.
    pub fn mentions(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|(_, t)| t.contains(needle))
    }

    /// The last error-looking line, else the last line: what a load that failed or stalled
    /// was doing.
    pub fn last_words(&self) -> String {
        let error = self.last_error();
        if !error.is_empty() {
            return error;
        }
        let lines = self.lines.lock().unwrap();
        lines.back().map(|(_, t)| t.clone()).unwrap_or_default()
    }

    fn last_activity(&self) -> Instant {
        self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// The JSON log line without the keys already shown (level, msg).
fn strip(v: &serde_json::Value) -> String {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("level");
        o.remove("msg");
        if o.is_empty() {
            return String::new();
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn terminate_escalates_to_sigkill() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg("trap '' TERM; echo ready; sleep 30");
        let (p, stdout) = ChildProcess::spawn(cmd, "test").unwrap();
        let mut lines = BufReader::new(stdout).lines();
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ready"));
        assert!(p.is_alive());
        let t = Instant::now();
        p.terminate(Duration::from_millis(300)).await;
        assert!(!p.is_alive());
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn stderr_errors_are_remembered() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(
            r#"echo '{"level":"info","msg":"loading"}' >&2; echo 'Traceback (most recent call last):' >&2; echo 'ValueError: Model type foo not supported.' >&2; exit 3"#,
        );
        let (p, _stdout) = ChildProcess::spawn(cmd, "test").unwrap();
        let status = p.exited().await;
        assert_eq!(status.code(), Some(3));
        // the pump may lag the exit by a moment
        for _ in 0..50 {
            if p.last_error().contains("ValueError") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(p.last_error(), "ValueError: Model type foo not supported.");
    }

    #[tokio::test]
    async fn a_crash_after_ready_has_no_error_detail() {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"echo '{"level":"info","msg":"ready"}' >&2; exit 1"#);
        let (p, _stdout) = ChildProcess::spawn(cmd, "test").unwrap();
        p.exited().await;
        for _ in 0..50 {
            if !p.last_words().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(p.last_words(), "ready");
        assert_eq!(p.last_error(), "", "an info line is no error detail");
    }

    #[tokio::test]
    async fn stdin_eof_reaches_the_child() {
        // `cat` exits when its stdin closes: dropping the process value closes it.
        let (p, _out) = ChildProcess::spawn(Command::new("cat"), "cat").unwrap();
        let exit = p.exit.clone();
        drop(p);
        let mut exit = exit;
        tokio::time::timeout(Duration::from_secs(5), async {
            while exit.borrow_and_update().is_none() {
                exit.changed().await.unwrap();
            }
        })
        .await
        .expect("child should exit on stdin EOF");
    }
}

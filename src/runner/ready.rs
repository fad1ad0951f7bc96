//! Waiting for a runner to become ready: health polls raced against the child's exit and a
//! *stall* timeout (`OLLAMA_LOAD_TIMEOUT`) that restarts whenever the runner shows progress (a
//! log line, a new loading phase), so a big model that loads slowly is never cut off while a hung
//! one is.

use super::process::ChildProcess;
use super::RunnerError;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often readiness is polled while loading.
pub const POLL: Duration = Duration::from_millis(250);

/// One health poll's answer.
pub enum Probe {
    Ready,
    /// Still loading, in this phase (a change counts as progress).
    Loading(String),
    Failed(String),
}

/// Polls `probe` until the runner is ready, fails, exits or stalls.
pub async fn wait<F, Fut>(
    process: &ChildProcess,
    started: Instant,
    timeout: Option<Duration>,
    what: &str,
    mut probe: F,
) -> Result<(), RunnerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Probe>,
{
    let mut phase = String::new();
    let mut phase_changed = started;
    loop {
        if !process.is_alive() {
            process.log_drained(Duration::from_secs(2)).await;
            return Err(load_error(
                process,
                &format!("{what} exited while loading the model"),
            ));
        }
        match probe().await {
            Probe::Ready => return Ok(()),
            Probe::Failed(msg) => {
                return Err(RunnerError::Load {
                    message: format!("failed to load the model: {msg}"),
                })
            }
            Probe::Loading(p) => {
                if p != phase {
                    phase = p;
                    phase_changed = Instant::now();
                }
            }
        }
        if stalled(process, phase_changed.max(started), timeout) {
            return Err(timeout_error(process, timeout));
        }
        tokio::select! {
            _ = process.exited() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// True when neither the runner's log nor `since` has moved for longer than `timeout`.
pub fn stalled(process: &ChildProcess, since: Instant, timeout: Option<Duration>) -> bool {
    timeout.is_some_and(|t| process.last_activity().max(since).elapsed() > t)
}

/// A load error carrying the runner's last words.
pub fn load_error(process: &ChildProcess, what: &str) -> RunnerError {
    let last = process.last_words();
    RunnerError::Load {
        message: if last.is_empty() {
            what.to_owned()
        } else {
            format!("{what}: {last}")
        },
    }
}

pub fn timeout_error(process: &ChildProcess, timeout: Option<Duration>) -> RunnerError {
    let t = timeout.unwrap_or_default();
    load_error(
        process,
        &format!(
            "timed out waiting for the model to load: no progress for {}s (OLLAMA_LOAD_TIMEOUT)",
            t.as_secs_f64()
        ),
    )
}

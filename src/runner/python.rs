//! The Python that runs the MLX runner: `OLLMLX_PYTHON` when set, otherwise a virtualenv that
//! ollmlx manages in `$OLLMLX_HOME/runtime/`, created on first use with pinned `mlx-lm` and the
//! MLX build for the platform. While it installs, MLX requests get a clear 503; progress goes to
//! the log.
//!
//! Vision models (an MLX `config.json` with `vision_config`) need mlx-vlm as well, which the
//! managed runtime does not install (it adds about 730 MB: opencv, datasets, mlx-audio). Without
//! it such a model fails to load with the runner's message `... needs mlx-vlm: pip install
//! 'mlx-vlm==0.7.10'`; install it into the managed venv, or point `OLLMLX_PYTHON` at a Python
//! that has it.

use super::RunnerError;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The versions the managed runtime installs. Bump together with `mlx_backend/requirements.txt`.
pub const MLX_VERSION: &str = "0.32.4";
pub const MLX_LM_VERSION: &str = "0.32.2";
/// Constrained decoding (`format`, required tool calls) in the runner.
pub const LLGUIDANCE_VERSION: &str = "1.9.1";

#[derive(Debug, Clone)]
enum State {
    Idle,
    Installing,
    Failed(String),
}

pub struct PythonRuntime {
    explicit: Option<PathBuf>,
    venv: PathBuf,
    backend: String,
    state: Mutex<State>,
}

impl PythonRuntime {
    /// `explicit` is `OLLMLX_PYTHON`; `home` is `OLLMLX_HOME`; `backend` is `OLLMLX_MLX_BACKEND`.
    pub fn new(explicit: Option<PathBuf>, home: &Path, backend: &str) -> Arc<PythonRuntime> {
        Arc::new(PythonRuntime {
            explicit,
            venv: home
                .join("runtime")
                .join(format!("venv-mlx-lm-{MLX_LM_VERSION}")),
            backend: backend.to_owned(),
            state: Mutex::new(State::Idle),
        })
    }

    /// The interpreter to run the runner with, starting the managed install when needed.
    pub fn python(self: &Arc<Self>) -> Result<PathBuf, RunnerError> {
        if let Some(p) = &self.explicit {
            return if p.exists() {
                Ok(p.clone())
            } else {
                Err(RunnerError::Spawn(format!(
                    "OLLMLX_PYTHON is set to {}, which does not exist: point it at a Python with mlx-lm installed, or unset it to let ollmlx manage one",
                    p.display()
                )))
            };
        }
        let python = self.venv.join("bin").join("python");
        if self.venv.join(READY_MARKER).is_file() && python.exists() {
            return Ok(python);
        }
        let mut state = self.state.lock().unwrap();
        match std::mem::replace(&mut *state, State::Installing) {
            State::Installing => {}
            State::Failed(msg) => {
                // Report the failure once; the next request tries again.
                *state = State::Idle;
                return Err(RunnerError::Spawn(msg));
            }
            State::Idle => {
                let me = self.clone();
                tokio::spawn(async move {
                    let result = me.install().await;
                    *me.state.lock().unwrap() = match result {
                        Ok(()) => State::Idle,
                        Err(msg) => {
                            tracing::error!("installing the MLX runtime failed: {msg}");
                            State::Failed(msg)
                        }
                    };
                });
            }
        }
        Err(RunnerError::Unavailable(format!(
            "the MLX runtime (mlx-lm {MLX_LM_VERSION}) is being installed into {}; try again in a minute (progress is in the server log)",
            self.venv.display()
        )))
    }

    /// [`PythonRuntime::python`], waiting at most `wait` for an install under way instead of
    /// answering 503 at once (the install goes on in the background if the wait runs out).
    pub async fn python_waiting(self: &Arc<Self>, wait: Duration) -> Result<PathBuf, RunnerError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.python() {
                Err(RunnerError::Unavailable(msg)) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(RunnerError::Unavailable(msg));
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                other => return other,
            }
        }
    }

    /// The interpreter if it is ready now (never starts an install).
    pub fn ready_python(&self) -> Option<PathBuf> {
        if let Some(p) = &self.explicit {
            return p.exists().then(|| p.clone());
        }
        let python = self.venv.join("bin").join("python");
        // The marker lists what was installed: a runtime made with other pins is reinstalled.
        let installed = std::fs::read_to_string(self.venv.join(READY_MARKER)).ok()?;
        (installed == self.packages().join(" ") && python.exists()).then_some(python)
    }

    /// Asks the runtime's `mlx_lm` whether it has an architecture for a config's `model_type`
    /// (after its own remapping, e.g. mistral -> llama). `None` when the runtime is not ready
    /// or the question could not be asked.
    pub async fn supports_model_type(&self, model_type: &str) -> Option<bool> {
        const CHECK: &str = "import importlib.util, sys\nfrom mlx_lm.utils import MODEL_REMAPPING\nt = sys.argv[1]\nt = MODEL_REMAPPING.get(t, t)\nprint('yes' if importlib.util.find_spec('mlx_lm.models.' + t) else 'no')";
        if !model_type
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Some(false);
        }
        let python = self.ready_python()?;
        let out = Command::new(python)
            .args(["-c", CHECK, model_type])
            .env("HF_HUB_OFFLINE", "1")
            .stdin(Stdio::null())
            .output()
            .await
            .ok()?;
        match String::from_utf8_lossy(&out.stdout).trim() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        }
    }

    async fn install(&self) -> Result<(), String> {
        let base = find_python().await.ok_or_else(|| {
            "MLX models need Python 3.11 or newer and none was found on PATH: install one (e.g. `brew install python@3.12`) or set OLLMLX_PYTHON to a Python with mlx-lm installed".to_string()
        })?;
        tracing::info!(python = %base.display(), venv = %self.venv.display(), "creating the MLX runtime");
        if self.venv.exists() {
            std::fs::remove_dir_all(&self.venv).map_err(|e| e.to_string())?;
        }
        if let Some(parent) = self.venv.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        run_logged(
            Command::new(&base).arg("-m").arg("venv").arg(&self.venv),
            "venv",
        )
        .await?;
        let pip = self.venv.join("bin").join("python");
        let mut cmd = Command::new(&pip);
        cmd.args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
        ]);
        cmd.args(self.packages());
        run_logged(&mut cmd, "pip").await?;
        std::fs::write(self.venv.join(READY_MARKER), self.packages().join(" "))
            .map_err(|e| e.to_string())?;
        tracing::info!("the MLX runtime is ready");
        Ok(())
    }

    /// The pinned packages for this platform and backend.
    fn packages(&self) -> Vec<String> {
        let mlx_extra = match self.backend.as_str() {
            "cpu" => Some("cpu"),
            "cuda" | "cuda12" => Some("cuda12"),
            "cuda13" => Some("cuda13"),
            // auto: Metal comes with mlx on macOS; elsewhere the CPU build.
            _ if cfg!(target_os = "macos") => None,
            _ => Some("cpu"),
        };
        let mut p = vec![
            format!("mlx-lm=={MLX_LM_VERSION}"),
            format!("llguidance=={LLGUIDANCE_VERSION}"),
        ];
        match mlx_extra {
            Some(extra) => p.push(format!("mlx[{extra}]=={MLX_VERSION}")),
            None => p.push(format!("mlx=={MLX_VERSION}")),
        }
        p
    }
}

const READY_MARKER: &str = ".ollmlx-ready";

/// The first Python ≥ 3.11 on PATH.
async fn find_python() -> Option<PathBuf> {
    for name in ["python3.13", "python3.12", "python3.11", "python3"] {
        let out = Command::new(name)
            .args(["-c", "import sys; print(sys.version_info >= (3, 11))"])
            .output()
            .await;
        if let Ok(o) = out {
            if o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "True" {
                return Some(PathBuf::from(name));
            }
        }
    }
    None
}

/// Runs a command, logging its output lines as progress.
async fn run_logged(cmd: &mut Command, what: &str) -> Result<(), String> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| format!("{what}: {e}"))?;
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let what_owned = what.to_owned();
    let out_task = tokio::spawn(async move {
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            tracing::info!(step = %what_owned, "{l}");
        }
    });
    let mut last = String::new();
    let mut lines = BufReader::new(err).lines();
    while let Ok(Some(l)) = lines.next_line().await {
        tracing::warn!(step = %what, "{l}");
        last = l;
    }
    let _ = out_task.await;
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status}): {last}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn explicit_python_must_exist() {
        let rt = PythonRuntime::new(
            Some("/nonexistent/python".into()),
            Path::new("/tmp"),
            "auto",
        );
        let e = rt.python().unwrap_err();
        assert!(e.to_string().contains("OLLMLX_PYTHON"), "{e}");
    }

    #[test]
    fn pins_the_platform_build() {
        let rt = PythonRuntime::new(None, Path::new("/tmp/h"), "cuda13");
        assert_eq!(
            rt.packages(),
            vec![
                "mlx-lm==0.32.2".to_string(),
                "llguidance==1.9.1".into(),
                "mlx[cuda13]==0.32.4".into()
            ]
        );
        let rt = PythonRuntime::new(None, Path::new("/tmp/h"), "auto");
        if cfg!(target_os = "linux") {
            assert_eq!(rt.packages()[2], "mlx[cpu]==0.32.4");
        }
    }

    #[test]
    fn pins_match_the_test_venv() {
        let reqs = include_str!("../../mlx_backend/requirements.txt");
        for pin in [
            format!("mlx-lm=={MLX_LM_VERSION}"),
            format!("mlx[cpu]=={MLX_VERSION}"),
            format!("llguidance=={LLGUIDANCE_VERSION}"),
        ] {
            assert!(
                reqs.lines().any(|l| l.trim() == pin),
                "{pin} in requirements.txt"
            );
        }
        let hint = include_str!("../../mlx_backend/ollmlx_mlx/constrain.py");
        assert!(hint.contains(&format!("llguidance=={LLGUIDANCE_VERSION}")));
    }

    #[test]
    fn a_runtime_made_with_other_pins_is_not_ready() {
        let home = tempfile::tempdir().unwrap();
        let rt = PythonRuntime::new(None, home.path(), "cpu");
        let bin = rt.venv.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("python"), "").unwrap();
        std::fs::write(
            rt.venv.join(READY_MARKER),
            "mlx-lm==0.32.2 mlx[cpu]==0.32.4",
        )
        .unwrap();
        assert!(
            rt.ready_python().is_none(),
            "an older runtime without llguidance"
        );
        std::fs::write(rt.venv.join(READY_MARKER), rt.packages().join(" ")).unwrap();
        assert_eq!(rt.ready_python(), Some(bin.join("python")));
    }
}

//! The managed llama.cpp: when no `llama-server` is configured, beside the `ollmlx` binary or on
//! `PATH`, ollmlx builds a pinned one into `$OLLMLX_HOME/llama-server/`, as it installs the MLX
//! runtime, so GGUF models work out of the box.
//!
//! The recipe is `scripts/build-llama-server.sh`'s: the llama.cpp source vendored in a pinned
//! `llama-cpp-python` sdist from PyPI (its sha256 checked, the download resumable), built with
//! cmake for this CPU. It runs once (one install at a time, whoever asks), its progress goes to
//! the log, and the result appears only whole: the build happens in a work directory and the
//! binary is moved into place by a rename. A failed install is reported to the request that
//! waited for it, with what to do; the next request tries again.

use crate::pull::download::Fetch;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::watch;

/// llama-cpp-python's sdist: it vendors llama.cpp commit 0c1e570 (ggml 0.25.3). Bump together
/// with `scripts/build-llama-server.sh`.
pub const SDIST_VERSION: &str = "0.3.36";
const SDIST_SHA256: &str = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e";
/// PyPI's stable address of a source distribution (it redirects to the file).
const SDIST_URL: &str =
    "https://files.pythonhosted.org/packages/source/l/llama_cpp_python/llama_cpp_python-0.3.36.tar.gz";

/// What to build from: an archive, its sha256, and the llama.cpp source directory inside it.
#[derive(Debug, Clone)]
pub struct Source {
    pub url: String,
    pub sha256: String,
    /// Names the install directory (with the platform and CPU).
    pub version: String,
    pub dir_in_archive: String,
}

impl Source {
    /// The pinned sdist, from PyPI or from `url` (a mirror of the same file:
    /// `OLLMLX_LLAMA_SOURCE`).
    pub fn pinned(url: Option<&str>) -> Source {
        Source {
            url: url.unwrap_or(SDIST_URL).to_owned(),
            sha256: SDIST_SHA256.into(),
            version: SDIST_VERSION.into(),
            dir_in_archive: format!("llama_cpp_python-{SDIST_VERSION}/vendor/llama.cpp"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Idle,
    Installing,
    Ready(PathBuf),
    Failed(String),
}

pub struct LlamaInstall {
    source: Source,
    /// `$OLLMLX_HOME/llama-server`.
    root: PathBuf,
    client: reqwest::Client,
    state: watch::Sender<State>,
    /// Serializes the check-and-start of an install.
    start: Mutex<()>,
}

impl LlamaInstall {
    pub fn new(source: Source, root: PathBuf) -> LlamaInstall {
        LlamaInstall {
            source,
            root,
            client: reqwest::Client::new(),
            state: watch::Sender::new(State::Idle),
            start: Mutex::new(()),
        }
    }

    /// Where this source's build for this platform and CPU lives.
    pub fn dest(&self) -> PathBuf {
        self.root.join(format!(
            "{}-rpc-{}-{}-{}",
            self.source.version,
            std::env::consts::OS,
            std::env::consts::ARCH,
            cpu_key()
        ))
    }

    /// The installed binary, if the install is complete.
    pub fn installed(&self) -> Option<PathBuf> {
        let bin = self.dest().join("bin").join("llama-server");
        bin.is_file().then_some(bin)
    }

    /// The binary, installing it first if needed (waiting at most `wait` for an install under
    /// way, which goes on in the background if the wait runs out).
    pub async fn ensure(self: &std::sync::Arc<Self>, wait: Duration) -> Result<PathBuf, Waited> {
        if let Some(bin) = self.installed() {
            return Ok(bin);
        }
        let mut rx = self.state.subscribe();
        {
            let _guard = self.start.lock().unwrap();
            let current = self.state.borrow().clone();
            match current {
                State::Installing => {}
                State::Ready(bin) if bin.is_file() => return Ok(bin),
                State::Failed(msg) => {
                    // Reported once; the next request tries again.
                    self.state.send_replace(State::Idle);
                    return Err(Waited::Failed(msg));
                }
                _ => {
                    self.state.send_replace(State::Installing);
                    let me = self.clone();
                    tokio::spawn(async move {
                        let outcome = match me.install().await {
                            Ok(bin) => State::Ready(bin),
                            Err(msg) => {
                                tracing::error!("installing llama.cpp failed: {msg}");
                                State::Failed(msg)
                            }
                        };
                        me.state.send_replace(outcome);
                    });
                }
            }
        }
        let done = tokio::time::timeout(
            wait,
            rx.wait_for(|s| matches!(s, State::Ready(_) | State::Failed(_))),
        )
        .await;
        match done {
            Err(_) => Err(Waited::StillInstalling),
            Ok(Err(_)) => Err(Waited::Failed("the install task went away".into())),
            Ok(Ok(s)) => match s.clone() {
                State::Ready(bin) => Ok(bin),
                State::Failed(msg) => {
                    drop(s);
                    self.state.send_replace(State::Idle);
                    Err(Waited::Failed(msg))
                }
                _ => unreachable!("waited for an end state"),
            },
        }
    }

    async fn install(&self) -> Result<PathBuf, String> {
        for (tool, what) in [("cmake", "cmake"), ("c++", "a C++ compiler")] {
            if !on_path(tool) {
                return Err(format!(
                    "GGUF models need llama.cpp's llama-server, and building it needs {what} ({tool} was not found): install it (`apt-get install cmake g++`, or Xcode's command line tools) or `brew install llama.cpp`, or set OLLMLX_LLAMA_SERVER to a llama-server you have"
                ));
            }
        }
        std::fs::create_dir_all(&self.root).map_err(|e| e.to_string())?;
        let work = WorkDir::new(&self.root)?;
        let archive = self.download().await?;
        tracing::info!(archive = %archive.display(), "unpacking the llama.cpp source");
        run(
            Command::new("tar")
                .arg("-xzf")
                .arg(&archive)
                .arg("-C")
                .arg(work.path()),
            "tar",
        )
        .await?;
        let src = work.path().join(&self.source.dir_in_archive);
        let build = work.path().join("build");
        tracing::info!(
            version = %self.source.version,
            "building llama-server; this takes minutes (about 7 on 2 cores)"
        );
        let mut configure = Command::new("cmake");
        configure
            .arg("-S")
            .arg(&src)
            .arg("-B")
            .arg(&build)
            .args(CMAKE_FLAGS)
            .args(amx_flags());
        run(&mut configure, "cmake").await?;
        let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
        run(
            Command::new("cmake")
                .arg("--build")
                .arg(&build)
                .args(["--config", "Release", "-j"])
                .arg(jobs.to_string())
                .args(["--target", "llama-server", "ggml-rpc-server"]),
            "cmake --build",
        )
        .await?;
        // Move into place whole: a half-copied binary must never look installed.
        let stage = work.path().join("stage");
        std::fs::create_dir_all(stage.join("bin")).map_err(|e| e.to_string())?;
        std::fs::copy(
            build.join("bin").join("llama-server"),
            stage.join("bin").join("llama-server"),
        )
        .map_err(|e| format!("the build made no llama-server: {e}"))?;
        // llama.cpp's RPC worker, for `ollmlx rpc-server` (docs/scale-out.md).
        std::fs::copy(
            build.join("bin").join("ggml-rpc-server"),
            stage.join("bin").join("rpc-server"),
        )
        .map_err(|e| format!("the build made no rpc-server: {e}"))?;
        std::fs::write(
            stage.join("VERSION"),
            format!("llama-cpp-python {}\n", self.source.version),
        )
        .map_err(|e| e.to_string())?;
        let dest = self.dest();
        if dest.exists() {
            std::fs::remove_dir_all(&dest).map_err(|e| e.to_string())?;
        }
        std::fs::rename(&stage, &dest).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&archive);
        let bin = dest.join("bin").join("llama-server");
        tracing::info!(binary = %bin.display(), "llama.cpp is installed");
        Ok(bin)
    }

    /// The source archive, downloaded (or finished downloading) and verified.
    async fn download(&self) -> Result<PathBuf, String> {
        let downloads = self.root.join("downloads");
        std::fs::create_dir_all(&downloads).map_err(|e| e.to_string())?;
        let name = format!("llama-source-{}.tar.gz", &self.source.sha256[..16]);
        let dest = downloads.join(&name);
        tracing::info!(url = %self.source.url, "downloading the llama.cpp source");
        let mut logged = 0u64;
        Fetch {
            client: &self.client,
            url: self.source.url.clone(),
            token: None,
            dest: dest.clone(),
            partial: downloads.join(format!("{name}.partial")),
            sha256: Some(self.source.sha256.clone()),
            size: None,
            label: "the llama.cpp source".into(),
        }
        .run(|done| {
            if done >= logged + (8 << 20) {
                logged = done;
                tracing::info!(mib = done >> 20, "downloading the llama.cpp source");
            }
            true
        })
        .await
        .map_err(|e| format!("{e} (OLLMLX_LLAMA_SOURCE can point at a mirror of {SDIST_URL})"))?;
        Ok(dest)
    }
}

/// A build directory under the install root, removed however the install ends.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new(root: &Path) -> Result<WorkDir, String> {
        let p = root.join(format!(
            ".work-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&p).map_err(|e| e.to_string())?;
        Ok(WorkDir(p))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How waiting for the install ended, when it did not give a binary.
#[derive(Debug, Clone, PartialEq)]
pub enum Waited {
    StillInstalling,
    Failed(String),
}

/// scripts/build-llama-server.sh's configuration.
const CMAKE_FLAGS: &[&str] = &[
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=ON",
    // llama.cpp's RPC backend: `llama-server --rpc` and `rpc-server` (docs/scale-out.md).
    "-DGGML_RPC=ON",
];

/// ggml's AMX kernels (picked by -march=native on Xeons with AMX) crash llama-server on small
/// quantized models: build without them there (see scripts/build-llama-server.sh).
fn amx_flags() -> Vec<String> {
    if !cpu_flags().split_whitespace().any(|f| f == "amx_int8") {
        return Vec::new();
    }
    let off = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16";
    vec![
        format!("-DCMAKE_C_FLAGS={off}"),
        format!("-DCMAKE_CXX_FLAGS={off}"),
    ]
}

/// The CPU's feature flags (Linux), which a native build depends on.
fn cpu_flags() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("flags"))
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// A native build is for this CPU: its flags key the install directory.
fn cpu_key() -> String {
    use sha2::{Digest, Sha256};
    let flags = cpu_flags();
    let key = hex::encode(&Sha256::digest(flags.as_bytes())[..6]);
    if flags.split_whitespace().any(|f| f == "amx_int8") {
        format!("{key}-noamx")
    } else {
        key
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .any(|d| d.join(tool).is_file())
}

/// Runs a build step, its output going to the log at debug level; a failure keeps the last
/// lines for the error.
async fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        tracing::debug!(step = what, "{line}");
    }
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = err.lines().rev().take(5).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "{what} failed ({}): {}",
        out.status,
        tail.join(" / ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A tiny CMake project laid out as the sdist is, with `llama-server` and `ggml-rpc-server`
    /// targets: the far end
    /// of the network is stood in for, the install (download, verification, build, atomic move)
    /// is the real one.
    fn stand_in_archive(dir: &Path) -> Vec<u8> {
        let src = dir.join("pkg/llama_cpp_python-0.3.36/vendor/llama.cpp");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("CMakeLists.txt"),
            "cmake_minimum_required(VERSION 3.10)\nproject(standin CXX)\nadd_executable(llama-server main.cpp)\nadd_executable(ggml-rpc-server main.cpp)\nset_target_properties(llama-server ggml-rpc-server PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)\n",
        )
        .unwrap();
        std::fs::write(
            src.join("main.cpp"),
            "#include <cstdio>\nint main() { std::puts(\"stand-in llama-server\"); return 0; }\n",
        )
        .unwrap();
        let tgz = dir.join("src.tar.gz");
        let ok = std::process::Command::new("tar")
            .arg("-czf")
            .arg(&tgz)
            .arg("-C")
            .arg(dir.join("pkg"))
            .arg("llama_cpp_python-0.3.36")
            .status()
            .unwrap();
        assert!(ok.success());
        std::fs::read(tgz).unwrap()
    }

    /// Serves `body` on every request; the first `cut` requests are cut off half-way. Honours
    /// `Range: bytes=N-` with a 206, as PyPI's file host does.
    fn serve(body: Vec<u8>, cut: usize) -> (String, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/src.tar.gz", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { return };
                let mut req = [0u8; 4096];
                let n = s.read(&mut req).unwrap_or(0);
                let head = String::from_utf8_lossy(&req[..n]).to_lowercase();
                let from = head
                    .split("range: bytes=")
                    .nth(1)
                    .and_then(|r| r.split('-').next())
                    .and_then(|r| r.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let i = count.fetch_add(1, Ordering::SeqCst);
                let part = &body[from..];
                let status = if from > 0 {
                    "206 Partial Content"
                } else {
                    "200 OK"
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    part.len()
                );
                let send = if i < cut {
                    &part[..part.len() / 2]
                } else {
                    part
                };
                let _ = s.write_all(send);
            }
        });
        (url, served)
    }

    fn tools_present() -> bool {
        let present = on_path("cmake") && on_path("c++") && on_path("tar");
        if !present {
            assert!(
                std::env::var_os("OLLMLX_REQUIRE_TOOLS").is_none(),
                "OLLMLX_REQUIRE_TOOLS is set but cmake, c++ or tar is missing"
            );
            eprintln!("skipping: cmake, c++ or tar is not installed");
        }
        present
    }

    fn install(dir: &Path, url: String, sha256: String) -> Arc<LlamaInstall> {
        Arc::new(LlamaInstall::new(
            Source {
                url,
                sha256,
                version: "test".into(),
                dir_in_archive: "llama_cpp_python-0.3.36/vendor/llama.cpp".into(),
            },
            dir.join("home/llama-server"),
        ))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn installs_once_resuming_a_cut_download_and_refuses_a_corrupt_one() {
        if !tools_present() {
            return;
        }
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir().unwrap();
        let archive = stand_in_archive(dir.path());
        let sha = hex::encode(Sha256::digest(&archive));

        // A corrupted archive: a clear error, nothing installed, the bad file not kept.
        let mut bad = archive.clone();
        let at = bad.len() / 2;
        bad[at] ^= 0xff;
        let (url, _) = serve(bad, 0);
        let corrupt = install(dir.path(), url, sha.clone());
        let err = corrupt.ensure(Duration::from_secs(120)).await.unwrap_err();
        assert!(
            matches!(&err, Waited::Failed(m) if m.contains("corrupt") && m.contains("OLLMLX_LLAMA_SOURCE")),
            "{err:?}"
        );
        assert!(corrupt.installed().is_none());

        // Cut off half-way once: the install fails, then the next request resumes the download.
        let (url, served) = serve(archive, 1);
        let li = install(dir.path(), url, sha);
        let first = li.ensure(Duration::from_secs(300)).await;
        assert!(matches!(first, Err(Waited::Failed(_))), "{first:?}");
        let bin = li.ensure(Duration::from_secs(300)).await.unwrap();
        assert_eq!(
            served.load(Ordering::SeqCst),
            2,
            "the second request resumed"
        );
        assert_eq!(Some(bin.clone()), li.installed());
        let out = std::process::Command::new(&bin).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "stand-in llama-server"
        );
        // Installed once: no further download or build.
        assert_eq!(li.ensure(Duration::from_secs(5)).await.unwrap(), bin);
        assert_eq!(served.load(Ordering::SeqCst), 2);
        // Nothing half-made is left beside it.
        let left: Vec<_> = std::fs::read_dir(dir.path().join("home/llama-server"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".work-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

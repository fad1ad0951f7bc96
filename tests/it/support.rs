//! Test support: locating the Python and fixtures, and `TestServer`, a daemon process on a free
//! loopback port with its own homes, whose log the tests can read.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const TINY: &str = "ollmlx-test/tiny-llama";
pub const TINY_4BIT: &str = "ollmlx-test/tiny-llama-4bit";
pub const TINY_EOS: &str = "ollmlx-test/tiny-llama-eos";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python with mlx-lm. `None` (and a message) when absent, unless the environment requires
/// every tool (scripts/test.sh and CI do), in which case a missing Python fails the test.
pub fn python() -> Option<PathBuf> {
    let p = std::env::var_os("OLLMLX_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("OLLMLX_REQUIRE_TOOLS").is_some() {
        panic!(
            "OLLMLX_REQUIRE_TOOLS is set but {} does not exist",
            p.display()
        );
    }
    eprintln!(
        "skipping: no Python with mlx-lm at {} (run scripts/test.sh to install it)",
        p.display()
    );
    None
}

/// Builds the fixtures once per test binary and returns their directory.
pub fn fixtures(python: &Path) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("OLLMLX_TEST_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target/fixtures"));
        let status = Command::new(python)
            .arg(repo_root().join("tests/fixtures/make_models.py"))
            .arg(&dir)
            .status()
            .expect("run make_models.py");
        assert!(status.success(), "building the fixtures failed");
        dir
    })
    .clone()
}

/// A server over a private copy of the fixture hub (symlinks kept), for tests that change the
/// cache. Returns the server, the directory holding the copy, and the copy's path.
pub fn server_on_a_copy() -> Option<(TestServer, tempfile::TempDir, PathBuf)> {
    let python = python()?;
    let fx = fixtures(&python);
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    let status = Command::new("cp")
        .arg("-a")
        .arg(fx.join("hub"))
        .arg(&hub)
        .status()
        .unwrap();
    assert!(status.success());
    let server = TestServer::start(Options {
        hub: hub.clone(),
        python,
        env: vec![],
    });
    Some((server, dir, hub))
}

pub struct TestServer {
    pub child: Child,
    pub url: String,
    _home: tempfile::TempDir,
    log: Arc<(Mutex<String>, Condvar)>,
}

pub struct Options {
    pub hub: PathBuf,
    pub python: PathBuf,
    pub env: Vec<(String, String)>,
}

/// The llama-server binary: `OLLMLX_TEST_LLAMA_SERVER` (scripts/test.sh builds it). `None` (and a
/// message) when absent, unless every tool is required.
pub fn llama_server() -> Option<PathBuf> {
    let p = std::env::var_os("OLLMLX_TEST_LLAMA_SERVER").map(PathBuf::from);
    if let Some(p) = p.filter(|p| p.is_file()) {
        return Some(p);
    }
    if std::env::var_os("OLLMLX_REQUIRE_TOOLS").is_some() {
        panic!("OLLMLX_REQUIRE_TOOLS is set but OLLMLX_TEST_LLAMA_SERVER names no llama-server");
    }
    eprintln!("skipping: no llama-server (set OLLMLX_TEST_LLAMA_SERVER; scripts/build-llama-server.sh builds one)");
    None
}

/// Lays out a model in an Ollama store the way Ollama writes it: the GGUF and any text layers
/// as `blobs/sha256-<hex>`, a config blob, and `manifests/registry.ollama.ai/library/<name>/<tag>`.
pub fn ollama_model(store: &Path, name: &str, gguf: &Path, layers: &[(&str, &str)]) {
    let layers: Vec<(&str, &[u8])> = layers.iter().map(|(k, t)| (*k, t.as_bytes())).collect();
    ollama_model_with(store, name, gguf, &layers);
}

/// [`ollama_model`] with layers of any bytes (a `projector` GGUF, say).
pub fn ollama_model_with(store: &Path, name: &str, gguf: &Path, layers: &[(&str, &[u8])]) {
    use sha2::{Digest, Sha256};
    let blobs = store.join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, u64) {
        let hex = hex::encode(Sha256::digest(bytes));
        std::fs::write(blobs.join(format!("sha256-{hex}")), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len() as u64)
    };
    let layer = |media: &str, (digest, size): (String, u64)| serde_json::json!({"mediaType": media, "digest": digest, "size": size});
    let mut ls = vec![layer(
        "application/vnd.ollama.image.model",
        put(&std::fs::read(gguf).unwrap()),
    )];
    for (kind, bytes) in layers {
        ls.push(layer(
            &format!("application/vnd.ollama.image.{kind}"),
            put(bytes),
        ));
    }
    let config = put(br#"{"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"1M","file_type":"F32"}"#);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": layer("application/vnd.docker.container.image.v1+json", config),
        "layers": ls,
    });
    let (model, tag) = name.split_once(':').unwrap_or((name, "latest"));
    let dir = store
        .join("manifests/registry.ollama.ai/library")
        .join(model);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(tag), serde_json::to_vec(&manifest).unwrap()).unwrap();
}

impl TestServer {
    pub fn start(o: Options) -> TestServer {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ollmlx"));
        cmd.arg("serve")
            .env("OLLAMA_HOST", "127.0.0.1:0")
            .env("HF_HUB_CACHE", &o.hub)
            .env("OLLAMA_MODELS", home.path().join("models"))
            .env("OLLMLX_LLAMA_THREADS", "1")
            .env("OLLMLX_HOME", home.path().join("ollmlx"))
            .env("OLLMLX_PYTHON", &o.python)
            .env("OLLMLX_LOG", "info,runner=debug")
            .env_remove("OLLAMA_KEEP_ALIVE")
            .env_remove("OLLMLX_LLAMA_SERVER")
            // No test may reach the real hub: pulls go nowhere unless a test names its own.
            .env("HF_ENDPOINT", "http://127.0.0.1:9")
            .env_remove("HF_TOKEN")
            .env_remove("OLLAMA_NUM_PARALLEL")
            .env_remove("OLLAMA_MAX_LOADED_MODELS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(l) = std::env::var_os("OLLMLX_TEST_LLAMA_SERVER") {
            cmd.env("OLLMLX_LLAMA_SERVER", l);
        }
        for (k, v) in &o.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ollmlx serve");
        let log = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("OLLMLX_TEST_ECHO").is_some() {
                    eprintln!("[daemon] {line}");
                }
                let (m, cv) = &*sink;
                let mut s = m.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
                cv.notify_all();
            }
        });
        let mut server = TestServer {
            child,
            url: String::new(),
            _home: home,
            log,
        };
        let line = server.wait_log("Listening on ", Duration::from_secs(30));
        let addr = line
            .split("Listening on ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        server.url = format!("http://{addr}");
        server
    }

    /// Waits until the daemon's log has a line containing `needle`; returns that line.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        let (m, cv) = &*self.log;
        let deadline = Instant::now() + timeout;
        let mut s = m.lock().unwrap();
        loop {
            if let Some(line) = s.lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no log line with {needle:?} within {timeout:?}; log:\n{s}"
            );
            s = cv.wait_timeout(s, left).unwrap().0;
        }
    }

    /// Everything the daemon has logged so far.
    pub fn log(&self) -> String {
        self.log.0.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The runner processes (direct children of the daemon).
    pub fn runners(&self) -> Vec<u32> {
        children_of(self.pid())
    }

    pub fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap()
    }

    pub fn post(&self, path: &str, body: serde_json::Value) -> reqwest::blocking::Response {
        self.client()
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .unwrap()
    }

    pub fn get(&self, path: &str) -> serde_json::Value {
        self.client()
            .get(format!("{}{path}", self.url))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// Sends a signal to the daemon and waits for it to exit.
    pub fn signal_and_wait(&mut self, sig: i32, timeout: Duration) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.pid() as i32, sig);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let runners = self.runners();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in runners {
            unsafe {
                libc::kill(r as i32, libc::SIGKILL);
            }
        }
    }
}

/// Reads a streamed reply to its end and parses its last line.
pub fn last_line(reader: &mut impl BufRead) -> serde_json::Value {
    let mut last = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        last = line;
    }
    serde_json::from_str(&last).unwrap_or_else(|e| panic!("last line {last:?}: {e}"))
}

/// Parses NDJSON lines.
pub fn ndjson(body: &str) -> Vec<serde_json::Value> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Direct children of a process, from /proc.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // The command may contain spaces: fields start after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|f| f.parse::<u32>().ok()) == Some(pid) && fields[0] != "Z" {
            out.push(p);
        }
    }
    out
}

/// True while a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits until `pid` is gone.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Starts a server over the good fixture cache (or returns None when Python is absent).
pub fn server(env: &[(&str, &str)]) -> Option<TestServer> {
    let python = python()?;
    let fx = fixtures(&python);
    Some(TestServer::start(Options {
        hub: fx.join("hub"),
        python,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }))
}

/// Runs a check script from tests/e2e against a daemon with extra environment; it must exit 0
/// and print "all checks passed". Returns its stdout.
pub fn e2e_check(s: &TestServer, script: &str, env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(python().expect("python"))
        .arg(repo_root().join("tests/e2e").join(script))
        .env("OLLAMA_HOST", &s.url)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all checks passed"), "{script}: {stdout}");
    stdout
}

/// Node.js with the JS check dependencies installed (`npm ci` in tests/e2e/js, which
/// scripts/test.sh runs), or `None` (skipping, unless the tools are required).
pub fn node() -> Option<PathBuf> {
    let modules = repo_root().join("tests/e2e/js/node_modules/ollama");
    let node = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("node"))
        .find(|p| p.is_file());
    match node {
        Some(n) if modules.is_dir() => Some(n),
        _ if std::env::var_os("OLLMLX_REQUIRE_TOOLS").is_some() => {
            panic!("OLLMLX_REQUIRE_TOOLS is set but node or tests/e2e/js/node_modules is missing (run npm ci in tests/e2e/js)")
        }
        _ => {
            eprintln!("skipping: no node or no tests/e2e/js/node_modules (npm ci in tests/e2e/js)");
            None
        }
    }
}

/// A daemon over the fixture hub and a fresh Ollama store that `fill(fixtures, store)` lays out
/// (two runners may stay loaded). Needs Python and llama-server; `None` when absent.
pub fn server_with_store(
    fill: impl FnOnce(&Path, &Path),
) -> Option<(TestServer, PathBuf, tempfile::TempDir)> {
    let python = python()?;
    llama_server()?;
    let fx = fixtures(&python);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("models");
    fill(&fx, &store);
    let server = TestServer::start(Options {
        hub: fx.join("hub"),
        python,
        env: vec![
            ("OLLAMA_MODELS".into(), store.display().to_string()),
            ("OLLAMA_MAX_LOADED_MODELS".into(), "2".into()),
        ],
    });
    Some((server, fx, dir))
}

/// A daemon over the fixture hub and a fresh Ollama store holding `tiny-gguf` (f32) laid out
/// the way Ollama writes it, with extra environment. Returns it with the store's path and the
/// directory that holds the store.
pub fn tiny_gguf_server(
    fx: &Path,
    python: &Path,
    env: &[(&str, &str)],
) -> (TestServer, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("models");
    ollama_model(
        &store,
        "tiny-gguf",
        &fx.join("gguf/tiny-llama-f32.gguf"),
        &[],
    );
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push(("OLLAMA_MODELS".into(), store.display().to_string()));
    let server = TestServer::start(Options {
        hub: fx.join("hub"),
        python: python.to_owned(),
        env,
    });
    (server, store, dir)
}

/// A POST's status and body text.
pub fn post_text(s: &TestServer, path: &str, body: serde_json::Value) -> (u16, String) {
    let r = s.post(path, body);
    let status = r.status().as_u16();
    (status, r.text().unwrap())
}

/// Streams an `/api/chat` and gathers its channels: (thinking, content, tool calls, last line).
/// Tool calls must arrive whole, one per chunk, with no text beside them.
pub fn chat_stream(
    s: &TestServer,
    body: serde_json::Value,
) -> (String, String, Vec<serde_json::Value>, serde_json::Value) {
    let (status, text) = post_text(s, "/api/chat", body);
    assert_eq!(status, 200, "{text}");
    let lines = ndjson(&text);
    let (mut thinking, mut content, mut calls) = (String::new(), String::new(), Vec::new());
    for l in &lines {
        thinking += l["message"]["thinking"].as_str().unwrap_or("");
        content += l["message"]["content"].as_str().unwrap();
        if let Some(c) = l["message"]["tool_calls"].as_array() {
            assert_eq!(c.len(), 1, "{l}");
            assert_eq!(l["message"]["content"], "", "{l}");
            calls.extend(c.iter().cloned());
        }
    }
    (thinking, content, calls, lines.last().unwrap().clone())
}

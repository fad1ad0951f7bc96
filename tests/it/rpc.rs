//! GGUF across machines over llama.cpp's RPC, on loopback: two `ollmlx rpc-server`s (the real
//! CLI, running llama.cpp's rpc-server), a daemon with `OLLMLX_RPC_SERVERS` naming them, and the
//! tiny GGUF model, whose greedy output must not change; an unreachable rpc-server is a clear
//! load error.

use crate::support::*;
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// llama.cpp's rpc-server beside the test's llama-server (scripts/build-llama-server.sh puts it
/// there). `None` (and a message) when absent, unless every tool is required.
fn rpc_server_beside(llama: &Path) -> Option<PathBuf> {
    let p = llama.with_file_name("rpc-server");
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("OLLMLX_REQUIRE_TOOLS").is_some() {
        panic!(
            "OLLMLX_REQUIRE_TOOLS is set but there is no {} (scripts/build-llama-server.sh builds it)",
            p.display()
        );
    }
    eprintln!("skipping: no rpc-server beside {}", llama.display());
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An `ollmlx rpc-server` on a loopback port; killed on drop.
struct Worker {
    child: Child,
    port: u16,
    out: Arc<Mutex<String>>,
    _home: tempfile::TempDir,
}

impl Worker {
    /// Starts `ollmlx rpc-server --port P --threads 1`, finding llama.cpp's rpc-server beside
    /// `OLLMLX_LLAMA_SERVER`, as a user's would; waits until it listens.
    fn start(llama: &Path) -> Worker {
        let home = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ollmlx"))
            .args(["rpc-server", "--port", &port.to_string(), "--threads", "1"])
            .env("OLLMLX_LLAMA_SERVER", llama)
            .env_remove("OLLMLX_RPC_SERVER")
            // Never the managed install: the binary must be found beside llama-server.
            .env("OLLMLX_HOME", home.path())
            // llama.cpp's RPC debug lines show what the server did (`[graph_compute] ...`).
            .env("GGML_RPC_DEBUG", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ollmlx rpc-server");
        let out = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = out.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let mut w = Worker {
            child,
            port,
            out,
            _home: home,
        };
        // rpc-server serves one client at a time and goes back to waiting when it leaves, so a
        // bare connection is a harmless readiness probe.
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = w.child.try_wait().unwrap() {
                panic!("ollmlx rpc-server exited ({status}):\n{}", w.output());
            }
            assert!(
                Instant::now() < deadline,
                "rpc-server did not listen on {port}:\n{}",
                w.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        w
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon over a fresh Ollama store holding `tiny-gguf` (f32), with extra environment.
fn daemon(fx: &Path, python: &Path, env: &[(&str, String)]) -> (TestServer, tempfile::TempDir) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (server, _store, dir) = tiny_gguf_server(fx, python, &env);
    (server, dir)
}

fn generate(s: &TestServer, options: Value) -> (u16, Value) {
    let r = s.post(
        "/api/generate",
        json!({"model": "tiny-gguf", "prompt": "The quick brown fox", "stream": false,
               "options": options}),
    );
    let status = r.status().as_u16();
    (status, r.json().unwrap())
}

/// Greedy, fixed length, fixed seed: the same tokens wherever the layers run.
fn greedy() -> Value {
    json!({"temperature": 0, "seed": 42, "num_predict": 24})
}

#[test]
fn a_gguf_model_over_two_rpc_servers_gives_the_local_greedy_output() {
    let Some(python) = python() else { return };
    let Some(llama) = llama_server() else { return };
    if rpc_server_beside(&llama).is_none() {
        return;
    }
    let fx = fixtures(&python);

    let local = {
        let (s, _dir) = daemon(&fx, &python, &[]);
        let (st, v) = generate(&s, greedy());
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["eval_count"], 24);
        assert!(
            s.get("/api/ps")["models"][0].get("distributed").is_none(),
            "without rpc-servers a model runs here alone"
        );
        v
    };

    let workers = [Worker::start(&llama), Worker::start(&llama)];
    let servers = format!("{},{}", workers[0].endpoint(), workers[1].endpoint());
    let (s, _dir) = daemon(&fx, &python, &[("OLLMLX_RPC_SERVERS", servers.clone())]);
    let hosts = json!(["local", workers[0].endpoint(), workers[1].endpoint()]);
    let want = json!({"backend": "llama-rpc", "split": "layers", "hosts": hosts});

    // /api/show says where a GGUF model would run; an MLX model is not spread by llama.cpp.
    let show: Value = s
        .post("/api/show", json!({"model": "tiny-gguf"}))
        .json()
        .unwrap();
    assert_eq!(show["distributed"], want);
    let show: Value = s.post("/api/show", json!({"model": TINY})).json().unwrap();
    assert!(show.get("distributed").is_none(), "{show}");

    let (st, v) = generate(&s, greedy());
    assert_eq!(st, 200, "{v}\n{}", s.log());
    assert_eq!(v["response"], local["response"]);
    assert_eq!(
        v["context"], local["context"],
        "the same prompt ids and tokens"
    );
    assert_eq!(v["eval_count"], 24);

    let ps = s.get("/api/ps");
    assert_eq!(ps["models"][0]["name"], "tiny-gguf:latest");
    assert_eq!(ps["models"][0]["distributed"], want, "{ps}");
    // The layers went to the rpc-servers: each computed part of the graph.
    for w in &workers {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !w.output().contains("[graph_compute]") {
            assert!(
                Instant::now() < deadline,
                "{} computed nothing:\n{}",
                w.endpoint(),
                w.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            w.output()
                .contains("ollmlx rpc-server: running llama.cpp's"),
            "{}",
            w.output()
        );
        assert!(
            !w.output().contains("WARNING"),
            "no warning on loopback: {}",
            w.output()
        );
    }

    // A helper lost while the model is loaded: llama.cpp treats it as fatal, and the error says
    // why; the next load names the server that is gone, and the daemon stays up.
    let [first, mut second] = workers;
    let gone = second.endpoint();
    let _ = second.child.kill();
    let _ = second.child.wait();
    let (st, v) = generate(&s, greedy());
    assert_eq!(st, 500, "{v}");
    let err = v["error"].as_str().unwrap();
    assert!(err.contains("Remote RPC server crashed"), "{err}");
    let (st, v) = generate(&s, greedy());
    assert_eq!(st, 500, "{v}");
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains(&format!("cannot reach the llama.cpp rpc-server at {gone}")),
        "{err}"
    );
    assert!(s.get("/api/version")["version"].is_string());
    drop(first);
}

#[test]
fn an_unreachable_rpc_server_is_a_clear_load_error_and_the_daemon_stays_up() {
    let Some(python) = python() else { return };
    if llama_server().is_none() {
        return;
    }
    let fx = fixtures(&python);
    let nobody = format!("127.0.0.1:{}", free_port());
    let (s, _dir) = daemon(&fx, &python, &[("OLLMLX_RPC_SERVERS", nobody.clone())]);

    let started = Instant::now();
    let (st, v) = generate(&s, greedy());
    assert_eq!(st, 500, "{v}");
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains(&nobody) && err.contains("OLLMLX_RPC_SERVERS") && err.contains("rpc-server"),
        "{err}"
    );
    // A refused connection is known at once; this only bounds a hang generously.
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "{:?}",
        started.elapsed()
    );
    assert!(
        s.runners().is_empty(),
        "no llama-server was started for a load bound to fail"
    );

    // The daemon is up, and `num_gpu: 0` keeps the model on this machine, rpc-servers unused.
    let version = s.get("/api/version");
    assert!(version["version"].is_string(), "{version}");
    let (st, v) = generate(
        &s,
        json!({"temperature": 0, "seed": 42, "num_predict": 4, "num_gpu": 0}),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["eval_count"], 4);
    let ps = s.get("/api/ps");
    assert!(ps["models"][0].get("distributed").is_none(), "{ps}");
}

/// What llama-server itself does with rpc-servers the daemon's check cannot catch, and one the
/// check exists for: a server gone between the check and llama-server's connection (llama-server
/// aborts with "Failed to connect to ..." in its log), and a busy one (an rpc-server serves one
/// client at a time; llama-server would wait on it forever, silently).
#[test]
fn a_vanishing_or_busy_rpc_server_is_named_not_waited_on() {
    use std::io::Write;
    let Some(python) = python() else { return };
    if llama_server().is_none() {
        return;
    }
    let fx = fixtures(&python);

    // Answers the daemon's handshake as rpc-server does, then stops listening.
    let once = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let vanishing = once.local_addr().unwrap().to_string();
    let answered = std::thread::spawn(move || {
        let (mut c, _) = once.accept().unwrap();
        let mut hello = [0u8; 33];
        c.read_exact(&mut hello).unwrap();
        assert_eq!(hello[0], 14, "RPC_CMD_HELLO");
        let mut rsp = 28u64.to_le_bytes().to_vec();
        rsp.extend_from_slice(&[7, 0, 0, 0]);
        rsp.extend_from_slice(&[0; 24]);
        c.write_all(&rsp).unwrap();
    });
    let (s, _dir) = daemon(&fx, &python, &[("OLLMLX_RPC_SERVERS", vanishing.clone())]);
    let (st, v) = generate(&s, greedy());
    answered.join().unwrap();
    assert_eq!(st, 500, "{v}");
    let err = v["error"].as_str().unwrap();
    assert!(
        err.starts_with("llama-server could not connect to an rpc-server from OLLMLX_RPC_SERVERS")
            && err.contains(&vanishing),
        "{err}"
    );
    drop(s);

    // Takes connections (the kernel queues them) but never serves: busy with another client.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_at = busy.local_addr().unwrap().to_string();
    let (s, _dir) = daemon(&fx, &python, &[("OLLMLX_RPC_SERVERS", busy_at.clone())]);
    let (st, v) = generate(&s, greedy());
    assert_eq!(st, 500, "{v}");
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains(&busy_at) && err.contains("busy serving another client"),
        "{err}"
    );
    assert!(s.runners().is_empty(), "llama-server was never started");
    drop(busy);
}

#[test]
fn rpc_server_refuses_a_taken_port_and_a_host_name_in_plain_words() {
    let Some(llama) = llama_server() else { return };
    if rpc_server_beside(&llama).is_none() {
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ollmlx"))
            .arg("rpc-server")
            .args(args)
            .env("OLLMLX_LLAMA_SERVER", &llama)
            .env_remove("OLLMLX_RPC_SERVER")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["--port", &port]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    let out = run(&["--host", "localhost"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("IPv4 address"), "{err}");
}

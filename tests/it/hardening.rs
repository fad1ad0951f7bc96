//! Hostile or careless input against the real daemon and llama-server: a huge prompt for a GGUF
//! model stays within a bounded multiple of its size, and a daemon killed with SIGKILL takes its
//! llama-server with it (or the next daemon stops it).

use crate::support::*;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn tiny_gguf(fx: &Path, store: &Path) {
    ollama_model(
        store,
        "tiny-gguf",
        &fx.join("gguf/tiny-llama-f32.gguf"),
        &[],
    );
}

/// The daemon's peak resident memory so far (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// `n` bytes of made-up lower-case words: many tokens a byte, the costly case.
fn gibberish(n: usize) -> String {
    let mut x: u32 = 12345;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            match (x >> 16) % 7 {
                0 => ' ',
                _ => (b'a' + ((x >> 20) % 26) as u8) as char,
            }
        })
        .collect()
}

#[test]
fn a_huge_gguf_prompt_costs_the_daemon_a_bounded_multiple_of_its_size() {
    const SIZE: usize = 8 << 20;
    let prompt = gibberish(SIZE);
    // Raw, the prompt is tokenized as it is; otherwise it is rendered by the GGUF's template first.
    for raw in [true, false] {
        // A daemon each: the peak only ever grows.
        let Some((s, _fx, _dir)) = server_with_store(tiny_gguf) else {
            return;
        };
        // Load the model first: its start-up is not the prompt's cost.
        let (st, body) = post_text(
            &s,
            "/api/generate",
            json!({"model": "tiny-gguf", "prompt": "hi", "stream": false, "options": {"num_predict": 1}}),
        );
        assert_eq!(st, 200, "{body}");
        let before = peak_rss(s.pid());
        let (st, body) = post_text(
            &s,
            "/api/generate",
            json!({"model": "tiny-gguf", "prompt": prompt, "raw": raw, "stream": false, "truncate": false}),
        );
        assert_eq!(st, 400, "{body}");
        assert!(
            body.contains("exceeds the available context size"),
            "{body}"
        );
        let grew = peak_rss(s.pid()).saturating_sub(before);
        let report = format!(
            "raw={raw}: peak RSS grew {} MiB for a {} MiB prompt ({body})",
            grew >> 20,
            SIZE >> 20
        );
        eprintln!("{report}");
        // It was ~105x; what is left is the body, its parse, the rendered prompt, the ids and
        // llama-server's replies.
        assert!(grew < 25 * SIZE as u64, "{report}");
    }
}

#[test]
fn sigkill_of_the_daemon_takes_llama_server_with_it() {
    let Some((mut s, _fx, _dir)) = server_with_store(tiny_gguf) else {
        return;
    };
    let (st, body) = post_text(
        &s,
        "/api/generate",
        json!({"model": "tiny-gguf", "prompt": "hi", "stream": false, "options": {"num_predict": 1}}),
    );
    assert_eq!(st, 200, "{body}");
    let runners = s.runners();
    assert_eq!(runners.len(), 1);
    s.signal_and_wait(libc::SIGKILL, Duration::from_secs(10));
    let gone = wait_gone(runners[0], Duration::from_secs(15));
    if !gone {
        // Do not leave it running past the test.
        unsafe {
            libc::kill(runners[0] as i32, libc::SIGKILL);
        }
    }
    assert!(gone, "llama-server outlived the daemon");
}

/// The start time of a process (field 22 of its stat), as the daemon records runners.
fn start_time(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(19).unwrap().to_owned()
}

#[test]
fn a_new_daemon_stops_runners_a_dead_one_left_behind() {
    use std::os::unix::process::CommandExt;
    let Some(python) = python() else { return };
    let fx = fixtures(&python);
    let home = tempfile::tempdir().unwrap();
    // A "runner" whose daemon is gone (no process started at time 0), and one whose pid now
    // belongs to another process (another start time): only the first may be stopped.
    let spawn = || {
        std::process::Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let (mut orphan, mut stranger) = (spawn(), spawn());
    let runs = home.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    for (child, start) in [
        (&orphan, start_time(orphan.id())),
        (&stranger, "1".to_owned()),
    ] {
        let record = json!({"pid": child.id(), "start": start, "daemon_pid": std::process::id(),
                            "daemon_start": "0", "label": "leftover"});
        std::fs::write(
            runs.join(format!("{}.json", child.id())),
            record.to_string(),
        )
        .unwrap();
    }
    let _s = TestServer::start(Options {
        hub: fx.join("hub"),
        python,
        env: vec![("OLLMLX_HOME".into(), home.path().display().to_string())],
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while orphan.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let orphan_gone = orphan.try_wait().unwrap().is_some();
    let stranger_alive = stranger.try_wait().unwrap().is_none();
    for c in [&mut orphan, &mut stranger] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(orphan_gone, "the leftover runner is stopped");
    assert!(stranger_alive, "a recycled pid is never killed");
    assert_eq!(
        std::fs::read_dir(&runs).unwrap().count(),
        0,
        "records cleared"
    );
}

/// A port held by someone else, handed out first by the test's port picker.
static TAKEN: std::sync::Mutex<Option<std::net::TcpListener>> = std::sync::Mutex::new(None);

fn taken_port_first() -> std::io::Result<u16> {
    if let Some(l) = TAKEN.lock().unwrap().as_ref() {
        if PICKED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Ok(l.local_addr()?.port());
        }
    }
    ollmlx::runner::llamacpp::free_port()
}
static PICKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[test]
fn a_llama_server_port_taken_in_the_race_is_retried_on_another() {
    use ollmlx::runner::{llamacpp::LlamaFactory, LoadOptions, LoadSpec, RunnerFactory};
    let Some(python) = python() else { return };
    let Some(binary) = llama_server() else { return };
    let fx = fixtures(&python);
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    tiny_gguf(&fx, &models);
    let model = ollmlx::store::Store::new(dir.path().join("hub"), models)
        .find("tiny-gguf")
        .unwrap();
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    *TAKEN.lock().unwrap() = Some(listener);
    let factory = LlamaFactory {
        binary: Some(binary),
        exe_dir: None,
        search_path: None,
        load_timeout: Some(std::time::Duration::from_secs(120)),
        threads: Some(1),
        cache_type: None,
        records: None,
        pick_port: taken_port_first,
        install: None,
        install_wait: std::time::Duration::ZERO,
        rpc_servers: Vec::new(),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let runner = rt
        .block_on(factory.start(LoadSpec {
            model,
            num_parallel: 1,
            options: LoadOptions {
                num_ctx: 256,
                ..LoadOptions::default()
            },
            prefix_cache_bytes: None,
        }))
        .expect("the second port works");
    assert!(PICKED.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    let tokens = rt.block_on(runner.tokenize("hello world")).unwrap();
    assert!(!tokens.is_empty());
    // The taken port is still the test's, and the runner answers elsewhere.
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
    rt.block_on(runner.close());
}

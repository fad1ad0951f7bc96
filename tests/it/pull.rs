//! Pulls through the real daemon from local servers that speak the Hugging Face hub and Ollama
//! registry protocols (tests/it/hubs/), with faults: a dropped connection, corrupted bytes, a
//! gated repo, an unservable repo, an unknown model.

use crate::hubs::*;
use crate::support::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn tiny_snapshot(fx: &Path, repo: &str) -> PathBuf {
    let dir = fx
        .join("hub")
        .join(format!("models--{}", repo.replace('/', "--")));
    let rev = std::fs::read_to_string(dir.join("refs/main")).unwrap();
    dir.join("snapshots").join(rev.trim())
}

struct Pulling {
    server: TestServer,
    cache: PathBuf,
    fx: PathBuf,
    dir: tempfile::TempDir,
}

/// A daemon over an empty HF cache and an empty Ollama store, pulling from `hub`.
fn daemon(hub_url: &str, env: &[(&str, String)]) -> Option<Pulling> {
    let python = python()?;
    let fx = fixtures(&python);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    std::fs::create_dir_all(&cache).unwrap();
    let mut e: Vec<(String, String)> = vec![
        ("HF_ENDPOINT".into(), hub_url.into()),
        (
            "OLLAMA_MODELS".into(),
            dir.path().join("models").display().to_string(),
        ),
        (
            "HF_TOKEN_PATH".into(),
            dir.path().join("token").display().to_string(),
        ),
    ];
    e.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let server = TestServer::start(Options {
        hub: cache.clone(),
        python,
        env: e,
    });
    Some(Pulling {
        server,
        cache,
        fx,
        dir,
    })
}

/// Pulls and returns the NDJSON lines.
fn pull(s: &TestServer, body: Value) -> Vec<Value> {
    let r = s.post("/api/pull", body);
    assert_eq!(r.status(), 200);
    ndjson(&r.text().unwrap())
}

fn listed(s: &TestServer, name: &str) -> bool {
    s.get("/api/tags")["models"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == name)
}

#[test]
fn an_mlx_model_pulled_from_the_hub_is_listed_served_and_removable() {
    let Some(python) = python() else { return };
    let fx = fixtures(&python);
    let hub = HfHub::start(vec![HfRepo::from_dir(
        "acme/tiny",
        &tiny_snapshot(&fx, "ollmlx-test/tiny-llama"),
    )]);
    let Some(p) = daemon(&hub.url, &[]) else {
        return;
    };
    let s = &p.server;
    let lines = pull(s, json!({"model": "acme/tiny"}));
    let statuses: Vec<&str> = lines.iter().filter_map(|l| l["status"].as_str()).collect();
    assert_eq!(statuses.first(), Some(&"pulling manifest"));
    assert_eq!(statuses.last(), Some(&"success"), "{lines:?}");
    assert!(
        statuses.contains(&"verifying sha256 digest") && statuses.contains(&"writing manifest")
    );
    let big = lines
        .iter()
        .find(|l| {
            l["digest"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:"))
        })
        .expect("a blob line");
    assert!(big["total"].as_u64().unwrap() > 0);
    // The token never reached the CDN, and no duplicate weight formats were fetched.
    assert!(hub
        .hits()
        .iter()
        .all(|h| !(h.listener == Listener::Cdn && h.authorization)));
    assert!(listed(s, "acme/tiny:latest"));
    let (st, v) = (200, s.post("/api/generate", json!({"model": "acme/tiny", "prompt": "hi", "stream": false, "options": {"num_predict": 3}})).json::<Value>().unwrap());
    assert_eq!((st, v["eval_count"].clone()), (200, json!(3)), "{v}");
    // A second pull finds everything in place.
    hub.clear_hits();
    assert_eq!(
        pull(s, json!({"model": "hf.co/acme/tiny"})).last().unwrap()["status"],
        "success"
    );
    // Only config.json is read again (the servability check); no file is downloaded twice.
    assert_eq!(
        hub.bytes_served("model.safetensors"),
        0,
        "the weights are not fetched again"
    );
    assert!(hub.total_bytes_served() < 4096);
    let r = s
        .client()
        .delete(format!("{}/api/delete", s.url))
        .json(&json!({"model": "acme/tiny"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        !p.cache.join("models--acme--tiny").exists(),
        "rm leaves nothing in the cache"
    );
}

#[test]
fn a_dropped_download_resumes_and_corrupt_bytes_are_refused() {
    let Some(python) = python() else { return };
    let fx = fixtures(&python);
    let repo = HfRepo::from_dir("acme/tiny", &tiny_snapshot(&fx, "ollmlx-test/tiny-llama"));
    let size = repo.file("model.safetensors").unwrap().len() as u64;
    let hub = HfHub::start(vec![repo]);
    let Some(p) = daemon(&hub.url, &[]) else {
        return;
    };
    let s = &p.server;

    hub.drop_after("model.safetensors", 1_000_000);
    let lines = pull(s, json!({"model": "acme/tiny"}));
    assert!(
        lines.last().unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("resume"),
        "{lines:?}"
    );
    assert!(
        !listed(s, "acme/tiny:latest"),
        "a failed pull leaves no model visible"
    );
    hub.clear_hits();
    assert_eq!(
        pull(s, json!({"model": "acme/tiny"})).last().unwrap()["status"],
        "success"
    );
    let second = hub.bytes_served("model.safetensors");
    assert!(
        second < size,
        "resumed: {second} bytes the second time, the file has {size}"
    );
    assert!(hub
        .hits_for("model.safetensors")
        .iter()
        .any(|h| h.range.as_deref() == Some("bytes=1000000-")));

    // Corrupted bytes: an error, the file discarded, nothing listed.
    let corrupt = HfHub::start(vec![HfRepo::from_dir(
        "acme/bent",
        &tiny_snapshot(&fx, "ollmlx-test/tiny-llama"),
    )]);
    corrupt.corrupt("model.safetensors");
    let Some(p2) = daemon(&corrupt.url, &[]) else {
        return;
    };
    let lines = pull(&p2.server, json!({"model": "acme/bent"}));
    let err = lines.last().unwrap()["error"].as_str().unwrap().to_owned();
    assert!(err.contains("corrupt") && err.contains("sha256"), "{err}");
    assert!(!listed(&p2.server, "acme/bent:latest"));
    let blobs = p2.cache.join("models--acme--bent/blobs");
    let leftovers: Vec<_> = std::fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("incomplete"))
        .collect();
    assert!(leftovers.is_empty(), "the corrupt download is deleted");
    let _ = (&p.dir, &p.fx);
}

#[test]
fn gated_repos_need_a_token_and_unservable_repos_write_nothing() {
    let Some(python) = python() else { return };
    let fx = fixtures(&python);
    let gated = HfRepo::from_dir("acme/gated", &tiny_snapshot(&fx, "ollmlx-test/tiny-llama"))
        .gated("hf_sesame");
    let bin_only = HfRepo::new(
        "acme/bin-only",
        vec![
            ("config.json", br#"{"model_type":"llama"}"#.to_vec()),
            ("pytorch_model.bin", vec![0u8; 2048]),
        ],
    );
    let alien = HfRepo::new(
        "acme/alien",
        vec![
            ("config.json", br#"{"model_type":"alien_arch"}"#.to_vec()),
            ("model.safetensors", vec![0u8; 2048]),
        ],
    );
    let hub = HfHub::start(vec![gated, bin_only, alien]);
    let Some(p) = daemon(&hub.url, &[]) else {
        return;
    };
    let s = &p.server;
    let lines = pull(s, json!({"model": "acme/gated"}));
    let err = lines.last().unwrap()["error"].as_str().unwrap().to_owned();
    assert!(err.contains("gated") && err.contains("HF_TOKEN"), "{err}");
    // `ollmlx login` writes the token file; the daemon reads it at the next pull.
    let mut login = std::process::Command::new(env!("CARGO_BIN_EXE_ollmlx"))
        .arg("login")
        .env("HF_TOKEN_PATH", p.dir.path().join("token"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut login.stdin.take().unwrap(), b"hf_sesame\n").unwrap();
    assert!(login.wait().unwrap().success());
    assert_eq!(
        pull(s, json!({"model": "acme/gated"})).last().unwrap()["status"],
        "success"
    );
    assert!(!s.log().contains("hf_sesame"), "the token is never logged");

    let lines = pull(s, json!({"model": "acme/bin-only"}));
    assert!(
        lines.last().unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("safetensors"),
        "{lines:?}"
    );
    assert!(
        !p.cache.join("models--acme--bin-only").exists(),
        "nothing written"
    );
    let lines = pull(s, json!({"model": "acme/missing"}));
    assert!(lines.last().unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("not found"));
    let r = s.post(
        "/api/pull",
        json!({"model": "acme/missing", "stream": false}),
    );
    assert_eq!(r.status(), 500);
}

#[test]
fn a_gguf_model_pulled_from_a_registry_is_served() {
    let Some(python) = python() else { return };
    let Some(_) = llama_server() else { return };
    let fx = fixtures(&python);
    let gguf = std::fs::read(fx.join("gguf/tiny-llama-q8_0.gguf")).unwrap();
    let model = RegistryModel::new("library/tiny:latest", vec![(MODEL_LAYER, gguf.clone())]);
    let served = model.manifest_digest();
    let registry = Registry::start(vec![model]);
    let Some(p) = daemon("http://127.0.0.1:9", &[]) else {
        return;
    };
    let s = &p.server;
    let name = format!("{}/library/tiny:latest", registry.host_port);
    let layer = sha256_digest(&gguf);
    registry.drop_after(&layer, 200_000);
    let lines = pull(s, json!({"model": name, "insecure": true}));
    assert!(lines.last().unwrap().get("error").is_some(), "{lines:?}");
    assert!(
        !listed(s, &name),
        "no manifest before every blob is complete"
    );
    registry.clear_hits();
    let lines = pull(s, json!({"model": name, "insecure": true}));
    assert_eq!(lines.last().unwrap()["status"], "success", "{lines:?}");
    assert!(registry.bytes_served(&layer) < gguf.len() as u64, "resumed");
    assert!(listed(s, &name));
    // The registry's manifest bytes are stored as they came, as Ollama does: the same ID.
    let tags = s.get("/api/tags");
    let listed_id = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name.as_str())
        .map(|m| m["digest"].clone());
    assert_eq!(
        listed_id,
        Some(json!(served.trim_start_matches("sha256:"))),
        "{tags}"
    );
    let v: Value = s
        .post(
            "/api/generate",
            json!({"model": name, "prompt": "hi", "stream": false, "options": {"num_predict": 3}}),
        )
        .json()
        .unwrap();
    assert_eq!(v["eval_count"], 3, "{v}");
    let lines = pull(
        s,
        json!({"model": format!("{}/library/nope:latest", registry.host_port), "insecure": true}),
    );
    assert_eq!(
        lines.last().unwrap()["error"],
        "pull model manifest: file does not exist"
    );
}

/// A GGUF header whose one value nests arrays `levels` deep (it once overflowed the reader's
/// stack and killed the daemon).
fn nested_arrays_gguf(levels: usize) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&3u64.to_le_bytes());
    b.extend_from_slice(b"key");
    b.extend_from_slice(&9u32.to_le_bytes());
    for _ in 1..levels {
        b.extend_from_slice(&9u32.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes());
    }
    b.extend_from_slice(&4u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b
}

#[test]
fn a_malformed_gguf_from_a_registry_is_refused_and_leaves_nothing() {
    let bad = nested_arrays_gguf(500_000);
    let model = RegistryModel::new("library/deep:latest", vec![(MODEL_LAYER, bad.clone())]);
    let registry = Registry::start(vec![model]);
    let Some(p) = daemon("http://127.0.0.1:9", &[]) else {
        return;
    };
    let s = &p.server;
    let name = format!("{}/library/deep:latest", registry.host_port);
    let lines = pull(s, json!({"model": name, "insecure": true}));
    let error = lines.last().unwrap()["error"].as_str().unwrap_or("");
    assert!(error.contains("not a valid GGUF"), "{lines:?}");
    assert!(!listed(s, &name));
    let blob = p
        .dir
        .path()
        .join("models/blobs")
        .join(sha256_digest(&bad).replace(':', "-"));
    assert!(!blob.exists(), "the refused blob is removed");
    assert_eq!(s.get("/api/version")["version"], "0.33.0", "still serving");
}

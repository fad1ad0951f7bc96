//! GGUF models through llama-server, Ollama's store shared, create/copy/delete/blobs, embeddings,
//! and parity between the same weights in both formats.

use crate::support::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Duration;

struct Gguf {
    server: TestServer,
    store: PathBuf,
    fixtures: PathBuf,
    _dir: tempfile::TempDir,
}

/// A daemon over the fixture hub and a fresh Ollama store holding `tiny-gguf` (f32) laid out
/// by the test the way Ollama writes it.
fn gguf_server(env: &[(&str, &str)]) -> Option<Gguf> {
    let python = python()?;
    llama_server()?;
    let fx = fixtures(&python);
    let (server, store, dir) = tiny_gguf_server(&fx, &python, env);
    Some(Gguf {
        server,
        store,
        fixtures: fx,
        _dir: dir,
    })
}

fn json_post(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let r = s.post(path, body);
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| {
        // NDJSON: the last line
        text.lines()
            .last()
            .map(|l| serde_json::from_str(l).unwrap())
            .unwrap_or(Value::Null)
    });
    (status, v)
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn upload(s: &TestServer, bytes: Vec<u8>) -> (u16, String) {
    let digest = sha(&bytes);
    let r = s
        .client()
        .post(format!("{}/api/blobs/{digest}", s.url))
        .body(bytes)
        .send()
        .unwrap();
    (r.status().as_u16(), digest)
}

#[test]
fn an_ollama_store_model_is_listed_shown_and_served() {
    let Some(g) = gguf_server(&[]) else { return };
    let s = &g.server;
    let tags = s.get("/api/tags");
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"tiny-gguf:latest") && names.contains(&"ollmlx-test/tiny-llama:latest"),
        "both worlds: {names:?}"
    );
    let m = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "tiny-gguf:latest")
        .unwrap();
    assert_eq!(m["details"]["format"], "gguf");
    assert_eq!(m["details"]["quantization_level"], "F32");
    assert_eq!(m["digest"].as_str().unwrap().len(), 64);

    let (st, show) = json_post(s, "/api/show", json!({"model": "tiny-gguf"}));
    assert_eq!(st, 200);
    assert_eq!(show["model_info"]["general.architecture"], "llama");
    assert_eq!(show["model_info"]["llama.context_length"], 2048);
    assert_eq!(show["model_info"]["general.parameter_count"], 1049728);
    assert_eq!(
        show["model_info"]["tokenizer.ggml.tokens"],
        json!([]),
        "the vocabulary only with verbose"
    );
    assert!(
        show["template"].as_str().unwrap().contains("im_start"),
        "the GGUF's own Jinja template"
    );
    let (_, verbose) = json_post(
        s,
        "/api/show",
        json!({"model": "tiny-gguf", "verbose": true}),
    );
    assert_eq!(
        verbose["model_info"]["tokenizer.ggml.tokens"]
            .as_array()
            .unwrap()
            .len(),
        2048
    );

    let (st, v) = json_post(
        s,
        "/api/generate",
        json!({"model": "tiny-gguf", "prompt": "Hello", "stream": false, "options": {"num_predict": 8, "temperature": 0}}),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["eval_count"], 8);
    assert_eq!(v["done_reason"], "length");
    let ctx = v["context"].as_array().unwrap();
    assert_eq!(
        ctx.len() as u64,
        v["prompt_eval_count"].as_u64().unwrap() + 8
    );
    let lines = ndjson(&s.post("/api/chat", json!({"model": "tiny-gguf", "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 4}})).text().unwrap());
    assert_eq!(lines.last().unwrap()["eval_count"], 4);
    assert!(lines.len() >= 2);
    let ps = s.get("/api/ps");
    assert_eq!(ps["models"][0]["name"], "tiny-gguf:latest");
    assert_eq!(ps["models"][0]["context_length"], 2048);
}

#[test]
fn the_same_weights_give_the_same_tokens_and_embeddings_in_both_formats() {
    let Some(g) = gguf_server(&[]) else { return };
    let s = &g.server;
    // Each renders the prompt with the model's own template (Python's Jinja on MLX, llama.cpp's
    // on GGUF); the context holds the prompt ids plus the greedy output ids.
    let run = |model: &str| {
        let (st, v) = json_post(
            s,
            "/api/generate",
            json!({"model": model, "prompt": "The quick brown fox 🦊 café 123", "stream": false, "options": {"num_predict": 24, "temperature": 0}}),
        );
        assert_eq!(st, 200, "{v}");
        v["context"].as_array().unwrap().clone()
    };
    // The f16 MLX model against the f16 GGUF of the same weights.
    ollama_model(
        &g.store,
        "tiny-gguf-f16",
        &g.fixtures.join("gguf/tiny-llama-f16.gguf"),
        &[],
    );
    let mlx = run(TINY);
    let gguf = run("tiny-gguf-f16");
    assert_eq!(mlx, gguf, "identical prompt ids and 24 greedy tokens");

    let embed = |model: &str| {
        let (st, v) = json_post(
            s,
            "/api/embed",
            json!({"model": model, "input": ["hello world", "a different sentence"]}),
        );
        assert_eq!(st, 200, "{v}");
        let e: Vec<Vec<f64>> = serde_json::from_value(v["embeddings"].clone()).unwrap();
        assert!(v["prompt_eval_count"].as_u64().unwrap() > 0);
        e
    };
    let (a, b) = (embed(TINY), embed("tiny-gguf"));
    for (x, y) in a.iter().zip(&b) {
        let norm = |v: &Vec<f64>| v.iter().map(|t| t * t).sum::<f64>().sqrt();
        assert!(
            (norm(x) - 1.0).abs() < 1e-4 && (norm(y) - 1.0).abs() < 1e-4,
            "L2-normalised"
        );
        let cos: f64 = x.iter().zip(y).map(|(p, q)| p * q).sum();
        assert!(cos >= 0.999, "cosine {cos}");
    }
    // dimensions cut and renormalise; the legacy endpoint returns one vector.
    let (_, v) = json_post(
        s,
        "/api/embed",
        json!({"model": "tiny-gguf", "input": "hello", "dimensions": 16}),
    );
    assert_eq!(v["embeddings"][0].as_array().unwrap().len(), 16);
    let (_, v) = json_post(
        s,
        "/api/embeddings",
        json!({"model": TINY, "prompt": "hello"}),
    );
    assert_eq!(v["embedding"].as_array().unwrap().len(), 128);
    let (st, v) = json_post(
        s,
        "/api/embed",
        json!({"model": "nobody/nothing", "input": "x"}),
    );
    assert_eq!(
        (st, v["error"].as_str().unwrap()),
        (
            404,
            "model \"nobody/nothing\" not found, try pulling it first"
        )
    );
    let (st, _) = json_post(s, "/api/embed", json!({"model": TINY, "input": [1, 2]}));
    assert_eq!(st, 400);
}

#[test]
fn create_copy_and_delete_with_blobs() {
    let Some(g) = gguf_server(&[]) else { return };
    let s = &g.server;
    let gguf = std::fs::read(g.fixtures.join("gguf/tiny-llama-q8_0.gguf")).unwrap();

    // A wrong digest is refused and leaves nothing behind.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let r = s
        .client()
        .post(format!("{}/api/blobs/{wrong}", s.url))
        .body(gguf.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("digest mismatch"));
    let r = s
        .client()
        .post(format!("{}/api/blobs/sha256:..%2F..%2Fetc", s.url))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let blobs = g.store.join("blobs");
    let before = std::fs::read_dir(&blobs).unwrap().count();

    let (st, digest) = upload(s, gguf.clone());
    assert_eq!(st, 201);
    assert_eq!(upload(s, gguf.clone()).0, 200, "already there");
    let head = s
        .client()
        .head(format!("{}/api/blobs/{digest}", s.url))
        .send()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        std::fs::read_dir(&blobs).unwrap().count(),
        before + 1,
        "no partial files"
    );

    let body = json!({"model": "mine", "files": {"tiny.gguf": digest}, "system": "You are terse.",
        "parameters": {"temperature": 0, "num_predict": 5, "stop": ["zzz"]}, "license": "MIT"});
    let r = s.post("/api/create", body);
    assert_eq!(r.status(), 200);
    let lines = ndjson(&r.text().unwrap());
    assert_eq!(lines[0]["status"], "parsing GGUF");
    assert!(lines.iter().any(|l| l["status"]
        .as_str()
        .unwrap()
        .starts_with("creating new layer sha256:")));
    assert_eq!(lines.last().unwrap()["status"], "success");

    let (_, show) = json_post(s, "/api/show", json!({"model": "mine"}));
    assert_eq!(show["system"], "You are terse.");
    assert_eq!(show["license"], "MIT");
    assert!(
        show["parameters"].as_str().unwrap().contains("num_predict"),
        "{show}"
    );
    assert_eq!(show["details"]["quantization_level"], "Q8_0");
    // The model's parameters apply: 5 tokens without asking.
    let (st, v) = json_post(
        s,
        "/api/generate",
        json!({"model": "mine", "prompt": "hi", "stream": false}),
    );
    assert_eq!((st, v["eval_count"].clone()), (200, json!(5)), "{v}");

    assert_eq!(
        s.post(
            "/api/copy",
            json!({"source": "mine", "destination": "mine2"})
        )
        .status(),
        200
    );
    assert_eq!(
        s.post("/api/copy", json!({"source": "nope", "destination": "x"}))
            .status(),
        404
    );
    assert_eq!(
        s.post(
            "/api/copy",
            json!({"source": "mine", "destination": "bad name"})
        )
        .status(),
        400
    );
    let del = |n: &str| {
        s.client()
            .delete(format!("{}/api/delete", s.url))
            .json(&json!({"model": n}))
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(del("mine"), 200);
    let blob = blobs.join(digest.replace(':', "-"));
    assert!(blob.is_file(), "still used by mine2");
    assert_eq!(del("mine2"), 200);
    assert!(!blob.exists(), "no manifest references it any more");
    assert!(g
        .store
        .join("blobs")
        .join(
            std::fs::read_dir(&blobs)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .file_name()
        )
        .exists());
    assert_eq!(del("mine2"), 404);
}

#[test]
fn a_model_created_from_an_mlx_model_keeps_its_system_and_parameters() {
    let Some(g) = gguf_server(&[]) else { return };
    let s = &g.server;
    let r = s.post("/api/create", json!({"model": "terse-mlx", "from": TINY, "system": "Be terse.", "parameters": {"num_predict": 3}, "stream": false}));
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["status"], "success");
    let (_, show) = json_post(s, "/api/show", json!({"model": "terse-mlx"}));
    assert_eq!(show["details"]["format"], "safetensors");
    assert_eq!(show["system"], "Be terse.");
    let (st, v) = json_post(
        s,
        "/api/chat",
        json!({"model": "terse-mlx", "stream": false, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!((st, v["eval_count"].clone()), (200, json!(3)), "{v}");
    // The system prompt reached the template: more prompt tokens than without it.
    let (_, plain) = json_post(
        s,
        "/api/chat",
        json!({"model": TINY, "stream": false, "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 3}}),
    );
    assert!(v["prompt_eval_count"].as_u64() > plain["prompt_eval_count"].as_u64());
}

#[test]
fn bad_input_is_refused_and_the_store_stays_intact() {
    let Some(g) = gguf_server(&[]) else { return };
    let s = &g.server;
    let broken = g.fixtures.join("gguf-broken");
    for (file, why) in [
        ("wrong-magic.gguf", "not a GGUF"),
        ("truncated.gguf", "truncated"),
        ("absurd-tensor-count.gguf", "tensor count"),
        ("absurd-string.gguf", "string"),
    ] {
        let bytes = std::fs::read(broken.join(file)).unwrap();
        let (st, digest) = upload(s, bytes);
        assert!(st == 201 || st == 200);
        let (st, v) = json_post(
            s,
            "/api/create",
            json!({"model": "broken", "files": {file: digest}}),
        );
        assert_eq!(st, 400, "{file}: {v}");
        assert!(v["error"].as_str().unwrap().contains(why), "{file}: {v}");
    }
    let (st, v) = json_post(
        s,
        "/api/create",
        json!({"model": "x", "files": {"m.gguf": format!("sha256:{}", "1".repeat(64))}}),
    );
    assert_eq!(st, 400, "{v}");
    let (st, v) = json_post(s, "/api/create", json!({"model": "x"}));
    assert_eq!(
        (st, v["error"].as_str().unwrap()),
        (400, "neither 'from' or 'files' was specified")
    );
    let (st, _) = json_post(
        s,
        "/api/create",
        json!({"model": "x", "files": {"/etc/passwd": format!("sha256:{}", "1".repeat(64))}}),
    );
    assert_eq!(st, 400);
    let tags = s.get("/api/tags");
    assert!(!tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "broken:latest"));

    // A truncated GGUF placed straight into the store fails at load, naming the file, no runner.
    ollama_model(&g.store, "cut", &broken.join("truncated.gguf"), &[]);
    let (st, v) = json_post(s, "/api/generate", json!({"model": "cut", "prompt": "hi"}));
    assert_eq!(st, 500, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("corrupt or incomplete"),
        "{v}"
    );
    assert!(s.runners().is_empty());

    // Two creates of one name at once: both finish, one manifest, listed once.
    let (_, digest) = upload(
        s,
        std::fs::read(g.fixtures.join("gguf/tiny-llama-q4_0.gguf")).unwrap(),
    );
    let url = s.url.clone();
    let racers: Vec<_> = (0..2)
        .map(|i| {
            let (url, digest) = (url.clone(), digest.clone());
            std::thread::spawn(move || {
                reqwest::blocking::Client::new()
                    .post(format!("{url}/api/create"))
                    .json(&json!({"model": "twin", "files": {"t.gguf": digest}, "system": format!("v{i}"), "stream": false}))
                    .send()
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for r in racers {
        assert_eq!(r.join().unwrap(), 200);
    }
    let tags = s.get("/api/tags");
    assert_eq!(
        tags["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["name"] == "twin:latest")
            .count(),
        1
    );
    let (_, show) = json_post(s, "/api/show", json!({"model": "twin"}));
    assert!(show["system"] == "v0" || show["system"] == "v1");
}

#[test]
fn a_killed_llama_server_fails_its_stream_and_is_replaced() {
    let Some(g) = gguf_server(&[]) else { return };
    let s = &g.server;
    let r = s.post(
        "/api/generate",
        json!({"model": "tiny-gguf", "prompt": "Tell a story", "options": {"num_predict": 100000}}),
    );
    let mut reader = std::io::BufReader::new(r);
    let mut first = String::new();
    std::io::BufRead::read_line(&mut reader, &mut first).unwrap();
    let runners = s.runners();
    assert_eq!(runners.len(), 1);
    unsafe {
        libc::kill(runners[0] as i32, libc::SIGKILL);
    }
    let last = last_line(&mut reader);
    assert!(
        last["error"]
            .as_str()
            .unwrap_or("")
            .contains("unexpectedly stopped"),
        "{last}"
    );
    let (st, v) = json_post(
        s,
        "/api/generate",
        json!({"model": "tiny-gguf", "prompt": "hi", "stream": false, "options": {"num_predict": 2}}),
    );
    assert_eq!((st, v["eval_count"].clone()), (200, json!(2)));
    assert!(wait_gone(runners[0], Duration::from_secs(5)));
}

#[test]
fn cli_create_from_a_modelfile_then_run_show_cp_rm() {
    let Some(g) = gguf_server(&[]) else { return };
    let s = &g.server;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        g.fixtures.join("gguf/tiny-llama-eos-f32.gguf"),
        dir.path().join("tiny.gguf"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Modelfile"),
        "FROM ./tiny.gguf\nSYSTEM \"\"\"You answer briefly.\"\"\"\nPARAMETER temperature 0\nPARAMETER num_predict 16\nMESSAGE user Hello\nMESSAGE assistant Hi!\n",
    )
    .unwrap();
    let host = s.url.trim_start_matches("http://").to_owned();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ollmlx"))
            .args(args)
            .current_dir(dir.path())
            .env("OLLAMA_HOST", &host)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (_, err) = cli(&["create", "brief", "-f", "Modelfile"]);
    assert!(err.contains("success"), "{err}");
    let (mf, _) = cli(&["show", "brief", "--modelfile"]);
    assert!(
        mf.contains("SYSTEM \"\"\"You answer briefly.\"\"\""),
        "{mf}"
    );
    assert!(mf.contains("MESSAGE assistant"), "{mf}");
    assert!(mf.contains("PARAMETER num_predict 16"), "{mf}");
    // /api/show returns the MESSAGE layers as Ollama's `messages`.
    let shown: Value = g
        .server
        .post("/api/show", json!({"model": "brief"}))
        .json()
        .unwrap();
    assert_eq!(
        shown["messages"],
        json!([{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}])
    );
    let (answer, _) = cli(&["run", "brief", "What is 2+2?"]);
    assert!(!answer.trim().is_empty());
    let (out, _) = cli(&["cp", "brief", "brief-copy"]);
    assert!(out.contains("copied 'brief' to 'brief-copy'"), "{out}");
    let (out, _) = cli(&["rm", "brief", "brief-copy"]);
    assert!(
        out.contains("deleted 'brief'") && out.contains("deleted 'brief-copy'"),
        "{out}"
    );
    let tags = s.get("/api/tags");
    assert!(!tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"].as_str().unwrap().starts_with("brief")));
}

#[test]
fn an_ollama_template_layer_renders_like_the_ggufs_own_jinja_template() {
    let Some(g) = gguf_server(&[]) else { return };
    let s = &g.server;
    // Ollama's chatml template, the Go twin of the fixture's Jinja ChatML.
    let chatml = "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n";
    ollama_model(
        &g.store,
        "tiny-gotmpl",
        &g.fixtures.join("gguf/tiny-llama-f32.gguf"),
        &[("template", chatml), ("system", "Be brief.")],
    );
    let run = |model: &str, system: Option<&str>| {
        let mut body = json!({"model": model, "prompt": "Why is the sea salty?", "stream": false, "options": {"num_predict": 6, "temperature": 0}});
        if let Some(sys) = system {
            body["system"] = json!(sys);
        }
        let (st, v) = json_post(s, "/api/generate", body);
        assert_eq!(st, 200, "{v}");
        v["context"].as_array().unwrap().clone()
    };
    // The Go path uses the model's SYSTEM; give the Jinja path the same system prompt.
    assert_eq!(
        run("tiny-gotmpl", None),
        run("tiny-gguf", Some("Be brief."))
    );
    let (_, show) = json_post(s, "/api/show", json!({"model": "tiny-gotmpl"}));
    assert_eq!(show["template"], chatml);
    assert_eq!(show["system"], "Be brief.");
    // A chat whose history does not fit drops the oldest turns, keeping the system prompt.
    let history: Vec<Value> = (0..60)
        .flat_map(|i| [json!({"role": "user", "content": format!("question {i} about the sea and the salt in it")}), json!({"role": "assistant", "content": "I do not know."})])
        .chain([json!({"role": "user", "content": "last"})])
        .collect();
    let (st, v) = json_post(
        s,
        "/api/chat",
        json!({"model": "tiny-gotmpl", "messages": history, "stream": false, "options": {"num_ctx": 256, "num_predict": 2}}),
    );
    assert_eq!(st, 200, "{v}");
    assert!(v["prompt_eval_count"].as_u64().unwrap() < 256);
}

/// `OLLAMA_KV_CACHE_TYPE=q8_0` reaches both runners: llama-server gets q8_0 K and V caches
/// (with flash attention, which a quantized V cache needs) and still generates; the MLX runner
/// gets `--kv-bits 8`.
#[test]
fn the_kv_cache_type_reaches_both_runners() {
    let Some(g) = gguf_server(&[("OLLAMA_KV_CACHE_TYPE", "q8_0")]) else {
        return;
    };
    let s = &g.server;
    let (status, done) = json_post(
        s,
        "/api/generate",
        json!({"model": "tiny-gguf", "prompt": "Hello", "stream": false,
               "options": {"num_predict": 5, "temperature": 0}}),
    );
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["eval_count"], 5);
    let (status, done) = json_post(
        s,
        "/api/generate",
        json!({"model": "ollmlx-test/tiny-llama", "prompt": "Hello", "stream": false,
               "options": {"num_predict": 5, "temperature": 0}}),
    );
    assert_eq!(status, 200, "{done}");
    let cmdlines: Vec<String> = s
        .runners()
        .iter()
        .map(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default()
        })
        .collect();
    let llama = cmdlines
        .iter()
        .find(|c| c.contains("--port") && !c.contains("ollmlx_mlx"));
    let llama = llama.expect("a llama-server runner");
    assert!(
        llama.contains("--cache-type-k q8_0 --cache-type-v q8_0 --flash-attn on"),
        "{llama}"
    );
    let mlx = cmdlines
        .iter()
        .find(|c| c.contains("ollmlx_mlx"))
        .expect("an MLX runner");
    assert!(mlx.contains("--kv-bits 8"), "{mlx}");
}

/// `ollama create` (Ollama built from source, 2026-12-04) of this request on a store holding
/// `tiny-gguf` wrote these blobs and this manifest (the model layer is the base's, whatever
/// its bytes): ollmlx must write the same bytes, so the model has the same ID in both.
#[test]
fn create_writes_the_bytes_ollama_writes() {
    let Some(g) = gguf_server(&[]) else { return };
    let body = json!({
        "model": "cmp", "from": "tiny-gguf", "stream": false,
        "template": "{{ if .System }}<|system|>{{ .System }}{{ end }}<|user|>{{ .Prompt }}<|assistant|>",
        "system": "You are <terse> & kind.", "license": "MIT License",
        "parameters": {"temperature": 0.7, "stop": ["<|user|>", "<|system|>"], "num_ctx": 4096, "top_k": 20, "repeat_penalty": 1.1},
        "messages": [{"role": "user", "content": "hi <there>"}, {"role": "assistant", "content": "hello & welcome"}],
    });
    let r = g.server.post("/api/create", body);
    assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    let manifests = g.store.join("manifests/registry.ollama.ai/library");
    let base: Value =
        serde_json::from_slice(&std::fs::read(manifests.join("tiny-gguf/latest")).unwrap())
            .unwrap();
    let model = &base["layers"][0];
    let got = std::fs::read(manifests.join("cmp/latest")).unwrap();
    let want = format!(
        concat!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","#,
            r#""config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:b5811386b18c028fc8215a4fa30b40cc44b824b443dc0ef9dcbf4c8a03cde4b3","size":153}},"#,
            r#""layers":[{{"mediaType":"application/vnd.ollama.image.model","digest":"{}","size":{},"from":"tiny-gguf:latest"}},"#,
            r#"{{"mediaType":"application/vnd.ollama.image.template","digest":"sha256:336a6c83fce28db1274e0fdfb3eb9d37a008baac3118588cd99c11589fcf534b","size":82}},"#,
            r#"{{"mediaType":"application/vnd.ollama.image.system","digest":"sha256:15e7bf34baaab8e50c395b0f7cd13ae62f805656f90030955d37b9025ae9f4f9","size":23}},"#,
            r#"{{"mediaType":"application/vnd.ollama.image.license","digest":"sha256:abb2896dc3c2a9402f901b88d5035cf0a83d5cf7c17e73642cdf562b0b9d3bc5","size":11}},"#,
            r#"{{"mediaType":"application/vnd.ollama.image.params","digest":"sha256:b89564c0ace9ca1cdd740becf63d3e5e5bc6c169acf1e5997f253dc7da800236","size":120}},"#,
            r#"{{"mediaType":"application/vnd.ollama.image.messages","digest":"sha256:c7190ad5c914aa8fd6aa86e33c086302a5f1b96e768e512cc06883a7d8aafb31","size":105}}]}}"#,
            "\n"
        ),
        model["digest"].as_str().unwrap(),
        model["size"]
    );
    assert_eq!(String::from_utf8(got).unwrap(), want);
    // The blobs those digests name, as Ollama wrote them.
    let blob = |d: &str| std::fs::read(g.store.join("blobs").join(d.replace(':', "-"))).unwrap();
    assert_eq!(
        blob("sha256:b5811386b18c028fc8215a4fa30b40cc44b824b443dc0ef9dcbf4c8a03cde4b3"),
        b"{\"model_format\":\"gguf\",\"model_family\":\"llama\",\"model_families\":[\"llama\"],\"model_type\":\"1.05M\",\"file_type\":\"unknown\",\"architecture\":\"amd64\",\"os\":\"linux\"}\n"
    );
    assert_eq!(
        blob("sha256:b89564c0ace9ca1cdd740becf63d3e5e5bc6c169acf1e5997f253dc7da800236"),
        b"{\"num_ctx\":4096,\"repeat_penalty\":1.1,\"stop\":[\"\\u003c|user|\\u003e\",\"\\u003c|system|\\u003e\"],\"temperature\":0.7,\"top_k\":20}\n"
    );
}

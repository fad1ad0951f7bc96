//! `/api/push` to a local stand-in for an Ollama-protocol registry (Docker registry v2 uploads:
//! `HEAD` blob, `POST …/blobs/uploads/`, `PATCH`, `PUT ?digest=`, `PUT` manifest), with
//! bearer-token auth and a failing upload part; and `/api/status`.

use crate::support::*;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const TOKEN: &str = "the-token";

#[derive(Default)]
struct Registry {
    uploads: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, Vec<u8>>,
    manifests: HashMap<String, Vec<u8>>,
    /// `PATCH`es still to fail with a 500.
    fail_patches: usize,
    /// `METHOD path` of every authorised request.
    log: Vec<String>,
    next: usize,
}

type Shared = Arc<Mutex<Registry>>;

async fn token(Query(q): Query<HashMap<String, String>>) -> Response {
    let scope = q.get("scope").cloned().unwrap_or_default();
    if !scope.ends_with(":push,pull") {
        return (StatusCode::FORBIDDEN, "scope").into_response();
    }
    axum::Json(json!({"token": TOKEN})).into_response()
}

async fn v2(
    State(reg): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let host = headers["host"].to_str().unwrap().to_owned();
    let authorised = headers
        .get("authorization")
        .is_some_and(|v| v == &format!("Bearer {TOKEN}")[..]);
    let path = uri.path().to_owned();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if !authorised {
        let (ns, model) = (segs.get(1).unwrap_or(&""), segs.get(2).unwrap_or(&""));
        let challenge = format!(
            r#"Bearer realm="http://{host}/token",service="stand-in",scope="repository:{ns}/{model}:push,pull""#
        );
        return (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)]).into_response();
    }
    let mut r = reg.lock().unwrap();
    r.log.push(format!("{method} {path}"));
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.replace("%3A", ":")))
                .collect()
        })
        .unwrap_or_default();
    match (method.as_str(), segs.as_slice()) {
        ("HEAD", ["v2", _, _, "blobs", digest]) => {
            if r.blobs.contains_key(*digest) {
                StatusCode::OK.into_response()
            } else {
                StatusCode::NOT_FOUND.into_response()
            }
        }
        ("POST", ["v2", ns, model, "blobs", "uploads", ""]) => {
            r.next += 1;
            let id = format!("u{}", r.next);
            r.uploads.insert(id.clone(), Vec::new());
            let location = format!("/v2/{ns}/{model}/blobs/uploads/{id}?_state=x");
            (StatusCode::ACCEPTED, [("location", location)]).into_response()
        }
        ("PATCH", ["v2", ns, model, "blobs", "uploads", id]) => {
            if r.fail_patches > 0 {
                r.fail_patches -= 1;
                return (StatusCode::INTERNAL_SERVER_ERROR, "injected").into_response();
            }
            let have = r.uploads.get(*id).map_or(0, Vec::len);
            let range = headers["content-range"].to_str().unwrap().to_owned();
            if !range.starts_with(&format!("{have}-")) {
                return (StatusCode::RANGE_NOT_SATISFIABLE, "range").into_response();
            }
            r.uploads.get_mut(*id).unwrap().extend_from_slice(&body);
            let location = format!("/v2/{ns}/{model}/blobs/uploads/{id}?_state=y");
            (StatusCode::ACCEPTED, [("location", location)]).into_response()
        }
        ("PUT", ["v2", _, _, "blobs", "uploads", id]) => {
            let data = r.uploads.remove(*id).unwrap_or_default();
            let digest = query.get("digest").cloned().unwrap_or_default();
            if digest != format!("sha256:{}", hex::encode(Sha256::digest(&data))) {
                return (StatusCode::BAD_REQUEST, "DIGEST_INVALID").into_response();
            }
            r.blobs.insert(digest, data);
            StatusCode::CREATED.into_response()
        }
        ("PUT", ["v2", ns, model, "manifests", tag]) => {
            let m: Value = serde_json::from_slice(&body).unwrap();
            for l in m["layers"].as_array().unwrap().iter().chain([&m["config"]]) {
                if !r.blobs.contains_key(l["digest"].as_str().unwrap()) {
                    return (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").into_response();
                }
            }
            r.manifests
                .insert(format!("{ns}/{model}:{tag}"), body.to_vec());
            StatusCode::CREATED.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The stand-in on a thread of its own; `host:port`.
fn start(reg: Shared) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    l.set_nonblocking(true).unwrap();
    let app = Router::new()
        .route("/token", get(token))
        .fallback(v2)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(reg);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    addr
}

#[test]
fn push_uploads_every_blob_with_a_token_retries_a_failed_part_and_skips_what_is_there() {
    let Some((s, _fx, dir)) = server_with_store(|fx, store| {
        ollama_model(
            store,
            "tiny-gguf",
            &fx.join("gguf/tiny-llama-f32.gguf"),
            &[("application/vnd.ollama.image.system", "Be brief.")],
        )
    }) else {
        return;
    };
    let reg: Shared = Arc::new(Mutex::new(Registry {
        fail_patches: 1,
        ..Registry::default()
    }));
    let host = start(reg.clone());
    let name = format!("{host}/me/tiny:v1");
    let r = s.post(
        "/api/copy",
        json!({"source": "tiny-gguf", "destination": name}),
    );
    assert_eq!(r.status(), 200);

    let (st, body) = post_text(&s, "/api/push", json!({"model": name, "insecure": true}));
    assert_eq!(st, 200, "{body}");
    let lines = ndjson(&body);
    let statuses: Vec<&str> = lines.iter().filter_map(|l| l["status"].as_str()).collect();
    assert!(statuses.len() >= 2, "{body}");
    assert_eq!(statuses.first(), Some(&"retrieving manifest"), "{body}");
    assert_eq!(
        &statuses[statuses.len() - 2..],
        ["pushing manifest", "success"],
        "{body}"
    );
    assert!(lines.iter().all(|l| l.get("error").is_none()), "{body}");
    let local = std::fs::read(
        dir.path()
            .join(format!("models/manifests/{host}/me/tiny/v1")),
    )
    .unwrap();
    let manifest: Value = serde_json::from_slice(&local).unwrap();
    let digests: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&manifest["config"]])
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    for d in &digests {
        let hex = &d[7..19];
        assert!(
            lines.iter().any(|l| l["status"] == format!("pushing {hex}")
                && l["digest"] == d.as_str()
                && l["completed"] == l["total"]),
            "progress for {d}: {body}"
        );
    }
    {
        let r = reg.lock().unwrap();
        // Every blob arrived whole (the registry checked each digest), the manifest as stored.
        for d in &digests {
            assert!(r.blobs.contains_key(d), "{d}");
        }
        assert_eq!(r.manifests["me/tiny:v1"], local);
        assert_eq!(r.fail_patches, 0, "the failing part was met, and retried");
    }

    // Pushed again: every blob is already there, so nothing is uploaded.
    reg.lock().unwrap().log.clear();
    let (st, body) = post_text(
        &s,
        "/api/push",
        json!({"model": name, "insecure": true, "stream": false}),
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "success"
    );
    let log = reg.lock().unwrap().log.clone();
    assert!(log.iter().all(|l| !l.starts_with("POST")), "{log:?}");

    // The CLI, its stderr not a terminal: one line per change, then where the model is.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ollmlx"))
        .args(["push", &name, "--insecure"])
        .env("OLLAMA_HOST", s.url.trim_start_matches("http://"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.starts_with("retrieving manifest\n")
            && stderr.ends_with("pushing manifest\nsuccess\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pushing {}", &digests[0][7..19])),
        "{stderr}"
    );
    assert!(stdout.contains("You can find your model at:"), "{stdout}");

    // A model that is not there: an error line, as Ollama sends it.
    let (_, body) = post_text(
        &s,
        "/api/push",
        json!({"model": format!("{host}/me/nothing"), "insecure": true}),
    );
    assert!(body.contains("not found"), "{body}");
}

#[test]
fn status_says_cloud_models_are_unavailable() {
    let Some(s) = server(&[]) else { return };
    assert_eq!(
        s.get("/api/status"),
        json!({"cloud": {"disabled": true, "source": "none"}})
    );
}

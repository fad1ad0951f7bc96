//! Hostile input handler tests: files, manifests and bodies made to crash the daemon, exhaust its
//! memory or reach outside the store are refused with an `{"error": ...}`, and the daemon keeps
//! serving.

use super::*;
use crate::store::ollama::BlobDigest;

/// Uploads `bytes` through `/api/blobs` and returns their digest.
async fn upload(h: &Harness, bytes: Vec<u8>) -> String {
    let digest = BlobDigest::of_bytes(&bytes).as_str().to_owned();
    let r = h
        .app
        .clone()
        .oneshot(
            Request::post(format!("/api/blobs/{digest}"))
                .body(Body::from(bytes))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    digest
}

#[tokio::test]
async fn a_gguf_nesting_arrays_500k_deep_is_a_400_and_never_listed() {
    let h = harness();
    let bytes = crate::store::gguf::tests::nested_arrays(500_000);
    let digest = upload(&h, bytes).await;
    let r = call(
        &h.app,
        "POST",
        "/api/create",
        Some(json!({"model": "deep", "files": {"deep.gguf": digest}})),
    )
    .await;
    assert_eq!(r.status(), 400);
    let e = json_of(r).await;
    assert!(
        e["error"].as_str().unwrap().starts_with("invalid GGUF: "),
        "{e}"
    );
    // Still serving, and the file became no model.
    let tags = json_of(call(&h.app, "GET", "/api/tags", None).await).await;
    let names: Vec<&Value> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["name"])
        .collect();
    assert_eq!(names, vec!["ollmlx-test/tiny:latest"]);
}

#[tokio::test]
async fn a_manifest_pointing_at_a_directory_is_refused() {
    let h = harness();
    let root = h._dir.path();
    // The harness's own model directory, reached by an absolute path and by `..`.
    let snapshot = root.join("hub/models--ollmlx-test--tiny/snapshots/0123abcd");
    for (name, revision) in [
        ("abs", snapshot.to_str().unwrap().to_owned()),
        (
            "up",
            "../../models--ollmlx-test--tiny/snapshots/0123abcd".to_owned(),
        ),
    ] {
        crate::store::tests::hf_reference_model(
            &root.join("models"),
            name,
            &json!({"repo_id": "x/y", "revision": revision}),
        );
        let r = call(&h.app, "POST", "/api/show", Some(json!({"model": name}))).await;
        assert_eq!(r.status(), 400, "{name}");
        let e = json_of(r).await["error"].as_str().unwrap().to_owned();
        assert!(e.contains("reference is invalid"), "{e}");
        assert!(!e.contains(root.to_str().unwrap()), "no local path in {e}");
        let r = call(
            &h.app,
            "POST",
            "/api/generate",
            Some(json!({"model": name})),
        )
        .await;
        assert_eq!(r.status(), 400, "{name}");
    }
    let tags = json_of(call(&h.app, "GET", "/api/tags", None).await).await;
    assert_eq!(tags["models"].as_array().unwrap().len(), 1, "{tags}");
}

/// A JSON body one byte over the limit.
fn over_limit() -> Vec<u8> {
    let mut b = br#"{"model": "ollmlx-test/tiny", "prompt": ""#.to_vec();
    b.resize(crate::server::extract::MAX_BODY - 1, b'a');
    b.extend_from_slice(br#""}"#);
    b
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_in_each_layers_shape() {
    let h = harness();
    let post = |path: &str| {
        h.app
            .clone()
            .oneshot(Request::post(path).body(Body::from(over_limit())).unwrap())
    };
    let r = post("/api/generate").await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        json_of(r).await,
        json!({"error": "request body too large: the limit is 64 MiB"})
    );
    let r = post("/v1/chat/completions").await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        json_of(r).await["error"]["message"],
        "request body too large: the limit is 64 MiB"
    );
    let r = post("/v1/messages").await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(json_of(r).await["error"]["type"], "request_too_large");
    // Nothing was loaded for them, and a body under the limit is served.
    assert_eq!(
        h.factory.starts.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let r = call(
        &h.app,
        "POST",
        "/api/generate",
        Some(json!({"model": MODEL, "prompt": "hi", "stream": false})),
    )
    .await;
    assert_eq!(r.status(), 200);
}

//! The dashboard's files: content types, the CSP and caching headers, conditional requests, and
//! the same CORS and Host rules as the API. (tests/it/ui.rs drives the page in Chromium.)

use super::*;

async fn get(h: &Harness, path: &str, headers: &[(&str, &str)]) -> Response<Body> {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    h.app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_page_and_its_assets_have_types_csp_and_etags() {
    let h = harness();
    for (path, ty) in [
        ("/ui", "text/html; charset=utf-8"),
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/api.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
        ("/ui/logo.svg", "image/svg+xml"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let r = get(&h, path, &[]).await;
        assert_eq!(r.status(), 200, "{path}");
        let hd = r.headers();
        assert_eq!(hd["content-type"], ty, "{path}");
        assert_eq!(hd["cache-control"], "no-cache", "{path}");
        assert_eq!(hd["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(hd["x-frame-options"], "DENY", "{path}");
        let csp = hd["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("connect-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(hd["etag"].to_str().unwrap().starts_with('"'), "{path}");
        assert!(!text(r).await.is_empty(), "{path}");
    }
    let page = text(get(&h, "/ui/", &[]).await).await;
    assert!(page.contains(r#"<script type="module" src="/ui/app.js">"#));
    // The Ollama root is unchanged.
    assert_eq!(text(get(&h, "/", &[]).await).await, "Ollama is running");
}

#[tokio::test]
async fn an_unchanged_asset_is_a_304_without_a_body() {
    let h = harness();
    let r = get(&h, "/ui/app.js", &[]).await;
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let r = get(&h, "/ui/app.js", &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert_eq!(text(r).await, "");
    let r = get(&h, "/ui/app.js", &[("if-none-match", "\"stale\"")]).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn unknown_files_are_404_like_any_route() {
    let h = harness();
    for path in [
        "/ui/nope.js",
        "/ui/index.htm",
        "/ui/%2e%2e%2fCargo.toml",
        "/ui/a/b",
    ] {
        let r = get(&h, path, &[]).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(text(r).await, "404 page not found", "{path}");
    }
    let r = h
        .app
        .clone()
        .oneshot(Request::post("/ui/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn the_ui_obeys_the_apis_cors_and_host_rules() {
    let h = harness();
    let r = get(&h, "/ui/", &[("host", "evil.example")]).await;
    assert_eq!(r.status(), 403, "a rebound name must not read the page");
    assert_eq!(text(r).await, "");
    let r = get(&h, "/ui/app.js", &[("origin", "https://evil.example")]).await;
    assert_eq!(r.status(), 403);
    // The page's own module loads carry its origin (module scripts are CORS requests).
    let r = get(
        &h,
        "/ui/app.js",
        &[
            ("host", "127.0.0.1:11434"),
            ("origin", "http://127.0.0.1:11434"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://127.0.0.1:11434"
    );
}

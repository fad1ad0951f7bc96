//! CORS as Ollama does it (gin-contrib/cors): a default list of local and app origins plus
//! `OLLAMA_ORIGINS`; a request from any other origin gets 403 with an empty body; preflights from
//! allowed origins get 204.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

const DEFAULT_ORIGINS: &[&str] = &[
    "http://localhost",
    "https://localhost",
    "http://localhost:*",
    "https://localhost:*",
    "http://127.0.0.1",
    "https://127.0.0.1",
    "http://127.0.0.1:*",
    "https://127.0.0.1:*",
    "http://0.0.0.0",
    "https://0.0.0.0",
    "http://0.0.0.0:*",
    "https://0.0.0.0:*",
    "app://*",
    "file://*",
    "tauri://*",
    "vscode-webview://*",
    "vscode-file://*",
];

const ALLOW_HEADERS: &str = "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, X-Request-Id, OpenAI-Beta, x-stainless-arch, x-stainless-async, x-stainless-custom-poll-interval, x-stainless-helper-method, x-stainless-lang, x-stainless-os, x-stainless-package-version, x-stainless-poll-helper, x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout";
const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS";

/// The allowed origin patterns (each may hold one `*`).
#[derive(Debug, Clone)]
pub struct Origins(Arc<Vec<String>>);

impl Origins {
    pub fn new(extra: &[String]) -> Origins {
        let mut all: Vec<String> = DEFAULT_ORIGINS.iter().map(|s| s.to_string()).collect();
        all.extend(extra.iter().cloned());
        Origins(Arc::new(all))
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|p| glob(p, origin))
    }
}

fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(s),
        Some((pre, post)) => {
            s.len() >= pre.len() + post.len()
                && s[..pre.len()].eq_ignore_ascii_case(pre)
                && s[s.len() - post.len()..].eq_ignore_ascii_case(post)
        }
    }
}

pub async fn layer(State(origins): State<Origins>, req: Request, next: Next) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let allowed = origin.to_str().is_ok_and(|o| origins.allows(o));
    if !allowed {
        return (StatusCode::FORBIDDEN, Body::empty()).into_response();
    }
    let mut resp = if req.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    // Browser scripts may read the request id (`server::request`) to quote it in bug reports.
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("X-Request-Id"),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_extra_origins() {
        let o = Origins::new(&["chrome-extension://*".into()]);
        assert!(o.allows("http://localhost:3000"));
        assert!(o.allows("http://127.0.0.1"));
        assert!(o.allows("vscode-webview://abc"));
        assert!(o.allows("chrome-extension://xyz"));
        assert!(!o.allows("https://evil.example"));
        assert!(!o.allows("http://localhostevil.com"));
        assert!(Origins::new(&["*".into()]).allows("https://anything.example"));
    }
}

//! The CDN, shared by both servers: signed URLs handed out by redirects, served with `Range`
//! support; any URL without a signature the server handed out is refused (403).

use super::control::{Control, Listener};
use super::http::{hv, json_response, random_hex, serve_bytes, About, Req};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// What a signed CDN URL serves.
#[derive(Clone)]
pub(super) struct CdnEntry {
    /// The last path segment of the URL (`/cdn/<name>`).
    pub(super) name: String,
    pub(super) data: Bytes,
    pub(super) about: About,
    pub(super) etag: String,
}

#[derive(Clone)]
pub(super) struct CdnState {
    pub(super) ctl: Control,
    /// sig -> what it opens.
    pub(super) sigs: Arc<Mutex<HashMap<String, CdnEntry>>>,
}

impl CdnState {
    /// A new signed URL (path and query, to put after the CDN's base URL) for `entry`.
    pub(super) fn sign(&self, entry: CdnEntry) -> String {
        let sig = random_hex();
        let path = format!("/cdn/{}?sig={sig}", entry.name);
        self.sigs.lock().unwrap().insert(sig, entry);
        path
    }
}

pub(super) async fn cdn_handler(
    State(s): State<CdnState>,
    req: axum::extract::Request,
) -> Response {
    let r = Req::new(&req);
    let counter = Arc::new(AtomicU64::new(0));
    let (response, about) = cdn_route(&s, &r, &counter);
    s.ctl
        .record(Listener::Cdn, &r, response.status(), about, counter);
    response
}

fn cdn_route(s: &CdnState, r: &Req, counter: &Arc<AtomicU64>) -> (Response, Option<About>) {
    let forbidden = |msg: &str| {
        let body = json!({ "error": msg });
        (
            json_response(StatusCode::FORBIDDEN, HeaderMap::new(), &body),
            None,
        )
    };
    let Some(name) = r.path.strip_prefix("/cdn/") else {
        return (StatusCode::NOT_FOUND.into_response(), None);
    };
    if !r.is_read() {
        return (StatusCode::METHOD_NOT_ALLOWED.into_response(), None);
    }
    let Some(sig) = r.query.get("sig").filter(|s| !s.is_empty()) else {
        return forbidden("missing signature");
    };
    let Some(entry) = s.sigs.lock().unwrap().get(sig).cloned() else {
        return forbidden("invalid signature");
    };
    if entry.name != name {
        return forbidden("signature does not match the object");
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, hv(&entry.etag));
    let response = serve_bytes(&s.ctl, r, &entry.data, &entry.about.names, headers, counter);
    (response, Some(entry.about))
}

//! The request and response plumbing both servers share: the parts of a request the handlers
//! read, `Range` parsing, and file bodies served with the `corrupt`, `drop_after` and `slow`
//! faults applied.

use super::control::Control;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The body chunk at full speed.
const CHUNK: usize = 64 * 1024;

/// The file a request was about: its canonical name and every key that names it.
#[derive(Clone)]
pub(super) struct About {
    pub(super) file: String,
    pub(super) names: Vec<String>,
}

/// The parts of a request the handlers look at.
pub(super) struct Req {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) raw_query: Option<String>,
    pub(super) query: HashMap<String, String>,
    pub(super) headers: HeaderMap,
}

impl Req {
    pub(super) fn new(req: &axum::extract::Request) -> Req {
        let raw_query = req.uri().query().map(str::to_owned);
        let query = raw_query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Req {
            method: req.method().clone(),
            path: percent_decode(req.uri().path()),
            raw_query,
            query,
            headers: req.headers().clone(),
        }
    }

    pub(super) fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(super) fn is_read(&self) -> bool {
        self.method == Method::GET || self.method == Method::HEAD
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}
/// A byte range asked for with `Range`: `Ok(None)` for the whole file, `Err` when it cannot be
/// satisfied (416). Unparsable or multi-range headers are ignored (the whole file), as HTTP allows.
fn parse_range(value: Option<&str>, len: usize) -> Result<Option<(usize, usize)>, ()> {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        // A suffix: the last N bytes.
        let Ok(n) = b.parse::<usize>() else {
            return Ok(None);
        };
        if n == 0 || len == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len)
    } else {
        let Ok(start) = a.parse::<usize>() else {
            return Ok(None);
        };
        let end = if b.is_empty() {
            len
        } else {
            match b.parse::<usize>() {
                Ok(last) if last >= start => (last + 1).min(len),
                _ => return Ok(None),
            }
        };
        if start >= len {
            return Err(());
        }
        (start, end)
    };
    Ok(Some((start, end)))
}

/// Serves a file's bytes (or, for `HEAD`, its headers) with `Range` support, applying the
/// `corrupt`, `drop_after` and `slow` faults and counting the body bytes sent into `counter`.
pub(super) fn serve_bytes(
    ctl: &Control,
    r: &Req,
    data: &Bytes,
    names: &[String],
    mut headers: HeaderMap,
    counter: &Arc<AtomicU64>,
) -> Response {
    let data = if ctl.is_corrupt(names) && !data.is_empty() {
        let mut v = data.to_vec();
        let mid = v.len() / 2;
        v[mid] ^= 0xFF;
        Bytes::from(v)
    } else {
        data.clone()
    };
    let len = data.len();
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let (status, body) = match parse_range(r.header(header::RANGE), len) {
        Err(()) => {
            headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).unwrap(),
            );
            return (StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response();
        }
        Ok(None) => (StatusCode::OK, data),
        Ok(Some((start, end))) => {
            headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)).unwrap(),
            );
            (StatusCode::PARTIAL_CONTENT, data.slice(start..end))
        }
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers
        .entry(header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/octet-stream"));
    if r.method == Method::HEAD {
        return (status, headers, Body::empty()).into_response();
    }
    let cut_at = ctl
        .take_drop(names)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let body = body_stream(BodyState {
        data: body,
        pos: 0,
        cut_at,
        ctl: ctl.clone(),
        counter: counter.clone(),
        done: false,
    });
    (status, headers, body).into_response()
}

struct BodyState {
    data: Bytes,
    pos: usize,
    cut_at: Option<usize>,
    ctl: Control,
    counter: Arc<AtomicU64>,
    done: bool,
}

/// A body sent in chunks, at the `slow` rate, cut after `cut_at` bytes by an error (which makes
/// hyper drop the connection mid-body).
fn body_stream(state: BodyState) -> Body {
    Body::from_stream(futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        if st.cut_at.is_some_and(|cut| st.pos >= cut) {
            // Give hyper a moment to flush what was sent before the connection goes.
            tokio::time::sleep(Duration::from_millis(50)).await;
            st.done = true;
            let e = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "injected drop");
            return Some((Err(e), st));
        }
        if st.pos >= st.data.len() {
            return None;
        }
        let rate = st.ctl.rate();
        let mut n = if rate > 0 {
            usize::try_from(rate / 10).unwrap_or(CHUNK).clamp(1, CHUNK)
        } else {
            CHUNK
        };
        n = n.min(st.data.len() - st.pos);
        if let Some(cut) = st.cut_at {
            n = n.min(cut - st.pos);
        }
        if rate > 0 {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
        let chunk = st.data.slice(st.pos..st.pos + n);
        st.pos += n;
        st.counter.fetch_add(n as u64, Ordering::SeqCst);
        Some((Ok::<_, std::io::Error>(chunk), st))
    }))
}

pub(super) fn json_response(status: StatusCode, headers: HeaderMap, body: &Value) -> Response {
    let mut headers = headers;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    (status, headers, body.to_string()).into_response()
}

pub(super) fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap()
}

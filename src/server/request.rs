//! Every request's id, span and count. The outermost layer gives each request an id (the
//! client's `X-Request-Id` when it sent a sane one), runs it inside a `request{id=..}` span —
//! kept open while the body streams, so a generation's log lines carry the id too — returns the
//! id as `X-Request-Id`, logs one line per request, and counts it by method, route template and
//! status.
//!
//! Routing happens inside this layer, so the matched route is not known on the way in: an
//! inner route layer ([`remember_route`]) copies it onto the response for this layer to read.

use crate::metrics::Metrics;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: &str = "x-request-id";

/// The route label of requests no route matched (404s, and those refused before routing).
const NO_ROUTE: &str = "none";

pub async fn layer(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(req.headers());
    let method = method_label(req.method());
    let span = tracing::info_span!("request", id = %id, method, path = %req.uri().path());
    let mut res = next.run(req).instrument(span.clone()).await;
    let route = res
        .extensions()
        .get::<MatchedPath>()
        .map_or(NO_ROUTE, MatchedPath::as_str)
        .to_owned();
    let status = res.status();
    metrics
        .requests
        .get(&[method, &route, status.as_str()])
        .inc();
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            route = %route,
            ms = started.elapsed().as_millis() as u64,
            "request"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    res.map(|body| Body::new(InSpan { body, span }))
}

/// Puts the matched route template on the response (see the module header).
pub async fn remember_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let mut res = next.run(req).await;
    if let Some(route) = route {
        res.extensions_mut().insert(route);
    }
    res
}

/// The client's id when it is short and plain (so it is safe in logs and headers), else a new
/// random one.
fn request_id(headers: &HeaderMap) -> String {
    let given = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    match given {
        Some(s) => s.to_owned(),
        None => format!("{:016x}", rand::random::<u64>()),
    }
}

/// The method as a label; unknown methods share one value, so clients cannot grow the series.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// A response body polled inside the request's span.
struct InSpan {
    body: Body,
    span: tracing::Span,
}

impl HttpBody for InSpan {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let _entered = this.span.enter();
        Pin::new(&mut this.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_clients_when_plain_else_new() {
        let mut h = HeaderMap::new();
        assert_eq!(request_id(&h).len(), 16);
        assert_ne!(request_id(&h), request_id(&h));
        h.insert(REQUEST_ID, HeaderValue::from_static("trace-42_a.b:c"));
        assert_eq!(request_id(&h), "trace-42_a.b:c");
        for bad in ["has space", "quote\"", ""] {
            h.insert(REQUEST_ID, HeaderValue::from_str(bad).unwrap());
            assert_eq!(request_id(&h).len(), 16, "{bad:?} replaced");
        }
        h.insert(REQUEST_ID, HeaderValue::from_str(&"x".repeat(65)).unwrap());
        assert_eq!(request_id(&h).len(), 16, "too long");
    }

    #[test]
    fn odd_methods_share_a_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}

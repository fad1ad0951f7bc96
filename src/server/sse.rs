//! Server-sent events framing for the compatibility layers: OpenAI's `data:` lines ending with
//! `[DONE]`, and the named events (`event: <type>`) of Anthropic's and OpenAI's Responses APIs.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use futures_util::StreamExt;
use serde_json::Value;

/// `data: <json>` events, then `data: [DONE]` when `end`.
pub fn data_events(values: Vec<Value>, end: bool) -> impl Stream<Item = Bytes> {
    let mut lines: Vec<Bytes> = values
        .iter()
        .map(|v| Bytes::from(format!("data: {v}\n\n")))
        .collect();
    if end {
        lines.push(Bytes::from_static(b"data: [DONE]\n\n"));
    }
    stream::iter(lines)
}

/// One named event: `event: <name>` and its JSON data.
pub fn named(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// A `text/event-stream` response.
pub fn response<S>(events: S) -> Response
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(events.map(Ok::<Bytes, std::convert::Infallible>)),
    )
        .into_response()
}

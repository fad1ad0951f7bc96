//! The one place that writes NDJSON replies (`application/x-ndjson`), streaming or, with
//! `stream: false`, folded into one JSON object:
//! - [`respond`] for generation: a [`PieceStream`] becomes lines. An error before the first piece
//!   becomes a normal error response with its status; an error after it becomes a final
//!   `{"error": ...}` line. A stream never ends without a `done` or `error` line (ollama-js
//!   throws otherwise).
//! - [`progress`] for pull and create: progress lines, an error ending the stream as an
//!   `{"error": ...}` line (or, unstreamed, a 500).

use super::error::ServerError;
use super::infer::{Delta, DoneInfo, Piece, PieceStream};
use crate::api::{ErrorBody, ProgressResponse};
use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{Stream, StreamExt};
use serde::Serialize;

/// Builds the endpoint's wire object from a delta and, on the last line, the done info.
pub trait Chunk: Serialize + Send + 'static {
    fn build(model: &str, delta: Delta, done: Option<&DoneInfo>) -> Self;
}

/// Gathers a whole reply (`stream: false`): text and thinking concatenated, tool calls and
/// log probabilities in order.
pub fn merge(into: &mut Delta, d: Delta) {
    into.content.push_str(&d.content);
    into.thinking.push_str(&d.thinking);
    into.tool_calls.extend(d.tool_calls);
    into.logprobs.extend(d.logprobs);
}

/// A generation reply: NDJSON lines of `C` when `stream`, else the whole reply as one `C`.
pub async fn respond<C: Chunk>(model: String, stream: bool, mut pieces: PieceStream) -> Response {
    if !stream {
        let mut all = Delta::default();
        while let Some(p) = pieces.next().await {
            match p {
                Ok(Piece::Delta(d)) => merge(&mut all, d),
                Ok(Piece::Done(d)) => return Json(C::build(&model, all, Some(&d))).into_response(),
                Err(e) => return e.into_response(),
            }
        }
        return ServerError::Internal("the model stopped without finishing".into()).into_response();
    }
    // Wait for the first piece so that an early failure still gets its status code.
    let first = match pieces.next().await {
        Some(Err(e)) => return e.into_response(),
        Some(Ok(p)) => p,
        None => {
            return ServerError::Internal("the model stopped without finishing".into())
                .into_response()
        }
    };
    // The sentinel at the end is reached only if the stream stopped without done or error.
    let sentinel = futures_util::stream::once(async {
        Err(ServerError::Internal(
            "the model stopped without finishing".into(),
        ))
    });
    let lines = futures_util::stream::once(async move { Ok(first) })
        .chain(pieces)
        .chain(sentinel)
        .scan(false, move |finished, item| {
            if *finished {
                return std::future::ready(None);
            }
            let line = match item {
                Ok(Piece::Delta(delta)) => to_line(&C::build(&model, delta, None)),
                Ok(Piece::Done(d)) => {
                    *finished = true;
                    to_line(&C::build(&model, Delta::default(), Some(&d)))
                }
                Err(e) => {
                    *finished = true;
                    tracing::warn!(error = %e, "stream failed after it began");
                    to_line(&ErrorBody {
                        error: e.to_string(),
                    })
                }
            };
            std::future::ready(Some(line))
        });
    lines_response(lines)
}

/// A progress reply (pull, create): each item a line, an `Err` the last line. Unstreamed, the
/// last progress object, or a 500 with the error.
pub async fn progress<S>(stream: bool, mut items: S) -> Response
where
    S: Stream<Item = Result<ProgressResponse, String>> + Send + Unpin + 'static,
{
    if !stream {
        let mut last = ProgressResponse::default();
        while let Some(item) = items.next().await {
            match item {
                Ok(p) => last = p,
                Err(error) => {
                    return (StatusCode::INTERNAL_SERVER_ERROR, Json(ErrorBody { error }))
                        .into_response()
                }
            }
        }
        return Json(last).into_response();
    }
    lines_response(items.map(|item| match item {
        Ok(p) => to_line(&p),
        Err(error) => to_line(&ErrorBody { error }),
    }))
}

/// The response around a stream of finished lines.
fn lines_response(lines: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines.map(Ok::<Bytes, std::convert::Infallible>)),
    )
        .into_response()
}

fn to_line<T: Serialize>(v: &T) -> Bytes {
    let mut b =
        serde_json::to_vec(v).unwrap_or_else(|_| b"{\"error\":\"serialization failed\"}".to_vec());
    b.push(b'\n');
    Bytes::from(b)
}

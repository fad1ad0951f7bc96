//! Turning a [`PieceStream`] into a reply: NDJSON lines (`application/x-ndjson`) when streaming,
//! one JSON object otherwise. An error before the first piece becomes a normal error response
//! with its status; an error after it becomes a final `{"error": ...}` line. A stream never ends
//! without a `done` or `error` line (ollama-js throws otherwise).

use super::error::ServerError;
use super::infer::{Delta, DoneInfo, Piece, PieceStream};
use crate::api::ErrorBody;
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
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
        })
        .map(Ok::<Bytes, std::convert::Infallible>);
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

fn to_line<T: Serialize>(v: &T) -> Bytes {
    let mut b =
        serde_json::to_vec(v).unwrap_or_else(|_| b"{\"error\":\"serialization failed\"}".to_vec());
    b.push(b'\n');
    Bytes::from(b)
}

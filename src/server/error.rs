//! `ServerError`: every way a request can fail, and the one place that maps failures to HTTP
//! status codes and Ollama's `{"error": "..."}` body.

use crate::api::ErrorBody;
use crate::runner::RunnerError;
use crate::scheduler::SchedulerError;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("missing request body")]
    MissingBody,
    #[error("{0}")]
    BadRequest(String),
    /// A request body over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// A 404 whose message is already in the endpoint's own wording.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error("{0}")]
    Internal(String),
}

impl ServerError {
    pub fn status(&self) -> StatusCode {
        match self {
            ServerError::MissingBody | ServerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServerError::NotFound(_) => StatusCode::NOT_FOUND,
            ServerError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServerError::Store(e) => match e {
                StoreError::InvalidName | StoreError::NotLoadable { .. } => StatusCode::BAD_REQUEST,
                StoreError::NotFound(_) => StatusCode::NOT_FOUND,
                StoreError::Corrupt(_) | StoreError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ServerError::Scheduler(SchedulerError::QueueFull | SchedulerError::ShuttingDown) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            // Ollama answers a model that cannot fit with a 500.
            ServerError::Scheduler(SchedulerError::Memory { .. }) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ServerError::Scheduler(SchedulerError::Runner(e)) | ServerError::Runner(e) => {
                runner_status(e)
            }
            ServerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

fn runner_status(e: &RunnerError) -> StatusCode {
    match e {
        RunnerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        RunnerError::Rejected { status, .. } => {
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
        }
        RunnerError::Spawn(_)
        | RunnerError::Load { .. }
        | RunnerError::Exited { .. }
        | RunnerError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The most characters of an error message a response carries: some messages quote the input
/// (a JSON type error quotes the value), and a 20 MB field must not come back as a 20 MB error.
const MAX_MESSAGE_CHARS: usize = 1024;

impl ServerError {
    /// The text clients see: the error's message, cut at `MAX_MESSAGE_CHARS` characters.
    pub fn message(&self) -> String {
        let full = self.to_string();
        match full.char_indices().nth(MAX_MESSAGE_CHARS) {
            None => full,
            Some((at, _)) => format!("{}… ({} bytes cut)", &full[..at], full.len() - at),
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request refused");
        }
        (
            status,
            Json(ErrorBody {
                error: self.message(),
            }),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut() {
        let short = ServerError::BadRequest("model is required".into());
        assert_eq!(short.message(), "model is required");
        let huge = ServerError::BadRequest(format!("invalid value: \"{}\"", "é".repeat(5_000_000)));
        let m = huge.message();
        assert!(m.chars().count() < MAX_MESSAGE_CHARS + 40, "{}", m.len());
        let cut = huge.to_string().len() - (16 + 2 * (MAX_MESSAGE_CHARS - 16));
        assert!(m.starts_with("invalid value: \"éé"));
        assert!(
            m.ends_with(&format!("… ({cut} bytes cut)")),
            "{}",
            &m[m.len() - 40..]
        );
    }

    #[test]
    fn status_codes() {
        assert_eq!(ServerError::MissingBody.status(), 400);
        assert_eq!(
            ServerError::Store(StoreError::NotFound("x".into())).status(),
            404
        );
        assert_eq!(
            ServerError::Store(StoreError::NotFound("x".into())).to_string(),
            "model 'x' not found"
        );
        assert_eq!(
            ServerError::Scheduler(SchedulerError::QueueFull).status(),
            503
        );
        assert_eq!(
            ServerError::Runner(RunnerError::Rejected {
                status: 400,
                message: "too long".into()
            })
            .status(),
            400
        );
        assert_eq!(
            ServerError::Runner(RunnerError::Exited {
                last_error: String::new()
            })
            .status(),
            500
        );
        assert_eq!(
            ServerError::Runner(RunnerError::Unavailable("installing".into())).status(),
            503
        );
    }
}

//! HTTP to a runner process, shared by both runners: the bearer token, JSON calls, the mapping of
//! replies and transport failures to [`RunnerError`], and the line stream of a completion.

use super::process::{ChildProcess, LogRing};
use super::{EventStream, RunnerError, RunnerEvent};
use futures_util::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::codec::{FramedRead, LinesCodec};
use tokio_util::io::StreamReader;

/// Lines longer than this are a protocol error (Ollama's scanner limit).
const MAX_LINE: usize = 8 * 1024 * 1024;

/// Turns one line of a runner's stream into events (none for keep-alive or comment lines).
pub type LineParser = Box<dyn FnMut(&str) -> Result<Vec<RunnerEvent>, RunnerError> + Send>;

#[derive(Clone)]
pub struct Endpoint {
    pub base: String,
    token: String,
    http: reqwest::Client,
    exit: watch::Receiver<Option<ExitStatus>>,
    log: Arc<LogRing>,
}

impl Endpoint {
    pub fn new(
        process: &ChildProcess,
        base: String,
        token: String,
    ) -> Result<Endpoint, RunnerError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| RunnerError::Spawn(e.to_string()))?;
        Ok(Endpoint {
            base,
            token,
            http,
            exit: process.clone_exit_watch(),
            log: process.log_handle(),
        })
    }

    /// A GET with a short timeout, for health polls: `None` when nothing answered.
    pub async fn probe(&self, path: &str) -> Option<(u16, serde_json::Value)> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.json().await.unwrap_or_default()))
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, RunnerError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Err(self.transport_error(e).await),
        };
        self.decode(resp).await
    }

    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, RunnerError> {
        let resp = self.post(path, body).await?;
        self.decode(resp).await
    }

    /// A POST whose reply status has been checked. A request that could not be sent at all is
    /// sent once more on a fresh connection while the runner lives: a pooled keep-alive
    /// connection the runner closed at the same moment (llama-server does so after a stream)
    /// fails that way before the runner has read anything, so the retry cannot run it twice.
    pub async fn post<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<reqwest::Response, RunnerError> {
        let send = || {
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .json(body)
                .send()
        };
        let resp = match send().await {
            Err(e) if unsent(&e) && self.exit.borrow().is_none() => {
                tracing::debug!(path, error = %e, "resending a request the runner never read");
                send().await
            }
            other => other,
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Err(self.transport_error(e).await),
        };
        check_status(resp).await
    }

    async fn decode<T: DeserializeOwned>(&self, resp: reqwest::Response) -> Result<T, RunnerError> {
        resp.json()
            .await
            .map_err(|e| RunnerError::Failed(format!("bad reply from the model runner: {e}")))
    }

    /// A failed connection or read: the runner died, or something broke in between. A runner
    /// that aborts mid-request (llama.cpp losing an rpc-server) drops the connection a moment
    /// before its exit is seen: wait for it as a stream cut short does.
    async fn transport_error(&self, e: impl std::fmt::Display) -> RunnerError {
        self.cut_short(e.to_string()).await
    }

    /// The events of a streamed reply, one line at a time. The stream owns the HTTP response:
    /// dropping it closes the connection, and the runner stops the sequence. It ends after the
    /// `Done` event; a stream cut before it is an error that says whether the runner died.
    pub fn events(&self, resp: reqwest::Response, parse: LineParser) -> EventStream {
        let bytes = resp.bytes_stream().map_err(std::io::Error::other);
        let lines = FramedRead::new(
            StreamReader::new(bytes),
            LinesCodec::new_with_max_length(MAX_LINE),
        );
        let me = self.clone();
        futures_util::stream::unfold(
            (lines, parse, std::collections::VecDeque::new(), false),
            move |(mut lines, mut parse, mut pending, mut finished)| {
                let me = me.clone();
                async move {
                    loop {
                        if let Some(ev) = pending.pop_front() {
                            finished |= matches!(ev, RunnerEvent::Done(_));
                            return Some((Ok(ev), (lines, parse, pending, finished)));
                        }
                        if finished {
                            return None;
                        }
                        let err = match lines.next().await {
                            Some(Ok(line)) => match parse(&line) {
                                Ok(evs) => {
                                    pending.extend(evs);
                                    continue;
                                }
                                Err(e) => e,
                            },
                            Some(Err(e)) => me.cut_short(e.to_string()).await,
                            None => {
                                me.cut_short("the stream ended without a final event".into())
                                    .await
                            }
                        };
                        return Some((Err(err), (lines, parse, pending, true)));
                    }
                }
            },
        )
        .boxed()
    }

    async fn cut_short(&self, what: String) -> RunnerError {
        // Give the reaper a moment: a killed runner's socket closes just before its exit status
        // is collected.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if self.exit.borrow().is_some() {
            RunnerError::Exited {
                last_error: self.log.last_error(),
            }
        } else {
            RunnerError::Failed(what)
        }
    }
}

/// Whether a request failed before any reply (connecting or writing it), as opposed to a
/// timeout or a broken reply.
fn unsent(e: &reqwest::Error) -> bool {
    (e.is_connect() || e.is_request()) && !e.is_timeout() && !e.is_body() && !e.is_decode()
}

/// Maps a non-2xx reply to the error it carries (`{"error": "..."}` or llama-server's
/// `{"error": {"message": ...}}`).
async fn check_status(resp: reqwest::Response) -> Result<reqwest::Response, RunnerError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let text = resp.text().await.unwrap_or_default();
    let message = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => match &v["error"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(o) => o
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or(&text)
                .to_owned(),
            _ => text,
        },
        Err(_) => text,
    };
    // 501: the runner cannot do what was asked (`format` without llguidance), which the client
    // should hear as such, not as the runner failing.
    Err(
        if status.is_client_error() || status == reqwest::StatusCode::NOT_IMPLEMENTED {
            RunnerError::Rejected {
                status: status.as_u16(),
                message,
            }
        } else {
            RunnerError::Failed(message)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> reqwest::Response {
        reqwest::Response::from(
            axum::http::Response::builder()
                .status(status)
                .body(body.to_owned())
                .unwrap(),
        )
    }

    #[tokio::test]
    async fn refusals_keep_their_status_and_failures_are_failures() {
        let err = check_status(reply(501, r#"{"error": "needs llguidance"}"#))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RunnerError::Rejected { status: 501, message } if message == "needs llguidance"),
            "{err:?}"
        );
        let err = check_status(reply(400, r#"{"error": {"message": "bad"}}"#))
            .await
            .unwrap_err();
        assert!(matches!(&err, RunnerError::Rejected { status: 400, message } if message == "bad"));
        let err = check_status(reply(500, "boom")).await.unwrap_err();
        assert!(
            matches!(&err, RunnerError::Failed(m) if m == "boom"),
            "{err:?}"
        );
    }
}

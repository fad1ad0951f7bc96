//! The HTTP client the CLI uses to talk to a running daemon, the counterpart of Ollama's
//! `api/client.go`. It speaks only the wire types of [`crate::api`].
//!
//! Error handling follows Ollama's clients:
//! - a non-2xx reply carries `{"error": "..."}`, which becomes [`ClientError::Status`];
//! - streaming replies are NDJSON, and **any** line with an `"error"` key is an error, even with
//!   status 200 (the server reports failures after the first byte that way);
//! - a stream that ends without a line with `"done": true` is an error too (ollama-js rejects it
//!   the same way), so a daemon that dies mid-answer is never mistaken for a short answer.
//!
//! Streams are cancelled by dropping them: that drops the response body and closes the
//! connection, and the daemon stops generating.

use crate::api::{
    ChatRequest, ChatResponse, CopyRequest, CreateRequest, DeleteRequest, ErrorBody,
    GenerateRequest, GenerateResponse, ListResponse, ProcessResponse, ProgressResponse,
    PullRequest, ShowRequest, ShowResponse, VersionResponse,
};
use futures_util::{Stream, StreamExt, TryStreamExt};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};
use tokio_util::io::StreamReader;

/// The longest NDJSON line accepted, as Ollama's client (`bufio.Scanner` with an 8 MiB buffer).
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// Everything that can go wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing is listening at the configured address (or it cannot be resolved).
    #[error("could not connect to ollmlx server, run 'ollmlx serve' to start it")]
    Connect {
        /// The underlying error, kept for debugging; not shown in the message.
        cause: reqwest::Error,
    },
    /// The daemon answered with a non-2xx status. `message` is its `error` text, shown alone as
    /// Ollama's CLI does (`Error: model 'x' not found`).
    #[error("{message}")]
    Status { status: StatusCode, message: String },
    /// A `{"error": "..."}` line in the middle of a stream.
    #[error("{0}")]
    Stream(String),
    /// The stream ended without a final `"done": true` line.
    #[error("the server closed the stream before the final response (no \"done\": true)")]
    Incomplete,
    /// A progress stream (create) ended without a `"status": "success"` line.
    #[error("the server closed the stream before it reported success")]
    NoSuccess,
    /// A local file to upload could not be read.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line or body that is not the JSON we expect.
    #[error("invalid response from server")]
    Decode(#[source] serde_json::Error),
    /// An NDJSON line longer than [`MAX_LINE_BYTES`].
    #[error("response line longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    /// The connection failed while reading a streamed body.
    #[error("error reading response")]
    Read(#[source] std::io::Error),
    /// Any other transport failure.
    #[error(transparent)]
    Http(reqwest::Error),
}

impl ClientError {
    /// The HTTP status of a [`ClientError::Status`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the daemon said the model does not exist (404).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// One line of a streamed reply: it knows whether it is the last.
pub trait StreamItem: DeserializeOwned {
    /// `true` on the final line (`"done": true`).
    fn is_done(&self) -> bool;

    /// The error for a stream that ends before its final line.
    fn incomplete() -> ClientError {
        ClientError::Incomplete
    }
}

impl StreamItem for GenerateResponse {
    fn is_done(&self) -> bool {
        self.done
    }
}

impl StreamItem for ChatResponse {
    fn is_done(&self) -> bool {
        self.done
    }
}

/// Progress streams (create, pull) end with `{"status": "success"}`.
impl StreamItem for ProgressResponse {
    fn is_done(&self) -> bool {
        self.status == "success"
    }

    fn incomplete() -> ClientError {
        ClientError::NoSuccess
    }
}

/// A client of one daemon. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for `OLLAMA_HOST` syntax (`[scheme://]host[:port]`), parsed as Ollama does.
    pub fn from_host(host: &str) -> Client {
        Client::new(crate::config::HostSpec::parse(host).client_url())
    }

    /// A client for a base URL such as `http://127.0.0.1:11434`.
    pub fn new(base_url: impl Into<String>) -> Client {
        let base = base_url.into().trim_end_matches('/').to_owned();
        let mut builder = reqwest::Client::builder().user_agent(format!(
            "ollmlx/{} ({} {})",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            std::env::consts::OS
        ));
        // Go's ProxyFromEnvironment never proxies loopback; reqwest would, if HTTP_PROXY is set.
        if is_loopback(&base) {
            builder = builder.no_proxy();
        }
        let http = builder.build().unwrap_or_else(|_| reqwest::Client::new());
        Client { base, http }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `HEAD /`: succeeds when a daemon is up.
    pub async fn heartbeat(&self) -> Result<()> {
        send(self.http.head(self.url("/"))).await.map(drop)
    }

    /// `GET /api/version`: the Ollama version the daemon reports.
    pub async fn version(&self) -> Result<String> {
        let v: VersionResponse = json(self.http.get(self.url("/api/version"))).await?;
        Ok(v.version)
    }

    /// `GET /api/tags`: the local models.
    pub async fn list(&self) -> Result<ListResponse> {
        json(self.http.get(self.url("/api/tags"))).await
    }

    /// `GET /api/ps`: the loaded models.
    pub async fn ps(&self) -> Result<ProcessResponse> {
        json(self.http.get(self.url("/api/ps"))).await
    }

    /// `POST /api/show`.
    pub async fn show(&self, req: &ShowRequest) -> Result<ShowResponse> {
        json(self.http.post(self.url("/api/show")).json(req)).await
    }

    /// `DELETE /api/delete`.
    pub async fn delete(&self, model: &str) -> Result<()> {
        let req = DeleteRequest {
            model: model.to_owned(),
            ..Default::default()
        };
        send(self.http.delete(self.url("/api/delete")).json(&req))
            .await
            .map(drop)
    }

    /// `POST /api/generate`, streamed. The stream yields every line up to and including the one
    /// with `done: true`, or ends with one error.
    pub fn generate(
        &self,
        req: &GenerateRequest,
    ) -> impl Stream<Item = Result<GenerateResponse>> + Send + 'static {
        self.ndjson("/api/generate", req)
    }

    /// `POST /api/chat`, streamed; see [`Client::generate`].
    pub fn chat(
        &self,
        req: &ChatRequest,
    ) -> impl Stream<Item = Result<ChatResponse>> + Send + 'static {
        self.ndjson("/api/chat", req)
    }

    /// `HEAD /api/blobs/<digest>`: whether the daemon already holds the blob (`sha256:<hex>`).
    pub async fn blob_exists(&self, digest: &str) -> Result<bool> {
        let url = self.url(&format!("/api/blobs/{digest}"));
        let response = self.http.head(url).send().await.map_err(transport_error)?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            // A HEAD reply has no body to carry the daemon's message.
            status => Err(ClientError::Status {
                status,
                message: status.to_string(),
            }),
        }
    }

    /// `POST /api/blobs/<digest>` with the bytes of the file at `path`, streamed from disk (never
    /// held in memory whole). The daemon checks them against `digest`.
    pub async fn upload_blob(&self, digest: &str, path: &Path) -> Result<()> {
        self.upload_blob_counted(digest, path, Arc::default()).await
    }

    /// [`Client::upload_blob`], adding to `sent` the bytes read from the file as the body goes.
    pub async fn upload_blob_counted(
        &self,
        digest: &str,
        path: &Path,
        sent: Arc<AtomicU64>,
    ) -> Result<()> {
        let file_error = |source| ClientError::File {
            path: path.to_owned(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(file_error)?;
        let len = file.metadata().await.map_err(file_error)?.len();
        let body =
            tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).inspect_ok(move |chunk| {
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            });
        let request = self
            .http
            .post(self.url(&format!("/api/blobs/{digest}")))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(body));
        send(request).await.map(drop)
    }

    /// `POST /api/create`, streamed: every progress line up to and including
    /// `{"status": "success"}`, or ending with one error (an `error` line, or
    /// [`ClientError::NoSuccess`] when the stream stops short).
    pub fn create(
        &self,
        req: &CreateRequest,
    ) -> impl Stream<Item = Result<ProgressResponse>> + Send + 'static {
        self.ndjson("/api/create", req)
    }

    /// `POST /api/pull`, streamed: every progress line up to and including
    /// `{"status": "success"}`, or ending with one error (an `error` line, or
    /// [`ClientError::NoSuccess`] when the stream stops short). Dropping the stream closes the
    /// connection, which cancels the pull on the daemon (what it downloaded is kept for a resume).
    pub fn pull(
        &self,
        model: &str,
        insecure: bool,
    ) -> impl Stream<Item = Result<ProgressResponse>> + Send + 'static {
        let req = PullRequest {
            model: model.to_owned(),
            insecure,
            stream: Some(true),
            ..Default::default()
        };
        self.ndjson("/api/pull", &req)
    }

    /// `POST /api/push`, streamed: every progress line up to and including
    /// `{"status": "success"}`, or ending with one error. The body is a pull request's (`model`,
    /// `insecure`, `stream`), as Ollama's `PushRequest` is.
    pub fn push(
        &self,
        model: &str,
        insecure: bool,
    ) -> impl Stream<Item = Result<ProgressResponse>> + Send + 'static {
        let req = PullRequest {
            model: model.to_owned(),
            insecure,
            stream: Some(true),
            ..Default::default()
        };
        self.ndjson("/api/push", &req)
    }

    /// `POST /api/copy`.
    pub async fn copy(&self, source: &str, destination: &str) -> Result<()> {
        let req = CopyRequest {
            source: source.to_owned(),
            destination: destination.to_owned(),
        };
        send(self.http.post(self.url("/api/copy")).json(&req))
            .await
            .map(drop)
    }

    fn ndjson<T: StreamItem + Send + 'static>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> impl Stream<Item = Result<T>> + Send + 'static {
        let request = self
            .http
            .post(self.url(path))
            .header(reqwest::header::ACCEPT, "application/x-ndjson")
            .json(body);
        ndjson_stream(Box::pin(send(request)))
    }
}

fn is_loopback(base: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base) else {
        return false;
    };
    let host = url.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Sends a request and turns transport failures and non-2xx replies into [`ClientError`]s.
async fn send(request: RequestBuilder) -> Result<Response> {
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.bytes().await.unwrap_or_default();
    let message = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(e) => e.error,
        Err(_) => {
            let text = String::from_utf8_lossy(&body).trim().to_owned();
            if text.is_empty() {
                status.to_string()
            } else {
                text
            }
        }
    };
    Err(ClientError::Status { status, message })
}

/// Sends a request and decodes a JSON body.
async fn json<T: DeserializeOwned>(request: RequestBuilder) -> Result<T> {
    let body = send(request)
        .await?
        .bytes()
        .await
        .map_err(transport_error)?;
    serde_json::from_slice(&body).map_err(ClientError::Decode)
}

fn transport_error(e: reqwest::Error) -> ClientError {
    if e.is_connect() {
        ClientError::Connect { cause: e }
    } else {
        ClientError::Http(e)
    }
}

type Lines = FramedRead<
    StreamReader<Pin<Box<dyn Stream<Item = std::io::Result<bytes::Bytes>> + Send>>, bytes::Bytes>,
    LinesCodec,
>;

enum State {
    Connecting(Pin<Box<dyn Future<Output = Result<Response>> + Send>>),
    Reading(Lines),
    Finished,
}

/// Turns a pending NDJSON response into a stream of decoded lines (see the module docs).
fn ndjson_stream<T: StreamItem + Send + 'static>(
    response: Pin<Box<dyn Future<Output = Result<Response>> + Send>>,
) -> impl Stream<Item = Result<T>> + Send + 'static {
    futures_util::stream::unfold(State::Connecting(response), |state| async move {
        let mut lines = match state {
            State::Finished => return None,
            State::Reading(lines) => lines,
            State::Connecting(response) => match response.await {
                Ok(response) => lines_of(response),
                Err(e) => return Some((Err(e), State::Finished)),
            },
        };
        loop {
            let line = match lines.next().await {
                None => return Some((Err(T::incomplete()), State::Finished)),
                Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                    return Some((Err(ClientError::LineTooLong), State::Finished))
                }
                Some(Err(LinesCodecError::Io(e))) => {
                    return Some((Err(ClientError::Read(e)), State::Finished))
                }
                Some(Ok(line)) => line,
            };
            if line.trim().is_empty() {
                continue;
            }
            return Some(match parse_line::<T>(&line) {
                Ok(item) if item.is_done() => (Ok(item), State::Finished),
                Ok(item) => (Ok(item), State::Reading(lines)),
                Err(e) => (Err(e), State::Finished),
            });
        }
    })
}

fn lines_of(response: Response) -> Lines {
    let body: Pin<Box<dyn Stream<Item = std::io::Result<bytes::Bytes>> + Send>> =
        Box::pin(response.bytes_stream().map_err(std::io::Error::other));
    FramedRead::new(
        StreamReader::new(body),
        LinesCodec::new_with_max_length(MAX_LINE_BYTES),
    )
}

/// One NDJSON line: an `{"error": ...}` object is an error whatever else it holds.
fn parse_line<T: DeserializeOwned>(line: &str) -> Result<T> {
    let value: Value = serde_json::from_str(line).map_err(ClientError::Decode)?;
    if let Some(error) = value.get("error") {
        let message = match error {
            Value::String(s) => s.clone(),
            Value::Object(o) => match o.get("message") {
                Some(Value::String(s)) => s.clone(),
                _ => error.to_string(),
            },
            other => other.to_string(),
        };
        return Err(ClientError::Stream(message));
    }
    serde_json::from_value(value).map_err(ClientError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Message;
    use axum::body::Body;
    use axum::http::{header, StatusCode as Code};
    use axum::response::{IntoResponse, Response as AxumResponse};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use futures_util::StreamExt;

    /// Serves `app` on an ephemeral loopback port; returns its base URL.
    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn ndjson(chunks: Vec<String>) -> AxumResponse {
        let stream =
            futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>));
        (
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            Body::from_stream(stream),
        )
            .into_response()
    }

    fn chunk(content: &str, done: bool) -> String {
        format!(
            "{{\"model\":\"m\",\"created_at\":\"2024-12-06T00:48:09.983619Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"{content}\"}},\"done\":{done}{}}}\n",
            if done { ",\"done_reason\":\"stop\",\"eval_count\":3,\"eval_duration\":1500000" } else { "" }
        )
    }

    /// `/api/chat` whose behaviour is picked by the model name.
    async fn chat_handler(Json(req): Json<ChatRequest>) -> AxumResponse {
        match req.model.as_str() {
            "ok" => ndjson(vec![
                chunk("Hel", false),
                chunk("lo", false),
                chunk("", true),
            ]),
            // One JSON line split across body chunks, and a blank line: both must be handled.
            "split" => {
                let line = chunk("whole", false);
                let (a, b) = line.split_at(17);
                ndjson(vec![a.into(), b.into(), "\n".into(), chunk("", true)])
            }
            "error-mid" => ndjson(vec![chunk("Hel", false), "{\"error\":\"boom\"}\n".into()]),
            "no-done" => ndjson(vec![chunk("Hel", false)]),
            "garbage" => ndjson(vec!["not json\n".into()]),
            "huge" => ndjson(vec![format!("\"{}\"\n", "x".repeat(MAX_LINE_BYTES + 10))]),
            "missing" => (
                Code::NOT_FOUND,
                Json(serde_json::json!({"error": "model 'missing' not found"})),
            )
                .into_response(),
            "plain-500" => (Code::INTERNAL_SERVER_ERROR, "").into_response(),
            other => panic!("unexpected model {other}"),
        }
    }

    async fn app() -> Client {
        let app = Router::new()
            .route("/", get(|| async { "Ollama is running" }))
            .route("/api/version", get(|| async { Json(serde_json::json!({"version": "0.33.0"})) }))
            .route("/api/chat", post(chat_handler))
            .route(
                "/api/generate",
                post(|| async {
                    ndjson(vec![
                        "{\"model\":\"m\",\"created_at\":\"t\",\"response\":\"\",\"done\":true,\"done_reason\":\"load\"}\n"
                            .into(),
                    ])
                }),
            )
            .route(
                "/api/show",
                post(|| async {
                    (Code::NOT_FOUND, Json(serde_json::json!({"error": "model 'nope' not found"})))
                }),
            );
        Client::new(serve(app).await)
    }

    fn chat_req(model: &str) -> ChatRequest {
        ChatRequest {
            model: model.into(),
            messages: Some(vec![Message::new("user", "hi")]),
            ..Default::default()
        }
    }

    async fn collect(client: &Client, model: &str) -> Vec<Result<ChatResponse>> {
        client.chat(&chat_req(model)).collect().await
    }

    #[tokio::test]
    async fn chat_stream_yields_every_line_through_done() {
        let client = app().await;
        let items = collect(&client, "ok").await;
        assert_eq!(items.len(), 3);
        let items: Vec<ChatResponse> = items.into_iter().map(Result::unwrap).collect();
        let text: String = items.iter().map(|c| c.message.content.as_str()).collect();
        assert_eq!(text, "Hello");
        let last = items.last().unwrap();
        assert!(last.done);
        assert_eq!(last.done_reason.as_deref(), Some("stop"));
        assert_eq!(last.metrics.eval_count, 3);
    }

    #[tokio::test]
    async fn lines_split_across_chunks_are_reassembled_and_blank_lines_skipped() {
        let client = app().await;
        let items = collect(&client, "split").await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap().message.content, "whole");
        assert!(items[1].as_ref().unwrap().done);
    }

    #[tokio::test]
    async fn error_line_mid_stream_ends_the_stream_with_that_error() {
        let client = app().await;
        let items = collect(&client, "error-mid").await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap().message.content, "Hel");
        let err = items[1].as_ref().unwrap_err();
        assert!(
            matches!(err, ClientError::Stream(m) if m == "boom"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "boom");
    }

    #[tokio::test]
    async fn stream_without_done_is_an_error() {
        let client = app().await;
        let items = collect(&client, "no-done").await;
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(
            matches!(items[1], Err(ClientError::Incomplete)),
            "{:?}",
            items[1]
        );
    }

    #[tokio::test]
    async fn undecodable_and_oversized_lines_are_errors() {
        let client = app().await;
        let items = collect(&client, "garbage").await;
        assert!(
            matches!(items.as_slice(), [Err(ClientError::Decode(_))]),
            "{items:?}"
        );
        let items = collect(&client, "huge").await;
        assert!(
            matches!(items.as_slice(), [Err(ClientError::LineTooLong)]),
            "{items:?}"
        );
    }

    #[tokio::test]
    async fn non_2xx_json_error_carries_status_and_message() {
        let client = app().await;
        let items = collect(&client, "missing").await;
        match items.as_slice() {
            [Err(e @ ClientError::Status { status, message })] => {
                assert_eq!(*status, StatusCode::NOT_FOUND);
                assert_eq!(message, "model 'missing' not found");
                assert!(e.is_not_found());
                assert_eq!(e.to_string(), "model 'missing' not found");
            }
            other => panic!("{other:?}"),
        }
        // Non-streaming endpoints report it the same way.
        let req = ShowRequest {
            model: "nope".into(),
            ..Default::default()
        };
        let err = client.show(&req).await.unwrap_err();
        assert!(err.is_not_found());
        assert_eq!(err.to_string(), "model 'nope' not found");
        // A body that is not JSON falls back to the status line.
        let items = collect(&client, "plain-500").await;
        match items.as_slice() {
            [Err(ClientError::Status { status, message })] => {
                assert_eq!(*status, StatusCode::INTERNAL_SERVER_ERROR);
                assert_eq!(message, "500 Internal Server Error");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn heartbeat_version_and_generate() {
        let client = app().await;
        client.heartbeat().await.unwrap();
        assert_eq!(client.version().await.unwrap(), "0.33.0");
        let req = GenerateRequest {
            model: "m".into(),
            ..Default::default()
        };
        let items: Vec<_> = client.generate(&req).collect().await;
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].as_ref().unwrap().done_reason.as_deref(),
            Some("load")
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error_with_ollamas_advice() {
        // Bind then drop: the port is free, so the connection is refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = Client::from_host(&addr.to_string());
        assert_eq!(client.base_url(), format!("http://{addr}"));
        let err = client.heartbeat().await.unwrap_err();
        assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "could not connect to ollmlx server, run 'ollmlx serve' to start it"
        );
        let items: Vec<_> = client.chat(&chat_req("ok")).collect().await;
        assert!(matches!(
            items.as_slice(),
            [Err(ClientError::Connect { .. })]
        ));
    }

    #[test]
    fn loopback_hosts_bypass_proxies() {
        assert!(is_loopback("http://127.0.0.1:11434"));
        assert!(is_loopback("http://localhost:1"));
        assert!(is_loopback("http://[::1]:2"));
        assert!(!is_loopback("http://example.com:11434"));
        assert!(!is_loopback("not a url"));
    }
}

//! Accepting connections: HTTP/1.1 and HTTP/2 (cleartext, prior knowledge) on the listener,
//! with the timeouts `axum::serve` does not set, and graceful shutdown.
//!
//! A client that opens a connection and never finishes sending a request head, or stalls in
//! the middle of a body, would otherwise hold its connection (and a task) for ever: a handful of
//! such "slow loris" clients keep the daemon's file descriptors. So:
//! - a request head must arrive within [`Timeouts::header`] of the connection being ready for
//!   one (which also closes keep-alive connections idle for that long, as most servers do);
//! - a request body that sends nothing for [`Timeouts::body_idle`] fails the request (a
//!   stalled upload), while a long but steady upload is never cut.
//!
//! Responses are not limited: a non-streaming generation may legitimately write nothing for
//! minutes, and a client that reads slowly only slows itself.

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub body_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(30),
            body_idle: Duration::from_secs(60),
        }
    }
}

/// Serves `app` on `listener` until `shutdown`; then stops accepting and waits for the open
/// connections to finish (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    timeouts: Timeouts,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(timeouts.header));
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let idle = timeouts.body_idle;
        let app = app
            .clone()
            .map_request(move |req: axum::http::Request<Incoming>| {
                req.map(|body| Body::new(IdleTimeout::new(body, idle)))
            });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(app))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A request body that fails when no data arrives for `idle`.
struct IdleTimeout {
    inner: Incoming,
    idle: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl IdleTimeout {
    fn new(inner: Incoming, idle: Duration) -> Self {
        IdleTimeout {
            inner,
            idle,
            sleep: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body stalled: nothing arrived for {0:?}")]
pub struct BodyStalled(Duration);

impl HttpBody for IdleTimeout {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Some(Err(BodyStalled(idle).into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use std::io::{Read, Write};
    use std::time::Instant;

    async fn start(timeouts: Timeouts) -> (std::net::SocketAddr, CancellationToken) {
        let app = Router::new().route(
            "/echo",
            post(|body: Bytes| async move { format!("{}", body.len()) }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        tokio::spawn(serve(listener, app, token.clone(), timeouts));
        (addr, token)
    }

    /// Reads until the server closes the connection; returns what it sent and how long it took.
    fn read_to_close(mut s: std::net::TcpStream) -> (String, Duration) {
        let t = Instant::now();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        (String::from_utf8_lossy(&out).into_owned(), t.elapsed())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_head_that_never_ends_is_cut_and_a_stalled_body_fails() {
        let timeouts = Timeouts {
            header: Duration::from_millis(500),
            body_idle: Duration::from_millis(500),
        };
        let (addr, token) = start(timeouts).await;
        let (sent, took) = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            read_to_close(s)
        })
        .await
        .unwrap();
        assert!(took < Duration::from_secs(10), "held {took:?}: {sent}");
        // A body that promises 10 bytes and sends 3.
        let (sent, took) = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc")
                .unwrap();
            read_to_close(s)
        })
        .await
        .unwrap();
        assert!(took < Duration::from_secs(10), "held {took:?}: {sent}");
        assert!(sent.starts_with("HTTP/1.1 400"), "{sent}");
        // A well-behaved request on a fresh connection is answered.
        let sent = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
                .unwrap();
            read_to_close(s).0
        })
        .await
        .unwrap();
        assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
        assert!(sent.ends_with("\r\n3"), "{sent}");
        token.cancel();
    }
}

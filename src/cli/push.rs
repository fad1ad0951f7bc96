//! `ollmlx push MODEL [--insecure]`, as `ollama push` (`cmd.PushHandler`): sends
//! `POST /api/push` and shows its progress on stderr until `success`, then where the model is.
//!
//! The stream (docs: ollama-api.md §5.5) is `retrieving manifest`, then per blob
//! `{"status": "pushing <12 hex>", "digest": ..., "total": N, "completed": M}`, then
//! `pushing manifest`, `success`. As Ollama's CLI: each digest gets a bar labelled by the status
//! it first came with (`pushing <12 hex>...` when it had none), every other change of status a
//! spinner line; [`super::progress`] draws them (plain lines off a terminal).
//!
//! Ctrl-C closes the request and exits with status 130. A registry that refuses us gets
//! Ollama's advice about namespaces.

use super::progress::Progress;
use super::pull::INTERRUPTED;
use super::Printer;
use crate::api::ProgressResponse;
use crate::client::Client;
use crate::store::name::ModelName;
use clap::Args;
use futures_util::StreamExt;
use std::future::Future;
use std::io;
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// Name of the model to push (`host/namespace/model:tag`).
    pub model: String,
    /// Use an insecure registry
    #[arg(long)]
    pub insecure: bool,
}

pub async fn run(args: PushArgs, client: &Client, p: &Printer) -> anyhow::Result<ExitCode> {
    let mut display = Progress::stderr(p);
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    push_with(client, &args, p, &mut display, interrupt).await
}

async fn push_with(
    client: &Client,
    args: &PushArgs,
    p: &Printer,
    display: &mut Progress<'_>,
    interrupt: impl Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    let mut stream = Box::pin(client.push(&args.model, args.insecure));
    let mut interrupt = std::pin::pin!(interrupt);
    let outcome = loop {
        tokio::select! {
            biased;
            () = &mut interrupt => break None,
            line = stream.next() => match line {
                Some(Ok(line)) => show(display, &line)?,
                Some(Err(e)) => break Some(Err(e)),
                None => break Some(Ok(())),
            },
        }
    };
    // Dropping the stream closes the connection, which stops the push on the daemon.
    drop(stream);
    display.finish(!matches!(outcome, Some(Ok(()))))?;
    match outcome {
        None => Ok(ExitCode::from(INTERRUPTED)),
        Some(Err(e)) => {
            let text = e.to_string().to_lowercase();
            if text.contains("access denied") || text.contains("unauthorized") {
                anyhow::bail!("you are not authorized to push to this namespace, create the model under a namespace you own");
            }
            Err(e.into())
        }
        Some(Ok(())) => {
            let destination = ModelName::parse(&args.model)
                .map(|n| n.to_string())
                .unwrap_or_else(|_| args.model.clone());
            p.out(format!(
                "\nYou can find your model at:\n\n\t{destination}\n"
            ))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One line of the stream: a digest is a bar, any other change of status a spinner line.
fn show(display: &mut Progress<'_>, r: &ProgressResponse) -> io::Result<()> {
    if r.digest.is_empty() {
        return display.status(&r.status, &r.status);
    }
    let label = if r.status.is_empty() {
        let hex = r.digest.strip_prefix("sha256:").unwrap_or(&r.digest);
        format!("pushing {}...", hex.get(..12).unwrap_or(hex))
    } else {
        r.status.clone()
    };
    display.bar(&r.digest, &label, r.total, r.completed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use serde_json::{json, Value};
    use std::sync::{Arc, Mutex};

    const A: &str = "sha256:aaaaaaaaaaaa0000000000000000000000000000000000000000000000000000";

    /// A daemon whose `/api/push` answers by model name: `ns/ok` pushes one blob, `ns/denied`
    /// fails as a registry refusing us.
    async fn daemon() -> (Client, Arc<Mutex<Vec<Value>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = Router::new()
            .route("/", get(|| async { "Ollama is running" }))
            .route(
                "/api/push",
                post(move |Json(req): Json<Value>| {
                    let log = log.clone();
                    async move {
                        log.lock().unwrap().push(req.clone());
                        let lines: Vec<Value> = match req["model"].as_str().unwrap_or("") {
                            "ns/ok" => vec![
                                json!({"status": "retrieving manifest"}),
                                json!({"status": "pushing aaaaaaaaaaaa", "digest": A, "total": 100}),
                                json!({"status": "pushing aaaaaaaaaaaa", "digest": A, "total": 100, "completed": 100}),
                                json!({"status": "pushing manifest"}),
                                json!({"status": "success"}),
                            ],
                            _ => vec![json!({"error": "unauthorized: access denied"})],
                        };
                        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
                        let resp: Response = (
                            StatusCode::OK,
                            [(header::CONTENT_TYPE, "application/x-ndjson")],
                            body,
                        )
                            .into_response();
                        resp
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (Client::new(format!("http://{addr}")), seen)
    }

    #[tokio::test]
    async fn push_shows_progress_and_where_the_model_is() {
        let (client, seen) = daemon().await;
        let (p, out) = Printer::capture();
        let mut display = Progress::new(&p, None);
        let args = PushArgs {
            model: "ns/ok".into(),
            insecure: true,
        };
        let code = push_with(&client, &args, &p, &mut display, std::future::pending())
            .await
            .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        assert_eq!(
            out.err(),
            "retrieving manifest\n\
             pushing aaaaaaaaaaaa 0% 0 B/100 B\n\
             pushing aaaaaaaaaaaa 100% 100 B\n\
             pushing manifest\n\
             success\n"
        );
        assert_eq!(
            out.out(),
            "\nYou can find your model at:\n\n\tns/ok:latest\n"
        );
        assert_eq!(
            seen.lock().unwrap()[0],
            json!({"model": "ns/ok", "insecure": true, "stream": true})
        );

        let (p, out) = Printer::capture();
        let mut display = Progress::new(&p, None);
        let args = PushArgs {
            model: "ns/denied".into(),
            insecure: false,
        };
        let err = push_with(&client, &args, &p, &mut display, std::future::pending())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "you are not authorized to push to this namespace, create the model under a namespace you own"
        );
        assert_eq!(out.out(), "");
    }
}

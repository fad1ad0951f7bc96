//! `ollmlx pull MODEL [--insecure]`, as `ollama pull` (`cmd.PullHandler`): sends
//! `POST /api/pull` and shows its progress stream on stderr until `success`.
//!
//! The stream (docs: ollama-api.md §5.4) is `pulling manifest`, then per blob repeated lines
//! `{"status": "pulling <12 hex>", "digest": "sha256:...", "total": N, "completed": M}`, then
//! `verifying sha256 digest`, `writing manifest`, `success`. As Ollama's CLI does, every digest
//! gets a progress bar of its own (`pulling <12 hex>...`) and every other change of status a line
//! of its own; a repeated status is shown once.
//!
//! The display is [`super::progress`]: on a terminal, indicatif bars (with the transfer rate and
//! time left) and spinners, redrawn in place ten times a second at most. Elsewhere (a log, a
//! pipe) each status is written once, and each bar twice at most: when its download starts and
//! when it reaches 100% (a blob already there gets only the second); an interrupted pull also
//! writes where each unfinished bar stopped.
//!
//! Ctrl-C closes the request (the daemon keeps what it downloaded), says the pull can be resumed
//! by running it again, and exits with status 130. An `error` line or a failed request ends the
//! command with `Error: <message>` and exit status 1.

use super::progress::Progress;
use super::Printer;
use crate::api::ProgressResponse;
use crate::client::Client;
use clap::Args;
use futures_util::StreamExt;
use std::future::Future;
use std::io;
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    /// Name of the model to pull.
    pub model: String,
    /// Use an insecure registry
    #[arg(long)]
    pub insecure: bool,
}

/// The exit status of a pull stopped by Ctrl-C (128 + SIGINT), as a shell reports it.
pub const INTERRUPTED: u8 = 130;

pub async fn run(args: PullArgs, client: &Client, p: &Printer) -> anyhow::Result<ExitCode> {
    pull(client, &args.model, args.insecure, p).await
}

/// Pulls `model`, showing progress on `p`'s stderr (live when stderr is a terminal) and
/// stopping at Ctrl-C with [`INTERRUPTED`]. For `run`'s pull of a missing model too.
pub async fn pull(
    client: &Client,
    model: &str,
    insecure: bool,
    p: &Printer,
) -> anyhow::Result<ExitCode> {
    let mut display = Progress::stderr(p);
    pull_with(client, model, insecure, &mut display, ctrl_c()).await
}

/// Resolves at the first Ctrl-C (never, where the signal cannot be caught).
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn pull_with(
    client: &Client,
    model: &str,
    insecure: bool,
    display: &mut Progress<'_>,
    interrupt: impl Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    // Boxed, so that it can be dropped (and the connection closed) before the final words.
    let mut stream = Box::pin(client.pull(model, insecure));
    let mut interrupt = std::pin::pin!(interrupt);
    let outcome = loop {
        tokio::select! {
            biased;
            () = &mut interrupt => break Outcome::Interrupted,
            line = stream.next() => match line {
                Some(Ok(line)) => show(display, &line)?,
                Some(Err(e)) => break Outcome::Failed(e),
                // The client's stream ends right after `success`.
                None => break Outcome::Done,
            },
        }
    };
    // Dropping the stream closes the connection, which cancels the pull on the daemon.
    drop(stream);
    if let Outcome::Interrupted = outcome {
        let words =
            format!("pull interrupted: run 'ollmlx pull {model}' again to resume the download");
        display.status("interrupted", &words)?;
    }
    display.finish(!matches!(outcome, Outcome::Done))?;
    match outcome {
        Outcome::Done => Ok(ExitCode::SUCCESS),
        Outcome::Failed(e) => Err(e.into()),
        Outcome::Interrupted => Ok(ExitCode::from(INTERRUPTED)),
    }
}

enum Outcome {
    Done,
    Failed(crate::client::ClientError),
    Interrupted,
}

/// One line of the stream: a digest is a bar of its own (Ollama's label: `pulling ` and the first
/// 12 hex digits), any other change of status a spinner line; a repeated status is shown once.
fn show(display: &mut Progress<'_>, r: &ProgressResponse) -> io::Result<()> {
    if r.digest.is_empty() {
        return display.status(&r.status, &r.status);
    }
    let name = match r.digest.strip_prefix("sha256:") {
        Some(hex) => hex.trim().get(..12).unwrap_or(hex.trim()),
        None => r.digest.trim(),
    };
    display.bar(
        &r.digest,
        &format!("pulling {name}..."),
        r.total,
        r.completed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{dispatch, Cli, Command};
    use axum::body::Body;
    use axum::http::{header, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use clap::Parser;
    use indicatif::{InMemoryTerm, ProgressDrawTarget};
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    const A: &str = "sha256:aaaaaaaaaaaa0000000000000000000000000000000000000000000000000000";
    const B: &str = "sha256:bbbbbbbbbbbb1111111111111111111111111111111111111111111111111111";

    #[derive(Default)]
    struct Fake {
        requests: Mutex<Vec<Value>>,
        /// Set when the `stall` stream is dropped (the client hung up).
        hung_up: AtomicBool,
    }

    struct HangUp(Arc<Fake>);

    impl Drop for HangUp {
        fn drop(&mut self) {
            self.0.hung_up.store(true, Ordering::SeqCst);
        }
    }

    fn bar(digest: &str, total: u64, completed: u64) -> Value {
        let hex = &digest[7..19];
        let mut v = json!({"status": format!("pulling {hex}"), "digest": digest, "total": total});
        if completed > 0 {
            v["completed"] = json!(completed);
        }
        v
    }

    fn status(s: &str) -> Value {
        json!({ "status": s })
    }

    fn ndjson(lines: &[Value]) -> Response {
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
    }

    /// A daemon whose `/api/pull` answers by model name: `tiny` pulls two blobs (the second
    /// already there), `missing` fails after the manifest, `reject` is refused before
    /// streaming, `short` stops without `success`, `stall` stops sending half-way, `parallel`
    /// interleaves two blobs.
    async fn daemon() -> (Client, Arc<Fake>) {
        let fake = Arc::new(Fake::default());
        let state = fake.clone();
        let app = Router::new()
            .route("/", get(|| async { "Ollama is running" }))
            .route(
                "/api/pull",
                post(move |Json(req): Json<Value>| {
                    let fake = state.clone();
                    async move { pull_handler(fake, req) }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (Client::new(format!("http://{addr}")), fake)
    }

    fn pull_handler(fake: Arc<Fake>, req: Value) -> Response {
        fake.requests.lock().unwrap().push(req.clone());
        let manifest = status("pulling manifest");
        match req["model"].as_str().unwrap_or_default() {
            "tiny" => ndjson(&[
                manifest.clone(),
                manifest,
                bar(A, 2_000_000, 0),
                bar(A, 2_000_000, 500_000),
                bar(A, 2_000_000, 1_500_000),
                bar(A, 2_000_000, 2_000_000),
                bar(B, 120, 120),
                status("verifying sha256 digest"),
                status("writing manifest"),
                status("success"),
            ]),
            "missing" => ndjson(&[
                manifest,
                json!({"error": "pull model manifest: file does not exist"}),
            ]),
            "reject" => (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid model name"})),
            )
                .into_response(),
            "short" => ndjson(&[manifest, bar(A, 100, 100)]),
            "parallel" => ndjson(&[
                manifest,
                bar(A, 100, 0),
                bar(B, 100, 0),
                bar(A, 100, 50),
                bar(B, 100, 100),
                bar(A, 100, 100),
                status("success"),
            ]),
            "stall" => {
                let first: String = [manifest, bar(A, 2_000_000, 0), bar(A, 2_000_000, 900_000)]
                    .iter()
                    .map(|l| format!("{l}\n"))
                    .collect();
                let guard = HangUp(fake);
                let rest = futures_util::stream::pending::<Result<String, std::io::Error>>().map(
                    move |x| {
                        let _keep = &guard;
                        x
                    },
                );
                let stream =
                    futures_util::stream::iter([Ok::<_, std::io::Error>(first)]).chain(rest);
                (
                    [(header::CONTENT_TYPE, "application/x-ndjson")],
                    Body::from_stream(stream),
                )
                    .into_response()
            }
            other => panic!("unexpected model {other}"),
        }
    }

    fn parse(args: &[&str]) -> Command {
        let cli = Cli::try_parse_from(std::iter::once("ollmlx").chain(args.iter().copied()));
        cli.unwrap().command.unwrap()
    }

    /// Runs a pull with plain output, never interrupted.
    async fn pull_plain(client: &Client, model: &str) -> (anyhow::Result<ExitCode>, String) {
        let (p, out) = Printer::capture();
        let mut display = Progress::new(&p, None);
        let result = pull_with(client, model, false, &mut display, std::future::pending()).await;
        assert_eq!(out.out(), "", "progress goes to stderr");
        (result, out.err())
    }

    /// An in-memory terminal of `cols` columns, and a display on it.
    fn terminal(cols: u16) -> (InMemoryTerm, ProgressDrawTarget) {
        let term = InMemoryTerm::new(30, cols);
        let target = ProgressDrawTarget::term_like(Box::new(term.clone()));
        (term, target)
    }

    /// Runs a pull on a terminal of `cols` columns; returns what the screen shows at the end.
    async fn pull_live(
        client: &Client,
        model: &str,
        cols: u16,
    ) -> (anyhow::Result<ExitCode>, String) {
        let (p, out) = Printer::capture();
        let (term, target) = terminal(cols);
        let mut display = Progress::new(&p, Some(target));
        let result = pull_with(client, model, false, &mut display, std::future::pending()).await;
        assert_eq!(out.err(), "", "a live display draws on the terminal only");
        (result, screen(&term))
    }

    fn screen(term: &InMemoryTerm) -> String {
        term.contents()
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn parses_pull_and_insecure() {
        let Command::Pull(args) = parse(&["pull", "llama3.2"]) else {
            panic!()
        };
        assert_eq!(args.model, "llama3.2");
        assert!(!args.insecure);
        let Command::Pull(args) = parse(&["pull", "127.0.0.1:5000/library/tiny", "--insecure"])
        else {
            panic!()
        };
        assert_eq!(args.model, "127.0.0.1:5000/library/tiny");
        assert!(args.insecure);
        assert!(Cli::try_parse_from(["ollmlx", "pull"]).is_err());
    }

    #[tokio::test]
    async fn plain_output_is_one_line_per_change() {
        let (client, fake) = daemon().await;
        let (result, err) = pull_plain(&client, "tiny").await;
        assert_eq!(result.unwrap(), ExitCode::SUCCESS);
        assert_eq!(
            err,
            "pulling manifest\n\
             pulling aaaaaaaaaaaa... 0% 0 B/2 MB\n\
             pulling aaaaaaaaaaaa... 100% 2 MB\n\
             pulling bbbbbbbbbbbb... 100% 120 B\n\
             verifying sha256 digest\n\
             writing manifest\n\
             success\n"
        );
        assert_eq!(
            *fake.requests.lock().unwrap(),
            [json!({"model": "tiny", "stream": true})]
        );
    }

    #[tokio::test]
    async fn live_output_redraws_in_place_and_ends_with_every_line() {
        let (client, _) = daemon().await;
        let (result, screen) = pull_live(&client, "tiny", 80).await;
        assert_eq!(result.unwrap(), ExitCode::SUCCESS);
        let lines: Vec<&str> = screen.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 6, "{screen}");
        assert_eq!(lines[0], "pulling manifest");
        assert!(
            lines[1].starts_with("pulling aaaaaaaaaaaa... 100% ▕████"),
            "{screen}"
        );
        assert!(lines[1].ends_with("████▏   2 MB"), "{screen}");
        assert!(lines[2].starts_with("pulling bbbbbbbbbbbb... 100% ▕"));
        assert!(lines[2].ends_with("▏  120 B"), "{screen}");
        assert_eq!(
            &lines[3..],
            ["verifying sha256 digest", "writing manifest", "success"]
        );
        for line in &lines {
            assert!(line.chars().count() <= 80, "{line}");
        }
    }

    #[tokio::test]
    async fn interleaved_bars_are_redrawn_together() {
        let (client, _) = daemon().await;
        let (result, err) = pull_plain(&client, "parallel").await;
        assert_eq!(result.unwrap(), ExitCode::SUCCESS);
        assert_eq!(
            err,
            "pulling manifest\n\
             pulling aaaaaaaaaaaa... 0% 0 B/100 B\n\
             pulling bbbbbbbbbbbb... 0% 0 B/100 B\n\
             pulling bbbbbbbbbbbb... 100% 100 B\n\
             pulling aaaaaaaaaaaa... 100% 100 B\n\
             success\n"
        );

        let (result, screen) = pull_live(&client, "parallel", 70).await;
        assert_eq!(result.unwrap(), ExitCode::SUCCESS);
        let lines: Vec<&str> = screen.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 4, "{screen}");
        assert_eq!(lines[0], "pulling manifest");
        assert!(
            lines[1].starts_with("pulling aaaaaaaaaaaa... 100% ▕███"),
            "{screen}"
        );
        assert!(
            lines[2].starts_with("pulling bbbbbbbbbbbb... 100% ▕███"),
            "{screen}"
        );
        assert_eq!(lines[3], "success");
    }

    #[tokio::test]
    async fn errors_end_with_the_daemons_message() {
        let (client, fake) = daemon().await;
        let (result, err) = pull_plain(&client, "missing").await;
        assert_eq!(
            format!("{:#}", result.unwrap_err()),
            "pull model manifest: file does not exist"
        );
        assert_eq!(err, "pulling manifest\n");

        let (result, err) = pull_live(&client, "reject", 80).await;
        assert_eq!(format!("{:#}", result.unwrap_err()), "invalid model name");
        assert_eq!(err, "", "nothing was drawn");

        let (result, _) = pull_plain(&client, "short").await;
        assert_eq!(
            format!("{:#}", result.unwrap_err()),
            "the server closed the stream before it reported success"
        );

        // Through the command line, after the heartbeat, with the --insecure flag sent.
        let (p, _) = Printer::capture();
        let err = dispatch(parse(&["pull", "missing", "--insecure"]), &client, &p)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "pull model manifest: file does not exist");
        assert_eq!(
            fake.requests.lock().unwrap().last().unwrap(),
            &json!({"model": "missing", "insecure": true, "stream": true})
        );
    }

    #[tokio::test]
    async fn ctrl_c_hangs_up_and_exits_130() {
        let (client, fake) = daemon().await;
        for live in [false, true] {
            fake.hung_up.store(false, Ordering::SeqCst);
            let (p, out) = Printer::capture();
            let (term, target) = terminal(80);
            let mut display = Progress::new(&p, live.then_some(target));
            fake.requests.lock().unwrap().clear();
            // Ctrl-C a while after the daemon has answered.
            let asked = fake.clone();
            let interrupt = async move {
                while asked.requests.lock().unwrap().is_empty() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            };
            let code = pull_with(&client, "stall", false, &mut display, interrupt)
                .await
                .unwrap();
            assert_eq!(code, ExitCode::from(130));
            let resume = "pull interrupted: run 'ollmlx pull stall' again to resume the download\n";
            if !live {
                assert_eq!(
                    out.err(),
                    format!(
                        "pulling manifest\n\
                         pulling aaaaaaaaaaaa... 0% 0 B/2 MB\n\
                         pulling aaaaaaaaaaaa... 45% 900 KB/2 MB\n{resume}"
                    )
                );
            } else {
                let screen = screen(&term);
                assert!(
                    screen.starts_with("pulling manifest\npulling aaaaaaaaaaaa...  45% ▕"),
                    "{screen}"
                );
                assert!(
                    screen
                        .trim_end()
                        .ends_with(&format!("\n{}", resume.trim_end())),
                    "{screen}"
                );
            }
            // The daemon sees the request closed.
            for _ in 0..100 {
                if fake.hung_up.load(Ordering::SeqCst) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(fake.hung_up.load(Ordering::SeqCst));
        }
    }
}

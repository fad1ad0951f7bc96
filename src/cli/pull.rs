//! `ollmlx pull MODEL [--insecure]`, as `ollama pull` (`cmd.PullHandler`): sends
//! `POST /api/pull` and shows its progress stream on stderr until `success`.
//!
//! The stream (docs: ollama-api.md §5.4) is `pulling manifest`, then per blob repeated lines
//! `{"status": "pulling <12 hex>", "digest": "sha256:...", "total": N, "completed": M}`, then
//! `verifying sha256 digest`, `writing manifest`, `success`. As Ollama's CLI does, every digest
//! gets a progress bar of its own (`pulling <12 hex>...`) and every other change of status a line
//! of its own; a repeated status is shown once.
//!
//! On a terminal the lines still changing are redrawn in place (ten times a second at most, with
//! the transfer rate and time left on each bar), and lines that can no longer change stay put
//! above them. Elsewhere (a log, a pipe) each status is written once, and each bar twice at most:
//! when its download starts and when it reaches 100% (a blob already there gets only the second);
//! an interrupted pull also writes where each unfinished bar stopped.
//!
//! Ctrl-C closes the request (the daemon keeps what it downloaded), says the pull can be resumed
//! by running it again, and exits with status 130. An `error` line or a failed request ends the
//! command with `Error: <message>` and exit status 1.

use super::format::{go_duration, human_bytes};
use super::Printer;
use crate::api::ProgressResponse;
use crate::client::Client;
use clap::Args;
use futures_util::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
    let width = io::stderr().is_terminal().then_some(Width::Terminal);
    let mut display = Display::new(p, width);
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
    display: &mut Display<'_>,
    interrupt: impl Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    // Boxed, so that it can be dropped (and the connection closed) before the final words.
    let mut stream = Box::pin(client.pull(model, insecure));
    let mut interrupt = std::pin::pin!(interrupt);
    let mut ticker = tokio::time::interval(REDRAW);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let live = display.is_live();
    let outcome = loop {
        tokio::select! {
            biased;
            () = &mut interrupt => break Outcome::Interrupted,
            line = stream.next() => match line {
                Some(Ok(line)) => display.update(&line, Instant::now())?,
                Some(Err(e)) => break Outcome::Failed(e),
                // The client's stream ends right after `success`.
                None => break Outcome::Done,
            },
            _ = ticker.tick(), if live => display.tick(Instant::now())?,
        }
    };
    // Dropping the stream closes the connection, which cancels the pull on the daemon.
    drop(stream);
    let stopped_early = !matches!(outcome, Outcome::Done);
    display.finish(stopped_early, Instant::now())?;
    match outcome {
        Outcome::Done => Ok(ExitCode::SUCCESS),
        Outcome::Failed(e) => Err(e.into()),
        Outcome::Interrupted => {
            display.p.errln(format!(
                "pull interrupted: run 'ollmlx pull {model}' again to resume the download"
            ))?;
            Ok(ExitCode::from(INTERRUPTED))
        }
    }
}

enum Outcome {
    Done,
    Failed(crate::client::ClientError),
    Interrupted,
}

/// How often a live display is redrawn at most (and its spinner turns).
const REDRAW: Duration = Duration::from_millis(100);
/// The transfer rate is measured over this much recent progress.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Ollama's spinner frames.
const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The columns a live display may use.
#[derive(Debug, Clone, Copy)]
enum Width {
    /// The terminal on stderr, asked at every redraw (80 when it cannot say).
    Terminal,
    /// A fixed width, for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    Fixed(usize),
}

impl Width {
    fn columns(self) -> usize {
        match self {
            Width::Fixed(n) => n,
            Width::Terminal => terminal_width().unwrap_or(80),
        }
    }
}

fn terminal_width() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills in a `winsize`, which lives for the call; a zeroed one is valid.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// One download's progress.
struct Bar {
    label: String,
    total: u64,
    completed: u64,
    /// Recent `(when, completed)` readings, for the rate.
    samples: VecDeque<(Instant, u64)>,
    /// Written at 100% (plain output).
    done_written: bool,
}

impl Bar {
    /// Ollama's label: `pulling ` and the first 12 hex digits of the digest.
    fn new(digest: &str) -> Bar {
        let (name, is_digest) = match digest.strip_prefix("sha256:") {
            Some(hex) => (hex.trim(), true),
            None => (digest.trim(), false),
        };
        let name = if is_digest {
            name.get(..12).unwrap_or(name)
        } else {
            name
        };
        Bar {
            label: format!("pulling {name}..."),
            total: 0,
            completed: 0,
            samples: VecDeque::new(),
            done_written: false,
        }
    }

    fn set(&mut self, total: u64, completed: u64, now: Instant) {
        if total > 0 {
            self.total = total;
        }
        let completed = if self.total > 0 {
            completed.min(self.total)
        } else {
            completed
        };
        // Going backwards (a download started over): the old readings say nothing of the rate.
        if completed < self.completed {
            self.samples.clear();
        }
        self.completed = completed;
        self.samples.push_back((now, completed));
        // Keep one reading at least RATE_WINDOW old (when there is one): the window stays covered.
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= RATE_WINDOW {
            self.samples.pop_front();
        }
    }

    fn is_done(&self) -> bool {
        self.total > 0 && self.completed >= self.total
    }

    /// Whole percent, rounded down so that 100% means done.
    fn percent(&self) -> u64 {
        if self.total == 0 {
            return 0;
        }
        (u128::from(self.completed) * 100 / u128::from(self.total)).min(100) as u64
    }

    /// Bytes per second over the recent readings, up to `now` (so a stall slows it down).
    fn rate(&self, now: Instant) -> f64 {
        let (Some(&(t0, c0)), Some(&(_, c1))) = (self.samples.front(), self.samples.back()) else {
            return 0.0;
        };
        let dt = now.duration_since(t0).as_secs_f64();
        if dt < 0.2 {
            return 0.0;
        }
        c1.saturating_sub(c0) as f64 / dt
    }

    /// The plain-output line: `pulling 0123456789ab... 45% 1.2 GB/2.6 GB`, or at the end
    /// `pulling 0123456789ab... 100% 2.6 GB`.
    fn plain(&self) -> String {
        if self.is_done() {
            format!("{} 100% {}", self.label, human_bytes(self.total))
        } else {
            format!(
                "{} {}% {}/{}",
                self.label,
                self.percent(),
                human_bytes(self.completed),
                human_bytes(self.total)
            )
        }
    }

    /// The terminal line, Ollama's layout in `width` columns:
    /// `pulling 0123456789ab...  45% ▕███████      ▏ 1.2 GB/2.6 GB   34 MB/s     41s`.
    fn live(&self, width: usize, now: Instant) -> String {
        let pct = self.percent();
        let pre = format!("{} {pct:>3}%", self.label);
        let done = self.is_done();
        let mut suf = if done {
            format!("{:>6}{}", human_bytes(self.total), " ".repeat(7))
        } else {
            format!(
                "{:>6}/{:<6}",
                human_bytes(self.completed),
                human_bytes(self.total)
            )
        };
        let rate = if done { 0.0 } else { self.rate(now) };
        if rate >= 1.0 {
            let left = self.total.saturating_sub(self.completed) as f64 / rate;
            // Go's Duration.Round(time.Second).
            let left = go_duration((left.round() as u64).saturating_mul(1_000_000_000));
            suf.push_str(&format!("  {:>6}/s  {left:>6}", human_bytes(rate as u64)));
        } else {
            suf.push_str(&" ".repeat(18));
        }
        // Two boundary characters and a space on each side.
        let room = width.saturating_sub(pre.chars().count() + suf.chars().count() + 4);
        let filled = (room as u64 * pct / 100) as usize;
        let line = format!(
            "{pre} ▕{}{}▏ {suf}",
            "█".repeat(filled),
            " ".repeat(room - filled)
        );
        line.trim_end().to_owned()
    }
}

enum Line {
    /// A status; `running` while it is the latest thing the daemon said (it has a spinner).
    Status {
        text: String,
        running: bool,
    },
    Bar(Bar),
}

impl Line {
    /// Whether the line can still change.
    fn is_final(&self) -> bool {
        match self {
            Line::Status { running, .. } => !running,
            Line::Bar(bar) => bar.is_done(),
        }
    }
}

/// The progress display: Ollama's bars and spinners on a terminal (`width` set), one line per
/// change elsewhere.
struct Display<'a> {
    p: &'a Printer,
    width: Option<Width>,
    lines: Vec<Line>,
    /// digest -> index in `lines`.
    bars: HashMap<String, usize>,
    /// The last status shown (Ollama's `status`), so that repeats are dropped.
    status: String,
    // Live drawing:
    /// The first line that may still change; the lines above are drawn for good.
    top: usize,
    /// How many lines, from `top`, are on the screen; the cursor is at the end of the last.
    drawn: usize,
    /// Whether anything was drawn yet.
    started: bool,
    last_draw: Option<Instant>,
    frame: usize,
}

impl<'a> Display<'a> {
    fn new(p: &'a Printer, width: Option<Width>) -> Display<'a> {
        Display {
            p,
            width,
            lines: Vec::new(),
            bars: HashMap::new(),
            status: String::new(),
            top: 0,
            drawn: 0,
            started: false,
            last_draw: None,
            frame: 0,
        }
    }

    fn is_live(&self) -> bool {
        self.width.is_some()
    }

    /// Takes one line of the stream.
    fn update(&mut self, r: &ProgressResponse, now: Instant) -> io::Result<()> {
        if !r.digest.is_empty() {
            self.stop_spinner();
            let (index, new) = match self.bars.get(&r.digest) {
                Some(&i) => (i, false),
                None => {
                    self.lines.push(Line::Bar(Bar::new(&r.digest)));
                    self.bars.insert(r.digest.clone(), self.lines.len() - 1);
                    (self.lines.len() - 1, true)
                }
            };
            let live = self.is_live();
            let Line::Bar(bar) = &mut self.lines[index] else {
                unreachable!("bars index bar lines")
            };
            let was_done = bar.is_done();
            bar.set(r.total, r.completed, now);
            let finished = !was_done && bar.is_done();
            if !live {
                if new && !bar.is_done() {
                    self.p.errln(bar.plain())?;
                }
                if bar.is_done() && !bar.done_written {
                    bar.done_written = true;
                    self.p.errln(bar.plain())?;
                }
            }
            self.draw(now, new || finished)
        } else if r.status != self.status {
            self.stop_spinner();
            self.status.clone_from(&r.status);
            self.lines.push(Line::Status {
                text: r.status.clone(),
                running: true,
            });
            if !self.is_live() {
                self.p.errln(&r.status)?;
            }
            self.draw(now, true)
        } else {
            Ok(())
        }
    }

    /// A redraw tick (live only): turns the spinner, refreshes rates.
    fn tick(&mut self, now: Instant) -> io::Result<()> {
        self.frame = self.frame.wrapping_add(1);
        if self.top < self.lines.len() {
            self.draw(now, true)?;
        }
        Ok(())
    }

    fn stop_spinner(&mut self) {
        for line in &mut self.lines[self.top..] {
            if let Line::Status { running, .. } = line {
                *running = false;
            }
        }
    }

    /// Ends the display: live, the last redraw and a newline; plain, after an interruption or an
    /// error, the lines of unfinished bars as they stopped.
    fn finish(&mut self, stopped_early: bool, now: Instant) -> io::Result<()> {
        self.stop_spinner();
        if self.is_live() {
            self.draw(now, true)?;
            if self.started {
                self.p.err("\n")?;
            }
            self.started = false;
            self.drawn = 0;
            return Ok(());
        }
        if stopped_early {
            for line in &self.lines {
                if let Line::Bar(bar) = line {
                    if !bar.is_done() {
                        self.p.errln(bar.plain())?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Live only: redraws the lines that may still change, in place; at most every [`REDRAW`]
    /// unless `force`d (a line was added or ended).
    fn draw(&mut self, now: Instant, force: bool) -> io::Result<()> {
        let Some(width) = self.width else {
            return Ok(());
        };
        if self.top >= self.lines.len() {
            return Ok(());
        }
        if !force
            && self
                .last_draw
                .is_some_and(|t| now.duration_since(t) < REDRAW)
        {
            return Ok(());
        }
        self.last_draw = Some(now);
        // One column short of the edge, so no terminal wraps a full line.
        let columns = width.columns().saturating_sub(1).max(20);
        let mut out = String::new();
        if self.drawn > 0 {
            out.push('\r');
            if self.drawn > 1 {
                out.push_str(&format!("\x1b[{}A", self.drawn - 1));
            }
        } else if self.started {
            out.push('\n');
        }
        for (i, line) in self.lines[self.top..].iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let text = match line {
                Line::Status {
                    text,
                    running: true,
                } => format!("{text} {}", FRAMES[self.frame % FRAMES.len()]),
                Line::Status { text, .. } => text.clone(),
                Line::Bar(bar) => bar.live(columns, now),
            };
            // A line that wrapped would throw the cursor arithmetic off.
            out.extend(text.chars().take(columns));
            out.push_str("\x1b[K");
        }
        self.started = true;
        let block = &self.lines[self.top..];
        let settled = block
            .iter()
            .position(|l| !l.is_final())
            .unwrap_or(block.len());
        self.top += settled;
        self.drawn = self.lines.len() - self.top;
        self.p.err(out)
    }
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
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

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

    /// Runs a pull with plain output (or live at `width` columns), never interrupted.
    async fn pull_plain(
        client: &Client,
        model: &str,
        width: Option<usize>,
    ) -> (anyhow::Result<ExitCode>, String) {
        let (p, out) = Printer::capture();
        let mut display = Display::new(&p, width.map(Width::Fixed));
        let result = pull_with(client, model, false, &mut display, std::future::pending()).await;
        assert_eq!(out.out(), "", "progress goes to stderr");
        (result, out.err())
    }

    /// What a terminal shows once done: a tiny emulator for `\r`, `\n`, erase to end of line
    /// and cursor up.
    fn screen(s: &str) -> String {
        let mut rows: Vec<Vec<char>> = vec![Vec::new()];
        let (mut row, mut col) = (0usize, 0usize);
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' => col = 0,
                '\n' => {
                    row += 1;
                    col = 0;
                    if rows.len() <= row {
                        rows.push(Vec::new());
                    }
                }
                '\x1b' => {
                    assert_eq!(chars.next(), Some('['));
                    let mut n = String::new();
                    while let Some(d) = chars.next_if(|d| d.is_ascii_digit()) {
                        n.push(d);
                    }
                    match chars.next() {
                        Some('K') => rows[row].truncate(col),
                        Some('A') => row -= n.parse::<usize>().unwrap_or(1),
                        other => panic!("unexpected escape {other:?}"),
                    }
                }
                c => {
                    let line = &mut rows[row];
                    if line.len() <= col {
                        line.resize(col, ' ');
                        line.push(c);
                    } else {
                        line[col] = c;
                    }
                    col += 1;
                }
            }
        }
        rows.iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_owned())
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
        let (result, err) = pull_plain(&client, "tiny", None).await;
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
        let (result, err) = pull_plain(&client, "tiny", Some(80)).await;
        assert_eq!(result.unwrap(), ExitCode::SUCCESS);
        assert!(err.contains("\r"), "{err:?}");
        assert!(err.contains("\x1b[K"), "{err:?}");
        let screen = screen(&err);
        let lines: Vec<&str> = screen.lines().collect();
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
            assert!(line.chars().count() < 80, "{line}");
        }
        // The bar was drawn at 0% before it was overwritten in place.
        assert!(
            err.contains("pulling aaaaaaaaaaaa...   0% ▕                ▏    0 B/2 MB\x1b[K\r"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn interleaved_bars_are_redrawn_together() {
        let (client, _) = daemon().await;
        let (result, err) = pull_plain(&client, "parallel", None).await;
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

        let (result, err) = pull_plain(&client, "parallel", Some(70)).await;
        assert_eq!(result.unwrap(), ExitCode::SUCCESS);
        // Two bars still running: both are redrawn, from the first one up.
        assert!(err.contains("\r\x1b[1Apulling aaaaaaaaaaaa..."), "{err:?}");
        let screen = screen(&err);
        let lines: Vec<&str> = screen.lines().collect();
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

    #[test]
    fn bar_layout_rate_and_time_left() {
        let t0 = Instant::now();
        let mut bar = Bar::new(A);
        bar.set(2_600_000_000, 0, t0);
        // Too soon for a rate: the columns stay blank.
        assert_eq!(
            bar.live(79, t0),
            "pulling aaaaaaaaaaaa...   0% ▕                ▏    0 B/2.6 GB"
        );
        bar.set(2_600_000_000, 1_200_000_000, t0 + Duration::from_secs(35));
        let line = bar.live(79, t0 + Duration::from_secs(35));
        // 1.2 GB in 35 s is 34 MB/s; 1.4 GB to go is 41 s.
        assert_eq!(
            line,
            "pulling aaaaaaaaaaaa...  46% ▕███████         ▏ 1.2 GB/2.6 GB   34 MB/s     41s"
        );
        assert_eq!(line.chars().count(), 79);
        assert_eq!(bar.plain(), "pulling aaaaaaaaaaaa... 46% 1.2 GB/2.6 GB");
        // A minute and more.
        let line = bar.live(79, t0 + Duration::from_secs(100));
        assert!(line.ends_with("12 MB/s   1m57s"), "{line}");
        bar.set(2_600_000_000, 2_600_000_000, t0 + Duration::from_secs(80));
        assert_eq!(bar.plain(), "pulling aaaaaaaaaaaa... 100% 2.6 GB");
        assert!(bar
            .live(79, t0 + Duration::from_secs(80))
            .ends_with("█▏ 2.6 GB"));
        // Not a sha256 digest: the whole name.
        assert_eq!(Bar::new("other").label, "pulling other...");
        // Rounded down: 100% means done.
        bar.set(1000, 999, t0);
        assert_eq!(bar.percent(), 99);
    }

    #[tokio::test]
    async fn errors_end_with_the_daemons_message() {
        let (client, fake) = daemon().await;
        let (result, err) = pull_plain(&client, "missing", None).await;
        assert_eq!(
            format!("{:#}", result.unwrap_err()),
            "pull model manifest: file does not exist"
        );
        assert_eq!(err, "pulling manifest\n");

        let (result, err) = pull_plain(&client, "reject", Some(80)).await;
        assert_eq!(format!("{:#}", result.unwrap_err()), "invalid model name");
        assert_eq!(err, "");

        let (result, _) = pull_plain(&client, "short", None).await;
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
        for width in [None, Some(80)] {
            fake.hung_up.store(false, Ordering::SeqCst);
            let (p, out) = Printer::capture();
            let mut display = Display::new(&p, width.map(Width::Fixed));
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
            if width.is_none() {
                assert_eq!(
                    out.err(),
                    format!(
                        "pulling manifest\n\
                         pulling aaaaaaaaaaaa... 0% 0 B/2 MB\n\
                         pulling aaaaaaaaaaaa... 45% 900 KB/2 MB\n{resume}"
                    )
                );
            } else {
                let screen = screen(&out.err());
                assert!(
                    screen.starts_with("pulling manifest\npulling aaaaaaaaaaaa...  45% ▕"),
                    "{screen}"
                );
                assert!(screen.ends_with(&format!("\n{resume}")), "{screen}");
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

    #[test]
    fn screen_emulator_follows_cursor_moves() {
        assert_eq!(screen("a\nb\r\x1b[1Ax\x1b[K\nyy"), "x\nyy");
    }
}

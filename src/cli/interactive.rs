//! The interactive chat of `ollmlx run` (Ollama's `cmd/interactive.go`): prompt `>>> `,
//! continuation `... `, `"""` for multi-line input, `/set`, `/show`, `/load`, `/save`, `/list`,
//! `/clear`, `/help`, `/bye`. The conversation is kept and sent with every turn. Lines come from
//! [`super::editor`] (rustyline: line editing and a persistent history).
//!
//! Ctrl-C at the prompt arrives as [`Input::Interrupted`] (the editor reads in raw mode); during
//! an answer it is a SIGINT, which a task turns into a channel message: the response stream is
//! dropped (which cancels the request) and the prompt comes back. Ctrl-D on an empty line ends
//! the session.
//!
//! (Over the usual ~600 lines only because of the tests at the end, which drive whole sessions
//! against the fake daemon in `cli::testing`; tests/it/repl.rs drives the real thing in tmux.)

use super::editor::{Input, Lines, Terminal};
use super::run::{load, stream_chat, Outcome, Session};
use super::Printer;
use crate::api::{CreateRequest, Message, ShowRequest};
use crate::client::Client;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// Runs the REPL on the terminal until `/bye` or Ctrl-D. `history` is the history file;
/// `record` whether new lines go into it.
pub async fn run(
    session: Session,
    history: Option<PathBuf>,
    record: bool,
    client: &Client,
    p: &Printer,
) -> anyhow::Result<ExitCode> {
    let lines = Lines::Terminal(Box::new(Terminal::new(history, record)?));
    let interrupts = ctrl_c_events();
    Repl::new(session).run(client, p, lines, interrupts).await?;
    Ok(ExitCode::SUCCESS)
}

/// One message per Ctrl-C. Installing the handler replaces the default (exit) for the rest of
/// the process, which is what the REPL wants: `/bye` and Ctrl-D are the ways out.
fn ctrl_c_events() -> UnboundedReceiver<()> {
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).is_err() {
                break;
            }
        }
    });
    rx
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Multiline {
    None,
    Prompt,
    System,
}

/// What to do after a line.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Exit,
    Send(String),
    /// `/set history` or `/set nohistory`.
    History(bool),
}

/// The REPL's state: the session plus the multi-line input being assembled.
pub struct Repl {
    session: Session,
    buf: String,
    multiline: Multiline,
    use_alt: bool,
}

const TRIPLE: &str = "\"\"\"";

impl Repl {
    pub fn new(session: Session) -> Repl {
        Repl {
            session,
            buf: String::new(),
            multiline: Multiline::None,
            use_alt: false,
        }
    }

    /// Reads lines until `/bye` or end of input; returns the final session (for tests).
    pub async fn run(
        mut self,
        client: &Client,
        p: &Printer,
        mut lines: Lines,
        mut interrupts: UnboundedReceiver<()>,
    ) -> anyhow::Result<Session> {
        loop {
            let (prompt, placeholder) = if self.use_alt {
                ("... ", "Press Enter to send")
            } else {
                (">>> ", "Send a message (/? for help)")
            };
            let line = match lines.read(prompt, placeholder, p).await? {
                Input::Line(line) => line,
                // The editor has ended the line already.
                Input::Interrupted => {
                    p.out("Use Ctrl + d or /bye to exit.\n")?;
                    self.reset_input();
                    continue;
                }
                Input::Eof => break,
            };
            match self.handle(&line, client, p).await? {
                Flow::Continue => {}
                Flow::Exit => break,
                Flow::History(on) => lines.set_history(on),
                Flow::Send(text) => {
                    // A stray SIGINT that came while the prompt was up is not for this answer.
                    while interrupts.try_recv().is_ok() {}
                    self.send(text, client, p, &mut interrupts).await?
                }
            }
        }
        Ok(self.session)
    }

    fn reset_input(&mut self) {
        self.buf.clear();
        self.multiline = Multiline::None;
        self.use_alt = false;
    }

    /// One line of input, with Ollama's precedence: an open `"""` block first, then a new block,
    /// then `/` commands, then plain text.
    async fn handle(&mut self, line: &str, client: &Client, p: &Printer) -> anyhow::Result<Flow> {
        if self.multiline != Multiline::None {
            let (text, closed) = cut_suffix(line, TRIPLE);
            self.buf.push_str(text);
            if !closed {
                self.buf.push('\n');
                self.use_alt = true;
                return Ok(Flow::Continue);
            }
            if self.multiline == Multiline::System {
                let system = std::mem::take(&mut self.buf);
                self.set_system(system);
                p.outln("Set system message.")?;
            }
            self.multiline = Multiline::None;
            self.use_alt = false;
        } else if let Some(rest) = line.strip_prefix(TRIPLE) {
            let (text, closed) = cut_suffix(rest, TRIPLE);
            self.buf.push_str(text);
            if !closed {
                self.buf.push('\n');
                self.multiline = Multiline::Prompt;
                self.use_alt = true;
            }
        } else if line.starts_with('/') {
            return self.command(line, client, p).await;
        } else {
            self.buf.push_str(line);
        }
        if !self.buf.is_empty() && self.multiline == Multiline::None {
            return Ok(Flow::Send(std::mem::take(&mut self.buf)));
        }
        Ok(Flow::Continue)
    }

    async fn command(&mut self, line: &str, client: &Client, p: &Printer) -> anyhow::Result<Flow> {
        let args: Vec<&str> = line.split_whitespace().collect();
        let cmd = args.first().copied().unwrap_or("");
        match cmd {
            c if c.starts_with("/bye") || c.starts_with("/exit") => return Ok(Flow::Exit),
            c if c.starts_with("/help") || c.starts_with("/?") => match args.get(1).copied() {
                Some("set" | "/set") => usage_set(p)?,
                Some("show" | "/show") => usage_show(p)?,
                Some("shortcut" | "shortcuts") => usage_shortcuts(p)?,
                _ => usage(p)?,
            },
            c if c.starts_with("/clear") => {
                self.session.messages.clear();
                if !self.session.system.is_empty() {
                    self.session
                        .messages
                        .push(Message::new("system", self.session.system.clone()));
                }
                p.outln("Cleared session context")?;
            }
            c if c.starts_with("/list") => {
                let list = super::list::ListArgs {
                    prefix: args.get(1).map(|s| s.to_string()),
                };
                super::list::run(list, client, p).await?;
            }
            c if c.starts_with("/load") => self.load_model(&args, client, p).await?,
            c if c.starts_with("/save") => self.save(&args, client, p).await?,
            c if c.starts_with("/set") => return self.set(&args, p),
            c if c.starts_with("/show") => self.show(&args, client, p).await?,
            _ => p.outln(format!("Unknown command '{cmd}'. Type /? for help"))?,
        }
        Ok(Flow::Continue)
    }

    fn set(&mut self, args: &[&str], p: &Printer) -> anyhow::Result<Flow> {
        let Some(&what) = args.get(1) else {
            usage_set(p)?;
            return Ok(Flow::Continue);
        };
        let s = &mut self.session;
        match what {
            "history" => return Ok(Flow::History(true)),
            "nohistory" => return Ok(Flow::History(false)),
            "wordwrap" => p.outln("Set 'wordwrap' mode.")?,
            "nowordwrap" => p.outln("Set 'nowordwrap' mode.")?,
            "verbose" => {
                s.verbose = true;
                p.outln("Set 'verbose' mode.")?;
            }
            "quiet" => {
                s.verbose = false;
                p.outln("Set 'quiet' mode.")?;
            }
            "think" => match args.get(2) {
                Some(level) => {
                    s.think = Some(Value::String(level.to_string()));
                    p.outln(format!("Set 'think' mode to '{level}'."))?;
                }
                None => {
                    s.think = Some(Value::Bool(true));
                    p.outln("Set 'think' mode.")?;
                }
            },
            "nothink" => {
                s.think = Some(Value::Bool(false));
                p.outln("Set 'nothink' mode.")?;
            }
            "format" if args.get(2) == Some(&"json") => {
                s.format = Some(json!("json"));
                p.outln("Set format to 'json' mode.")?;
            }
            "format" => {
                p.outln("Invalid or missing format. For 'json' mode use '/set format json'")?
            }
            "noformat" => {
                s.format = None;
                p.outln("Disabled format.")?;
            }
            "parameter" if args.len() < 4 => usage_parameters(p)?,
            "parameter" => match parameter_value(args[2], &args[3..]) {
                Ok(value) => {
                    p.outln(format!(
                        "Set parameter '{}' to '{}'",
                        args[2],
                        args[3..].join(", ")
                    ))?;
                    s.options.insert(args[2].to_owned(), value);
                }
                Err(e) => p.outln(format!("Couldn't set parameter: {e:?}"))?,
            },
            "system" if args.len() < 3 => usage_set(p)?,
            "system" => {
                // The words after "/set system", rejoined with single spaces (as Ollama does).
                let text = args[2..].join(" ");
                match text.strip_prefix(TRIPLE) {
                    Some(rest) => match rest.strip_suffix(TRIPLE) {
                        Some(done) => {
                            self.set_system(done.to_owned());
                            p.outln("Set system message.")?;
                        }
                        None => {
                            self.buf.push_str(rest);
                            self.buf.push('\n');
                            self.multiline = Multiline::System;
                            self.use_alt = true;
                        }
                    },
                    None => {
                        self.set_system(text);
                        p.outln("Set system message.")?;
                    }
                }
            }
            other => p.outln(format!("Unknown command '/set {other}'. Type /? for help"))?,
        }
        Ok(Flow::Continue)
    }

    /// Sets the system message: it replaces a system message at the end of the conversation, or
    /// is appended.
    fn set_system(&mut self, system: String) {
        self.session.system.clone_from(&system);
        let message = Message::new("system", system);
        match self.session.messages.last_mut() {
            Some(last) if last.role == "system" => *last = message,
            _ => self.session.messages.push(message),
        }
    }

    async fn show(&mut self, args: &[&str], client: &Client, p: &Printer) -> anyhow::Result<()> {
        let Some(&what) = args.get(1) else {
            return Ok(usage_show(p)?);
        };
        let s = &self.session;
        let req = ShowRequest {
            model: s.model.clone(),
            system: s.system.clone(),
            options: (!s.options.is_empty()).then(|| s.options.clone()),
            ..Default::default()
        };
        let resp = client.show(&req).await?;
        match what {
            "info" => p.out(super::show::render_info(&resp, false))?,
            "license" if resp.license.is_empty() => {
                p.outln("No license was specified for this model.")?
            }
            "license" => p.outln(&resp.license)?,
            "modelfile" => p.outln(&resp.modelfile)?,
            "parameters" => {
                p.outln("Model defined parameters:")?;
                if resp.parameters.is_empty() {
                    p.outln("  No additional parameters were specified for this model.")?;
                } else {
                    for l in resp.parameters.lines() {
                        p.outln(format!("  {l}"))?;
                    }
                }
                p.outln("")?;
                if !s.options.is_empty() {
                    p.outln("User defined parameters:")?;
                    for (k, v) in &s.options {
                        p.outln(format!("  {k:<30} {}", plain(v)))?;
                    }
                    p.outln("")?;
                }
            }
            "system" if !s.system.is_empty() => p.outln(format!("{}\n", s.system))?,
            "system" if !resp.system.is_empty() => p.outln(format!("{}\n", resp.system))?,
            "system" => p.outln("No system message was specified for this model.")?,
            "template" if resp.template.is_empty() => {
                p.outln("No prompt template was specified for this model.")?
            }
            "template" => p.outln(&resp.template)?,
            other => p.outln(format!("Unknown command '/show {other}'. Type /? for help"))?,
        }
        Ok(())
    }

    /// `/save <model>`: a model created from this one with the session's system message,
    /// parameters and conversation (Ollama's `NewCreateRequest`).
    async fn save(&self, args: &[&str], client: &Client, p: &Printer) -> anyhow::Result<()> {
        let [_, name] = args else {
            p.outln("Usage:\n  /save <modelname>")?;
            return Ok(());
        };
        let s = &self.session;
        let req = CreateRequest {
            model: name.to_string(),
            from: Some(s.model.clone()),
            system: (!s.system.is_empty()).then(|| s.system.clone()),
            parameters: (!s.options.is_empty()).then(|| s.options.clone()),
            messages: (!s.messages.is_empty()).then(|| s.messages.clone()),
            ..Default::default()
        };
        let mut progress = std::pin::pin!(client.create(&req));
        let mut failure = None;
        while let Some(line) = progress.next().await {
            if let Err(e) = line {
                failure = Some(e);
                break;
            }
        }
        match failure {
            None => p.outln(format!("Created new model '{name}'"))?,
            Some(e) if e.to_string().contains("invalid model name") => {
                p.outln(format!("error: The model name '{name}' is invalid"))?
            }
            Some(e) => p.outln(format!("error: {e}"))?,
        }
        Ok(())
    }

    async fn load_model(
        &mut self,
        args: &[&str],
        client: &Client,
        p: &Printer,
    ) -> anyhow::Result<()> {
        let [_, model] = args else {
            p.outln("Usage:\n  /load <modelname>")?;
            return Ok(());
        };
        p.outln(format!("Loading model '{model}'"))?;
        let mut next = Session {
            model: model.to_string(),
            messages: Vec::new(),
            ..self.session.clone()
        };
        next.system.clear();
        let show = ShowRequest {
            model: next.model.clone(),
            ..Default::default()
        };
        let result = match client.show(&show).await {
            Ok(_) => load(client, &next).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => self.session = next,
            Err(e) if e.is_not_found() => p.outln(format!("Couldn't find model '{model}'"))?,
            Err(e) => p.outln(format!("error: {e}"))?,
        }
        Ok(())
    }

    /// Sends the user's message and streams the answer. An interrupted or failed turn is taken
    /// back out of the history, so the conversation stays user/assistant alternating.
    async fn send(
        &mut self,
        text: String,
        client: &Client,
        p: &Printer,
        interrupts: &mut UnboundedReceiver<()>,
    ) -> anyhow::Result<()> {
        let turn = self.session.user_message(text, p)?;
        self.session.messages.push(turn);
        let req = self.session.chat_request();
        let outcome = stream_chat(
            client,
            &req,
            p,
            self.session.hide_thinking,
            Some(interrupts),
        )
        .await;
        match outcome {
            Ok(Outcome::Done { message, metrics }) => {
                self.session.messages.push(*message);
                p.out("\n\n")?;
                if self.session.verbose {
                    p.err(super::format::summary(&metrics))?;
                }
            }
            Ok(Outcome::Interrupted) => {
                self.session.messages.pop();
                p.out("\n\n")?;
            }
            // Our own output failing (a closed stdout) ends the session.
            Err(e) if e.downcast_ref::<io::Error>().is_some() => return Err(e),
            Err(e) => {
                self.session.messages.pop();
                p.out("\n")?;
                p.errln(format!("Error: {e:#}"))?;
            }
        }
        Ok(())
    }
}

/// `strings.CutSuffix`.
fn cut_suffix<'a>(s: &'a str, suffix: &str) -> (&'a str, bool) {
    match s.strip_suffix(suffix) {
        Some(before) => (before, true),
        None => (s, false),
    }
}

/// A `/set parameter` value, typed as Ollama's `api.FormatParams` types it.
fn parameter_value(key: &str, values: &[&str]) -> Result<Value, String> {
    const INTS: &[&str] = &[
        "num_keep",
        "seed",
        "num_predict",
        "top_k",
        "repeat_last_n",
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
        "draft_num_predict",
    ];
    const FLOATS: &[&str] = &[
        "top_p",
        "min_p",
        "typical_p",
        "temperature",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
    ];
    let first = values.first().copied().unwrap_or("");
    match key {
        "stop" => Ok(json!(values)),
        k if INTS.contains(&k) => first
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("invalid int value [{first}]")),
        k if FLOATS.contains(&k) => first
            .parse::<f64>()
            .map(Value::from)
            .map_err(|_| format!("invalid float value [{first}]")),
        "use_mmap" => first
            .parse::<bool>()
            .map(Value::from)
            .map_err(|_| format!("invalid bool value [{first}]")),
        _ => Err(format!("unknown parameter '{key}'")),
    }
}

/// A JSON value the way Go's `%v` prints a decoded parameter (`0.5`, `[a b]`).
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(plain).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

fn usage(p: &Printer) -> io::Result<()> {
    p.err(
        "Available Commands:\n\
         \x20 /set            Set session variables\n\
         \x20 /show           Show model information\n\
         \x20 /load <model>   Load a session or model\n\
         \x20 /save <model>   Save your current session\n\
         \x20 /clear          Clear session context\n\
         \x20 /list           List models\n\
         \x20 /bye            Exit\n\
         \x20 /?, /help       Help for a command\n\
         \x20 /? shortcuts    Help for keyboard shortcuts\n\
         \n\
         Use \"\"\" to begin a multi-line message.\n\n",
    )
}

fn usage_set(p: &Printer) -> io::Result<()> {
    p.err(
        "Available Commands:\n\
         \x20 /set parameter ...     Set a parameter\n\
         \x20 /set system <string>   Set system message\n\
         \x20 /set history           Enable history\n\
         \x20 /set nohistory         Disable history\n\
         \x20 /set wordwrap          Enable wordwrap\n\
         \x20 /set nowordwrap        Disable wordwrap\n\
         \x20 /set format json       Enable JSON mode\n\
         \x20 /set noformat          Disable formatting\n\
         \x20 /set verbose           Show LLM stats\n\
         \x20 /set quiet             Disable LLM stats\n\
         \x20 /set think             Enable thinking\n\
         \x20 /set nothink           Disable thinking\n\n",
    )
}

fn usage_shortcuts(p: &Printer) -> io::Result<()> {
    p.err(
        "Available keyboard shortcuts:\n\
         \x20 Ctrl + a            Move to the beginning of the line (Home)\n\
         \x20 Ctrl + e            Move to the end of the line (End)\n\
         \x20  Alt + b            Move back (left) one word\n\
         \x20  Alt + f            Move forward (right) one word\n\
         \x20 Ctrl + k            Delete the sentence after the cursor\n\
         \x20 Ctrl + u            Delete the sentence before the cursor\n\
         \x20 Ctrl + w            Delete the word before the cursor\n\
         \x20 Up, Down, Ctrl + r  Previous lines (history)\n\
         \n\
         \x20 Ctrl + l            Clear the screen\n\
         \x20 Ctrl + c            Stop the model from responding\n\
         \x20 Ctrl + d            Exit ollmlx (/bye)\n\n",
    )
}

fn usage_show(p: &Printer) -> io::Result<()> {
    p.err(
        "Available Commands:\n\
         \x20 /show info         Show details for this model\n\
         \x20 /show license      Show model license\n\
         \x20 /show modelfile    Show Modelfile for this model\n\
         \x20 /show parameters   Show parameters for this model\n\
         \x20 /show system       Show system message\n\
         \x20 /show template     Show prompt template\n\n",
    )
}

fn usage_parameters(p: &Printer) -> io::Result<()> {
    p.err(
        "Available Parameters:\n\
         \x20 /set parameter seed <int>             Random number seed\n\
         \x20 /set parameter num_predict <int>      Max number of tokens to predict\n\
         \x20 /set parameter top_k <int>            Pick from top k num of tokens\n\
         \x20 /set parameter top_p <float>          Pick token based on sum of probabilities\n\
         \x20 /set parameter min_p <float>          Pick token based on top token probability * min_p\n\
         \x20 /set parameter num_ctx <int>          Set the context size\n\
         \x20 /set parameter temperature <float>    Set creativity level\n\
         \x20 /set parameter repeat_penalty <float> How strongly to penalize repetitions\n\
         \x20 /set parameter repeat_last_n <int>    Set how far back to look for repetitions\n\
         \x20 /set parameter num_gpu <int>          The number of layers to send to the GPU\n\
         \x20 /set parameter stop <string> <string> ...   Set the stop parameters\n\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::printer::Captured;
    use crate::cli::testing::daemon;
    use std::time::Duration;
    use tokio::sync::mpsc::UnboundedSender;

    fn session(model: &str) -> Session {
        Session {
            model: model.into(),
            ..Default::default()
        }
    }

    type Keys = (UnboundedSender<Input>, Lines);
    type Interrupts = (UnboundedSender<()>, UnboundedReceiver<()>);

    /// Channels standing in for the line editor and for SIGINT during an answer.
    fn inputs() -> (Keys, Interrupts) {
        let (tx, rx) = unbounded_channel();
        ((tx, Lines::Scripted(rx)), unbounded_channel())
    }

    fn feed(tx: &UnboundedSender<Input>, lines: &[&str]) {
        for l in lines {
            tx.send(Input::Line(l.to_string())).unwrap();
        }
    }

    /// Waits until stdout satisfies `f` (the REPL runs concurrently with the test driver).
    async fn wait_for(out: &Captured, f: impl Fn(&str) -> bool) {
        for _ in 0..500 {
            if f(&out.out()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out; stdout so far: {:?}", out.out());
    }

    #[tokio::test]
    async fn keeps_history_and_handles_multiline_and_set_commands() {
        let (client, _) = daemon().await;
        let (p, out) = Printer::capture();
        let ((line_tx, lines), (_int_tx, ints)) = inputs();
        feed(
            &line_tx,
            &[
                "hello",
                "",
                "/set parameter temperature 0.5",
                "\"\"\"first",
                "second\"\"\"",
                "/set system Be  brief.",
                "/set verbose",
                "again",
                "/set parameter bogus 1",
                "/set parameter top_k x",
                "/nope",
                "/clear",
                "/bye",
            ],
        );
        let s = Repl::new(session("m"))
            .run(&client, &p, lines, ints)
            .await
            .unwrap();
        assert_eq!(
            out.out(),
            ">>> 1|hello|-\n\n\
             >>> >>> Set parameter 'temperature' to '0.5'\n\
             >>> ... 3|first\nsecond|{\"temperature\":0.5}\n\n\
             >>> Set system message.\n\
             >>> Set 'verbose' mode.\n\
             >>> 6|again|{\"temperature\":0.5}\n\n\
             >>> Couldn't set parameter: \"unknown parameter 'bogus'\"\n\
             >>> Couldn't set parameter: \"invalid int value [x]\"\n\
             >>> Unknown command '/nope'. Type /? for help\n\
             >>> Cleared session context\n\
             >>> "
        );
        assert_eq!(
            out.err(),
            "eval count:           2 token(s)\neval duration:        1s\neval rate:            2.00 tokens/s\n"
        );
        // /clear keeps the system message; the options stay.
        assert_eq!(s.messages, [Message::new("system", "Be brief.")]);
        assert_eq!(s.options["temperature"], json!(0.5));
    }

    #[tokio::test]
    async fn save_creates_a_model_from_the_session() {
        let (client, log) = daemon().await;
        let (p, out) = Printer::capture();
        let ((line_tx, lines), (_int_tx, ints)) = inputs();
        feed(
            &line_tx,
            &[
                "/save",
                "/set system Be brief.",
                "/set parameter num_ctx 8192",
                "hi",
                "/save mine",
                "/save bad/",
            ],
        );
        line_tx.send(Input::Eof).unwrap();
        Repl::new(session("m"))
            .run(&client, &p, lines, ints)
            .await
            .unwrap();
        let out = out.out();
        assert!(
            out.starts_with(">>> Usage:\n  /save <modelname>\n"),
            "{out}"
        );
        assert!(out.contains(">>> Created new model 'mine'\n"), "{out}");
        assert!(
            out.ends_with(">>> error: The model name 'bad/' is invalid\n>>> \n"),
            "{out}"
        );
        let log = log.lock().unwrap();
        let create = log.iter().find(|l| l.starts_with("create ")).unwrap();
        let req: Value = serde_json::from_str(&create["create ".len()..]).unwrap();
        assert_eq!(
            req,
            json!({"model": "mine", "from": "m", "system": "Be brief.",
                   "parameters": {"num_ctx": 8192},
                   "messages": [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "hi"},
                                {"role": "assistant", "content": "2|hi|{\"num_ctx\":8192}"}]})
        );
    }

    #[tokio::test]
    async fn ctrl_c_stops_the_answer_and_returns_to_the_prompt() {
        let (client, log) = daemon().await;
        let (p, out) = Printer::capture();
        let ((line_tx, lines), (int_tx, ints)) = inputs();
        let driver = async {
            feed(&line_tx, &["hi"]);
            wait_for(&out, |o| o.contains("partial")).await;
            int_tx.send(()).unwrap();
            wait_for(&out, |o| o.ends_with("partial\n\n>>> ")).await;
            // At the prompt, Ctrl-C (a key for the editor) only prints a hint.
            line_tx.send(Input::Interrupted).unwrap();
            wait_for(&out, |o| o.ends_with("exit.\n>>> ")).await;
            drop(line_tx); // Ctrl-D
        };
        let (s, ()) = tokio::join!(
            Repl::new(session("slow")).run(&client, &p, lines, ints),
            driver
        );
        let s = s.unwrap();
        assert_eq!(
            out.out(),
            ">>> partial\n\n>>> \nUse Ctrl + d or /bye to exit.\n>>> \n"
        );
        assert!(
            s.messages.is_empty(),
            "the interrupted turn is taken back: {:?}",
            s.messages
        );
        assert_eq!(*log.lock().unwrap(), ["chat slow messages=1"]);
    }

    #[tokio::test]
    async fn a_failed_answer_is_reported_and_the_session_goes_on() {
        let (client, _) = daemon().await;
        let (p, out) = Printer::capture();
        let ((line_tx, lines), (_int_tx, ints)) = inputs();
        feed(
            &line_tx,
            &["hi", "/load nope", "/load other", "again", "/exit"],
        );
        let s = Repl::new(session("broken"))
            .run(&client, &p, lines, ints)
            .await
            .unwrap();
        assert_eq!(
            out.out(),
            ">>> par\n\
             >>> Loading model 'nope'\n\
             Couldn't find model 'nope'\n\
             >>> Loading model 'other'\n\
             >>> 1|again|-\n\n>>> "
        );
        assert_eq!(out.err(), "Error: boom\n");
        assert_eq!(s.model, "other");
        assert_eq!(s.messages.len(), 2);
    }

    #[tokio::test]
    async fn show_commands_in_the_repl() {
        let (client, _) = daemon().await;
        let (p, out) = Printer::capture();
        let ((line_tx, lines), (_int_tx, ints)) = inputs();
        feed(&line_tx, &["/show template", "/show license", "/show info"]);
        drop(line_tx);
        Repl::new(session("m"))
            .run(&client, &p, lines, ints)
            .await
            .unwrap();
        assert_eq!(
            out.out(),
            ">>> {{ .Prompt }}\n\
             >>> No license was specified for this model.\n\
             >>>   Model\n    architecture    llama\n    parameters      1.05M\n    quantization    Q4_K_M\n\n\
             \x20 Capabilities\n    completion\n\n\
             >>> \n"
        );
    }

    #[test]
    fn parameter_types_follow_ollama() {
        assert_eq!(parameter_value("num_ctx", &["8192"]), Ok(json!(8192)));
        assert_eq!(parameter_value("temperature", &["0.2"]), Ok(json!(0.2)));
        assert_eq!(
            parameter_value("stop", &["<|a|>", "b"]),
            Ok(json!(["<|a|>", "b"]))
        );
        assert_eq!(parameter_value("use_mmap", &["false"]), Ok(json!(false)));
        assert_eq!(
            parameter_value("seed", &["x"]),
            Err("invalid int value [x]".into())
        );
        assert_eq!(
            parameter_value("nope", &["1"]),
            Err("unknown parameter 'nope'".into())
        );
    }
}

//! `ollmlx run MODEL [PROMPT...]`: one answer for a prompt (from the arguments and/or piped
//! stdin), or an interactive chat when there is no prompt and stdin and stdout are terminals.
//!
//! Flow, as `ollama run`: `/api/show` to check the model exists, then either one streamed
//! `/api/chat` request, or a load (`/api/generate` with an empty prompt) and the REPL in
//! [`super::interactive`]. A model the daemon does not have is pulled first, as `ollama run`
//! does.

use super::format::summary;
use super::Printer;
use crate::api::{ChatRequest, GenerateRequest, Message, Metrics, ShowRequest};
use crate::client::{Client, ClientError};
use anyhow::{anyhow, bail};
use clap::Args;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The model to run.
    pub model: String,
    /// The prompt. Without one (and with a terminal on stdin), an interactive chat starts.
    pub prompt: Vec<String>,
    /// How long the model stays loaded after the last request (e.g. 5m, 1h; negative = forever).
    #[arg(long, value_name = "DURATION")]
    pub keepalive: Option<String>,
    /// Show timings for the response.
    #[arg(long)]
    pub verbose: bool,
    /// Don't wrap words to the next line automatically (ollmlx never wraps; accepted for
    /// compatibility).
    #[arg(long)]
    pub nowordwrap: bool,
    /// Response format (e.g. json, or a JSON schema).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Enable thinking mode: true/false, or high/medium/low/max for models that support levels.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "LEVEL")]
    pub think: Option<String>,
    /// Hide thinking output (if provided).
    #[arg(long)]
    pub hidethinking: bool,
    /// Use an insecure registry (accepted for compatibility).
    #[arg(long, hide = true)]
    pub insecure: bool,
    /// Record no history of the interactive chat.
    #[arg(long, env = crate::env::OLLAMA_NOHISTORY)]
    pub nohistory: bool,
    /// ollmlx's state folder; the chat history is its `history` file (default ~/.ollmlx).
    #[arg(long = "ollmlx-home", env = crate::env::OLLMLX_HOME, hide = true, value_name = "DIR")]
    pub ollmlx_home: Option<std::path::PathBuf>,
}

/// How piped stdin and the prompt arguments are joined: `ollama run` does
/// `strings.Join(append([]string{stdin}, args...), " ")`.
pub const PROMPT_JOINER: &str = " ";

pub async fn run(args: RunArgs, client: &Client, p: &Printer) -> anyhow::Result<ExitCode> {
    let mut session = Session {
        model: args.model.clone(),
        format: parse_format(args.format.as_deref())?,
        keep_alive: args
            .keepalive
            .as_deref()
            .map(parse_keep_alive)
            .transpose()?,
        think: parse_think(args.think.as_deref())?,
        hide_thinking: args.hidethinking,
        verbose: args.verbose,
        ..Session::default()
    };

    // Piped stdin goes before the prompt, and makes the run non-interactive.
    let stdin_is_tty = std::io::stdin().is_terminal();
    let mut prompts = args.prompt.clone();
    if !stdin_is_tty {
        let mut piped = Vec::new();
        std::io::stdin().read_to_end(&mut piped)?;
        if !piped.is_empty() {
            prompts.insert(0, String::from_utf8_lossy(&piped).into_owned());
        }
    }
    let interactive = stdin_is_tty && prompts.is_empty() && std::io::stdout().is_terminal();

    let show = ShowRequest {
        model: args.model.clone(),
        ..Default::default()
    };
    // As `ollama run`: a model the daemon does not have is pulled first.
    let shown = match client.show(&show).await {
        Err(e) if e.is_not_found() => {
            let code = super::pull::pull(client, &args.model, false, p).await?;
            if code != ExitCode::SUCCESS {
                return Ok(code);
            }
            client
                .show(&show)
                .await
                .map_err(|e| not_found(e, &args.model))?
        }
        other => other.map_err(|e| not_found(e, &args.model))?,
    };
    session.vision = shown.capabilities.iter().any(|c| c == "vision");

    if interactive {
        load(client, &session)
            .await
            .map_err(|e| not_found(e, &args.model))?;
        let history = super::editor::history_path(args.ollmlx_home.clone());
        return super::interactive::run(session, history, !args.nohistory, client, p).await;
    }

    let turn = session.user_message(prompts.join(PROMPT_JOINER), p)?;
    session.messages.push(turn);
    let req = session.chat_request();
    if let Outcome::Done { metrics, .. } =
        stream_chat(client, &req, p, session.hide_thinking, None).await?
    {
        p.out("\n")?;
        if session.verbose {
            p.err(summary(&metrics))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Ollama's wording for a model the daemon does not have.
fn not_found(e: ClientError, model: &str) -> anyhow::Error {
    if e.is_not_found() {
        anyhow!("model '{model}' not found")
    } else {
        e.into()
    }
}

/// `--keepalive`: a Go duration, checked here so a typo fails before anything is sent.
fn parse_keep_alive(s: &str) -> anyhow::Result<Value> {
    crate::api::options::parse_go_duration(s.trim()).map_err(|e| anyhow!(e))?;
    Ok(Value::String(s.trim().to_owned()))
}

/// `--format`: `json`, or a JSON schema object.
fn parse_format(s: Option<&str>) -> anyhow::Result<Option<Value>> {
    match s.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.starts_with('{') => serde_json::from_str(s)
            .map(Some)
            .map_err(|e| anyhow!("invalid --format schema: {e}")),
        Some(s) => Ok(Some(Value::String(s.to_owned()))),
    }
}

/// `--think[=true|false|high|medium|low|max]`.
fn parse_think(s: Option<&str>) -> anyhow::Result<Option<Value>> {
    Ok(match s {
        None => None,
        Some("" | "true") => Some(Value::Bool(true)),
        Some("false") => Some(Value::Bool(false)),
        Some(level @ ("high" | "medium" | "low" | "max")) => Some(Value::String(level.into())),
        Some(other) => bail!(
            "invalid value for --think: {other:?} (must be true, false, high, medium, low, or max)"
        ),
    })
}

/// The state of a run: the model, the conversation so far, and the settings the REPL's `/set`
/// changes.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub model: String,
    /// The whole conversation, sent with every turn.
    pub messages: Vec<Message>,
    /// The system message set with `/set system` (also in `messages`).
    pub system: String,
    /// Options set with `/set parameter`.
    pub options: Map<String, Value>,
    pub format: Option<Value>,
    pub keep_alive: Option<Value>,
    pub think: Option<Value>,
    pub hide_thinking: bool,
    pub verbose: bool,
    /// The model reads images: image paths in a prompt are sent as images.
    pub vision: bool,
}

impl Session {
    /// The user's turn: with a vision model, image files named in the text become its images
    /// (each announced on stderr, as `ollama run` announces them).
    pub fn user_message(&self, text: String, p: &Printer) -> anyhow::Result<Message> {
        if !self.vision {
            return Ok(Message::new("user", text));
        }
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        let (text, images) = super::images::extract(&text, home.as_deref())?;
        for (path, _) in &images {
            p.err(format!("Added image '{}'\n", path.display()))?;
        }
        let mut m = Message::new("user", text);
        m.images = images.into_iter().map(|(_, data)| data).collect();
        Ok(m)
    }

    /// The chat request for the conversation so far.
    pub fn chat_request(&self) -> ChatRequest {
        ChatRequest {
            model: self.model.clone(),
            messages: Some(self.messages.clone()),
            format: self.format.clone(),
            keep_alive: self.keep_alive.clone(),
            options: (!self.options.is_empty()).then(|| self.options.clone()),
            think: self.think.clone(),
            ..Default::default()
        }
    }
}

/// Loads the session's model (a generate request with an empty prompt) and waits until it is in
/// memory, so the first answer of a chat does not pay for the load.
pub async fn load(client: &Client, session: &Session) -> Result<(), ClientError> {
    let req = GenerateRequest {
        model: session.model.clone(),
        keep_alive: session.keep_alive.clone(),
        think: session.think.clone(),
        ..Default::default()
    };
    let mut stream = std::pin::pin!(client.generate(&req));
    while let Some(item) = stream.next().await {
        item?;
    }
    Ok(())
}

/// How a streamed answer ended.
#[derive(Debug)]
pub enum Outcome {
    /// The final line arrived: the whole assistant message and the final metrics.
    Done {
        message: Box<Message>,
        metrics: Metrics,
    },
    /// The user pressed Ctrl-C; the stream was dropped, which cancels the request.
    Interrupted,
}

/// Streams one chat answer to stdout as it arrives. Thinking is shown between `Thinking...` and
/// `...done thinking.` (as Ollama's plain-text mode) unless `hide_thinking`. With `interrupts`,
/// a message on that channel stops the answer.
pub async fn stream_chat(
    client: &Client,
    req: &ChatRequest,
    p: &Printer,
    hide_thinking: bool,
    mut interrupts: Option<&mut UnboundedReceiver<()>>,
) -> anyhow::Result<Outcome> {
    let mut stream = std::pin::pin!(client.chat(req));
    let (mut content, mut thinking) = (String::new(), String::new());
    let mut thinking_open = false;
    let mut role = String::from("assistant");
    loop {
        let next = match interrupts.as_deref_mut() {
            Some(rx) => tokio::select! {
                biased;
                _ = interrupted(rx) => return Ok(Outcome::Interrupted),
                next = stream.next() => next,
            },
            None => stream.next().await,
        };
        // The client ends every stream with a `done` line or an error, so `None` is not expected.
        let Some(chunk) = next else {
            bail!(ClientError::Incomplete)
        };
        let chunk = chunk?;
        let msg = &chunk.message;
        if !msg.role.is_empty() {
            role.clone_from(&msg.role);
        }
        if !msg.thinking.is_empty() {
            thinking.push_str(&msg.thinking);
            if !hide_thinking {
                if !thinking_open {
                    p.out("Thinking...\n")?;
                    thinking_open = true;
                }
                p.out(&msg.thinking)?;
            }
        }
        if thinking_open && (!msg.content.is_empty() || !msg.tool_calls.is_empty()) {
            if !thinking.ends_with('\n') {
                p.out("\n")?;
            }
            p.out("...done thinking.\n\n")?;
            thinking_open = false;
        }
        content.push_str(&msg.content);
        p.out(&msg.content)?;
        if chunk.done {
            let message = Box::new(Message {
                role,
                content,
                thinking,
                ..Default::default()
            });
            return Ok(Outcome::Done {
                message,
                metrics: chunk.metrics,
            });
        }
    }
}

/// Resolves when an interrupt arrives; never, if the sender is gone.
pub async fn interrupted(rx: &mut UnboundedReceiver<()>) {
    if rx.recv().await.is_none() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flag_values() {
        assert_eq!(parse_think(None).unwrap(), None);
        assert_eq!(parse_think(Some("true")).unwrap(), Some(json!(true)));
        assert_eq!(parse_think(Some("false")).unwrap(), Some(json!(false)));
        assert_eq!(parse_think(Some("high")).unwrap(), Some(json!("high")));
        assert!(parse_think(Some("very")).is_err());
        assert_eq!(parse_format(Some("json")).unwrap(), Some(json!("json")));
        assert_eq!(parse_format(Some("")).unwrap(), None);
        assert_eq!(
            parse_format(Some(r#"{"type":"object"}"#)).unwrap(),
            Some(json!({"type": "object"}))
        );
        assert!(parse_format(Some("{oops")).is_err());
        assert_eq!(parse_keep_alive("10m").unwrap(), json!("10m"));
        assert_eq!(parse_keep_alive("-1m").unwrap(), json!("-1m"));
        assert_eq!(
            parse_keep_alive("ten").unwrap_err().to_string(),
            "time: invalid duration \"ten\""
        );
    }

    #[test]
    fn chat_request_carries_session_settings() {
        let mut s = Session {
            model: "m".into(),
            keep_alive: Some(json!("1h")),
            ..Default::default()
        };
        s.messages.push(Message::new("user", "hi"));
        let req = serde_json::to_value(s.chat_request()).unwrap();
        assert_eq!(
            req,
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "keep_alive": "1h"})
        );
        s.options.insert("temperature".into(), json!(0.5));
        s.think = Some(json!(true));
        let req = serde_json::to_value(s.chat_request()).unwrap();
        assert_eq!(req["options"], json!({"temperature": 0.5}));
        assert_eq!(req["think"], json!(true));
    }
}

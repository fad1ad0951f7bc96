//! Where the REPL's lines come from: [`rustyline`] on a terminal (line editing, Emacs keys,
//! bracketed paste, history searched with the arrows and Ctrl-R), or a channel in tests.
//!
//! History is kept in `$OLLMLX_HOME/history` (default `~/.ollmlx/history`), the last
//! [`HISTORY_SIZE`] entries, saved after every line as Ollama saves `~/.ollama/history`. It is
//! not Ollama's file: rustyline writes its own format (a version header, escaped newlines), which
//! `ollama` would read back as garbage. `OLLAMA_NOHISTORY` (any true value) and `/set nohistory`
//! stop new lines from being recorded, as in Ollama.
//!
//! `readline` blocks, so each call runs on the blocking pool and the editor travels there and
//! back. While it reads, the terminal is in raw mode: Ctrl-C arrives as a key (an
//! [`Input::Interrupted`]), not as SIGINT. Between reads the terminal is back in cooked mode, so
//! Ctrl-C during an answer is a SIGINT, which the REPL catches to stop the answer.

use super::Printer;
use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::{DefaultHistory, History};
use rustyline::validate::Validator;
use rustyline::{Config, Context, Editor, Helper};
use std::borrow::Cow;
use std::path::PathBuf;
use tokio::sync::mpsc::UnboundedReceiver;

/// How many lines the history file keeps (Ollama keeps 100).
pub const HISTORY_SIZE: usize = 1000;

/// What one read produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Line(String),
    /// Ctrl-C at the prompt.
    Interrupted,
    /// Ctrl-D on an empty line, or the end of input.
    Eof,
}

/// A source of REPL lines. Every read leaves the cursor at the start of a fresh line (the
/// editor ends the line whatever ended the read).
pub enum Lines {
    Terminal(Box<Terminal>),
    /// Test input, shown as a terminal would show it: each prompt is written to the printer's
    /// stdout, and a newline after a Ctrl-C or Ctrl-D (the typed lines' own Enter is not echoed).
    Scripted(UnboundedReceiver<Input>),
}

impl Lines {
    /// Reads one line after showing `prompt` (with `placeholder` in grey while the line is
    /// empty, on a terminal).
    pub async fn read(
        &mut self,
        prompt: &'static str,
        placeholder: &'static str,
        p: &Printer,
    ) -> anyhow::Result<Input> {
        match self {
            Lines::Scripted(rx) => {
                p.out(prompt)?;
                let input = rx.recv().await.unwrap_or(Input::Eof);
                if !matches!(input, Input::Line(_)) {
                    p.out("\n")?;
                }
                Ok(input)
            }
            Lines::Terminal(t) => t.read(prompt, placeholder).await,
        }
    }

    /// Turns the recording of new lines on or off (`/set history`, `/set nohistory`).
    pub fn set_history(&mut self, on: bool) {
        if let Lines::Terminal(t) = self {
            t.record = on;
        }
    }
}

/// The line editor on the terminal and its history file.
pub struct Terminal {
    /// `None` only while a read is in flight on the blocking pool.
    editor: Option<Editor<Placeholder, DefaultHistory>>,
    history: Option<PathBuf>,
    record: bool,
}

impl Terminal {
    /// An editor with the history from `history` (when given and readable). `record` says
    /// whether new lines are added to it.
    pub fn new(history: Option<PathBuf>, record: bool) -> anyhow::Result<Terminal> {
        let config = Config::builder()
            .max_history_size(HISTORY_SIZE)?
            .history_ignore_dups(true)?
            .auto_add_history(false)
            .build();
        let mut editor = Editor::with_config(config)?;
        editor.set_helper(Some(Placeholder(None)));
        if let Some(path) = &history {
            // A missing file is a first run; an unreadable one only costs the old lines.
            let _ = editor.load_history(path);
        }
        Ok(Terminal {
            editor: Some(editor),
            history,
            record,
        })
    }

    async fn read(
        &mut self,
        prompt: &'static str,
        placeholder: &'static str,
    ) -> anyhow::Result<Input> {
        let mut editor = self
            .editor
            .take()
            .expect("one read at a time: the editor is back after each");
        editor.set_helper(Some(Placeholder(Some(placeholder))));
        let (editor, result) = tokio::task::spawn_blocking(move || {
            let result = editor.readline(prompt);
            (editor, result)
        })
        .await?;
        let editor = self.editor.insert(editor);
        use rustyline::error::ReadlineError;
        match result {
            Ok(line) => {
                if self.record && !line.trim().is_empty() {
                    editor.add_history_entry(line.as_str())?;
                    if let Some(path) = &self.history {
                        save(editor.history_mut(), path);
                    }
                }
                Ok(Input::Line(line))
            }
            Err(ReadlineError::Interrupted) => Ok(Input::Interrupted),
            Err(ReadlineError::Eof) => Ok(Input::Eof),
            Err(e) => Err(e.into()),
        }
    }
}

/// Writes the history file (creating its folder); a failure is not worth stopping a chat for.
fn save(history: &mut DefaultHistory, path: &std::path::Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = history.save(path) {
        tracing::debug!(error = %e, path = %path.display(), "could not save the REPL history");
    }
}

/// The history file: `history` in ollmlx's home (`$OLLMLX_HOME`, else `~/.ollmlx`).
pub fn history_path(ollmlx_home: Option<PathBuf>) -> Option<PathBuf> {
    let home = ollmlx_home
        .filter(|h| !h.as_os_str().is_empty())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ollmlx")))?;
    Some(home.join("history"))
}

/// Ollama's grey placeholder on an empty line (`Send a message (/? for help)`).
pub struct Placeholder(Option<&'static str>);

impl Hinter for Placeholder {
    type Hint = String;

    fn hint(&self, line: &str, _pos: usize, _ctx: &Context<'_>) -> Option<String> {
        self.0.filter(|_| line.is_empty()).map(str::to_owned)
    }
}

impl Highlighter for Placeholder {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[38;5;245m{hint}\x1b[0m"))
    }
}

impl Completer for Placeholder {
    type Candidate = String;
}

impl Validator for Placeholder {}

impl Helper for Placeholder {}

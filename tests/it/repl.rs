//! `ollmlx run MODEL`'s interactive chat in a real terminal: tmux runs it in a pseudo-terminal,
//! `send-keys` types, `capture-pane` reads the screen. Covers the placeholder, `/set`, `"""`
//! input, `/show`, `/?`, `/save`, Ctrl-C during an answer and at the prompt, Ctrl-D, and the
//! history file surviving into a second session (recalled with the Up arrow).

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of its own (a private socket), so tests never touch anyone's sessions.
/// `session` is the session the keys and screen reads go to.
struct Tmux {
    socket: PathBuf,
    session: std::cell::Cell<&'static str>,
}

impl Tmux {
    /// `None` (skipping, with a message) when tmux is not installed, unless every tool is
    /// required (CI installs tmux), in which case it fails.
    fn new(dir: &Path) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            if std::env::var_os("OLLMLX_REQUIRE_TOOLS").is_some() {
                panic!("OLLMLX_REQUIRE_TOOLS is set but tmux is not installed");
            }
            eprintln!("skipping: tmux is not installed (apt-get install tmux)");
            return None;
        }
        Some(Tmux {
            socket: dir.join("tmux.sock"),
            session: std::cell::Cell::new(""),
        })
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tmux {args:?}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `command` (a shell line) in a detached 100x40 window, the session `name`, which
    /// the keys and screen reads then go to.
    fn start(&self, name: &'static str, command: &str) {
        self.session.set(name);
        self.tmux(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            "40",
            command,
        ]);
    }

    /// Types keys (tmux key names: `Enter`, `C-c`, `Up`; anything else literally with `-l`).
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            let named = matches!(*k, "Enter" | "C-c" | "C-d" | "C-u" | "Up" | "Down");
            if named {
                self.tmux(&["send-keys", "-t", self.session.get(), k]);
            } else {
                self.tmux(&["send-keys", "-t", self.session.get(), "-l", k]);
            }
            // The editor reads keys as they come; a pause keeps a key from landing in the middle
            // of a redraw that a test then misreads.
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    fn line(&self, text: &str) {
        self.keys(&[text, "Enter"]);
    }

    /// The screen, with the scrollback, trailing blanks trimmed.
    fn screen(&self) -> String {
        let s = self.tmux(&[
            "capture-pane",
            "-p",
            "-t",
            self.session.get(),
            "-S",
            "-2000",
        ]);
        s.lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_owned()
    }

    /// Waits until the screen satisfies `f`; returns it.
    fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.screen();
            if f(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "waited for {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the last line of the screen is exactly `last` (a prompt waiting for input).
    fn wait_last(&self, last: &str) -> String {
        self.wait(&format!("a last line {last:?}"), |s| {
            s.lines().last() == Some(last)
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

const PLACEHOLDER: &str = ">>> Send a message (/? for help)";

#[test]
fn repl_in_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let Some(tmux) = Tmux::new(dir.path()) else {
        return;
    };
    let Some(s) = server(&[]) else {
        return;
    };
    let home = dir.path().join("home");
    let run = |model: &str| {
        format!(
            "env OLLAMA_HOST={} OLLMLX_HOME={} {} run {model}; echo EXITED:$?; sleep 600",
            s.url.trim_start_matches("http://"),
            home.display(),
            env!("CARGO_BIN_EXE_ollmlx"),
        )
    };
    tmux.start("first", &run(TINY_EOS));
    // The model loads first; then the prompt with Ollama's grey placeholder.
    tmux.wait_last(PLACEHOLDER);

    tmux.line("/set parameter num_predict 3");
    tmux.wait("the parameter", |s| {
        s.contains("Set parameter 'num_predict' to '3'")
    });
    tmux.wait_last(PLACEHOLDER);

    // A multi-line message: the continuation prompt, then an answer and a new prompt.
    tmux.line("\"\"\"first line");
    tmux.wait_last("... Press Enter to send");
    tmux.line("second line\"\"\"");
    let screen = tmux.wait_last(PLACEHOLDER);
    assert!(screen.contains("... second line\"\"\""), "{screen}");

    tmux.line("/show info");
    tmux.wait("/show info", |s| s.contains("architecture"));
    tmux.line("/?");
    tmux.wait("the help", |s| {
        s.contains("/save <model>   Save your current session")
            && s.contains("Use \"\"\" to begin a multi-line message.")
    });
    tmux.line("/save ollmlx-saved");
    tmux.wait("/save", |s| s.contains("Created new model 'ollmlx-saved'"));
    let tags = s.get("/api/tags").to_string();
    assert!(tags.contains("ollmlx-saved:latest"), "{tags}");

    // Ctrl-C at the prompt: a hint, and the session goes on.
    tmux.wait_last(PLACEHOLDER);
    tmux.keys(&["half-typed", "C-c"]);
    // As Ollama's: the hint right under the abandoned line.
    tmux.wait("the Ctrl-C hint", |s| {
        s.contains(">>> half-typed\nUse Ctrl + d or /bye to exit.\n")
    });
    tmux.wait_last(PLACEHOLDER);

    // Ctrl-C during an answer stops it and gives the prompt back. The plain tiny model does
    // not stop by itself.
    tmux.line(&format!("/load {TINY}"));
    tmux.wait("the load", |s| {
        s.contains(&format!("Loading model '{TINY}'"))
    });
    tmux.wait_last(PLACEHOLDER);
    tmux.line("/set parameter num_predict 100000");
    tmux.wait_last(PLACEHOLDER);
    tmux.line("talk");
    // Wait for tokens on the screen after the prompt line.
    tmux.wait("the answer to start", |s| {
        let after = s.rsplit(">>> talk").next().unwrap_or("");
        after.trim().chars().count() > 20
    });
    tmux.keys(&["C-c"]);
    tmux.wait_last(PLACEHOLDER);
    // It really stopped: the screen does not change any more.
    let stopped = tmux.screen();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(tmux.screen(), stopped, "the answer went on after Ctrl-C");

    // Ctrl-D on an empty line ends the session, with status 0.
    tmux.keys(&["C-d"]);
    let screen = tmux.wait("the exit", |s| s.contains("EXITED:0"));
    assert!(screen.ends_with("\n>>>\nEXITED:0"), "{screen}");

    // The history file has what was typed, and a second session recalls it with Up.
    let history = std::fs::read_to_string(home.join("history")).unwrap();
    assert!(
        history.contains("/set parameter num_predict 3"),
        "{history}"
    );
    assert!(
        history.contains("/load ollmlx-test/tiny-llama"),
        "{history}"
    );
    // The second session starts before the first goes: killing the last session would stop the
    // tmux server, and a new one could race its shutdown on the socket.
    tmux.start("second", &run(TINY_EOS));
    tmux.tmux(&["kill-session", "-t", "first"]);
    tmux.wait_last(PLACEHOLDER);
    tmux.keys(&["Up"]);
    tmux.wait_last(">>> talk");
    tmux.keys(&["Up"]);
    tmux.wait_last(">>> /set parameter num_predict 100000");
    tmux.keys(&["C-u"]);
    tmux.wait_last(PLACEHOLDER);
    tmux.line("/bye");
    tmux.wait("the exit", |s| s.contains("EXITED:0"));
}

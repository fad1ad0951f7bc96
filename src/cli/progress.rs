//! The progress display of `pull` and `create`: Ollama's spinners and bars on a terminal, drawn
//! by [`indicatif`]; one line per change elsewhere (a log, a pipe), so a log reads like the
//! terminal's end state. Everything goes to stderr, as Ollama's does.
//!
//! Two kinds of line:
//! - a **spinner** (a status): one at a time. [`Progress::status`] with a new key ends the
//!   current one (it stays on screen without its spinner) and starts the next; with the same key
//!   it only changes the text (`copying file sha256:... 42%`). Plain output writes a status once,
//!   with its last text, when it ends.
//! - a **bar** (a download, keyed by digest): `pulling 0123456789ab...  45% ▕███   ▏ 1.2 GB/2.6 GB
//!   34 MB/s 41s`. Bars stay where they are and are redrawn in place together. Plain output writes
//!   a bar when it starts (unless it is already complete) and when it reaches 100%; an
//!   interrupted display also writes where each unfinished bar stopped.

use super::format::{go_duration, human_bytes};
use super::Printer;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::collections::HashMap;
use std::io;
use std::time::Duration;

/// How often a live display is redrawn at most, and its spinner turns.
const REDRAW: Duration = Duration::from_millis(100);
/// Ollama's spinner frames (the last one is what a finished spinner shows: nothing).
const FRAMES: [&str; 11] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", ""];

pub struct Progress<'a> {
    p: &'a Printer,
    /// The terminal display; `None` for plain output.
    multi: Option<MultiProgress>,
    /// The current spinner: its key, its text and (live) its bar.
    spinner: Option<(String, String, Option<ProgressBar>)>,
    bars: HashMap<String, Bar>,
    /// Bar keys in the order they appeared (for the plain lines at an interruption).
    order: Vec<String>,
}

struct Bar {
    label: String,
    total: u64,
    completed: u64,
    live: Option<ProgressBar>,
    /// Plain output: the 100% line is written.
    done_written: bool,
}

impl Bar {
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

    /// `pulling 0123456789ab... 45% 1.2 GB/2.6 GB`, or at the end `... 100% 2.6 GB`.
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
}

impl<'a> Progress<'a> {
    /// A display on the real stderr: live when it is a terminal, plain otherwise.
    pub fn stderr(p: &'a Printer) -> Progress<'a> {
        use std::io::IsTerminal;
        let live = io::stderr()
            .is_terminal()
            .then(|| ProgressDrawTarget::stderr_with_hz(10));
        Progress::new(p, live)
    }

    /// A display drawing to `target` (live), or writing plain lines to `p` (`None`).
    pub fn new(p: &'a Printer, target: Option<ProgressDrawTarget>) -> Progress<'a> {
        Progress {
            p,
            multi: target.map(MultiProgress::with_draw_target),
            spinner: None,
            bars: HashMap::new(),
            order: Vec::new(),
        }
    }

    pub fn is_live(&self) -> bool {
        self.multi.is_some()
    }

    /// Shows the status line `key` with `text`: a new line (ending the current one) for a new
    /// key, a new text for the current one.
    pub fn status(&mut self, key: &str, text: &str) -> io::Result<()> {
        if let Some((current, shown, bar)) = &mut self.spinner {
            if current == key {
                if shown != text {
                    text.clone_into(shown);
                    if let Some(bar) = bar {
                        bar.set_message(text.to_owned());
                    }
                }
                return Ok(());
            }
        }
        self.end_status()?;
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner().with_style(spinner_style()));
            bar.set_message(text.to_owned());
            bar.enable_steady_tick(REDRAW);
            bar
        });
        self.spinner = Some((key.to_owned(), text.to_owned(), bar));
        Ok(())
    }

    /// On a terminal, shows passing detail on the current status line (`hashing a.gguf 42%`);
    /// the line still ends with its own text.
    pub fn detail(&mut self, text: &str) {
        if let Some((_, _, Some(bar))) = &self.spinner {
            bar.set_message(text.to_owned());
        }
    }

    /// Ends the current status line with its last text.
    fn end_status(&mut self) -> io::Result<()> {
        match self.spinner.take() {
            Some((_, text, Some(bar))) => {
                bar.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
                bar.finish_with_message(text);
                Ok(())
            }
            Some((_, text, None)) => self.p.errln(text),
            None => Ok(()),
        }
    }

    /// Shows the bar `key` (labelled `label` when new) at `completed` of `total` bytes.
    pub fn bar(&mut self, key: &str, label: &str, total: u64, completed: u64) -> io::Result<()> {
        self.end_status()?;
        let new = !self.bars.contains_key(key);
        if new {
            let live = self.multi.as_ref().map(|m| {
                let bar = m.add(ProgressBar::new(total.max(1)).with_style(bar_style(false)));
                bar.set_prefix(label.to_owned());
                bar
            });
            self.bars.insert(
                key.to_owned(),
                Bar {
                    label: label.to_owned(),
                    total: 0,
                    completed: 0,
                    live,
                    done_written: false,
                },
            );
            self.order.push(key.to_owned());
        }
        let bar = self.bars.get_mut(key).expect("inserted above");
        let was_done = bar.is_done();
        if total > 0 {
            bar.total = total;
        }
        bar.completed = if bar.total > 0 {
            completed.min(bar.total)
        } else {
            completed
        };
        match &bar.live {
            Some(live) => {
                if total > 0 {
                    live.set_length(total);
                }
                // Going backwards (a download started over): the old rate says nothing.
                if bar.completed < live.position() {
                    live.reset();
                }
                live.set_position(bar.completed);
                if !was_done && bar.is_done() {
                    live.set_style(bar_style(true));
                    live.finish();
                }
            }
            None => {
                if new && !bar.is_done() {
                    self.p.errln(bar.plain())?;
                }
                if bar.is_done() && !bar.done_written {
                    bar.done_written = true;
                    self.p.errln(bar.plain())?;
                }
            }
        }
        Ok(())
    }

    /// A line of its own above the display (a warning).
    pub fn note(&mut self, line: &str) -> io::Result<()> {
        match &self.multi {
            Some(m) => m.println(line),
            None => {
                self.end_status()?;
                self.p.errln(line)
            }
        }
    }

    /// Ends the display: the current status keeps its text; after an interruption or an error
    /// (`stopped_early`), unfinished bars stay as they stopped (plain: a line each).
    /// The current status is ended last, so a closing word (`pull interrupted: ...`) set just
    /// before comes under the bars.
    pub fn finish(&mut self, stopped_early: bool) -> io::Result<()> {
        for key in &self.order {
            let bar = &self.bars[key];
            match &bar.live {
                Some(live) => live.abandon(),
                None if stopped_early && !bar.is_done() => self.p.errln(bar.plain())?,
                None => {}
            }
        }
        self.end_status()
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} {spinner}")
        .expect("a valid template")
        .tick_strings(&FRAMES)
}

/// Ollama's bar layout; `done` drops the counts, rate and time left for the size.
fn bar_style(done: bool) -> ProgressStyle {
    let template = if done {
        "{prefix} {percent:>3}% ▕{wide_bar}▏ {max:>6}"
    } else {
        "{prefix} {percent:>3}% ▕{wide_bar}▏ {cur:>6}/{max:<6} {rate:>10} {left:>7}"
    };
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("█ ")
        .with_key("cur", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&human_bytes(s.pos()));
        })
        .with_key("max", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&human_bytes(s.len().unwrap_or(0)));
        })
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let rate = s.per_sec();
            if rate >= 1.0 && rate.is_finite() {
                let _ = write!(w, "{}/s", human_bytes(rate as u64));
            }
        })
        .with_key("left", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let rate = s.per_sec();
            if rate >= 1.0 && rate.is_finite() {
                // Go's Duration.Round(time.Second).
                let left = s.eta().as_secs_f64().round() as u64;
                let _ = w.write_str(&go_duration(left.saturating_mul(1_000_000_000)));
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::InMemoryTerm;

    const A: &str = "pulling aaaaaaaaaaaa...";

    fn live(cols: u16) -> (Printer, InMemoryTerm, ProgressDrawTarget) {
        let term = InMemoryTerm::new(20, cols);
        let target = ProgressDrawTarget::term_like(Box::new(term.clone()));
        (Printer::capture().0, term, target)
    }

    #[test]
    fn live_bars_and_spinners_end_as_ollamas_lines() {
        let (p, term, target) = live(80);
        let mut d = Progress::new(&p, Some(target));
        d.status("pulling manifest", "pulling manifest").unwrap();
        d.bar("a", A, 2_000_000, 0).unwrap();
        d.bar("a", A, 2_000_000, 500_000).unwrap();
        let screen = term.contents();
        assert!(screen.starts_with("pulling manifest\n"), "{screen}");
        assert!(
            screen.contains("pulling aaaaaaaaaaaa...  25% ▕"),
            "{screen}"
        );
        assert!(screen.contains("500 KB/2 MB"), "{screen}");
        d.bar("a", A, 2_000_000, 2_000_000).unwrap();
        d.status("success", "success").unwrap();
        d.finish(false).unwrap();
        let screen = term.contents();
        let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
        assert_eq!(lines.len(), 3, "{screen}");
        assert_eq!(lines[0], "pulling manifest");
        assert!(
            lines[1].starts_with("pulling aaaaaaaaaaaa... 100% ▕██"),
            "{screen}"
        );
        assert!(lines[1].ends_with("██▏   2 MB"), "{screen}");
        assert!(lines[1].chars().count() <= 80, "{screen}");
        assert_eq!(lines[2], "success");
    }

    #[test]
    fn a_status_keeps_its_line_while_its_text_changes() {
        let (p, term, target) = live(80);
        let mut d = Progress::new(&p, Some(target));
        d.status("copy", "copying file sha256:1 0%").unwrap();
        d.status("copy", "copying file sha256:1 50%").unwrap();
        d.status("copy", "copying file sha256:1 100%").unwrap();
        d.note("warning: something").unwrap();
        d.status("create", "parsing GGUF").unwrap();
        d.finish(false).unwrap();
        let screen = term.contents();
        let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
        assert_eq!(
            lines,
            [
                "warning: something",
                "copying file sha256:1 100%",
                "parsing GGUF"
            ]
        );
    }

    #[test]
    fn plain_lines_once_per_change() {
        let (p, out) = Printer::capture();
        let mut d = Progress::new(&p, None);
        d.status("s", "pulling manifest").unwrap();
        d.bar("a", A, 100, 0).unwrap();
        d.bar("b", "pulling bbbbbbbbbbbb...", 10, 10).unwrap();
        d.bar("a", A, 100, 45).unwrap();
        d.status("c", "copying 1%").unwrap();
        d.status("c", "copying 100%").unwrap();
        d.finish(true).unwrap();
        assert_eq!(
            out.err(),
            "pulling manifest\n\
             pulling aaaaaaaaaaaa... 0% 0 B/100 B\n\
             pulling bbbbbbbbbbbb... 100% 10 B\n\
             pulling aaaaaaaaaaaa... 45% 45 B/100 B\n\
             copying 100%\n"
        );
        assert_eq!(out.out(), "");
    }
}

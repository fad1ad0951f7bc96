//! The daemon's log subscriber: which lines (`OLLMLX_LOG`, else `OLLAMA_DEBUG`'s level), in what
//! form (`OLLMLX_LOG_FORMAT`: text or JSON lines), and whether text is coloured (only on a
//! terminal, and never with `NO_COLOR`), all from the resolved [`LogSettings`]. Requests run in a
//! `request{id=..}` span (`server::request`), so every line a request logs carries its id: text
//! shows the span before the message; JSON has it under `span` and `spans`.

use crate::config::{LogFormat, LogSettings};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber, writing to stderr. Call once, before anything logs.
pub fn init(settings: &LogSettings, debug_level: u8) {
    let filter = filter(settings.filter.as_deref(), debug_level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.format {
        LogFormat::Text => builder
            .with_ansi(ansi(settings.color, std::io::stderr().is_terminal()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

/// `OLLMLX_LOG` when it parses, else the level `OLLAMA_DEBUG` asks for (with the HTTP client and
/// server crates kept at info, where their debug lines would drown ours).
fn filter(wanted: Option<&str>, debug_level: u8) -> EnvFilter {
    if let Some(f) = wanted.and_then(|w| EnvFilter::try_new(w).ok()) {
        return f;
    }
    let level = match debug_level {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    EnvFilter::new(format!("{level},hyper=info,reqwest=info"))
}

/// Colour codes only for a person at a terminal who did not turn them off: in a file, a pipe or
/// a log collector they are noise.
fn ansi(color_allowed: bool, stderr_is_terminal: bool) -> bool {
    color_allowed && stderr_is_terminal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_needs_both_a_terminal_and_no_no_color() {
        assert!(ansi(true, true));
        assert!(!ansi(false, true));
        assert!(!ansi(true, false));
    }

    /// The filter's directives, in a stable order (`EnvFilter`'s own order is not).
    fn directives(f: EnvFilter) -> Vec<String> {
        let mut d: Vec<String> = f.to_string().split(',').map(str::to_owned).collect();
        d.sort();
        d
    }

    #[test]
    fn filter_falls_back_to_the_debug_level() {
        assert_eq!(
            directives(filter(None, 0)),
            ["hyper=info", "info", "reqwest=info"]
        );
        assert_eq!(
            directives(filter(None, 1)),
            ["debug", "hyper=info", "reqwest=info"]
        );
        assert_eq!(directives(filter(None, 2))[0], "hyper=info");
        assert_eq!(directives(filter(Some("warn"), 2)), ["warn"]);
        // An unparsable filter falls back rather than silencing the daemon.
        assert_eq!(
            directives(filter(Some("=[bad"), 0)),
            ["hyper=info", "info", "reqwest=info"]
        );
    }
}

//! OpenAI's Harmony format (gpt-oss): the reply is a sequence of messages, each a header and a
//! body, `<|channel|>analysis<|message|>…<|end|><|start|>assistant<|channel|>final<|message|>…`.
//! The `analysis` channel is reasoning, `final` is the answer, and `commentary` addressed
//! `to=functions.NAME` is a tool call whose body is the JSON arguments (ending with `<|call|>`);
//! commentary without a recipient is a preamble shown to the user. Bodies stream as they come;
//! a call is emitted whole when its body ends.

use super::think::partial_suffix;
use super::Parsed;
use crate::api::ToolCall;
use serde_json::Value;

/// The special tokens of the format, which the runner must let through as text.
pub const MARKERS: [&str; 7] = [
    "<|start|>",
    "<|channel|>",
    "<|message|>",
    "<|constrain|>",
    "<|end|>",
    "<|call|>",
    "<|return|>",
];

const ENDS: [&str; 4] = ["<|end|>", "<|call|>", "<|return|>", "<|start|>"];

/// Whether a chat template speaks Harmony.
pub fn detect(template: &str) -> bool {
    template.contains("<|channel|>") && template.contains("<|message|>")
}

#[derive(Debug, Clone, PartialEq)]
enum Body {
    Thinking,
    Content,
    Call(String),
}

#[derive(Debug, Clone)]
pub struct HarmonyParser {
    /// `None` while reading a header.
    body: Option<Body>,
    buf: String,
    /// The arguments of the call being read.
    call_args: String,
    next_index: usize,
}

impl HarmonyParser {
    pub fn new() -> HarmonyParser {
        HarmonyParser {
            body: None,
            buf: String::new(),
            call_args: String::new(),
            next_index: 0,
        }
    }

    pub fn feed(&mut self, text: &str) -> Parsed {
        self.buf.push_str(text);
        let mut out = Parsed::default();
        loop {
            match self.body.clone() {
                None => {
                    let Some(at) = self.buf.find("<|message|>") else {
                        // Text with no header at all (a model that ignores the format): content.
                        let t = self.buf.trim_start();
                        if !t.is_empty() && !t.starts_with("<|") && !"<|".starts_with(t) {
                            self.body = Some(Body::Content);
                            continue;
                        }
                        return out;
                    };
                    let header = self.buf[..at].to_owned();
                    self.buf.drain(..at + "<|message|>".len());
                    self.body = Some(body_of(&header));
                }
                Some(body) => {
                    let end = ENDS
                        .iter()
                        .filter_map(|m| self.buf.find(m).map(|i| (i, *m)))
                        .min();
                    let (text, ended) = match end {
                        Some((i, marker)) => {
                            let text = self.buf[..i].to_owned();
                            // `<|start|>` begins the next header; the others end this message.
                            let skip = if marker == "<|start|>" {
                                i
                            } else {
                                i + marker.len()
                            };
                            self.buf.drain(..skip);
                            (text, true)
                        }
                        None => {
                            let keep = ENDS
                                .iter()
                                .map(|m| partial_suffix(&self.buf, m))
                                .max()
                                .unwrap_or(0);
                            let cut = self.buf.len() - keep;
                            let text = self.buf[..cut].to_owned();
                            self.buf.drain(..cut);
                            (text, false)
                        }
                    };
                    self.emit(&body, text, ended, &mut out);
                    if !ended {
                        return out;
                    }
                    self.body = None;
                }
            }
        }
    }

    pub fn finish(&mut self) -> Parsed {
        let mut out = Parsed::default();
        let rest = std::mem::take(&mut self.buf);
        match self.body.take() {
            Some(body) => self.emit(&body, rest, true, &mut out),
            None => out.content = rest.trim_start_matches("<|start|>assistant").to_owned(),
        }
        out
    }

    /// Streams reasoning and answer text; a call's arguments are gathered until its end.
    fn emit(&mut self, body: &Body, text: String, ended: bool, out: &mut Parsed) {
        match body {
            Body::Thinking => out.thinking.push_str(&text),
            Body::Content => out.content.push_str(&text),
            Body::Call(name) => {
                self.call_args.push_str(&text);
                if ended {
                    let args = std::mem::take(&mut self.call_args);
                    let parsed = match args.trim() {
                        "" => Some(Default::default()),
                        a => match serde_json::from_str::<Value>(a) {
                            Ok(Value::Object(m)) => Some(m),
                            _ => None,
                        },
                    };
                    match parsed {
                        Some(m) => {
                            out.tool_calls
                                .push(ToolCall::new(self.next_index, name.clone(), m));
                            self.next_index += 1;
                        }
                        // Not JSON: given back as text, never dropped.
                        None => out.content.push_str(&args),
                    }
                }
            }
        }
    }
}

impl Default for HarmonyParser {
    fn default() -> Self {
        HarmonyParser::new()
    }
}

/// What a header announces: `<|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json`.
fn body_of(header: &str) -> Body {
    let channel = header
        .split("<|channel|>")
        .nth(1)
        .and_then(|c| c.split(|ch: char| ch.is_whitespace() || ch == '<').next())
        .unwrap_or("");
    let recipient = header
        .split("to=")
        .nth(1)
        .and_then(|r| r.split(|ch: char| ch.is_whitespace() || ch == '<').next())
        .map(|r| r.strip_prefix("functions.").unwrap_or(r).to_owned());
    match (channel, recipient) {
        (_, Some(name)) if !name.is_empty() => Body::Call(name),
        ("analysis", _) => Body::Thinking,
        _ => Body::Content,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(chunks: &[&str]) -> Parsed {
        let mut p = HarmonyParser::new();
        let mut all = Parsed::default();
        let mut take = |o: Parsed| {
            all.thinking += &o.thinking;
            all.content += &o.content;
            all.tool_calls.extend(o.tool_calls);
        };
        for c in chunks {
            take(p.feed(c));
        }
        take(p.finish());
        all
    }

    fn by_char(text: &str) -> Parsed {
        let chars: Vec<String> = text.chars().map(String::from).collect();
        run(&chars.iter().map(String::as_str).collect::<Vec<_>>())
    }

    #[test]
    fn reasoning_then_answer() {
        let text = "<|channel|>analysis<|message|>User greets. Reply.<|end|><|start|>assistant<|channel|>final<|message|>Hello!";
        for p in [run(&[text]), by_char(text)] {
            assert_eq!(
                (p.thinking.as_str(), p.content.as_str()),
                ("User greets. Reply.", "Hello!")
            );
        }
    }

    #[test]
    fn a_call_after_reasoning_and_a_preamble() {
        let text = "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary<|message|>Checking.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>";
        for p in [run(&[text]), by_char(text)] {
            assert_eq!(p.thinking, "Need weather.");
            assert_eq!(p.content, "Checking.");
            assert_eq!(p.tool_calls.len(), 1);
            assert_eq!(p.tool_calls[0].function.name, "get_weather");
            assert_eq!(
                Value::Object(p.tool_calls[0].function.arguments.clone()),
                json!({"city": "Paris"})
            );
        }
        // The recipient may come before the channel; `<|call|>` may be cut off (it is EOS).
        let p = run(&["<|start|>assistant to=functions.f<|channel|>commentary json<|message|>{}"]);
        assert_eq!(p.tool_calls[0].function.name, "f");
    }

    #[test]
    fn plain_text_and_bad_arguments_are_content() {
        assert_eq!(run(&["just text"]).content, "just text");
        let p = run(&["<|channel|>commentary to=functions.f<|message|>{oops<|call|>"]);
        assert!(p.tool_calls.is_empty());
        assert_eq!(p.content, "{oops");
        assert!(detect("{{ '<|channel|>' }}x{{ '<|message|>' }}"));
    }
}

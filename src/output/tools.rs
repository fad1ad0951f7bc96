//! Tool calls in a model's output, parsed while the text streams. Where calls start and end is
//! the model family's, recognised from its chat template (the one place that knows what the
//! model was trained to emit); the call bodies are read by [`super::calls`]:
//!
//! - `Tagged`: calls between markers: `<tool_call>…</tool_call>` (Hermes, Qwen 2.5/3,
//!   Qwen3-Coder, GLM), `<minimax:tool_call>`, Kimi K2's tool-calls section, DeepSeek's, LFM2's
//!   `<|tool_call_start|>`;
//! - `Mistral`: `[TOOL_CALLS]` followed by the calls, to the end of the reply;
//! - `Json`: a bare JSON (or pythonic) call list as the whole reply, Llama 3.x style, optionally
//!   after `<|python_tag|>`; also the fallback for templates that take tools in another way.
//!
//! Text outside calls stays content. A call that does not parse is given back as content, never
//! dropped; a call completes (and is emitted, whole) when its closing marker or the end of
//! generation arrives.

use super::calls::{self, StringParams};
use super::think::partial_suffix;
use crate::api::ToolCall;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolFormat {
    Tagged { open: String, close: String },
    Mistral,
    Json,
}

impl ToolFormat {
    /// The format a chat template (Jinja or Go) asks the model for; `None` when it takes no tools.
    pub fn detect(template: &str) -> Option<ToolFormat> {
        // (what the template contains, the call's opening marker, its closing marker; "" = the
        // call runs to the end of the reply). More specific markers first.
        const TAGS: [(&str, &str, &str); 12] = [
            (
                "<minimax:tool_call>",
                "<minimax:tool_call>",
                "</minimax:tool_call>",
            ),
            ("<seed:tool_call>", "<seed:tool_call>", "</seed:tool_call>"),
            (
                "<|tool_calls_section_begin|>",
                "<|tool_calls_section_begin|>",
                "<|tool_calls_section_end|>",
            ),
            (
                "<｜tool▁calls▁begin｜>",
                "<｜tool▁calls▁begin｜>",
                "<｜tool▁calls▁end｜>",
            ),
            (
                "<|tool_call_start|>",
                "<|tool_call_start|>",
                "<|tool_call_end|>",
            ),
            (
                "<|tool_list_start|>",
                "<|tool_call_start|>",
                "<|tool_call_end|>",
            ),
            ("<|tool_call>", "<|tool_call>", "<tool_call|>"),
            ("<TOOLCALL>", "<TOOLCALL>", "</TOOLCALL>"),
            ("<|tools_prefix|>", "<|tools_prefix|>", "<|tools_suffix|>"),
            ("<tool_call>", "<tool_call>", "</tool_call>"),
            ("<|tool_call|>", "<|tool_call|>", ""),
            ("functools[", "functools", ""),
        ];
        if let Some((_, open, close)) = TAGS.iter().find(|(needle, ..)| template.contains(needle)) {
            return Some(ToolFormat::Tagged {
                open: (*open).into(),
                close: (*close).into(),
            });
        }
        if template.contains("[TOOL_CALLS]") {
            return Some(ToolFormat::Mistral);
        }
        let takes_tools = template.contains("tools")
            || template.contains(".Tools")
            || template.contains("tool_call");
        takes_tools.then_some(ToolFormat::Json)
    }

    /// Marker texts the runner must let through as text (they may be special tokens).
    pub fn markers(&self) -> Vec<String> {
        let inner: &[&str] = match self {
            ToolFormat::Tagged { open, .. } => match open.as_str() {
                "<|tool_calls_section_begin|>" => &[
                    "<|tool_call_begin|>",
                    "<|tool_call_argument_begin|>",
                    "<|tool_call_end|>",
                ],
                "<｜tool▁calls▁begin｜>" => &[
                    "<｜tool▁call▁begin｜>",
                    "<｜tool▁sep｜>",
                    "<｜tool▁call▁end｜>",
                ],
                "<|tool_call>" => &["<|\"|>"],
                _ => &[],
            },
            ToolFormat::Mistral => &["[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"],
            ToolFormat::Json => &["<|python_tag|>"],
        };
        let outer = match self {
            ToolFormat::Tagged { open, close } => vec![open.clone(), close.clone()],
            _ => Vec::new(),
        };
        outer
            .into_iter()
            .chain(inner.iter().map(|m| (*m).to_owned()))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing visible yet (a bare JSON call may start).
    Start,
    Content,
    /// Inside a call: buffering until its end.
    Call,
}

#[derive(Debug, Clone)]
pub struct ToolParser {
    format: ToolFormat,
    strings: StringParams,
    state: State,
    buf: String,
    next_index: usize,
}

/// What a piece of text turned into.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub content: String,
    pub calls: Vec<ToolCall>,
}

impl ToolParser {
    /// `tools`: the request's definitions (they say which parameters are strings).
    pub fn new(format: ToolFormat, tools: &[serde_json::Value]) -> ToolParser {
        ToolParser {
            format,
            strings: StringParams::from_tools(tools),
            state: State::Start,
            buf: String::new(),
            next_index: 0,
        }
    }

    pub fn feed(&mut self, text: &str) -> Parsed {
        self.buf.push_str(text);
        let mut out = Parsed::default();
        loop {
            match self.state {
                State::Start => {
                    let t = self.buf.trim_start();
                    if t.is_empty() {
                        return out;
                    }
                    if self.format == ToolFormat::Json && (t.starts_with('{') || t.starts_with('['))
                    {
                        self.buf = t.to_owned();
                        self.state = State::Call;
                    } else {
                        self.state = State::Content;
                    }
                }
                State::Content => {
                    let open = self.open_marker();
                    match self.buf.find(open) {
                        Some(at) => {
                            out.content.push_str(&self.buf[..at]);
                            self.buf.drain(..at);
                            self.state = State::Call;
                        }
                        None => {
                            let keep = partial_suffix(&self.buf, open);
                            let cut = self.buf.len() - keep;
                            out.content.push_str(&self.buf[..cut]);
                            self.buf.drain(..cut);
                            return out;
                        }
                    }
                }
                State::Call => {
                    let ToolFormat::Tagged { open, close } = &self.format else {
                        // Untagged calls run to the end of generation.
                        return out;
                    };
                    if close.is_empty() {
                        // So does a call with no closing marker.
                        return out;
                    }
                    let Some(end) = self.buf.find(close.as_str()) else {
                        return out;
                    };
                    let body = self.buf[open.len()..end].to_owned();
                    let whole = self.buf[..end + close.len()].to_owned();
                    self.buf.drain(..end + close.len());
                    self.emit(&body, &whole, &mut out);
                    self.state = State::Content;
                }
            }
        }
    }

    /// The end of generation: completes an unterminated call, or gives the text back.
    pub fn finish(&mut self) -> Parsed {
        let rest = std::mem::take(&mut self.buf);
        let mut out = Parsed::default();
        if self.state == State::Call {
            let body = match &self.format {
                ToolFormat::Tagged { open, .. } => {
                    rest.strip_prefix(open.as_str()).unwrap_or(&rest)
                }
                ToolFormat::Mistral => rest.strip_prefix("[TOOL_CALLS]").unwrap_or(&rest),
                ToolFormat::Json => rest.strip_prefix("<|python_tag|>").unwrap_or(&rest),
            }
            .to_owned();
            self.emit(&body, &rest, &mut out);
        } else {
            out.content = rest;
        }
        out
    }

    fn open_marker(&self) -> &str {
        match &self.format {
            ToolFormat::Tagged { open, .. } => open,
            ToolFormat::Mistral => "[TOOL_CALLS]",
            ToolFormat::Json => "<|python_tag|>",
        }
    }

    fn emit(&mut self, body: &str, whole: &str, out: &mut Parsed) {
        match calls::parse(body, &self.strings) {
            Some(calls) => {
                for (name, args) in calls {
                    out.calls.push(ToolCall::new(self.next_index, name, args));
                    self.next_index += 1;
                }
            }
            None => {
                tracing::debug!(
                    text = whole,
                    "model output looked like a tool call but did not parse"
                );
                out.content.push_str(whole);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn hermes() -> ToolFormat {
        ToolFormat::detect("{% if tools %}<tool_call>{% endif %}").unwrap()
    }

    fn run(format: ToolFormat, chunks: &[&str]) -> (String, Vec<(usize, String, Value)>) {
        let mut p = ToolParser::new(format, &[]);
        let mut content = String::new();
        let mut calls = Vec::new();
        let mut take = |o: Parsed| {
            content += &o.content;
            for c in o.calls {
                calls.push((
                    c.function.index,
                    c.function.name,
                    Value::Object(c.function.arguments),
                ));
            }
        };
        for ch in chunks {
            take(p.feed(ch));
        }
        take(p.finish());
        (content, calls)
    }

    #[test]
    fn hermes_calls_stream_whole() {
        let text = "I'll check.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><tool_call>{\"name\": \"t\", \"arguments\": \"{\\\"a\\\": 1}\"}</tool_call>";
        let want = (
            "I'll check.".to_string(),
            vec![
                (0, "get_weather".to_string(), json!({"city": "Paris"})),
                (1, "t".to_string(), json!({"a": 1})),
            ],
        );
        assert_eq!(run(hermes(), &[text]), want);
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(run(hermes(), &refs), want);
    }

    #[test]
    fn key_order_is_kept() {
        let (_, calls) = run(
            hermes(),
            &["<tool_call>{\"name\":\"f\",\"arguments\":{\"z\":1,\"a\":2}}</tool_call>"],
        );
        let keys: Vec<&String> = calls[0].2.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["z", "a"]);
    }

    #[test]
    fn broken_or_unterminated_calls() {
        // Not JSON: given back as content.
        assert_eq!(
            run(hermes(), &["<tool_call>not json</tool_call> ok"]),
            ("<tool_call>not json</tool_call> ok".into(), vec![])
        );
        // No closing tag before the end: still a call.
        assert_eq!(
            run(hermes(), &["<tool_call>{\"name\":\"f\",\"arguments\":{}}"]).1,
            vec![(0, "f".into(), json!({}))]
        );
    }

    #[test]
    fn qwen3_coder_xml_body() {
        let (_, calls) = run(
            hermes(),
            &["<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>"],
        );
        assert_eq!(
            calls,
            vec![(0, "get_weather".into(), json!({"city": "Paris", "days": 3}))]
        );
    }

    #[test]
    fn mistral_and_bare_json() {
        let m = ToolFormat::detect("[TOOL_CALLS]").unwrap();
        assert_eq!(
            run(m.clone(), &["[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}}]"]).1,
            vec![(0, "a".into(), json!({"x": 1})), (1, "b".into(), json!({}))]
        );
        assert_eq!(
            run(m, &["[TOOL_CALLS]get[ARGS]{\"k\": true}"]).1,
            vec![(0, "get".into(), json!({"k": true}))]
        );
        let j = ToolFormat::detect("{{ tools }}").unwrap();
        assert_eq!(j, ToolFormat::Json);
        assert_eq!(
            run(
                j.clone(),
                &[" {\"name\": \"f\", \"parameters\": {\"q\": \"x\"}}"]
            )
            .1,
            vec![(0, "f".into(), json!({"q": "x"}))]
        );
        // Plain text passes straight through; JSON that is not a call stays content.
        assert_eq!(
            run(j.clone(), &["Hello ", "world"]),
            ("Hello world".into(), vec![])
        );
        assert_eq!(run(j, &["{\"a\": 1}"]), ("{\"a\": 1}".into(), vec![]));
        assert_eq!(ToolFormat::detect("{{ messages }}"), None);
    }

    #[test]
    fn kimi_section_with_two_calls_streams_char_by_char() {
        let f =
            ToolFormat::detect("{% if tools %}<|tool_calls_section_begin|>{% endif %}").unwrap();
        let text = "Sure.<|tool_calls_section_begin|><|tool_call_begin|>functions.a:0<|tool_call_argument_begin|>{\"x\": 1}<|tool_call_end|><|tool_call_begin|>functions.b:1<|tool_call_argument_begin|>{}<|tool_call_end|><|tool_calls_section_end|>";
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(
            run(f.clone(), &refs),
            (
                "Sure.".to_string(),
                vec![
                    (0, "a".to_string(), json!({"x": 1})),
                    (1, "b".to_string(), json!({}))
                ]
            )
        );
        assert!(f
            .markers()
            .contains(&"<|tool_call_argument_begin|>".to_string()));
    }
}

//! Parsing what a model generates into Ollama's channels: reasoning (`thinking`), the answer
//! (`content`) and tool calls. One implementation serves both runners: they stream raw text (with
//! the marker tokens kept), and the daemon splits it here, so a GGUF and an MLX model of the same
//! family behave the same.

pub mod calls;
pub mod harmony;
pub mod think;
pub mod tools;

use crate::api::ToolCall;
pub use think::ThinkSplitter;
pub use tools::{ToolFormat, ToolParser};

/// How to read one completion's output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputSpec {
    /// The model's thinking tags, when its reasoning is to be split out.
    pub think: Option<(String, String)>,
    /// Parse reasoning but drop it (`think: false` on a model that reasons anyway).
    pub drop_thinking: bool,
    /// The tool-call format, when the request has tools.
    pub tools: Option<ToolFormat>,
    /// The request's tool definitions (which parameters are strings).
    pub tool_defs: Vec<serde_json::Value>,
    /// The model speaks Harmony (gpt-oss): channels instead of tags.
    pub harmony: bool,
}

impl OutputSpec {
    /// Marker texts the runner must keep in the text it streams.
    pub fn markers(&self) -> Vec<String> {
        if self.harmony {
            return harmony::MARKERS.iter().map(|m| (*m).to_owned()).collect();
        }
        let mut m = Vec::new();
        if let Some((open, close)) = &self.think {
            m.extend([open.clone(), close.clone()]);
        }
        if let Some(t) = &self.tools {
            m.extend(t.markers());
        }
        m
    }
}

/// One step's worth of parsed output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub content: String,
    pub thinking: String,
    pub tool_calls: Vec<ToolCall>,
}

impl Parsed {
    pub fn is_empty(&self) -> bool {
        self.content.is_empty() && self.thinking.is_empty() && self.tool_calls.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct OutputParser {
    harmony: Option<harmony::HarmonyParser>,
    think: Option<ThinkSplitter>,
    drop_thinking: bool,
    tools: Option<ToolParser>,
}

impl OutputParser {
    /// `in_thinking`: the prompt ended with the opening thinking tag.
    pub fn new(spec: &OutputSpec, in_thinking: bool) -> OutputParser {
        OutputParser {
            harmony: spec.harmony.then(harmony::HarmonyParser::new),
            think: spec
                .think
                .as_ref()
                .map(|(open, close)| ThinkSplitter::new(open, close, in_thinking)),
            drop_thinking: spec.drop_thinking,
            tools: spec
                .tools
                .clone()
                .map(|f| ToolParser::new(f, &spec.tool_defs)),
        }
    }

    pub fn feed(&mut self, text: &str) -> Parsed {
        self.step(Some(text))
    }

    /// The end of generation: releases what the parsers still hold.
    pub fn finish(&mut self) -> Parsed {
        self.step(None)
    }

    fn step(&mut self, text: Option<&str>) -> Parsed {
        let mut p = match self.harmony.as_mut() {
            Some(h) => match text {
                Some(t) => h.feed(t),
                None => h.finish(),
            },
            None => self.tags_step(text),
        };
        if self.drop_thinking {
            p.thinking.clear();
        }
        p
    }

    /// Thinking tags first, then tool calls in what is left as content.
    fn tags_step(&mut self, text: Option<&str>) -> Parsed {
        let split = match (&mut self.think, text) {
            (Some(t), Some(text)) => t.feed(text),
            (Some(t), None) => t.finish(),
            (None, text) => think::Split {
                thinking: String::new(),
                content: text.unwrap_or_default().to_owned(),
            },
        };
        let Some(tp) = &mut self.tools else {
            return Parsed {
                content: split.content,
                thinking: split.thinking,
                tool_calls: Vec::new(),
            };
        };
        let mut p = tp.feed(&split.content);
        if text.is_none() {
            let end = tp.finish();
            p.content.push_str(&end.content);
            p.calls.extend(end.calls);
        }
        Parsed {
            content: p.content,
            thinking: split.thinking,
            tool_calls: p.calls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_then_a_tool_call() {
        let spec = OutputSpec {
            think: Some(("<think>".into(), "</think>".into())),
            drop_thinking: false,
            tools: ToolFormat::detect("<tool_call>"),
            tool_defs: Vec::new(),
            harmony: false,
        };
        let mut p = OutputParser::new(&spec, false);
        let mut all = Parsed::default();
        for piece in [
            "<think>",
            "Let me check.",
            "</think>",
            "<tool_call>",
            "\n{\"name\": \"w\", \"arguments\": {\"c\": \"P\"}}\n",
            "</tool_call>",
        ] {
            let o = p.feed(piece);
            all.thinking += &o.thinking;
            all.content += &o.content;
            all.tool_calls.extend(o.tool_calls);
        }
        let o = p.finish();
        all.content += &o.content;
        all.tool_calls.extend(o.tool_calls);
        assert_eq!(all.thinking, "Let me check.");
        assert_eq!(all.content, "");
        assert_eq!(all.tool_calls.len(), 1);
        assert_eq!(all.tool_calls[0].function.name, "w");
        assert_eq!(
            spec.markers(),
            ["<think>", "</think>", "<tool_call>", "</tool_call>"]
        );
    }

    #[test]
    fn dropped_thinking() {
        let spec = OutputSpec {
            think: Some(("<think>".into(), "</think>".into())),
            drop_thinking: true,
            tools: None,
            tool_defs: Vec::new(),
            harmony: false,
        };
        let mut p = OutputParser::new(&spec, false);
        let o = p.feed("<think>x</think>y");
        assert_eq!((o.thinking.as_str(), o.content.as_str()), ("", "y"));
    }
}

/// Recognition against the real templates of released models (tests/fixtures/templates/real).
#[cfg(test)]
mod real_templates {
    use super::*;

    fn read(name: &str) -> String {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/templates/real/"
        );
        std::fs::read_to_string(format!("{dir}{name}.jinja")).unwrap()
    }

    #[test]
    fn each_family_is_recognised() {
        // (template, the call's opening marker or "json"/"mistral"/"-", thinking open tag or "-")
        let want = [
            ("Qwen-Qwen3-0.6B", "<tool_call>", "<think>"),
            ("Qwen3-Coder", "<tool_call>", "-"),
            ("Qwen-Qwen2.5-7B-Instruct", "<tool_call>", "-"),
            (
                "NousResearch-Hermes-3-Llama-3.1-8B-tool_use",
                "<tool_call>",
                "-",
            ),
            ("meta-llama-Llama-3.1-8B-Instruct", "json", "-"),
            ("meta-llama-Llama-3.2-3B-Instruct", "json", "-"),
            ("mistralai-Mistral-Nemo-Instruct-2407", "mistral", "-"),
            (
                "mistralai-Ministral-3-14B-Reasoning-2512",
                "mistral",
                "[THINK]",
            ),
            (
                "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
                "<｜tool▁calls▁begin｜>",
                "<think>",
            ),
            (
                "deepseek-ai-DeepSeek-V3.1",
                "<｜tool▁calls▁begin｜>",
                "<think>",
            ),
            ("GLM-4.6", "<tool_call>", "<think>"),
            (
                "Kimi-K2-Thinking",
                "<|tool_calls_section_begin|>",
                "<think>",
            ),
            ("MiniMax-M2", "<minimax:tool_call>", "<think>"),
            ("google-gemma-4-31B-it", "<|tool_call>", "<|channel>thought"),
            (
                "ibm-granite-granite-3.3-2B-Instruct",
                "<|tool_call|>",
                "<think>",
            ),
            ("LFM2.5-8B-A1B", "<|tool_call_start|>", "<think>"),
            ("NVIDIA-Nemotron-Nano-v2", "<TOOLCALL>", "<think>"),
            ("ByteDance-Seed-OSS", "<seed:tool_call>", "<seed:think>"),
            ("fireworks-ai-llama-3-firefunction-v2", "functools", "-"),
            ("Apertus-8B-Instruct", "<|tools_prefix|>", "-"),
            ("google-gemma-2-2b-it", "-", "-"),
            ("microsoft-Phi-3.5-mini-instruct", "-", "-"),
        ];
        for (name, tools, think) in want {
            let t = read(name);
            let got_tools = match ToolFormat::detect(&t) {
                Some(ToolFormat::Tagged { open, .. }) => open,
                Some(ToolFormat::Mistral) => "mistral".into(),
                Some(ToolFormat::Json) => "json".into(),
                None => "-".into(),
            };
            let got_think = think::jinja_tags(&t).map_or("-".into(), |(o, _)| o);
            assert_eq!(
                (got_tools.as_str(), got_think.as_str()),
                (tools, think),
                "{name}"
            );
            assert!(!harmony::detect(&t), "{name}");
        }
        let oss = read("openai-gpt-oss-120b");
        assert!(harmony::detect(&oss));
    }
}

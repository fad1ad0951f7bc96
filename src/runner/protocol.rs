//! The MLX runner's wire protocol (docs/runner-protocol.md), mirrored by
//! `mlx_backend/ollmlx_mlx/protocol.py`. Golden tests pin the JSON on both sides.

use super::{CompletionRequest, Done, PromptInput, RunnerEvent, SamplingOptions};
use crate::api::{Logprob, Message};
use serde::{Deserialize, Serialize};

pub const PROTOCOL_VERSION: u32 = 1;

/// The one stdout line a runner prints once it is bound.
#[derive(Debug, Clone, Deserialize)]
pub struct Listening {
    pub event: String,
    pub host: String,
    pub port: u16,
    pub pid: u32,
    pub protocol: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Health {
    pub status: String,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

/// The part of `/v1/status` the daemon uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub context_length: Option<u64>,
    #[serde(default)]
    pub backend: String,
    #[serde(default)]
    pub memory: Memory,
    /// Absent from runners that keep no prefix cache.
    #[serde(default)]
    pub prefix_cache: Option<PrefixCacheStats>,
    /// How the model is split across machines (distributed runners only).
    #[serde(default)]
    pub distributed: Option<crate::api::Distributed>,
}

/// `/v1/status` `prefix_cache`: the cache's size and its lookups since the runner started.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PrefixCacheStats {
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub budget: u64,
    #[serde(default)]
    pub entries: u64,
    #[serde(default)]
    pub hits: u64,
    #[serde(default)]
    pub misses: u64,
    /// Prompt tokens taken from the cache instead of computed.
    #[serde(default)]
    pub reused_tokens: u64,
}

/// `/v1/status` `memory` (bytes); only what the daemon reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Memory {
    #[serde(default)]
    pub active: u64,
    #[serde(default)]
    pub cache: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompletionBody<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<&'a [Message]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<&'a [i64]>,
    pub options: &'a SamplingOptions,
    pub truncate: bool,
    pub shift: bool,
    pub return_context: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub tools: &'a [serde_json::Value],
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub template_kwargs: &'a serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constrain_after: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub logprobs: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub top_logprobs: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub think_tags: Option<[&'a str; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefill: Option<&'a str>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl<'a> CompletionBody<'a> {
    pub fn new(r: &'a CompletionRequest) -> Self {
        let (messages, prompt) = match &r.input {
            PromptInput::Messages(m) => (Some(m.as_slice()), None),
            PromptInput::Raw(p) => (None, Some(p.as_str())),
        };
        CompletionBody {
            id: &r.id,
            messages,
            prompt,
            context: r.context.as_deref(),
            options: &r.options,
            truncate: r.truncate,
            shift: r.shift,
            return_context: r.return_context,
            tools: &r.tools,
            template_kwargs: &r.template_kwargs,
            format: r.format.as_ref(),
            constrain_after: r.constrain_after.as_deref(),
            logprobs: r.logprobs.is_some(),
            top_logprobs: r.logprobs.unwrap_or(0),
            think_tags: r.think_tags.as_ref().map(|(o, c)| [o.as_str(), c.as_str()]),
            prefill: r.prefill.as_deref(),
        }
    }
}

/// One line of a completion stream.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    Start {
        #[serde(default)]
        prompt_tokens: u64,
        #[serde(default)]
        thinking: bool,
    },
    Chunk {
        #[serde(default)]
        content: String,
        #[serde(default)]
        logprobs: Vec<Logprob>,
    },
    Done {
        done_reason: String,
        #[serde(default)]
        prompt_eval_count: u64,
        #[serde(default)]
        prompt_eval_duration: u64,
        #[serde(default)]
        eval_count: u64,
        #[serde(default)]
        eval_duration: u64,
        #[serde(default)]
        context: Option<Vec<i64>>,
        #[serde(default)]
        stop_sequence: Option<String>,
    },
    Error {
        error: String,
    },
}

impl Event {
    /// The runner-neutral event, or the error the runner reported.
    pub fn into_runner_event(self) -> Result<RunnerEvent, String> {
        Ok(match self {
            Event::Start {
                prompt_tokens,
                thinking,
            } => RunnerEvent::Start {
                prompt_tokens,
                thinking,
            },
            Event::Chunk { content, logprobs } => RunnerEvent::Chunk { content, logprobs },
            Event::Done {
                done_reason,
                prompt_eval_count,
                prompt_eval_duration,
                eval_count,
                eval_duration,
                context,
                stop_sequence,
            } => RunnerEvent::Done(Done {
                done_reason,
                prompt_eval_count,
                prompt_eval_duration,
                eval_count,
                eval_duration,
                context,
                stop_sequence,
            }),
            Event::Error { error } => return Err(error),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenizeBody<'a> {
    pub text: &'a str,
    pub add_special: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    pub tokens: Vec<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetokenizeBody<'a> {
    pub tokens: &'a [i64],
}

#[derive(Debug, Clone, Deserialize)]
pub struct Text {
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_reads_memory_and_prefix_cache() {
        // The shape docs/runner-protocol.md gives (trimmed to what the daemon reads).
        let s: Status = serde_json::from_value(json!({"context_length": 2048, "backend": "cpu",
            "memory": {"active": 123, "peak": 456, "cache": 789, "prefix_cache": 144384},
            "prefix_cache": {"bytes": 144384, "budget": 6318493120u64, "entries": 1, "hits": 3,
                             "misses": 2, "reused_tokens": 411}}))
        .unwrap();
        assert_eq!((s.memory.active, s.memory.cache), (123, 789));
        assert_eq!(
            s.prefix_cache,
            Some(PrefixCacheStats {
                bytes: 144384,
                budget: 6318493120,
                entries: 1,
                hits: 3,
                misses: 2,
                reused_tokens: 411,
            })
        );
        let bare: Status = serde_json::from_value(json!({"backend": "cpu"})).unwrap();
        assert_eq!(bare.prefix_cache, None);
    }

    #[test]
    fn events_parse() {
        let done: Event = serde_json::from_value(json!({"event":"done","done_reason":"length",
            "prompt_eval_count":3,"prompt_eval_duration":10,"eval_count":2,"eval_duration":20}))
        .unwrap();
        assert_eq!(
            done.into_runner_event().unwrap(),
            RunnerEvent::Done(Done {
                done_reason: "length".into(),
                prompt_eval_count: 3,
                prompt_eval_duration: 10,
                eval_count: 2,
                eval_duration: 20,
                context: None,
                stop_sequence: None
            })
        );
        let err: Event = serde_json::from_str(r#"{"event":"error","error":"boom"}"#).unwrap();
        assert_eq!(err.into_runner_event().unwrap_err(), "boom");
        let chunk: Event = serde_json::from_str(r#"{"event":"chunk","content":"hi"}"#).unwrap();
        assert_eq!(
            chunk,
            Event::Chunk {
                content: "hi".into(),
                logprobs: vec![]
            }
        );
        let chunk: Event = serde_json::from_value(json!({"event": "chunk", "content": "a",
            "logprobs": [{"token": "a", "logprob": -0.5, "bytes": [97],
                          "top_logprobs": [{"token": "a", "logprob": -0.5, "bytes": [97]}]}]}))
        .unwrap();
        let Event::Chunk { logprobs, .. } = chunk else {
            panic!()
        };
        assert_eq!(logprobs[0].top_logprobs[0].token, "a");
        let start: Event =
            serde_json::from_str(r#"{"event":"start","prompt_tokens":4,"thinking":true}"#).unwrap();
        assert_eq!(
            start.into_runner_event().unwrap(),
            RunnerEvent::Start {
                prompt_tokens: 4,
                thinking: true
            }
        );
    }

    #[test]
    fn completion_body_shape() {
        let mut req = CompletionRequest::new(
            "r1".into(),
            PromptInput::Raw("hello".into()),
            SamplingOptions {
                num_keep: 4,
                num_predict: 5,
                temperature: 0.0,
                top_k: 40,
                top_p: 0.9,
                min_p: 0.0,
                seed: -1,
                stop: vec!["x".into()],
                repeat_penalty: 1.0,
                repeat_last_n: 64,
                presence_penalty: 0.0,
                frequency_penalty: 0.0,
                num_ctx: 2048,
            },
        );
        req.context = Some(vec![1, 2]);
        req.return_context = true;
        let v = serde_json::to_value(CompletionBody::new(&req)).unwrap();
        for absent in [
            "tools",
            "template_kwargs",
            "format",
            "constrain_after",
            "logprobs",
            "top_logprobs",
            "think_tags",
        ] {
            assert!(v.get(absent).is_none(), "{absent}");
        }
        req.tools = vec![json!({"type": "function"})];
        req.template_kwargs
            .insert("enable_thinking".into(), json!(false));
        req.format = Some(json!("json"));
        req.constrain_after = Some("</think>".into());
        req.logprobs = Some(3);
        req.think_tags = Some(("<think>".into(), "</think>".into()));
        req.prefill = Some("<tool_call>\n".into());
        let full = serde_json::to_value(CompletionBody::new(&req)).unwrap();
        assert_eq!(full["tools"], json!([{"type": "function"}]));
        assert_eq!(full["template_kwargs"], json!({"enable_thinking": false}));
        assert_eq!(full["format"], "json");
        assert_eq!(full["constrain_after"], "</think>");
        assert_eq!(
            (full["logprobs"].clone(), full["top_logprobs"].clone()),
            (json!(true), json!(3))
        );
        assert_eq!(full["think_tags"], json!(["<think>", "</think>"]));
        assert_eq!(full["prefill"], "<tool_call>\n");
        assert_eq!(v["prompt"], "hello");
        assert!(v.get("messages").is_none());
        assert_eq!(v["context"], json!([1, 2]));
        assert_eq!(v["options"]["num_ctx"], 2048);
        assert_eq!(v["options"]["stop"], json!(["x"]));
        assert_eq!(v["return_context"], true);
    }
}

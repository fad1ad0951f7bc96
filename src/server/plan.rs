//! How one request is rendered and read back: what the model's template can do (thinking tags,
//! tool-call format), whether it thinks, the template variables, the constraint, and a forced
//! tool call. Pure decisions, unit-tested without a runner.

use super::error::ServerError;
use super::infer::Job;
use crate::api::{Think, ToolChoice};
use crate::output::{OutputSpec, ToolFormat};
use crate::runner::PromptInput;
use crate::store::LocalModel;
use serde_json::{json, Map, Value};

/// What a model can do with its prompt template: think (and with which tags) and take tools
/// (in which output format). Capabilities in `/api/show` and request checks come from here too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateTraits {
    pub think_tags: Option<(String, String)>,
    pub tools: Option<ToolFormat>,
    /// Harmony (gpt-oss): always reasons, in channels; effort by `reasoning_effort`.
    pub harmony: bool,
}

impl TemplateTraits {
    pub fn can_think(&self) -> bool {
        self.think_tags.is_some() || self.harmony
    }
}

impl TemplateTraits {
    pub fn of(model: &LocalModel) -> TemplateTraits {
        let Some(t) = model.prompt_template() else {
            return TemplateTraits::default();
        };
        if model.config.template.is_some() {
            // An Ollama Go template: Ollama's own inference of the tags.
            let parsed = crate::template::prompt::parse(&t).ok();
            let caps = parsed.as_ref().map(crate::template::prompt::capabilities);
            return TemplateTraits {
                think_tags: parsed
                    .as_ref()
                    .and_then(crate::template::prompt::thinking_tags),
                tools: caps
                    .filter(|c| c.tools)
                    .map(|_| ToolFormat::detect(&t).unwrap_or(ToolFormat::Json)),
                harmony: false,
            };
        }
        TemplateTraits {
            think_tags: crate::output::think::jinja_tags(&t),
            tools: ToolFormat::detect(&t),
            harmony: crate::output::harmony::detect(&t),
        }
    }
}

/// How one request is rendered and read back.
pub struct Plan {
    pub spec: OutputSpec,
    pub think: Option<Think>,
    pub template_kwargs: Map<String, Value>,
    /// The constraint (the request's format, or a forced call's schema).
    pub format: Option<Value>,
    pub constrain_after: Option<String>,
    /// The start of the reply, given (a forced call's opening marker).
    pub prefill: Option<String>,
}

pub fn plan(job: &Job, traits: &TemplateTraits) -> Result<Plan, ServerError> {
    let raw = matches!(job.input, PromptInput::Raw(_));
    let tools = (!job.tools.is_empty()).then(|| traits.tools.clone().unwrap_or(ToolFormat::Json));
    let forced = match &tools {
        Some(_) if traits.harmony => None,
        Some(f) => forced_call(f, &job.tools, &job.tool_choice)?,
        None => None,
    };
    if forced.is_some() && job.format.is_some() {
        return Err(ServerError::BadRequest(
            "a response format cannot be combined with a required tool call".into(),
        ));
    }
    // Thinking models think unless told not to (Ollama's default); raw prompts only when asked.
    // A forced call is the whole reply, so there is no room for reasoning before it.
    let can_think = traits.can_think();
    let think = match &job.think {
        _ if can_think && forced.is_some() => Some(Think::Off),
        Some(t) => Some(t.clone()),
        None if can_think && !raw => Some(Think::On),
        None => None,
    };
    let thinking_on = think.as_ref().is_some_and(Think::is_on);
    let mut template_kwargs = Map::new();
    if let Some(t) = &think {
        template_kwargs.insert("enable_thinking".into(), json!(t.is_on()));
        if let Some(level) = t.level() {
            template_kwargs.insert("reasoning_effort".into(), json!(level));
        }
        if traits.harmony {
            // gpt-oss always reasons; "off" is the least of it (and its text is dropped).
            let effort = match t {
                Think::Off => "low",
                Think::On => "medium",
                Think::Level(l) if l == "max" => "high",
                Think::Level(l) => l.as_str(),
            };
            template_kwargs.insert("reasoning_effort".into(), json!(effort));
        }
    }
    let spec = OutputSpec {
        think: traits.think_tags.clone().filter(|_| think.is_some()),
        drop_thinking: !thinking_on,
        tools,
        tool_defs: job.tools.clone(),
        harmony: traits.harmony,
    };
    let constrain_after = match (&job.format, &spec.think) {
        (Some(_), Some((_, close))) if thinking_on => Some(close.clone()),
        _ => None,
    };
    let (prefill, format) = match forced {
        Some((prefill, schema)) => (prefill, Some(schema)),
        None => (None, job.format.clone()),
    };
    Ok(Plan {
        spec,
        think,
        template_kwargs,
        format,
        constrain_after,
        prefill,
    })
}

/// A required tool call as constrained decoding: the reply starts with the family's opening
/// marker and continues with a JSON call whose name is one of the tools and whose arguments
/// follow that tool's schema. `None` when the choice is auto, or when the family writes calls in
/// a syntax other than JSON (XML-style families), where the call cannot be forced.
fn forced_call(
    format: &ToolFormat,
    tools: &[Value],
    choice: &ToolChoice,
) -> Result<Option<(Option<String>, Value)>, ServerError> {
    let chosen: Vec<&Value> = match choice {
        ToolChoice::Auto => return Ok(None),
        ToolChoice::Required => tools.iter().collect(),
        ToolChoice::Named(name) => {
            let t: Vec<&Value> = tools
                .iter()
                .filter(|t| t["function"]["name"] == name.as_str())
                .collect();
            if t.is_empty() {
                return Err(ServerError::BadRequest(format!(
                    "tool_choice names {name:?}, which is not one of the tools"
                )));
            }
            t
        }
    };
    let calls: Vec<Value> = chosen
        .iter()
        .map(|t| {
            let f = &t["function"];
            let params = match &f["parameters"] {
                Value::Object(p) if !p.is_empty() => Value::Object(p.clone()),
                _ => json!({"type": "object"}),
            };
            json!({"type": "object", "properties": {"name": {"const": f["name"]}, "arguments": params},
                   "required": ["name", "arguments"], "additionalProperties": false})
        })
        .collect();
    let call = if calls.len() == 1 {
        calls.into_iter().next().unwrap_or_default()
    } else {
        json!({"anyOf": calls})
    };
    Ok(match format {
        ToolFormat::Tagged { open, .. } if open == "<tool_call>" => {
            Some((Some(format!("{open}\n")), call))
        }
        ToolFormat::Mistral => Some((
            Some("[TOOL_CALLS]".into()),
            json!({"type": "array", "items": call, "minItems": 1}),
        )),
        ToolFormat::Json => Some((None, call)),
        ToolFormat::Tagged { open, .. } => {
            tracing::warn!(marker = %open, "this model's tool-call syntax cannot be forced; tool_choice is advisory");
            None
        }
    })
}

/// `think` as Go templates see it (`.Think`, `.ThinkLevel`, `.IsThinkSet`).
pub fn go_think(think: Option<&Think>) -> crate::template::prompt::Think {
    let v = think.map(|t| match t {
        Think::Off => json!(false),
        Think::On => json!(true),
        Think::Level(l) => json!(l),
    });
    crate::template::prompt::Think::from_request(v.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> Value {
        json!({"type": "function", "function": {"name": name, "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
    }

    #[test]
    fn forced_calls_by_family() {
        let hermes = ToolFormat::detect("<tool_call>").unwrap();
        let tools = [tool("a"), tool("b")];
        let (prefill, schema) = forced_call(&hermes, &tools, &ToolChoice::Required)
            .unwrap()
            .unwrap();
        assert_eq!(prefill.as_deref(), Some("<tool_call>\n"));
        assert_eq!(schema["anyOf"].as_array().unwrap().len(), 2);
        let (_, one) = forced_call(&hermes, &tools, &ToolChoice::Named("b".into()))
            .unwrap()
            .unwrap();
        assert_eq!(one["properties"]["name"], json!({"const": "b"}));
        assert_eq!(one["properties"]["arguments"]["required"], json!(["city"]));
        assert!(forced_call(&hermes, &tools, &ToolChoice::Named("c".into())).is_err());
        assert!(forced_call(&hermes, &tools, &ToolChoice::Auto)
            .unwrap()
            .is_none());
        let (p, s) = forced_call(&ToolFormat::Mistral, &tools, &ToolChoice::Required)
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.as_deref(), s["type"].as_str()),
            (Some("[TOOL_CALLS]"), Some("array"))
        );
        let kimi = ToolFormat::detect("<|tool_calls_section_begin|>").unwrap();
        assert!(forced_call(&kimi, &tools, &ToolChoice::Required)
            .unwrap()
            .is_none());
    }
}

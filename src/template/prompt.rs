//! Ollama's prompt construction for Go-template models: its `template.Parse`/`Execute`
//! (`template/template.go`) and `chatPrompt` (`server/prompt.go`), plus the message assembly its
//! chat and generate handlers do before that.
//!
//! - Messages-style templates (those referencing `.Messages`) run once, with `.System` (all system
//!   messages joined by blank lines), `.Messages` (consecutive same-role messages merged, tool
//!   results excepted), `.Tools`, `.Think`, `.ThinkLevel`, `.IsThinkSet` and an empty
//!   `.Response`.
//! - Legacy templates run once per turn with `.System`, `.Prompt` and `.Response`; the final turn
//!   is cut right after `{{ .Response }}` so the model continues from there.
//! - With a prompt and a suffix, the template runs for fill-in-the-middle with `.Prompt` and
//!   `.Suffix`.

use std::borrow::Cow;

use serde_json::Value as Json;

use crate::api::Message;

use gotemplate::ast::{Arg, Command, Node, Pipe};
use gotemplate::Map;

use super::{data, inspect, Template, TemplateError, Value};

/// The request's `think` as templates see it: `.Think`, `.ThinkLevel` and `.IsThinkSet`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Think {
    pub enabled: bool,
    pub level: String,
    pub is_set: bool,
}

impl Think {
    /// Ollama's `ThinkValue.Bool()`/`String()`: `true` is enabled at level "medium", a level
    /// string ("high", "medium", "low") is enabled at that level, absent or `null` is unset.
    pub fn from_request(think: Option<&Json>) -> Think {
        match think {
            None | Some(Json::Null) => Think::default(),
            Some(Json::Bool(b)) => Think {
                enabled: *b,
                level: if *b {
                    "medium".to_owned()
                } else {
                    String::new()
                },
                is_set: true,
            },
            Some(Json::String(s)) => Think {
                enabled: matches!(s.as_str(), "high" | "medium" | "low"),
                level: s.clone(),
                is_set: true,
            },
            Some(_) => Think {
                is_set: true,
                ..Think::default()
            },
        }
    }
}

/// What a template is executed with (Ollama's `template.Values`).
#[derive(Debug, Clone, Default)]
pub struct Values<'a> {
    pub messages: &'a [Message],
    /// Tools in Ollama's wire shape (`{"type":"function","function":{...}}`).
    pub tools: &'a [Json],
    pub prompt: &'a str,
    pub suffix: &'a str,
    pub think: Think,
}

/// Ollama's `template.Parse`: Go's parse, then its identifier walk, which rejects a
/// `{{ template "name" }}` without a pipeline ("undefined template specified").
pub fn parse(source: &str) -> Result<Template, TemplateError> {
    let template = super::parse(source)?;
    if let (_, Some(e)) = inspect::vars(template.root(), template.defines()) {
        return Err(TemplateError::Other(e));
    }
    Ok(template)
}

/// Ollama's `Template.Execute`.
pub fn execute(template: &Template, values: &Values<'_>) -> Result<String, TemplateError> {
    let (vars, error) = inspect::vars(template.root(), template.defines());
    if let Some(e) = error {
        return Err(TemplateError::Other(e));
    }
    let root = with_response(template, &vars);
    let think = &values.think;
    let (system, messages) = collate(values.messages);

    if !values.prompt.is_empty() && !values.suffix.is_empty() {
        let data = go_map(
            vec![
                ("Prompt", Value::from(values.prompt)),
                ("Suffix", Value::from(values.suffix)),
                ("Response", Value::from("")),
            ],
            think,
        );
        return template.execute_body(&root, &data);
    }

    if vars.iter().any(|v| v == "messages") {
        let data = go_map(
            vec![
                ("System", Value::from(system)),
                ("Messages", data::messages(&messages)),
                ("Tools", data::tools(values.tools)),
                ("Response", Value::from("")),
            ],
            think,
        );
        return template.execute_body(&root, &data);
    }

    legacy(template, &root, &messages, think)
}

/// Legacy templates: one execution per user/assistant turn, the last one cut after `.Response`.
fn legacy(
    template: &Template,
    root: &[Node],
    messages: &[Message],
    think: &Think,
) -> Result<String, TemplateError> {
    let turn = |system: &str, prompt: &str, response: &str| {
        go_map(
            vec![
                ("System", Value::from(system)),
                ("Prompt", Value::from(prompt)),
                ("Response", Value::from(response)),
            ],
            think,
        )
    };
    let mut out = String::new();
    let (mut system, mut prompt, mut response) = (String::new(), String::new(), String::new());
    for m in messages {
        // A system message after a turn, or a user message after an answer, closes the turn.
        let closes = match m.role.as_str() {
            "system" => !prompt.is_empty() || !response.is_empty(),
            "user" => !response.is_empty(),
            _ => false,
        };
        if closes {
            out.push_str(&template.execute_body(root, &turn(&system, &prompt, &response))?);
            system.clear();
            prompt.clear();
            response.clear();
        }
        match m.role.as_str() {
            "system" => system.clone_from(&m.content),
            "user" => prompt.clone_from(&m.content),
            "assistant" => response.clone_from(&m.content),
            _ => {}
        }
    }
    let cut = inspect::cut_after_response(root).map_err(|()| {
        TemplateError::Other(
            "template: cannot cut the final turn after .Response: an else branch follows it \
             (Ollama panics on this template)"
                .to_owned(),
        )
    })?;
    out.push_str(&template.execute_body(&cut, &turn(&system, &prompt, &response))?);
    Ok(out)
}

/// Ollama's `Parse` appends `{{ .Response }}` to templates that mention neither `.Messages` nor
/// `.Response`, so legacy and FIM output ends where the model's answer goes.
fn with_response<'t>(template: &'t Template, vars: &[String]) -> Cow<'t, [Node]> {
    if vars.iter().any(|v| v == "messages" || v == "response") {
        return Cow::Borrowed(template.root());
    }
    let mut root = template.root().to_vec();
    root.push(Node::Action(Pipe {
        pos: 0,
        is_assign: false,
        decl: Vec::new(),
        cmds: vec![Command {
            args: vec![Arg::Field {
                pos: 0,
                idents: vec!["Response".to_owned()],
            }],
        }],
    }));
    Cow::Owned(root)
}

/// The `map[string]any` Ollama executes with, plus the think fields every mode gets.
fn go_map(mut entries: Vec<(&str, Value)>, think: &Think) -> Value {
    entries.push(("Think", Value::Bool(think.enabled)));
    entries.push(("ThinkLevel", Value::from(think.level.as_str())));
    entries.push(("IsThinkSet", Value::Bool(think.is_set)));
    Value::from(Map::sorted(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    ))
}

/// Ollama's `collate`: every system message's content joined by blank lines, and the messages
/// with consecutive same-role ones merged (content only, joined by a blank line; tool results
/// stay separate).
fn collate(msgs: &[Message]) -> (String, Vec<Message>) {
    let mut system = Vec::new();
    let mut collated: Vec<Message> = Vec::new();
    for m in msgs {
        if m.role == "system" {
            system.push(m.content.as_str());
        }
        match collated.last_mut() {
            Some(last) if last.role == m.role && m.role != "tool" => {
                last.content.push_str("\n\n");
                last.content.push_str(&m.content);
            }
            _ => collated.push(m.clone()),
        }
    }
    (system.join("\n\n"), collated)
}

/// Renders a chat with a Go template (Ollama's `renderPrompt` for template models): no
/// truncation and no image markers.
pub fn render_chat(
    template: &Template,
    messages: &[Message],
    tools: &[Json],
    think: &Think,
) -> Result<String, TemplateError> {
    execute(
        template,
        &Values {
            messages,
            tools,
            think: think.clone(),
            ..Values::default()
        },
    )
}

/// Renders a fill-in-the-middle request (`/api/generate` with `suffix`).
pub fn render_fim(
    template: &Template,
    prompt: &str,
    suffix: &str,
    think: &Think,
) -> Result<String, TemplateError> {
    execute(
        template,
        &Values {
            prompt,
            suffix,
            think: think.clone(),
            ..Values::default()
        },
    )
}

/// How to fit a chat into the context window.
pub struct Truncation<'a> {
    /// `num_ctx`.
    pub num_ctx: usize,
    /// Tokens in a rendered prompt.
    pub count_tokens: &'a dyn Fn(&str) -> usize,
    /// Tokens counted per image: Ollama uses 768 for models with a vision projector, else 0.
    pub image_tokens: usize,
}

/// An image referenced from the prompt as `[img-ID]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptImage {
    pub id: usize,
    /// Base64 data, as sent.
    pub data: String,
}

/// A rendered chat prompt and the images it references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatPrompt {
    pub prompt: String,
    pub images: Vec<PromptImage>,
}

/// Ollama's `chatPrompt` for Go templates.
///
/// With `truncation`, messages are dropped from the front until the rendered prompt fits
/// `num_ctx`: system messages from the dropped part are kept (placed first), the last message is
/// always kept, and a tool result is never separated from the assistant tool call before it.
/// Then each kept message's images get markers: a `[img]` in the text is replaced by `[img-N]`,
/// otherwise the markers go before the text.
pub fn chat_prompt(
    template: &Template,
    messages: &[Message],
    tools: &[Json],
    think: &Think,
    truncation: Option<&Truncation<'_>>,
) -> Result<ChatPrompt, TemplateError> {
    let mut system: Vec<Message> = Vec::new();
    let mut first = 0;
    if let Some(t) = truncation {
        for i in 0..messages.len() {
            let start = tool_block_start(messages, i);
            system = messages[..start]
                .iter()
                .filter(|m| m.role == "system")
                .cloned()
                .collect();
            let candidate = [system.as_slice(), &messages[start..]].concat();
            let prompt = render_chat(template, &candidate, tools, think)?;
            let images: usize = messages[start..].iter().map(|m| m.images.len()).sum();
            let tokens = (t.count_tokens)(&prompt) + t.image_tokens * images;
            if tokens <= t.num_ctx || i + 1 == messages.len() {
                first = start;
                break;
            }
        }
    }

    let mut kept = messages[first..].to_vec();
    let mut images = Vec::new();
    for m in &mut kept {
        let mut prefix = String::new();
        let mut content = std::mem::take(&mut m.content);
        for data in &m.images {
            let id = images.len();
            images.push(PromptImage {
                id,
                data: data.clone(),
            });
            let tag = format!("[img-{id}]");
            if content.contains("[img]") {
                content = content.replacen("[img]", &tag, 1);
            } else {
                prefix.push_str(&tag);
            }
        }
        m.content = prefix + &content;
    }

    let all = [system, kept].concat();
    let prompt = render_chat(template, &all, tools, think)?;
    Ok(ChatPrompt { prompt, images })
}

/// Where truncation may start when it would start at `idx`: at a tool result, back up to the
/// assistant message whose tool calls produced it.
fn tool_block_start(msgs: &[Message], idx: usize) -> usize {
    if idx == 0 || idx >= msgs.len() || msgs[idx].role != "tool" {
        return idx;
    }
    let mut start = idx;
    while start > 0 && msgs[start - 1].role == "tool" {
        start -= 1;
    }
    match start.checked_sub(1) {
        Some(a) if msgs[a].role == "assistant" && !msgs[a].tool_calls.is_empty() => a,
        _ => idx,
    }
}

/// The messages `/api/chat` renders: the model's `MESSAGE`s, then the request's, with the
/// model's `SYSTEM` first unless the request starts with its own system message.
pub fn chat_messages(
    model_system: &str,
    model_messages: &[Message],
    request: &[Message],
) -> Vec<Message> {
    let mut msgs = [model_messages, request].concat();
    if let Some(first) = request.first() {
        if first.role != "system" && !model_system.is_empty() {
            msgs.insert(0, Message::new("system", model_system));
        }
    }
    msgs
}

/// The messages `/api/generate` renders (without `raw`, `suffix` or a request `template`): the
/// request's `system` or else the model's, the model's `MESSAGE`s unless the request carries a
/// `context`, then the prompt as a user message with the images.
pub fn generate_messages(
    request_system: &str,
    model_system: &str,
    model_messages: &[Message],
    has_context: bool,
    prompt: &str,
    images: &[String],
) -> Vec<Message> {
    let mut msgs = Vec::new();
    let system = if request_system.is_empty() {
        model_system
    } else {
        request_system
    };
    if !system.is_empty() {
        msgs.push(Message::new("system", system));
    }
    if !has_context {
        msgs.extend_from_slice(model_messages);
    }
    let mut user = Message::new("user", prompt);
    user.images = images.to_vec();
    msgs.push(user);
    msgs
}

/// What a template says the model can do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The template references `.Tools`.
    pub tools: bool,
    /// The template references `.Suffix` (fill-in-the-middle).
    pub insert: bool,
    /// Thinking tags can be inferred (see [`thinking_tags`]). Ollama also grants thinking to the
    /// gpt-oss family and to models with a built-in parser; that is not the template's business.
    pub thinking: bool,
}

/// Ollama's template-derived capabilities (`Model.Capabilities` in `server/images.go`).
pub fn capabilities(template: &Template) -> Capabilities {
    let (vars, _) = inspect::vars(template.root(), template.defines());
    let has = |name: &str| vars.iter().any(|v| v == name);
    Capabilities {
        tools: has("tools"),
        insert: has("suffix"),
        thinking: thinking_tags(template).is_some(),
    }
}

/// The opening and closing thinking tags Ollama infers from the template (e.g. `<think>` and
/// `</think>`), when both are found.
pub fn thinking_tags(template: &Template) -> Option<(String, String)> {
    let (open, close) = inspect::infer_thinking_tags(template.root());
    (!open.is_empty() && !close.is_empty()).then_some((open, close))
}

/// Ollama's `Template.Vars()`: the lower-cased names of every field and variable the template
/// references (`messages`, `tools`, `system`, `$i`, ...), sorted and de-duplicated.
pub fn vars(template: &Template) -> Vec<String> {
    inspect::vars(template.root(), template.defines()).0
}

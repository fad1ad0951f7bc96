//! Ollama's prompt construction: collation, model defaults, think fields, truncation, image
//! markers, the legacy `.Response` cut, identifiers, capabilities and thinking tags.

use serde_json::json;

use super::super::inspect::infer_thinking_tags;
use super::super::prompt::{
    capabilities, chat_messages, chat_prompt, generate_messages, parse, render_chat, thinking_tags,
    vars, Capabilities, PromptImage, Think, Truncation,
};
use super::fixtures::{CHATML, LLAMA31, QWEN25_TOOLS};
use super::msg;
use crate::api::Message;

const ROLES: &str = "{{ range .Messages }}{{ .Role }}:{{ .Content }};{{ end }}";

fn chat(template: &str, messages: &[Message]) -> String {
    render_chat(&parse(template).unwrap(), messages, &[], &Think::default()).unwrap()
}

fn tool_call_message() -> Message {
    let mut m = msg("assistant", "");
    m.tool_calls = vec![
        json!({"function": {"name": "f", "arguments": {"b": 1, "a": [2.5, {"z": null, "y": "<"}]}}}),
    ];
    m
}

#[test]
fn collate_merges_same_role_runs_but_not_tool_results() {
    let messages = [
        msg("system", "s1"),
        msg("system", "s2"),
        msg("user", "a"),
        msg("user", "b"),
        msg("tool", "t1"),
        msg("tool", "t2"),
        msg("assistant", "x"),
        msg("assistant", "y"),
    ];
    let out = chat(&format!("{{{{ .System }}}}|{ROLES}"), &messages);
    assert_eq!(
        out,
        "s1\n\ns2|system:s1\n\ns2;user:a\n\nb;tool:t1;tool:t2;assistant:x\n\ny;"
    );
}

#[test]
fn tool_calls_and_messages_expose_ollamas_fields() {
    let mut tool = msg("tool", "42");
    tool.tool_name = "f".into();
    let messages = [msg("user", "q"), tool_call_message(), tool];
    let src = "{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Index }} {{ .Function.Name }} {{ .Function.Arguments }} {{ json .Function.Arguments }} {{ .Function.Arguments.b }}{{ end }}{{ if .ToolName }}|{{ .ToolName }}={{ .Content }}{{ end }}{{ end }}";
    let args = r#"{"a":[2.5,{"y":"\u003c","z":null}],"b":1}"#;
    assert_eq!(chat(src, &messages), format!("0 f {args} {args} 1|f=42"));
    // A message prints as Go prints the struct; tool calls without arguments print `{}`.
    let mut bare = msg("assistant", "");
    bare.tool_calls = vec![json!({"id": "c1", "function": {"name": "g"}})];
    let out = chat("{{ range .Messages }}{{ . }}{{ end }}", &[bare]);
    assert_eq!(out, "{assistant   [] [{c1 {0 g {}}}]  }");
}

/// Ollama executes with a `map[string]any`, and Go prints a key missing from such a map as
/// `<no value>` even with `missingkey=zero` (golang/go#24963); conditions on it are just false.
#[test]
fn keys_outside_the_mode_print_no_value() {
    let out = chat(
        "{{ .Messages }}{{ .Prompt }}|{{ if .Prompt }}p{{ end }}",
        &[],
    );
    assert_eq!(out, "[]<no value>|");
    let legacy = chat("{{ .Prompt }}{{ .Tools }}", &[msg("user", "q")]);
    assert_eq!(legacy, "q<no value>");
}

#[test]
fn model_system_and_messages_come_first() {
    let model = [msg("user", "example"), msg("assistant", "reply")];
    let req = [msg("user", "hi")];
    let roles = |ms: Vec<Message>| {
        ms.iter()
            .map(|m| format!("{}:{}", m.role, m.content))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        roles(chat_messages("be nice", &model, &req)),
        [
            "system:be nice",
            "user:example",
            "assistant:reply",
            "user:hi"
        ]
    );
    let own = [msg("system", "mine"), msg("user", "hi")];
    assert_eq!(
        roles(chat_messages("be nice", &[], &own)),
        ["system:mine", "user:hi"]
    );
    assert_eq!(roles(chat_messages("", &[], &req)), ["user:hi"]);

    let images = vec!["aW1n".to_owned()];
    let gen = generate_messages("", "model sys", &model, false, "p", &images);
    assert_eq!(
        roles(gen.clone()),
        [
            "system:model sys",
            "user:example",
            "assistant:reply",
            "user:p"
        ]
    );
    assert_eq!(gen[3].images, images);
    let gen = generate_messages("req sys", "model sys", &model, true, "p", &[]);
    assert_eq!(roles(gen), ["system:req sys", "user:p"]);
}

#[test]
fn think_fields_reach_every_kind_of_template() {
    let cases = [
        (None, "false||false"),
        (Some(json!(null)), "false||false"),
        (Some(json!(true)), "true|medium|true"),
        (Some(json!(false)), "false||true"),
        (Some(json!("high")), "true|high|true"),
    ];
    let messages =
        parse("{{ .Think }}|{{ .ThinkLevel }}|{{ .IsThinkSet }}{{ .Messages }}").unwrap();
    let legacy = parse("{{ .Think }}|{{ .ThinkLevel }}|{{ .IsThinkSet }}{{ .Prompt }}").unwrap();
    for (value, want) in cases {
        let think = Think::from_request(value.as_ref());
        assert_eq!(
            render_chat(&messages, &[], &[], &think).unwrap(),
            format!("{want}[]")
        );
        assert_eq!(
            render_chat(&legacy, &[msg("user", "x")], &[], &think).unwrap(),
            format!("{want}x")
        );
    }
}

fn count_bytes(s: &str) -> usize {
    s.len()
}

#[test]
fn truncation_keeps_system_messages_and_the_last_message() {
    let t = parse(ROLES).unwrap();
    let msgs = [
        msg("system", "sys"),
        msg("user", "u1"),
        msg("assistant", "a1"),
        msg("user", "u2"),
        msg("assistant", "a2"),
        msg("user", "u3"),
    ];
    let think = Think::default();
    let run = |num_ctx: usize| {
        let truncation = Truncation {
            num_ctx,
            count_tokens: &count_bytes,
            image_tokens: 0,
        };
        chat_prompt(&t, &msgs, &[], &think, Some(&truncation))
            .unwrap()
            .prompt
    };
    let full = "system:sys;user:u1;assistant:a1;user:u2;assistant:a2;user:u3;";
    assert_eq!(run(1000), full);
    let from_u2 = "system:sys;user:u2;assistant:a2;user:u3;";
    assert_eq!(run(from_u2.len()), from_u2);
    // One byte less and the next start that fits is the assistant message before the last.
    assert_eq!(run(from_u2.len() - 1), "system:sys;assistant:a2;user:u3;");
    // Nothing fits: the system messages and the last message are still sent.
    assert_eq!(run(0), "system:sys;user:u3;");
    // Without truncation everything is rendered.
    assert_eq!(
        chat_prompt(&t, &msgs, &[], &think, None).unwrap().prompt,
        full
    );
}

#[test]
fn truncation_never_orphans_tool_results() {
    let t = parse(ROLES).unwrap();
    let think = Think::default();
    let run = |msgs: &[Message], num_ctx: usize| {
        let truncation = Truncation {
            num_ctx,
            count_tokens: &count_bytes,
            image_tokens: 0,
        };
        chat_prompt(&t, msgs, &[], &think, Some(&truncation))
            .unwrap()
            .prompt
    };
    let block = [
        msg("system", "sys"),
        msg("user", "u1"),
        tool_call_message(),
        msg("tool", "t1"),
        msg("tool", "t2"),
        msg("user", "u2"),
    ];
    let with_block = "system:sys;assistant:;tool:t1;tool:t2;user:u2;";
    assert_eq!(run(&block, with_block.len()), with_block);
    // One token short: the whole tool block goes, never just the call or one result.
    assert_eq!(run(&block, with_block.len() - 1), "system:sys;user:u2;");
    // A tool result that is the last message keeps the call that produced it.
    let ending = [
        msg("system", "sys"),
        msg("user", "u1"),
        tool_call_message(),
        msg("tool", "t1"),
    ];
    assert_eq!(run(&ending, 0), "system:sys;assistant:;tool:t1;");
}

#[test]
fn truncation_counts_images() {
    let t = parse(ROLES).unwrap();
    let mut first = msg("user", "a");
    first.images = vec!["aW1n".into()];
    let msgs = [first, msg("assistant", "b"), msg("user", "c")];
    let zero = |_: &str| 0;
    let truncation = Truncation {
        num_ctx: 767,
        count_tokens: &zero,
        image_tokens: 768,
    };
    let out = chat_prompt(&t, &msgs, &[], &Think::default(), Some(&truncation)).unwrap();
    assert_eq!(out.prompt, "assistant:b;user:c;");
    assert!(out.images.is_empty());
}

#[test]
fn images_become_markers() {
    let mut first = msg("user", "look [img] here and [img]");
    first.images = vec!["AAA".into()];
    let mut second = msg("user", "two");
    second.images = vec!["BBB".into(), "CCC".into()];
    let msgs = [first, msg("assistant", "ok"), second];
    let out = chat_prompt(&parse(ROLES).unwrap(), &msgs, &[], &Think::default(), None).unwrap();
    assert_eq!(
        out.prompt,
        "user:look [img-0] here and [img];assistant:ok;user:[img-1][img-2]two;"
    );
    let ids: Vec<(usize, &str)> = out
        .images
        .iter()
        .map(|PromptImage { id, data }| (*id, data.as_str()))
        .collect();
    assert_eq!(ids, [(0, "AAA"), (1, "BBB"), (2, "CCC")]);
}

#[test]
fn legacy_final_turn_is_cut_after_response() {
    let src = "{{ .System }}{{ if .Prompt }}P:{{ .Prompt }} R:{{ .Response }} tail{{ end }} after";
    assert_eq!(
        chat(src, &[msg("system", "s"), msg("user", "p")]),
        "sP:p R:"
    );
    // Arguments after `.Response` in the same call are cut too; earlier turns are complete.
    let src = r#"[{{ .Prompt }}]{{ print .Response "!" }}END"#;
    let msgs = [msg("user", "q"), msg("assistant", "a"), msg("user", "q2")];
    assert_eq!(chat(src, &msgs), "[q]a!END[q2]");
    // A template without `.Response` gets one appended, so the answer follows the last turn.
    assert_eq!(chat("<{{ .Prompt }}>", &msgs), "<q>a<q2>");
    // Ollama panics when the cut leaves an else branch behind; this is an error here.
    let err = render_chat(
        &parse("{{ if .Prompt }}{{ .Response }}x{{ else }}y{{ end }}").unwrap(),
        &msgs,
        &[],
        &Think::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("else branch"), "{err}");
}

#[test]
fn identifiers_match_ollamas_vars() {
    // Ollama's own `TestParse` cases. (Ollama also lists "response" for templates it appends
    // `{{ .Response }}` to; `Template::vars` reports the template as written.)
    let cases: &[(&str, &[&str])] = &[
        ("{{ .Prompt }}", &["prompt"]),
        ("{{ .System }} {{ .Prompt }}", &["prompt", "system"]),
        ("{{ .System }} {{ .Prompt }} {{ .Response }}", &["prompt", "response", "system"]),
        ("{{ with .Tools }}{{ . }}{{ end }} {{ .System }} {{ .Prompt }}", &["prompt", "system", "tools"]),
        ("{{ range .Messages }}{{ .Role }} {{ .Content }}{{ end }}", &["content", "messages", "role"]),
        ("{{ range .Messages }}{{ if eq .Role \"tool\" }}Tool Result: {{ .ToolName }} {{ .Content }}{{ end }}{{ end }}", &["content", "messages", "role", "toolname"]),
        ("{{- if .Messages }}\n{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ else -}}\n{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ .Response }}<|im_end|>\n{{- end -}}", &["content", "messages", "prompt", "response", "role", "system"]),
        ("{{ range $i, $m := $.Messages }}{{ $m.Content }}{{ (.X).Y }}{{ end }}", &["$", "$m", "content", "messages"]),
    ];
    for (src, want) in cases {
        assert_eq!(vars(&super::super::parse(src).unwrap()), *want, "{src}");
    }
}

#[test]
fn ollama_parse_rejects_template_calls_without_data() {
    let src = r#"{{ define "x" }}a{{ end }}{{ template "x" }}"#;
    assert_eq!(
        super::super::parse(src)
            .unwrap()
            .render(&json!({}))
            .unwrap(),
        "a"
    );
    assert_eq!(
        parse(src).unwrap_err().to_string(),
        "undefined template specified"
    );
}

#[test]
fn capabilities_from_templates() {
    let caps = |src: &str| capabilities(&parse(src).unwrap());
    assert_eq!(caps(CHATML), Capabilities::default());
    assert_eq!(
        caps(LLAMA31),
        Capabilities {
            tools: true,
            ..Capabilities::default()
        }
    );
    assert_eq!(
        caps(QWEN25_TOOLS),
        Capabilities {
            tools: true,
            insert: true,
            thinking: false
        }
    );
    let thinking = "{{ range $i, $_ := .Messages }}{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}{{ end }}";
    assert_eq!(
        caps(thinking),
        Capabilities {
            thinking: true,
            ..Capabilities::default()
        }
    );
    assert_eq!(
        thinking_tags(&parse(thinking).unwrap()),
        Some(("<think>".into(), "</think>".into()))
    );
}

/// Ollama's `TestInferThinkingTags` cases.
#[test]
fn thinking_tags_match_ollama() {
    let basic = "\n\t\t\t{{ if .Thinking}}\n\t\t\t\t/think\n\t\t\t{{ end }}\n\t\t\t{{- range $i, $_ := .Messages }}\n\t\t\t\t{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n\t\t\t\t{{ if and $last .Thinking }}\n\t\t\t\t\t<think>{{ .Thinking }}</think>\n\t\t\t\t{{ end }}\n\t\t\t{{ end }}\n\t\t";
    let nested = "\n\t\t\t{{ if .Thinking}}\n\t\t\t\t/think\n\t\t\t{{ end }}\n\t\t\t{{- range $i, $_ := .Messages }}\n\t\t\t\t{{- range $j, $_ := .NotMessages }}\n\t\t\t\t\t{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n\t\t\t\t\t{{ if and $last .Thinking }}\n\t\t\t\t\t\t<think>{{ .Thinking }}</think>\n\t\t\t\t\t{{ end }}\n\t\t\t\t{{ end }}\n\t\t\t{{ end }}\n\t\t";
    let spaced = "\n\t\t\t{{ if .Thinking}}\n\t\t\t\t/think\n\t\t\t{{ end }}\n\t\t\t{{- range $i, $_ := .Messages }}\n\t\t\t\t{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n\t\t\t\t{{ if and $last .Thinking }}\n\t\t\t\t\tSome text before   {{ .Thinking }}    Some text after\n\t\t\t\t{{ end }}\n\t\t\t{{ end }}\n\t\t";
    let gemma3 = "{{- range $i, $_ := .Messages }}\n{{- $last := eq (len (slice $.Messages $i)) 1 }}\n{{- if eq .Role \"user\" }}<start_of_turn>user\n{{- if and (eq $i 1) $.System }}\n{{ $.System }}\n{{ end }}\n{{ .Content }}<end_of_turn>\n{{ else if eq .Role \"assistant\" }}<start_of_turn>model\n{{- if and $last .Thinking }}<unused94>{{ .Thinking }}<unused95>\n{{ end }}\n{{ .Content }}<end_of_turn>\n{{ end }}\n{{- if $last }}<start_of_turn>model{{ if $.Think }}<unused94>{{ end }}\n{{ end }}\n{{- end }}";
    let cases = [
        (basic, "<think>", "</think>"),
        (nested, "", ""),
        (spaced, "Some text before", "Some text after"),
        (gemma3, "<unused94>", "<unused95>"),
    ];
    for (src, open, close) in cases {
        let t = super::super::parse(src).unwrap();
        assert_eq!(
            infer_thinking_tags(t.root()),
            (open.to_owned(), close.to_owned()),
            "{src}"
        );
    }
}

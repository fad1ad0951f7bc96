//! The functions Ollama registers (`json`, `currentDate`, `yesterdayDate`, `toTypeScriptType`).
//! Go's builtins are tested in the gotemplate crate.

use serde_json::json;

use super::{render, render_err};

#[test]
fn json_matches_go_marshal() {
    let data = json!({"M": {"b": "<a&b>\u{2028}", "a": [1, 2.5, null, true, 1e21, 0.0000001]}});
    assert_eq!(
        render("{{ json .M }}", data),
        r#"{"a":[1,2.5,null,true,1e+21,1e-7],"b":"\u003ca\u0026b\u003e\u2028"}"#
    );
    assert_eq!(
        render(r#"{{ json "a\"b\\c\n" }}|{{ json .Missing }}"#, json!({})),
        r#""a\"b\\c\n"|null"#
    );
}

#[test]
fn date_helpers() {
    let today = chrono::Local::now().date_naive();
    let out = render(
        "{{ currentDate }}|{{ yesterdayDate }}|{{ currentDate \"ignored\" }}",
        json!({}),
    );
    let yesterday = today.pred_opt().unwrap();
    assert_eq!(out, format!("{today}|{yesterday}|{today}"));
    let err = render_err("{{ currentDate 1 }}", json!({}));
    assert!(
        err.to_string().contains("expected string; found 1"),
        "{err}"
    );
}

#[test]
fn to_typescript_type() {
    use super::super::prompt::{render_chat, Think};
    let tools = vec![
        json!({"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {
            "a": {"type": "string"},
            "b": {"type": ["integer", "null"]},
            "c": {"anyOf": [{"type": "array"}, {"type": "object"}]},
            "d": {"description": "untyped"}
        }}}}),
    ];
    let t = super::super::prompt::parse(
        "{{ range .Tools }}{{ range $k, $v := .Function.Parameters.Properties }}{{ $k }}: {{ toTypeScriptType $v }}; {{ end }}{{ end }}{{ toTypeScriptType 1 }}{{ .Messages }}",
    )
    .unwrap();
    let out = render_chat(&t, &[], &tools, &Think::default()).unwrap();
    assert_eq!(
        out,
        "a: string; b: number | null; c: any[] | Record<string, any>; d: any; any[]"
    );
}

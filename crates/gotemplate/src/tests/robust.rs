//! Errors (typed, worded as Go words them, with positions) and execution limits. The garbage
//! generator that checks no input makes the engine panic or hang runs in the daemon, through
//! Ollama's prompt construction.

use serde_json::json;

use super::{render, render_err};
use crate::{Template, TemplateError};

fn parse_err(src: &str) -> (usize, String) {
    match Template::parse(src) {
        Err(TemplateError::Parse { line, message }) => (line, message),
        other => panic!("expected a parse error for {src:?}, got {other:?}"),
    }
}

#[test]
fn parse_errors_name_the_line_and_problem() {
    let cases: &[(&str, usize, &str)] = &[
        ("{{ .X", 1, "unclosed action"),
        ("a\nb\n{{ if .X }}", 3, "unexpected EOF"),
        ("{{ end }}", 1, "unexpected {{end}}"),
        ("{{ else }}", 1, "unexpected {{else}}"),
        ("{{ foo }}", 1, "function \"foo\" not defined"),
        ("\n{{ $x }}", 2, "undefined variable \"$x\""),
        ("{{ break }}", 1, "{{break}} outside {{range}}"),
        ("{{ \"abc }}", 1, "unterminated quoted string"),
        ("{{ .X! }}", 1, "bad character U+0021 '!'"),
        ("{{ }}", 1, "missing value for command"),
        ("{{ /* c */ }}", 1, "unexpected \"/\" in command"),
        (
            "{{ .X \u{1} }}",
            1,
            "unrecognized character in action: U+0001",
        ),
        ("{{/* c }}", 1, "unclosed comment"),
        ("{{/* c */ x}}", 1, "comment ends before closing delimiter"),
        (
            "{{ .X | 3 }}",
            1,
            "non executable command in pipeline stage 2",
        ),
        ("{{ if }}{{ end }}", 1, "missing value for if"),
        (
            "{{ range $i, $e, $f := .X }}{{ end }}",
            1,
            "too many declarations in range",
        ),
        (
            "{{ with .X }}{{ else if .Y }}{{ end }}",
            1,
            "unexpected <if> in input",
        ),
        ("{{ 1.2.3 }}", 1, "unexpected \".3\" in operand"),
        ("{{ (1 }}", 1, "unclosed left paren"),
        ("{{ 1) }}", 1, "unexpected right paren"),
        ("{{ \"x\".Y }}", 1, "unexpected . after term \"\\\"x\\\"\""),
        ("{{ \"\\q\" }}", 1, "invalid syntax"),
        (
            "{{ 99999999999999999999 }}",
            1,
            "integer overflow: \"99999999999999999999\"",
        ),
    ];
    for (src, line, message) in cases {
        assert_eq!(parse_err(src), (*line, (*message).to_owned()), "{src}");
    }
    assert_eq!(
        Template::parse("{{ .X").unwrap_err().to_string(),
        "template: :1: unclosed action"
    );
}

#[test]
fn execution_errors_carry_position_and_node() {
    let err = render_err("{{ .A.B }}", json!({}));
    assert_eq!(
        err,
        TemplateError::Exec {
            line: 1,
            col: 5,
            context: ".A.B".into(),
            message: "nil pointer evaluating interface {}.B".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "template: :1:5: executing \"\" at <.A.B>: nil pointer evaluating interface {}.B"
    );
    let err = render_err("line1\n  {{ .S.X }}", json!({"S": "str"}));
    assert_eq!(
        err.to_string(),
        "template: :2:7: executing \"\" at <.S.X>: can't evaluate field X in type string"
    );
    let cases: &[(&str, &str)] = &[
        ("{{ nil }}", "nil is not a command"),
        ("{{ 1 2 }}", "can't give argument to non-function 1"),
        ("{{ range .S }}{{ end }}", "range can't iterate over str"),
        ("{{ template \"nope\" }}", "no such template \"nope\""),
        (
            "{{ $x := 1 }}{{ $x.Y }}",
            "can't evaluate field Y in type int",
        ),
        ("{{ printf 1 }}", "expected string; found 1"),
        (
            "{{ .L | printf }}",
            "wrong type for value; expected string; got []interface {}",
        ),
        (
            "{{ $x := 1 }}{{ $x 2 }}",
            "can't give argument to non-function $x",
        ),
        ("{{ .S 1 }}", "S is not a method but has arguments"),
        ("{{ .M.k 1 }}", "k is not a method but has arguments"),
        ("{{ eq .L .L }}", "non-comparable type"),
        ("{{ index .M 1 }}", "value has type int; should be string"),
        ("{{ eq nil 1 }}", "cannot assign nil to reflect.Value"),
    ];
    let data = json!({"S": "str", "L": [1], "M": {"k": "v"}});
    for (src, message) in cases {
        let err = render_err(src, data.clone()).to_string();
        assert!(err.contains(message), "{src}: {err}");
    }
    // Go abbreviates long node texts to 20 characters.
    let err = render_err(r#"{{ index .L 10 "aaaaaaaaaaaaaaaaaaaa" }}"#, data).to_string();
    assert!(err.contains(r#"at <index .L 10 "aaaaaaa...>"#), "{err}");
}

#[test]
fn hostile_templates_hit_limits_instead_of_hanging() {
    let err = render_err("{{ range 100000000 }}{{ end }}", json!({}));
    assert!(
        matches!(&err, TemplateError::Other(m) if m.contains("steps")),
        "{err}"
    );
    let recursive = r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}"#;
    let err = render_err(recursive, json!({}));
    assert!(
        err.to_string().contains("exceeded maximum template depth"),
        "{err}"
    );
    let nested_ifs = format!("{}{}", "{{ if true }}".repeat(300), "{{ end }}".repeat(300));
    assert_eq!(parse_err(&nested_ifs).1, "max expression depth exceeded");
    let nested_parens = format!("{{{{ {}1{} }}}}", "(".repeat(300), ")".repeat(300));
    assert_eq!(parse_err(&nested_parens).1, "max expression depth exceeded");
    assert_eq!(
        render(r#"{{ printf "%999999999d" 1 }}"#, json!({})),
        "%!(BADWIDTH)1"
    );
}

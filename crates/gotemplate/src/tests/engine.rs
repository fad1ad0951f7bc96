//! Go `text/template` semantics: trimming, comments, fields, variables, control structures,
//! pipelines, literals and how values print. Expectations follow the Go spec and `exec.go`.

use serde_json::json;

use super::render;

#[test]
fn text_without_actions_is_copied() {
    assert_eq!(render("", json!({})), "");
    assert_eq!(
        render("plain\ntext {not an action}", json!({})),
        "plain\ntext {not an action}"
    );
}

#[test]
fn trim_markers_remove_all_adjacent_whitespace_including_newlines() {
    assert_eq!(render("a \t\r\n\n {{- 1 -}} \n\t b", json!({})), "a1b");
    assert_eq!(render("a\n{{- .X }}\n", json!({"X": "x"})), "ax\n");
    assert_eq!(render("{{ .X -}}\n\n  z", json!({"X": "x"})), "xz");
    // Only the side with the marker is trimmed.
    assert_eq!(render("a {{ 1 -}} b", json!({})), "a 1b");
    assert_eq!(render("a {{- 1 }} b", json!({})), "a1 b");
    // A trimmed action that prints nothing still trims.
    assert_eq!(render("x\n{{- if false }}{{ end -}}\ny", json!({})), "xy");
    assert_eq!(
        render("{{- if true -}}\n  yes\n{{- end -}}\n", json!({})),
        "yes"
    );
}

#[test]
fn trim_marker_needs_whitespace_next_to_the_dash() {
    // `{{-3}}` is the number -3, `{{3 -}}` trims, `{{ -3 }}` is -3.
    assert_eq!(render("a {{-3}} b", json!({})), "a -3 b");
    assert_eq!(render("a {{ -3 }} b", json!({})), "a -3 b");
    assert_eq!(render("a {{3 -}} b", json!({})), "a 3b");
    // Two spaces before the dash still make a trim marker.
    assert_eq!(render("{{ 3  -}}   b", json!({})), "3b");
}

#[test]
fn comments_print_nothing_and_can_trim() {
    assert_eq!(render("a{{/* a comment */}}b", json!({})), "ab");
    assert_eq!(render("a \n{{- /* multi\nline */ -}}\n b", json!({})), "ab");
    assert_eq!(render("a {{/* c */ -}} b", json!({})), "a b");
}

#[test]
fn fields_of_maps_and_missing_keys() {
    let data = json!({"A": {"B": "deep"}, "S": "s", "N": null});
    assert_eq!(render("{{ .A.B }}|{{ .S }}", data.clone()), "deep|s");
    // Go prints a missing map[string]any key (and a JSON null) as <no value>.
    assert_eq!(
        render("[{{ .Missing }}][{{ .N }}]", data.clone()),
        "[<no value>][<no value>]"
    );
    assert_eq!(
        render("{{ if .Missing }}yes{{ else }}no{{ end }}", data),
        "no"
    );
}

#[test]
fn composite_values_print_like_go() {
    let data =
        json!({"L": [1, "two", null, [3, 4]], "M": {"b": 2, "a": {"x": true}}, "E": [], "F": {}});
    assert_eq!(render("{{ .L }}", data.clone()), "[1 two <nil> [3 4]]");
    assert_eq!(render("{{ .M }}", data.clone()), "map[a:map[x:true] b:2]");
    assert_eq!(render("{{ .E }}{{ .F }}", data), "[]map[]");
}

#[test]
fn floats_print_like_go_fmt() {
    let cases = [
        (json!(2.5), "2.5"),
        (json!(1000000.0), "1e+06"),
        (json!(123456.0), "123456"),
        (json!(0.0001), "0.0001"),
        (json!(0.00001), "1e-05"),
        (json!(-1.5e300), "-1.5e+300"),
        (json!(1.0), "1"),
    ];
    for (value, want) in cases {
        assert_eq!(render("{{ .X }}", json!({ "X": value })), want, "{value}");
    }
}

#[test]
fn dollar_is_the_root_everywhere() {
    let data = json!({"L": ["a", "b"], "N": "n"});
    assert_eq!(
        render("{{ range .L }}{{ . }}{{ $.N }}{{ end }}", data.clone()),
        "anbn"
    );
    assert_eq!(render("{{ with .L }}{{ $.N }}{{ end }}", data), "n");
}

#[test]
fn variables_declare_assign_and_scope() {
    assert_eq!(
        render(
            r#"{{ $x := "a" }}{{ $x }}{{ $x = "b" }}{{ $x }}"#,
            json!({})
        ),
        "ab"
    );
    // Assignment reaches the outer variable; a declaration inside `if` ends with it.
    let src = "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $x := 3 }}{{ $x }}{{ end }}{{ $x }}";
    assert_eq!(render(src, json!({})), "32");
    // Declarations print nothing; a variable chain reads fields.
    assert_eq!(
        render("{{ $m := .M }}{{ $m.k }}", json!({"M": {"k": "v"}})),
        "v"
    );
}

#[test]
fn if_else_if_else_chains() {
    let src =
        r#"{{ if eq .R "a" }}A{{ else if eq .R "b" }}B{{ else if .Z }}Z{{ else }}none{{ end }}"#;
    assert_eq!(render(src, json!({"R": "a"})), "A");
    assert_eq!(render(src, json!({"R": "b"})), "B");
    assert_eq!(render(src, json!({"R": "c", "Z": 1})), "Z");
    assert_eq!(render(src, json!({"R": "c", "Z": 0})), "none");
}

#[test]
fn truthiness_follows_go() {
    let src = "{{ range .V }}{{ if . }}T{{ else }}F{{ end }}{{ end }}";
    let data = json!({"V": [false, 0, 0.0, "", [], {}, null, true, 1, "x", [0], {"a": 0}]});
    assert_eq!(render(src, data), "FFFFFFFTTTTT");
}

#[test]
fn range_over_lists_maps_and_ints() {
    let data = json!({"L": ["a", "b"], "M": {"z": 1, "a": 2}, "E": []});
    assert_eq!(
        render(
            "{{ range $i, $e := .L }}{{ $i }}={{ $e }},{{ end }}",
            data.clone()
        ),
        "0=a,1=b,"
    );
    assert_eq!(
        render("{{ range $e := .L }}{{ $e }}{{ end }}", data.clone()),
        "ab"
    );
    // Maps range in sorted key order.
    assert_eq!(
        render(
            "{{ range $k, $v := .M }}{{ $k }}{{ $v }}{{ end }}",
            data.clone()
        ),
        "a2z1"
    );
    assert_eq!(
        render("{{ range .E }}x{{ else }}empty{{ end }}", data.clone()),
        "empty"
    );
    assert_eq!(
        render("{{ range .Missing }}x{{ else }}nil{{ end }}", data),
        "nil"
    );
    assert_eq!(render("{{ range 3 }}{{ . }}{{ end }}", json!({})), "012");
}

#[test]
fn range_break_and_continue() {
    let src = "{{ range .L }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}";
    assert_eq!(render(src, json!({"L": [1, 2, 3, 4, 5]})), "13");
    // break leaves only the innermost range.
    let nested = "{{ range .L }}[{{ range $.L }}{{ if eq . 2 }}{{ break }}{{ end }}{{ . }}{{ end }}]{{ end }}";
    assert_eq!(render(nested, json!({"L": [1, 2]})), "[1][1]");
}

#[test]
fn range_variables_do_not_leak_between_iterations() {
    let src = "{{ range .L }}{{ $seen := . }}{{ $seen }}{{ end }}";
    assert_eq!(render(src, json!({"L": [1, 2]})), "12");
}

#[test]
fn with_sets_dot_and_has_else_and_else_with() {
    let data = json!({"X": "x", "Y": "y"});
    assert_eq!(
        render(
            "{{ with .X }}<{{ . }}>{{ else }}none{{ end }}",
            data.clone()
        ),
        "<x>"
    );
    assert_eq!(
        render("{{ with .Missing }}x{{ else }}none{{ end }}", data.clone()),
        "none"
    );
    assert_eq!(
        render(
            "{{ with .Missing }}x{{ else with .Y }}{{ . }}{{ end }}",
            data
        ),
        "y"
    );
}

#[test]
fn pipelines_pass_the_value_as_last_argument() {
    let data = json!({"S": "s"});
    assert_eq!(render(r#"{{ .S | printf "%s!" }}"#, data.clone()), "s!");
    assert_eq!(
        render(r#"{{ "x" | printf "%s-%s" "a" }}"#, data.clone()),
        "a-x"
    );
    assert_eq!(
        render(r#"{{ 3 | eq 3 }}{{ "a" | len | printf "%d" }}"#, data),
        "true1"
    );
}

#[test]
fn parentheses_and_chains() {
    let data = json!({"L": [{"Name": "first"}, {"Name": "second"}]});
    assert_eq!(
        render("{{ (len .L) }}|{{ eq (len .L) 2 }}", data.clone()),
        "2|true"
    );
    assert_eq!(render("{{ (index .L 1).Name }}", data.clone()), "second");
    assert_eq!(render("{{ ($x := 5) }}{{ $x }}", data), "55");
}

#[test]
fn literals() {
    assert_eq!(
        render(r#"{{ "a\tb\u00e9\x41\101\"" }}"#, json!({})),
        "a\tbéAA\""
    );
    assert_eq!(render("{{ `raw\\n{{` }}", json!({})), "raw\\n{{");
    assert_eq!(
        render(
            "{{ 'a' }} {{ '\\n' }} {{ 0x10 }} {{ 0o17 }} {{ 017 }} {{ 1_000 }}",
            json!({})
        ),
        "97 10 16 15 15 1000"
    );
    assert_eq!(
        render(
            "{{ 1.5 }} {{ 1e3 }} {{ -2 }} {{ true }} {{ false }}",
            json!({})
        ),
        "1.5 1000 -2 true false"
    );
    assert_eq!(render("{{ print nil }}", json!({})), "<nil>");
}

#[test]
fn define_template_and_block() {
    let src = r#"{{ define "t" }}[{{ . }}]{{ end }}{{ template "t" .X }}{{ block "b" 1 }}({{ . }}){{ end }}"#;
    assert_eq!(render(src, json!({"X": "x"})), "[x](1)");
    // A template call without a pipeline runs with nil data.
    assert_eq!(
        render(
            r#"{{ define "n" }}{{ . }}{{ end }}{{ template "n" }}"#,
            json!({})
        ),
        "<no value>"
    );
}

#[test]
fn render_with_typed_values() {
    use crate::{json, Func, Funcs, JsonKey, Param, Print, Struct, Value};
    let funcs = Funcs::new().with(
        "json",
        Func {
            params: &[Param::Any],
            variadic: None,
            call: |args| Ok(Value::from(json::marshal(&args[0])?)),
        },
    );
    let s: Value = Struct::new("main.T")
        .field("Name", JsonKey::Key("name"), Value::from("n"))
        .field("Empty", JsonKey::OmitEmpty("empty"), Value::from(""))
        .into();
    let t = crate::Template::parse_with("{{ .Name }}|{{ . }}|{{ json . }}", &funcs).unwrap();
    assert_eq!(t.execute(&s).unwrap(), r#"n|{n }|{"name":"n"}"#);
    let shown: Value = Struct::new("main.T")
        .field("A", JsonKey::GoName, Value::Int(1))
        .with_print(Print::Json)
        .into();
    assert_eq!(
        t.execute(&shown).unwrap_err().to_string(),
        "template: :1:3: executing \"\" at <.Name>: can't evaluate field Name in type main.T"
    );
    let t = crate::Template::parse("{{ . }}").unwrap();
    assert_eq!(t.execute(&shown).unwrap(), r#"{"A":1}"#);
}

#[test]
fn templates_and_values_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<crate::Template>();
    assert_send_sync::<crate::Value>();
}

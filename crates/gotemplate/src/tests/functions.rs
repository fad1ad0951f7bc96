//! Go's builtin functions and registered ones, and fmt formatting, checked against Go's
//! documented behaviour.

use serde_json::json;

use super::{render, render_err};

#[test]
fn eq_compares_against_any_of_several() {
    let data = json!({"R": "user", "N": 2});
    assert_eq!(
        render(r#"{{ eq .R "a" "b" "user" }}{{ eq .R "a" }}"#, data.clone()),
        "truefalse"
    );
    assert_eq!(
        render(r#"{{ ne .R "user" }}{{ ne .N 3 }}"#, data.clone()),
        "falsetrue"
    );
    // A missing key compares unequal instead of failing.
    assert_eq!(render(r#"{{ eq .Missing "x" }}"#, data), "false");
}

#[test]
fn comparing_different_kinds_is_an_error() {
    let err = render_err("{{ eq 1 1.0 }}", json!({}));
    assert!(
        err.to_string()
            .ends_with("error calling eq: incompatible types for comparison"),
        "{err}"
    );
    let err = render_err(r#"{{ lt "a" 1 }}"#, json!({}));
    assert!(
        err.to_string()
            .contains("incompatible types for comparison"),
        "{err}"
    );
    let err = render_err("{{ lt true false }}", json!({}));
    assert!(
        err.to_string().contains("invalid type for comparison"),
        "{err}"
    );
}

#[test]
fn ordering_functions() {
    let out = render(
        r#"{{ lt 1 2 }}{{ le 2 2 }}{{ gt 1 2 }}{{ ge 2 2 }}{{ lt "a" "b" }}{{ gt 2.5 1.5 }}"#,
        json!({}),
    );
    assert_eq!(out, "truetruefalsetruetruetrue");
}

#[test]
fn and_or_return_operands_and_short_circuit() {
    assert_eq!(render("{{ and 1 0 2 }}|{{ and 1 2 }}", json!({})), "0|2");
    assert_eq!(
        render(r#"{{ or 0 "" "x" }}|{{ or 0 "" }}"#, json!({})),
        "x|"
    );
    // The second operand would fail if it were evaluated.
    let data = json!({"L": []});
    assert_eq!(
        render(
            "{{ and false (index .L 9) }}{{ or true (index .L 9) }}",
            data
        ),
        "falsetrue"
    );
    assert_eq!(
        render("{{ not 0 }}{{ not .L }}", json!({"L": [1]})),
        "truefalse"
    );
}

#[test]
fn len_index_and_slice() {
    let data = json!({"L": [10, 20, 30], "M": {"k": "v"}, "S": "héllo", "N": [[1, 2], [3]]});
    assert_eq!(
        render("{{ len .L }} {{ len .M }} {{ len .S }}", data.clone()),
        "3 1 6"
    );
    assert_eq!(
        render(
            r#"{{ index .L 1 }} {{ index .M "k" }} {{ index .N 1 0 }} {{ index .S 0 }}"#,
            data.clone()
        ),
        "20 v 3 104"
    );
    assert_eq!(
        render(r#"[{{ index .M "absent" }}]"#, data.clone()),
        "[<no value>]"
    );
    assert_eq!(
        render(
            "{{ slice .L 1 }} {{ slice .L 1 2 }} {{ slice .L }} {{ slice .S 0 1 }}",
            data.clone()
        ),
        "[20 30] [20] [10 20 30] h"
    );
    assert_eq!(render("{{ len (slice .L 3) }}", data.clone()), "0");
    let err = render_err("{{ index .L 3 }}", data.clone());
    assert!(err.to_string().contains("error calling index"), "{err}");
    let err = render_err("{{ index .L 4 }}", data.clone());
    assert!(
        err.to_string()
            .ends_with("error calling index: index out of range: 4"),
        "{err}"
    );
    let err = render_err("{{ slice .L 2 1 }}", data.clone());
    assert!(
        err.to_string().ends_with("invalid slice index: 2 > 1"),
        "{err}"
    );
    let err = render_err("{{ len .Missing }}", data);
    assert!(
        err.to_string()
            .ends_with("error calling len: len of nil pointer"),
        "{err}"
    );
}

#[test]
fn print_and_println_spacing() {
    // Sprint puts spaces only between two non-string operands.
    assert_eq!(
        render(r#"{{ print 1 2 "a" 3 "b" "c" }}"#, json!({})),
        "1 2a3bc"
    );
    assert_eq!(render(r#"{{ println 1 "a" }}"#, json!({})), "1 a\n");
}

#[test]
fn printf_verbs_flags_and_misuse() {
    let data = json!({"L": [1, 2], "F": 1.23456});
    let src = r#"{{ printf "%d|%s|%v|%q|%5.2f|%-4d|%x|%X|%05d|%t|%c|%e|%g|%%" 7 "s" .L "q\n" .F 5 255 "hi" -42 true 65 .F .F }}"#;
    assert_eq!(
        render(src, data),
        "7|s|[1 2]|\"q\\n\"| 1.23|5   |ff|6869|-0042|true|A|1.234560e+00|1.23456|%"
    );
    assert_eq!(
        render(r#"{{ printf "%d %d" 1 }}"#, json!({})),
        "1 %!d(MISSING)"
    );
    assert_eq!(
        render(r#"{{ printf "%d" 1 2 }}"#, json!({})),
        "1%!(EXTRA int=2)"
    );
    assert_eq!(
        render(r#"{{ printf "%d" "x" }}|{{ printf "%s" 5 }}"#, json!({})),
        "%!d(string=x)|%!s(int=5)"
    );
    assert_eq!(
        render(
            r#"{{ printf "%.2s|%6.1f|%+d|%T" "abc" 2.25 3 .M }}"#,
            json!({"M": {}})
        ),
        "ab|   2.2|+3|map[string]interface {}"
    );
}

#[test]
fn escapers() {
    assert_eq!(
        render(r#"{{ html "<a href='x'>&\"" }}"#, json!({})),
        "&lt;a href=&#39;x&#39;&gt;&amp;&#34;"
    );
    assert_eq!(
        render(r#"{{ urlquery "a b&c/é" }}"#, json!({})),
        "a+b%26c%2F%C3%A9"
    );
    assert_eq!(
        render(r#"{{ js "it's <b>" }}"#, json!({})),
        "it\\'s \\u003Cb\\u003E"
    );
    assert_eq!(render("{{ html .Missing }}", json!({})), "&lt;no value&gt;");
}

#[test]
fn wrong_argument_counts_are_errors() {
    let err = render_err("{{ len }}", json!({}));
    assert_eq!(
        err.to_string(),
        "template: :1:3: executing \"\" at <len>: wrong number of args for len: want 1 got 0"
    );
    let err = render_err("{{ eq 1 }}", json!({}));
    assert!(
        err.to_string()
            .ends_with("error calling eq: missing argument for comparison"),
        "{err}"
    );
    let err = render_err(r#"{{ "x" | not 1 }}"#, json!({}));
    assert!(
        err.to_string()
            .contains("wrong number of args for not: want 1 got 2"),
        "{err}"
    );
}

//! A garbage generator that checks no input makes the engine or Ollama's prompt construction
//! panic or hang. (The engine's error and limit tests live in the gotemplate crate.)

use serde_json::json;

use super::super::parse;
use super::super::prompt::{execute, Think, Values};
use super::{conversation, tool_conversation, weather_tools};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    " ",
    ".",
    "$",
    "$x",
    ":=",
    "=",
    "|",
    "(",
    ")",
    "\"",
    "`",
    "'",
    "if",
    "else",
    "end",
    "range",
    "with",
    "define",
    "template",
    "block",
    "break",
    "continue",
    "nil",
    "true",
    "eq",
    "len",
    "index",
    "slice",
    "printf",
    "json",
    "and",
    "or",
    "not",
    "print",
    ".A",
    ".L",
    ".M",
    ".Messages",
    ".Response",
    ".Prompt",
    ".Tools",
    "1",
    "-1",
    "0x",
    "1.5e3",
    "\"s\"",
    ",",
    "/*",
    "*/",
    "\n",
    "x",
    "é",
    "\\",
    "%d",
    "{{ end }}",
    "{{ if .A }}",
    "{{ range .L }}",
    "{{ . }}",
    "{{ break }}",
    "{{ $x := .A }}",
    "{{ template \"t\" . }}",
    "{{ define \"t\" }}",
    "{{ else }}",
    "{{ .Response }}",
    "{{ range $i, $e := .M }}",
    "{{ with .M.a }}",
    "{{ slice .L 1 }}",
    "{{ index .L 9 }}",
    "{{ printf \"%v %q\" . 1 }}",
];

#[test]
fn garbage_never_panics() {
    let data = json!({"A": 1, "L": [1, "a", null, {"k": []}], "M": {"a": {"b": 1.5}}, "S": "str"});
    let tools = weather_tools();
    let chats = [
        conversation("system-user-assistant-user"),
        tool_conversation(),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut parsed = 0;
    for round in 0..6000 {
        let src: String = if round % 3 == 2 {
            // Raw bytes, mostly ASCII.
            let bytes: Vec<u8> = (0..rng.below(40))
                .map(|_| match rng.below(4) {
                    0 => b"{}.$- \"`()|"[rng.below(11)],
                    _ => (rng.below(95) + 32) as u8,
                })
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            (0..rng.below(30) + 1)
                .map(|_| FRAGMENTS[rng.below(FRAGMENTS.len())])
                .collect()
        };
        let Ok(template) = parse(&src) else {
            continue;
        };
        parsed += 1;
        let _ = template.render(&data);
        for messages in &chats {
            let values = Values {
                messages,
                tools: &tools,
                think: Think::from_request(Some(&json!("high"))),
                ..Values::default()
            };
            let _ = execute(&template, &values);
        }
        let fim = Values {
            prompt: "p",
            suffix: "s",
            ..Values::default()
        };
        let _ = execute(&template, &fim);
    }
    assert!(
        parsed > 500,
        "the generator should produce valid templates too ({parsed})"
    );
}

//! Tests of the Modelfile parser, its printing back, and its conversion to a create request
//! (most of them Ollama's `parser_test.go` cases).

use super::paths::{expand_path, user_home};
use super::plan::is_semver;
use super::*;
use serde_json::{json, Value};
use std::path::Path;

fn parse(s: &str) -> Result<Modelfile, ParseError> {
    Modelfile::parse_str(s)
}

fn cmds(s: &str) -> Vec<(String, String)> {
    pairs(&parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}")))
}

fn pairs(m: &Modelfile) -> Vec<(String, String)> {
    m.commands
        .iter()
        .map(|c| (c.name.clone(), c.args.clone()))
        .collect()
}

fn c(name: &str, args: &str) -> (String, String) {
    (name.to_owned(), args.to_owned())
}

fn kind(s: &str) -> ParseErrorKind {
    parse(s).unwrap_err().kind
}

const LLAMA3_TEMPLATE: &str = "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>";

// Ollama: TestParseFileFile.
#[test]
fn parses_every_command_and_a_multiline_template() {
    let input = format!(
        "\nFROM model1\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE \"\"\"{LLAMA3_TEMPLATE}\"\"\"    \n"
    );
    assert_eq!(
        cmds(&input),
        [
            c("model", "model1"),
            c("adapter", "adapter1"),
            c("license", "MIT"),
            c("param1", "value1"),
            c("param2", "value2"),
            c("template", LLAMA3_TEMPLATE),
        ]
    );
    let lines: Vec<usize> = parse(&input)
        .unwrap()
        .commands
        .iter()
        .map(|c| c.line)
        .collect();
    assert_eq!(lines, [2, 3, 4, 5, 6, 7]);
}

// Ollama: TestParseFileDraft, TestParseFileRenderer, TestParseFileParser.
#[test]
fn draft_renderer_parser_and_requires_are_commands() {
    let m =
        parse("\nFROM base\nDRAFT ./assistant\nRENDERER r1\nPARSER p1\nREQUIRES 0.14.0\n").unwrap();
    assert_eq!(
        pairs(&m),
        [
            c("model", "base"),
            c("draft", "./assistant"),
            c("renderer", "r1"),
            c("parser", "p1"),
            c("requires", "0.14.0"),
        ]
    );
    assert!(m.to_string().contains("DRAFT ./assistant\n"));
}

// Ollama: TestParseFileTrimSpace.
#[test]
fn values_are_trimmed_unless_quoted() {
    let input = format!(
        "\nFROM \"     model 1\"\nADAPTER      adapter3\nLICENSE \"MIT       \"\nPARAMETER param1        value1\nPARAMETER param2    value2\nTEMPLATE \"\"\"   {LLAMA3_TEMPLATE}   \"\"\"    \n"
    );
    assert_eq!(
        cmds(&input),
        [
            c("model", "     model 1"),
            c("adapter", "adapter3"),
            c("license", "MIT       "),
            c("param1", "value1"),
            c("param2", "value2"),
            c("template", &format!("   {LLAMA3_TEMPLATE}   ")),
        ]
    );
}

// Ollama: TestParseFileFrom.
#[test]
fn from_lines() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("FROM \"FOO  BAR  \"", &[("model", "FOO  BAR  ")]),
        (
            "FROM \"FOO BAR\"\nPARAMETER param1 value1",
            &[("model", "FOO BAR"), ("param1", "value1")],
        ),
        ("FROM     FOOO BAR    ", &[("model", "FOOO BAR")]),
        ("FROM /what/is/the path ", &[("model", "/what/is/the path")]),
        ("FROM foo", &[("model", "foo")]),
        ("FROM /path/to/model", &[("model", "/path/to/model")]),
        (
            "FROM /path/to/model/fp16.bin",
            &[("model", "/path/to/model/fp16.bin")],
        ),
        ("FROM llama3:latest", &[("model", "llama3:latest")]),
        (
            "FROM llama3:7b-instruct-q4_K_M",
            &[("model", "llama3:7b-instruct-q4_K_M")],
        ),
        (
            "PARAMETER param1 value1\nFROM foo",
            &[("param1", "value1"), ("model", "foo")],
        ),
        (
            "PARAMETER what the \nFROM lemons make lemonade ",
            &[("what", "the"), ("model", "lemons make lemonade")],
        ),
    ];
    for (input, want) in cases {
        let want: Vec<_> = want.iter().map(|(n, a)| c(n, a)).collect();
        assert_eq!(cmds(input), want, "{input:?}");
    }
    for input in ["", "PARAMETER param1 value1", "# only a comment\n"] {
        let e = parse(input).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::MissingFrom, "{input:?}");
        assert_eq!(e.to_string(), "no FROM line");
    }
}

// Ollama: TestParseFileParametersMissingValue, TestParseFileBadCommand.
#[test]
fn errors_name_the_line() {
    let e = parse("\nFROM foo\nPARAMETER param1\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(
        e.to_string(),
        "(line 3): missing value after PARAMETER param1"
    );
    assert_eq!(
        kind("FROM foo\nPARAMETER param1"),
        ParseErrorKind::MissingValue("PARAMETER param1".into())
    );

    let e = parse("\nFROM foo\nBADCOMMAND param1 value1\n").unwrap_err();
    assert_eq!(e.line, 3);
    assert_eq!(e.kind, ParseErrorKind::InvalidCommand);
    assert!(e
        .to_string()
        .starts_with("(line 3): command must be one of \"from\""));

    // A known keyword with nothing after it, mid-file and at the end.
    let e = parse("FROM foo\nSYSTEM\nLICENSE x\n").unwrap_err();
    assert_eq!(
        (e.line, e.kind),
        (2, ParseErrorKind::MissingValue("SYSTEM".into()))
    );
    let e = parse("FROM foo\n\n\nsystem").unwrap_err();
    assert_eq!(
        (e.line, e.kind),
        (4, ParseErrorKind::MissingValue("SYSTEM".into()))
    );
    // Keywords are letters only.
    let e = parse("FROM foo\nFROM2 bar\n").unwrap_err();
    assert_eq!((e.line, e.kind), (2, ParseErrorKind::InvalidCommand));
    assert_eq!(kind("FROM foo\nBOGUS"), ParseErrorKind::InvalidCommand);
    // Parameter names are letters, digits and underscores.
    let e = parse("FROM foo\nPARAMETER num-ctx 1\n").unwrap_err();
    assert_eq!(
        (e.line, e.kind),
        (2, ParseErrorKind::InvalidParameterName('-'))
    );
    // CRLF counts as one line.
    let e = parse("FROM foo\r\n\r\nBAD x\r\n").unwrap_err();
    assert_eq!(e.line, 3);
}

// Ollama: TestParseFileMessages.
#[test]
fn messages() {
    assert_eq!(
        cmds("\nFROM foo\nMESSAGE system You are a file parser. Always parse things.\n"),
        [
            c("model", "foo"),
            c(
                "message",
                "system: You are a file parser. Always parse things."
            )
        ]
    );
    assert_eq!(
        cmds("\nFROM foo\nMESSAGE system You are a file parser. Always parse things."),
        [
            c("model", "foo"),
            c(
                "message",
                "system: You are a file parser. Always parse things."
            )
        ]
    );
    assert_eq!(
        cmds("\nFROM foo\nMESSAGE system You are a file parser. Always parse things.\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n"),
        [
            c("model", "foo"),
            c("message", "system: You are a file parser. Always parse things."),
            c("message", "user: Hey there!"),
            c("message", "assistant: Hello, I want to parse all the things!"),
        ]
    );
    assert_eq!(
        cmds("\nFROM foo\nMESSAGE system \"\"\"\nYou are a multiline file parser. Always parse things.\n\"\"\"\n\t\t\t"),
        [
            c("model", "foo"),
            c(
                "message",
                "system: \nYou are a multiline file parser. Always parse things.\n"
            ),
        ]
    );
    let e = parse("\nFROM foo\nMESSAGE badguy I'm a bad guy!\n").unwrap_err();
    assert_eq!((e.line, e.kind), (3, ParseErrorKind::InvalidMessageRole));
    // Roles are lower case.
    assert_eq!(
        kind("FROM foo\nMESSAGE User hi\n"),
        ParseErrorKind::InvalidMessageRole
    );
    assert_eq!(
        kind("\nFROM foo\nMESSAGE system\n"),
        ParseErrorKind::MissingValue("MESSAGE system".into())
    );
    assert_eq!(
        kind("\nFROM foo\nMESSAGE system"),
        ParseErrorKind::MissingValue("MESSAGE system".into())
    );
}

// Ollama: TestParseFileQuoted.
#[test]
fn quoted_and_multiline_values() {
    let ok: &[(&str, &str, &str)] = &[
        (
            "\nFROM foo\nSYSTEM \"\"\"\nThis is a\nmultiline system.\n\"\"\"\n\t\t\t",
            "system",
            "\nThis is a\nmultiline system.\n",
        ),
        (
            "\nFROM foo\nSYSTEM \"\"\"\nThis is a\nmultiline system.\"\"\"\n\t\t\t",
            "system",
            "\nThis is a\nmultiline system.",
        ),
        (
            "\nFROM foo\nSYSTEM \"\"\"This is a\nmultiline system.\"\"\"\n\t\t\t",
            "system",
            "This is a\nmultiline system.",
        ),
        (
            "\nFROM foo\nSYSTEM \"\"\"This is a multiline system.\"\"\"\n\t\t\t",
            "system",
            "This is a multiline system.",
        ),
        (
            "\nFROM foo\nSYSTEM \"\"\"\nThis is a multiline system with \"quotes\".\n\"\"\"\n",
            "system",
            "\nThis is a multiline system with \"quotes\".\n",
        ),
        ("\nFROM foo\nSYSTEM \"\"\"\"\"\"\n", "system", ""),
        ("\nFROM foo\nSYSTEM \"\"\n", "system", ""),
        ("\nFROM foo\nSYSTEM \"'\"\n", "system", "'"),
        (
            "\nFROM foo\nSYSTEM \"\"\"''\"'\"\"'\"\"'\"'''''\"\"'\"\"'\"\"\"\n",
            "system",
            "''\"'\"\"'\"\"'\"'''''\"\"'\"\"'",
        ),
        (
            "\nFROM foo\nTEMPLATE \"\"\"\n{{ .Prompt }}\n\"\"\"",
            "template",
            "\n{{ .Prompt }}\n",
        ),
        // A single `"` may span lines too.
        ("FROM foo\nSYSTEM \"a\nb\"\n", "system", "a\nb"),
        // Tabs inside values are kept.
        ("FROM foo\nSYSTEM a\tb\n", "system", "a\tb"),
    ];
    for (input, name, value) in ok {
        assert_eq!(
            cmds(input),
            [c("model", "foo"), c(name, value)],
            "{input:?}"
        );
    }
    let e = parse("\nFROM foo\nSYSTEM \"\"\"This is a multiline system.\"\"\n\t\t\t").unwrap_err();
    assert_eq!(
        (e.line, e.kind.clone()),
        (3, ParseErrorKind::UnterminatedQuote("SYSTEM".into()))
    );
    assert_eq!(
        e.to_string(),
        "(line 3): unexpected EOF: the quoted value of SYSTEM is never closed"
    );
    assert_eq!(
        kind("\nFROM foo\nSYSTEM \"\n\t\t\t"),
        ParseErrorKind::UnterminatedQuote("SYSTEM".into())
    );
}

// Ollama: TestParseFileParameters (names are not checked while parsing).
#[test]
fn parameter_lines() {
    let cases = [
        ("numa true", "numa", "true"),
        ("num_ctx 1", "num_ctx", "1"),
        ("num_batch 1", "num_batch", "1"),
        ("num_gqa 1", "num_gqa", "1"),
        ("num_gpu 1", "num_gpu", "1"),
        ("main_gpu 1", "main_gpu", "1"),
        ("use_mmap true", "use_mmap", "true"),
        ("num_thread 1", "num_thread", "1"),
        ("num_keep 1", "num_keep", "1"),
        ("seed 1", "seed", "1"),
        ("num_predict 1", "num_predict", "1"),
        ("top_k 1", "top_k", "1"),
        ("top_p 1.0", "top_p", "1.0"),
        ("min_p 0.05", "min_p", "0.05"),
        ("typical_p 1.0", "typical_p", "1.0"),
        ("repeat_last_n 1", "repeat_last_n", "1"),
        ("temperature 1.0", "temperature", "1.0"),
        ("repeat_penalty 1.0", "repeat_penalty", "1.0"),
        ("presence_penalty 1.0", "presence_penalty", "1.0"),
        ("frequency_penalty 1.0", "frequency_penalty", "1.0"),
        ("penalize_newline true", "penalize_newline", "true"),
        ("stop ### User:", "stop", "### User:"),
        ("stop ### User: ", "stop", "### User:"),
        ("stop \"### User:\"", "stop", "### User:"),
        ("stop \"### User: \"", "stop", "### User: "),
        ("stop \"\"\"### User:\"\"\"", "stop", "### User:"),
        ("stop \"\"\"### User:\n\"\"\"", "stop", "### User:\n"),
        ("stop <|endoftext|>", "stop", "<|endoftext|>"),
        ("stop <|eot_id|>", "stop", "<|eot_id|>"),
        ("stop </s>", "stop", "</s>"),
    ];
    for (line, name, value) in cases {
        let input = format!("FROM foo\nPARAMETER {line}\n");
        assert_eq!(
            cmds(&input),
            [c("model", "foo"), c(name, value)],
            "{line:?}"
        );
    }
}

// Ollama: TestParseFileComments, plus keyword case and comment placement.
#[test]
fn comments_and_keyword_case() {
    assert_eq!(cmds("\n# comment\nFROM foo\n\t"), [c("model", "foo")]);
    assert_eq!(
        cmds("from foo\n  # indented comment\nSyStEm hi\nparameter Temperature 1\n"),
        [
            c("model", "foo"),
            c("system", "hi"),
            // The parameter name keeps its case.
            c("Temperature", "1"),
        ]
    );
    // A `#` after a command is part of its value.
    assert_eq!(
        cmds("FROM foo # not a comment"),
        [c("model", "foo # not a comment")]
    );
}

// Ollama: TestParseFileFormatParseFile.
#[test]
fn printing_and_parsing_again_gives_the_same_commands() {
    let cases = [
        "\nFROM foo\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE template1\nMESSAGE system You are a file parser. Always parse things.\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
        "\nFROM foo\nADAPTER adapter1\nLICENSE MIT\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE template1\nMESSAGE system \"\"\"\nYou are a store greeter. Always respond with \"Hello!\".\n\"\"\"\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
        "\nFROM foo\nADAPTER adapter1\nLICENSE \"\"\"\nVery long and boring legal text.\nBlah blah blah.\n\"Oh look, a quote!\"\n\"\"\"\n\nPARAMETER param1 value1\nPARAMETER param2 value2\nTEMPLATE template1\nMESSAGE system \"\"\"\nYou are a store greeter. Always respond with \"Hello!\".\n\"\"\"\nMESSAGE user Hey there!\nMESSAGE assistant Hello, I want to parse all the things!\n",
        "\nFROM foo\nSYSTEM \"\"\n",
    ];
    for input in cases {
        let first = parse(input).unwrap();
        let second = parse(&first.to_string()).unwrap();
        assert_eq!(pairs(&first), pairs(&second), "{input:?}");
    }
}

// Ollama: TestParseFileUTF16ParseFile, TestParseMultiByte.
#[test]
fn encodings() {
    let data =
        "FROM bob\nPARAMETER param1 1\nPARAMETER param2 4096\nSYSTEM You are a utf16 file.\n";
    let want = [
        c("model", "bob"),
        c("param1", "1"),
        c("param2", "4096"),
        c("system", "You are a utf16 file."),
    ];
    let utf16: Vec<u16> = data.encode_utf16().collect();
    let mut le = vec![0xFF, 0xFE];
    le.extend(utf16.iter().flat_map(|u| u.to_le_bytes()));
    let mut be = vec![0xFE, 0xFF];
    be.extend(utf16.iter().flat_map(|u| u.to_be_bytes()));
    let mut utf8_bom = vec![0xEF, 0xBB, 0xBF];
    utf8_bom.extend(data.as_bytes());
    for bytes in [le, be, utf8_bom] {
        assert_eq!(pairs(&Modelfile::parse(&bytes).unwrap()), want);
    }

    let input = "FROM test\n\tSYSTEM 你好👋";
    let want = [c("model", "test"), c("system", "你好👋")];
    assert_eq!(cmds(input), want);
    let mut le = vec![0xFF, 0xFE];
    le.extend(input.encode_utf16().flat_map(|u| u.to_le_bytes()));
    assert_eq!(pairs(&Modelfile::parse(&le).unwrap()), want);
}

#[test]
fn non_printing_characters_are_dropped_as_go_drops_them() {
    // A zero-width space, a no-break space and a control character vanish; CRLF inside a
    // quoted value is kept.
    assert_eq!(
        cmds("FROM foo\r\nSYSTEM a\u{200B}b\u{A0}c\u{7}d\r\nTEMPLATE \"x\r\ny\"\r\n"),
        [
            c("model", "foo"),
            c("system", "abcd"),
            c("template", "x\r\ny")
        ]
    );
}

fn plan(s: &str, dir: &Path) -> anyhow::Result<Plan> {
    parse(s)
        .unwrap()
        .plan_with_home(dir, Some(Path::new("/nonexistent-home")))
}

fn request_json(s: &str) -> Value {
    let p = plan(s, Path::new("/nonexistent-dir")).unwrap();
    assert!(p.files.is_empty() && p.adapters.is_empty());
    serde_json::to_value(&p.request).unwrap()
}

// Ollama: TestCreateRequest.
#[test]
fn create_request_fields() {
    assert_eq!(request_json("FROM test"), json!({"from": "test"}));
    assert_eq!(
        request_json("FROM test\nTEMPLATE some template\n"),
        json!({"from": "test", "template": "some template"})
    );
    assert_eq!(
        request_json(
            "FROM test\nLICENSE single license\nPARAMETER temperature 0.5\nMESSAGE user Hello\n"
        ),
        json!({"from": "test", "license": ["single license"],
               "parameters": {"temperature": 0.5},
               "messages": [{"role": "user", "content": "Hello"}]})
    );
    assert_eq!(
        request_json("FROM test\nPARAMETER temperature 0.5\nPARAMETER top_k 1\nSYSTEM You are a bot.\nLICENSE license1\nLICENSE license2\nMESSAGE user Hello there!\nMESSAGE assistant Hi! How are you?\n"),
        json!({"from": "test", "license": ["license1", "license2"], "system": "You are a bot.",
               "parameters": {"temperature": 0.5, "top_k": 1},
               "messages": [{"role": "user", "content": "Hello there!"},
                            {"role": "assistant", "content": "Hi! How are you?"}]})
    );
    // The last TEMPLATE and SYSTEM win; empty ones are not sent (Go's `omitempty`).
    assert_eq!(
        request_json("FROM t\nSYSTEM a\nSYSTEM b\nTEMPLATE \"\"\n"),
        json!({"from": "t", "system": "b"})
    );
}

#[test]
fn parameters_are_typed_and_stop_repeats() {
    let v = request_json(
        "FROM m\nPARAMETER num_ctx 4096\nPARAMETER seed -1\nPARAMETER temperature 0.1\n\
         PARAMETER top_p 1\nPARAMETER use_mmap F\nPARAMETER stop <|im_start|>\n\
         PARAMETER stop \"<|im_end|>\"\nPARAMETER num_ctx 8192\n",
    );
    assert_eq!(
        v["parameters"],
        json!({"num_ctx": 8192, "seed": -1, "temperature": 0.1, "top_p": 1.0,
               "use_mmap": false, "stop": ["<|im_start|>", "<|im_end|>"]})
    );
    // 0.1 is sent as 0.1, not as the float32's exact value.
    assert_eq!(v["parameters"]["temperature"].to_string(), "0.1");

    let p = plan("FROM m\nPARAMETER mirostat 2\n", Path::new("/")).unwrap();
    assert_eq!(p.warnings, ["warning: parameter mirostat is deprecated"]);
    assert!(p.request.parameters.is_none());

    let fail = |s: &str| plan(s, Path::new("/")).unwrap_err().to_string();
    assert_eq!(
        fail("FROM m\nPARAMETER bogus 1"),
        "unknown parameter 'bogus'"
    );
    assert_eq!(
        fail("FROM m\nPARAMETER Temperature 1"),
        "unknown parameter 'Temperature'"
    );
    assert_eq!(
        fail("FROM m\nPARAMETER numa true"),
        "unknown parameter 'numa'"
    );
    assert_eq!(
        fail("FROM m\nPARAMETER num_ctx 1.5"),
        "invalid int value [1.5]"
    );
    assert_eq!(
        fail("FROM m\nPARAMETER temperature hot"),
        "invalid float value [hot]"
    );
    assert_eq!(
        fail("FROM m\nPARAMETER temperature 1e39"),
        "invalid float value [1e39]"
    );
    assert_eq!(
        fail("FROM m\nPARAMETER temperature NaN"),
        "invalid float value [NaN]"
    );
    assert_eq!(
        fail("FROM m\nPARAMETER use_mmap yes"),
        "invalid bool value [yes]"
    );
}

#[test]
fn requires_must_be_a_version_and_unsupported_commands_warn() {
    let p = plan(
        "FROM m\nREQUIRES 0.14.0\nRENDERER x\nPARSER y\nDRAFT ./d\nDRAFT ./e\n",
        Path::new("/"),
    )
    .unwrap();
    assert_eq!(
        p.warnings,
        [
            "warning: REQUIRES is not supported by ollmlx yet and was ignored",
            "warning: RENDERER is not supported by ollmlx yet and was ignored",
            "warning: PARSER is not supported by ollmlx yet and was ignored",
            "warning: DRAFT is not supported by ollmlx yet and was ignored",
        ]
    );
    for ok in ["v1", "1.2", "0.14.0", "1.2.3-rc.1+build.5", "v1.0.0-alpha"] {
        assert!(
            is_semver(&format!("v{}", ok.trim_start_matches('v'))),
            "{ok}"
        );
    }
    for bad in [
        "v",
        "v01.2.3",
        "v1.2-pre",
        "v1.2.3-01",
        "v1.2.3.4",
        "vx",
        "v1.2.3+",
    ] {
        assert!(!is_semver(bad), "{bad}");
    }
    assert_eq!(
        plan("FROM m\nREQUIRES latest\n", Path::new("/"))
            .unwrap_err()
            .to_string(),
        "requires must be a valid semver (e.g. 0.14.0)"
    );
}

#[test]
fn local_paths_become_files_and_names_become_from() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("model.gguf"), b"GGUF").unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/lora.gguf"), b"lora").unwrap();
    std::fs::write(d.join("sub/notes.txt"), b"x").unwrap();

    // Relative to the Modelfile's folder, not the working directory.
    let p = plan("FROM ./model.gguf\nADAPTER sub\n", d).unwrap();
    assert_eq!(
        p.files,
        [LocalFile {
            path: d.join("model.gguf"),
            name: "model.gguf".into()
        }]
    );
    assert_eq!(
        p.adapters,
        [LocalFile {
            path: d.join("sub/lora.gguf"),
            name: "lora.gguf".into()
        }]
    );
    assert!(p.request.from.is_none());

    // Absolute paths, `..`, and a folder holding one .gguf.
    let abs = format!("FROM {}\n", d.join("sub/../model.gguf").display());
    assert_eq!(
        plan(&abs, Path::new("/")).unwrap().files[0].path,
        d.join("model.gguf")
    );
    let p = plan("FROM .\n", d).unwrap();
    assert_eq!(p.files[0].name, "model.gguf");

    // `~` is the home folder.
    let p = parse("FROM ~/model.gguf\n")
        .unwrap()
        .plan_with_home(Path::new("/elsewhere"), Some(d))
        .unwrap();
    assert_eq!(p.files[0].path, d.join("model.gguf"));
    assert_eq!(
        expand_path("~", Path::new("/x"), Some(Path::new("/home/u"))).unwrap(),
        Path::new("/home/u")
    );
    assert_eq!(
        expand_path("~root/a", Path::new("/x"), None).unwrap(),
        user_home("root").unwrap().join("a")
    );
    assert!(expand_path("~no-such-user-xyz/a", Path::new("/x"), None).is_err());

    // A path that does not exist is a model name, kept as written.
    let p = plan("FROM ./missing.gguf\n", d).unwrap();
    assert_eq!(p.request.from.as_deref(), Some("./missing.gguf"));
    assert!(p.files.is_empty());

    // ADAPTER must exist.
    let e = plan("FROM m\nADAPTER ./nope.gguf\n", d).unwrap_err();
    assert!(format!("{e:#}").starts_with("ADAPTER "), "{e:#}");

    // Folders must hold exactly one .gguf.
    std::fs::create_dir(d.join("empty")).unwrap();
    let e = plan("FROM ./empty\n", d).unwrap_err().to_string();
    assert!(e.starts_with("no .gguf file found in "), "{e}");
    std::fs::write(d.join("second.gguf"), b"GGUF").unwrap();
    let e = plan("FROM .\n", d).unwrap_err().to_string();
    assert!(
        e.ends_with("holds 2 .gguf files (model.gguf, second.gguf); name the one to use"),
        "{e}"
    );
}

//! Real model templates rendered through Ollama's prompt construction, compared with exact
//! expected prompts. Where Ollama ships the expected output (its `testdata`), the expectation is
//! that file; otherwise it is derived by hand from Go's template semantics, as noted.

use super::super::prompt::{parse, render_chat, render_fim, Think};
use super::fixtures::*;
use super::outputs::*;
use super::{conversation, tool_conversation, weather_tools};
use crate::api::Message;

fn chat(template: &str, messages: &[Message]) -> String {
    let t = parse(template).expect("parse");
    render_chat(&t, messages, &[], &Think::default()).expect("render")
}

fn chat_with_tools(template: &str) -> String {
    let t = parse(template).expect("parse");
    render_chat(
        &t,
        &tool_conversation(),
        &weather_tools(),
        &Think::default(),
    )
    .expect("render")
}

/// Ollama's `TestTemplate`: each template against its `testdata/<template>/<conversation>` file.
#[test]
fn ollama_testdata_conversations() {
    let cases: &[(&str, &str, &str)] = &[
        (CHATML, "user", "<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\n"),
        (CHATML, "system-user-assistant-user", "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello, how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n<|im_start|>assistant\n"),
        (LLAMA3_INSTRUCT, "system-user-assistant-user", "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI'm doing great. How can I help you today?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nI'd like to show off how chat templating works!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"),
        (GEMMA_INSTRUCT, "user", "<start_of_turn>user\nHello, how are you?<end_of_turn>\n<start_of_turn>model\n"),
        (GEMMA_INSTRUCT, "system-user-assistant-user", "<start_of_turn>user\nYou are a helpful assistant.\nHello, how are you?<end_of_turn>\n<start_of_turn>model\nI'm doing great. How can I help you today?<end_of_turn>\n<start_of_turn>user\nI'd like to show off how chat templating works!<end_of_turn>\n<start_of_turn>model\n"),
        (ALPACA, "user", "### Instruction:\nHello, how are you?\n\n### Response:\n"),
        (ALPACA, "system-user-assistant-user", "You are a helpful assistant.\n\n### Instruction:\nHello, how are you?\n\n### Response:\nI'm doing great. How can I help you today?\n\n### Instruction:\nI'd like to show off how chat templating works!\n\n### Response:\n"),
        (MISTRAL_INSTRUCT, "system-user-assistant-user", "[INST] You are a helpful assistant.\n\nHello, how are you?[/INST] I'm doing great. How can I help you today?</s>[INST] I'd like to show off how chat templating works![/INST]"),
        (LLAMA2_CHAT, "user-assistant-user", "[INST] <<SYS>><</SYS>>\n\nHello, how are you? [/INST] I'm doing great. How can I help you today?</s><s>[INST] <<SYS>><</SYS>>\n\nI'd like to show off how chat templating works! [/INST]"),
        (PHI3, "system-user-assistant-user", "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello, how are you?<|end|>\n<|assistant|>\nI'm doing great. How can I help you today?<|end|>\n<|user|>\nI'd like to show off how chat templating works!<|end|>\n<|assistant|>\n"),
        (ZEPHYR, "system-user-assistant-user", "<|system|>\nYou are a helpful assistant.</s>\n<|user|>\nHello, how are you?</s>\n<|assistant|>\nI'm doing great. How can I help you today?</s>\n<|user|>\nI'd like to show off how chat templating works!</s>\n<|assistant|>\n"),
        // Ollama's test strips the trailing space of this legacy template's output.
        (VICUNA_LEGACY, "user-assistant-user", "USER: Hello, how are you?\nASSISTANT: I'm doing great. How can I help you today?</s>\nUSER: I'd like to show off how chat templating works!\nASSISTANT: "),
    ];
    for (template, name, want) in cases {
        assert_eq!(
            chat(template, &conversation(name)),
            *want,
            "{name}:\n{template}"
        );
    }
}

/// Expectations derived from Go semantics for template revisions without matching testdata.
#[test]
fn derived_conversations() {
    let cases: &[(&str, &str, &str)] = &[
        // `$system` is `.System`, printed in the user turn at index 1, single newline.
        (GEMMA3_INSTRUCT, "system-user-assistant-user", "<start_of_turn>user\nYou are a helpful assistant.\nHello, how are you?<end_of_turn>\n<start_of_turn>model\nI'm doing great. How can I help you today?<end_of_turn>\n<start_of_turn>user\nI'd like to show off how chat templating works!<end_of_turn>\n<start_of_turn>model\n\n"),
        // The system prompt goes into the last user turn only.
        (MISTRAL_INSTRUCT_DUAL, "system-user-assistant-user", "[INST] Hello, how are you?[/INST] I'm doing great. How can I help you today?</s>[INST] You are a helpful assistant.\nI'd like to show off how chat templating works![/INST]"),
        (LLAMA2_CHAT, "system-user-assistant-user", "[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello, how are you? [/INST] I'm doing great. How can I help you today?</s><s>[INST] <<SYS>><</SYS>>\n\nI'd like to show off how chat templating works! [/INST]"),
        (LLAMA2_CHAT_DUAL, "user-assistant-user", "[INST] <<SYS>><</SYS>>\n\nHello, how are you? [/INST] I'm doing great. How can I help you today?</s><s>[INST] I'd like to show off how chat templating works! [/INST]"),
        // Legacy: one full execution per completed turn, with nothing between turns.
        (PHI3_LEGACY, "system-user-assistant-user", "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello, how are you?<|end|>\n<|assistant|>\nI'm doing great. How can I help you today?<|end|><|user|>\nI'd like to show off how chat templating works!<|end|>\n<|assistant|>\n"),
        (VICUNA_LEGACY, "system-user-assistant-user", "You are a helpful assistant.\n\nUSER: Hello, how are you?\nASSISTANT: I'm doing great. How can I help you today?</s>\nUSER: I'd like to show off how chat templating works!\nASSISTANT: "),
    ];
    for (template, name, want) in cases {
        assert_eq!(
            chat(template, &conversation(name)),
            *want,
            "{name}:\n{template}"
        );
    }
}

/// Ollama's `TestExecuteWithMessages`: legacy templates (with and without `.Response`) and their
/// messages-style equivalent render the same prompt.
#[test]
fn ollama_execute_with_messages() {
    let m = |r: &str, c: &str| Message::new(r, c);
    let friend = vec![
        m("user", "Hello friend!"),
        m("assistant", "Hello human!"),
        m("user", "What is your name?"),
    ];
    let with_system = [
        vec![m("system", "You are a helpful assistant!")],
        friend.clone(),
    ]
    .concat();
    let unfinished = [
        friend.clone(),
        vec![m("assistant", "My name is Ollama and I")],
    ]
    .concat();
    let mistral = ["[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] ",
        "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] {{ .Response }}",
        "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}\n{{- range .Messages }}\n{{- if eq .Role \"user\" }}{{ .Content }}[/INST] {{ else if eq .Role \"assistant\" }}{{ .Content }}[INST] {{ end }}\n{{- end }}"];
    let assistant = ["[INST] {{ .Prompt }}[/INST] ", "[INST] {{ .Prompt }}[/INST] {{ .Response }}",
        "\n{{- range $i, $m := .Messages }}\n{{- if eq .Role \"user\" }}[INST] {{ .Content }}[/INST] {{ else if eq .Role \"assistant\" }}{{ .Content }}{{ end }}\n{{- end }}"];
    let chatml = ["{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ .Response }}<|im_end|>\n",
        "\n{{- range $index, $_ := .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"];
    let cases: Vec<(&[&str], &[Message], &str)> = vec![
        (&mistral, &friend, "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] "),
        (&mistral, &with_system, "[INST] You are a helpful assistant!\n\nHello friend![/INST] Hello human![INST] What is your name?[/INST] "),
        (&assistant, &unfinished, "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] My name is Ollama and I"),
        (&chatml, &with_system, "<|im_start|>system\nYou are a helpful assistant!<|im_end|>\n<|im_start|>user\nHello friend!<|im_end|>\n<|im_start|>assistant\nHello human!<|im_end|>\n<|im_start|>user\nWhat is your name?<|im_end|>\n<|im_start|>assistant\n"),
    ];
    for (templates, messages, want) in cases {
        for template in templates {
            assert_eq!(chat(template, messages), want, "{template}");
        }
    }
}

/// Ollama's `TestExecuteWithSuffix`.
#[test]
fn ollama_execute_with_suffix() {
    let t = parse("{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>\n{{- else }}{{ .Prompt }}\n{{- end }}").unwrap();
    let think = Think::default();
    assert_eq!(
        render_chat(&t, &[Message::new("user", "hello")], &[], &think).unwrap(),
        "hello"
    );
    assert_eq!(
        render_fim(&t, "def add(", "return x", &think).unwrap(),
        "<PRE> def add( <SUF>return x <MID>"
    );
    let qwen = parse(QWEN25_TOOLS).unwrap();
    assert_eq!(
        render_fim(&qwen, "def add(", "return x", &think).unwrap(),
        "<|fim_prefix|>def add(<|fim_suffix|>return x<|fim_middle|>"
    );
}

/// Ollama's tool golden files (`server/testdata/tools/*.out`, `tools/testdata/qwen3.out`).
#[test]
fn ollama_tool_goldens() {
    assert_eq!(chat_with_tools(MISTRAL_TOOLS), MISTRAL_TOOLS_OUT);
    assert_eq!(chat_with_tools(LLAMA32_TOOLS), LLAMA32_TOOLS_OUT);
    assert_eq!(chat_with_tools(QWEN3_TOOLS), QWEN3_TOOLS_OUT);
    // qwen2.5 differs from qwen3 only in its FIM branch.
    assert_eq!(chat_with_tools(QWEN25_TOOLS), QWEN3_TOOLS_OUT);
    // The golden file was rendered from older test inputs ("knowledgable", "users location").
    let plus = COMMAND_R_PLUS_OUT
        .replace("knowledgable", "knowledgeable")
        .replace("users location", "user's location");
    assert_eq!(chat_with_tools(COMMAND_R_PLUS), plus);
}

const TOOL_JSON: &str = r#"{"type":"function","function":{"name":"get_current_weather","description":"Get the current weather","parameters":{"type":"object","required":["location","format"],"properties":{"format":{"type":"string","description":"The temperature unit to use. Infer this from the user's location.","enum":["celsius","fahrenheit"]},"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"}}}}}"#;

/// The ollama.com llama3.1 template with tools, derived by hand: tools go into the last user
/// turn, arguments print as sorted JSON, tool results use the ipython role.
#[test]
fn llama31_with_tools() {
    let want = [
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a knowledgeable assistant. You can answer questions and perform tasks.\n\nCutting Knowledge Date: December 2023\n\nWhen you receive a tool call response, use the output to format an answer to the orginal user question.\n\nYou are a helpful assistant with tool calling capabilities.<|eot_id|>",
        "<|start_header_id|>user<|end_header_id|>\n\nWhat's the weather like today in Paris?<|eot_id|>",
        "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_current_weather\", \"parameters\": {\"format\":\"celsius\",\"location\":\"Paris, France\"}}<|eot_id|>",
        "<|start_header_id|>ipython<|end_header_id|>\n\n22<|eot_id|>",
        "<|start_header_id|>assistant<|end_header_id|>\n\nThe current temperature in Paris, France is 22 degrees Celsius.<|eot_id|>",
        "<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\nRespond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}. Do not use variables.\n\n",
        TOOL_JSON,
        "\n\nQuestion: What's the weather like today in San Francisco and Toronto?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    ]
    .concat();
    assert_eq!(chat_with_tools(LLAMA31), want);
    // Without tools or system prompt the system block disappears entirely.
    let plain = chat(LLAMA31, &conversation("user"));
    assert_eq!(plain, "<|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

/// `template/command-r.gotmpl` with tools, derived by hand: properties listed in sorted order,
/// the action instruction after every user turn, tool results as console output.
#[test]
fn command_r_with_tools() {
    let write_action = "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>Write 'Action:' followed by a json-formatted list of actions that you want to perform in order to produce a good response to the user's last input. You can use any of the supplied tools any number of times, but you should aim to execute the minimum number of necessary actions for the input. You should use the `directly-answer` tool if calling the other tools is unnecessary. The list of actions you want to call should be formatted as a list of json objects, for example:\n```json\n[\n    {\n        \"tool_name\": title of the tool in the specification,\n        \"parameters\": a dict of parameters to input into the tool as they are defined in the specs, or {} if it takes no parameters\n    }\n]```";
    let preamble = COMMAND_R_PLUS_OUT.split("# User Preamble").next().unwrap();
    let want = [
        preamble,
        "# User Preamble\nYou are a knowledgeable assistant. You can answer questions and perform tasks.\n\n## Available Tools\nHere is a list of tools that you have available to you:\n\n```python\ndef get_current_weather(format: string, location: string, ) -> List[Dict]:\n    '''Get the current weather\n\n    Args:\n        format (string): The temperature unit to use. Infer this from the user's location.\n        location (string): The city and state, e.g. San Francisco, CA\n    '''\n    pass\n```<|END_OF_TURN_TOKEN|>",
        "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>What's the weather like today in Paris?", write_action, "<|END_OF_TURN_TOKEN|>",
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>\nAction: ```json\n[\n    {\n        \"tool_name\": \"get_current_weather\",\n        \"parameters\": {\"format\":\"celsius\",\"location\":\"Paris, France\"}\n    }\n]```<|END_OF_TURN_TOKEN|>",
        "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|><results>\nconsole_output: 22\n</results><|END_OF_TURN_TOKEN|>",
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>The current temperature in Paris, France is 22 degrees Celsius.<|END_OF_TURN_TOKEN|>",
        "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>What's the weather like today in San Francisco and Toronto?", write_action, "<|END_OF_TURN_TOKEN|>",
        "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>\n",
    ]
    .concat();
    assert_eq!(chat_with_tools(COMMAND_R), want);
}

/// A messages-style template given no messages takes its legacy-looking `else` branch with
/// `.Prompt` unset (a missing key, so false) and an empty `.Response`.
#[test]
fn messages_template_without_messages() {
    assert_eq!(
        chat(CHATML_LEGACY_AWARE, &[]),
        "\n<|im_start|>assistant\n<|im_end|>"
    );
    // With messages, this old chatml revision really printed the system prompt twice.
    let out = chat(
        CHATML_LEGACY_AWARE,
        &conversation("system-user-assistant-user"),
    );
    assert_eq!(out.matches("You are a helpful assistant.").count(), 2);
}

"""Tool calling and reasoning through the official `openai` SDK, for each scripted agent model
in OLLMLX_TEST_MODELS (its reply is always: reasoning "Let me check the weather.", then a call
get_weather {"city": "Paris", "unit": "celsius"}). Run by tests/it/agent.rs."""

import json
import os

import openai

client = openai.OpenAI(base_url=os.environ["OLLAMA_HOST"] + "/v1", api_key="ollmlx")
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
WANT = {"city": "Paris", "unit": "celsius"}

for model in os.environ["OLLMLX_TEST_MODELS"].split(","):
    done = client.chat.completions.create(model=model, messages=ASK, tools=TOOLS)
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls", (model, done)
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_"), call
    assert call.function.name == "get_weather", call
    assert json.loads(call.function.arguments) == WANT, call
    assert choice.message.model_extra["reasoning"] == "Let me check the weather.", choice
    assert done.usage.completion_tokens > 0

    # Streamed: the call arrives whole in one delta with its index; reasoning in its own deltas.
    chunks = list(
        client.chat.completions.create(model=model, messages=ASK, tools=TOOLS, stream=True)
    )
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(calls) == 1 and calls[0].index == 0, calls
    assert json.loads(calls[0].function.arguments) == WANT
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning") or "" for c in chunks if c.choices
    )
    assert reasoning == "Let me check the weather.", reasoning
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    # The tool's answer goes back (tool_call_id only: the name is looked up).
    history = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
    ]
    again = client.chat.completions.create(model=model, messages=history, tools=TOOLS)
    assert again.choices[0].finish_reason == "tool_calls", again

    # Malformed arguments from the client are a clear 400.
    bad = [
        *ASK,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "c",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{not json"},
                }
            ],
        },
    ]
    try:
        client.chat.completions.create(model=model, messages=bad, tools=TOOLS)
        raise AssertionError("malformed arguments were accepted")
    except openai.BadRequestError as e:
        assert "invalid tool call arguments" in str(e), e
print("all checks passed")

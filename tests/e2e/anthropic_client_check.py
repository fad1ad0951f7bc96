"""Drives a running ollmlx's /v1/messages with the official `anthropic` Python SDK: thinking,
text, streaming (raw events and the accumulating helper), tool use and its round trip, stop
reasons, usage and errors, on the scripted fixture models. Run by tests/it/ollama_client.rs;
exits non-zero on the first failed check."""

import os

import anthropic

AGENT = "ollmlx-test/tiny-agent"
THINKER = "ollmlx-test/tiny-thinker"
client = anthropic.Anthropic(base_url=os.environ["OLLAMA_HOST"], api_key="ollmlx")
HI = [{"role": "user", "content": "Hi!"}]
THINK = {"type": "enabled", "budget_tokens": 1024}
TOOLS = [
    {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "input_schema": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    }
]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
PARIS = {"city": "Paris", "unit": "celsius"}

# Thinking, then text.
msg = client.messages.create(model=THINKER, max_tokens=64, messages=HI, thinking=THINK)
assert msg.id.startswith("msg_") and msg.role == "assistant" and msg.model == THINKER, msg
assert [b.type for b in msg.content] == ["thinking", "text"], msg.content
assert msg.content[0].thinking == "The user wants a greeting.", msg.content
assert msg.content[1].text == "Hello there!", msg.content
assert msg.stop_reason == "end_turn", msg
assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0, msg.usage

off = client.messages.create(
    model=THINKER, max_tokens=64, messages=HI, thinking={"type": "disabled"}, system="Be kind."
)
assert [b.type for b in off.content] == ["text"] and off.content[0].text == "Hello there!", off

# The SDK no longer takes sampling parameters; the API still does.
short = client.messages.create(
    model=THINKER, max_tokens=2, messages=HI, extra_body={"temperature": 0, "top_k": 1}
)
assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 2, short

# The raw stream: Anthropic's event sequence (the SDK drops pings).
events = list(
    client.messages.create(model=THINKER, max_tokens=64, messages=HI, thinking=THINK, stream=True)
)
kinds = [e.type for e in events]
assert kinds == [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
], kinds
assert events[-2].delta.stop_reason == "end_turn" and events[-2].usage.output_tokens > 0

# The accumulating helper gives back the same message as the non-streamed call.
with client.messages.stream(model=THINKER, max_tokens=64, messages=HI, thinking=THINK) as s:
    text = "".join(s.text_stream)
    final = s.get_final_message()
assert text == "Hello there!", text
assert [b.type for b in final.content] == ["thinking", "text"], final.content
assert final.content[0].thinking == msg.content[0].thinking
assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0, final.usage

# Tool use, then the result sent back.
first = client.messages.create(model=AGENT, max_tokens=64, messages=ASK, tools=TOOLS)
assert first.stop_reason == "tool_use", first
assert [b.type for b in first.content] == ["thinking", "tool_use"], first.content
assert first.content[0].thinking == "Let me check the weather."
use = first.content[1]
assert use.name == "get_weather" and use.input == PARIS and use.id, use

with client.messages.stream(model=AGENT, max_tokens=64, messages=ASK, tools=TOOLS) as s:
    streamed = s.get_final_message()
assert streamed.stop_reason == "tool_use", streamed
assert streamed.content[1].type == "tool_use" and streamed.content[1].input == PARIS, streamed

history = [
    *ASK,
    {"role": "assistant", "content": first.content},
    {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": use.id,
                "content": [{"type": "text", "text": '{"temperature": 18}'}],
            }
        ],
    },
]
second = client.messages.create(model=AGENT, max_tokens=64, messages=history, tools=TOOLS)
# The scripted model calls the tool again, whatever it is told; the round trip is what counts.
assert second.stop_reason == "tool_use" and second.usage.input_tokens > first.usage.input_tokens

# Errors in Anthropic's shape, as the SDK's exceptions.
try:
    client.messages.create(model="nobody/nothing", max_tokens=5, messages=HI)
    raise AssertionError("expected NotFoundError")
except anthropic.NotFoundError as e:
    assert e.body["error"]["type"] == "not_found_error" and "not found" in str(e), e.body
try:
    client.messages.create(model=THINKER, max_tokens=5, messages=[])
    raise AssertionError("expected BadRequestError")
except anthropic.BadRequestError as e:
    assert e.body["error"]["type"] == "invalid_request_error", e.body

print("all checks passed")

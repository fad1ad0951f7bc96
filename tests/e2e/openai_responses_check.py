"""Drives a running ollmlx's /v1/responses with the official `openai` Python SDK: reasoning,
text, streaming (raw events and the accumulating helper), function calls and their round trip,
incomplete responses, usage and errors, on the scripted fixture models. Run by
tests/it/ollama_client.rs; exits non-zero on the first failed check."""

import json
import os

import openai

AGENT = "ollmlx-test/tiny-agent"
THINKER = "ollmlx-test/tiny-thinker"
client = openai.OpenAI(base_url=os.environ["OLLAMA_HOST"] + "/v1", api_key="ollmlx")
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
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

# Reasoning, then text.
r = client.responses.create(model=THINKER, input="Hi!", reasoning={"effort": "medium"})
assert r.id.startswith("resp_") and r.object == "response" and r.status == "completed", r
assert [o.type for o in r.output] == ["reasoning", "message"], r.output
assert r.output[0].summary[0].text == "The user wants a greeting.", r.output
assert r.output_text == "Hello there!", r.output_text
assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0, r.usage
assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens

plain = client.responses.create(
    model=THINKER,
    instructions="Be kind.",
    input=[{"role": "developer", "content": "Greet."}, {"role": "user", "content": "Hi!"}],
    reasoning={"effort": "none"},
)
assert [o.type for o in plain.output] == ["message"] and plain.output_text == "Hello there!"

cut = client.responses.create(model=THINKER, input="Hi!", max_output_tokens=2)
assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens", cut
assert cut.usage.output_tokens == 2, cut.usage

# The raw stream.
events = list(client.responses.create(model=THINKER, input="Hi!", stream=True))
kinds = [e.type for e in events]
assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
assert kinds[-1] == "response.completed", kinds
assert [e.sequence_number for e in events] == list(range(len(events)))
assert "response.reasoning_summary_text.delta" in kinds, kinds
text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
assert text == "Hello there!" and events[-1].response.output_text == text, text

# The accumulating helper (it checks item identities and order).
with client.responses.stream(model=THINKER, input="Hi!") as s:
    for _ in s:
        pass
    final = s.get_final_response()
assert final.output_text == "Hello there!" and final.output[0].type == "reasoning", final

# Function calls, then the output sent back.
first = client.responses.create(model=AGENT, input=ASK, tools=TOOLS)
calls = [o for o in first.output if o.type == "function_call"]
assert len(calls) == 1 and calls[0].name == "get_weather", first.output
assert json.loads(calls[0].arguments) == PARIS and calls[0].call_id, calls
assert first.output[0].type == "reasoning", first.output

with client.responses.stream(model=AGENT, input=ASK, tools=TOOLS) as s:
    for _ in s:
        pass
    streamed = s.get_final_response()
scalls = [o for o in streamed.output if o.type == "function_call"]
assert len(scalls) == 1 and json.loads(scalls[0].arguments) == PARIS, streamed.output

history = [
    *ASK,
    *first.output,
    {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"temperature": 18}'},
]
second = client.responses.create(model=AGENT, input=history, tools=TOOLS)
# The scripted model calls the tool again, whatever it is told; the round trip is what counts.
assert second.status == "completed" and second.usage.input_tokens > first.usage.input_tokens

# Errors.
try:
    client.responses.create(model="nobody/nothing", input="x")
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError as e:
    assert "not found" in str(e)
try:
    client.responses.create(model=THINKER, input="x", previous_response_id="resp_1")
    raise AssertionError("expected BadRequestError")
except openai.BadRequestError as e:
    assert "stateless" in str(e)

print("all checks passed")

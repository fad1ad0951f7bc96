"""Tool calling and thinking through the official `ollama` Python client, for each scripted agent
model in OLLMLX_TEST_MODELS (reply: reasoning "Let me check the weather.", then a call
get_weather {"city": "Paris", "unit": "celsius"}). Tools are given as a Python function, which
the client turns into a schema itself. Run by tests/it/agent.rs."""

import os

import ollama

client = ollama.Client(host=os.environ["OLLAMA_HOST"])


def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather in a city.

    Args:
        city: The city's name
        unit: celsius or fahrenheit
    """
    return f"18 degrees {unit} in {city}"


ASK = [{"role": "user", "content": "What is the weather in Paris?"}]

for model in os.environ["OLLMLX_TEST_MODELS"].split(","):
    shown = client.show(model)
    assert "tools" in shown.capabilities and "thinking" in shown.capabilities, shown.capabilities

    r = client.chat(model=model, messages=ASK, tools=[get_weather], think=True)
    assert r.message.thinking == "Let me check the weather.", r.message
    (call,) = r.message.tool_calls
    assert call.function.name == "get_weather"
    assert call.function.arguments == {"city": "Paris", "unit": "celsius"}, call

    # Run the tool as a client would and send its answer back.
    result = get_weather(**call.function.arguments)
    history = [*ASK, r.message, {"role": "tool", "content": result, "tool_name": "get_weather"}]
    again = client.chat(model=model, messages=history, tools=[get_weather])
    assert again.message.tool_calls, again

    # Streamed: thinking arrives in pieces, the call whole in one chunk.
    parts = list(client.chat(model=model, messages=ASK, tools=[get_weather], stream=True))
    assert "".join(p.message.thinking or "" for p in parts) == "Let me check the weather."
    calls = [c for p in parts for c in (p.message.tool_calls or [])]
    assert len(calls) == 1 and calls[0].function.arguments["city"] == "Paris", calls
    assert parts[-1].done and parts[-1].done_reason == "stop"

    # think=False: no reasoning in the reply.
    quiet = client.chat(model=model, messages=ASK, tools=[get_weather], think=False)
    assert not quiet.message.thinking and quiet.message.tool_calls, quiet.message
print("all checks passed")

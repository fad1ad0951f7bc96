"""Drives a running ollmlx with the official `ollama` Python client (list, show, generate, chat).

Run by tests/it/ollama_client.rs with OLLAMA_HOST pointing at a test daemon. Exits non-zero with
a message on the first failed check.
"""

import os

import ollama

MODEL = os.environ.get("OLLMLX_TEST_MODEL", "ollmlx-test/tiny-llama")
client = ollama.Client(host=os.environ["OLLAMA_HOST"])

listed = client.list()
names = [m.model for m in listed.models]
assert f"{MODEL}:latest" in names, names
entry = next(m for m in listed.models if m.model == f"{MODEL}:latest")
assert entry.details.family == "llama", entry.details
assert entry.size and entry.size > 0
assert len(entry.digest) == 64

shown = client.show(MODEL)
assert shown.modelinfo["general.architecture"] == "llama", shown.modelinfo
assert "completion" in shown.capabilities
assert shown.template

gen = client.generate(model=MODEL, prompt="Hello", options={"num_predict": 5, "temperature": 0})
assert gen.done and gen.done_reason == "length" and gen.eval_count == 5, gen
assert gen.context, "generate returns context"

parts = list(
    client.generate(
        model=MODEL, prompt="Hello", stream=True, options={"num_predict": 5, "temperature": 0}
    )
)
assert parts[-1].done and "".join(p.response for p in parts) == gen.response

reply = client.chat(
    model=MODEL,
    messages=[{"role": "user", "content": "Hi there"}],
    options={"num_predict": 4, "temperature": 0},
)
assert reply.message.role == "assistant" and reply.eval_count == 4, reply

chunks = list(
    client.chat(
        model=MODEL,
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        options={"num_predict": 3},
    )
)
assert chunks[-1].done and chunks[-1].eval_count == 3

running = client.ps()
assert any(m.model == f"{MODEL}:latest" for m in running.models), running

try:
    client.chat(model="nobody/nothing", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("expected a ResponseError")
except ollama.ResponseError as e:
    assert e.status_code == 404 and "not found" in e.error, (e.status_code, e.error)

print("all checks passed")

"""Drives a running ollmlx with the official `openai` Python SDK (chat, streaming, models,
embeddings, errors). Run by tests/it/ollama_client.rs; exits non-zero on the first failed check."""

import base64
import os
import struct

import openai

MODEL = os.environ.get("OLLMLX_TEST_MODEL", "ollmlx-test/tiny-llama")
client = openai.OpenAI(base_url=os.environ["OLLAMA_HOST"] + "/v1", api_key="ollmlx")

done = client.chat.completions.create(
    model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=5, temperature=0
)
assert done.choices[0].finish_reason == "length", done
assert done.usage.completion_tokens == 5, done.usage
assert done.choices[0].message.role == "assistant"

stream = client.chat.completions.create(
    model=MODEL,
    messages=[{"role": "user", "content": "Hi"}],
    max_completion_tokens=5,
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
)
chunks = list(stream)
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert text == done.choices[0].message.content, (text, done.choices[0].message.content)
assert chunks[-1].usage.completion_tokens == 5

legacy = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=3)
assert legacy.choices[0].finish_reason == "length" and legacy.usage.completion_tokens == 3, legacy

ids = [m.id for m in client.models.list()]
assert f"{MODEL}:latest" in ids, ids
assert client.models.retrieve(MODEL).id == MODEL

emb = client.embeddings.create(model=MODEL, input=["hello", "world"])
assert len(emb.data) == 2 and len(emb.data[0].embedding) == 128
b64 = client.embeddings.create(model=MODEL, input="hello", encoding_format="base64")
first = struct.unpack("<f", base64.b64decode(b64.data[0].embedding)[:4])[0]
assert abs(first - emb.data[0].embedding[0]) < 1e-6, (first, emb.data[0].embedding[0])

try:
    client.chat.completions.create(
        model="nobody/nothing", messages=[{"role": "user", "content": "x"}]
    )
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError as e:
    assert "not found" in str(e)

print("all checks passed")

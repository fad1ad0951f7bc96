"""POST /v1/embed: mean-pooled, L2-normalised final hidden states.

The cross-check against llama-server's ``--pooling mean`` vectors on the GGUF of the same weights
lives in tests/fixtures/check_llama_server.py (it needs the llama-server binary).
"""

from __future__ import annotations

import math
import threading

import pytest
from conftest import Runner, chat, text_of

from ollmlx_mlx.protocol import RequestError, parse_embed

HIDDEN = 128  # tiny-llama's hidden size
TEXTS = ["The quick brown fox jumps over the lazy dog.", "def add(a, b):\n    return a + b"]


def embed(runner: Runner, inputs: list[str], **body: object) -> dict:
    status, out = runner.post("/v1/embed", {"input": inputs, **body})
    assert status == 200, out
    return out


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (norm(a) * norm(b))


def tokens(runner: Runner, text: str) -> list[int]:
    _, out = runner.post("/v1/tokenize", {"text": text})
    return out["tokens"]


def test_shape_norm_and_token_count(runner: Runner) -> None:
    out = embed(runner, TEXTS)
    assert set(out) == {"embeddings", "prompt_eval_count"}
    assert len(out["embeddings"]) == 2
    for v in out["embeddings"]:
        assert len(v) == HIDDEN and all(isinstance(x, float) for x in v)
        assert abs(norm(v) - 1.0) < 1e-5
    assert out["prompt_eval_count"] == sum(len(tokens(runner, t)) for t in TEXTS)


def test_deterministic_and_independent_of_the_batch(runner: Runner) -> None:
    a = embed(runner, TEXTS)["embeddings"]
    b = embed(runner, TEXTS)["embeddings"]
    assert a == b
    # The same text twice in one request, and alone: the same vector every time.
    c = embed(runner, [TEXTS[1], "something else entirely", TEXTS[1]])["embeddings"]
    alone = embed(runner, [TEXTS[1]])["embeddings"][0]
    assert c[0] == c[2] == alone
    assert cosine(a[0], a[1]) < 0.999  # different texts, different vectors


def test_empty_input_list(runner: Runner) -> None:
    assert embed(runner, []) == {"embeddings": [], "prompt_eval_count": 0}


def test_truncate_keeps_the_first_num_ctx_tokens(runner: Runner) -> None:
    text = "the quick brown fox jumps over the lazy dog " * 4
    ids = tokens(runner, text)
    n = 7
    assert len(ids) > n
    _, prefix = runner.post("/v1/detokenize", {"tokens": ids[:n]})
    assert tokens(runner, prefix["text"]) == ids[:n]  # the prefix re-tokenizes to itself

    cut = embed(runner, [text], num_ctx=n)
    assert cut["prompt_eval_count"] == n
    want = embed(runner, [prefix["text"]])["embeddings"][0]
    assert cosine(cut["embeddings"][0], want) > 0.99999
    # truncate defaults to true, and an input that fits is untouched.
    assert embed(runner, [text], num_ctx=n) == cut
    whole = embed(runner, [text], num_ctx=len(ids), truncate=False)
    assert whole["prompt_eval_count"] == len(ids)


def test_truncate_false_rejects_a_long_input(runner: Runner) -> None:
    text = "the quick brown fox jumps over the lazy dog"
    n = len(tokens(runner, text))
    status, err = runner.post("/v1/embed", {"input": [text], "truncate": False, "num_ctx": n - 1})
    assert (status, err) == (400, {"error": "the input length exceeds the context length"})


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"input": "a string"},
        {"input": [1, 2]},
        {"input": ["ok", ""]},
        {"input": ["ok"], "num_ctx": 0},
        {"input": ["ok"], "num_ctx": "big"},
        {"input": ["ok"], "truncate": "yes"},
    ],
)
def test_bad_requests(runner: Runner, body: dict) -> None:
    status, err = runner.post("/v1/embed", body)
    assert status == 400 and err["error"]


def test_parse_embed_defaults() -> None:
    req = parse_embed({"input": ["a"]})
    assert (req.input, req.truncate, req.num_ctx) == (["a"], True, 2048)
    assert parse_embed({"input": [], "num_ctx": 16.7, "truncate": False}).num_ctx == 16
    with pytest.raises(RequestError, match=r'"input\[1\]" is empty'):
        parse_embed({"input": ["a", ""]})


def test_embed_between_decode_steps_leaves_generation_unchanged(runner: Runner) -> None:
    request = chat("Tell me about the sea", num_predict=48)
    alone = text_of(runner.complete(request))
    together = [""]

    def generate() -> None:
        together[0] = text_of(runner.complete(request))

    thread = threading.Thread(target=generate)
    thread.start()
    vectors = [embed(runner, TEXTS)["embeddings"] for _ in range(3)]
    thread.join(60)
    assert together[0] == alone
    assert vectors[0] == vectors[1] == vectors[2]


def test_4bit_model_embeds(runner_4bit: Runner) -> None:
    out = embed(runner_4bit, TEXTS)
    assert [len(v) for v in out["embeddings"]] == [HIDDEN, HIDDEN]
    assert all(abs(norm(v) - 1.0) < 1e-5 for v in out["embeddings"])

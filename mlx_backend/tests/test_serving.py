"""The serving engine: prefix cache, continuous batching and KV quantization, as behaviour.

Every claim is checked against the runner's own output: a request served from the prefix cache
or inside a batch gives exactly the tokens it gives alone and uncached; the cache stays inside
its byte budget; concurrent streams really decode together (more than one token per decode step).
No timings are asserted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Runner, _runner, chat, done_of, snapshot, text_of
from test_lifecycle import open_stream, wait_for

# A schema whose every valid output is a few tokens: even a random model completes it.
SMALL_SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 9}},
    "required": ["a"],
}
LONG_SYSTEM = "You are a careful assistant. " * 60  # ~300 tokens, shared by every turn


@pytest.fixture(scope="module")
def batch_runner(models: Path) -> Iterator[Runner]:
    """Four slots and the default prefix cache."""
    yield from _runner(snapshot("tiny-llama"), parallel=4)


@pytest.fixture(scope="module")
def uncached_runner(models: Path) -> Iterator[Runner]:
    """The same model with the prefix cache off: the reference for "same tokens"."""
    yield from _runner(snapshot("tiny-llama"), parallel=1, args=("--prefix-cache-bytes", "0"))


def conversation(turns: int) -> list[dict]:
    msgs = [{"role": "system", "content": LONG_SYSTEM}]
    for i in range(turns):
        msgs.append({"role": "user", "content": f"Question number {i}: what comes next?"})
        msgs.append({"role": "assistant", "content": f"Answer {i} is here."})
    return msgs[:-1]


def complete(r: Runner, messages: list[dict], **options) -> list[dict]:
    return r.complete({"messages": messages, "options": {"temperature": 0, **options}})


def test_turns_of_a_chat_reuse_the_cache_and_give_the_same_tokens(
    batch_runner: Runner, uncached_runner: Runner
) -> None:
    for turn in range(1, 5):
        msgs = conversation(turn)
        cached = complete(batch_runner, msgs, num_predict=12)
        plain = complete(uncached_runner, msgs, num_predict=12)
        assert text_of(cached) == text_of(plain)
        done, ref = done_of(cached), done_of(plain)
        # prompt_eval_count is the whole prompt, as Ollama reports it, hit or not.
        assert done["prompt_eval_count"] == ref["prompt_eval_count"] == cached[0]["prompt_tokens"]
        assert ref["cached_tokens"] == 0
        if turn > 1:  # everything up to this turn's new message was seen before
            assert done["cached_tokens"] > 300, done


def test_an_exact_repeat_reuses_all_but_the_last_token(batch_runner: Runner) -> None:
    msgs = [{"role": "user", "content": "An exact repeat of this prompt, please."}]
    first = complete(batch_runner, msgs, num_predict=10)
    again = complete(batch_runner, msgs, num_predict=10)
    assert text_of(again) == text_of(first)
    n = again[0]["prompt_tokens"]
    assert done_of(again)["cached_tokens"] == n - 1  # at least one token is always fed


def test_seeded_sampling_is_the_same_with_and_without_a_hit(
    batch_runner: Runner, uncached_runner: Runner
) -> None:
    msgs = conversation(2)
    opts = {"num_predict": 16, "temperature": 0.9, "seed": 1234, "top_k": 0, "top_p": 1.0}
    complete(batch_runner, msgs, num_predict=1)  # warm the cache with this prompt
    hit = complete(batch_runner, msgs, **opts)
    ref = complete(uncached_runner, msgs, **opts)
    assert done_of(hit)["cached_tokens"] > 0
    assert text_of(hit) == text_of(ref)


def test_logprobs_stops_and_format_are_unchanged_by_a_hit(
    batch_runner: Runner, uncached_runner: Runner
) -> None:
    msgs = conversation(3)
    body = {
        "messages": msgs,
        "options": {"temperature": 0, "num_predict": 40},
        "logprobs": True,
        "top_logprobs": 3,
        "format": SMALL_SCHEMA,
    }
    batch_runner.complete({**body, "format": None, "logprobs": False})  # warm
    hit, ref = batch_runner.complete(body), uncached_runner.complete(body)
    assert done_of(hit)["cached_tokens"] > 0
    assert text_of(hit) == text_of(ref)
    assert json.loads(text_of(hit))["a"] in range(10)  # the constraint saw the whole context
    lp = [e["logprobs"] for e in hit if e["event"] == "chunk"]
    assert lp == [e["logprobs"] for e in ref if e["event"] == "chunk"]


def test_concurrent_streams_decode_together_and_match_their_solo_output(
    batch_runner: Runner, uncached_runner: Runner
) -> None:
    bodies = [chat(f"Tell story number {i} " * (i + 1), num_predict=40 + 7 * i) for i in range(4)]
    bodies[1]["options"].update(temperature=0.8, seed=99)  # a seeded row
    bodies[2]["options"]["stop"] = ["e"]  # a stop string
    bodies[3]["format"] = SMALL_SCHEMA  # a constrained row beside free ones
    bodies[3]["logprobs"] = True
    alone = [uncached_runner.complete(b) for b in bodies]
    before = batch_runner.status()["engine"]
    results: dict[int, list[dict]] = {}

    def run(i: int) -> None:
        results[i] = batch_runner.complete(bodies[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    after = batch_runner.status()["engine"]
    for i in range(4):
        assert results[i] == alone[i] or (
            text_of(results[i]) == text_of(alone[i])
            and done_of(results[i])["eval_count"] == done_of(alone[i])["eval_count"]
        ), i
    assert json.loads(text_of(results[3]))["a"] in range(10)
    steps = after["decode_steps"] - before["decode_steps"]
    tokens = after["decode_tokens"] - before["decode_tokens"]
    # Four streams in one batch: well over one token per batched decode step on average.
    assert tokens / steps > 1.5, (tokens, steps)


def test_the_cache_stays_within_its_budget_and_evicts_least_recently_used(
    models: Path,
) -> None:
    # Raw prompts with different first words share no prefix, so only a real hit refreshes an
    # entry. About 137 tokens each: four entries fit in the budget, five do not.
    budget = 600000
    gen = _runner(snapshot("tiny-llama"), parallel=1, args=("--prefix-cache-bytes", str(budget)))
    r = next(gen)

    def run(word: str) -> dict:
        body = {"prompt": f"{word} " + "words " * 130, "options": {"temperature": 0}}
        return done_of(r.complete({**body, "options": {"temperature": 0, "num_predict": 4}}))

    try:
        for word in ("alpha", "bravo", "charlie", "delta"):
            assert run(word)["cached_tokens"] == 0
            stats = r.status()["prefix_cache"]
            assert 0 < stats["bytes"] <= stats["budget"] == budget, stats
        assert r.status()["prefix_cache"]["entries"] == 4
        assert run("alpha")["cached_tokens"] > 100  # a hit: alpha is now the most recent
        run("echo")  # over budget: the least recently used entry (bravo) goes
        stats = r.status()["prefix_cache"]
        assert stats["bytes"] <= budget and stats["entries"] == 4, stats
        assert r.status()["memory"]["prefix_cache"] == stats["bytes"]
        assert run("bravo")["cached_tokens"] == 0
        assert run("echo")["cached_tokens"] > 100
        assert run("alpha")["cached_tokens"] > 100
        # The daemon can shrink it: 0 empties it.
        code, body = r.post("/v1/cache", {"max_bytes": 0})
        assert code == 200 and body["bytes"] == 0 and body["entries"] == 0
        assert r.post("/v1/cache", {"max_bytes": -1})[0] == 400
        assert run("alpha")["cached_tokens"] == 0
    finally:
        gen.close()


def test_a_cancelled_request_leaves_its_work_in_the_cache(batch_runner: Runner) -> None:
    msgs = [{"role": "user", "content": "Cancel me halfway " * 40}]
    conn, stream = open_stream(batch_runner, {"messages": msgs, "options": {"num_predict": 1900}})
    start = json.loads(stream.readline())
    json.loads(stream.readline())  # decoding
    before = batch_runner.status()["requests"]["cancelled"]
    conn.sock.shutdown(2)
    conn.close()
    wait_for(lambda: batch_runner.status()["requests"]["cancelled"] == before + 1, 20, "the cancel")
    again = complete(batch_runner, msgs, num_predict=3)
    assert done_of(again)["cached_tokens"] == start["prompt_tokens"] - 1


def test_kv_bits_quantizes_long_sequences_in_the_solo_lane(models: Path) -> None:
    gen = _runner(snapshot("tiny-llama"), parallel=2, args=("--kv-bits", "8"))
    r = next(gen)
    try:
        engine = r.status()["engine"]
        assert (engine["lane"], engine["kv_bits"]) == ("solo", 8)
        # Past the 5000-token start the cache is quantized; generation carries on normally.
        events = r.complete(
            {
                "prompt": "words " * 5200,
                "options": {"temperature": 0, "num_predict": 8, "num_ctx": 8192},
            }
        )
        assert done_of(events)["done_reason"] == "length"
        assert done_of(events)["eval_count"] == 8
        # The solo lane has the prefix cache too: the quantized cache is reused, same tokens.
        again = r.complete(
            {
                "prompt": "words " * 5200,
                "options": {"temperature": 0, "num_predict": 8, "num_ctx": 8192},
            }
        )
        assert done_of(again)["cached_tokens"] == events[0]["prompt_tokens"] - 1
        assert text_of(again) == text_of(events)
        assert r.status()["prefix_cache"]["bytes"] > 0
        # A short prompt (never quantized) with penalties: hit or not, the same tokens.
        body = chat("Penalties see the whole context", num_predict=12, repeat_penalty=1.5)
        first, second = r.complete(body), r.complete(body)
        assert done_of(second)["cached_tokens"] > 0
        assert text_of(first) == text_of(second)
    finally:
        gen.close()


@pytest.fixture(scope="module")
def sliding_model(tmp_path_factory: pytest.TempPathFactory, models: Path) -> Path:
    """tiny-llama with a 16-token sliding window on every other layer (mlx_lm gives those
    layers a RotatingKVCache, which cannot be trimmed once it has wrapped, nor quantized)."""
    src = snapshot("tiny-llama")
    dst = tmp_path_factory.mktemp("sliding")
    for f in src.iterdir():
        if f.name != "config.json":
            (dst / f.name).symlink_to(f.resolve())
    config = json.loads((src / "config.json").read_text())
    n = config["num_hidden_layers"]
    config["sliding_window"] = 16
    config["layer_types"] = ["sliding_attention", "full_attention"] * (n // 2)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_untrimmable_caches_reuse_only_exact_prefixes_and_never_change_output(
    sliding_model: Path,
) -> None:
    cached_gen = _runner(sliding_model, parallel=2)
    plain_gen = _runner(sliding_model, parallel=1, args=("--prefix-cache-bytes", "0"))
    cached, plain = next(cached_gen), next(plain_gen)
    try:
        assert cached.status()["engine"]["lane"] == "batch"
        previous_prompt = 0
        for turn in range(1, 4):
            msgs = conversation(turn)
            a, b = complete(cached, msgs, num_predict=10), complete(plain, msgs, num_predict=10)
            assert text_of(a) == text_of(b), turn
            # The previous turn's prompt was checkpointed (less its last token) and this
            # prompt extends it: reused even though the wrapped window cannot be trimmed.
            assert done_of(a)["cached_tokens"] >= previous_prompt - 1, (turn, done_of(a))
            previous_prompt = a[0]["prompt_tokens"]
        # A repeat whose stored entry extends past the prompt cannot be trimmed back: a miss,
        # not a wrong answer.
        again = complete(cached, conversation(3), num_predict=10)
        assert text_of(again) == text_of(complete(plain, conversation(3), num_predict=10))
    finally:
        cached_gen.close()
        plain_gen.close()


def test_kv_bits_is_refused_with_a_warning_for_sliding_window_models(sliding_model: Path) -> None:
    gen = _runner(sliding_model, parallel=2, args=("--kv-bits", "4"))
    r = next(gen)
    try:
        engine = r.status()["engine"]
        assert engine["kv_bits"] is None and engine["lane"] == "batch"
        warnings = [x for x in r.log_lines() if x["msg"].startswith("KV cache quantization is off")]
        assert warnings and "sliding-window" in warnings[0]["reason"]
        assert done_of(r.complete(chat("hi", num_predict=3)))["eval_count"] >= 1
    finally:
        gen.close()

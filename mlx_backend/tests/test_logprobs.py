"""``logprobs`` / ``top_logprobs`` in chunk events, on the f16 tiny model."""

from __future__ import annotations

import math

import pytest
from conftest import Runner, chat, done_of, text_of


def entries(events: list[dict]) -> list[dict]:
    return [e for ev in events if ev["event"] == "chunk" for e in ev["logprobs"]]


def with_logprobs(top: int, **options: object) -> dict:
    return {
        **chat("Tell me a story", **{"num_predict": 12, **options}),
        "logprobs": True,
        "top_logprobs": top,
    }


def test_one_entry_per_token_with_sorted_top_logprobs(runner: Runner) -> None:
    events = runner.complete(with_logprobs(5))
    done, got = done_of(events), entries(events)
    assert done["done_reason"] == "length"
    assert len(got) == done["eval_count"]
    for e in got:
        assert e["logprob"] <= 0
        assert e["bytes"] == list(e["token"].encode()) or "\ufffd" in e["token"]
        top = e["top_logprobs"]
        assert len(top) == 5
        values = [t["logprob"] for t in top]
        assert values == sorted(values, reverse=True) and all(v <= 0 for v in values)
        # Greedy: the chosen token is the most likely one, with the same logprob.
        assert (top[0]["token"], top[0]["bytes"]) == (e["token"], e["bytes"])
        assert top[0]["logprob"] == e["logprob"]
    # The tokens' bytes spell the text (the detokenizer drops one leading space).
    spelled = b"".join(bytes(e["bytes"]) for e in got).decode()
    assert spelled.lstrip(" ") == text_of(events)


def test_entries_travel_with_their_text(runner: Runner) -> None:
    """After every chunk, the bytes of the entries sent so far spell the text sent so far: a
    token whose text is held back (part of a UTF-8 character) is sent with the chunk that
    completes it."""
    spelled, text = b"", ""
    for ev in runner.complete(with_logprobs(0, num_predict=40)):
        if ev["event"] == "chunk":
            assert ev["logprobs"]
            spelled += b"".join(bytes(e["bytes"]) for e in ev["logprobs"])
            text += ev["content"]
            assert spelled.decode().lstrip(" ") == text


def test_top_logprobs_zero_omits_the_key(runner: Runner) -> None:
    got = entries(runner.complete(with_logprobs(0)))
    assert got and all("top_logprobs" not in e and e["logprob"] <= 0 for e in got)


def test_no_logprobs_unless_asked(runner: Runner) -> None:
    events = runner.complete(chat("Tell me a story", num_predict=4))
    assert all("logprobs" not in ev for ev in events)


def test_sampled_token_is_among_the_possible_ones(runner: Runner) -> None:
    got = entries(runner.complete(with_logprobs(20, temperature=1.0, seed=11)))
    for e in got:
        assert math.isfinite(e["logprob"])
        assert len(e["top_logprobs"]) == 20
        assert e["logprob"] <= e["top_logprobs"][0]["logprob"]


def test_constrained_logprobs_list_only_allowed_tokens(runner: Runner) -> None:
    """Under ``format`` the logprobs are those of the masked distribution: forbidden tokens have
    -inf and are left out, so a forced step (one allowed token) has logprob 0."""
    req = {**with_logprobs(5), "format": {"type": "boolean"}}
    req["options"]["num_predict"] = 50
    events = runner.complete(req)
    got = entries(events)
    assert text_of(events) in ("true", "false")
    assert done_of(events)["done_reason"] == "stop"
    assert len(got) == done_of(events)["eval_count"] - 1  # no entry for the final EOS
    for e in got:
        assert all(math.isfinite(t["logprob"]) for t in e["top_logprobs"])
        assert len(e["top_logprobs"]) <= 5
    assert any(e["logprob"] == 0.0 and len(e["top_logprobs"]) == 1 for e in got)


@pytest.mark.parametrize(
    "extra", [{"top_logprobs": 21}, {"top_logprobs": -1}, {"top_logprobs": 1.5}, {"logprobs": 1}]
)
def test_bad_logprobs_options_are_400(runner: Runner, extra: dict) -> None:
    status, err = runner.post("/v1/completion", {**chat("Hi"), **extra})
    assert status == 400 and "logprobs" in err["error"], err

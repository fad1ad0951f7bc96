"""POST /v1/completion on the f16 tiny model: events, limits, sampling, stops, context, errors."""

from __future__ import annotations

import threading

from conftest import Runner, chat, done_of, text_of


def test_stream_events_in_order_with_one_final_done(runner: Runner) -> None:
    events = runner.complete(chat("Hello there", num_predict=6))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert set(kinds[1:-1]) == {"chunk"}
    assert kinds.count("done") == 1
    start, done = events[0], events[-1]
    assert start["prompt_tokens"] == done["prompt_eval_count"] > 0
    assert start["truncated_messages"] == 0
    assert done["prompt_eval_duration"] > 0 and done["eval_duration"] > 0
    assert all(isinstance(done[k], int) for k in ("prompt_eval_duration", "eval_duration"))
    assert "context" not in done  # only when return_context is asked for


def test_num_predict_is_exact(runner: Runner) -> None:
    for n in (1, 7, 20):
        done = done_of(runner.complete(chat("Count with me", num_predict=n)))
        assert (done["eval_count"], done["done_reason"]) == (n, "length")


def test_integer_options_accept_floats_truncated(runner: Runner) -> None:
    done = done_of(runner.complete(chat("Hi", num_predict=3.9)))
    assert done["eval_count"] == 3


def test_greedy_is_deterministic(runner: Runner) -> None:
    first = text_of(runner.complete(chat("Tell me a story", num_predict=16)))
    second = text_of(runner.complete(chat("Tell me a story", num_predict=16)))
    assert first and first == second


def test_interleaved_sequences_match_sequential_runs(runner: Runner) -> None:
    """Two concurrent greedy requests (the fixture has two slots) decode as if alone."""
    prompts = ["Tell me about the sea", "What is a fox?"]
    alone = [text_of(runner.complete(chat(p, num_predict=64))) for p in prompts]
    together: list[str] = ["", ""]

    def run(i: int) -> None:
        together[i] = text_of(runner.complete(chat(prompts[i], num_predict=64)))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert together == alone
    assert alone[0] != alone[1]


def test_seed_makes_sampling_reproducible(runner: Runner) -> None:
    def sample(seed: int) -> str:
        req = chat("Write a poem", num_predict=24, temperature=0.9, seed=seed)
        return text_of(runner.complete(req))

    a, b, c = sample(42), sample(42), sample(43)
    assert a == b
    assert a != c


def test_stop_string_across_tokens_is_never_emitted(runner: Runner) -> None:
    n = 24
    events = runner.complete(chat("Tell me a story", num_predict=n))
    chunks = [e["content"] for e in events if e["event"] == "chunk"]
    full = "".join(chunks)
    # A stop string straddling the boundary between two streamed pieces, so it can only be
    # matched on text across tokens.
    boundary = next(
        len("".join(chunks[: i + 1]))
        for i in range(1, len(chunks) - 1)
        if len(chunks[i]) >= 2 and len(chunks[i + 1]) >= 2
    )
    stop = full[boundary - 2 : boundary + 2]
    expected = full[: full.find(stop)]

    events = runner.complete(chat("Tell me a story", num_predict=n, stop=["never-seen", stop]))
    done = done_of(events)
    assert text_of(events) == expected
    assert stop not in text_of(events)
    assert done["done_reason"] == "stop"
    assert done["eval_count"] < n


def test_num_ctx_bounds_prompt_plus_generation(runner: Runner) -> None:
    prompt_tokens = runner.complete(chat("Hello", num_predict=1))[0]["prompt_tokens"]
    done = done_of(runner.complete(chat("Hello", num_predict=-1, num_ctx=prompt_tokens + 5)))
    assert done["done_reason"] == "length"
    assert done["eval_count"] == 5
    assert done["prompt_eval_count"] + done["eval_count"] == prompt_tokens + 5


def test_prompt_longer_than_num_ctx_is_400(runner: Runner) -> None:
    long_text = "the quick brown fox " * 20
    for body in (
        {"prompt": long_text, "options": {"num_ctx": 16}},
        {"messages": [{"role": "user", "content": long_text}], "options": {"num_ctx": 16}},
        {
            "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": long_text}],
            "options": {"num_ctx": 16},
            "truncate": False,
        },
    ):
        status, err = runner.post("/v1/completion", body)
        assert status == 400
        assert err["error"].startswith("the input length exceeds the context length (")
        assert "> num_ctx 16)" in err["error"]


def test_truncation_drops_oldest_non_system_messages(runner: Runner) -> None:
    system = {"role": "system", "content": "You are a helpful assistant."}
    history = []
    for i in range(6):
        history.append({"role": "user", "content": f"Question {i}: what is the weather like?"})
        history.append({"role": "assistant", "content": f"Answer {i}: it is sunny and warm."})
    last = {"role": "user", "content": "And tomorrow?"}
    messages = [system, *history, last]

    def length(msgs: list[dict]) -> int:
        status, body = runner.post("/v1/render", {"messages": msgs})
        assert status == 200
        return len(body["tokens"])

    num_ctx = length(messages) - 20
    events = runner.complete(
        {"messages": messages, "options": {"temperature": 0, "num_predict": 2, "num_ctx": num_ctx}}
    )
    start = events[0]
    dropped = start["truncated_messages"]
    assert dropped >= 1
    # Exactly the oldest `dropped` non-system messages went, and no fewer would have fit.
    assert start["prompt_tokens"] == length([system, *history[dropped:], last])
    assert start["prompt_tokens"] < num_ctx
    assert length([system, *history[dropped - 1 :], last]) >= num_ctx
    assert done_of(events)["done_reason"] == "length"
    logged = [rec for rec in runner.log_lines() if rec["msg"].startswith("truncated chat")]
    assert logged and logged[-1]["dropped"] == dropped


def test_wrong_option_type_is_400_naming_the_option(runner: Runner) -> None:
    cases = {
        "temperature": ("hot", 'option "temperature" must be of type float'),
        "num_predict": ("ten", 'option "num_predict" must be of type integer'),
        "top_k": (True, 'option "top_k" must be of type integer'),
        "stop": ("\n", 'option "stop" must be of type array of strings'),
    }
    for key, (value, message) in cases.items():
        status, err = runner.post("/v1/completion", {"prompt": "hi", "options": {key: value}})
        assert (status, err) == (400, {"error": message})


def test_unknown_option_is_ignored_with_a_warning(runner: Runner) -> None:
    req = chat("Hi", num_predict=3)
    req["options"]["mirostat_eta"] = 0.1
    done = done_of(runner.complete(req))
    assert done["eval_count"] == 3
    warnings = [r for r in runner.log_lines() if r["msg"] == "ignoring unknown options"]
    assert any(r["options"] == ["mirostat_eta"] and r["id"] == req["id"] for r in warnings)


def test_raw_prompt_is_tokenized_as_is_and_messages_use_the_template(runner: Runner) -> None:
    text = "Once upon a time"
    _, tokenized = runner.post("/v1/tokenize", {"text": text})
    raw = runner.complete({"prompt": text, "options": {"temperature": 0, "num_predict": 2}})
    assert raw[0]["prompt_tokens"] == len(tokenized["tokens"])

    messages = [{"role": "user", "content": text}]
    _, rendered = runner.post("/v1/render", {"messages": messages})
    templated = runner.complete(
        {"messages": messages, "options": {"temperature": 0, "num_predict": 2}}
    )
    assert templated[0]["prompt_tokens"] == len(rendered["tokens"])
    assert len(rendered["tokens"]) > len(tokenized["tokens"])


def test_context_round_trip(runner: Runner) -> None:
    def generate(prompt: str, context: list[int] | None = None) -> list[dict]:
        body = {
            "prompt": prompt,
            "options": {"temperature": 0, "num_predict": 6},
            "return_context": True,
        }
        if context is not None:
            body["context"] = context
        return runner.complete(body)

    first = done_of(generate("Once upon a time"))
    ctx = first["context"]
    _, tokenized = runner.post("/v1/tokenize", {"text": "Once upon a time"})
    assert ctx[: first["prompt_eval_count"]] == tokenized["tokens"]
    assert len(ctx) == first["prompt_eval_count"] + first["eval_count"]

    follow = generate(" and then", ctx)
    _, more = runner.post("/v1/tokenize", {"text": " and then"})
    assert done_of(follow)["prompt_eval_count"] == len(ctx) + len(more["tokens"])
    # The context is used as tokens: the same tokens passed all as context give the same text,
    # and leaving the context out changes it.
    same = generate("", ctx + more["tokens"])
    assert text_of(same) == text_of(follow)
    assert text_of(generate(" and then")) != text_of(follow)


def test_context_with_out_of_vocabulary_ids_is_400(runner: Runner) -> None:
    status, err = runner.post("/v1/completion", {"prompt": "x", "context": [1, 999999]})
    assert status == 400 and "outside the vocabulary" in err["error"]


def test_bad_request_shapes_are_400(runner: Runner) -> None:
    for body in (
        {"prompt": "a", "messages": [{"role": "user", "content": "b"}]},
        {},
        {"messages": []},
        {"messages": [{"content": "no role"}]},
        {"prompt": "a", "truncate": "yes"},
    ):
        status, err = runner.post("/v1/completion", body)
        assert status == 400, body
        assert isinstance(err["error"], str) and err["error"]

"""POST /v1/completion on the f16 tiny model: events, limits, sampling, stops, context, errors."""

from __future__ import annotations

import json
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


def test_num_ctx_bounds_prompt_plus_generation_without_shift(runner: Runner) -> None:
    prompt_tokens = runner.complete(chat("Hello", num_predict=1))[0]["prompt_tokens"]
    num_ctx = prompt_tokens + 5
    req = chat("Hello", num_predict=-1, num_ctx=num_ctx)
    done = done_of(runner.complete({**req, "shift": False}))
    assert done["done_reason"] == "length"
    assert done["eval_count"] == 5
    assert done["prompt_eval_count"] + done["eval_count"] == prompt_tokens + 5
    # With the shift (the default), num_predict -1 is bounded at 10 x num_ctx, as in Ollama.
    done = done_of(runner.complete(req))
    assert (done["eval_count"], done["done_reason"]) == (10 * num_ctx, "length")


NO_SHIFT = (
    "the prompt is longer than the context length currently available to the model; shorten "
    "the prompt, adjust the context length in settings, or use a model with a longer context "
    "length"
)


def tokens_of(runner: Runner, text: str) -> list[int]:
    """``text`` as a raw prompt is tokenized: with the BOS, if the tokenizer adds one."""
    status, body = runner.post("/v1/tokenize", {"text": text, "add_special": True})
    assert status == 200, body
    return body["tokens"]


def test_over_long_prompt_is_refused_with_ollamas_texts_when_truncate_or_shift_is_off(
    runner: Runner,
) -> None:
    long_text = "the quick brown fox " * 20
    n = len(tokens_of(runner, long_text))
    for input in (
        {"prompt": long_text},
        {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": long_text}]},
    ):
        status, err = runner.post(
            "/v1/completion", {**input, "options": {"num_ctx": 16}, "truncate": False}
        )
        assert status == 400
        assert err["error"].startswith("request (")
        assert err["error"].endswith(
            " tokens) exceeds the available context size (16 tokens), try increasing it"
        )
        assert int(err["error"].split()[1][1:]) >= n
        status, err = runner.post(
            "/v1/completion", {**input, "options": {"num_ctx": 16}, "shift": False}
        )
        assert (status, err) == (400, {"error": NO_SHIFT})


def test_over_long_prompt_keeps_num_keep_tokens_and_the_end(runner: Runner) -> None:
    """Ollama's cut: the first num_keep tokens (plus BOS) and the end, leaving half of the rest
    of the context free, so generation has room before its first shift."""
    text = " ".join(f"word{i}" for i in range(60))
    full = tokens_of(runner, text)
    # num_keep counts the tokens after the BOS, if the tokenizer adds one.
    starts_with_bos = len(tokens_of(runner, "")) == 1
    for num_ctx, num_keep in ((32, 4), (32, 0), (40, 10)):
        keep = num_keep + (1 if starts_with_bos else 0)
        limit = num_ctx - max((num_ctx - keep) // 2, 1)
        events = runner.complete(
            {
                "prompt": text,
                "return_context": True,
                "options": {
                    "temperature": 0,
                    "num_predict": 2,
                    "num_ctx": num_ctx,
                    "num_keep": num_keep,
                },
            }
        )
        assert events[0]["prompt_tokens"] == limit
        context = done_of(events)["context"]
        assert context[:limit] == full[:keep] + full[len(full) - (limit - keep) :]
    logged = [r for r in runner.log_lines() if r["msg"] == "truncating input prompt"]
    assert logged and logged[-1]["prompt"] == len(full)


def test_generation_past_num_ctx_shifts_the_context_exactly(runner: Runner) -> None:
    """Generation that fills num_ctx goes on (shift, Ollama's default): after each shift the
    model continues exactly as a fresh greedy run from the kept window would; ``shift: false``
    stops at num_ctx with done_reason "length"."""
    text = "Once upon a time there was a tiny model"
    prompt = tokens_of(runner, text)
    num_ctx, num_keep = len(prompt) + 12, 4
    opts = {"temperature": 0, "num_ctx": num_ctx, "num_keep": num_keep}
    events = runner.complete(
        {"prompt": text, "return_context": True, "options": {**opts, "num_predict": 40}}
    )
    done = done_of(events)
    assert (done["eval_count"], done["done_reason"]) == (40, "length")
    generated = done["context"][len(prompt) :]
    assert len(generated) == 40
    # The first shift comes when prompt + generated fills num_ctx.
    k = num_ctx - len(prompt)
    history = prompt + generated[:k]
    keep = num_keep + len(tokens_of(runner, ""))  # and the BOS, if the tokenizer adds one
    discard = max((num_ctx - keep) // 2, 1)
    window = history[:keep] + history[keep + discard :]
    after = len(window)
    # Greedy from the window alone, with no shift (it fits): the same next tokens.
    fresh = runner.complete(
        {
            "prompt": "",
            "context": window,
            "return_context": True,
            "options": {**opts, "num_ctx": 4096, "num_predict": num_ctx - after},
        }
    )
    assert done_of(fresh)["context"][after:] == generated[k : k + num_ctx - after]
    stopped = done_of(
        runner.complete({"prompt": text, "shift": False, "options": {**opts, "num_predict": 40}})
    )
    assert (stopped["eval_count"], stopped["done_reason"]) == (k, "length")


def test_constrained_output_stays_valid_across_a_context_shift(runner: Runner) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"enum": ["alpha beta gamma delta epsilon zeta eta theta"]},
            "n": {"type": "integer", "minimum": 0, "maximum": 9},
        },
        "required": ["name", "n"],
    }
    req = chat("Give me JSON", num_predict=200, num_ctx=0)
    prompt_tokens = runner.complete(chat("Give me JSON", num_predict=1))[0]["prompt_tokens"]
    req["options"]["num_ctx"] = prompt_tokens + 6
    req["format"] = schema
    req["logprobs"] = True
    events = runner.complete(req)
    done = done_of(events)
    assert done["done_reason"] == "stop"
    assert done["eval_count"] > 6  # it went past num_ctx: at least one shift
    value = json.loads(text_of(events))
    assert value["name"] == schema["properties"]["name"]["enum"][0]
    assert 0 <= value["n"] <= 9


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

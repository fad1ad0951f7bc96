"""Pure-Python pieces, tested without a model: stop matching, option parsing, truncation, caps."""

from __future__ import annotations

import pytest

from ollmlx_mlx.constrain import close_objects
from ollmlx_mlx.facts import capabilities
from ollmlx_mlx.protocol import (
    Options,
    RequestError,
    chunk_event,
    parse_completion,
    parse_options,
    start_event,
)
from ollmlx_mlx.stops import StopMatcher
from ollmlx_mlx.templates import fit_messages, fit_tokens, keep_count


def feed_all(matcher: StopMatcher, pieces: list[str]) -> tuple[str, bool]:
    out = []
    for piece in pieces:
        text, hit = matcher.feed(piece)
        out.append(text)
        if hit:
            return "".join(out), True
    return "".join(out) + matcher.flush(), False


@pytest.mark.parametrize(
    ("stops", "pieces", "expected"),
    [
        (["END"], ["hello E", "N", "D world"], ("hello ", True)),  # split over three pieces
        (["END"], ["hello EN", "X"], ("hello ENX", False)),  # a partial match is released
        (["\n\n", "###"], ["a\n", "b##", "#c"], ("a\nb", True)),  # earliest of several
        (["abc", "b"], ["xab", "c"], ("xa", True)),  # the earliest position wins
        (["lo"], ["hel", "l"], ("hell", False)),  # held "l" flushed at the end
        ([], ["free ", "text"], ("free text", False)),
        ([""], ["empty stops are ignored"], ("empty stops are ignored", False)),
    ],
)
def test_stop_matcher(stops: list[str], pieces: list[str], expected: tuple[str, bool]) -> None:
    assert feed_all(StopMatcher(stops), pieces) == expected


def test_stop_matcher_holds_back_only_possible_prefixes() -> None:
    m = StopMatcher(["STOP"])
    assert m.feed("abcS") == ("abc", False)
    assert m.feed("T") == ("", False)
    assert m.feed("x") == ("STx", False)


def test_stop_matcher_remembers_which_stop_ended_the_text() -> None:
    m = StopMatcher(["END", "halt"])
    assert m.matched is None
    assert m.feed("a hal") == ("a ", False)
    assert m.feed("t then END") == ("", True)
    assert m.matched == "halt"
    two = StopMatcher(["xyz", "b"])
    assert two.feed("ab xyz") == ("a", True)
    assert two.matched == "b"  # the earliest in the text wins


def test_options_types_and_defaults() -> None:
    opts, ignored = parse_options({"num_predict": 5.9, "temperature": 1, "stop": ["a"], "x": 1})
    assert (opts.num_predict, opts.temperature, opts.stop) == (5, 1.0, ("a",))
    assert isinstance(opts.temperature, float)
    assert ignored == ["x"]
    assert parse_options({"seed": None})[0] == Options()  # null means the default


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"temperature": "0.5"}, 'option "temperature" must be of type float'),
        ({"temperature": False}, 'option "temperature" must be of type float'),
        ({"seed": 1.5j}, 'option "seed" must be of type integer'),
        ({"stop": [1]}, 'option "stop" must be of type array of strings'),
        ({"num_ctx": 0}, 'option "num_ctx" must be at least 1'),
        ({"repeat_last_n": -2}, 'option "repeat_last_n" must be -1 (num_ctx), 0 (off) or positive'),
        ("not an object", '"options" must be an object'),
    ],
)
def test_option_errors_name_the_option(raw: object, message: str) -> None:
    with pytest.raises(RequestError) as err:
        parse_options(raw)
    assert str(err.value) == message and err.value.status == 400


def test_completion_needs_exactly_one_input() -> None:
    assert parse_completion({"prompt": "x"}).prompt == "x"
    req = parse_completion({"messages": [{"role": "user"}]})
    assert req.messages == [{"role": "user", "content": ""}]
    assert req.truncate is True and req.return_context is False
    for body in ({}, {"prompt": "x", "messages": [{"role": "user", "content": "y"}]}):
        with pytest.raises(RequestError):
            parse_completion(body)


def fake_render(messages: list[dict]) -> list[int]:
    """Each message costs 10 tokens, plus 2 for the generation prompt."""
    return [0] * (10 * len(messages) + 2)


def conversation(n_turns: int) -> list[dict]:
    msgs = [{"role": "system", "content": "s"}]
    msgs += [
        {"role": "user" if i % 2 == 0 else "assistant", "content": str(i)} for i in range(n_turns)
    ]
    return msgs


def test_fit_messages_keeps_everything_that_fits() -> None:
    msgs = conversation(3)
    assert fit_messages(fake_render, msgs, budget=43, truncate=True) == ([0] * 42, 0)


def test_fit_messages_drops_the_fewest_oldest_non_system() -> None:
    msgs = conversation(7)  # system + 7 turns = 82 tokens
    tokens, dropped = fit_messages(fake_render, msgs, budget=50, truncate=True)
    assert dropped == 4 and len(tokens) == 42  # system + the last 3 turns + prompt


def test_fit_messages_leaves_what_dropping_cannot_fit_to_fit_tokens() -> None:
    # Without truncate nothing is dropped; fit_tokens refuses it with llama-server's text.
    assert fit_messages(fake_render, conversation(3), budget=30, truncate=False) == ([0] * 42, 0)
    with pytest.raises(RequestError, match=r"^request \(42 tokens\) exceeds the available context"):
        fit_tokens([0] * 42, 30, keep=4, truncate=False, shift=True)
    # Every droppable message gone (system + last = 22 tokens) is still too long for 20: the
    # shortest rendering comes back, and fit_tokens cuts it or refuses it.
    assert fit_messages(fake_render, conversation(5), budget=20, truncate=True) == ([0] * 22, 4)
    with pytest.raises(RequestError, match="^the prompt is longer than the context length"):
        fit_tokens([0] * 22, 20, keep=4, truncate=True, shift=False)


def test_fit_tokens_keeps_num_keep_and_the_end() -> None:
    prompt = list(range(100))
    assert fit_tokens(prompt[:31], 32, keep=4, truncate=False, shift=False) == prompt[:31]
    # 32 - (32 - 4) // 2 = 18 tokens: the first 4 and the last 14.
    assert fit_tokens(prompt, 32, keep=4, truncate=True, shift=True) == prompt[:4] + prompt[86:]
    # A prompt exactly num_ctx long leaves no room to generate: it is cut too.
    assert len(fit_tokens(prompt[:32], 32, keep=0, truncate=True, shift=True)) == 16
    # keep is at most num_ctx - 1, and one token is always freed.
    assert fit_tokens(prompt, 8, keep=7, truncate=True, shift=True) == prompt[:7]
    assert keep_count([9, 1, 2], num_keep=4, bos=9, num_ctx=32) == 5
    assert keep_count([1, 2, 3], num_keep=-1, bos=9, num_ctx=32) == 3
    assert keep_count([1] * 50, num_keep=-1, bos=None, num_ctx=32) == 31


def test_capabilities_from_template() -> None:
    assert capabilities(None) == ["completion"]
    assert capabilities("{% if tools %}{{ tools }}{% endif %}") == ["completion", "tools"]
    assert capabilities("<tool_call>{{ x }}</tool_call>") == ["completion", "tools"]
    think = "{{ '<think>' }}{{ reasoning }}{{ '</think>' }}"
    assert capabilities(think) == ["completion", "thinking"]
    assert capabilities("<think> without an end") == ["completion"]


def test_issue5_fields_parse_into_the_request() -> None:
    """The body the daemon sends for structured output, logprobs, tools and thinking."""
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    req = parse_completion(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tools": tools,
            "template_kwargs": {"enable_thinking": False, "reasoning_effort": "high"},
            "format": {"type": "object", "properties": {"a": {"type": "integer"}}},
            "constrain_after": "</think>",
            "logprobs": True,
            "top_logprobs": 3,
            "think_tags": ["<think>", "</think>"],
            "prefill": "<tool_call>\n",
        }
    )
    assert req.extras.template_args() == {
        "enable_thinking": False,
        "reasoning_effort": "high",
        "tools": tools,
    }
    assert req.format == {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert (req.constrain_after, req.logprobs, req.top_logprobs) == ("</think>", True, 3)
    assert req.think_tags == ("<think>", "</think>")
    assert req.prefill == "<tool_call>\n"


def test_issue5_fields_default_to_off() -> None:
    req = parse_completion({"prompt": "x", "format": None, "tools": [], "template_kwargs": None})
    assert req.extras.template_args() == {}  # no tools kwarg at all
    assert (req.format, req.constrain_after, req.logprobs, req.top_logprobs) == (
        None,
        None,
        False,
        0,
    )
    assert req.think_tags is None and req.prefill is None
    assert parse_completion({"prompt": "x", "format": "json"}).format == {"type": "object"}


def test_event_shapes() -> None:
    assert start_event(3, 0) == {"event": "start", "prompt_tokens": 3, "truncated_messages": 0}
    assert start_event(3, 1, thinking=True)["thinking"] is True
    assert chunk_event("a") == {"event": "chunk", "content": "a"}
    entry = {"token": "a", "logprob": -0.5, "bytes": [97]}
    assert chunk_event("a", [entry]) == {"event": "chunk", "content": "a", "logprobs": [entry]}


def test_close_objects_defaults_additional_properties_to_false() -> None:
    point = {"type": "object", "properties": {"x": {"type": "integer"}}}
    schema = {
        "type": "object",
        "properties": {"p": point, "properties": point},  # a property named "properties"
        "$defs": {"q": point},
        "anyOf": [point],
        "items": point,
        "additionalProperties": True,  # an explicit value is kept
    }
    closed = close_objects(schema)
    assert closed["additionalProperties"] is True
    for sub in (closed["properties"]["p"], closed["properties"]["properties"]):
        assert sub["additionalProperties"] is False
    assert closed["$defs"]["q"]["additionalProperties"] is False
    assert closed["anyOf"][0]["additionalProperties"] is False
    assert closed["items"]["additionalProperties"] is False
    assert "additionalProperties" not in closed["properties"]  # the map itself is not a schema
    assert "additionalProperties" not in point  # the input is not modified
    assert close_objects({"type": "object"}) == {"type": "object"}  # "json": any object


def test_without_llguidance_text_still_works_and_format_is_a_clear_501(monkeypatch) -> None:
    from ollmlx_mlx import constrain
    from ollmlx_mlx.protocol import RequestError

    monkeypatch.setattr(constrain, "llguidance", None)
    assert constrain.build_tokenizer(object(), 10, [0]) is None
    try:
        constrain.compile_schema(None, {"type": "object"})
        raise AssertionError("a format was accepted without llguidance")
    except RequestError as e:
        assert e.status == 501
        assert "pip install 'llguidance==1.9.1'" in str(e)

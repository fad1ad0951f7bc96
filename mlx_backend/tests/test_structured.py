"""``format`` (constrained decoding with llguidance) on the random-weight tiny model.

The model's free output is garbage, so valid JSON can only come from the constraint. A random
model never chooses to stop, so every schema here is bounded (strings with maxLength or enums,
arrays with maxItems, numbers with ranges) and ``num_predict`` is far above what the bounded
output needs: the grammar itself must end the sequence (``done_reason: "stop"``). Objects that
list ``properties`` get no extra keys (the runner defaults ``additionalProperties`` to false, as
Ollama's llama.cpp grammars do), which also keeps them bounded.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import jsonschema
import pytest
from conftest import Runner, chat, done_of, snapshot, text_of

BUDGET = 400  # tokens; the bounded schemas below need well under 100

SCHEMAS: dict[str, dict[str, Any]] = {
    "nested": {
        "type": "object",
        "properties": {
            "user": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 6},
                    "age": {"type": "integer", "minimum": 0, "maximum": 99},
                },
                "required": ["name", "age"],
            }
        },
        "required": ["user"],
    },
    "int-array": {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 9},
        "minItems": 2,
        "maxItems": 4,
    },
    "enum": {
        "type": "object",
        "properties": {"color": {"enum": ["red", "green", "blue"]}},
        "required": ["color"],
    },
    "integer-range": {"type": "integer", "minimum": -20, "maximum": 20},
    "number-range": {
        "type": "object",
        "properties": {"x": {"type": "number", "minimum": 0, "maximum": 1}},
        "required": ["x"],
    },
    "booleans": {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "done": {"type": "boolean"}},
        "required": ["ok", "done"],
    },
    "optional": {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "minimum": 1, "maximum": 5},
            "note": {"type": "string", "maxLength": 3},
        },
        "required": ["id"],
    },
    "string-length": {"type": "string", "minLength": 2, "maxLength": 5},
    "any-of": {
        "anyOf": [
            {"type": "integer", "minimum": 0, "maximum": 9},
            {"type": "object", "properties": {"k": {"const": "v"}}, "required": ["k"]},
        ]
    },
    "object-array": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"a": {"type": "boolean"}, "b": {"enum": [1, 2, 3]}},
            "required": ["a", "b"],
        },
        "minItems": 1,
        "maxItems": 3,
    },
    "null-and-const": {
        "type": "object",
        "properties": {"v": {"type": "null"}, "c": {"const": "fixed"}},
        "required": ["v", "c"],
    },
    "refs": {
        "$defs": {
            "point": {
                "type": "object",
                "properties": {
                    "x": {"type": "integer", "minimum": 0, "maximum": 3},
                    "y": {"type": "integer", "minimum": 0, "maximum": 3},
                },
                "required": ["x", "y"],
            }
        },
        "type": "object",
        "properties": {"from": {"$ref": "#/$defs/point"}, "to": {"$ref": "#/$defs/point"}},
        "required": ["from", "to"],
    },
    "pattern": {"type": "string", "pattern": "^[a-c]{3}-[0-9]{2}$"},
}
SAMPLING = {"greedy": {"temperature": 0}, "seeded": {"temperature": 1.0, "seed": 7}}


def constrained(runner: Runner, fmt: Any, prompt: str = "Reply in JSON", **options: Any) -> tuple:
    req = {**chat(prompt, num_predict=BUDGET, **options), "format": fmt}
    events = runner.complete(req)
    return text_of(events), done_of(events)


@pytest.mark.parametrize("sampling", SAMPLING)
@pytest.mark.parametrize("name", SCHEMAS)
def test_output_matches_the_schema_and_the_grammar_ends_it(
    runner: Runner, name: str, sampling: str
) -> None:
    schema = SCHEMAS[name]
    text, done = constrained(runner, schema, **SAMPLING[sampling])
    jsonschema.validate(json.loads(text), schema)
    assert done["done_reason"] == "stop", (text, done)
    assert done["eval_count"] < BUDGET
    if isinstance(schema.get("properties"), dict):
        assert set(json.loads(text)) <= set(schema["properties"])  # no extra keys
    assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


def test_free_output_of_the_random_model_is_not_json(runner: Runner) -> None:
    """The control: without ``format`` the same request gives no JSON, so the tests above prove
    the constraint, not the model."""
    text = text_of(runner.complete(chat("Reply in JSON", num_predict=40)))
    with pytest.raises(ValueError):
        json.loads(text)


def json_prefix_closes(text: str) -> bool:
    """True when ``text`` is the start of a JSON document: some short ending makes it parse."""
    closers, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            escaped = not escaped and ch == "\\"
            in_string = escaped or ch != '"'
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif ch in "}]":
            closers.pop()
    ends = "".join(reversed(closers))
    quote = ['"', 'n"', '0000"'] if in_string else [""]
    value = ["", "0", ":0", "null", '"":0', "ull", "rue", "alse", "ue", "e", "l", "0:0"]
    for q in quote:
        for v in value:
            try:
                json.loads(text + q + v + ends)
            except ValueError:
                continue
            return True
    return False


@pytest.mark.parametrize("sampling", SAMPLING)
def test_format_json_gives_a_json_object(runner: Runner, sampling: str) -> None:
    """``"json"`` (any object) cannot be bounded, and a random model never closes its first
    string, so this checks a fixed budget: the text is the start of a JSON object, and a
    complete object when the grammar did end it."""
    req = {**chat("Reply in JSON", num_predict=60, **SAMPLING[sampling]), "format": "json"}
    events = runner.complete(req)
    text, done = text_of(events), done_of(events)
    assert text.startswith("{"), text
    if done["done_reason"] == "stop":
        assert isinstance(json.loads(text), dict)
    else:
        assert json_prefix_closes(text), text
    assert not json_prefix_closes("x" + text)  # the check itself can fail


@pytest.mark.parametrize(
    ("fmt", "prefix"),
    [
        ({"type": "foo"}, "invalid JSON schema: "),
        ({"type": "integer", "minimum": 5, "maximum": 3}, "invalid JSON schema: "),
        ({"$ref": "#/$defs/missing"}, "invalid JSON schema: "),
        ({"type": "string", "format": "no-such-format"}, "unsupported JSON schema: "),
        ({"type": "string", "pattern": "(?<=a)b"}, "unsupported JSON schema: "),
    ],
)
def test_bad_schema_is_400_before_streaming(runner: Runner, fmt: dict, prefix: str) -> None:
    status, err = runner.post("/v1/completion", {**chat("Hi"), "format": fmt})
    assert status == 400
    assert err["error"].startswith(prefix) and len(err["error"]) > len(prefix), err


@pytest.mark.parametrize("fmt", ["yaml", 3, ["json"], True])
def test_format_of_the_wrong_shape_is_400(runner: Runner, fmt: Any) -> None:
    status, err = runner.post("/v1/completion", {**chat("Hi"), "format": fmt})
    assert status == 400 and err["error"].startswith('"format" must be'), err


def test_constrain_after_starts_the_constraint_after_the_marker(runner: Runner) -> None:
    """The marker is text the model writes anyway: its first greedy chunk (a chunk ends at a
    token boundary). The output keeps the free text up to the marker, then follows the schema."""
    schema = SCHEMAS["nested"]
    free_events = runner.complete(chat("Think first", num_predict=30))
    free = text_of(free_events)
    marker = free_events[1]["content"]
    assert marker.strip() and not free.startswith("{")
    req = {**chat("Think first", num_predict=BUDGET), "format": schema, "constrain_after": marker}
    events = runner.complete(req)
    text, done = text_of(events), done_of(events)
    assert text.startswith(marker)
    jsonschema.validate(json.loads(text[len(marker) :]), schema)
    assert done["done_reason"] == "stop"


def test_constrain_after_a_marker_never_written_leaves_the_output_free(runner: Runner) -> None:
    free = text_of(runner.complete(chat("Think first", num_predict=30)))
    req = {**chat("Think first", num_predict=30), "format": "json"}
    req["constrain_after"] = "</never-written>"
    assert text_of(runner.complete(req)) == free


def test_two_constrained_requests_at_once_are_independent(runner: Runner) -> None:
    """The runner fixture has two slots: both sequences decode together, each under its own
    schema, and each gives what it gives alone."""
    jobs = [("Pick a color", SCHEMAS["enum"]), ("Plot two points", SCHEMAS["refs"])]
    alone = [constrained(runner, schema, prompt)[0] for prompt, schema in jobs]
    together: list[str] = ["", ""]

    def run(i: int) -> None:
        together[i] = constrained(runner, jobs[i][1], jobs[i][0])[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert together == alone
    for text, (_, schema) in zip(together, jobs, strict=True):
        jsonschema.validate(json.loads(text), schema)


def test_a_python_without_llguidance_warns_once_with_the_pip_command(
    models: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's own Python (``OLLMLX_PYTHON``) without llguidance: the runner still serves text,
    says at load how to get ``format`` (the daemon re-emits the line at warn level) and refuses
    ``format`` with a 501 naming the same command."""
    hint = "pip install 'llguidance==1.9.1'"
    (tmp_path / "llguidance.py").write_text("raise ImportError('hidden by the test')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # ahead of site-packages
    r = Runner(snapshot("tiny-llama"))
    try:
        r.wait_ready()
        warnings = [
            line
            for line in r.log_lines()
            if line["level"] == "warning" and "llguidance" in line["msg"]
        ]
        assert len(warnings) == 1 and hint in warnings[0]["msg"], r.stderr()
        status, err = r.post("/v1/completion", {**chat("Hi"), "format": "json"})
        assert status == 501 and hint in err["error"], err
        assert text_of(r.complete(chat("Hi", num_predict=3)))
    finally:
        r.stop()

"""tools, template_kwargs and think_tags on a copy of tiny-llama with a template of our own.

The fixture models' template ignores tools and thinking, so the copy gets one that prints the
tools as JSON, honours ``enable_thinking`` and ``reasoning_effort``, and a vocabulary where two
existing ids are the added (not special) tokens ``<think>`` and ``</think>``, which makes mlx_lm
see a thinking model (``has_thinking``: ``enable_thinking`` then defaults to true).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Runner, _runner, chat, snapshot
from mlx_lm.utils import load_tokenizer

THINK_IDS = {"<think>": 2046, "</think>": 2047}
# Text is written as Jinja string expressions so that the whitespace control of the tags (and
# transformers' trim_blocks) cannot eat the newlines.
TEMPLATE = (
    "{% if tools %}{{ '<|im_start|>system\\nTools: ' + (tools | tojson) + '<|im_end|>\\n' }}"
    "{% endif %}"
    "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% if reasoning_effort is defined %}{{ 'effort=' + reasoning_effort + '\\n' }}{% endif %}"
    "{% if enable_thinking is defined and not enable_thinking %}"
    "{{ '<think>\\n\\n</think>\\n\\n' }}{% else %}{{ '<think>\\n' }}{% endif %}{% endif %}"
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def thinking_model(dest: Path) -> Path:
    """A copy of tiny-llama with TEMPLATE and the two think tokens."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in snapshot("tiny-llama").iterdir():
        shutil.copy(f, dest / f.name)  # follows the hub's symlinks
    config = json.loads((dest / "tokenizer_config.json").read_text())
    config["chat_template"] = TEMPLATE
    (dest / "tokenizer_config.json").write_text(json.dumps(config))
    tok = json.loads((dest / "tokenizer.json").read_text())
    free_ids(tok["model"], set(THINK_IDS.values()))
    for text, token_id in THINK_IDS.items():
        tok["added_tokens"].append(
            {
                "id": token_id,
                "content": text,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": False,
            }
        )
    (dest / "tokenizer.json").write_text(json.dumps(tok))
    return dest


def free_ids(bpe: dict, ids: set[int]) -> None:
    """Take ``ids`` out of a BPE model (vocabulary and the merges that make or use them), so that
    added tokens can have them: ids past the vocabulary would be outside the model's logits."""
    gone = {text for text, i in bpe["vocab"].items() if i in ids}
    bpe["vocab"] = {text: i for text, i in bpe["vocab"].items() if i not in ids}

    def keep(merge: str | list[str]) -> bool:
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        return not {left, right, left + right} & gone

    bpe["merges"] = [m for m in bpe["merges"] if keep(m)]


@pytest.fixture(scope="module")
def model_dir(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return thinking_model(tmp_path_factory.mktemp("thinking") / "model")


@pytest.fixture(scope="module")
def thinker(model_dir: Path) -> Iterator[Runner]:
    yield from _runner(model_dir)


def render(runner: Runner, **extra: object) -> str:
    status, body = runner.post(
        "/v1/render", {"messages": [{"role": "user", "content": "Weather?"}], **extra}
    )
    assert status == 200, body
    return body["prompt"]


def test_tools_reach_the_template(thinker: Runner) -> None:
    prompt = render(thinker, tools=TOOLS)
    assert "Tools: " + json.dumps(TOOLS, ensure_ascii=False) in prompt
    assert "Tools:" not in render(thinker)
    assert "Tools:" not in render(thinker, tools=[])  # empty: no tools kwarg at all


def test_tools_are_in_the_completion_prompt(thinker: Runner) -> None:
    _, with_tools = thinker.post(
        "/v1/render", {"messages": [{"role": "user", "content": "Weather?"}], "tools": TOOLS}
    )
    req = {**chat("Weather?", num_predict=1), "tools": TOOLS}
    assert thinker.complete(req)[0]["prompt_tokens"] == len(with_tools["tokens"])


def test_enable_thinking_defaults_on_and_an_explicit_false_wins(thinker: Runner) -> None:
    assert render(thinker).endswith("<think>\n")  # mlx_lm's default: has_thinking
    off = render(thinker, template_kwargs={"enable_thinking": False})
    assert off.endswith("<think>\n\n</think>\n\n")
    on = render(thinker, template_kwargs={"enable_thinking": True, "reasoning_effort": "high"})
    assert on.endswith("effort=high\n<think>\n")


def test_start_event_says_when_the_prompt_opens_thinking(thinker: Runner) -> None:
    tags = ["<think>", "</think>"]
    start = thinker.complete({**chat("Hi", num_predict=1), "think_tags": tags})[0]
    assert start["thinking"] is True
    off = {**chat("Hi", num_predict=1), "think_tags": tags}
    off["template_kwargs"] = {"enable_thinking": False}
    assert "thinking" not in thinker.complete(off)[0]
    assert "thinking" not in thinker.complete(chat("Hi", num_predict=1))[0]  # no think_tags


@pytest.mark.parametrize(
    "extra",
    [
        {"tools": {"type": "function"}},
        {"tools": ["get_weather"]},
        {"template_kwargs": ["enable_thinking"]},
        {"template_kwargs": {"add_generation_prompt": False}},
        {"think_tags": ["<think>"]},
    ],
)
def test_bad_extras_are_400(thinker: Runner, extra: dict) -> None:
    status, err = thinker.post("/v1/completion", {**chat("Hi", num_predict=1), **extra})
    assert status == 400 and err["error"].startswith('"'), err


def test_streaming_detokenizer_keeps_added_think_tokens(model_dir: Path) -> None:
    """The engine's detokenizer writes <think>/</think> into the text (the daemon parses them)."""
    tokenizer = load_tokenizer(model_dir)
    ids = tokenizer.encode("hi<think>plan</think>done", add_special_tokens=False)
    assert set(THINK_IDS.values()) <= set(ids)
    detok = tokenizer.detokenizer
    for token in ids:
        detok.add_token(token)
    detok.finalize()
    assert detok.text == "hi<think>plan</think>done"

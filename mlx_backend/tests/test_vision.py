"""Vision models through mlx-vlm: tiny-vlm (a random LLaVA) reads Ollama-style message images."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Runner, _runner, chat, done_of, snapshot, text_of

# The fixture's CLIP tower sees a 32x32 image as 2x2 patches: one <image> token becomes 4.
IMAGE_TOKENS = 4


@pytest.fixture(scope="module")
def runner_vlm(models: Path) -> Iterator[Runner]:
    yield from _runner(snapshot("tiny-vlm"))


def image(models: Path, name: str) -> str:
    return base64.b64encode((models / "images" / name).read_bytes()).decode()


def with_images(content: str, images: list[str], **options: object) -> dict:
    body = chat(content, **options)
    body["messages"][0]["images"] = images
    return body


def test_status_lists_vision(runner_vlm: Runner) -> None:
    status = runner_vlm.status()
    assert "vision" in status["capabilities"]
    assert (status["model_type"], status["architecture"]) == ("llava", "llava")


def test_images_reach_the_model(runner_vlm: Runner, models: Path) -> None:
    text_only = runner_vlm.complete(chat("What is this?", num_predict=12))
    red = runner_vlm.complete(
        with_images("What is this?", [image(models, "red.png")], num_predict=12)
    )
    grad = runner_vlm.complete(
        with_images("What is this?", [image(models, "gradient.png")], num_predict=12)
    )
    texts = [text_of(e) for e in (text_only, red, grad)]
    assert all(texts) and len(set(texts)) == 3, texts
    # The prompt counts the image's tokens: "<image>" (1 token) becomes IMAGE_TOKENS.
    counts = [done_of(e)["prompt_eval_count"] for e in (text_only, red, grad)]
    assert counts[1] == counts[2] == counts[0] + IMAGE_TOKENS, counts
    assert red[0]["prompt_tokens"] == counts[1]
    again = runner_vlm.complete(
        with_images("What is this?", [image(models, "red.png")], num_predict=12)
    )
    assert text_of(again) == texts[1]  # greedy and deterministic


def test_text_only_keeps_the_protocol(runner_vlm: Runner, models: Path) -> None:
    done = done_of(runner_vlm.complete(chat("Count with me", num_predict=7)))
    assert (done["eval_count"], done["done_reason"]) == (7, "length")
    first = text_of(runner_vlm.complete(chat("Hi", num_predict=6)))
    stop = first[2:4]
    events = runner_vlm.complete(chat("Hi", num_predict=6, stop=[stop]))
    assert text_of(events) == first[: first.index(stop)]
    assert done_of(events)["done_reason"] == "stop"
    seeded = [
        text_of(runner_vlm.complete(chat("Hi", num_predict=8, temperature=1.0, seed=7)))
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1]


def test_images_with_penalties_logprobs_and_format(runner_vlm: Runner, models: Path) -> None:
    body = with_images("Hi", [image(models, "red.png")], num_predict=10, repeat_penalty=1.5)
    body.update(logprobs=True, top_logprobs=2, format="json", return_context=True)
    events = runner_vlm.complete(body)
    done = done_of(events)
    entries = [lp for e in events if e["event"] == "chunk" for lp in e["logprobs"]]
    assert len(entries) == done["eval_count"] - (done["done_reason"] == "stop")
    assert text_of(events).startswith("{")
    assert len(done["context"]) == done["prompt_eval_count"] + len(entries)


def test_bad_image_is_a_400(runner_vlm: Runner) -> None:
    status, body = runner_vlm.post("/v1/completion", with_images("Hi", ["bm90IGFuIGltYWdl"]))
    assert status == 400 and "messages[0].images[0]" in body["error"], body


def test_text_model_refuses_images(runner: Runner, models: Path) -> None:
    status, body = runner.post("/v1/completion", with_images("Hi", [image(models, "red.png")]))
    assert status == 400 and "does not support images" in body["error"], body

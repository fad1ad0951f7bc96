"""/v1/tokenize, /v1/detokenize and /v1/render."""

from __future__ import annotations

from conftest import Runner


def test_tokenize_detokenize_round_trip(runner: Runner) -> None:
    for text in ("héllo wörld, façade", "emoji 😀🚀 and 東京", "  spaces\tand\nnewlines  ", ""):
        status, tok = runner.post("/v1/tokenize", {"text": text})
        assert status == 200
        status, back = runner.post("/v1/detokenize", {"tokens": tok["tokens"]})
        assert (status, back["text"]) == (200, text)


def test_tokenize_add_special_has_no_bos_for_this_model(runner: Runner) -> None:
    # add_bos_token is false in the fixture, so add_special changes nothing here.
    _, plain = runner.post("/v1/tokenize", {"text": "hi"})
    _, special = runner.post("/v1/tokenize", {"text": "hi", "add_special": True})
    assert plain == special


def test_special_tokens_in_text_map_to_their_ids(runner: Runner) -> None:
    _, tok = runner.post("/v1/tokenize", {"text": "<|im_start|>user<|im_end|>"})
    assert tok["tokens"][0] == 1 and tok["tokens"][-1] == 2


def test_render_uses_the_chat_template(runner: Runner) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"},
    ]
    status, body = runner.post("/v1/render", {"messages": messages})
    assert status == 200
    assert body["prompt"] == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nhi<|im_end|>\n"
        "<|im_start|>assistant\nhello<|im_end|>\n"
        "<|im_start|>user\nbye<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    _, tok = runner.post("/v1/tokenize", {"text": body["prompt"]})
    assert body["tokens"] == tok["tokens"]


def test_detokenize_rejects_bad_tokens(runner: Runner) -> None:
    for tokens in ([1, "a"], [-1], [10**9], "nope"):
        status, err = runner.post("/v1/detokenize", {"tokens": tokens})
        assert status == 400 and err["error"]

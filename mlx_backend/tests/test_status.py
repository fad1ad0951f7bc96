"""GET /v1/status facts for the f16 and 4-bit fixtures, and the EOS fixture's behaviour."""

from __future__ import annotations

from conftest import Runner, chat, done_of, snapshot, text_of

TINY_PARAMS = 2048 * 128 + 4 * (128 * 128 * 2 + 64 * 128 * 2 + 3 * 128 * 384 + 2 * 128) + 128


def test_status_facts_f16(runner: Runner) -> None:
    s = runner.status()
    assert s["model"] == str(snapshot("tiny-llama"))
    assert (s["model_type"], s["architecture"]) == ("llama", "llama")
    assert s["context_length"] == 2048
    assert s["parameter_count"] == TINY_PARAMS == 1049728
    assert s["quantization"] is None
    assert s["dtype"] == "float16"
    # The f16 repo keeps its template inside tokenizer_config.json.
    assert "<|im_start|>" in s["chat_template"] and "add_generation_prompt" in s["chat_template"]
    assert s["capabilities"] == ["completion"]
    assert s["eos_token_ids"] == [0, 2]
    assert s["backend"] == "cpu"
    mem = s["memory"]
    assert set(mem) == {
        "active",
        "peak",
        "cache",
        "weights",
        "kv_live",
        "prefix_cache",
        "prefix_budget",
        "limit",
    }
    assert mem["active"] > 0
    assert mem["weights"] == TINY_PARAMS * 2  # float16, unquantized
    # The default prefix budget: a quarter of what the weights leave of the memory limit.
    assert mem["limit"] > mem["weights"]
    assert mem["prefix_budget"] == min(8 << 30, (mem["limit"] - mem["weights"]) // 4)
    assert {k: s["engine"][k] for k in ("lane", "parallel", "kv_bits")} == {
        "lane": "batch",
        "parallel": 2,
        "kv_bits": None,
    }
    assert s["load_ms"] >= 0 and s["warmup_ms"] >= 0
    assert set(s["requests"]) == {"active", "queued", "completed", "cancelled"}


def test_status_facts_4bit(runner_4bit: Runner) -> None:
    s = runner_4bit.status()
    assert s["quantization"] == {"bits": 4, "group_size": 64, "mode": "affine"}
    # Packed uint32 weights are counted as the values they hold, scales and biases not at all.
    assert s["parameter_count"] == TINY_PARAMS
    assert s["dtype"] == "float16"
    assert s["context_length"] == 2048
    # mlx_lm convert moved the template into chat_template.jinja; it must still be found.
    assert "<|im_start|>" in s["chat_template"]


def test_4bit_model_generates_and_templates(runner_4bit: Runner) -> None:
    events = runner_4bit.complete(chat("What is 2+2?", num_predict=4))
    assert done_of(events)["eval_count"] == 4
    _, rendered = runner_4bit.post("/v1/render", {"messages": [{"role": "user", "content": "hi"}]})
    assert rendered["prompt"] == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_requests_completed_counts(runner: Runner) -> None:
    before = runner.status()["requests"]["completed"]
    runner.complete(chat("Hi", num_predict=1))
    after = runner.status()["requests"]
    assert after["completed"] == before + 1
    assert (after["active"], after["queued"]) == (0, 0)


def test_eos_fixture_stops_early(runner_eos: Runner) -> None:
    events = runner_eos.complete(chat("What is 2+2?", num_predict=64))
    done = done_of(events)
    assert done["done_reason"] == "stop"
    assert 2 <= done["eval_count"] <= 8  # the EOS itself is counted, as llama.cpp does
    assert text_of(events)

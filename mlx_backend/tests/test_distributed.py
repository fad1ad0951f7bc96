"""One model across two ranks on loopback: mlx.launch (ring backend) starting two runners that
split tiny-llama tensor-parallel (and a tiny Ministral 3 into pipeline stages), as the daemon
starts them with ``OLLMLX_MLX_HOSTS``.

Greedy output must equal the single-process runner's, token for token, alone, in a batch, and
from the prefix cache; a cancel must leave the job serving; a rank killed with SIGKILL must fail
the request in flight with a clear error and end the job (never hang); models mlx_lm cannot
split this way get a clear load error.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Runner, chat, done_of, snapshot, text_of

PROMPTS = ["hello there", "the quick brown fox", "one two three four five"]


def free_port_block(n: int = 2) -> int:
    """A port p with p .. p+n-1 free (the ring backend listens on one port per rank)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p + n > 65535:
            continue
        try:
            for i in range(1, n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p + i))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port block")


def launch_args() -> tuple[str, ...]:
    return (
        "--backend",
        "ring",
        "--hosts",
        "127.0.0.1",
        "-n",
        "2",
        "--starting-port",
        str(free_port_block()),
    )


def start(model: Path, *args: str) -> Runner:
    return Runner(model, parallel=2, args=("--distributed", "ring", *args), launch=launch_args())


@pytest.fixture(scope="module")
def split(models: Path) -> Iterator[Runner]:
    r = start(snapshot("tiny-llama"))
    try:
        r.wait_ready(timeout=180)
        yield r
    finally:
        r.stop()


def ranks_of(r: Runner) -> dict[int, int]:
    """The job's processes by rank: the processes in the launcher's group with MLX_RANK set,
    less each rank's watchdog (a fork of the rank: its parent has MLX_RANK too)."""
    found: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if os.getpgid(int(d.name)) != r.proc.pid:
                continue
            env = (d / "environ").read_bytes().split(b"\0")
        except (OSError, ProcessLookupError):
            continue
        for item in env:
            if item.startswith(b"MLX_RANK="):
                found.setdefault(int(item.split(b"=", 1)[1]), []).append(int(d.name))
    ranks = {}
    for rank, pids in found.items():
        parents = [p for p in pids if _ppid(p) not in pids]
        if parents:
            ranks[rank] = parents[0]
    return ranks


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_greedy_output_is_the_single_process_output(runner: Runner, split: Runner) -> None:
    for prompt in PROMPTS:
        body = chat(prompt, num_predict=24)
        body["return_context"] = True
        one, two = runner.complete(body), split.complete(body)
        assert text_of(two) == text_of(one), prompt
        assert done_of(two)["context"] == done_of(one)["context"]
        assert done_of(two)["eval_count"] == done_of(one)["eval_count"] == 24


def test_reports_how_the_model_is_split(split: Runner) -> None:
    d = split.status()["distributed"]
    assert d == {"backend": "mlx-ring", "split": "tensor", "hosts": ["127.0.0.1", "127.0.0.1"]}


def test_concurrent_streams_and_prefix_cache_match_single_process(
    runner: Runner, split: Runner
) -> None:
    bodies = [chat(p, num_predict=16) for p in PROMPTS]
    want = [text_of(runner.complete(b)) for b in bodies]
    got: list[str | None] = [None] * len(bodies)

    def one(i: int) -> None:
        got[i] = text_of(split.complete(bodies[i]))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert got == want

    # Turn 2 of a chat: served from the prefix cache on every rank, same tokens as one process.
    first = chat("tell me a story", num_predict=12)
    reply = text_of(split.complete(first))
    turn2 = chat("tell me a story", num_predict=12)
    turn2["messages"] += [
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "and then?"},
    ]
    done = done_of(events := split.complete(turn2))
    assert done["cached_tokens"] > 0, done
    assert text_of(events) == text_of(runner.complete(turn2))


def test_cancel_leaves_the_job_serving(runner: Runner, split: Runner) -> None:
    conn = split.connect()
    body = chat("count forever", num_predict=100000)
    conn.request("POST", "/v1/completion", body=json.dumps(body), headers=split.headers())
    resp = conn.getresponse()
    assert resp.status == 200
    resp.readline()  # start
    resp.readline()  # a first chunk: the sequence runs on both ranks
    conn.close()  # the client goes away
    deadline = time.monotonic() + 60
    while split.status()["requests"]["cancelled"] < 1:
        assert time.monotonic() < deadline, "the cancel never reached the engine"
        time.sleep(0.1)
    body = chat(PROMPTS[0], num_predict=8)
    assert text_of(split.complete(body)) == text_of(runner.complete(body))


def test_a_killed_rank_fails_the_request_and_ends_the_job(models: Path) -> None:
    r = start(snapshot("tiny-llama"))
    try:
        r.wait_ready(timeout=180)
        ranks = ranks_of(r)
        assert set(ranks) == {0, 1}, ranks
        conn = r.connect()
        conn.request(
            "POST",
            "/v1/completion",
            body=json.dumps(chat("go on and on", num_predict=100000)),
            headers=r.headers(),
        )
        resp = conn.getresponse()
        assert resp.status == 200
        resp.readline()
        resp.readline()
        os.kill(ranks[1], signal.SIGKILL)
        # The stream ends with an error event (or the connection with the process): no hang.
        last = None
        for line in resp:
            if line.strip():
                last = json.loads(line)
        conn.close()
        if last is not None and last["event"] != "chunk":
            assert last["event"] == "error", last
            assert "peer" in last["error"] or "rank" in last["error"], last
        # The whole job ends (mlx.launch ends rank 0 when rank 1 dies), watchdogs included.
        r.proc.wait(60)
        deadline = time.monotonic() + 10
        while ranks_of(r) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not ranks_of(r), "a rank outlived the job"
    finally:
        r.stop()


def test_models_that_cannot_be_split_so_get_a_clear_error(models: Path) -> None:
    # mlx_lm 0.32's Llama shards tensor-parallel only.
    r = start(snapshot("tiny-llama"), "--split", "pipeline")
    try:
        with pytest.raises(
            RuntimeError, match=r"cannot split llama models .*\(pipeline parallel\)"
        ):
            r.wait_ready(timeout=180)
    finally:
        r.stop()
    r = start(snapshot("tiny-vlm"))
    try:
        with pytest.raises(RuntimeError, match="vision models cannot be split"):
            r.wait_ready(timeout=180)
    finally:
        r.stop()


def test_no_rank_outlives_a_killed_launcher(models: Path) -> None:
    # The daemon SIGKILLed (so the launcher too): every rank must go, whatever it was doing.
    r = start(snapshot("tiny-llama"))
    try:
        r.wait_ready(timeout=180)
        pids = ranks_of(r)
        assert set(pids) == {0, 1}, pids
        os.kill(r.proc.pid, signal.SIGKILL)
        r.proc.wait(10)
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{p}").exists() for p in pids.values()):
            assert time.monotonic() < deadline, f"ranks outlived the launcher: {pids}"
            time.sleep(0.1)
    finally:
        r.stop()


def make_pipeline_model(out: Path) -> Path:
    """A tiny random Ministral 3 (an architecture mlx_lm can split into pipeline stages),
    saved as mlx_lm saves models (with the weights index that pipeline loading reads), with
    tiny-llama's tokenizer."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import ministral3
    from mlx_lm.utils import save_config, save_model

    out.mkdir(parents=True, exist_ok=True)
    for f in snapshot("tiny-llama").iterdir():
        if f.name.startswith("tokenizer") or f.name == "special_tokens_map.json":
            shutil.copy(f, out / f.name)
    config = {
        "model_type": "ministral3",
        "hidden_size": 64,
        "num_hidden_layers": 4,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "rms_norm_eps": 1e-5,
        "vocab_size": 2048,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": True,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "llama_4_scaling_beta": 0.0,
            "original_max_position_embeddings": 2048,
        },
        "bos_token_id": 0,
        "eos_token_id": 2,
    }
    mx.random.seed(7)
    model = ministral3.Model(ministral3.ModelArgs.from_dict(config))
    weights = tree_flatten(model.parameters())
    model.load_weights(
        [(k, (mx.random.normal(v.shape) * 0.5).astype(mx.float16)) for k, v in weights]
    )
    save_model(out, model)
    save_config(config, out / "config.json")
    return out


def test_pipeline_split_gives_the_single_process_output(models: Path, tmp_path: Path) -> None:
    model = make_pipeline_model(tmp_path / "tiny-ministral3")
    one = Runner(model, parallel=2)
    two = start(model, "--split", "pipeline")
    try:
        one.wait_ready()
        two.wait_ready(timeout=180)
        assert two.status()["distributed"]["split"] == "pipeline"
        # Each rank holds half the layers: their caches differ in size, and the prefix cache
        # must still agree on every rank (the repeat below is served from it).
        for prompt in [*PROMPTS, PROMPTS[0]]:
            body = chat(prompt, num_predict=16)
            assert text_of(two.complete(body)) == text_of(one.complete(body)), prompt
        assert two.status()["prefix_cache"]["hits"] >= 1
    finally:
        one.stop()
        two.stop()

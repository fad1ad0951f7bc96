#!/usr/bin/env python3
"""Benchmark: the MLX serving engine against mlx_lm.server, and the GGUF path against llama-server.

One invocation starts, on the same model and machine:

- `ollmlx serve` (OLLAMA_NUM_PARALLEL=16) over a Hugging Face hub and an Ollama store holding
  the GGUF of the same weights;
- `mlx_lm.server --decode-concurrency 16 --prompt-concurrency 8` on the MLX snapshot;
- `llama-server` on the GGUF with the flags the daemon gives it (one slot, `cache_prompt`).

and talks to all of them with the same OpenAI streaming client code (`/v1/chat/completions`,
`stream_options.include_usage`). It reports, as ratios within this run:

1. aggregate decode throughput (completion tokens of all streams / wall time from the first send
   to the last byte) at 1, 4, 8 and 16 concurrent streams, distinct prompts, temperature 0, the
   rounds of the two servers interleaved so machine noise hits both alike;
2. time to first token of turns 1..N of one conversation with a long system prompt (each server
   sees its own replies in the history, as a chat client resends them): ollmlx / mlx_lm.server
   per turn, and turns 2..N against turn 1;
3. the same conversation for GGUF through ollmlx against llama-server direct;
4. the peak resident memory (VmHWM) of the MLX runner and of mlx_lm.server.

    scripts/test.sh     # once: venv, fixtures, llama-server
    cargo build --release
    .venv/bin/python bench/serving.py                 # tiny test model
    .venv/bin/python bench/serving.py --hub ~/.cache/huggingface/hub \\
        --model mlx-community/Llama-3.2-1B-Instruct-4bit --gguf path/to/same.gguf
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from daemon import free_port, llama_server_binary, serve, start_http, start_llama_server
from formats import build_store

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = " ".join(
    f"Rule {i}: answer briefly, cite the manual, and keep the lighthouse lamp lit."
    for i in range(25)
)
# mlx_lm.server's name for the model given on its command line (any other name is a hub repo).
BASE_MODEL = "default_model"
TOPICS = ["the sea", "a storm", "the keeper", "ships", "the lamp", "fog", "gulls", "tides"]


def post_stream(port: int, path: str, body: dict) -> tuple[float, float, int, str]:
    """(time to first content s, total s, completion tokens, text) of one streamed request."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
    t0 = time.perf_counter()
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"{path}: HTTP {resp.status}: {resp.read()[:300]!r}")
    first, tokens, text = None, 0, []
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data:") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[5:])
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content") or ""
            if piece:
                first = first or time.perf_counter()
                text.append(piece)
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
    end = time.perf_counter()
    conn.close()
    return (first or end) - t0, end - t0, tokens, "".join(text)


def chat_body(model: str, messages: list[dict], max_tokens: int) -> dict:
    return {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def throughput(port: int, model: str, streams: int, tokens: int, round_no: int) -> float:
    """Aggregate completion tokens/s of `streams` concurrent distinct chats."""
    results: list[int] = [0] * streams

    def one(i: int) -> None:
        topic = TOPICS[i % len(TOPICS)]
        prompt = f"[{round_no}.{i}] Tell a long story about {topic}. " * 16  # ~256 tokens
        body = chat_body(model, [{"role": "user", "content": prompt}], tokens)
        results[i] = post_stream(port, "/v1/chat/completions", body)[2]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(results) / (time.perf_counter() - t0)


def conversation(port: int, model: str, turns: int, reply_tokens: int, tag: str) -> list[float]:
    """Time to first token of each turn of one chat that resends its whole history."""
    messages = [{"role": "system", "content": f"{tag} {SYSTEM}"}]
    ttft = []
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Turn {turn}: what about {TOPICS[turn % 8]}?"})
        first, _, _, text = post_stream(
            port, "/v1/chat/completions", chat_body(model, messages, reply_tokens)
        )
        ttft.append(first)
        messages.append({"role": "assistant", "content": text})
    return ttft


def vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def start_mlx_lm_server(python: str, snapshot: Path, parallel: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [
        python,
        "-m",
        "mlx_lm.server",
        "--model",
        str(snapshot),
        "--port",
        str(port),
        "--decode-concurrency",
        str(parallel),
        "--prompt-concurrency",
        "8",
        "--max-tokens",
        "4096",
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return start_http(cmd, port, "/v1/models", "mlx_lm.server", env=env), port


def snapshot_of(hub: Path, repo: str) -> Path:
    d = hub / f"models--{repo.replace('/', '--')}"
    return d / "snapshots" / (d / "refs" / "main").read_text().strip()


def ratio_line(name: str, ours: list[float], theirs: list[float], unit: str) -> str:
    a, b = statistics.median(ours), statistics.median(theirs)
    return f"{name:<34} ollmlx {a:9.2f} {unit}  baseline {b:9.2f} {unit}  ratio {a / b:5.2f}"


def main() -> None:
    fixtures = ROOT / "target/fixtures"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hub", type=Path, default=fixtures / "hub")
    ap.add_argument("--model", default="ollmlx-test/tiny-llama")
    ap.add_argument("--gguf", type=Path, default=fixtures / "gguf/tiny-llama-f16.gguf")
    ap.add_argument("--python", default=str(ROOT / ".venv/bin/python"))
    ap.add_argument("--bin", type=Path, default=ROOT / "target/release/ollmlx")
    ap.add_argument("--llama-server", default=None)
    ap.add_argument("--streams", default="1,4,8,16")
    ap.add_argument("--tokens", type=int, default=128, help="completion tokens per stream")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--reply-tokens", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1, help="llama-server threads (GGUF part)")
    args = ap.parse_args()
    streams = [int(s) for s in args.streams.split(",")]
    llama = llama_server_binary(args.llama_server)
    work = Path(tempfile.mkdtemp(prefix="ollmlx-serving-"))
    build_store(work / "models", "tiny-gguf", args.gguf)
    env = dict(
        os.environ,
        OLLAMA_HOST="127.0.0.1:0",
        HF_HUB_CACHE=str(args.hub),
        OLLMLX_PYTHON=args.python,
        OLLMLX_HOME=str(work / "home"),
        OLLAMA_MODELS=str(work / "models"),
        OLLAMA_KEEP_ALIVE="-1",
        OLLAMA_NUM_PARALLEL=str(max(streams)),
        OLLMLX_LLAMA_SERVER=llama,
        OLLMLX_LLAMA_THREADS=str(args.threads),
    )
    daemon, dport = serve(args.bin, env)
    base, bport = start_mlx_lm_server(args.python, snapshot_of(args.hub, args.model), max(streams))
    procs = [daemon, base]
    try:
        # Warm both (model load, kernel compilation), then find the MLX runner's pid.
        throughput(dport, args.model, 2, 8, -1)
        throughput(bport, BASE_MODEL, 2, 8, -1)
        runner_pid = next(
            p
            for p in children(daemon.pid)
            if "ollmlx_mlx" in Path(f"/proc/{p}/cmdline").read_text()
        )
        print(
            f"model {args.model}; {os.cpu_count()} CPUs; {args.rounds} rounds; "
            f"{args.tokens} tokens per stream",
            flush=True,
        )
        print("\n## Aggregate decode tokens/s (interleaved rounds)")
        for n in streams:
            ours, theirs = [], []
            for r in range(args.rounds):
                ours.append(throughput(dport, args.model, n, args.tokens, r))
                theirs.append(throughput(bport, BASE_MODEL, n, args.tokens, r))
            print(ratio_line(f"{n:>2} stream(s)", ours, theirs, "tok/s"), flush=True)

        print(f"\n## Time to first token, turns 1..{args.turns} (system prompt ~1000 tokens)")
        ours = conversation(dport, args.model, args.turns, args.reply_tokens, "A")
        theirs = conversation(bport, BASE_MODEL, args.turns, args.reply_tokens, "A")
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            print(
                f"turn {i + 1:>2}: ollmlx {a * 1000:8.1f} ms  mlx_lm.server {b * 1000:8.1f} ms  "
                f"ratio {a / b:5.2f}  ollmlx vs its turn 1 {a / ours[0]:5.2f}"
            )
        later = statistics.median(ours[1:]) / statistics.median(theirs[1:])
        print(
            f"turns 2..{args.turns} median ratio ollmlx / mlx_lm.server: {later:.2f}; "
            f"ollmlx turns 2..{args.turns} / turn 1: {statistics.median(ours[1:]) / ours[0]:.3f}"
        )

        print("\n## Peak resident memory (VmHWM)")
        print(
            f"ollmlx MLX runner {vm_hwm_mb(runner_pid):8.1f} MB   "
            f"mlx_lm.server {vm_hwm_mb(base.pid):8.1f} MB"
        )
        base.terminate()

        print(f"\n## GGUF: time to first token, turns 1..{args.turns}, ollmlx vs llama-server")
        flags = ["-c", "2048", "-np", "1", "-t", str(args.threads), "--jinja", "--no-webui"]
        direct, lport = start_llama_server(llama, args.gguf, flags)
        procs.append(direct)
        for port in (dport, lport):  # load the GGUF into the daemon; warm both
            conversation(port, "tiny-gguf", 1, 4, "warm-up")
        ours = conversation(dport, "tiny-gguf", args.turns, args.reply_tokens, "G")
        theirs = conversation(lport, "tiny-gguf", args.turns, args.reply_tokens, "G")
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            print(
                f"turn {i + 1:>2}: ollmlx {a * 1000:8.1f} ms  llama-server {b * 1000:8.1f} ms  "
                f"ratio {a / b:5.2f}"
            )
        later = statistics.median(ours[1:]) / statistics.median(theirs[1:])
        print(f"turns 2..{args.turns} median ratio ollmlx / llama-server: {later:.2f}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())

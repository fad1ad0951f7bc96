#!/usr/bin/env python3
"""Benchmark: decode speed with a JSON-schema ``format`` against the same request without one.

It starts one MLX runner (the same one the daemon starts, spoken to directly over its private
protocol) and alternates requests A (free text), B (constrained), A, B... with the same model,
prompt, sampling options and token budget, so machine noise hits both alike. Decode tokens/s is
the runner's own measure, ``(eval_count - 1) / eval_duration`` (first to last token, so prefill
is left out). It prints the median of each and the ratio constrained / free (goal >= 0.8).

The schema has unbounded strings and arrays, so a model that does not end on its own (the
random-weight test model) decodes the whole budget in both modes and the two do the same work.

With ``--gguf`` it measures the same A/B on llama-server (GGUF; the schema becomes a llama.cpp
grammar), started directly with the daemon's flags, after the MLX runs.

Usage (from the repository root, after `scripts/test.sh` made the venv and fixtures):

    .venv/bin/python bench/constrained.py                  # tiny test model, 256 tokens, 10 rounds
    .venv/bin/python bench/constrained.py --gguf target/fixtures/gguf/tiny-llama-f32.gguf
    .venv/bin/python bench/constrained.py --hub ~/.cache/huggingface/hub \\
        --model mlx-community/Llama-3.2-1B-Instruct-4bit --tokens 256 --rounds 10
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import statistics
import sys
from pathlib import Path

from daemon import llama_server_binary, start_llama_server

from bench import snapshot_of, start_runner

ROOT = Path(__file__).resolve().parent.parent
PROMPT = [
    {"role": "system", "content": "You answer in JSON."},
    {"role": "user", "content": "Describe three lighthouses: their name, place and a long story."},
]
SCHEMA = {
    "type": "object",
    "properties": {
        "lighthouses": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "place": {"type": "string"},
                    "height_m": {"type": "number"},
                    "story": {"type": "string"},
                },
                "required": ["name", "place", "height_m", "story"],
            },
            "minItems": 3,
        }
    },
    "required": ["lighthouses"],
}


def decode_rate(port: int, token: str, body: dict) -> tuple[float, int, str]:
    """One completion; returns (decode tokens/s, eval_count, done_reason)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/v1/completion", json.dumps(body), {"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    done = None
    for raw in resp:
        event = json.loads(raw)
        if event["event"] == "error":
            raise RuntimeError(event["error"])
        if event["event"] == "done":
            done = event
    conn.close()
    if done is None or done["eval_count"] < 2 or not done["eval_duration"]:
        raise RuntimeError(f"too few tokens to measure: {done}")
    rate = (done["eval_count"] - 1) / (done["eval_duration"] / 1e9)
    return rate, done["eval_count"], done["done_reason"]


def gguf_rate(port: int, body: dict) -> tuple[float, int, str]:
    """One llama-server completion; returns (decode tokens/s, tokens, stop type)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/completion", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    v = json.loads(resp.read())
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {v}")
    t = v["timings"]
    return t["predicted_per_second"], t["predicted_n"], v.get("stop_type", "")


def gguf_ab(args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """The A/B on llama-server: free text against `json_schema`, same prompt and budget."""
    flags = ["--no-webui", "--offline", "--no-context-shift", "-c", "2048", "-np", "1"]
    binary = llama_server_binary(args.llama_server)
    server, port = start_llama_server(binary, args.gguf, [*flags, "-t", str(args.threads)])
    try:
        prompt = "\n".join(m["content"] for m in PROMPT)
        base = {"prompt": prompt, "n_predict": args.tokens, "temperature": args.temperature}
        constrained_body = {**base, "json_schema": SCHEMA}
        gguf_rate(port, base)
        gguf_rate(port, constrained_body)
        free, constrained = [], []
        for i in range(args.rounds):
            f = gguf_rate(port, base)
            c = gguf_rate(port, constrained_body)
            free.append(f[0])
            constrained.append(c[0])
            print(
                f"gguf round {i + 1}: free {f[0]:8.1f} tok/s ({f[1]} tokens, {f[2]}), "
                f"constrained {c[0]:8.1f} tok/s ({c[1]} tokens, {c[2]})",
                flush=True,
            )
        return free, constrained
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hub", type=Path, default=ROOT / "target/fixtures/hub")
    ap.add_argument("--model", default="ollmlx-test/tiny-llama")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--python", default=sys.executable, help="the Python with mlx-lm")
    ap.add_argument("--gguf", type=Path, default=None, help="also measure llama-server on this")
    ap.add_argument("--llama-server", default=None)
    ap.add_argument("--threads", type=int, default=2, help="llama-server -t")
    args = ap.parse_args()

    base = {
        "messages": PROMPT,
        "options": {"num_predict": args.tokens, "temperature": args.temperature, "seed": -1},
    }
    runner, port, token = start_runner(args, snapshot_of(args.hub, args.model))
    try:
        decode_rate(port, token, {**base, "format": SCHEMA})  # warm both paths up
        decode_rate(port, token, base)
        free, constrained = [], []
        for i in range(args.rounds):
            f = decode_rate(port, token, base)
            c = decode_rate(port, token, {**base, "format": SCHEMA})
            free.append(f[0])
            constrained.append(c[0])
            print(
                f"round {i + 1}: free {f[0]:8.1f} tok/s ({f[1]} tokens, {f[2]}), "
                f"constrained {c[0]:8.1f} tok/s ({c[1]} tokens, {c[2]})",
                flush=True,
            )
    finally:
        runner.terminate()
        runner.wait(30)
    f_med, c_med = statistics.median(free), statistics.median(constrained)
    print(f"model {args.model}, {args.tokens} tokens, {args.rounds} rounds, {platform.machine()}")
    print(f"decode tok/s (median): free {f_med:.1f}, constrained {c_med:.1f}")
    print(f"ratio constrained/free: {c_med / f_med:.3f} (goal >= 0.8)")
    if args.gguf:
        free, constrained = gguf_ab(args)
        f_med, c_med = statistics.median(free), statistics.median(constrained)
        print(f"GGUF {args.gguf.name} on llama-server -t {args.threads}:")
        print(f"decode tok/s (median): free {f_med:.1f}, constrained {c_med:.1f}")
        print(f"ratio constrained/free: {c_med / f_med:.3f} (goal >= 0.8)")


if __name__ == "__main__":
    main()

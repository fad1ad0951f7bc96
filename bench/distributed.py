#!/usr/bin/env python3
"""Benchmark: one MLX model split over 2 ranks (OLLMLX_MLX_HOSTS, ring backend) against the same
model in one process, both through `ollmlx serve`, in one invocation.

On loopback this measures correctness and the cost of the lockstep machinery (an exchange per
engine turn, an all-reduce per layer over TCP), not the speed story: splitting a model pays when
it does not fit in one machine, over fast links (docs/scale-out.md). Reported, as ratios
2 ranks / 1 process with rounds interleaved so machine noise hits both alike:

1. single-stream decode tokens/s (distinct prompts, temperature 0);
2. time to first token of turn 1 (a ~1000-token prompt) and of turns 2..N (prefix cache);
3. that both give the same greedy text.

    cargo build --release
    .venv/bin/python bench/distributed.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from daemon import serve
from serving import ROOT, chat_body, conversation, post_stream, ratio_line


def decode_rate(port: int, model: str, tokens: int, round_no: int) -> tuple[float, str]:
    prompt = f"[{round_no}] Tell a long story about the lighthouse keeper. " * 8
    body = chat_body(model, [{"role": "user", "content": prompt}], tokens)
    first, total, n, text = post_stream(port, "/v1/chat/completions", body)
    return (n - 1) / (total - first), text


def main() -> None:
    fixtures = ROOT / "target/fixtures"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hub", type=Path, default=fixtures / "hub")
    ap.add_argument("--model", default="ollmlx-test/tiny-llama")
    ap.add_argument("--python", default=str(ROOT / ".venv/bin/python"))
    ap.add_argument("--bin", type=Path, default=ROOT / "target/release/ollmlx")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--turns", type=int, default=6)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ollmlx-distributed-"))
    env = dict(
        os.environ,
        OLLAMA_HOST="127.0.0.1:0",
        HF_HUB_CACHE=str(args.hub),
        OLLMLX_PYTHON=args.python,
        OLLMLX_HOME=str(work / "home"),
        OLLAMA_MODELS=str(work / "models"),
        OLLAMA_KEEP_ALIVE="-1",
    )
    one, one_port = serve(args.bin, env)
    two, two_port = serve(args.bin, dict(env, OLLMLX_MLX_HOSTS="127.0.0.1,127.0.0.1"))
    try:
        for port in (one_port, two_port):  # load and warm both
            decode_rate(port, args.model, 8, -1)
        print(f"model {args.model}; {os.cpu_count()} CPUs; {args.rounds} rounds", flush=True)
        a, b, same = [], [], True
        for r in range(args.rounds):
            rate2, text2 = decode_rate(two_port, args.model, args.tokens, r)
            rate1, text1 = decode_rate(one_port, args.model, args.tokens, r)
            a.append(rate2)
            b.append(rate1)
            same = same and text1 == text2
        print(ratio_line("decode, 1 stream (2 ranks / 1)", a, b, "tok/s"))
        t2 = conversation(two_port, args.model, args.turns, 24, "A")
        t1 = conversation(one_port, args.model, args.turns, 24, "A")
        print(ratio_line("TTFT turn 1 (2 ranks / 1)", [t2[0] * 1e3], [t1[0] * 1e3], "ms"))
        print(
            ratio_line(
                "TTFT turns 2.. (2 ranks / 1)",
                [x * 1e3 for x in t2[1:]],
                [x * 1e3 for x in t1[1:]],
                "ms",
            )
        )
        print(f"turn 2.. / turn 1, 2 ranks: {statistics.median(t2[1:]) / t2[0]:.2f}")
        print(f"same greedy text: {same}")
    finally:
        for p in (one, two):
            p.terminate()
            p.wait(30)


if __name__ == "__main__":
    main()

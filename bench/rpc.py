#!/usr/bin/env python3
"""Benchmark: a GGUF model through the daemon on this machine alone against the same model spread
over two llama.cpp rpc-servers (`ollmlx rpc-server`, on loopback), in one invocation.

It starts two `ollmlx rpc-server`s and two daemons over the same Ollama store: one plain, one with
OLLMLX_RPC_SERVERS naming both rpc-servers. After a warm-up request each (the load; its
load_duration is reported), rounds alternate between the two in both orders. Each request streams
a fresh raw prompt (no prompt cache) and `--tokens` greedy tokens from /api/generate. Reported:
load time, median time to first token (client side), prompt tokens/s and decode tokens/s, and
the RPC/local ratios. The greedy outputs must be identical, or the run fails.

On loopback this measures what llama.cpp's RPC costs per token (every layer's activations go
through a TCP round trip to each rpc-server and back), not what a second machine's memory or
compute gives; that needs real machines.

    scripts/test.sh   # once: venv, fixtures, llama-server and rpc-server
    cargo build --release
    .venv/bin/python bench/rpc.py --tokens 64 --rounds 6
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from daemon import free_port, llama_server_binary, serve
from formats import build_store, timed

ROOT = Path(__file__).resolve().parent.parent
PROMPT = " ".join(["The lighthouse keeper watched the grey sea and wrote in his log."] * 12)


def rpc_server(binary: Path, llama: str, threads: int) -> tuple[subprocess.Popen, int]:
    """`ollmlx rpc-server` on a free loopback port (rpc-server found beside llama-server)."""
    port = free_port()
    env = dict(os.environ, OLLMLX_LLAMA_SERVER=llama)
    env.pop("OLLMLX_RPC_SERVER", None)
    cmd = [str(binary), "rpc-server", "--port", str(port), "--threads", str(threads)]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            # A bare connection: rpc-server goes back to waiting when it closes.
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, port
        except OSError:
            if p.poll() is not None:
                break
            time.sleep(0.1)
    p.kill()
    raise RuntimeError("ollmlx rpc-server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--fixtures", type=Path, default=ROOT / "target/fixtures")
    ap.add_argument("--gguf", default="tiny-llama-f32.gguf")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1, help="llama-server's and each rpc-server's")
    ap.add_argument("--bin", type=Path, default=None, help="default: target/release, else debug")
    ap.add_argument("--llama-server", default=None)
    args = ap.parse_args()
    binary = args.bin or next(
        (p for p in (ROOT / "target/release/ollmlx", ROOT / "target/debug/ollmlx") if p.is_file()),
        None,
    )
    if binary is None:
        sys.exit("no ollmlx binary: cargo build --release (or pass --bin)")
    llama = llama_server_binary(args.llama_server)
    work = ROOT / "target/bench-rpc"
    subprocess.run(["rm", "-rf", str(work)], check=True)
    build_store(work / "models", "bench-gguf", args.fixtures / "gguf" / args.gguf)

    workers = [rpc_server(binary, llama, args.threads) for _ in range(2)]
    servers = ",".join(f"127.0.0.1:{port}" for _, port in workers)
    base = dict(
        os.environ,
        OLLAMA_HOST="127.0.0.1:0",
        HF_HUB_CACHE=str(args.fixtures / "hub"),
        OLLAMA_MODELS=str(work / "models"),
        OLLMLX_PYTHON=sys.executable,
        OLLMLX_LLAMA_SERVER=llama,
        OLLMLX_LLAMA_THREADS=str(args.threads),
        OLLAMA_KEEP_ALIVE="-1",
    )
    base.pop("OLLMLX_RPC_SERVERS", None)
    daemons = {
        "local": serve(binary, dict(base, OLLMLX_HOME=str(work / "home-local"))),
        "2 rpc-servers": serve(
            binary, dict(base, OLLMLX_HOME=str(work / "home-rpc"), OLLMLX_RPC_SERVERS=servers)
        ),
    }
    opts = {"num_predict": args.tokens, "temperature": 0, "seed": 1}
    nonce = iter(range(1_000_000))

    def run(port: int, prompt: str | None = None) -> dict:
        # A fresh first word defeats prompt caching, so prompt speed is measured on every run.
        prompt = prompt or f"Entry {next(nonce)}. {PROMPT}"
        body = {"model": "bench-gguf", "prompt": prompt, "raw": True, "options": opts}
        return timed(port, "/api/generate", body, False)

    results: dict[str, list[dict]] = {k: [] for k in daemons}
    loads, outputs = {}, {}
    try:
        for name, (_, port) in daemons.items():
            # The load, and the greedy output both must share.
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
            body = {"model": "bench-gguf", "prompt": PROMPT, "raw": True, "stream": False,
                    "options": opts}  # fmt: skip
            c.request("POST", "/api/generate", json.dumps(body))
            r = json.loads(c.getresponse().read())
            loads[name] = r["load_duration"] / 1e9
            outputs[name] = r["response"]
        if outputs["local"] != outputs["2 rpc-servers"]:
            sys.exit(f"greedy outputs differ: {outputs}")
        for i in range(args.rounds):
            order = list(daemons.items())
            for name, (_, port) in order if i % 2 == 0 else reversed(order):
                results[name].append(run(port))
    finally:
        for p, _ in list(daemons.values()) + workers:
            p.terminate()
        for p, _ in list(daemons.values()) + workers:
            p.wait(30)

    med = statistics.median
    print(f"model: {args.gguf}; raw prompt of ~{len(PROMPT.split())} words, {args.tokens} greedy "
          f"tokens, {args.rounds} rounds; llama-server -t {args.threads}, rpc-server --threads "
          f"{args.threads}; ollmlx: {binary.relative_to(ROOT) if binary.is_relative_to(ROOT) else binary}")  # fmt: skip
    print()
    print("| placement | load | TTFT (median) | prompt tokens/s | decode tokens/s |")
    print("|---|---|---|---|---|")
    for name, rs in results.items():
        print(f"| {name} | {loads[name] * 1000:.0f} ms | {med(r['ttft'] for r in rs) * 1000:.1f} ms | "
              f"{med(r['prompt'] for r in rs):.0f} | {med(r['decode'] for r in rs):.1f} |")  # fmt: skip
    print()
    for key, label in (
        ("decode", "decode tokens/s"),
        ("ttft", "TTFT"),
        ("prompt", "prompt tokens/s"),
    ):
        ratio = med(r[key] for r in results["2 rpc-servers"]) / med(
            r[key] for r in results["local"]
        )
        print(f"2 rpc-servers / local, {label}: {ratio:.3f}")
    print("greedy outputs identical: yes")


if __name__ == "__main__":
    main()

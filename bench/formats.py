#!/usr/bin/env python3
"""Benchmark: the same weights as MLX and as GGUF through ollmlx, and the GGUF path against
llama-server spoken to directly.

In one invocation it starts `ollmlx serve` over the fixture hub (MLX) and an Ollama store holding
the GGUF of the same weights, plus a second llama-server on that GGUF with the flags the daemon
uses, then interleaves: MLX via ollmlx, GGUF via ollmlx, GGUF direct. It reports time to first
token, prompt tokens/s, decode tokens/s and peak runner memory (VmHWM), and the decode ratio of
the GGUF path through ollmlx to llama-server direct (goal >= 0.99).

    scripts/test.sh   # once: venv, fixtures
    cargo build --release
    .venv/bin/python bench/formats.py --tokens 128 --rounds 6
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from daemon import llama_server_binary, serve, start_llama_server

ROOT = Path(__file__).resolve().parent.parent
PROMPT = " ".join(["The lighthouse keeper watched the grey sea and wrote in his log."] * 12)


def build_store(store: Path, name: str, gguf: Path) -> None:
    """Lays the GGUF out as Ollama would (blobs + manifest)."""
    blobs = store / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> dict:
        h = hashlib.sha256(data).hexdigest()
        (blobs / f"sha256-{h}").write_bytes(data)
        return {"digest": f"sha256:{h}", "size": len(data)}

    model = {"mediaType": "application/vnd.ollama.image.model", **put(gguf.read_bytes())}
    config = {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        **put(b'{"model_format":"gguf","model_family":"llama"}'),
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": config,
        "layers": [model],
    }
    d = store / "manifests/registry.ollama.ai/library" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "latest").write_text(json.dumps(manifest))


def peak_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return float("nan")


def children(pid: int) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                stat = Path(f"/proc/{p}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(p))
    return out


def timed(port: int, path: str, body: dict, sse: bool) -> dict:
    """Streams one request; client-side TTFT and decode rate, server-side prompt rate."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()[:300]
    first = last = None
    final = {}
    for raw in resp:
        raw = raw.strip()
        if sse:
            if not raw.startswith(b"data:"):
                continue
            raw = raw[5:]
        if not raw:
            continue
        line = json.loads(raw)
        text = line.get("response") if not sse else line.get("content")
        if text:
            now = time.perf_counter()
            first = first or now
            last = now
        if line.get("done") or line.get("stop"):
            final = line
            last = time.perf_counter()
            break
    conn.close()
    if sse:
        t = final["timings"]
        n, prompt_n, prompt_s = t["predicted_n"], t["prompt_n"], t["prompt_ms"] / 1e3
    else:
        n, prompt_n = final["eval_count"], final["prompt_eval_count"]
        prompt_s = final["prompt_eval_duration"] / 1e9
    return {
        "ttft": first - t0,
        "decode": (n - 1) / (last - first),
        "prompt": prompt_n / prompt_s if prompt_s else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--fixtures", type=Path, default=ROOT / "target/fixtures")
    ap.add_argument("--gguf", default="tiny-llama-f16.gguf")
    ap.add_argument("--mlx", default="ollmlx-test/tiny-llama")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bin", type=Path, default=ROOT / "target/release/ollmlx")
    ap.add_argument("--llama-server", default=None)
    args = ap.parse_args()
    llama = llama_server_binary(args.llama_server)
    work = ROOT / "target/bench-formats"
    subprocess.run(["rm", "-rf", str(work)], check=True)
    gguf = args.fixtures / "gguf" / args.gguf
    build_store(work / "models", "bench-gguf", gguf)

    env = dict(
        os.environ,
        OLLAMA_HOST="127.0.0.1:0",
        HF_HUB_CACHE=str(args.fixtures / "hub"),
        OLLAMA_MODELS=str(work / "models"),
        OLLMLX_HOME=str(work / "home"),
        OLLMLX_PYTHON=sys.executable,
        OLLMLX_LLAMA_SERVER=llama,
        OLLMLX_LLAMA_THREADS=str(args.threads),
        OLLAMA_KEEP_ALIVE="-1",
    )
    daemon, port = serve(args.bin, env)

    # The flags the daemon gives llama-server for this model (num_ctx 2048, one slot).
    direct, direct_port = start_llama_server(
        llama, gguf,
        ["--no-webui", "--offline", "--no-context-shift", "-c", "2048", "-np", "1", "--embeddings",
         "--pooling", "mean", "-t", str(args.threads), "-b", "2048", "-ub", "512"],
    )  # fmt: skip

    opts = {"num_predict": args.tokens, "temperature": 0}
    nonce = iter(range(1_000_000))

    def prompt() -> str:
        # A fresh first word defeats prompt caching, so prompt speed is measured on every run.
        return f"Entry {next(nonce)}. {PROMPT}"

    runs = {
        "MLX via ollmlx": lambda: timed(port, "/api/generate", {"model": args.mlx, "prompt": prompt(), "raw": True, "options": opts}, False),
        "GGUF via ollmlx": lambda: timed(port, "/api/generate", {"model": "bench-gguf", "prompt": prompt(), "raw": True, "options": opts}, False),
        "GGUF llama-server direct": lambda: timed(direct_port, "/completion", {"prompt": prompt(), "n_predict": args.tokens, "temperature": 0, "stream": True, "cache_prompt": True}, True),
    }  # fmt: skip
    results = {k: [] for k in runs}
    try:
        for fn in runs.values():  # warm-up: loads both runners
            fn()
        for i in range(args.rounds):
            order = list(runs.items())
            for name, fn in order if i % 2 == 0 else reversed(order):
                results[name].append(fn())
        runner_peak = {}
        for pid in children(daemon.pid):
            cmd = Path(f"/proc/{pid}/cmdline").read_text()
            runner_peak["GGUF via ollmlx" if "llama-server" in cmd else "MLX via ollmlx"] = peak_mb(
                pid
            )
        runner_peak["GGUF llama-server direct"] = peak_mb(direct.pid)
    finally:
        direct.terminate()
        daemon.terminate()
        daemon.wait(30)
        direct.wait(30)

    med = statistics.median
    print(f"weights: {args.mlx} (MLX) = {args.gguf}; raw prompt of ~{len(PROMPT.split())} words, "
          f"{args.tokens} greedy tokens, {args.rounds} rounds, llama-server -t {args.threads}")  # fmt: skip
    print()
    print("| path | TTFT (median) | prompt tokens/s | decode tokens/s | peak runner RSS |")
    print("|---|---|---|---|---|")
    for name, rs in results.items():
        print(f"| {name} | {med(r['ttft'] for r in rs) * 1000:.1f} ms | "
              f"{med(r['prompt'] for r in rs):.0f} | {med(r['decode'] for r in rs):.1f} | "
              f"{runner_peak.get(name, float('nan')):.0f} MB |")  # fmt: skip
    ratio = med(r["decode"] for r in results["GGUF via ollmlx"]) / med(
        r["decode"] for r in results["GGUF llama-server direct"]
    )
    print()
    print(f"GGUF decode through ollmlx / llama-server direct: {ratio:.3f} (goal >= 0.99)")


if __name__ == "__main__":
    main()

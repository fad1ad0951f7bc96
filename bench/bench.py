#!/usr/bin/env python3
"""Benchmark: the ollmlx daemon against the same MLX runner spoken to directly.

In one invocation it starts a daemon (which starts its own runner) and a second runner of the same
model and prompt spoken to directly over its private protocol, then interleaves requests A, B, A,
B... so machine noise hits both alike. It reports, as ratios and differences within this run:

- decode tokens/s through the daemon / direct (goal >= 0.99);
- median time to first token added by the daemon (goal <= 2 ms);
- the daemon's resident memory when idle and while 8 streams run at once (goal idle <= 20 MB).

Usage (from the repository root, after `scripts/test.sh` made the venv and fixtures):

    .venv/bin/python bench/bench.py                       # tiny test model, 256 tokens, 10 rounds
    .venv/bin/python bench/bench.py --hub ~/.cache/huggingface/hub \
        --model mlx-community/Llama-3.2-1B-Instruct-4bit --tokens 256 --rounds 10

It needs a built daemon (`cargo build --release`; `--bin` to choose another).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from daemon import serve

ROOT = Path(__file__).resolve().parent.parent
PROMPT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write a long story about a lighthouse keeper and the sea."},
]


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (Linux /proc, else ps)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    out = subprocess.run(
        ["ps", "-o", "rss=", "-p", str(pid)], check=False, capture_output=True, text=True
    )
    return int(out.stdout.strip() or 0) / 1024


def stream(
    port: int, path: str, body: dict, headers: dict, content_key
) -> tuple[float, float, int]:
    """POSTs a streaming request; returns (time to first token s, decode tokens/s, eval_count)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **headers})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"{path}: HTTP {resp.status}: {resp.read()[:300]!r}")
    first = last = None
    count = 0
    for raw in resp:
        line = json.loads(raw)
        if "error" in line:
            raise RuntimeError(line["error"])
        if content_key(line):
            now = time.perf_counter()
            first = first or now
            last = now
        if line.get("done") or line.get("event") == "done":
            count = line["eval_count"]
            last = time.perf_counter()
            break
    conn.close()
    if first is None or count < 2:
        raise RuntimeError("no tokens were generated")
    return first - t0, (count - 1) / (last - first), count


def start_daemon(args, env_extra: dict) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ)
    env.update(
        OLLAMA_HOST="127.0.0.1:0",
        HF_HUB_CACHE=str(args.hub),
        OLLMLX_PYTHON=args.python,
        OLLMLX_HOME=str(args.work / "home"),
        OLLAMA_MODELS=str(args.work / "models"),
        OLLAMA_KEEP_ALIVE="-1",
        **env_extra,
    )
    return serve(args.bin, env)


def start_runner(args, snapshot: Path) -> tuple[subprocess.Popen, int, str]:
    token = secrets.token_hex(16)
    env = dict(os.environ, OLLMLX_RUNNER_TOKEN=token, HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(ROOT / "mlx_backend"), os.environ.get("PYTHONPATH", "")] if p
    )
    cmd = [args.python, "-m", "ollmlx_mlx", "--model", str(snapshot), "--port", "0"]
    p = subprocess.Popen(
        cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    port = json.loads(p.stdout.readline())["port"]
    for _ in range(1200):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/v1/health", headers={"Authorization": f"Bearer {token}"})
        if conn.getresponse().status == 200:
            return p, port, token
        time.sleep(0.25)
    raise RuntimeError("the direct runner did not become ready")


def snapshot_of(hub: Path, repo: str) -> Path:
    d = hub / f"models--{repo.replace('/', '--')}"
    rev = (d / "refs" / "main").read_text().strip()
    return d / "snapshots" / rev


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hub", type=Path, default=ROOT / "target/fixtures/hub")
    ap.add_argument("--model", default="ollmlx-test/tiny-llama")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--bin", type=Path, default=ROOT / "target/release/ollmlx")
    ap.add_argument("--work", type=Path, default=ROOT / "target/bench")
    ap.add_argument("--python", default=sys.executable, help="the Python with mlx-lm")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    options = {
        "num_predict": args.tokens,
        "temperature": 0.0,
        "top_k": 40,
        "top_p": 0.9,
        "min_p": 0.0,
        "seed": -1,
        "stop": [],
        "repeat_penalty": 1.0,
        "repeat_last_n": 64,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "num_ctx": 4096,
    }
    daemon, dport = start_daemon(args, {"OLLAMA_NUM_PARALLEL": "8"})
    runner, rport, token = start_runner(args, snapshot_of(args.hub, args.model))
    try:
        time.sleep(1.0)
        idle_rss = rss_mb(daemon.pid)

        def via_daemon():
            body = {"model": args.model, "messages": PROMPT, "options": dict(options)}
            return stream(
                dport, "/api/chat", body, {}, lambda l: l.get("message", {}).get("content")
            )

        def direct():
            body = {
                "id": "bench",
                "messages": PROMPT,
                "options": options,
                "truncate": True,
                "return_context": False,
            }
            auth = {"Authorization": f"Bearer {token}"}
            return stream(rport, "/v1/completion", body, auth, lambda l: l.get("content"))

        for _ in range(2):  # warm-up: loads the daemon's runner, compiles kernels on both
            via_daemon()
            direct()
        d_ttft, d_tps, r_ttft, r_tps = [], [], [], []
        for i in range(args.rounds):
            order = [(via_daemon, d_ttft, d_tps), (direct, r_ttft, r_tps)]
            for fn, ttft, tps in order if i % 2 == 0 else reversed(order):
                t, s, _ = fn()
                ttft.append(t)
                tps.append(s)

        # Eight concurrent streams through the daemon, sampling its RSS.
        peak = [rss_mb(daemon.pid)]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak.append(rss_mb(daemon.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        workers = [threading.Thread(target=via_daemon) for _ in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        stop.set()
        sampler.join()
        busy_rss = max(peak)
    finally:
        runner.terminate()
        daemon.terminate()
        daemon.wait(30)
        runner.wait(30)

    med = statistics.median
    ratio = med(d_tps) / med(r_tps)
    added_ms = (med(d_ttft) - med(r_ttft)) * 1000
    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; model {args.model}; {args.tokens} tokens; {args.rounds} rounds"
    )
    print()
    print("| metric | direct runner | through ollmlx | result | goal |")
    print("|---|---|---|---|---|")
    print(
        f"| decode tokens/s (median) | {med(r_tps):.1f} | {med(d_tps):.1f} | ratio {ratio:.3f} | >= 0.99 |"
    )
    print(
        f"| time to first token (median) | {med(r_ttft) * 1000:.2f} ms | {med(d_ttft) * 1000:.2f} ms "
        f"| +{added_ms:.2f} ms | <= 2 ms |"
    )
    print(f"| daemon RSS idle | | {idle_rss:.1f} MB | | <= 20 MB |")
    print(f"| daemon RSS, 8 concurrent streams (peak) | | {busy_rss:.1f} MB | | |")


if __name__ == "__main__":
    main()

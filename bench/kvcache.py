#!/usr/bin/env python3
"""Benchmark: what OLLAMA_KV_CACHE_TYPE saves and what it costs, on both runners.

One invocation, the same model and machine:

- MLX: the runner (`python -m ollmlx_mlx`, as the daemon starts it) with `--kv-bits 0`, `8` and
  `4` in turn. Each serves one long prompt (past the 5,000 tokens where quantization starts) and
  then decodes; the runner's own `/v1/status` is polled every 50 ms for its live KV bytes.
- GGUF: llama-server with `--cache-type-k/v f16`, `q8_0`, `q4_0` (flash attention on, as the
  daemon starts it), a context of 2,048 tokens (the tiny model's limit there); the KV buffer is what
  llama-server reports at load, the decode rate what it reports per request.

Reported as ratios against f16 within the run: KV bytes and decode tokens/s.

    scripts/test.sh    # once: venv, fixtures, llama-server
    .venv/bin/python bench/kvcache.py
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import subprocess
import threading
import time
from pathlib import Path

from daemon import llama_server_binary

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "target/fixtures"


def snapshot_of(hub: Path, repo: str) -> Path:
    d = hub / f"models--{repo.replace('/', '--')}"
    return d / "snapshots" / (d / "refs" / "main").read_text().strip()


class Runner:
    def __init__(self, python: str, model: Path, bits: int):
        self.token = secrets.token_hex(16)
        env = dict(os.environ, OLLMLX_RUNNER_TOKEN=self.token, HF_HUB_OFFLINE="1")
        env["PYTHONPATH"] = str(ROOT / "mlx_backend")
        cmd = [python, "-m", "ollmlx_mlx", "--model", str(model), "--port", "0"]
        cmd += ["--kv-bits", str(bits), "--prefix-cache-bytes", "0"]
        self.proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.port = json.loads(self.proc.stdout.readline())["port"]
        while self.get("/v1/health")[0] != 200:
            time.sleep(0.1)

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1800)
        headers = {"Authorization": f"Bearer {self.token}"}
        c.request(method, path, json.dumps(body) if body else None, headers)
        r = c.getresponse()
        return r.status, r.read()

    def get(self, path: str) -> tuple[int, dict]:
        try:
            status, raw = self.request("GET", path)
            return status, json.loads(raw)
        except (OSError, ValueError):
            return 0, {}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def mlx_run(python: str, model: Path, bits: int, prompt_words: int, tokens: int) -> dict:
    r = Runner(python, model, bits)
    try:
        body = {
            "prompt": "words " * prompt_words,
            "options": {"temperature": 0, "num_predict": tokens, "num_ctx": prompt_words + 2048},
        }
        r.request(
            "POST", "/v1/completion", {**body, "options": {**body["options"], "num_predict": 2}}
        )  # warm
        peak = [0]
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                kv = r.get("/v1/status")[1].get("memory", {}).get("kv_live", 0)
                peak[0] = max(peak[0], kv)
                time.sleep(0.05)

        t = threading.Thread(target=poll)
        t.start()
        _, raw = r.request("POST", "/v1/completion", body)
        done.set()
        t.join()
        last = json.loads(raw.splitlines()[-1])
        return {
            "kv_bytes": peak[0],
            "decode_tps": last["eval_count"] / (last["eval_duration"] / 1e9),
            "prefill_s": last["prompt_eval_duration"] / 1e9,
        }
    finally:
        r.stop()


def gguf_run(binary: str, gguf: Path, kind: str, ctx: int, prompt_words: int, tokens: int) -> dict:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(f"/tmp/ollmlx-kvbench-{kind}.log")
    with log.open("w") as out:
        p = subprocess.Popen(
            [
                binary,
                "--model",
                str(gguf),
                "--port",
                str(port),
                "-c",
                str(ctx),
                "-np",
                "1",
                "-t",
                "1",
                "--no-webui",
                "--cache-type-k",
                kind,
                "--cache-type-v",
                kind,
                "--flash-attn",
                "on",
                "--log-verbosity",
                "4",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
        body = {
            "prompt": "words " * prompt_words,
            "n_predict": tokens,
            "temperature": 0,
            "ignore_eos": True,
        }
        c.request("POST", "/completion", json.dumps(body))
        timings = json.loads(c.getresponse().read())["timings"]
        text = log.read_text(errors="replace")
        sizes = re.findall(r"llama_kv_cache: size =\s*([\d.]+) MiB", text)
        return {
            "kv_bytes": int(sum(float(x) for x in sizes) * (1 << 20)),
            "decode_tps": timings["predicted_per_second"],
            "prefill_s": timings["prompt_ms"] / 1000,
        }
    finally:
        p.terminate()
        p.wait(20)


def report(name: str, results: dict[str, dict]) -> None:
    base = results[next(iter(results))]
    print(f"\n## {name}")
    for kind, r in results.items():
        print(
            f"{kind:>5}: KV {r['kv_bytes'] / (1 << 20):8.2f} MiB ({r['kv_bytes'] / base['kv_bytes']:.3f}"
            f" of f16)  decode {r['decode_tps']:8.1f} tok/s ({r['decode_tps'] / base['decode_tps']:.3f}"
            f" of f16)  prefill {r['prefill_s']:.2f} s"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hub", type=Path, default=FIXTURES / "hub")
    ap.add_argument("--model", default="ollmlx-test/tiny-llama")
    ap.add_argument("--gguf", type=Path, default=FIXTURES / "gguf/tiny-llama-f16.gguf")
    ap.add_argument("--python", default=str(ROOT / ".venv/bin/python"))
    ap.add_argument("--llama-server", default=None)
    ap.add_argument("--prompt-words", type=int, default=6000, help="past the 5,000-token start")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument(
        "--gguf-prompt-words",
        type=int,
        default=1700,
        help="llama-server caps the context at the model's training length (2048 here)",
    )
    args = ap.parse_args()
    model = snapshot_of(args.hub, args.model)
    print(
        f"model {args.model} / {args.gguf.name}; prompt ~{args.prompt_words} tokens; "
        f"{args.tokens} tokens decoded"
    )
    mlx = {
        name: mlx_run(args.python, model, bits, args.prompt_words, args.tokens)
        for name, bits in (("f16", 0), ("q8_0", 8), ("q4_0", 4))
    }
    report("MLX runner (--kv-bits)", mlx)
    binary = llama_server_binary(args.llama_server)
    ctx = 2048
    gguf = {
        kind: gguf_run(binary, args.gguf, kind, ctx, args.gguf_prompt_words, args.tokens)
        for kind in ("f16", "q8_0", "q4_0")
    }
    report("llama-server (--cache-type-k/v)", gguf)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: the metadata endpoints (`/api/tags`, `/api/show`) on a store of big-vocabulary GGUFs.

Open WebUI and IDE plugins poll `/api/tags` and call `/api/show` for every model, so these must
cost what Ollama's cost (~1 ms for 10 models) whatever the models' headers hold. The script
lays out an Ollama store of `--models` GGUF models whose headers carry a 150k-token vocabulary
and 150k merges (as Llama 3 or Qwen GGUFs do; the weights are the tiny fixture's), starts
`ollmlx serve` on it and times both endpoints (median of `--rounds` calls after one warm-up).
With `--ollama PATH` it starts a real Ollama on the same store in the same invocation and
reports the ratios.

    cargo build --release
    .venv/bin/python bench/metadata.py [--ollama /path/to/ollama]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import gguf
import numpy as np
from daemon import serve
from formats import build_store

ROOT = Path(__file__).resolve().parent.parent
VOCAB = 150_000


def big_gguf(src: Path, out: Path) -> None:
    """The fixture's weights and metadata with a `VOCAB`-entry vocabulary and merges."""
    reader = gguf.GGUFReader(str(src))
    w = gguf.GGUFWriter(str(out), "llama")
    skip = {
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.scores",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.merges",
        "general.architecture",
    }
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in skip:
            continue
        kind = field.types[0]
        if kind == gguf.GGUFValueType.STRING:
            w.add_string(key, bytes(field.parts[-1]).decode())
        elif kind != gguf.GGUFValueType.ARRAY:
            w.add_key_value(key, field.parts[-1][0], kind)
    w.add_token_list([f"tok{i}" for i in range(VOCAB)])
    w.add_token_scores([0.0] * VOCAB)
    w.add_token_types([1] * VOCAB)
    w.add_token_merges([f"tok{i} tok{i + 1}" for i in range(VOCAB)])
    for t in reader.tensors:
        w.add_tensor(t.name, np.array(t.data), raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def timed(port: int, method: str, path: str, body: dict | None, rounds: int) -> float:
    """Median seconds of `rounds` calls (after one warm-up call)."""
    times = []
    for i in range(rounds + 1):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        t0 = time.perf_counter()
        c.request(method, path, json.dumps(body) if body else None)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"{path}: HTTP {r.status}")
        if i:
            times.append(time.perf_counter() - t0)
        c.close()
    return statistics.median(times)


def start_ollama(binary: str, env: dict) -> tuple[subprocess.Popen, int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen(
        [binary, "serve"],
        env={**env, "OLLAMA_HOST": f"127.0.0.1:{port}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in p.stderr:
        if re.search(r"Listening on", line):
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, port
    raise RuntimeError("ollama did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", type=Path, default=ROOT / "target/fixtures/gguf/tiny-llama-f16.gguf")
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--bin", type=Path, default=ROOT / "target/release/ollmlx")
    ap.add_argument("--ollama", default=None, help="a real ollama binary to compare against")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ollmlx-metadata-"))
    big = work / "big.gguf"
    big_gguf(args.gguf, big)
    for i in range(args.models):
        build_store(work / "models", f"big{i}", big)
    (work / "hub").mkdir()
    env = dict(
        os.environ,
        OLLAMA_MODELS=str(work / "models"),
        HF_HUB_CACHE=str(work / "hub"),
        OLLMLX_HOME=str(work / "home"),
        HOME=str(work),
    )
    servers = {"ollmlx": serve(args.bin, {**env, "OLLAMA_HOST": "127.0.0.1:0"})}
    if args.ollama:
        servers["ollama"] = start_ollama(args.ollama, env)
    print(
        f"{args.models} GGUF models, {big.stat().st_size / 1e6:.1f} MB each, "
        f"{VOCAB} tokens + {VOCAB} merges in each header; median of {args.rounds} calls"
    )
    results: dict[str, dict[str, float]] = {}
    try:
        for name, (_, port) in servers.items():
            results[name] = {
                "GET /api/tags": timed(port, "GET", "/api/tags", None, args.rounds),
                "POST /api/show": timed(port, "POST", "/api/show", {"model": "big3"}, args.rounds),
            }
    finally:
        for p, _ in servers.values():
            p.terminate()
            p.wait(20)
    for endpoint in results["ollmlx"]:
        line = f"{endpoint:<16} ollmlx {results['ollmlx'][endpoint] * 1000:8.2f} ms"
        if "ollama" in results:
            theirs = results["ollama"][endpoint]
            line += f"  ollama {theirs * 1000:8.2f} ms  ratio {results['ollmlx'][endpoint] / theirs:.2f}"
        print(line)


if __name__ == "__main__":
    main()

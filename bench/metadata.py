#!/usr/bin/env python3
"""Benchmark: the metadata endpoints (`/api/tags`, `/api/show`) on a store of realistic models.

Open WebUI and IDE plugins poll `/api/tags` and call `/api/show` for every model, so these must
cost what Ollama's cost (~1 ms for 10 models) whatever the models' headers hold. The script
lays out an Ollama store of `--models` GGUF models whose headers carry a 150k-token vocabulary
and 150k merges (as Llama 3 or Qwen GGUFs do; the weights are the tiny fixture's) and, with
`--mlx N`, a Hugging Face cache of N MLX models with the files an mlx-community 4-bit 8B repo
has (config, a 50 kB tokenizer config with 256 added tokens, a chat template, a README, two
safetensors shards whose headers list ~1,100 tensors; the tensors themselves are tiny), starts
`ollmlx serve` on them and times both endpoints (median of `--rounds` calls after one warm-up).
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


def mlx_model(hub: Path, name: str) -> None:
    """An MLX repo in the hub cache with an mlx-community 8B 4-bit repo's metadata files."""
    snap = hub / f"models--bench--{name}" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("0" * 40)
    layers, hidden = 32, 4096
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": 14336,
        "num_hidden_layers": layers,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "max_position_embeddings": 131072,
        "vocab_size": 128256,
        "rms_norm_eps": 1e-5,
        "quantization": {"group_size": 64, "bits": 4},
    }
    (snap / "config.json").write_text(json.dumps(config, indent=2))
    template = (
        "{{- bos_token }}{%- for message in messages %}<|start_header_id|>{{ message['role'] }}"
        "<|end_header_id|>\n\n{{ message['content'] | trim }}<|eot_id|>{%- endfor %}"
        "{%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n"
        "{%- endif %}"
    ) * 8
    added = {
        str(128000 + i): {
            "content": f"<|reserved_special_token_{i}|>",
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for i in range(256)
    }
    (snap / "tokenizer_config.json").write_text(
        json.dumps({"added_tokens_decoder": added, "bos_token": "<|begin_of_text|>"}, indent=2)
    )
    (snap / "chat_template.jinja").write_text(template)
    (snap / "README.md").write_text("---\nlicense: llama3.1\n---\n" + "A model card.\n" * 400)
    (snap / "generation_config.json").write_text(json.dumps({"temperature": 0.6, "top_p": 0.9}))
    names = [
        f"model.layers.{i}.{part}.{kind}"
        for i in range(layers)
        for part in (
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        )
        for kind in ("weight", "scales", "biases")
    ] + [
        f"model.layers.{i}.{n}.weight"
        for i in range(layers)
        for n in ("input_layernorm", "post_attention_layernorm")
    ]
    index = {}
    for shard, part in enumerate((names[: len(names) // 2], names[len(names) // 2 :])):
        file = f"model-{shard + 1:05d}-of-00002.safetensors"
        header, offset = {"__metadata__": {"format": "mlx"}}, 0
        for n in part:
            dtype = "U32" if n.endswith(".weight") and "layernorm" not in n else "F16"
            size = 4 * 4 * (4 if dtype == "U32" else 2)
            header[n] = {"dtype": dtype, "shape": [4, 4], "data_offsets": [offset, offset + size]}
            offset += size
            index[n] = file
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        (snap / file).write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(offset))
    (snap / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": index}, indent=2)
    )


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
    ap.add_argument("--mlx", type=int, default=0, help="also this many MLX models")
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
    for i in range(args.mlx):
        mlx_model(work / "hub", f"mlx{i}")
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
        f"{VOCAB} tokens + {VOCAB} merges in each header; {args.mlx} MLX models; "
        f"median of {args.rounds} calls"
    )
    results: dict[str, dict[str, float]] = {}
    try:
        for name, (_, port) in servers.items():
            results[name] = {
                "GET /api/tags": timed(port, "GET", "/api/tags", None, args.rounds),
                "POST /api/show": timed(port, "POST", "/api/show", {"model": "big3"}, args.rounds),
            }
            if args.mlx and name == "ollmlx":
                results[name]["POST /api/show (MLX)"] = timed(
                    port, "POST", "/api/show", {"model": "bench/mlx0"}, args.rounds
                )
    finally:
        for p, _ in servers.values():
            p.terminate()
            p.wait(20)
    for endpoint in results["ollmlx"]:
        line = f"{endpoint:<22} ollmlx {results['ollmlx'][endpoint] * 1000:8.2f} ms"
        if endpoint in results.get("ollama", {}):
            theirs = results["ollama"][endpoint]
            line += f"  ollama {theirs * 1000:8.2f} ms  ratio {results['ollmlx'][endpoint] / theirs:.2f}"
        print(line)


if __name__ == "__main__":
    main()

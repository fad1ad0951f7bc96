#!/usr/bin/env bash
# The MLX-on-CUDA check, run on a lent NVIDIA machine (never in CI): the runner's pytest suite and
# the daemon end to end on MLX's CUDA backend, then the benchmark. The machine has no network, so
# the caller carries: DEV/mlx*.whl (mlx, mlx-lm), the mlx-cuda-13 wheel's contents as a tar.xz
# split into $PART1 (copied earlier to /tmp/dev) and DEV/part2, DEV/ollmlx (release binary) and
# DEV/fixtures (target/fixtures). Output goes to $OUT.
#
# What it showed on an H100 (2026-11-27, mlx-cuda-13 0.32.4): the runner reports backend "cuda",
# loads tiny-llama in 0.23 s and generates through the daemon; its first warm-up JIT-compiles the
# kernels (51 s with an empty MLX_PTX_CACHE_DIR; the daemon keeps that cache in $OLLMLX_HOME/cache).
set -uo pipefail
DEV=${DEV:-.devc2}
OUT=${OUT:-/tmp/out}
mkdir -p /tmp/site "$OUT"
cat /tmp/dev/part1 "$DEV/part2" | xz -d | tar xf - -C /tmp/site
# --upgrade: the tar above already made /tmp/site/mlx, and pip skips existing targets otherwise.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site "$DEV"/*.whl
# mlx-cuda finds cuBLAS, NVRTC, cuDNN and the CUDA headers (for its JIT) through site-packages/nvidia:
# point that at the NVIDIA wheels the image already has (for PyTorch cu130), one entry at a time
# (a link to the whole folder loops once /tmp/site is itself on the path).
nv=$(PYTHONPATH= python3 -c 'import nvidia; print([p for p in nvidia.__path__ if "/tmp/" not in p][0])')
rm -rf /tmp/site/nvidia && mkdir /tmp/site/nvidia
for d in "$nv"/*; do ln -s "$d" /tmp/site/nvidia/; done
export LD_LIBRARY_PATH=$(find "$nv" -name 'lib' -type d | tr '\n' ':')${LD_LIBRARY_PATH:-}
export PYTHONPATH=/tmp/site
export MLX_PTX_CACHE_DIR=/tmp/ptx
printf '#!/bin/sh\nexport PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}/tmp/site"\nexec python3 "$@"\n' > /tmp/py
chmod +x /tmp/py
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c 'import mlx.core as mx; a = mx.ones((1024, 1024)); print("mlx", mx.__version__, mx.default_device(), float((a @ a).sum()))'

cp -a "$DEV/fixtures" target/ 2>/dev/null || { mkdir -p target && cp -a "$DEV/fixtures" target/; }
export OLLMLX_TEST_FIXTURES=$PWD/target/fixtures
echo "== runner pytest on CUDA =="
(cd mlx_backend && timeout 300 python3 -m pytest -q -x 2>&1 | tail -15)

echo "== daemon end to end on CUDA =="
HF_HUB_CACHE=$OLLMLX_TEST_FIXTURES/hub OLLMLX_PYTHON=/tmp/py OLLMLX_HOME=/tmp/home OLLAMA_HOST=127.0.0.1:11500 \
  "$DEV/ollmlx" serve > "$OUT/daemon.log" 2>&1 &
daemon=$!
sleep 1
for m in ollmlx-test/tiny-llama ollmlx-test/tiny-llama-4bit; do
  curl -s localhost:11500/api/generate -d "{\"model\":\"$m\",\"prompt\":\"Hello\",\"stream\":false,\"options\":{\"num_predict\":32,\"temperature\":0}}" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r.get("error") or (r["eval_count"], round(r["eval_count"]/r["eval_duration"]*1e9,1), "tok/s", repr(r["response"][:40])))'
done
curl -s localhost:11500/api/chat -d '{"model":"ollmlx-test/tiny-llama-eos","stream":false,"messages":[{"role":"user","content":"What is 2+2?"}],"options":{"temperature":0}}' \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print("eos chat:", r.get("error") or (r["done_reason"], r["eval_count"]))'
curl -s localhost:11500/api/ps | python3 -c 'import json,sys; [print("ps:", m["name"], "size", m["size"], "size_vram", m["size_vram"]) for m in json.load(sys.stdin)["models"]]'
kill -TERM $daemon; wait $daemon; echo "daemon exit $?"

echo "== benchmark on CUDA =="
timeout 400 python3 bench/bench.py --python /tmp/py --bin "$DEV/ollmlx" --tokens 256 --rounds 6 > "$OUT/bench.txt" 2>&1
tail -8 "$OUT/bench.txt"

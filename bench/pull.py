#!/usr/bin/env python3
"""Benchmark: pull throughput through ollmlx against curl, from the same local registry server.

One invocation serves a large random blob from a minimal Ollama-registry server on loopback,
then alternates `curl -o file` of the blob with `POST /api/pull` of a model made of it (the
daemon streams it to disk while hashing it, then verifies and writes the manifest). It reports
both rates and their ratio (goal >= 0.9): hashing must not be the bottleneck.

    cargo build --release
    .venv/bin/python bench/pull.py --mb 512 --rounds 3
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import http.server
import json
import os
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

from daemon import serve

ROOT = Path(__file__).resolve().parent.parent


def make_registry(blob: Path, digest: str, config: bytes) -> http.server.ThreadingHTTPServer:
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.ollama.image.model",
                    "digest": digest,
                    "size": blob.stat().st_size,
                }
            ],
        }
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.endswith("/manifests/latest"):
                body, ctype = manifest, "application/vnd.docker.distribution.manifest.v2+json"
            elif self.path.endswith(config_digest):
                body, ctype = config, "application/octet-stream"
            elif self.path.endswith(digest):
                size = blob.stat().st_size
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                with blob.open("rb") as f:
                    os.sendfile(self.wfile.fileno(), f.fileno(), 0, size)
                return
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", type=Path, default=ROOT / "target/release/ollmlx")
    args = ap.parse_args()
    work = ROOT / "target/bench-pull"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    blob = work / "blob.bin"
    h = hashlib.sha256()
    with blob.open("wb") as f:
        for _ in range(args.mb):
            chunk = os.urandom(1 << 20)
            h.update(chunk)
            f.write(chunk)
    digest = "sha256:" + h.hexdigest()
    server = make_registry(blob, digest, b'{"model_format":"gguf"}')
    host = f"127.0.0.1:{server.server_address[1]}"
    models = work / "models"
    env = dict(os.environ, OLLAMA_HOST="127.0.0.1:0", OLLAMA_MODELS=str(models))
    env.update(HF_HUB_CACHE=str(work / "hub"), OLLMLX_HOME=str(work / "home"))
    daemon, port = serve(args.bin, env)

    size = blob.stat().st_size
    curl_s, pull_s = [], []
    try:
        for _ in range(args.rounds):
            out = work / "curl.out"
            t = time.perf_counter()
            url = f"http://{host}/v2/library/big/blobs/{digest}"
            subprocess.run(["curl", "-sf", "-o", str(out), url], check=True)
            curl_s.append(time.perf_counter() - t)
            out.unlink()

            shutil.rmtree(models, ignore_errors=True)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            body = {"model": f"{host}/library/big:latest", "insecure": True, "stream": False}
            t = time.perf_counter()
            conn.request("POST", "/api/pull", json.dumps(body))
            resp = conn.getresponse()
            answer = json.loads(resp.read())
            pull_s.append(time.perf_counter() - t)
            assert resp.status == 200 and answer.get("status") == "success", answer
    finally:
        daemon.terminate()
        daemon.wait(30)
        server.shutdown()

    curl_rate = size / statistics.median(curl_s) / 1e6
    pull_rate = size / statistics.median(pull_s) / 1e6
    print(f"{args.mb} MiB blob from a loopback registry, {args.rounds} rounds, medians:")
    print()
    print("| client | MB/s |")
    print("|---|---|")
    print(f"| curl -o file | {curl_rate:.0f} |")
    print(f"| ollmlx /api/pull (download + sha256 + manifest) | {pull_rate:.0f} |")
    print()
    print(f"ollmlx / curl: {pull_rate / curl_rate:.3f} (goal >= 0.9)")


if __name__ == "__main__":
    main()

"""Starting the servers the benchmarks measure: `ollmlx serve` (on a free port, its log drained in
the background) and llama-server run directly (the baseline for GGUF)."""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def serve(binary: Path, env: dict) -> tuple[subprocess.Popen, int]:
    """Starts the daemon with `env` (OLLAMA_HOST should be 127.0.0.1:0) and returns it and the
    port it announced."""
    p = subprocess.Popen(
        [str(binary), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in p.stderr:
        m = re.search(r"Listening on [^:]+:(\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, int(m.group(1))
    raise RuntimeError("the daemon did not start")


def llama_server_binary(given: str | None) -> str:
    """`given`, else the one scripts/build-llama-server.sh builds (or has cached)."""
    if given:
        return given
    build = ROOT / "scripts/build-llama-server.sh"
    return subprocess.check_output([str(build)], text=True).strip()


def start_llama_server(binary: str, gguf: Path, flags: list[str]) -> tuple[subprocess.Popen, int]:
    """llama-server on `gguf` with `flags`, on a free loopback port, once it answers /health."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen(
        [binary, "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port), *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return p, port
        except OSError:
            pass
        if p.poll() is not None:
            break
        time.sleep(0.1)
    p.kill()
    raise RuntimeError(f"llama-server did not start on {gguf}")

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http(cmd: list[str], port: int, ready_path: str, what: str, **popen) -> subprocess.Popen:
    """Runs `cmd` (which listens on `port`) and returns once `GET ready_path` answers 200; a
    server that exits or stays silent for two minutes is killed and reported."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen)
    for _ in range(1200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", ready_path)
            if c.getresponse().status == 200:
                return p
        except OSError:
            pass
        if p.poll() is not None:
            break
        time.sleep(0.1)
    p.kill()
    raise RuntimeError(f"{what} did not start")


def start_llama_server(binary: str, gguf: Path, flags: list[str]) -> tuple[subprocess.Popen, int]:
    """llama-server on `gguf` with `flags`, on a free loopback port, once it answers /health."""
    port = free_port()
    cmd = [binary, "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port), *flags]
    return start_http(cmd, port, "/health", f"llama-server on {gguf}"), port

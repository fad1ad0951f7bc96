"""Starting `ollmlx serve` for the benchmarks: on a free port, its log drained in the background."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path


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

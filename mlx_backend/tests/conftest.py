"""Shared test fixtures: the tiny models on disk and real runner subprocesses talking HTTP.

The models are built once by tests/fixtures/make_models.py into /work/main/target/fixtures
(``OLLMLX_TEST_FIXTURES`` overrides; the script's STAMP makes later runs a no-op). Runners are
real ``python -m ollmlx_mlx`` processes on port 0, as the daemon starts them; the ones that tests
only read from are session-scoped to keep the suite fast.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BACKEND = Path(__file__).resolve().parents[1]
REPO = BACKEND.parent
MAKE_MODELS = REPO / "tests" / "fixtures" / "make_models.py"
FIXTURES = Path(os.environ.get("OLLMLX_TEST_FIXTURES", REPO / "target" / "fixtures"))
ORG = "ollmlx-test"
READY_TIMEOUT_S = 60


def snapshot(name: str, hub: str = "hub") -> Path:
    """The snapshot directory of a fixture repo (what the daemon passes as --model)."""
    repo = FIXTURES / hub / f"models--{ORG}--{name}"
    return repo / "snapshots" / (repo / "refs" / "main").read_text().strip()


@pytest.fixture(scope="session")
def models() -> Path:
    subprocess.run([sys.executable, str(MAKE_MODELS), str(FIXTURES)], check=True)
    return FIXTURES


class Runner:
    """A runner subprocess plus a minimal HTTP client for it."""

    def __init__(
        self,
        model: Path | str,
        token: str | None = None,
        parallel: int = 1,
        args: tuple[str, ...] = (),
        launch: tuple[str, ...] | None = None,
    ):
        self.token = token or secrets.token_hex(16)
        env = dict(os.environ, OLLMLX_RUNNER_TOKEN=self.token, PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "ollmlx_mlx", "--model", str(model), "--port", "0"]
        cmd += ["--parallel", str(parallel), *args]
        if launch is not None:
            # A distributed job, as the daemon starts it: the launcher leads its own process
            # group (it ends that group when its stdin closes).
            cmd = [sys.executable, "-m", "ollmlx_mlx.launch", *launch, "--", *cmd]
        # stderr goes to a file (an undrained pipe could fill up and block the runner); stdin
        # stays an open pipe, as the daemon holds it: closing it is the parent-gone signal.
        log_fd, self.log_path = tempfile.mkstemp(prefix="runner-", suffix=".log")
        self.proc = subprocess.Popen(
            cmd,
            cwd=BACKEND,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_fd,
            text=True,
            process_group=0 if launch is not None else None,
        )
        os.close(log_fd)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"runner exited before listening: {self.stderr()}")
        self.listening = json.loads(line)
        self.port = self.listening["port"]

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.get("/v1/health")
            if status == 200:
                return
            if status == 500:
                raise RuntimeError(f"runner failed to load: {body}")
            time.sleep(0.05)
        raise TimeoutError("runner not ready")

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def request(
        self, method: str, path: str, body: Any = None, headers: dict | None = None
    ) -> tuple[int, Any]:
        conn = self.connect()
        try:
            data = None if body is None else json.dumps(body)
            conn.request(
                method, path, body=data, headers=self.headers() if headers is None else headers
            )
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return self.request("POST", path, body, **kw)

    def complete(self, body: dict) -> list[dict]:
        """POST /v1/completion and return every NDJSON event (asserts a 200)."""
        conn = self.connect()
        try:
            conn.request("POST", "/v1/completion", body=json.dumps(body), headers=self.headers())
            resp = conn.getresponse()
            assert resp.status == 200, resp.read()
            assert resp.getheader("Content-Type") == "application/x-ndjson"
            return [json.loads(line) for line in resp.read().splitlines()]
        finally:
            conn.close()

    def status(self) -> dict:
        code, body = self.get("/v1/status")
        assert code == 200, body
        return body

    def stderr(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def log_lines(self) -> list[dict]:
        """The runner's stderr parsed as JSON lines (every line must be one JSON object)."""
        return [json.loads(line) for line in self.stderr().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            pipe.close()
        os.unlink(self.log_path)


def text_of(events: list[dict]) -> str:
    return "".join(e["content"] for e in events if e["event"] == "chunk")


def done_of(events: list[dict]) -> dict:
    assert events[-1]["event"] == "done", events[-1]
    return events[-1]


def chat(content: str, **options: Any) -> dict:
    """A greedy chat request unless options say otherwise."""
    return {
        "id": f"t-{secrets.token_hex(3)}",
        "messages": [{"role": "user", "content": content}],
        "options": {"temperature": 0, **options},
    }


def _runner(model: Path, parallel: int = 1, args: tuple[str, ...] = ()) -> Iterator[Runner]:
    r = Runner(model, parallel=parallel, args=args)
    try:
        r.wait_ready()
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="session")
def runner(models: Path) -> Iterator[Runner]:
    """The f16 tiny-llama runner shared by every read-mostly test (two decode slots)."""
    yield from _runner(snapshot("tiny-llama"), parallel=2)


@pytest.fixture(scope="session")
def runner_4bit(models: Path) -> Iterator[Runner]:
    yield from _runner(snapshot("tiny-llama-4bit"))


@pytest.fixture(scope="session")
def runner_eos(models: Path) -> Iterator[Runner]:
    yield from _runner(snapshot("tiny-llama-eos"))


@pytest.fixture
def fresh_runner(models: Path) -> Iterator[Runner]:
    """A private runner for tests that end the process."""
    yield from _runner(snapshot("tiny-llama"))

"""Process lifecycle: start-up line, auth, health, cancellation, shutdown paths, load failures."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from conftest import BACKEND, Runner, chat, snapshot, text_of

import ollmlx_mlx

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def open_stream(
    r: Runner, body: dict
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = r.connect()
    conn.request("POST", "/v1/completion", body=json.dumps(body), headers=r.headers())
    resp = conn.getresponse()
    assert resp.status == 200
    return conn, resp


def test_refuses_to_start_without_token(models: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OLLMLX_RUNNER_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "ollmlx_mlx", "--model", str(snapshot("tiny-llama"))],
        cwd=BACKEND,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert "OLLMLX_RUNNER_TOKEN" in json.loads(proc.stderr.splitlines()[-1])["msg"]


def test_listening_line_then_loading_then_ok(models: Path) -> None:
    r = Runner(snapshot("tiny-llama"))
    try:
        line = r.listening
        assert set(line) == {"event", "host", "port", "pid", "protocol", "versions"}
        assert (line["event"], line["host"]) == ("listening", "127.0.0.1")
        assert line["pid"] == r.proc.pid and line["port"] > 0
        assert line["protocol"] == ollmlx_mlx.PROTOCOL_VERSION == 1
        assert line["versions"] == {"ollmlx_mlx": "0.1.0", "mlx": "0.32.4", "mlx_lm": "0.32.2"}
        # Importing mlx_lm alone takes about a second, so the first poll sees "loading".
        status, body = r.get("/v1/health")
        assert status == 503 and body["status"] == "loading" and body["phase"] in ("load", "warmup")
        assert r.get("/v1/status")[0] == 503
        r.wait_ready()
        assert r.get("/v1/health") == (200, {"status": "ok"})
        # Nothing but the one line ever reaches stdout, and every stderr line is JSON.
        r.complete(chat("hi", num_predict=2))
        r.proc.terminate()
        assert r.proc.wait(15) == 0
        assert r.proc.stdout.read() == ""
        assert any(rec["msg"] == "ready" for rec in r.log_lines())
    finally:
        r.stop()


def test_requests_need_the_token(runner: Runner) -> None:
    for headers in ({}, runner.headers("wrong"), {"Authorization": runner.token}):
        assert runner.get("/v1/health", headers=headers) == (401, {"error": "unauthorized"})
        status, _ = runner.post("/v1/completion", chat("hi"), headers=headers)
        assert status == 401
    assert runner.get("/v1/nope")[0] == 404
    assert runner.get("/v1/completion")[0] == 405


def test_client_disconnect_cancels_generation(runner: Runner) -> None:
    before = runner.status()["requests"]["cancelled"]
    conn, resp = open_stream(runner, chat("Tell me everything", num_predict=1900))
    assert json.loads(resp.readline())["event"] == "start"
    assert json.loads(resp.readline())["event"] == "chunk"
    conn.sock.shutdown(2)
    conn.close()

    def cancelled() -> bool:
        req = runner.status()["requests"]
        return req["cancelled"] == before + 1 and req["active"] == 0

    wait_for(cancelled, 20, "the request to be cancelled")
    records = [r for r in runner.log_lines() if r["msg"] == "request cancelled"]
    assert records and 0 < records[-1]["generated"] < 1900


def test_stdin_eof_makes_the_runner_exit(fresh_runner: Runner) -> None:
    fresh_runner.proc.stdin.close()
    assert fresh_runner.proc.wait(15) == 0


def test_sigterm_ends_streams_with_cancel_and_exits_0(fresh_runner: Runner) -> None:
    conn, resp = open_stream(fresh_runner, chat("Tell me everything", num_predict=1900))
    assert json.loads(resp.readline())["event"] == "start"
    assert json.loads(resp.readline())["event"] == "chunk"
    fresh_runner.proc.send_signal(signal.SIGTERM)
    events = [json.loads(line) for line in resp.read().splitlines()]
    conn.close()
    assert events[-1]["event"] == "done" and events[-1]["done_reason"] == "cancel"
    assert 0 < events[-1]["eval_count"] < 1900
    assert [e["event"] for e in events].count("done") == 1
    assert fresh_runner.proc.wait(15) == 0


def test_shutdown_endpoint_exits_0(fresh_runner: Runner) -> None:
    assert fresh_runner.post("/v1/shutdown", None) == (202, {})
    assert fresh_runner.proc.wait(15) == 0


@pytest.mark.parametrize(
    "model",
    [
        lambda: Path("/nonexistent/ollmlx/model"),
        lambda: snapshot("truncated", hub="hub-broken"),
    ],
    ids=["nonexistent", "truncated-shard"],
)
def test_load_failure_reports_error_then_exits_nonzero(
    models: Path, model: Callable[[], Path]
) -> None:
    r = Runner(model())

    def load_result() -> tuple[int, dict] | None:
        health = r.get("/v1/health")
        return None if health[0] == 503 else health

    try:
        status, body = wait_for(load_result, 30, "the load result")
        assert status == 500 and body["status"] == "error" and body["error"]
        assert r.get("/v1/status")[0] == 500
        assert r.proc.wait(15) != 0
        assert any(rec["level"] == "error" for rec in r.log_lines())
    finally:
        r.stop()


def test_a_request_beyond_the_slots_queues_and_can_be_cancelled_while_queued(
    runner: Runner,
) -> None:
    """The fixture has two slots: a third request queues (FIFO) behind two running ones, and a
    client that gives up while it is queued cancels it without disturbing the others."""
    before = runner.status()["requests"]["cancelled"]
    busy = [open_stream(runner, chat(f"Tell me everything {i}", num_predict=1900)) for i in (1, 2)]
    for _, stream in busy:
        assert json.loads(stream.readline())["event"] == "start"
    queued_conn, queued = open_stream(
        runner, chat("Write a poem", num_predict=8, temperature=0.9, seed=7)
    )
    assert json.loads(queued.readline())["event"] == "start"  # admitted, but not decoding
    wait_for(lambda: runner.status()["requests"]["queued"] == 1, 10, "the third job to queue")
    queued_conn.sock.shutdown(2)
    queued_conn.close()

    def queued_cancelled() -> bool:
        req = runner.status()["requests"]
        return req["cancelled"] == before + 1 and (req["active"], req["queued"]) == (2, 0)

    wait_for(queued_cancelled, 20, "the queued request to be cancelled")
    last = [r for r in runner.log_lines() if r["msg"] == "request cancelled"][-1]
    assert last["generated"] == 0  # it never got a slot
    for conn, _ in busy:
        conn.sock.shutdown(2)
        conn.close()
    wait_for(lambda: runner.status()["requests"]["active"] == 0, 20, "the busy ones to end")


def test_seeded_output_is_unaffected_by_concurrent_sampling(runner: Runner) -> None:
    """A seeded request decodes in the same batch as an unseeded sampled one (no exclusive
    lane) and still gives exactly the tokens it gives alone."""
    req = chat("Write a poem", num_predict=12, temperature=0.9, seed=11)
    alone = text_of(runner.complete(req))
    conn, busy = open_stream(runner, chat("Noise", num_predict=150, temperature=1.0))
    assert json.loads(busy.readline())["event"] == "start"
    json.loads(busy.readline())  # the busy stream is decoding
    assert text_of(runner.complete(req)) == alone
    events = [json.loads(line) for line in busy.read().splitlines()]
    conn.close()
    assert events[-1]["done_reason"] == "length"

"""Process lifecycle of the runner: arguments, bind, the one stdout line, watchdogs, shutdown.

    OLLMLX_RUNNER_TOKEN=<hex> python -m ollmlx_mlx --model <dir> --host 127.0.0.1 --port 0

Order matters (docs/runner-protocol.md, "Start-up"): bind first, then announce the bound port on
stdout (the only stdout output ever), then load on the engine thread while ``/v1/health`` reports
progress. Shutdown (SIGTERM, SIGINT, ``POST /v1/shutdown`` or stdin EOF) stops admission, ends
in-flight requests with ``done_reason: cancel`` and leaves through ``os._exit`` (mlx-engine.md
§1.15: a normal interpreter exit after MLX ran on another thread can abort in C++ teardown).
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.metadata
import json
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

# Before anything can import huggingface_hub: a mistyped path must never become a hub download.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from . import PROTOCOL_VERSION, __version__, log
from .server import RunnerServer

if TYPE_CHECKING:
    from .engine import Engine

# After a load failure the process stays up this long so the daemon can read the error from
# /v1/health (it polls every 250 ms) before the exit.
ERROR_LINGER_S = 2.0
# After a split model's engine failed while serving (a lost rank): time for the handlers to send
# the requests in flight their error events before the whole job is ended.
CRASH_LINGER_S = 0.5
# Upper bounds for an orderly shutdown; past them the process exits anyway.
ENGINE_STOP_S = 10.0
STREAM_DRAIN_S = 3.0
PR_SET_PDEATHSIG = 1
# Captured as early as possible: a change later means the parent died (see set_parent_death_signal).
_PARENT_PID = os.getppid()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ollmlx_mlx", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model directory (a Hugging Face snapshot)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 lets the OS pick a free port")
    p.add_argument("--parallel", type=int, default=1, help="sequences decoded concurrently")
    p.add_argument(
        "--prefix-cache-bytes",
        type=int,
        default=None,
        help="prefix cache budget in bytes (0: off; default: a share of free memory)",
    )
    p.add_argument(
        "--kv-bits",
        type=int,
        default=0,
        choices=[0, 4, 8],
        help="quantize KV caches past 5000 tokens to 8 or 4 bits (0: off)",
    )
    p.add_argument(
        "--distributed",
        default=None,
        choices=["ring"],
        help="one rank of a job started by mlx.launch (ollmlx_mlx.launch): split the model",
    )
    p.add_argument(
        "--split",
        default="auto",
        choices=["auto", "tensor", "pipeline"],
        help="how a distributed model is split (auto: tensor parallel where mlx_lm can)",
    )
    p.add_argument("--log-level", default="info", choices=list(log.LEVELS))
    return p.parse_args(argv)


def rank_of_job(args: argparse.Namespace) -> int:
    """This process's rank (``MLX_RANK``, set by mlx.launch); 0 when not distributed."""
    if args.distributed is None:
        return 0
    try:
        return int(os.environ.get("MLX_RANK", "0"))
    except ValueError:
        return 0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    log.configure(args.log_level)
    if args.distributed is not None:
        die_with_launcher()
    if rank_of_job(args) > 0:
        serve_rank(args)
        return
    token = os.environ.get("OLLMLX_RUNNER_TOKEN", "")
    if not token:
        log.error("OLLMLX_RUNNER_TOKEN is not set; refusing to start without authentication")
        sys.exit(2)
    # Only our own token variable is sensitive: drop it so it cannot leak into child processes.
    del os.environ["OLLMLX_RUNNER_TOKEN"]

    stop = threading.Event()
    set_parent_death_signal()
    server = RunnerServer(args.host, args.port, token, on_shutdown=stop.set)
    announce(server)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=watch_parent, args=(stop,), name="parent-watch", daemon=True).start()
    # Serve before the heavy imports below: /v1/health answers "loading" meanwhile.
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()

    engine = make_engine(args)
    server.engine = engine
    log.info("loading model", model=args.model, parallel=engine.parallel)
    engine.start()

    # Event.wait with a timeout keeps the main thread responsive to signals.
    while not stop.wait(0.2):
        if engine.phase == "error" and engine.crashed and args.distributed:
            # A lost rank: end the whole job now (the launcher and every local rank share this
            # process group), so the daemon sees its runner gone at once and starts a new job
            # for the next request, instead of sending it here while mlx.launch winds down.
            time.sleep(CRASH_LINGER_S)
            log.error("ending the distributed job", error=engine.error)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.killpg(os.getpgrp(), signal.SIGTERM)
            exit_now(1)
        if engine.phase == "error":
            time.sleep(ERROR_LINGER_S)
            log.info("exiting after load failure")
            exit_now(1)
    shut_down(server, engine)


def make_engine(args: argparse.Namespace) -> Engine:
    """The engine the command line asks for (imports mlx_lm and transformers: about a second;
    a broken install exits saying why, as JSON)."""
    try:
        from .engine import Engine
    except Exception as exc:  # noqa: BLE001 - a broken install must still say why, as JSON
        log.error("cannot import the MLX stack", error=f"{type(exc).__name__}: {exc}")
        exit_now(1)
    return Engine(
        args.model,
        parallel=args.parallel,
        prefix_cache_bytes=args.prefix_cache_bytes,
        kv_bits=args.kv_bits,
        distributed_backend=args.distributed,
        split=args.split,
    )


def die_with_launcher() -> None:
    """A rank of a split model must never outlive its job, and a rank blocked inside one of
    MLX's collectives (its ring waits forever on some peer losses, measured) may never get to
    run a signal handler or a watch thread. So a forked watchdog process, made before MLX starts
    any thread, waits for the launcher to go (our stdin is its pipe: EOF) and SIGKILLs us; it
    leaves quietly when we exit first."""
    me = os.getpid()
    if os.fork() != 0:
        return
    try:
        import select

        while os.getppid() == me:
            ready, _, _ = select.select([0], [], [], 1.0)
            if ready and not os.read(0, 4096):
                os.kill(me, signal.SIGKILL)
                break
    except (OSError, ValueError):
        pass
    os._exit(0)


def serve_rank(args: argparse.Namespace) -> None:
    """A rank other than 0: no HTTP and no stdout; its engine follows rank 0's (distributed.py).
    It ends with the job: when rank 0 shares "stop", on SIGTERM from mlx.launch, or when the
    launcher that started it is gone."""
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    stop = threading.Event()
    set_parent_death_signal()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=watch_parent, args=(stop,), name="parent-watch", daemon=True).start()
    engine = make_engine(args)
    log.info("rank started", rank=rank_of_job(args), model=args.model)
    engine.start()
    while not stop.wait(0.2):
        if engine.phase == "error":
            log.error("rank failed", error=engine.error)
            exit_now(1)
        if not engine.alive and engine.phase == "ready":
            log.info("rank done")
            exit_now(0)
    # Signalled alone: the job cannot go on without this rank, and only a non-zero exit makes
    # mlx.launch end the others (rank 0 could otherwise wait on this rank forever).
    log.info("rank stopping")
    engine.stop(ENGINE_STOP_S)
    exit_now(1)


def announce(server: RunnerServer) -> None:
    """Print the one listening line, then send anything else written to stdout to stderr."""
    host, port = server.server_address[:2]
    line = {
        "event": "listening",
        "host": host,
        "port": port,
        "pid": os.getpid(),
        "protocol": PROTOCOL_VERSION,
        "versions": {
            "ollmlx_mlx": __version__,
            # Read from package metadata: importing mlx_lm here would delay the line by ~1 s.
            "mlx": importlib.metadata.version("mlx"),
            "mlx_lm": importlib.metadata.version("mlx-lm"),
        },
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    # mlx_lm and transformers may print; C++ code may write to fd 1 directly. Point both the
    # Python object and the file descriptor at stderr so stdout carries exactly one line.
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def set_parent_death_signal() -> None:
    """Linux only: SIGTERM us when the parent dies (second line of defence after stdin EOF)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError) as exc:
        log.warning("prctl(PR_SET_PDEATHSIG) unavailable", error=str(exc))
        return
    if os.getppid() != _PARENT_PID:  # the parent died before prctl took effect
        log.warning("parent already gone at start-up")
        os.kill(os.getpid(), signal.SIGTERM)


def watch_parent(stop: threading.Event) -> None:
    """The daemon holds our stdin open and never writes; EOF means it is gone (even SIGKILLed)."""
    try:
        while sys.stdin.buffer.read1(4096):
            pass  # unexpected input is ignored; only EOF matters
    except (OSError, ValueError, AttributeError):  # closed or absent stdin counts as EOF
        pass
    log.info("stdin closed: parent gone, shutting down")
    stop.set()


def shut_down(server: RunnerServer, engine: Engine) -> None:
    log.info("shutting down")
    server.shutdown()  # stop accepting; handler threads already running carry on
    if engine.phase == "ready":
        engine.stop(ENGINE_STOP_S)  # in-flight requests get done_reason "cancel"
    # Otherwise the engine is still inside load() or warm-up, which cannot be interrupted and has
    # no requests to end: exiting right away beats making the daemon wait for SIGKILL.
    deadline = time.monotonic() + STREAM_DRAIN_S
    while server.streams and time.monotonic() < deadline:
        time.sleep(0.02)  # let handlers write the final done events
    log.info("bye")
    exit_now(0)


def exit_now(code: int) -> None:
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    main()

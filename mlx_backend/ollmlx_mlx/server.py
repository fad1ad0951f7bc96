"""HTTP handlers only: auth, routing, JSON bodies, NDJSON streaming, disconnect detection.

Handlers parse with ``protocol``, hand work to the ``Engine`` and write what comes back; they
never touch MLX. Every non-2xx body is ``{"error": "..."}`` and this is the one module that maps
failures to status codes. Streams use chunked transfer encoding so the connection can be reused
and a truncated stream is visible at the HTTP layer too.
"""

from __future__ import annotations

import hmac
import json
import queue
import select
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import log, protocol
from .protocol import RequestError

# How often a handler waiting for the next event checks whether its client went away.
POLL_S = 0.05


class RunnerServer(ThreadingHTTPServer):
    """The listening socket plus what handlers need: engine, token and a shutdown callback."""

    daemon_threads = True  # idle keep-alive connections must not block process exit
    request_queue_size = 64

    def __init__(self, host: str, port: int, token: str, on_shutdown: Callable[[], None]):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), Handler)
        self.token = token.encode()
        self.on_shutdown = on_shutdown
        self.engine: Any = None  # set by __main__ once mlx_lm is imported; None means "loading"
        self.streams = 0  # completion streams still being written, for an orderly shutdown
        self.streams_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RunnerServer

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http", line=format % args)

    # ---- dispatch ----------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        try:
            if not self._authorized():
                # The body is left unread, so this connection cannot be reused.
                self._json(401, {"error": "unauthorized"}, close=True)
                return
            path = self.path.split("?", 1)[0]
            route = ROUTES.get(path)
            if route is None:
                self._json(404, {"error": f"no such endpoint: {path}"}, close=True)
            elif route[0] != method:
                self._json(405, {"error": f"{path} expects {route[0]}"}, close=True)
            else:
                route[1](self)
        except RequestError as exc:
            self._json(exc.status, {"error": str(exc)})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left; nothing to answer
        except Exception as exc:  # noqa: BLE001 - a handler bug must not kill the server
            log.error("request failed", path=self.path, error=f"{type(exc).__name__}: {exc}")
            try:
                self._json(500, {"error": f"internal error: {exc}"}, close=True)
            except OSError:
                self.close_connection = True

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme == "Bearer" and hmac.compare_digest(value.strip().encode(), self.server.token)

    # ---- routes ------------------------------------------------------------------------------

    def health(self) -> None:
        engine = self.server.engine
        if engine is None:
            self._json(503, {"status": "loading", "phase": "load"})
        elif engine.phase == "ready":
            self._json(200, {"status": "ok"})
        elif engine.phase == "error":
            self._json(500, {"status": "error", "error": engine.error})
        else:
            self._json(503, {"status": "loading", "phase": engine.phase})

    def status(self) -> None:
        self._require_ready()
        self._json(200, self.server.engine.status())

    def tokenize(self) -> None:
        text, add_special = protocol.parse_tokenize(self._body())
        self._require_ready()
        self._json(
            200, {"tokens": self.server.engine.call(self.server.engine.tokenize, text, add_special)}
        )

    def detokenize(self) -> None:
        tokens = protocol.parse_detokenize(self._body())
        self._require_ready()
        self._json(200, {"text": self.server.engine.call(self.server.engine.detokenize, tokens)})

    def render(self) -> None:
        messages, extras = protocol.parse_render(self._body())
        self._require_ready()
        self._json(200, self.server.engine.call(self.server.engine.render, messages, extras))

    def embed(self) -> None:
        req = protocol.parse_embed(self._body())
        self._require_ready()
        engine = self.server.engine
        # Long inputs are one forward pass each; allow more than the default call timeout.
        self._json(200, engine.call(engine.embed, req, timeout=600.0))

    def cache(self) -> None:
        max_bytes = protocol.parse_cache(self._body())
        self._require_ready()
        engine = self.server.engine
        self._json(200, engine.call(engine.set_prefix_budget, max_bytes))

    def shutdown(self) -> None:
        self._body(required=False)
        self._json(202, {})
        self.server.on_shutdown()

    def completion(self) -> None:
        req = protocol.parse_completion(self._body())
        protocol.warn_ignored(req)
        self._require_ready()
        job = self.server.engine.submit(req)
        with self.server.streams_lock:
            self.server.streams += 1
        try:
            self._stream(job)
        finally:
            with self.server.streams_lock:
                self.server.streams -= 1

    def _stream(self, job: Any) -> None:
        first = self._next_event(job)
        if first is None:
            return
        if isinstance(first, RequestError):
            raise first
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        event = first
        while True:
            try:
                self._write_chunk(json.dumps(event, ensure_ascii=False).encode() + b"\n")
            except OSError:
                # A failed write means the client is gone: cancel so the engine stops decoding.
                job.cancel()
                self.close_connection = True
                return
            if event["event"] in ("done", "error"):
                break
            event = self._next_event(job)
            if event is None:
                return
        try:
            self._write_chunk(b"")  # the terminating zero-length chunk
        except OSError:
            self.close_connection = True

    def _next_event(self, job: Any) -> Any:
        """The job's next event; None (after cancelling the job) if the client disconnected."""
        while True:
            try:
                return job.events.get(timeout=POLL_S)
            except queue.Empty:
                pass
            if self._peer_closed():
                job.cancel()
                self.close_connection = True
                return None
            if not self.server.engine.alive and job.events.empty():
                # The engine exited without answering (shutdown raced with submit).
                return protocol.error_event("the runner is shutting down")

    def _peer_closed(self) -> bool:
        """True when the client closed its end: the socket is readable and a peek reads EOF.

        A client never sends anything while it waits for a streamed response, so readable means
        EOF or an error; a pipelined next request (data, not EOF) is left in the socket.
        """
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    # ---- helpers -----------------------------------------------------------------------------

    def _require_ready(self) -> None:
        engine = self.server.engine
        if engine is None:
            raise RequestError("model is loading", 503)
        if engine.phase == "error":
            raise RequestError(f"model failed to load: {engine.error}", 500)
        if engine.phase != "ready":
            raise RequestError("model is loading", 503)

    def _body(self, required: bool = True) -> Any:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise RequestError("invalid Content-Length") from None
        if length <= 0:
            if required:
                raise RequestError("missing request body")
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise RequestError(f"invalid JSON body: {exc}") from None

    def _json(self, status: int, obj: Any, close: bool = False) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


ROUTES: dict[str, tuple[str, Callable[[Handler], None]]] = {
    "/v1/health": ("GET", Handler.health),
    "/v1/status": ("GET", Handler.status),
    "/v1/completion": ("POST", Handler.completion),
    "/v1/render": ("POST", Handler.render),
    "/v1/tokenize": ("POST", Handler.tokenize),
    "/v1/detokenize": ("POST", Handler.detokenize),
    "/v1/embed": ("POST", Handler.embed),
    "/v1/cache": ("POST", Handler.cache),
    "/v1/shutdown": ("POST", Handler.shutdown),
}

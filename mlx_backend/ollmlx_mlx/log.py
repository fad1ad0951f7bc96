"""JSON-lines logging to stderr: one object a line, ``{"level", "msg", ...fields}``.

The daemon parses these lines, re-emits them through ``tracing`` and keeps the last few for error
messages, so every line must be a single JSON object. Library output that goes through the
stdlib ``logging`` module (transformers, huggingface_hub) and ``warnings`` is routed here too.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from typing import Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}

_lock = threading.Lock()
_threshold = LEVELS["info"]


def configure(level: str) -> None:
    """Set the minimum level and capture stdlib logging and warnings as JSON lines."""
    global _threshold
    _threshold = LEVELS[level]
    root = logging.getLogger()
    root.handlers[:] = [_StdlibHandler()]
    root.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    logging.captureWarnings(True)


def log(level: str, msg: str, **fields: Any) -> None:
    """Write one log line if ``level`` passes the threshold. Never raises."""
    if LEVELS[level] < _threshold:
        return
    line = json.dumps({"level": level, "msg": msg, **fields}, default=str, ensure_ascii=False)
    with _lock:
        try:
            # sys.__stderr__, not sys.stderr: __main__ points sys.stdout at stderr, and nothing
            # may ever swap the real stderr out from under the daemon's log pump.
            sys.__stderr__.write(line + "\n")
            sys.__stderr__.flush()
        except (OSError, ValueError):
            pass  # stderr is gone (daemon died): nothing useful left to do with a log line


def debug(msg: str, **fields: Any) -> None:
    log("debug", msg, **fields)


def info(msg: str, **fields: Any) -> None:
    log("info", msg, **fields)


def warning(msg: str, **fields: Any) -> None:
    log("warning", msg, **fields)


def error(msg: str, **fields: Any) -> None:
    log("error", msg, **fields)


class _StdlibHandler(logging.Handler):
    """Forward stdlib log records (from libraries) as JSON lines, tagged with their logger."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            level = "error"
        elif record.levelno >= logging.WARNING:
            level = "warning"
        elif record.levelno >= logging.INFO:
            level = "info"
        else:
            level = "debug"
        log(level, record.getMessage(), logger=record.name)

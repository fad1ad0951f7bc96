"""Wire types of the runner protocol (docs/runner-protocol.md): request parsing and event shapes.

This module owns validation: a request body becomes a typed value exactly once, here, and every
problem becomes a ``RequestError`` whose message names the field. It knows nothing about HTTP
status codes beyond the one a ``RequestError`` carries, and nothing about MLX.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from . import log


class RequestError(Exception):
    """A bad request: the server answers ``status`` (400 by default) with this message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Options:
    """Ollama generation options the runner honours, with Ollama's defaults.

    The daemon has already defaulted and validated them; the runner still checks types so a
    protocol bug shows up as a clear 400 instead of a confusing failure deep in MLX.
    """

    num_keep: int = 4
    num_predict: int = -1
    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    seed: int = -1
    stop: tuple[str, ...] = ()
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    num_ctx: int = 2048


# Ollama's type names, used in its error messages (`option "x" must be of type float`).
_KINDS = {f.name: f.type for f in dataclasses.fields(Options)}

# ``format: "json"``: any JSON object, as in Ollama.
JSON_OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}
MAX_TOP_LOGPROBS = 20
# Arguments of ``apply_chat_template`` that the runner sets itself; a template kwarg may not
# override them.
_RESERVED_TEMPLATE_KWARGS = frozenset(
    {
        "conversation",
        "messages",
        "tools",
        "tokenize",
        "add_generation_prompt",
        "return_dict",
        "chat_template",
    }
)


@dataclass(frozen=True)
class ChatExtras:
    """What a chat request adds to the template call: ``tools`` and extra template kwargs."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    template_kwargs: dict[str, Any] = field(default_factory=dict)

    def template_args(self) -> dict[str, Any]:
        """Keyword arguments for ``apply_chat_template`` (no ``tools`` key when there are none)."""
        return {**self.template_kwargs, **({"tools": self.tools} if self.tools else {})}


@dataclass
class CompletionRequest:
    """A validated ``POST /v1/completion`` body. Exactly one of ``messages`` and ``prompt``."""

    id: str
    messages: list[dict[str, Any]] | None
    prompt: str | None
    context: list[int]
    options: Options
    truncate: bool = True
    shift: bool = True  # context shift when generation reaches num_ctx
    return_context: bool = False
    ignored_options: list[str] = field(default_factory=list)
    extras: ChatExtras = field(default_factory=ChatExtras)
    format: dict[str, Any] | None = None  # a JSON schema; "json" is JSON_OBJECT_SCHEMA
    constrain_after: str | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    think_tags: tuple[str, str] | None = None
    # Text put after the rendered prompt, as if the model had begun its reply with it (a forced
    # tool call starts with the family's opening marker).
    prefill: str | None = None


def parse_options(raw: Any) -> tuple[Options, list[str]]:
    """Validate an ``options`` object; returns the options and the unknown keys (ignored)."""
    if raw is None:
        return Options(), []
    if not isinstance(raw, dict):
        raise RequestError('"options" must be an object')
    values: dict[str, Any] = {}
    ignored = []
    for key, value in raw.items():
        kind = _KINDS.get(key)
        if kind is None:
            ignored.append(key)
        elif value is not None:  # JSON null means "use the default", as in Ollama
            values[key] = _coerce(key, kind, value)
    opts = Options(**values)
    if opts.num_ctx < 1:
        raise RequestError('option "num_ctx" must be at least 1')
    if opts.repeat_last_n < -1:
        raise RequestError('option "repeat_last_n" must be -1 (num_ctx), 0 (off) or positive')
    if opts.repeat_penalty < 0:
        raise RequestError('option "repeat_penalty" must not be negative')
    return opts, ignored


def _coerce(key: str, kind: str, value: Any) -> Any:
    # bool is a subclass of int in Python, but JSON true is not a number: reject it explicitly.
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int":
        if not is_number:
            raise RequestError(f'option "{key}" must be of type integer')
        # Ollama accepts floats for integer options and truncates them (Go's int64(f)).
        return int(value)
    if kind == "float":
        if not is_number:
            raise RequestError(f'option "{key}" must be of type float')
        return float(value)
    # The only other kind is the list of stop strings.
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise RequestError(f'option "{key}" must be of type array of strings')
    return tuple(value)


def parse_completion(body: Any) -> CompletionRequest:
    """Validate a ``POST /v1/completion`` body."""
    body = _object(body)
    messages, prompt = body.get("messages"), body.get("prompt")
    if (messages is None) == (prompt is None):
        raise RequestError('exactly one of "messages" and "prompt" is required')
    if messages is not None:
        messages = parse_messages(messages)
    elif not isinstance(prompt, str):
        raise RequestError('"prompt" must be a string')
    options, ignored = parse_options(body.get("options"))
    req_id = body.get("id", "")
    if not isinstance(req_id, str):
        raise RequestError('"id" must be a string')
    return CompletionRequest(
        id=req_id,
        messages=messages,
        prompt=prompt,
        context=parse_tokens(body.get("context") or [], "context"),
        options=options,
        truncate=_bool(body, "truncate", True),
        shift=_bool(body, "shift", True),
        return_context=_bool(body, "return_context", False),
        ignored_options=ignored,
        extras=parse_extras(body),
        format=parse_format(body.get("format")),
        constrain_after=_optional_text(body, "constrain_after"),
        logprobs=_bool(body, "logprobs", False),
        top_logprobs=parse_top_logprobs(body.get("top_logprobs")),
        think_tags=parse_think_tags(body.get("think_tags")),
        prefill=_optional_text(body, "prefill"),
    )


def parse_extras(body: dict[str, Any]) -> ChatExtras:
    """``tools`` (an array of objects) and ``template_kwargs`` (an object); both optional."""
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise RequestError('"tools" must be an array of objects')
    kwargs = body.get("template_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise RequestError('"template_kwargs" must be an object')
    reserved = sorted(_RESERVED_TEMPLATE_KWARGS.intersection(kwargs))
    if reserved:
        raise RequestError(f'"template_kwargs" may not set {", ".join(reserved)}')
    return ChatExtras(tools=tools, template_kwargs=kwargs)


def parse_format(raw: Any) -> dict[str, Any] | None:
    """``null`` (free text), ``"json"`` (any JSON object) or a JSON schema object.

    Only the shape is checked here; the schema itself is compiled (and refused with a 400 if
    llguidance cannot use it) when the engine admits the request.
    """
    if raw is None:
        return None
    if raw == "json":
        return JSON_OBJECT_SCHEMA
    if not isinstance(raw, dict):
        raise RequestError('"format" must be null, "json" or a JSON schema object')
    return raw


def parse_top_logprobs(raw: Any) -> int:
    if raw is None:
        return 0
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= MAX_TOP_LOGPROBS:
        raise RequestError(f'"top_logprobs" must be an integer from 0 to {MAX_TOP_LOGPROBS}')
    return raw


def parse_think_tags(raw: Any) -> tuple[str, str] | None:
    if raw is None:
        return None
    if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(t, str) and t for t in raw)):
        raise RequestError('"think_tags" must be an array of two non-empty strings')
    return raw[0], raw[1]


def parse_messages(raw: Any) -> list[dict[str, Any]]:
    """Check chat messages: objects with a string ``role`` and string ``content``.

    Other keys (images, tool_calls, thinking...) are passed through to the chat template untouched.
    """
    if not isinstance(raw, list) or not raw:
        raise RequestError('"messages" must be a non-empty array')
    out = []
    for i, msg in enumerate(raw):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise RequestError(f'"messages[{i}]" must be an object with a string "role"')
        content = msg.get("content", "")
        if not isinstance(content, str):
            raise RequestError(f'"messages[{i}].content" must be a string')
        out.append({**msg, "content": content})
    return out


def parse_tokens(raw: Any, name: str) -> list[int]:
    if not isinstance(raw, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in raw
    ):
        raise RequestError(f'"{name}" must be an array of non-negative integers')
    return raw


@dataclass(frozen=True)
class EmbedRequest:
    """A validated ``POST /v1/embed`` body."""

    input: list[str]
    truncate: bool = True
    num_ctx: int = Options.num_ctx


def parse_embed(body: Any) -> EmbedRequest:
    """Validate a ``POST /v1/embed`` body: a list of non-empty strings (an empty list is fine)."""
    body = _object(body)
    inputs = body.get("input")
    if not isinstance(inputs, list) or not all(isinstance(s, str) for s in inputs):
        raise RequestError('"input" must be an array of strings')
    for i, text in enumerate(inputs):
        if not text:
            raise RequestError(f'"input[{i}]" is empty')
    num_ctx = body.get("num_ctx", Options.num_ctx)
    if num_ctx is None:
        num_ctx = Options.num_ctx
    if not isinstance(num_ctx, (int, float)) or isinstance(num_ctx, bool):
        raise RequestError('"num_ctx" must be an integer')
    if int(num_ctx) < 1:
        raise RequestError('"num_ctx" must be at least 1')
    return EmbedRequest(input=inputs, truncate=_bool(body, "truncate", True), num_ctx=int(num_ctx))


def parse_cache(body: Any) -> int:
    """``POST /v1/cache`` ``{"max_bytes": n}``: the prefix cache's new budget (0 empties it)."""
    value = _object(body).get("max_bytes")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RequestError('"max_bytes" must be a non-negative integer')
    return value


def parse_tokenize(body: Any) -> tuple[str, bool]:
    body = _object(body)
    text = body.get("text")
    if not isinstance(text, str):
        raise RequestError('"text" must be a string')
    return text, _bool(body, "add_special", False)


def parse_detokenize(body: Any) -> list[int]:
    return parse_tokens(_object(body).get("tokens"), "tokens")


def parse_render(body: Any) -> tuple[list[dict[str, Any]], ChatExtras]:
    """``{"messages": [...], "tools"?: [...], "template_kwargs"?: {...}}``."""
    body = _object(body)
    return parse_messages(body.get("messages")), parse_extras(body)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    return body


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise RequestError(f'"{key}" must be a non-empty string')
    return value


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise RequestError(f'"{key}" must be a boolean')
    return value


def warn_ignored(req: CompletionRequest) -> None:
    if req.ignored_options:
        log.warning("ignoring unknown options", id=req.id, options=sorted(req.ignored_options))


# ---- events (one JSON object per NDJSON line) ------------------------------------------------


def start_event(prompt_tokens: int, truncated_messages: int, thinking: bool = False) -> dict:
    """``thinking`` (the prompt ends inside an open reasoning block) appears only when true."""
    ev: dict[str, Any] = {
        "event": "start",
        "prompt_tokens": prompt_tokens,
        "truncated_messages": truncated_messages,
    }
    if thinking:
        ev["thinking"] = True
    return ev


def chunk_event(content: str, logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``logprobs`` (one entry per token whose text is in this chunk) only when asked for."""
    ev: dict[str, Any] = {"event": "chunk", "content": content}
    if logprobs is not None:
        ev["logprobs"] = logprobs
    return ev


def done_event(
    done_reason: str,
    prompt_eval_count: int,
    prompt_eval_duration: int,
    eval_count: int,
    eval_duration: int,
    context: list[int] | None = None,
    stop_sequence: str | None = None,
    cached_tokens: int = 0,
) -> dict[str, Any]:
    """``cached_tokens``: how many of the ``prompt_eval_count`` tokens came from the prefix
    cache (not evaluated again)."""
    ev = {
        "event": "done",
        "done_reason": done_reason,
        "prompt_eval_count": prompt_eval_count,
        "prompt_eval_duration": prompt_eval_duration,
        "eval_count": eval_count,
        "eval_duration": eval_duration,
        "cached_tokens": cached_tokens,
    }
    if context is not None:
        ev["context"] = context
    if stop_sequence is not None:
        ev["stop_sequence"] = stop_sequence
    return ev


def error_event(message: str) -> dict[str, Any]:
    return {"event": "error", "error": message}

"""Constrained decoding for ``format`` (a JSON schema): llguidance, as an mlx_lm logits processor.

Owns three steps, each at its own time:

- ``build_tokenizer``: the llguidance view of the model's vocabulary, built once per model at
  load (it walks the whole vocabulary);
- ``compile_schema``: one ``LLMatcher`` per request, compiled when the request is admitted, so
  an invalid or unsupported schema is a 400 before the stream starts;
- ``Constraint``: the per-sequence logits processor. On every decode step it feeds the token
  sampled last into the matcher, asks it for the bitmask of allowed next tokens and sets every
  other logit to -inf. Once the grammar is complete the only allowed tokens are the EOS ids, so
  the sequence ends with ``done_reason: "stop"``.

The JSON is compact (no free whitespace): fewer tokens, and one fewer way for a weak model to
wander. Each sequence has its own matcher, so concurrent sequences are independent. Runs on the
engine thread; llguidance itself holds no MLX state.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import mlx.core as mx
import numpy as np

try:
    import llguidance
    import llguidance.hf
    from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask
except ImportError:  # a Python without it still serves text; `format` is refused with a 501
    llguidance = None

# What to install when llguidance is missing (the pin of mlx_backend/requirements.txt).
INSTALL_HINT = "pip install 'llguidance==1.9.1'"

from . import log
from .protocol import RequestError

# llguidance's JSON options: no whitespace between tokens (a schema's "x-guidance" may override).
COMPILE_DEFAULTS: dict[str, Any] = {"whitespace_flexible": False}
# Words of llguidance's reasons that mean "valid JSON Schema, but not something it implements".
_UNSUPPORTED_HINTS = ("not supported", "unimplemented", "unknown format", "unsupported")
# Keywords whose value is a map of name -> subschema, a list of subschemas, or one subschema.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains")


def build_tokenizer(
    tokenizer: Any, vocab_size: int, eos_ids: Iterable[int]
) -> llguidance.LLTokenizer | None:
    """The llguidance tokenizer for a model, or None (with a warning) if it cannot be built;
    ``format`` requests are then refused. ``vocab_size`` is the logits width, which can exceed
    the tokenizer's own vocabulary (padded embeddings); the extra ids are never allowed."""
    if llguidance is None:
        log.warning(
            "structured output is unavailable: llguidance is not installed, so requests with"
            f" `format` get a 501; install it into this Python: {INSTALL_HINT}",
            python=sys.executable,
        )
        return None
    hf = getattr(tokenizer, "_tokenizer", tokenizer)  # mlx_lm's TokenizerWrapper wraps the HF one
    try:
        return llguidance.hf.from_tokenizer(hf, n_vocab=vocab_size, eos_token=sorted(eos_ids))
    except Exception as exc:  # noqa: BLE001 - slow or unusual tokenizers: no structured output
        log.warning("structured output is unavailable for this tokenizer", error=str(exc))
        return None


def compile_schema(llt: llguidance.LLTokenizer | None, schema: dict[str, Any]) -> Any:
    """A fresh ``LLMatcher`` for ``schema``; a ``RequestError`` (400) if llguidance refuses it."""
    if llguidance is None:
        raise RequestError(
            f"structured output needs llguidance in the MLX runner's Python: {INSTALL_HINT}", 501
        )
    if llt is None:
        raise RequestError("this model's tokenizer does not support structured output", 501)
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            close_objects(schema), defaults=COMPILE_DEFAULTS
        )
    except ValueError as exc:
        raise _schema_error(str(exc)) from None
    matcher = llguidance.LLMatcher(llt, grammar, log_level=0)
    if matcher.is_error():
        raise _schema_error(matcher.get_error())
    return matcher


def close_objects(schema: Any) -> Any:
    """A copy of ``schema`` where an object schema that lists ``properties`` but says nothing of
    ``additionalProperties`` allows no other keys. This is what Ollama's llama.cpp grammars do
    (its json-schema-to-grammar defaults ``additionalProperties`` to false): without it a model
    may add keys of its own after the ones asked for. An explicit value is kept."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: close_objects(sub) for name, sub in out[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [close_objects(sub) for sub in out[key]]
    for key in _SCHEMA_ONE:
        if key in out:
            out[key] = close_objects(out[key])
    if isinstance(out.get("properties"), dict) and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _schema_error(reason: str) -> RequestError:
    lowered = reason.lower()
    kind = "unsupported" if any(h in lowered for h in _UNSUPPORTED_HINTS) else "invalid"
    return RequestError(f"{kind} JSON schema: {reason.strip()}")


def apply_bitmask(logits: mx.array, words: np.ndarray) -> mx.array:
    """``logits`` (1, V) with every token whose bit is clear in ``words`` (int32, 1 x W) at
    -inf. Only the W*4 bytes of the bitmask cross to the device; the unpacking is one compiled
    kernel there."""
    packed = mx.array(words.view(np.uint32))
    if packed.shape[-1] * 32 < logits.shape[-1]:  # ids past llguidance's vocabulary: never
        packed = mx.pad(packed, [(0, 0), (0, (logits.shape[-1] + 31) // 32 - packed.shape[-1])])
    return _masked(logits, packed)


@mx.compile
def _masked(logits: mx.array, packed: mx.array) -> mx.array:
    # Made inside the compiled function: MLX arrays belong to the thread that made them, and a
    # module-level constant would belong to the importing thread, not the engine thread.
    shifts = mx.arange(32, dtype=mx.uint32)
    bits = ((packed[..., None] >> shifts) & 1).reshape(1, -1)
    return mx.where(bits[:, : logits.shape[-1]].astype(mx.bool_), logits, -mx.inf)


class Constraint:
    """The logits processor of one sequence (``f(tokens, logits) -> logits``).

    ``tokens`` holds the prompt plus every token sampled so far, so the tokens past ``_seen`` are
    the ones the matcher has not consumed yet (one per decode step). With ``after`` set, the
    constraint starts inactive and watches the generated bytes; from the token after the one
    that completes ``after`` (e.g. ``</think>``), it masks.
    """

    def __init__(
        self,
        matcher: Any,
        llt: llguidance.LLTokenizer,
        prompt_len: int,
        eos_ids: Iterable[int],
        after: str | None = None,
    ):
        self._matcher = matcher
        self._llt = llt
        self._seen = prompt_len
        self._generated = 0  # generated tokens consumed (or watched) so far
        self._eos = frozenset(eos_ids)
        self._after = after.encode() if after else b""
        self._tail = b""  # the last generated bytes while waiting for ``after``
        self._words = allocate_token_bitmask(1, llt.vocab_size)
        self.active = not self._after

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        # Reading the new token waits for the previous step (the mask depends on it). Starting
        # this step's forward pass first with ``mx.async_eval(logits)``, to overlap it with the
        # mask computation, was measured slower on CPU (an extra evaluation per step costs more
        # than the ~10 us mask), so the whole step is evaluated once, by mlx_lm.
        for token in self._new_tokens(tokens):
            if self.active:
                self._consume(token)
            else:
                self._watch(token)
        if not self.active:
            return logits
        fill_next_token_bitmask(self._matcher, self._words)
        if self._matcher.is_error():
            raise RuntimeError(f"constrained decoding failed: {self._matcher.get_error()}")
        return apply_bitmask(logits, self._words)

    def _new_tokens(self, tokens: mx.array) -> list[int]:
        count = tokens.shape[0]
        if count <= self._seen:
            return []
        new = tokens[self._seen :].tolist()
        self._seen = count
        self._generated += len(new)
        return new

    def rebase(self, window: int, generated: int) -> None:
        """After a context shift ``tokens`` is a new history of ``window`` tokens ending with
        the latest of the ``generated`` tokens: those this processor has not consumed yet are
        its last ``generated - consumed``."""
        self._seen = window - (generated - self._generated)

    def _consume(self, token: int) -> None:
        if token in self._eos:  # the sequence ends here; nothing follows it
            return
        if not self._matcher.consume_token(token):
            raise RuntimeError(f"constrained decoding failed: {self._matcher.get_error()}")

    def _watch(self, token: int) -> None:
        self._tail += self._llt.decode_bytes([token])
        if self._after in self._tail:
            self.active = True
            log.debug("constraint active", after=self._after.decode(errors="replace"))
            return
        # Keep only what could still be the start of ``after``.
        self._tail = self._tail[max(0, len(self._tail) - len(self._after) + 1) :]

"""Token log-probabilities for ``logprobs`` / ``top_logprobs``.

The values are mlx_lm's ``generate_step`` logprobs: the log-softmax of the model's logits after
the logits processors (penalties, and the ``format`` mask, so a token the grammar forbids has
-inf and is never listed) and before the sampler's transforms (temperature, top_k, top_p,
min_p). Entries wait in a ``LogprobTrail`` until the text of their token is emitted, so each
entry travels in the chunk that carries (the end of) its token's text. Runs on the engine thread.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import mlx.core as mx


def token_bytes_of(tokenizer: Any, llt: Any | None) -> Callable[[int], bytes]:
    """A cached ``id -> bytes`` for a model: llguidance's exact token bytes when available (a
    token can hold part of a UTF-8 character), else the tokenizer's decoding of the lone token."""
    if llt is not None:
        return functools.lru_cache(maxsize=None)(lambda t: llt.decode_bytes([t]))
    return functools.lru_cache(maxsize=None)(lambda t: tokenizer.decode([t]).encode())


class LogprobTrail:
    """Log-probability entries of generated tokens whose text is not emitted yet."""

    def __init__(self, top_n: int, token_bytes: Callable[[int], bytes]):
        self._top_n = top_n
        self._bytes = token_bytes
        self._pending: list[dict[str, Any]] = []

    def add(self, token: int, logprobs: mx.array) -> None:
        """Record ``token``, sampled from the distribution ``logprobs`` (full vocabulary)."""
        ids = mx.array([token])
        if self._top_n:
            ids = mx.concatenate(
                [ids, mx.argpartition(-logprobs, kth=self._top_n - 1)[: self._top_n]]
            )
        values = logprobs[ids].astype(mx.float32)
        mx.eval(ids, values)
        pairs = list(zip(ids.tolist(), values.tolist(), strict=True))
        entry = self._describe(*pairs[0])
        if self._top_n:
            top = sorted(pairs[1:], key=lambda p: (-p[1], p[0]))  # ties: lowest id, as argmax
            entry["top_logprobs"] = [self._describe(t, v) for t, v in top if math.isfinite(v)]
        self._pending.append(entry)

    def take(self) -> list[dict[str, Any]]:
        """The pending entries, handed over to the chunk being emitted."""
        out, self._pending = self._pending, []
        return out

    def _describe(self, token: int, value: float) -> dict[str, Any]:
        raw = self._bytes(token)
        # float16 rounding can put the log-softmax of a dominant token a hair above 0.
        return {
            "token": raw.decode("utf-8", "replace"),
            "logprob": min(value, 0.0),
            "bytes": list(raw),
        }

"""The prefix cache: KV caches of earlier prompts, reused by later prompts that start the same way.

Chat clients resend the whole history every turn, so turn N's prompt starts with turn N-1's
prompt and reply. Each finished (or cancelled) sequence leaves its KV cache here, keyed by the
exact tokens the cache holds; a new prompt takes a copy of the entry that shares the longest
prefix with it and prefills only the rest.

Rules (serving-performance.md §2, §6.3, P6–P8):

- **Never an empty rest.** At least the prompt's last token is always fed, so the model computes
  the logits of the first new token itself; an exact full-prompt hit reuses ``len - 1`` tokens.
- **Trimmable caches** (plain ``KVCache`` layers) serve any shared prefix: the copy is trimmed
  back to the common part. A stored entry that is a prefix of a newer one is dropped: the newer
  one serves it by trimming.
- **Caches that cannot be trimmed** (sliding windows past their size, recurrent layers) serve
  only prompts that extend the entry exactly; everything else misses. Never wrong output.
- **Budget.** Entries are counted by their arrays' bytes; past the byte budget the least
  recently *used* entries go first (a hit refreshes an entry). An entry larger than the whole
  budget is not stored.
- **Copies.** A hit is a ``deepcopy``: MLX shares the buffers until the live copy is first
  written, and the stored entry is never changed.

Everything here runs on the engine thread (MLX objects are thread-affine); ``nbytes`` and
``stats`` are plain numbers that other threads may read.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache

from . import log


@dataclass(eq=False)  # identity: entries hold arrays
class _Entry:
    tokens: np.ndarray  # the tokens whose keys and values ``cache`` holds, in order
    cache: list[Any]
    nbytes: int
    trimmable: bool
    used: int  # recency tick: higher is more recent


@dataclass
class Hit:
    """A fetched prefix: a private copy of the cache and how many prompt tokens it covers."""

    cache: list[Any]
    tokens: int


def cache_nbytes(cache: list[Any]) -> int:
    return sum(int(c.nbytes) for c in cache)


def cache_tokens(cache: list[Any]) -> int | None:
    """How many tokens a single-sequence cache holds, when its layers say (``offset``)."""
    for c in cache:
        offset = getattr(c, "offset", None)
        if isinstance(offset, int):
            return offset
    return None


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(a.shape[0], b.shape[0])
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if diff.size else n


class PrefixCache:
    def __init__(self, budget: int):
        self.budget = max(0, int(budget))
        self._entries: list[_Entry] = []
        self._tick = itertools.count(1)
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self.reused_tokens = 0
        # Distributed: agrees a size over the ranks (their largest), so that every rank stores
        # and evicts alike; called at the same point of every insert on every rank.
        self.agree: Callable[[int], int] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, int]:
        return {
            "bytes": self.nbytes,
            "budget": self.budget,
            "entries": len(self._entries),
            "hits": self.hits,
            "misses": self.misses,
            "reused_tokens": self.reused_tokens,
        }

    def fetch(self, prompt: list[int]) -> Hit | None:
        """The longest usable prefix of ``prompt`` (leaving at least one token to feed)."""
        if not self._entries or len(prompt) < 2:
            self.misses += 1
            return None
        query = np.asarray(prompt, dtype=np.int64)
        limit = len(prompt) - 1
        best: tuple[int, int, _Entry] | None = None  # (usable, -trim, entry)
        for entry in self._entries:
            shared = common_prefix(entry.tokens, query)
            length = entry.tokens.shape[0]
            if entry.trimmable:
                usable = min(shared, limit)
            else:
                usable = length if shared == length and length <= limit else 0
            if usable <= 0:
                continue
            key = (usable, usable - length)
            if best is None or key > best[:2]:
                best = (usable, usable - length, entry)
        if best is None:
            self.misses += 1
            return None
        usable, _, entry = best
        cache = copy.deepcopy(entry.cache)
        excess = entry.tokens.shape[0] - usable
        if excess and trim_prompt_cache(cache, excess) != excess:
            # Cannot happen for an entry found trimmable; refuse rather than risk wrong output.
            log.warning("prefix cache: trim failed; entry dropped", tokens=len(entry.tokens))
            self._drop(entry)
            self.misses += 1
            return None
        entry.used = next(self._tick)
        self.hits += 1
        self.reused_tokens += usable
        return Hit(cache, usable)

    def insert(self, tokens: list[int], cache: list[Any]) -> None:
        """Store ``cache``, which holds exactly ``tokens``. The cache must not be written again."""
        if not self.budget or not tokens:
            return
        held = cache_tokens(cache)
        fits = bool(cache) and (held is None or held == len(tokens))
        if not fits:
            log.debug("prefix cache: size mismatch; not stored", tokens=len(tokens), held=held)
        nbytes = cache_nbytes(cache) if fits else self.budget + 1
        if self.agree is not None:
            nbytes = self.agree(nbytes)
        if nbytes > self.budget:
            return
        key = np.asarray(tokens, dtype=np.int64)
        trimmable = can_trim_prompt_cache(cache)
        for old in list(self._entries):
            length = old.tokens.shape[0]
            same = length == key.shape[0] and common_prefix(old.tokens, key) == length
            covered = (
                trimmable and length <= key.shape[0] and common_prefix(old.tokens, key) == length
            )
            if same or covered:
                self._drop(old)
        self._entries.append(_Entry(key, cache, nbytes, trimmable, next(self._tick)))
        self.nbytes += nbytes
        self.shrink(self.budget)

    def shrink(self, max_bytes: int) -> int:
        """Drop least recently used entries until at most ``max_bytes`` are held; returns the
        bytes freed."""
        freed = 0
        while self._entries and self.nbytes > max(0, max_bytes):
            victim = min(self._entries, key=lambda e: e.used)
            freed += victim.nbytes
            self._drop(victim)
        return freed

    def set_budget(self, budget: int) -> None:
        self.budget = max(0, int(budget))
        self.shrink(self.budget)

    def clear(self) -> None:
        self.shrink(0)

    def _drop(self, entry: _Entry) -> None:
        self._entries.remove(entry)
        self.nbytes -= entry.nbytes

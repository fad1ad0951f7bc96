"""Ollama sampling options -> mlx_lm samplers and logits processors.

Owns only the mapping of option values (what "off" means for each) and two sampler rules that
batching relies on:

- rows of a batch sample in ONE call only when they hold the *same sampler object*
  (serving-performance.md P3), so unseeded samplers are shared per option tuple;
- a seeded request gets its own sampler that draws from its own PRNG key sequence (never MLX's
  global RNG), so its output is the same whether it runs alone or beside other requests.

The samplers are MLX functions: they are built and called on the engine thread only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import mlx.core as mx
from mlx_lm.sample_utils import (
    apply_min_p,
    apply_top_k,
    apply_top_p,
    make_logits_processors,
    make_sampler,
)

from .protocol import Options

Sampler = Callable[[mx.array], mx.array]


def _filters(opts: Options, vocab_size: int) -> tuple[float, float, int]:
    """``(top_p, min_p, top_k)`` with "off" spelled as mlx_lm spells it. mlx_lm rejects top_k
    outside (0, vocab): a top_k that keeps the whole vocabulary is "off"."""
    top_k = opts.top_k if 0 < opts.top_k < vocab_size else 0
    top_p = opts.top_p if 0 < opts.top_p < 1 else 0.0
    return top_p, max(opts.min_p, 0.0), top_k


def sampler_for(opts: Options, vocab_size: int) -> Sampler:
    """Temperature 0 (or less) is greedy; top_k 0 and top_p >= 1 turn those filters off.

    A request with ``seed >= 0`` gets a fresh :class:`SeededSampler`; any other request gets the
    one shared sampler of its option values."""
    if opts.temperature <= 0:
        return make_sampler(temp=0.0)  # mlx_lm's one greedy_sampler object
    top_p, min_p, top_k = _filters(opts, vocab_size)
    if opts.seed >= 0:
        return SeededSampler(opts.seed, opts.temperature, top_p, min_p, top_k)
    return _shared_sampler(opts.temperature, top_p, min_p, top_k)


@functools.lru_cache(maxsize=64)
def _shared_sampler(temp: float, top_p: float, min_p: float, top_k: int) -> Sampler:
    # Stateless closures, safe to share; cached so that equal options give the same object.
    return make_sampler(temp=temp, top_p=top_p, min_p=min_p, top_k=top_k)


def _mix(seed: int, counter: int) -> int:
    """SplitMix64 of ``seed`` and a draw counter (Ollama's mixSeed), as a 64-bit key seed."""
    z = (seed + (counter + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


class SeededSampler:
    """Samples with mlx_lm's filters (top_p, min_p, top_k, in mlx_lm's order) and a PRNG key of
    its own: draw ``n`` uses the key ``mix(seed, n)``. Same seed and same logits give the same
    tokens, whatever else is in the batch."""

    def __init__(self, seed: int, temp: float, top_p: float, min_p: float, top_k: int):
        self._seed = seed
        self._inv_temp = 1.0 / temp
        self._top_p, self._min_p, self._top_k = top_p, min_p, top_k
        self._draws = 0

    def __call__(self, logprobs: mx.array) -> mx.array:
        if self._top_p:
            logprobs = apply_top_p(logprobs, self._top_p)
        if self._min_p:
            logprobs = apply_min_p(logprobs, self._min_p, 1)
        if self._top_k:
            logprobs = apply_top_k(logprobs, self._top_k)
        key = mx.random.key(_mix(self._seed, self._draws))
        self._draws += 1
        return mx.random.categorical(logprobs * self._inv_temp, key=key)


def logits_processors_for(opts: Options) -> list[Callable[[Any, Any], Any]]:
    """Penalties over the last ``repeat_last_n`` tokens (-1: num_ctx, 0: no penalties at all).

    ``repeat_penalty`` 1.0 is "off" (multiplying by 1 is a no-op anyway, but skipping it saves a
    gather per step); mlx_lm skips 0 as well. Ollama uses the same window for the presence and
    frequency penalties, where mlx_lm defaults each to 20 tokens.
    """
    window = opts.num_ctx if opts.repeat_last_n == -1 else opts.repeat_last_n
    if window == 0:
        return []
    repeat = opts.repeat_penalty if opts.repeat_penalty != 1.0 else None
    return make_logits_processors(
        repetition_penalty=repeat,
        repetition_context_size=window,
        presence_penalty=opts.presence_penalty or None,
        presence_context_size=window,
        frequency_penalty=opts.frequency_penalty or None,
        frequency_context_size=window,
    )

"""Ollama sampling options -> mlx_lm samplers and logits processors.

Owns only the mapping of option values (what "off" means for each); it holds no state and runs on
the engine thread, because the samplers it builds are MLX functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlx_lm.sample_utils import make_logits_processors, make_sampler

from .protocol import Options


def sampler_for(opts: Options, vocab_size: int) -> Callable[[Any], Any]:
    """Temperature 0 (or less) is greedy; top_k 0 and top_p >= 1 turn those filters off."""
    if opts.temperature <= 0:
        return make_sampler(temp=0.0)
    # mlx_lm rejects top_k outside (0, vocab): a top_k that keeps the whole vocabulary is "off".
    top_k = opts.top_k if 0 < opts.top_k < vocab_size else 0
    top_p = opts.top_p if 0 < opts.top_p < 1 else 0.0
    return make_sampler(temp=opts.temperature, top_p=top_p, min_p=max(opts.min_p, 0.0), top_k=top_k)


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

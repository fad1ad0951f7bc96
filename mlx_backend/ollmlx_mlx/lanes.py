"""The two ways the engine runs sequences: the batch lane and the solo lane.

- ``BatchLane`` (text models whose every cache layer can ``merge``): continuous batching with
  mlx_lm's ``BatchGenerator``. Sequences join and leave at token boundaries; every decode step
  is one batched forward pass for all of them, and prompts are prefilled in chunks between decode
  steps. Each row keeps its own sampler, logits processors (penalties, the ``format``
  constraint), token limit and EOS stop; prompts may start from a prefix-cache hit.
- ``SoloLane`` (vision models through mlx-vlm, and quantized KV caches, which cannot merge): one
  ``generate_step`` generator per sequence, stepped round-robin, one token each per turn.

Both report tokens the same way, as ``Token`` values, and hand back a finished or removed
sequence's KV cache (``Kept``) so the engine can store it in the prefix cache. They run on the
engine thread only (MLX objects are thread-affine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
from mlx.utils import tree_flatten
from mlx_lm.generate import BatchGenerator, StopSequences, generate_step
from mlx_lm.models.cache import KVCache, RotatingKVCache, make_prompt_cache

from . import vlm

# Tokens per prefill chunk when nothing else is decoding (mlx_lm's default), and while other
# sequences decode: every chunk delays each decoding stream's next token by its whole prefill
# time, so a smaller chunk keeps their inter-token latency down (serving-performance.md §6.2).
PREFILL_STEP_SIZE = 2048
PREFILL_STEP_SIZE_BUSY = 512
# Prompts admitted to prefill together (mlx_lm.server's --prompt-concurrency).
PREFILL_BATCH = 8
# KV quantization starts once a sequence holds this many tokens (mlx_lm's default).
QUANTIZED_KV_START = 5000
KV_GROUP_SIZE = 64


class Cancelled(Exception):
    """Raised from the prefill progress callback to abort a cancelled solo prefill."""


@dataclass
class Kept:
    """A sequence's KV cache and the tokens it holds, handed back for the prefix cache."""

    cache: list[Any]
    tokens: list[int]


@dataclass
class Checkpoint:
    """A sequence's cache at the end of its prompt less the last token (for models whose
    caches cannot be trimmed, the one state that the next turn of a chat can extend)."""

    seq: Any
    kept: Kept


@dataclass
class Token:
    """One generated token of one sequence. ``ended``: the lane already retired the sequence
    (EOS or its token limit), and ``kept`` is its cache."""

    seq: Any
    token: int
    logprobs: mx.array
    ended: bool = False
    kept: Kept | None = None


class BatchLane:
    def __init__(
        self,
        model: Any,
        parallel: int,
        eos_ids: set[int],
        checkpoints: bool = False,
    ):
        # Models whose caches cannot (always) be trimmed get a checkpoint at the end of each
        # prompt: a later prompt that shares the prompt but renders the reply differently
        # (templates strip reasoning, re-tokenize) still reuses it.
        self.checkpoints = checkpoints
        # Every row brings its own sampler: the generator's default (greedy) is never used.
        self.bg = BatchGenerator(
            model,
            completion_batch_size=parallel,
            prefill_batch_size=min(parallel, PREFILL_BATCH),
            prefill_step_size=PREFILL_STEP_SIZE,
        )
        # BatchGenerator has no EOS stop of its own (P2): each row gets the model's EOS ids.
        self._eos = StopSequences([[e] for e in sorted(eos_ids)])
        self._rows: dict[int, Any] = {}  # uid -> sequence
        self._decoding: set[int] = set()  # uids past their prefill
        # Decode steps that produced tokens, and the tokens they produced: tokens/steps is the
        # mean batch size actually decoded together.
        self.steps = 0
        self.tokens = 0

    def __len__(self) -> int:
        return len(self._rows)

    def add(
        self,
        seq: Any,
        prompt: list[int],
        cached: Kept | None,
        limit: int,
        sampler: Callable,
        processors: list[Callable],
    ) -> None:
        """Queue ``seq`` for prefill; ``cached`` covers ``prompt[:len(cached.tokens)]`` (at
        least one prompt token is always left to feed)."""
        n = len(cached.tokens) if cached else 0
        (seq.uid,) = self.bg.insert(
            [prompt[n:]],
            max_tokens=[limit],
            caches=[cached.cache] if cached else None,
            # A fresh list: mlx_lm appends to it in place (P4). Processors see the whole
            # context (cached + fed + generated), as in an uncached generate_step.
            all_tokens=[list(prompt[:n])],
            samplers=[sampler],
            logits_processors=[processors],
            stop_sequences=[self._eos],
        )
        self._rows[seq.uid] = seq

    def step(self) -> tuple[list[Token], list[Checkpoint]]:
        """One ``next()``: a decode step for every decoding row and one prefill chunk."""
        self.bg.prefill_step_size = PREFILL_STEP_SIZE_BUSY if self._decoding else PREFILL_STEP_SIZE
        prompts, responses = self.bg.next()
        checkpoints = []
        if self.checkpoints:
            # mlx_lm feeds a prompt's last token as its own segment: the end of the first
            # segment is the prompt less that token, already in the cache when next() returns.
            ends = [p.uid for p in prompts if p.end_of_segment and not p.end_of_prompt]
            for uid, (cache, tokens) in self.bg.extract_cache(ends).items():
                checkpoints.append(Checkpoint(self._rows[uid], Kept(cache, list(tokens))))
        if responses:
            self.steps += 1
            self.tokens += len(responses)
        out = []
        for r in responses:
            seq = self._rows[r.uid]
            self._decoding.add(r.uid)
            token = Token(seq, int(r.token), r.logprobs)
            if r.finish_reason is not None:
                self._forget(r.uid)
                token.ended = True
                token.kept = Kept(r.prompt_cache, list(r.all_tokens))
            out.append(token)
        return out, checkpoints

    def remove(self, seq: Any) -> Kept | None:
        """Take ``seq`` out of the batch at once (any stage), keeping the work it has done."""
        if seq.uid not in self._rows:
            return None
        caches = self.bg.remove([seq.uid], return_prompt_caches=True)
        self._forget(seq.uid)
        got = caches.get(seq.uid)
        if got is None:
            return None
        cache, tokens = got
        return Kept(cache, list(tokens))

    def live_nbytes(self) -> int:
        return int(self.bg.prompt_cache_nbytes)

    def _forget(self, uid: int) -> None:
        self._rows.pop(uid, None)
        self._decoding.discard(uid)


class SoloLane:
    def __init__(self, model: Any, vision: bool, kv_bits: int | None, kv_group: int):
        self._model = model
        self._vision = vision
        self._kv_bits = kv_bits
        self._kv_group = kv_group
        self._seqs: list[Any] = []

    def __len__(self) -> int:
        return len(self._seqs)

    def add(
        self,
        seq: Any,
        prompt: list[int],
        cached: Kept | None,
        limit: int,
        sampler: Callable,
        processors: list[Callable],
        vision: vlm.VisionInputs,
    ) -> None:
        """Start ``seq``. For text models ``cached`` (a prefix-cache hit) covers
        ``prompt[:len(cached.tokens)]``; the sequence's cache is kept on ``seq.cache`` so the
        engine can store it when the sequence ends."""
        if self._vision:
            # mlx-vlm has no prefill progress callback: a cancel lands after the prefill.
            seq.gen = vlm.generate_step(
                self._model,
                prompt,
                vision,
                max_tokens=limit,
                sampler=sampler,
                processors=processors,
                prefill_step_size=PREFILL_STEP_SIZE,
            )
        else:
            n = len(cached.tokens) if cached else 0
            seq.cache = cached.cache if cached else make_prompt_cache(self._model)
            if n and processors:
                # generate_step shows processors only the uncached tokens: give them the whole
                # context, as without a hit.
                processors = [vlm.FullHistory(prompt, processors)]
            seq.gen = generate_step(
                mx.array(prompt[n:]),
                self._model,
                prompt_cache=seq.cache,
                max_tokens=limit,
                sampler=sampler,
                logits_processors=processors,
                prompt_progress_callback=_cancel_check(seq),
                # The quantized matmul attention's prefill memory grows with the chunk.
                prefill_step_size=PREFILL_STEP_SIZE // (2 if self._kv_bits else 1),
                kv_bits=self._kv_bits,
                kv_group_size=self._kv_group,
                quantized_kv_start=QUANTIZED_KV_START,
            )
        self._seqs.append(seq)

    def step(self) -> Iterator[tuple[Any, tuple[int, mx.array] | BaseException]]:
        """Advance every sequence by one token (a sequence's first step runs its prefill).
        Yields ``(seq, (token, logprobs))`` or ``(seq, exception)``; ``StopIteration`` means
        mlx_lm stopped first, ``Cancelled`` a cancel during the prefill."""
        for seq in list(self._seqs):
            if seq.job.cancelled:
                yield seq, Cancelled()
                continue
            try:
                token, logprobs = next(seq.gen)
            except Exception as exc:  # noqa: BLE001 - handed to the engine, per sequence
                yield seq, exc
                continue
            yield seq, (int(token), logprobs)

    def remove(self, seq: Any) -> None:
        if seq in self._seqs:
            self._seqs.remove(seq)
            seq.gen.close()  # stops mlx_lm's pipelined next step cleanly

    def live_nbytes(self) -> int:
        return sum(
            sum(int(c.nbytes) for c in seq.cache) for seq in self._seqs if seq.cache is not None
        )


def _cancel_check(seq: Any) -> Callable[[int, int], None]:
    def check(_processed: int, _total: int) -> None:
        if seq.job.cancelled:
            raise Cancelled

    return check


def untrimmable(model: Any) -> bool:
    """Some cache layer cannot always be trimmed (a sliding window once it wraps, recurrent
    state): prefix reuse is then exact-prefix only."""
    return any(
        isinstance(c, RotatingKVCache) or not c.is_trimmable()
        for c in _layers(make_prompt_cache(model))
    )


def _layers(cache: list[Any]) -> Iterator[Any]:
    """Every cache layer, the parts of a ``CacheList`` included."""
    for c in cache:
        yield from _layers(c.caches) if hasattr(c, "caches") else (c,)


def batchable(model: Any) -> bool:
    """Every cache layer can ``merge`` into a batch cache (mlx_lm.server's test at load)."""
    return all(hasattr(c, "merge") for c in make_prompt_cache(model))


def kv_group_size(model: Any) -> int | str:
    """The quantization group size for this model's KV cache (64, or 32 for heads of 32), or
    why ``to_quantized`` would fail mid-request: sliding-window layers raise
    NotImplementedError, attention sinks raise ValueError once ``quantized_kv_start`` is
    reached (serving-performance.md §4), and a head size that no group size divides cannot be
    quantized at all. Found by prefilling one token into a fresh cache."""
    cache = make_prompt_cache(model)
    for c in _layers(cache):
        if isinstance(c, RotatingKVCache):
            return "it has sliding-window attention layers"
        if not hasattr(c, "to_quantized"):
            return f"its {type(c).__name__} layers cannot be quantized"
    if any(name.endswith("sinks") for name, _ in tree_flatten(model.parameters())):
        return "it uses attention sinks"
    model(mx.array([[0]]), cache=cache)
    dims = {
        a.shape[-1] for c in _layers(cache) if isinstance(c, KVCache) for a in (c.keys, c.values)
    }
    for group in (KV_GROUP_SIZE, 32):
        if all(d % group == 0 for d in dims):
            return group
    return f"its head size ({sorted(dims)}) is not a multiple of 32"

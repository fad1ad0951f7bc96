"""The engine: ONE thread that owns every MLX object (model, tokenizer, KV caches, RNG).

MLX streams and caches are thread-affine (mlx-engine.md §0.3, §1.3), so HTTP handler threads never
touch MLX. They talk to the engine through two kinds of inbox items:

- a ``Job`` (one completion): the engine renders and checks the prompt, then answers on the
  job's own event queue, first with either a ``RequestError`` (the handler turns it into a 4xx
  before any byte of the stream is sent) or a ``start`` event, then ``chunk`` events and exactly
  one ``done`` or ``error`` event;
- a ``Call`` (tokenize, detokenize, render, embed): a function run between decode steps, answered
  through a ``concurrent.futures.Future``.

Scheduling (serving-performance.md §6): text models whose caches can merge run in the **batch
lane** (``lanes.BatchLane``, mlx_lm's ``BatchGenerator``): concurrent sequences decode together in
one forward pass per step, joining and leaving at token boundaries, with per-row samplers,
processors, limits and seeds (a seeded request draws from its own PRNG key sequence, so it gives
the same tokens alone or beside others). Vision models and quantized KV caches run in the **solo
lane** (one ``generate_step`` per sequence, stepped round-robin). Up to ``parallel`` sequences
run at once; the rest wait in FIFO order.

Prefix cache (``prefix.PrefixCache``, batch lane): every finished or cancelled sequence leaves
its KV cache behind; a new prompt starts from the longest stored prefix and prefills the rest.
Cancel: checked every loop turn (one decode step or prefill chunk).

Distributed (``distributed.Mesh``, batch lane only): every rank runs this engine in lockstep; at
the top of each turn rank 0 shares what arrived (jobs, cancels, replicated calls, stop) and the
rest of the turn is the same deterministic function of it everywhere (see distributed.py).
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import gc
import itertools
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx
from mlx_lm import load
from mlx_lm.generate import generation_stream, wired_limit

from . import constrain, distributed, facts, lanes, log, protocol, templates, vlm
from .lanes import BatchLane, Cancelled, Kept, SoloLane
from .logprobs import LogprobTrail, token_bytes_of
from .prefix import PrefixCache
from .protocol import ChatExtras, CompletionRequest, RequestError
from .sampling import logits_processors_for, sampler_for
from .stops import StopMatcher

# Warm-up generation length: enough to compile the prefill, decode and sampling kernels.
WARMUP_TOKENS = 2


class Job:
    """One completion request, shared by its HTTP handler and the engine."""

    def __init__(self, req: CompletionRequest, events: Any = None):
        self.req = req
        # Items: RequestError (rejected before streaming) or an event dict.
        self.events: queue.Queue = events if events is not None else queue.Queue()
        self._cancel = threading.Event()
        # Distributed: the id every rank knows the job by, and the cancel as the engine sees it
        # (taken at an exchange, so that every rank sees it at the same turn).
        self.sync_id: int | None = None
        self.seen_cancel = False
        self.prompt: list[int] = []
        self.matcher: Any = None  # the compiled ``format`` (an llguidance LLMatcher), if any
        self.vision = vlm.VisionInputs()  # pixel values of the prompt's images (vision models)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def asked_cancel(self) -> bool:
        return self._cancel.is_set()

    @property
    def cancelled(self) -> bool:
        if self.sync_id is not None:
            return self.seen_cancel
        return self._cancel.is_set()


class _Sink:
    """The event queue of a job on a rank other than 0: nobody reads it."""

    def put(self, _item: Any) -> None:
        pass


# Control calls that change engine state or run the model: every rank runs them, in turn.
_REPLICATED = frozenset({"embed", "set_prefix_budget"})


@dataclass
class _Call:
    fn: Callable[..., Any]
    args: tuple
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)


@dataclass
class _Sequence:
    """Engine-private state of one active generation."""

    job: Job
    limit: int  # most tokens this sequence may generate (num_predict, and num_ctx unless shifting)
    detok: Any
    stops: StopMatcher
    started_ns: int
    cached: int = 0  # prompt tokens that came from the prefix cache
    first_ns: int | None = None
    last_ns: int = 0
    count: int = 0  # generated tokens, including an EOS that ended the sequence
    generated: list[int] = field(default_factory=list)
    logprobs: LogprobTrail | None = None  # only when the request asked for logprobs
    yielded: list[int] = field(default_factory=list)  # every token the lane gave, EOS too
    uid: int | None = None  # batch lane row
    gen: Iterator | None = None  # solo lane generator
    cache: list[Any] | None = None  # solo lane, text models: the sequence's KV cache
    error: str | None = None  # set when one of its logits processors failed
    # Context shift: the tokens the current lane row started from (the prompt, or the window
    # kept by the last shift), how many of ``yielded`` came before that, the tokens always
    # kept, and what the row was started with, to start the next one alike.
    window: list[int] = field(default_factory=list)
    base: int = 0
    keep: int = 0
    shifting: bool = False
    shifts: int = 0
    sampler: Any = None
    processors: list[Any] = field(default_factory=list)


class _Guarded:
    """A sequence's logits processors, run so that a failure (a ``format`` matcher error) fails
    only that sequence: the error is recorded and the logits pass through untouched; the engine
    ends the sequence with an error event right after the step."""

    def __init__(self, seq: _Sequence, processors: list[Callable[[mx.array, mx.array], mx.array]]):
        self._seq = seq
        self._processors = processors

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        if self._seq.error is not None:
            return logits
        try:
            for processor in self._processors:
                logits = processor(tokens, logits)
        except Exception as exc:  # noqa: BLE001 - recorded, then reported for this sequence
            self._seq.error = str(exc)
        return logits

    def rebase(self, window: int, generated: int) -> None:
        """After a context shift the processors see a new history of ``window`` tokens, which
        ends with the latest of the ``generated`` tokens so far."""
        for processor in self._processors:
            rebase = getattr(processor, "rebase", None)
            if rebase is not None:
                rebase(window, generated)


_STOP = object()


class Engine:
    """Loads the model, then serves jobs until ``stop``. See the module docstring."""

    def __init__(
        self,
        model_dir: str,
        parallel: int = 1,
        prefix_cache_bytes: int | None = None,
        kv_bits: int | None = None,
        distributed_backend: str | None = None,
        split: str = "auto",
    ):
        self.model_dir = model_dir
        # Distributed: joined on the engine thread as the load starts (it waits for every rank).
        self._backend = distributed_backend
        self.mesh: distributed.Mesh | None = None
        self.split = split
        self.plan: distributed.Plan | None = None
        self._sync_ids = itertools.count(1)
        self._halt = False  # distributed: stop, as agreed at an exchange
        self.parallel = max(1, parallel)
        # None: the default budget, sized from memory once the model is loaded; 0: off.
        self._prefix_bytes = prefix_cache_bytes
        self._kv_bits_asked = kv_bits or None
        self.kv_bits: int | None = None
        self.prefix = PrefixCache(0)
        self.lane_kind = "batch"
        self.weights_bytes = 0
        self.kv_live_bytes = 0
        self.memory_limit = 0
        # Read by handler threads; written only here. Plain attribute reads are atomic under the
        # GIL, which is all /v1/health and /v1/status need.
        self.phase = "load"  # load -> warmup -> ready | error
        self.error: str | None = None
        self.crashed = False  # the engine failed while serving (not while loading)
        self.facts: dict[str, Any] = {}
        self.load_ms = 0
        self.warmup_ms = 0
        self.completed = 0
        self.cancelled = 0
        self._inbox: queue.Queue = queue.Queue()
        self._waiting: collections.deque[Job] = collections.deque()
        self._active: list[_Sequence] = []
        self._batch: BatchLane | None = None
        self._solo: SoloLane | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)

    # ---- handler-side API (any thread) -------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop admitting, end in-flight requests with ``done_reason: cancel``, join the thread."""
        self._stopping = True
        self._inbox.put(_STOP)
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, req: CompletionRequest) -> Job:
        job = Job(req)
        if self._stopping:
            job.events.put(RequestError("the runner is shutting down", 503))
        else:
            self._inbox.put(job)
        return job

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 60.0) -> Any:
        """Run ``fn(*args)`` on the engine thread and return its result (or raise its error)."""
        if self._stopping or not self.alive:
            raise RequestError("the runner is shutting down", 503)
        c = _Call(fn, args)
        self._inbox.put(c)
        return c.future.result(timeout)

    def status(self) -> dict[str, Any]:
        return {
            **self.facts,
            "memory": {
                **facts.memory(),
                "weights": self.weights_bytes,
                "kv_live": self.kv_live_bytes,
                "prefix_cache": self.prefix.nbytes,
                "prefix_budget": self.prefix.budget,
                "limit": self.memory_limit,
            },
            "engine": {
                "lane": self.lane_kind,
                "parallel": self.parallel,
                "kv_bits": self.kv_bits,
                "decode_steps": self._batch.steps if self._batch is not None else 0,
                "decode_tokens": self._batch.tokens if self._batch is not None else 0,
            },
            "prefix_cache": self.prefix.stats(),
            "distributed": self.plan.describe() if self.plan is not None else None,
            "load_ms": self.load_ms,
            "warmup_ms": self.warmup_ms,
            "requests": {
                "active": len(self._active),
                "queued": len(self._waiting),
                "completed": self.completed,
                "cancelled": self.cancelled,
            },
        }

    # Control calls (run on the engine thread through ``call``).

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=add_special))

    def detokenize(self, tokens: list[int]) -> str:
        self._check_vocab(tokens, "tokens")
        return self.tokenizer.decode(tokens)

    def render(self, messages: list[dict[str, Any]], extras: ChatExtras) -> dict[str, Any]:
        return {
            "prompt": templates.render_text(self.tokenizer, messages, extras),
            "tokens": templates.render_tokens(self.tokenizer, messages, extras),
        }

    def set_prefix_budget(self, max_bytes: int) -> dict[str, Any]:
        """Resize the prefix cache (to shrink an idle runner's cache under memory pressure);
        least recently used entries go first."""
        self.prefix.set_budget(max_bytes)
        return self.prefix.stats()

    def embed(self, req: protocol.EmbedRequest) -> dict[str, Any]:
        """One vector per input: the final hidden states (after the last norm) of the text
        model, mean-pooled over the tokens and L2-normalised, as llama-server computes them with
        ``--embeddings --pooling mean`` on the GGUF of the same weights.

        Inputs are tokenized as plain text with the tokenizer's defaults, exactly as llama-server
        does: a BOS only where the model's tokenizer adds one. Each input is its own forward
        pass (no padding, so a vector never depends on its neighbours in the batch).
        """
        if self.mesh is not None:  # its all_sums must queue behind the decode steps
            with mx.stream(distributed.STREAM):
                return self._embed(req)
        return self._embed(req)

    def _embed(self, req: protocol.EmbedRequest) -> dict[str, Any]:
        backbone = self._backbone()
        vectors: list[list[float]] = []
        total = 0
        for text in req.input:
            tokens = list(self.tokenizer.encode(text))
            if len(tokens) > req.num_ctx:
                if not req.truncate:
                    raise RequestError("the input length exceeds the context length")
                tokens = tokens[: req.num_ctx]
            if not tokens:
                raise RequestError("an input has no tokens")
            self._check_vocab(tokens, "input")
            hidden = backbone(mx.array(tokens)[None])[0].astype(mx.float32)
            pooled = hidden.mean(axis=0)
            pooled = pooled / mx.maximum(mx.linalg.norm(pooled), 1e-12)
            vectors.append(pooled.tolist())
            total += len(tokens)
        return {"embeddings": vectors, "prompt_eval_count": total}

    def _backbone(self) -> Callable[[mx.array], mx.array]:
        """The module that maps token ids to final hidden states (``model.model`` in mlx_lm)."""
        for owner in (self.model, getattr(self.model, "language_model", None)):
            inner = getattr(owner, "model", None)
            if inner is not None and callable(inner):
                return inner
        raise RequestError("this model does not support embeddings", 501)

    # ---- engine thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._load()
            self._warmup()
        except Exception as exc:  # noqa: BLE001 - any load failure is reported, not raised
            self.error = f"{type(exc).__name__}: {exc}"
            self.phase = "error"
            log.error("model failed to load", model=self.model_dir, error=self.error)
            return
        self.phase = "ready"
        log.info("ready", load_ms=self.load_ms, warmup_ms=self.warmup_ms, **self._summary())
        try:
            self._serve()
        except Exception as exc:  # noqa: BLE001 - reported through /v1/health, then exit 1
            self.error = f"engine loop crashed: {type(exc).__name__}: {exc}"
            self.crashed = True
            self.phase = "error"
            log.error("engine loop crashed", error=self.error, trace=traceback.format_exc())
            self._fail_all(self.error)
        finally:
            self._release()

    def _load(self) -> None:
        start = time.monotonic()
        path = Path(self.model_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"model directory not found: {path}")
        # A vision model (mlx-vlm) keeps its processor here; None for text models (mlx_lm).
        self.processor: Any = None
        if self._backend is not None:
            self.mesh = distributed.Mesh(self._backend)
            if vlm.is_vlm(path):
                raise ValueError("vision models cannot be split across machines")
            self.model, self.tokenizer, config, self.plan = distributed.load(
                str(path), self.mesh, self.split
            )
            self.mesh.seed_alike()
            log.info("model split across ranks", rank=self.mesh.rank, **self.plan.describe())
        elif vlm.is_vlm(path):
            self.model, self.processor, self.tokenizer, config = vlm.load(str(path))
        else:
            self.model, self.tokenizer, config = load(str(path), lazy=False, return_config=True)
        template = templates.install_template(self.tokenizer, path)
        self.facts = facts.model_facts(self.model_dir, self.model, self.tokenizer, config, template)
        if self.processor is not None:
            self.facts["capabilities"].append("vision")
        text_cfg = config.get("text_config") or {}
        self.vocab_size = int(text_cfg.get("vocab_size") or config.get("vocab_size") or 0)
        self.vocab_size = self.vocab_size or len(self.tokenizer)
        self.eos_ids = set(self.tokenizer.eos_token_ids)
        self.llg_tokenizer = constrain.build_tokenizer(
            self.tokenizer, self.vocab_size, self.eos_ids
        )
        self.token_bytes = token_bytes_of(self.tokenizer, self.llg_tokenizer)
        self._make_lanes()
        self.load_ms = int((time.monotonic() - start) * 1000)

    def _make_lanes(self) -> None:
        """Choose the lane, size the prefix cache and measure the weights."""
        self.weights_bytes = facts.weights_nbytes(self.model)
        self.memory_limit = facts.memory_limit()
        group = lanes.KV_GROUP_SIZE
        if self._kv_bits_asked and self.mesh is not None:
            log.warning("KV cache quantization is off", reason="the model is split across ranks")
        elif self._kv_bits_asked and self.processor is None:
            found = lanes.kv_group_size(self.model)
            if isinstance(found, int):
                self.kv_bits, group = self._kv_bits_asked, found
                if facts.backend() == "cpu":
                    log.warning(
                        "KV cache quantization on the MLX CPU backend: past 5000 tokens "
                        "attention runs about 10x slower (bench/kvcache.py); it pays on Metal"
                    )
            else:
                log.warning("KV cache quantization is off for this model", reason=found)
        elif self._kv_bits_asked:
            log.warning("KV cache quantization is off for this model", reason="a vision model")
        if self.processor is None:  # vision prompts bypass the prefix cache
            budget = self._prefix_bytes
            if budget is None:
                budget = facts.default_prefix_budget(self.memory_limit, self.weights_bytes)
            if self.mesh is not None:
                # One budget and one measure (the largest rank's bytes) on every rank, so that
                # every rank stores and evicts the same entries.
                budget = self.mesh.share(budget if self.mesh.rank == 0 else None)
                self.prefix.agree = self.mesh.agree
            self.prefix.set_budget(budget)
        if self.processor is None and self.kv_bits is None and lanes.batchable(self.model):
            self._batch = self._new_batch_lane()
        elif self.mesh is not None:
            raise ValueError("this model's caches cannot be batched, which a split model needs")
        else:
            self.lane_kind = "solo"
            self._solo = SoloLane(self.model, self.processor is not None, self.kv_bits, group)

    def _new_batch_lane(self) -> BatchLane:
        return BatchLane(
            self.model,
            self.parallel,
            self.eos_ids,
            checkpoints=self.prefix.budget > 0 and lanes.untrimmable(self.model),
        )

    def _warmup(self) -> None:
        """One tiny generation through the model's own lane, so the first request does not pay
        for kernel compilation (seconds on a cold CUDA cache, mlx-engine.md §3.5)."""
        self.phase = "warmup"
        start = time.monotonic()
        job = Job(
            CompletionRequest(
                id="warmup",
                messages=None,
                prompt="",
                context=[],
                options=protocol.Options(num_predict=WARMUP_TOKENS),
            )
        )
        job.prompt = templates.render_tokens(self.tokenizer, [{"role": "user", "content": "hi"}])
        seq = self._begin(job, use_prefix=False)
        while seq in self._active:
            self._advance()
        self.completed = 0
        self.prefix.clear()
        self.warmup_ms = int((time.monotonic() - start) * 1000)

    def _summary(self) -> dict[str, Any]:
        keys = ("architecture", "parameter_count", "quantization", "dtype", "backend")
        return {k: self.facts.get(k) for k in keys}

    def _serve(self) -> None:
        # One wired-limit scope for the whole serving life: per-request scopes would interleave
        # and restore the limit while other sequences still run (a no-op on CPU and CUDA).
        with wired_limit(self.model, [generation_stream]):
            while True:
                idle = not self._active and not self._waiting
                if self.mesh is None:
                    if self._stopping:
                        break
                    self._drain_inbox(block=idle)
                    if self._stopping:
                        break
                else:
                    self._sync(block=idle)
                    if self._halt:
                        break
                self._drop_cancelled_waiting()
                for seq in [s for s in self._active if s.job.cancelled]:
                    self._finish(seq, "cancel")
                busy = bool(self._active or self._waiting)
                self._promote()
                self._advance()
                if busy and not self._active and not self._waiting:
                    self.kv_live_bytes = 0
                    mx.clear_cache()  # the burst is over: give the pool back
        self._cancel_all()

    def _advance(self) -> None:
        """One step of each lane: a batched decode step (plus one prefill chunk) and one token
        of every solo sequence."""
        if self._batch is not None and len(self._batch):
            try:
                tokens, checkpoints = self._batch.step()
            except Exception as exc:  # noqa: BLE001 - the batch state is unknown: start over
                self._fail_batch(exc)
                return
            for c in checkpoints:
                self.prefix.insert(c.kept.tokens, c.kept.cache)
            for t in tokens:
                self._on_token(t.seq, t.token, t.logprobs, ended=t.ended, kept=t.kept)
            self.kv_live_bytes = self._batch.live_nbytes()
        if self._solo is not None and len(self._solo):
            self.kv_live_bytes = self._solo.live_nbytes()
            for seq, got in self._solo.step():
                if isinstance(got, tuple):
                    self._on_token(seq, *got)
                elif isinstance(got, Cancelled):
                    self._finish(seq, "cancel")
                elif isinstance(got, StopIteration):  # mlx_lm stopped before our limit did
                    self._finish(seq, "length")
                else:
                    self._fail(seq, f"generation failed: {got}")

    def _drain_inbox(self, block: bool) -> None:
        while True:
            try:
                item = self._inbox.get(block=block)
            except queue.Empty:
                return
            block = False
            if item is _STOP:
                self._stopping = True
                return
            if isinstance(item, _Call):
                self._run_call(item)
            else:
                self._admit(item)

    def _sync(self, block: bool) -> None:
        """Distributed: the turn's exchange. Rank 0 takes its inbox (waiting for something when
        idle), runs calls that touch neither the model nor shared state itself, and shares the
        rest; every rank then applies the same news in the same order."""
        assert self.mesh is not None
        rank0 = self.mesh.rank == 0
        jobs: list[Job] = []
        calls: list[_Call] = []
        news = None
        if rank0:
            stop = self._stopping
            for item in self._take_inbox(block):
                if item is _STOP:
                    stop = True
                elif isinstance(item, _Call):
                    if getattr(item.fn, "__name__", "") in _REPLICATED:
                        calls.append(item)
                    else:
                        self._run_call(item)
                else:
                    jobs.append(item)
            cancels = [
                j.sync_id for j in self._known_jobs() if j.asked_cancel and not j.seen_cancel
            ]
            if jobs or calls or cancels or stop:
                news = {
                    "jobs": [j.req for j in jobs],
                    "calls": [(c.fn.__name__, c.args) for c in calls],
                    "cancel": cancels,
                    "stop": stop,
                }
        news = self.mesh.share(news)
        if news is None:
            return
        known = {j.sync_id: j for j in self._known_jobs()}
        for sid in news["cancel"]:
            if sid in known:
                known[sid].seen_cancel = True
        for i, req in enumerate(news["jobs"]):
            job = jobs[i] if rank0 else Job(req, events=_Sink())
            job.sync_id = next(self._sync_ids)
            self._admit(job)
        for i, (name, args) in enumerate(news["calls"]):
            self._run_call(calls[i] if rank0 else _Call(getattr(self, name), args))
        if news["stop"]:
            self._halt = self._stopping = True

    def _take_inbox(self, block: bool) -> list[Any]:
        items = []
        while True:
            try:
                items.append(self._inbox.get(block=block and not items))
            except queue.Empty:
                return items

    def _known_jobs(self) -> list[Job]:
        return [s.job for s in self._active] + list(self._waiting)

    def _run_call(self, c: _Call) -> None:
        try:
            c.future.set_result(c.fn(*c.args))
        except Exception as exc:  # noqa: BLE001 - handed to the waiting handler
            c.future.set_exception(exc)

    def _admit(self, job: Job) -> None:
        """Render and check the prompt; answer with a rejection or a ``start`` event."""
        req = job.req
        try:
            job.prompt, dropped = self._prompt_tokens(job)
            if req.format is not None:
                job.matcher = constrain.compile_schema(self.llg_tokenizer, req.format)
        except RequestError as exc:
            job.events.put(exc)
            return
        except Exception as exc:  # noqa: BLE001 - a template that raises is the caller's problem
            job.events.put(RequestError(f"failed to render the prompt: {exc}"))
            return
        if dropped:
            log.warning("truncated chat history to fit num_ctx", id=req.id, dropped=dropped)
        job.events.put(protocol.start_event(len(job.prompt), dropped, self._thinking(job)))
        self._waiting.append(job)

    def _thinking(self, job: Job) -> bool:
        tags = job.req.think_tags
        return tags is not None and templates.opens_thinking(self.tokenizer, job.prompt, tags[0])

    def _prompt_tokens(self, job: Job) -> tuple[list[int], int]:
        """The prompt's tokens (``context``, then the rendered prompt, then any ``prefill``),
        fitted into num_ctx as Ollama fits it (see ``templates.fit_tokens``), and how many
        messages were dropped to get there."""
        req = job.req
        num_ctx = req.options.num_ctx
        self._check_vocab(req.context, "context")
        budget = num_ctx - len(req.context)
        vision = vlm.has_images(req.messages)
        if vision:
            if self.processor is None:
                raise RequestError("this model does not support images")
            assert req.messages is not None
            prompts = vlm.ImagePrompts(self.processor, self.tokenizer, req.extras)
            prompts.decode_all(req.messages)
            tokens, dropped = templates.fit_messages(
                prompts.render, req.messages, budget, req.truncate
            )
            job.vision = prompts.inputs_for(tokens)
        elif req.messages is not None:
            render = functools.partial(templates.render_tokens, self.tokenizer, extras=req.extras)
            tokens, dropped = templates.fit_messages(render, req.messages, budget, req.truncate)
        else:
            # BOS (if the model wants one) only at the very start, never after a context.
            tokens = self.tokenizer.encode(req.prompt, add_special_tokens=not req.context)
            dropped = 0
        # A tokenizer can know more tokens than the model has embeddings (a template that emits
        # an added token the weights lack): refuse rather than generate from garbage.
        self._check_vocab(tokens, "prompt")
        prompt = list(req.context) + list(tokens)
        if req.prefill:
            prompt += self.tokenizer.encode(req.prefill, add_special_tokens=False)
        if not prompt:
            raise RequestError("the prompt is empty")
        if vision:
            # Image tokens cannot be cut (as in Ollama, which truncates text-only prompts).
            if len(prompt) >= num_ctx:
                raise templates.context_error(len(prompt), num_ctx)
            return prompt, dropped
        keep = self._keep(prompt, req.options)
        fitted = templates.fit_tokens(prompt, num_ctx, keep, req.truncate, req.shift)
        if len(fitted) < len(prompt):
            log.warning(
                "truncating input prompt",
                id=req.id,
                limit=len(fitted),
                prompt=len(prompt),
                keep=keep,
            )
        return fitted, dropped

    def _keep(self, prompt: list[int], opts: protocol.Options) -> int:
        bos = getattr(self.tokenizer, "bos_token_id", None)
        return templates.keep_count(prompt, opts.num_keep, bos, opts.num_ctx)

    def _check_vocab(self, tokens: list[int], name: str) -> None:
        if not tokens or max(tokens) < self.vocab_size:
            return
        bad = [t for t in tokens if t >= self.vocab_size]
        raise RequestError(f'"{name}" has token ids outside the vocabulary: {bad[:5]}')

    def _drop_cancelled_waiting(self) -> None:
        for job in [j for j in self._waiting if j.cancelled]:
            self._waiting.remove(job)
            self._end_unstarted(job)

    def _promote(self) -> None:
        """Start waiting jobs in order while there is room (FIFO: nobody jumps the queue)."""
        while self._waiting and len(self._active) < self.parallel:
            job = self._waiting.popleft()
            try:
                self._begin(job)
            except Exception as exc:  # noqa: BLE001 - this request fails; the engine serves on
                log.error("could not start a request", id=job.req.id, error=str(exc))
                job.events.put(protocol.error_event(f"generation failed: {exc}"))

    def _begin(self, job: Job, use_prefix: bool = True) -> _Sequence:
        opts = job.req.options
        # Context shift (Ollama's default): a text model's generation that fills num_ctx drops
        # half of what follows the kept tokens and goes on, up to num_predict (-1: 10 x num_ctx,
        # Ollama's bound). Without it, generation ends at num_ctx with done_reason "length".
        shifting = job.req.shift and self.processor is None  # vision models: no shift
        if shifting:
            limit = opts.num_predict if opts.num_predict > 0 else 10 * opts.num_ctx
        else:
            limit = opts.num_ctx - len(job.prompt)
            if opts.num_predict > 0:  # as in Ollama's runners, 0 and negative mean "no limit"
                limit = min(limit, opts.num_predict)
        seq = _Sequence(
            job=job,
            limit=limit,
            detok=self.tokenizer.detokenizer,  # a fresh copy on every access
            stops=StopMatcher(opts.stop),
            started_ns=time.monotonic_ns(),
            window=job.prompt,
            keep=self._keep(job.prompt, opts),
            shifting=shifting,
        )
        if job.req.logprobs:
            seq.logprobs = LogprobTrail(job.req.top_logprobs, self.token_bytes)
        seq.sampler = sampler_for(opts, self.vocab_size)
        processors = self._processors(job)
        seq.processors = [_Guarded(seq, processors)] if processors else []
        seq.cached = self._start_row(seq, job.prompt, limit, use_prefix)
        self._active.append(seq)
        if seq.cached:
            log.debug("prefix cache hit", id=job.req.id, cached=seq.cached, prompt=len(job.prompt))
        return seq

    def _start_row(self, seq: _Sequence, prompt: list[int], limit: int, use_prefix: bool) -> int:
        """Put ``seq`` in its lane to go on from ``prompt``; returns the prompt tokens that came
        from the prefix cache."""
        hit = self.prefix.fetch(prompt) if use_prefix and self.processor is None else None
        cached = Kept(hit.cache, prompt[: hit.tokens]) if hit else None
        if self._batch is not None:
            self._batch.add(seq, prompt, cached, limit, seq.sampler, seq.processors)
        else:
            assert self._solo is not None
            self._solo.add(seq, prompt, cached, limit, seq.sampler, seq.processors, seq.job.vision)
        return hit.tokens if hit else 0

    def _shift(self, seq: _Sequence) -> None:
        """The sequence has filled num_ctx: start its row again from the kept tokens and the
        latest half of the rest. The model prefills that window afresh (exact, where shifting
        the KV cache in place would leave stale rotary positions); the sampler, processors,
        detokenizer and stop matcher carry on as if nothing happened."""
        opts = seq.job.req.options
        history = seq.window + seq.yielded[seq.base :]
        discard = templates.shift_discard(opts.num_ctx, seq.keep)
        window = history[: seq.keep] + history[seq.keep + discard :]
        if seq.uid is not None and self._batch is not None:
            self._batch.remove(seq)
        elif self._solo is not None:
            self._solo.remove(seq)
        seq.window, seq.base = window, len(seq.yielded)
        seq.shifts += 1
        for p in seq.processors:
            p.rebase(len(window), seq.count)
        self._start_row(seq, window, seq.limit - seq.count, use_prefix=True)
        log.debug(
            "context shift", id=seq.job.req.id, kept=seq.keep, discarded=discard, window=len(window)
        )

    def _processors(self, job: Job) -> list[Callable[[mx.array, mx.array], mx.array]]:
        """Penalties, then the ``format`` constraint last, so a masked token stays at -inf."""
        processors = logits_processors_for(job.req.options)
        if job.matcher is not None:
            processors.append(
                constrain.Constraint(
                    job.matcher,
                    self.llg_tokenizer,
                    len(job.prompt),
                    self.eos_ids,
                    after=job.req.constrain_after,
                )
            )
        return processors

    def _on_token(
        self,
        seq: _Sequence,
        token: int,
        logprobs: mx.array,
        ended: bool = False,
        kept: Kept | None = None,
    ) -> None:
        """Take one generated token of ``seq``. ``ended``: the lane has already retired the
        sequence (EOS or its token limit) and ``kept`` is its cache."""
        if seq.error is not None:
            self._fail(seq, f"generation failed: {seq.error}")
            return
        now = time.monotonic_ns()
        seq.first_ns = seq.first_ns or now
        seq.last_ns = now
        seq.count += 1
        seq.yielded.append(token)
        if token in self.eos_ids:
            self._finish(seq, "stop", kept=kept)
            return
        seq.generated.append(token)
        if seq.logprobs is not None:
            seq.logprobs.add(token, logprobs)
        seq.detok.add_token(token)
        text, hit = seq.stops.feed(seq.detok.last_segment)
        self._emit(seq, text)
        if hit:
            self._finish(seq, "stop", stopped_by_string=True, kept=kept)
        elif seq.count >= seq.limit or ended:
            self._finish(seq, "length", kept=kept)
        elif (
            seq.shifting
            and len(seq.window) + len(seq.yielded) - seq.base >= seq.job.req.options.num_ctx
        ):
            self._shift(seq)

    def _emit(self, seq: _Sequence, text: str, final: bool = False) -> None:
        """Send ``text`` with the logprobs of the tokens it completes. ``final``: also send
        entries whose text never came (held back, then dropped by a stop string or empty), in a
        chunk with empty content, so every generated token but a final EOS has one entry."""
        if not text and not (final and seq.logprobs is not None):
            return
        entries = seq.logprobs.take() if seq.logprobs is not None else None
        if text or entries:
            seq.job.events.put(protocol.chunk_event(text, entries))

    def _finish(
        self,
        seq: _Sequence,
        reason: str,
        stopped_by_string: bool = False,
        kept: Kept | None = None,
    ) -> None:
        self._retire(seq, kept)
        if reason != "cancel" and not stopped_by_string:
            # Release what the detokenizer and the stop matcher still hold; the detokenizer's
            # tail can itself complete a stop string.
            seq.detok.finalize()
            text, hit = seq.stops.feed(seq.detok.last_segment)
            self._emit(seq, text if hit else text + seq.stops.flush())
            reason = "stop" if hit else reason
        if reason != "cancel":
            self._emit(seq, "", final=True)
        now = time.monotonic_ns()
        first = seq.first_ns or now
        req = seq.job.req
        seq.job.events.put(
            protocol.done_event(
                reason,
                prompt_eval_count=len(seq.job.prompt),
                prompt_eval_duration=first - seq.started_ns,
                eval_count=seq.count,
                eval_duration=(seq.last_ns - first) if seq.first_ns else 0,
                context=(seq.job.prompt + seq.generated) if req.return_context else None,
                stop_sequence=seq.stops.matched,
                cached_tokens=seq.cached,
            )
        )
        if reason == "cancel":
            self.cancelled += 1
            log.info("request cancelled", id=req.id, generated=seq.count)
        else:
            self.completed += 1
            log.debug(
                "request done",
                id=req.id,
                done_reason=reason,
                eval_count=seq.count,
                cached_tokens=seq.cached,
            )

    def _fail(self, seq: _Sequence, message: str) -> None:
        """End one sequence with an error event; the others carry on."""
        log.error("generation failed", id=seq.job.req.id, error=message)
        self._retire(seq, None, keep_cache=False)
        seq.job.events.put(protocol.error_event(message))

    def _fail_batch(self, exc: Exception) -> None:
        """A batched step raised: every batch sequence fails and a fresh batch starts (the old
        one's state is unknown)."""
        if self.mesh is not None:
            raise exc  # a lost rank, most likely: the whole job must end (distributed.py)
        message = f"generation failed: {type(exc).__name__}: {exc}"
        log.error("batched step failed", error=message)
        for seq in [s for s in self._active if s.uid is not None]:
            self._active.remove(seq)
            seq.job.events.put(protocol.error_event(message))
        self._batch = self._new_batch_lane()

    def _retire(self, seq: _Sequence, kept: Kept | None, keep_cache: bool = True) -> None:
        """Take ``seq`` out of its lane. What its cache holds goes to the prefix cache, work
        that a cancelled prefill did included."""
        if seq in self._active:
            self._active.remove(seq)
        if seq.uid is not None and self._batch is not None:
            kept = self._batch.remove(seq) or kept
        elif self._solo is not None:
            self._solo.remove(seq)
            if seq.cache is not None:  # it holds the prompt and every token fed since
                kept = Kept(seq.cache, seq.job.prompt + seq.yielded)
        if keep_cache and kept is not None and len(kept.tokens) > seq.cached:
            self.prefix.insert(kept.tokens, kept.cache)

    def _end_unstarted(self, job: Job) -> None:
        """A job that got its ``start`` event but never a slot ends as cancelled."""
        job.events.put(protocol.done_event("cancel", len(job.prompt), 0, 0, 0))
        self.cancelled += 1
        log.info("request cancelled", id=job.req.id, generated=0)

    def _cancel_all(self) -> None:
        for seq in list(self._active):
            self._finish(seq, "cancel")
        while self._waiting:
            self._end_unstarted(self._waiting.popleft())
        self._reject_inbox()

    def _fail_all(self, message: str) -> None:
        for seq in list(self._active):
            self._active.remove(seq)
            seq.job.events.put(protocol.error_event(message))
        self._active.clear()
        while self._waiting:
            self._waiting.popleft().events.put(protocol.error_event(message))
        self._reject_inbox()

    def _reject_inbox(self) -> None:
        self._stopping = True
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Job):
                item.events.put(RequestError("the runner is shutting down", 503))
            elif isinstance(item, _Call):
                item.future.set_exception(RequestError("the runner is shutting down", 503))

    def _release(self) -> None:
        self.model = None
        gc.collect()
        mx.clear_cache()

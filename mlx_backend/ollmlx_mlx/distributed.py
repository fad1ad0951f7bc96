"""One model across several machines: MLX's own distributed runtime, driven in lockstep.

``mlx.launch`` (through ``ollmlx_mlx.launch``) starts the same runner on every host of the list;
``mx.distributed`` (the ring backend over TCP) joins them into one group and mlx_lm's
``sharded_load`` splits the model over it: **tensor parallel** (every layer's matrices split
across ranks, an ``all_sum`` after each) where the architecture has ``shard``, else **pipeline
parallel** (each rank holds a run of layers) where it has ``pipeline``. Models with neither are
refused with a clear error.

Every rank runs the same engine. Rank 0 also serves HTTP; at the top of each engine turn it
shares what changed since the last turn (new requests, cancellations, replicated control calls,
stop) with the other ranks (:meth:`Mesh.share`), so that every rank admits, starts, steps,
caches and retires exactly the same sequences in the same order and the collectives inside
the model always pair up. What rank 0 decides alone (the client went away, a request arrived)
reaches the others only through that exchange; everything else in the engine is a
deterministic function of it: tokens are identical on every rank (the logits are all-reduced,
unseeded sampling draws from a random state seeded alike on every rank), and the prefix cache
measures entries by the largest rank's bytes (:meth:`Mesh.agree`), so evictions agree.

A lost rank shows up as an exception from the next collective ("[ring] connection to a peer
was lost"): the engine fails its in-flight requests with that error and the runner exits;
``mlx.launch`` ends the other ranks, and the daemon starts the job again on the next request.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
from mlx_lm.generate import generation_stream

# Every collective of a rank must be issued in one order, the same on every rank: the ring
# backend pairs them by order alone. The model's own all_sums run on mlx_lm's generation stream,
# where a decode step may still be in flight when the engine exchanges news, so the exchange
# runs on that same stream, behind it (on another stream the two interleave and mix data).
STREAM = generation_stream

SPLITS = ("auto", "tensor", "pipeline")


@dataclass
class Plan:
    """How the model was split: reported by ``/v1/status`` and so by ``/api/ps``."""

    backend: str
    split: str
    hosts: list[str]
    size: int

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "split": self.split, "hosts": self.hosts}


class Mesh:
    """This process's place in the distributed job, and the lockstep exchange."""

    def __init__(self, backend: str = "ring"):
        self.group = mx.distributed.init(backend=backend, strict=True)
        self.rank = self.group.rank()
        self.size = self.group.size()
        self.backend = backend

    def share(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (``None`` costs one tiny collective)."""
        if self.rank == 0:
            data = pickle.dumps(obj) if obj is not None else b""
            n = mx.distributed.all_sum(mx.array(len(data)), group=self.group, stream=STREAM)
            mx.eval(n)
            if data:
                buf = mx.array(memoryview(data), dtype=mx.uint8)
                mx.eval(mx.distributed.all_sum(buf, group=self.group, stream=STREAM))
            return obj
        n = mx.distributed.all_sum(mx.array(0), group=self.group, stream=STREAM).item()
        if n == 0:
            return None
        buf = mx.distributed.all_sum(
            mx.zeros((n,), dtype=mx.uint8), group=self.group, stream=STREAM
        )
        mx.eval(buf)
        # Pickle from rank 0 only: the ranks are one job started together from one host list.
        return pickle.loads(bytes(memoryview(buf)))

    def agree(self, value: int) -> int:
        """The largest ``value`` over the ranks (every rank must call it at the same point)."""
        out = mx.distributed.all_max(mx.array(int(value)), group=self.group, stream=STREAM)
        return int(out.item())

    def seed_alike(self) -> None:
        """Seed every rank's random state with rank 0's, so unseeded sampling agrees."""
        seed = self.share(int.from_bytes(os.urandom(4), "little") if self.rank == 0 else None)
        mx.random.seed(seed)


def hosts_of_job() -> list[str]:
    """The ranks' addresses, from the host file ``mlx.launch`` wrote (``MLX_HOSTFILE``)."""
    path = os.environ.get("MLX_HOSTFILE")
    if not path:
        return []
    try:
        ranks = json.loads(Path(path).read_text() or "[]")
    except (OSError, ValueError):
        return []
    return [r[0].rsplit(":", 1)[0] if isinstance(r, list) and r else str(r) for r in ranks]


def load(model_dir: str, mesh: Mesh, split: str) -> tuple[Any, Any, dict[str, Any], Plan]:
    """Load this rank's shard of the model; returns ``(model, tokenizer, config, plan)``."""
    from mlx_lm.utils import load_model, sharded_load

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (one of {', '.join(SPLITS)})")
    probe, config = load_model(Path(model_dir), lazy=True, strict=False)
    can_tensor = hasattr(probe, "shard")
    can_pipeline = hasattr(getattr(probe, "model", None), "pipeline")
    arch = config.get("model_type", "this architecture")
    del probe
    if split == "auto":
        split = "tensor" if can_tensor else "pipeline" if can_pipeline else ""
    if not split or (split == "tensor" and not can_tensor):
        how = "tensor parallel" if split == "tensor" else "tensor or pipeline parallel"
        raise ValueError(f"mlx_lm cannot split {arch} models across machines ({how})")
    if split == "pipeline" and not can_pipeline:
        raise ValueError(f"mlx_lm cannot split {arch} models across machines (pipeline parallel)")
    if split == "pipeline" and not (Path(model_dir) / "model.safetensors.index.json").is_file():
        raise ValueError(
            "pipeline parallel needs the model's weights index (model.safetensors.index.json)"
        )
    model, tokenizer = sharded_load(
        model_dir,
        pipeline_group=mesh.group if split == "pipeline" else None,
        tensor_group=mesh.group if split == "tensor" else None,
    )
    plan = Plan(backend=f"mlx-{mesh.backend}", split=split, hosts=hosts_of_job(), size=mesh.size)
    return model, tokenizer, config, plan

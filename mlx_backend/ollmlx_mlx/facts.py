"""Static model facts for ``GET /v1/status``, computed once after load on the engine thread.

Everything here is read from the loaded model, its config and its template, never guessed from
the model's name. The dynamic parts of the status (memory, request counters) live in the engine.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import mlx.core as mx
from mlx import nn
from mlx.utils import tree_flatten


def model_facts(
    model_dir: str, model: nn.Module, tokenizer: Any, config: dict, template: str | None
) -> dict[str, Any]:
    return {
        "model": model_dir,
        "model_type": config.get("model_type"),
        # The mlx_lm module that actually runs it (after MODEL_REMAPPING, e.g. mistral -> llama).
        "architecture": type(model).__module__.rsplit(".", 1)[-1],
        "context_length": context_length(config),
        "parameter_count": parameter_count(model),
        "quantization": quantization(config),
        "dtype": weights_dtype(model),
        "chat_template": template,
        "capabilities": capabilities(template),
        "eos_token_ids": sorted(int(t) for t in tokenizer.eos_token_ids),
        "backend": backend(),
    }


def context_length(config: dict) -> int | None:
    """``max_position_embeddings``, preferring ``text_config`` (multimodal configs nest it)."""
    for cfg in (config.get("text_config") or {}, config):
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            if isinstance(cfg.get(key), int):
                return cfg[key]
    return None


def quantization(config: dict) -> dict[str, Any] | None:
    """The MLX quantization summary from ``config.json`` (per-module overrides are left out)."""
    q = config.get("quantization")
    if not isinstance(q, dict) or "bits" not in q:
        return None
    return {"bits": q["bits"], "group_size": q.get("group_size"), "mode": q.get("mode", "affine")}


def _quantized_modules(model: nn.Module) -> dict[str, nn.Module]:
    # QuantizedLinear / QuantizedEmbedding (and switch-layer variants) all carry bits + scales.
    return {
        name: m for name, m in model.named_modules() if hasattr(m, "bits") and hasattr(m, "scales")
    }


def parameter_count(model: nn.Module) -> int:
    """Parameters as the unquantised model would count them.

    A quantized weight is packed into uint32 words holding ``32 / bits`` values each; its scales
    and biases are quantization overhead, not parameters, so they are not counted.
    """
    quantized = _quantized_modules(model)
    total = 0
    for name, array in tree_flatten(model.parameters()):
        owner, _, leaf = name.rpartition(".")
        module = quantized.get(owner)
        if module is None:
            total += array.size
        elif leaf == "weight":
            total += array.size * 32 // module.bits
    return total


def weights_dtype(model: nn.Module) -> str:
    """The dtype of the embedding weights (of its scales when the embedding is quantized)."""
    for _, module in model.named_modules():
        if isinstance(module, nn.QuantizedEmbedding):
            return _dtype_name(module.scales.dtype)
        if isinstance(module, nn.Embedding):
            return _dtype_name(module.weight.dtype)
    # No embedding module found (unusual architectures): the most common floating dtype.
    counts: Counter = Counter()
    for _, array in tree_flatten(model.parameters()):
        if mx.issubdtype(array.dtype, mx.floating):
            counts[array.dtype] += array.size
    return _dtype_name(counts.most_common(1)[0][0]) if counts else "unknown"


def _dtype_name(dtype: mx.Dtype) -> str:
    return str(dtype).rsplit(".", 1)[-1]  # "mlx.core.float16" -> "float16"


def capabilities(template: str | None) -> list[str]:
    """Ollama-style capabilities. "completion" always; the rest are inferred from the template."""
    caps = ["completion"]
    if template:
        if "tools" in template or "tool_call" in template:
            caps.append("tools")
        if "<think>" in template and "</think>" in template:
            caps.append("thinking")
    return caps


def backend() -> str:
    if mx.default_device().type == mx.cpu:
        return "cpu"
    if mx.metal.is_available():
        return "metal"
    return "cuda" if mx.cuda.is_available() else "gpu"


def memory() -> dict[str, int]:
    """MLX allocator counters in bytes. Plain reads of process-wide counters: safe from any thread."""
    return {
        "active": mx.get_active_memory(),
        "peak": mx.get_peak_memory(),
        "cache": mx.get_cache_memory(),
    }


def weights_nbytes(model: nn.Module) -> int:
    """Bytes of the model's parameters as loaded (quantized weights, scales and biases)."""
    return sum(int(a.nbytes) for _, a in tree_flatten(model.parameters()))


def memory_limit() -> int:
    """The memory this process can use for MLX arrays: Metal's recommended working set, the
    GPU's memory on CUDA, physical RAM on the CPU backend."""
    info: dict[str, Any] = {}
    try:
        info = dict(mx.device_info())
    except (AttributeError, RuntimeError):
        pass
    for key in ("max_recommended_working_set_size", "memory_size", "total_memory"):
        if isinstance(info.get(key), int) and info[key] > 0:
            return int(info[key])
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


# The default prefix-cache budget: a quarter of what the weights leave free, at most 8 GiB (the
# bound of Ollama's own MLX prefix cache).
PREFIX_SHARE = 4
PREFIX_MAX = 8 << 30


def default_prefix_budget(limit: int, weights: int) -> int:
    return max(0, min(PREFIX_MAX, (limit - weights) // PREFIX_SHARE))

"""Vision models through mlx-vlm: detection, loading, image prompts and the generation step.

A model directory whose ``config.json`` has a ``vision_config`` object is a vision-language model
(mlx_lm would load most of them text-only, dropping the vision tower; mlx-engine.md §1.13). Such a
model is loaded with mlx-vlm (an optional install) and every request, with or without images,
goes through mlx-vlm's ``generate_step``; the tokenizer is still mlx_lm's ``TokenizerWrapper``, so
templates, detokenizing, stop strings, logprobs and ``format`` work as for text models.

Images arrive as Ollama sends them: base64 strings in a message's ``images`` array. A message
with images gets Hugging Face's multimodal content (``[{"type": "image"}, ..., {"type": "text",
"text": ...}]``), which VLM chat templates turn into the model's image placeholder; the model's
processor then expands each placeholder into the image's tokens and computes the pixel values.
Runs on the engine thread only.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx

from .protocol import ChatExtras, RequestError

# What users must install for vision models (the daemon's managed venv does it on demand).
REQUIREMENT = "mlx-vlm==0.7.10"


def is_vlm(model_dir: str | Path) -> bool:
    """True when ``config.json`` describes a vision tower (a ``vision_config`` object)."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and isinstance(config.get("vision_config"), dict)


def load(model_dir: str) -> tuple[Any, Any, Any, dict]:
    """``(model, processor, tokenizer, config)``: mlx-vlm's model and processor, mlx_lm's
    tokenizer wrapper (with the config's EOS ids, as ``mlx_lm.load`` sets them)."""
    try:
        from mlx_vlm.utils import load as vlm_load
    except ImportError as exc:
        raise RuntimeError(
            f"{model_dir} is a vision model and needs mlx-vlm: pip install '{REQUIREMENT}' ({exc})"
        ) from exc
    from mlx_lm.utils import load_tokenizer

    model, processor = vlm_load(model_dir, lazy=False)
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    eos = config.get("eos_token_id")
    if eos is None:
        eos = (config.get("text_config") or {}).get("eos_token_id")
    tokenizer = load_tokenizer(Path(model_dir), eos_token_ids=eos)
    return model, processor, tokenizer, config


@dataclass
class VisionInputs:
    """What the processor computed for a prompt with images, besides its token ids."""

    pixel_values: Any = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. image_grid_thw (Qwen2-VL)


def has_images(messages: list[dict[str, Any]] | None) -> bool:
    return bool(messages) and any(m.get("images") for m in messages)


def multimodal_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with images get list content (image parts first, then the text); the
    ``images`` key itself is not passed to the template."""
    out = []
    for m in messages:
        images = m.get("images") or []
        msg = {k: v for k, v in m.items() if k != "images"}
        if images:
            parts: list[dict[str, Any]] = [{"type": "image"} for _ in images]
            msg["content"] = [*parts, {"type": "text", "text": m.get("content", "")}]
        out.append(msg)
    return out


def decode_image(data: Any, where: str) -> Any:
    from PIL import Image

    if not isinstance(data, str):
        raise RequestError(f'"{where}" must be a base64 string')
    try:
        raw = base64.b64decode(data, validate=False)
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (binascii.Error, ValueError, OSError) as exc:
        raise RequestError(f'"{where}" is not a readable image: {exc}') from None
    return image.convert("RGB")


class ImagePrompts:
    """Renders chats with images into token ids, remembering the processor's other outputs so
    the engine can pick those of the rendering ``templates.fit_messages`` chose."""

    def __init__(self, processor: Any, tokenizer: Any, extras: ChatExtras):
        self._processor = processor
        self._tokenizer = tokenizer
        self._extras = extras
        self._images: dict[int, Any] = {}  # id(message) -> decoded images
        self._rendered: list[tuple[list[int], VisionInputs]] = []

    def decode_all(self, messages: list[dict[str, Any]]) -> None:
        """Decode every image once, up front, so a bad one is a 400 before anything else."""
        for i, m in enumerate(messages):
            images = m.get("images") or []
            if not isinstance(images, list):
                raise RequestError(f'"messages[{i}].images" must be an array')
            self._images[id(m)] = [
                decode_image(d, f"messages[{i}].images[{j}]") for j, d in enumerate(images)
            ]

    def render(self, messages: list[dict[str, Any]]) -> list[int]:
        kwargs = self._extras.template_args()
        text = self._tokenizer.apply_chat_template(
            multimodal_messages(messages), add_generation_prompt=True, tokenize=False, **kwargs
        )
        images = [img for m in messages for img in self._images.get(id(m), [])]
        if images:
            out = self._processor(text=[text], images=images)
            ids = [int(t) for t in _first_row(out["input_ids"])]
            inputs = VisionInputs(
                pixel_values=mx.array(out["pixel_values"]),
                extra={
                    k: mx.array(v)
                    for k, v in out.items()
                    if k not in ("input_ids", "pixel_values", "attention_mask")
                },
            )
        else:
            ids, inputs = (
                list(self._tokenizer.encode(text, add_special_tokens=False)),
                VisionInputs(),
            )
        bos = self._tokenizer.bos_token_id
        if bos is not None and ids[:2] == [bos, bos]:  # the template's BOS and the processor's
            ids = ids[1:]
        self._rendered.append((ids, inputs))
        return ids

    def inputs_for(self, tokens: list[int]) -> VisionInputs:
        for ids, inputs in self._rendered:
            if ids is tokens:
                return inputs
        raise RuntimeError("no rendering matches the chosen prompt")


def _first_row(ids: Any) -> list[int]:
    rows = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    return rows[0] if rows and isinstance(rows[0], list) else rows


class FullHistory:
    """Adapts mlx_lm-style logits processors to mlx-vlm's ``generate_step``.

    mlx_lm hands processors every prompt token plus the generated ones; mlx-vlm hands them only
    the tail of the prompt left after chunked prefill. This keeps mlx_lm's view (the penalties'
    window and the ``format`` constraint's prompt offset rely on it).
    """

    def __init__(self, prompt: list[int], processors: list[Callable[[mx.array, mx.array], Any]]):
        self._prompt = mx.array(prompt)
        self._tokens: mx.array | None = None
        self._processors = processors

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        if self._tokens is None:
            self._tokens = self._prompt
        else:
            self._tokens = mx.concatenate([self._tokens, tokens[-1:].astype(self._prompt.dtype)])
        for processor in self._processors:
            logits = processor(self._tokens, logits)
        return logits


def generate_step(
    model: Any,
    prompt: list[int],
    inputs: VisionInputs,
    *,
    max_tokens: int,
    sampler: Callable[[mx.array], mx.array],
    processors: list[Callable[[mx.array, mx.array], Any]],
    prefill_step_size: int,
) -> Any:
    """mlx-vlm's generator of ``(token, logprobs)``, as mlx_lm's ``generate_step`` yields them."""
    from mlx_vlm.generate.ar import generate_step as vlm_step

    return vlm_step(
        mx.array(prompt)[None],
        model,
        inputs.pixel_values,
        None,
        max_tokens=max_tokens,
        sampler=sampler,
        logits_processors=[FullHistory(prompt, processors)] if processors else None,
        prefill_step_size=prefill_step_size,
        **inputs.extra,
    )

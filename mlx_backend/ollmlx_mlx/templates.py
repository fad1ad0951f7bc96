"""Chat templates: finding the model's template, rendering messages, and fitting them into num_ctx.

A template can live in three places (fixtures.md, "Pitfalls"): ``tokenizer_config.json`` (older
repos), ``chat_template.jinja`` (transformers 5 style, what ``mlx_lm convert`` writes) or
``chat_template.json`` (some vision repos). ``install_template`` makes whichever exists the
tokenizer's template, so rendering has a single path. Runs on the engine thread (it uses the
tokenizer).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import log
from .protocol import ChatExtras, RequestError

# Used only when the model ships no template at all (base models): "role: content" lines, then
# an open assistant turn, which is what mlx_lm.server falls back to as well.
_FALLBACK_ASSISTANT = "assistant: "


def install_template(tokenizer: Any, model_dir: Path) -> str | None:
    """Make sure ``tokenizer.chat_template`` is set if the model has a template anywhere.

    Returns the template text, or None when the model has none (the plain fallback is used).
    """
    text = tokenizer.chat_template
    source = "tokenizer_config.json"
    if not text:
        text, source = _template_file(model_dir)
        if text:
            # TokenizerWrapper forwards these attributes to the Hugging Face tokenizer.
            tokenizer.chat_template = text
            tokenizer.has_chat_template = True
    if isinstance(text, dict):  # transformers allows named templates; "default" is the one used
        text = text.get("default") or next(iter(text.values()), None)
    if text:
        log.debug("chat template found", source=source)
    else:
        log.warning("model has no chat template; using a plain role: content format")
    return text or None


def _template_file(model_dir: Path) -> tuple[str | None, str]:
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8"), jinja.name
    as_json = model_dir / "chat_template.json"
    if as_json.is_file():
        try:
            value = json.loads(as_json.read_text(encoding="utf-8")).get("chat_template")
        except (ValueError, AttributeError) as exc:
            log.warning("ignoring unreadable chat_template.json", error=str(exc))
            return None, as_json.name
        return (value if isinstance(value, str) else None), as_json.name
    return None, ""


def render_text(
    tokenizer: Any, messages: list[dict[str, Any]], extras: ChatExtras | None = None
) -> str:
    """The prompt text for ``messages`` (for ``/v1/render``).

    ``extras`` (tools, template kwargs such as ``enable_thinking``) reach the template as keyword
    arguments. An explicit ``enable_thinking`` wins over mlx_lm's default (``has_thinking``),
    which the wrapper applies only when the key is absent. The plain fallback ignores them.
    """
    kwargs = (extras or ChatExtras()).template_args()
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, **kwargs
        )
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join(lines + [_FALLBACK_ASSISTANT])


def render_tokens(
    tokenizer: Any, messages: list[dict[str, Any]], extras: ChatExtras | None = None
) -> list[int]:
    """Prompt token ids for ``messages`` (``extras`` as in ``render_text``).

    With a template, ``apply_chat_template(tokenize=True)`` is used rather than encoding the
    rendered text, because templates already emit BOS and encoding would add a second one.
    """
    if tokenizer.chat_template:
        kwargs = (extras or ChatExtras()).template_args()
        ids = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, **kwargs
        )
        return list(ids)
    return list(tokenizer.encode(render_text(tokenizer, messages), add_special_tokens=True))


# Tokens decoded from the end of a prompt to see whether it opens a reasoning block: enough for
# any opening tag plus the whitespace a template puts after it.
_TAIL_TOKENS = 64


def opens_thinking(tokenizer: Any, prompt: list[int], open_tag: str) -> bool:
    """True when the prompt text, right-trimmed of whitespace, ends with ``open_tag``: the
    template already opened the reasoning block, so the output starts inside it."""
    tail = tokenizer.decode(prompt[-_TAIL_TOKENS:])
    return tail.rstrip().endswith(open_tag)


# Ollama's refusals of a prompt that does not fit num_ctx (llm/llama_server.go): with
# ``truncate: false`` the runner's own (llama-server's text), with ``shift: false`` Ollama's.
NO_SHIFT = (
    "the prompt is longer than the context length currently available to the model; shorten "
    "the prompt, adjust the context length in settings, or use a model with a longer context "
    "length"
)


def context_error(total: int, num_ctx: int) -> RequestError:
    """The 400 for a prompt that leaves no room to generate, with ``truncate: false``."""
    return RequestError(
        f"request ({total} tokens) exceeds the available context size ({num_ctx} tokens), "
        "try increasing it"
    )


def fit_messages(
    render: Callable[[list[dict[str, Any]]], list[int]],
    messages: list[dict[str, Any]],
    budget: int,
    truncate: bool,
) -> tuple[list[int], int]:
    """Render ``messages``, dropping the oldest while they do not fit ``budget`` tokens (num_ctx
    less any ``context`` tokens put before them); returns ``(tokens, dropped)``.

    With ``truncate``, the oldest messages that are neither ``system`` nor the last are dropped
    until the prompt is shorter than ``budget`` (at least one token of room must remain); if
    even dropping all of them is not enough, the shortest rendering is returned and
    ``fit_tokens`` cuts it. Dropping more messages never makes a prompt longer, so the smallest
    number to drop is found by binary search: O(log n) renders instead of one per message.
    """
    tokens = render(messages)
    if len(tokens) < budget or not truncate:
        return tokens, 0
    droppable = [i for i, m in enumerate(messages[:-1]) if m["role"] != "system"]

    def without_oldest(k: int) -> list[dict[str, Any]]:
        gone = set(droppable[:k])
        return [m for i, m in enumerate(messages) if i not in gone]

    lo, hi = 1, len(droppable)
    best = (tokens, 0)
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = render(without_oldest(mid))
        if len(candidate) < budget:
            best, hi = (candidate, mid), mid - 1
        else:
            lo = mid + 1
    if len(best[0]) >= budget and droppable:
        best = (render(without_oldest(len(droppable))), len(droppable))
    return best


def keep_count(prompt: list[int], num_keep: int, bos: int | None, num_ctx: int) -> int:
    """Tokens kept at the start on truncation and context shift: ``num_keep`` (-1: the whole
    prompt) plus the BOS token when the prompt starts with one, as Ollama counts them."""
    keep = len(prompt) if num_keep < 0 else num_keep
    if bos is not None and prompt and prompt[0] == bos:
        keep += 1
    return max(0, min(keep, num_ctx - 1))


def shift_discard(num_ctx: int, keep: int) -> int:
    """Tokens a context shift drops after the kept ones: half of the rest (llama.cpp's and
    Ollama's first shift), at least one."""
    return max((num_ctx - keep) // 2, 1)


def fit_tokens(
    prompt: list[int], num_ctx: int, keep: int, truncate: bool, shift: bool
) -> list[int]:
    """``prompt`` when it leaves room to generate; otherwise cut as Ollama cuts it: the first
    ``keep`` tokens and the end, freeing half of the rest of the context for the reply (as a
    context shift would), or refused with Ollama's texts when ``truncate``/``shift`` is off."""
    if len(prompt) < num_ctx:
        return prompt
    if not truncate:
        raise context_error(len(prompt), num_ctx)
    if not shift:
        raise RequestError(NO_SHIFT)
    limit = num_ctx - shift_discard(num_ctx, keep)
    return prompt[:keep] + prompt[keep + len(prompt) - limit :]

"""Prompt forms accepted by :func:`glm_vllm_compat.generate` and their lowering.

Accepted: ``str``, ``list[str]``, ``list[int]`` (one tokenized prompt),
``list[list[int]]``, ``{"prompt": ...}``, ``{"prompt_token_ids": ...}`` and the
:class:`TextPrompt` / :class:`TokensPrompt` dicts below (vLLM's own TypedDicts
are plain dicts too, so they are accepted as well).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Dict, List, Union

from typing_extensions import TypedDict

__all__ = ["Prompt", "PromptInput", "TextPrompt", "TokensPrompt", "is_token_list", "normalize_batch", "normalize_one"]


class _TextPromptBase(TypedDict):
    prompt: str


class TextPrompt(_TextPromptBase, total=False):
    """A text prompt (``vllm.inputs.TextPrompt`` on every release that has it)."""

    multi_modal_data: Any
    mm_processor_kwargs: Dict[str, Any]


class _TokensPromptBase(TypedDict):
    prompt_token_ids: List[int]


class TokensPrompt(_TokensPromptBase, total=False):
    """A tokenized prompt (``vllm.inputs.TokensPrompt`` on every release that has it)."""

    prompt: str
    multi_modal_data: Any
    mm_processor_kwargs: Dict[str, Any]


PromptInput = Union[str, Sequence[int], TextPrompt, TokensPrompt, Mapping[str, Any]]
"""One prompt in any accepted form."""

Prompt = Union[str, Dict[str, Any]]
"""A normalized prompt: a ``str`` or a dict with ``prompt`` or ``prompt_token_ids``."""


_INT = {int}
_STR = {str}


def is_token_list(value: object) -> bool:
    """A non-empty list or tuple of ints (bools excluded); the check runs in C."""
    return type(value) in (list, tuple) and len(value) > 0 and set(map(type, value)) == _INT  # type: ignore[arg-type, call-overload]


def normalize_one(prompt: object) -> Prompt:
    """Validate one prompt and return it as ``str`` or a prompt dict."""
    if type(prompt) is str:
        return prompt
    if is_token_list(prompt):
        return {"prompt_token_ids": list(prompt)}  # type: ignore[call-overload]
    if isinstance(prompt, str):  # a str subclass
        return str(prompt)
    if isinstance(prompt, Mapping):
        return _normalize_mapping(prompt)
    raise TypeError(
        "a prompt must be a str, a list of token ids, or a dict with 'prompt' or "
        f"'prompt_token_ids'; got {type(prompt).__name__}"
    )


def _normalize_mapping(prompt: Mapping[str, Any]) -> Dict[str, Any]:
    ids = prompt.get("prompt_token_ids")
    if ids is not None:
        if not is_token_list(ids):
            raise TypeError("'prompt_token_ids' must be a non-empty list of ints")
        return dict(prompt)
    if isinstance(prompt.get("prompt"), str):
        return dict(prompt)
    raise TypeError("a prompt dict needs a 'prompt' (str) or 'prompt_token_ids' (list of ints) key")


def normalize_batch(prompts: object) -> list[Prompt]:
    """Normalize what was passed as ``prompts`` to a list of prompts."""
    kind = type(prompts)
    if kind is str:
        return [prompts]  # type: ignore[list-item]
    if kind is list or kind is tuple:
        items: Any = prompts
        if not items:
            return []
        first, last = type(items[0]), type(items[-1])
        if first is int and last is int:  # one tokenized prompt; vLLM checks every id itself
            return [{"prompt_token_ids": items if kind is list else list(items)}]
        if first is str and set(map(type, items)) == _STR:
            return list(items)
        return [normalize_one(p) for p in items]
    if isinstance(prompts, (str, Mapping)):
        return [normalize_one(prompts)]
    raise TypeError(
        "prompts must be a str, a list of token ids, a prompt dict, or a list of those; "
        f"got {type(prompts).__name__}"
    )


def split_legacy(prompt: Prompt) -> tuple[str | None, list[int] | None, dict[str, Any]]:
    """(text, token ids, other keys) for releases without prompt dicts."""
    if isinstance(prompt, str):
        return prompt, None, {}
    rest = {k: v for k, v in prompt.items() if k not in ("prompt", "prompt_token_ids")}
    return prompt.get("prompt"), prompt.get("prompt_token_ids"), rest

"""OpenAI chat messages -> the messages and variables GLM chat templates expect.

Every family's rules live with the family (``server.families``; its
``template_messages`` and ``template_kwargs``). Common to all of them:

* ``system`` and ``developer`` -> ``system``. The user's own system message is
  always kept, also when tools are present (the GLM-4 demo server replaced it).
* content given as a string or a list of text parts renders the same (parts
  joined with ``"\\n"``, as vLLM does), tool results included; ``None`` ->
  ``""`` (Jinja would print ``None``).
* assistant ``reasoning_content`` and (vLLM 0.16+) ``reasoning`` are both
  accepted and passed under both names; the family's template decides where
  earlier reasoning is rendered.

This module keeps the original name-based entry points as thin lookups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .families import GlmFamily, family_names, get_family
from .families._messages import MessageLike, template_tools
from .protocol import ChatCompletionRequest, Tool

__all__ = [
    "FAMILIES",
    "template_kwargs",
    "template_tools",
    "thinking_enabled",
    "to_template_messages",
]

FAMILIES = tuple(family_names())


def _family(family: str | GlmFamily) -> GlmFamily:
    try:
        return get_family(family)
    except KeyError:
        raise ValueError(f"unknown GLM family {family!r}; expected one of {', '.join(FAMILIES)}") from None


def to_template_messages(
    messages: Sequence[MessageLike],
    family: str | GlmFamily,
    *,
    tools: Sequence[Tool | Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Convert OpenAI messages (request models or dicts) for ``family``'s template.

    Pure: the input is not modified. Raises :class:`InvalidRequest` for an
    unknown role or tool-call arguments that are not a JSON object.
    """
    return _family(family).template_messages(messages, tools=tools)


def thinking_enabled(request: ChatCompletionRequest, family: str | GlmFamily = "glm45") -> bool:
    """Whether ``request`` leaves thinking on for ``family`` (on by default)."""
    return _family(family).thinking_on(request.chat_template_kwargs or {})


def template_kwargs(
    request: ChatCompletionRequest, family: str | GlmFamily, defaults: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Variables for the chat template besides ``messages`` (see ``GlmFamily.template_kwargs``)."""
    return _family(family).template_kwargs(request, defaults)

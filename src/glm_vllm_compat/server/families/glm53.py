"""GLM-5.3 / GLM-5.3-Flash (``Glm5NextForCausalLM``, vLLM 0.30+): the compact prompt.

Format (GLM-4.7's call text): no newline after role tokens, generation prompt
``<|assistant|><think>`` (thinking always on), ``reasoning_effort`` low / high
/ max (default max) rendered as a system line, earlier turns' reasoning kept
by default (``clear_thinking=true`` drops it), ``defer_loading``/``strict``
removed from tool definitions, and tool responses put in the order of the
preceding assistant turn's call ids (done here, before the template runs).
A request to turn thinking off is logged as a warning; thinking stays on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ..protocol import ChatCompletionRequest, Tool
from ._base import COMPACT_GENERATION_PROMPT, GlmFamily, ThinkingControls, call_style
from ._messages import MessageLike

__all__ = ["FAMILY", "Glm53Family"]

_DROPPED_TOOL_KEYS = ("defer_loading", "strict")


@dataclasses.dataclass(frozen=True)
class Glm53Family(GlmFamily):
    def matches_template(self, template: str) -> bool:
        return COMPACT_GENERATION_PROMPT in template and call_style(template) in ("inline", None)

    def template_tools(self, request: ChatCompletionRequest) -> list[dict[str, Any]] | None:
        tools = super().template_tools(request)
        if tools is None:
            return None
        return [_without_keys(tool) for tool in tools]

    def template_messages(
        self, messages: Sequence[MessageLike], *, tools: Sequence[Tool | Mapping[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        return _reorder_tool_results(super().template_messages(messages, tools=tools))


def _without_keys(tool: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in tool.items() if k not in _DROPPED_TOOL_KEYS}
    function = out.get("function")
    if isinstance(function, Mapping):
        out["function"] = {k: v for k, v in function.items() if k not in _DROPPED_TOOL_KEYS}
    return out


def _reorder_tool_results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each run of tool messages sorted into the order of the preceding calls' ids (stable)."""
    out: list[dict[str, Any]] = []
    order: dict[str, int] = {}
    run: list[dict[str, Any]] = []
    for message in [*messages, {"role": ""}]:
        if message["role"] == "tool":
            run.append(message)
            continue
        if run:
            out.extend(sorted(run, key=lambda m: order.get(str(m.get("tool_call_id")), len(order))))
            run = []
        if message["role"] == "assistant":
            order = {str(c.get("id")): i for i, c in enumerate(message.get("tool_calls") or ()) if c.get("id") is not None}
        if message["role"]:
            out.append(message)
    return out


FAMILY = Glm53Family(
    name="glm53",
    title="GLM-5.3 / GLM-5.3-Flash",
    architectures=frozenset({"Glm5NextForCausalLM"}),
    tool_parser="glm47",
    reasoning_parser="glm47",
    thinking=ThinkingControls(can_disable=False, clear_thinking=False, efforts=("low", "high", "max"), default_effort="max"),
)

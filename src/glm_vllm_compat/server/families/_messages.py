"""Message helpers shared by every family's history dialect (moved from ``_chat_history``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Union

from pydantic import BaseModel

from ..protocol import ChatCompletionRequest, InvalidRequest, Tool

__all__ = ["MessageLike", "as_dict", "history_calls", "reasoning_of", "template_tools", "tool_dicts"]

MessageLike = Union[BaseModel, Mapping[str, Any]]


def as_dict(message: MessageLike) -> dict[str, Any]:
    if isinstance(message, BaseModel):
        return message.model_dump(exclude_none=True)
    return dict(message)


def _arguments(value: Any, where: str) -> dict[str, Any]:
    """A history tool call's ``arguments`` (JSON string or dict) as a dict."""
    if isinstance(value, Mapping):
        return dict(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    try:
        decoded = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        raise InvalidRequest(f"{where}: arguments are not valid JSON: {str(value)[:80]!r}", where) from None
    if not isinstance(decoded, dict):
        raise InvalidRequest(f"{where}: arguments must be a JSON object", where)
    return decoded


def history_calls(message: dict[str, Any], index: int) -> list[dict[str, Any]]:
    """An assistant message's ``tool_calls`` with ``arguments`` parsed into dicts."""
    calls: list[dict[str, Any]] = []
    for j, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        where = f"messages[{index}].tool_calls[{j}].function.arguments"
        converted: dict[str, Any] = {
            "type": "function",
            "function": {"name": function.get("name", ""), "arguments": _arguments(function.get("arguments"), where)},
        }
        if call.get("id") is not None:
            converted["id"] = call["id"]
        calls.append(converted)
    return calls


def reasoning_of(message: Mapping[str, Any]) -> str | None:
    """``reasoning_content`` or (vLLM 0.16+ name) ``reasoning`` of an assistant message."""
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str):
            return value
    return None


def tool_dicts(tools: Sequence[Tool | Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [t.model_dump(exclude_none=True) if isinstance(t, Tool) else dict(t) for t in tools]


def template_tools(request: ChatCompletionRequest) -> list[dict[str, Any]] | None:
    """The tools to render: none for ``tool_choice="none"``, only the named one for a named choice."""
    if not request.tools_enabled or not request.tools:
        return None
    named = request.named_tool
    tools = [t for t in request.tools if named is None or t.function.name == named]
    return tool_dicts(tools)

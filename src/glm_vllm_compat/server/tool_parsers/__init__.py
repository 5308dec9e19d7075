"""GLM tool-call parsers behind a lazy registry (in the style of vLLM 0.33's).

``name -> (module, class)`` is recorded up front and the module is imported on
first use::

    parser_cls = get_tool_parser("glm45")
    parser = parser_cls(request.tools, tool_choice=request.tool_choice,
                        parallel_tool_calls=request.parallel_tool_calls)
    events = parser.feed(delta) ... + parser.finish()

Which parser a model gets is decided by its GLM family (``server.families``);
:func:`auto_tool_parser` is a shortcut to that detection.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._registry import LazyRegistry, UnknownName
from ._base import (
    ParseEvent,
    TextDelta,
    ToolCallArgs,
    ToolCallStart,
    ToolLike,
    ToolParser,
    coerce_argument,
    new_tool_call_id,
    schema_types,
    tool_schemas,
)

__all__ = [
    "ParseEvent",
    "TextDelta",
    "ToolCallArgs",
    "ToolCallStart",
    "ToolLike",
    "TOOL_PARSERS",
    "ToolParser",
    "UnknownToolParser",
    "auto_tool_parser",
    "coerce_argument",
    "get_tool_parser",
    "new_tool_call_id",
    "register_tool_parser",
    "schema_types",
    "tool_parser_names",
    "tool_schemas",
]

class UnknownToolParser(UnknownName):
    """No tool parser of that name; the message lists the valid names."""


TOOL_PARSERS: LazyRegistry[type[ToolParser]] = LazyRegistry(
    "tool parser",
    ToolParser,
    {
        "glm4": (f"{__name__}.glm4", "Glm4ToolParser"),
        "glm45": (f"{__name__}.glm45", "Glm45ToolParser"),
        "glm47": (f"{__name__}.glm45", "Glm47ToolParser"),
    },
    error=UnknownToolParser,
)


def register_tool_parser(name: str, module: str, class_name: str) -> None:
    """Register (or replace) a parser lazily: ``module`` is imported on first use."""
    TOOL_PARSERS.register(name, module, class_name)


def tool_parser_names() -> list[str]:
    return sorted(TOOL_PARSERS.names())


def get_tool_parser(name: str) -> type[ToolParser]:
    """The parser class registered as ``name``.

    Raises :class:`UnknownToolParser` (a ``KeyError``) listing the valid names.
    """
    return TOOL_PARSERS.get(name)


def auto_tool_parser(architectures: Sequence[str], chat_template: str | None) -> str:
    """The tool parser of the GLM family detected from the model (see ``server.families``)."""
    from ..families import detect_family

    return detect_family(architectures, chat_template).tool_parser

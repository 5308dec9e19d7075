"""The streaming tool-parser interface shared by the GLM parsers.

A parser is fed the model's *content* text (reasoning already removed) delta
by delta and answers with :data:`ParseEvent` s. The non-streamed path feeds the
whole text at once and then calls :meth:`ToolParser.finish`, so both paths run
the same code and cannot disagree.

Rules every parser follows (implemented here):

* A call's first event is :class:`ToolCallStart` carrying the id (created once
  per call, ``call_<24 hex>``) and the name; later events are
  :class:`ToolCallArgs` fragments whose concatenation is exactly the final
  ``arguments`` JSON string.
* Text is passed on as soon as it can no longer be part of a tag, except
  whitespace: a run of whitespace is held until non-whitespace text follows.
  Whitespace directly before a call and trailing whitespace once a call was
  made are dropped (vLLM strips content when tools are called), so a reply of
  ``"Let me check.\\n<tool_call>..."`` has content ``"Let me check."``.
* ``parallel_tool_calls=False``: only the first call is emitted; later calls
  are parsed and dropped, not returned as text. This is what vLLM does
  (``maybe_filter_parallel_tool_calls`` keeps tool-call index 0 only).
* ``tool_choice="none"`` (or no tools): no parsing, all text passes through.
  A named ``tool_choice`` makes only that tool's name acceptable.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from ..protocol import NamedToolChoice, Tool

__all__ = [
    "ParseEvent",
    "TextDelta",
    "ToolCallArgs",
    "ToolCallStart",
    "ToolLike",
    "ToolParser",
    "coerce_argument",
    "new_tool_call_id",
    "partial_tag_overlap",
    "schema_types",
    "tool_schemas",
]


@dataclass(frozen=True)
class TextDelta:
    """Plain assistant text."""

    text: str


@dataclass(frozen=True)
class ToolCallStart:
    """The first event of a tool call: its index in this reply, id and name."""

    index: int
    id: str
    name: str


@dataclass(frozen=True)
class ToolCallArgs:
    """A fragment of the ``arguments`` JSON string of call ``index``."""

    index: int
    fragment: str


ParseEvent = Union[TextDelta, ToolCallStart, ToolCallArgs]
ToolLike = Union[Tool, Mapping[str, Any]]
ToolChoiceLike = Union[str, NamedToolChoice, Mapping[str, Any], None]


def new_tool_call_id() -> str:
    """``call_`` followed by 24 random hex digits (OpenAI's length)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def partial_tag_overlap(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def tool_schemas(tools: Sequence[ToolLike] | None) -> dict[str, dict[str, Any]]:
    """``{name: parameters JSON schema}`` for request tools (models or dicts)."""
    out: dict[str, dict[str, Any]] = {}
    for tool in tools or ():
        name: Any
        params: Any
        if isinstance(tool, Tool):
            name, params = tool.function.name, tool.function.parameters
        else:
            function = tool.get("function") or {}
            name, params = function.get("name"), function.get("parameters")
        if isinstance(name, str) and name:
            out[name] = dict(params) if isinstance(params, Mapping) else {}
    return out


def _choice_name(tool_choice: ToolChoiceLike) -> str | None:
    if isinstance(tool_choice, NamedToolChoice):
        return tool_choice.function.name
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return str(function["name"])
    return None


# --------------------------------------------------------------------------
# Argument typing
# --------------------------------------------------------------------------

_JSON_TYPES = ("string", "integer", "number", "boolean", "null", "object", "array")


def schema_types(schema: Mapping[str, Any] | None) -> frozenset[str]:
    """The JSON types a property schema allows (``type``, ``anyOf``/``oneOf``, string ``enum``)."""
    if not isinstance(schema, Mapping):
        return frozenset()
    found: set[str] = set()
    declared = schema.get("type")
    if isinstance(declared, str):
        found.add(declared)
    elif isinstance(declared, list):
        found.update(t for t in declared if isinstance(t, str))
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key) or ():
            found |= schema_types(sub if isinstance(sub, Mapping) else None)
    enum = schema.get("enum")
    if not found and isinstance(enum, list) and enum and all(isinstance(e, str) for e in enum):
        found.add("string")
    return frozenset(t for t in found if t in _JSON_TYPES)


def _matches(value: Any, kind: str) -> bool:
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    return checks[kind](value)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_normal(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples -> lists), or ``_NOT_DECODED``."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return _NOT_DECODED


_NOT_DECODED = object()


def _decode_json(text: str) -> Any:
    try:
        return _json_normal(json.loads(text, parse_constant=_reject_constant))
    except (ValueError, RecursionError):
        return _NOT_DECODED


# Python accepts "123_456" as 123456; a JSON decoder does not, and neither do we.
_UNDERSCORED_NUMBER = re.compile(r"[+-]?[0-9_]+(\.[0-9_]*)?([eE][+-]?[0-9_]+)?")


def _decode(text: str) -> Any:
    """JSON first, then a Python literal (``ast.literal_eval``, never ``eval``)."""
    value = _decode_json(text)
    if value is not _NOT_DECODED or ("_" in text and _UNDERSCORED_NUMBER.fullmatch(text)):
        return value
    try:
        value = ast.literal_eval(text)
    except Exception:  # noqa: BLE001 - any malformed/hostile literal: keep the text
        return _NOT_DECODED
    return _json_normal(value)


def coerce_argument(raw: str, schema: Mapping[str, Any] | None) -> Any:
    """Type one ``<arg_value>`` by the property's JSON schema.

    A ``string`` property keeps the raw text verbatim (``"123"`` stays a
    string). A property without a type: JSON if the text parses as JSON, else
    the raw text (no Python-literal guessing: ``"123_456"`` stays a string,
    unlike SGLang's sglang#30644). Otherwise the stripped text is decoded as
    JSON, then as a Python literal with :func:`ast.literal_eval` (never
    ``eval``; underscored numbers excluded), else kept as the (stripped)
    string. When the schema allows ``string`` among other types, a decoded
    value is only used if its type is one of the others.
    """
    types = schema_types(schema)
    stripped = raw.strip()
    if not types:
        value = _decode_json(stripped)
        return raw if value is _NOT_DECODED else value
    if "string" in types:
        if "null" in types and stripped == "null":
            return None
        if types <= {"string", "null"}:
            return raw
    value = _decode(stripped)
    if value is _NOT_DECODED:
        return raw if "string" in types else stripped
    if "string" in types and not any(_matches(value, t) for t in types if t != "string"):
        return raw
    return value


def json_fragment(value: Any) -> str:
    """``json.dumps`` as the arguments are written: Chinese kept verbatim."""
    return json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------


class ToolParser:
    """Streaming-first tool-call parser; subclasses implement :meth:`_consume` and :meth:`_flush`."""

    name: ClassVar[str] = ""

    def __init__(
        self,
        tools: Sequence[ToolLike] | None,
        *,
        tool_choice: ToolChoiceLike = "auto",
        parallel_tool_calls: bool | None = True,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        self.schemas = tool_schemas(tools)
        named = _choice_name(tool_choice)
        self.allowed_names: frozenset[str] = frozenset(
            [named] if named is not None else self.schemas
        )
        self.enabled = tool_choice != "none" and bool(self.allowed_names)
        self.parallel_tool_calls = parallel_tool_calls is not False
        self._new_id = id_factory or new_tool_call_id
        self._events: list[ParseEvent] = []
        self._pending_ws = ""
        self._calls_started = 0
        self._current: int | None = None  # index of the open emitted call
        self._suppressed = False  # inside a call dropped by parallel_tool_calls=False
        self._finished = False
        self.left_open = False  # generation ended inside a call

    # -- public API ---------------------------------------------------------

    def feed(self, text: str) -> list[ParseEvent]:
        """Parse one delta of content text; returns the events it completes."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if not self.enabled:
            return [TextDelta(text)] if text else []
        if text:
            self._consume(text)
        return self._take()

    def finish(self) -> list[ParseEvent]:
        """Flush at the end of generation (text held for a possible tag, open calls)."""
        if self._finished:
            return []
        self._finished = True
        if not self.enabled:
            return []
        self._flush()
        if self._pending_ws and not self._calls_started:
            self._events.append(TextDelta(self._pending_ws))
        self._pending_ws = ""
        return self._take()

    @property
    def calls_emitted(self) -> int:
        """How many tool calls were emitted (started) so far."""
        return min(self._calls_started, 1) if not self.parallel_tool_calls else self._calls_started

    def is_allowed(self, name: str) -> bool:
        return name in self.allowed_names

    def could_be_allowed(self, prefix: str) -> bool:
        """True while ``prefix`` may still grow into an acceptable tool name."""
        return any(n.startswith(prefix) for n in self.allowed_names)

    # -- for subclasses -----------------------------------------------------

    def _consume(self, text: str) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        raise NotImplementedError

    def _take(self) -> list[ParseEvent]:
        events, self._events = self._events, []
        return events

    def _text(self, text: str) -> None:
        """Emit text, holding a trailing whitespace run (see the module docs)."""
        if not text:
            return
        combined = self._pending_ws + text
        body = combined.rstrip()
        self._pending_ws = combined[len(body) :]
        if body:
            self._events.append(TextDelta(body))

    def _start_call(self, name: str) -> None:
        self._pending_ws = ""
        if self._calls_started and not self.parallel_tool_calls:
            self._suppressed = True
            self._calls_started += 1
            return
        index = self._calls_started
        self._calls_started += 1
        self._current = index
        self._suppressed = False
        self._events.append(ToolCallStart(index, self._new_id(), name))

    def _args(self, fragment: str) -> None:
        if fragment and not self._suppressed and self._current is not None:
            self._events.append(ToolCallArgs(self._current, fragment))

    def _end_call(self) -> None:
        self._current = None
        self._suppressed = False

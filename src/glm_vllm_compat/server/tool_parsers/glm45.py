"""GLM-4.5 / GLM-4.6 / GLM-4.7 XML tool calls.

GLM-4.5::

    <tool_call>get_weather
    <arg_key>location</arg_key>
    <arg_value>北京</arg_value>
    </tool_call>

GLM-4.7 writes the same tags without the newlines
(``<tool_call>name<arg_key>k</arg_key><arg_value>v</arg_value></tool_call>``)
and zero-argument calls as ``<tool_call>name</tool_call>``. One state machine
reads both (vLLM also serves ``glm45`` with its 4.7 parser from 0.24.0).

Streaming: the call starts (id + name) as soon as its name is complete and
accepted; then one argument fragment per completed key/value pair
(``{"k": v``, ``, "k2": v2`` ... ``}``). Values of ``string`` properties are
streamed as they arrive (long code or file contents are not held back, vLLM
#32829); other values are typed by :func:`coerce_argument` once complete.

Malformed input degrades to text, nothing is dropped:

* an unknown (or, with a named ``tool_choice``, another) tool name, an empty
  name or a "name" longer than 128 characters: the ``<tool_call>`` tag and
  what follows are returned as text;
* stray text inside a call (not a tag) is returned as text, with the
  whitespace between stray pieces kept and whitespace next to tags dropped,
  the same for any split into deltas;
* generation ending inside a call (``finish_reason == "length"``): the call
  keeps the pairs completed so far, its JSON is closed so ``arguments`` stays
  valid (a string value being streamed is closed as is), the unparsed
  remainder of an unfinished pair is returned as text, and
  :attr:`~ToolParser.left_open` is set so the pipeline reports ``length``.
"""

from __future__ import annotations

import json
from typing import Any

from ._base import ToolParser, coerce_argument, json_fragment, partial_tag_overlap, schema_types

__all__ = ["Glm45ToolParser", "Glm47ToolParser"]

TOOL_START = "<tool_call>"
TOOL_END = "</tool_call>"
KEY_START = "<arg_key>"
KEY_END = "</arg_key>"
VALUE_START = "<arg_value>"
VALUE_END = "</arg_value>"
_MAX_NAME = 128

_TEXT, _NAME, _ARGS, _VALUE = "text", "name", "args", "value"


def _is_partial(text: str, tag: str) -> bool:
    """True if ``text`` is a proper prefix of ``tag`` (including empty)."""
    return len(text) < len(tag) and tag.startswith(text)


def _escape(text: str) -> str:
    """JSON string-content escaping; concatenation-invariant, so it can stream."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


class Glm45ToolParser(ToolParser):
    """``<tool_call>name<arg_key>k</arg_key><arg_value>v</arg_value></tool_call>`` blocks."""

    name = "glm45"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buf = ""
        self._state = _TEXT
        self._tool_name = ""
        self._pairs = 0
        self._in_text = False  # inside a call: stray text was the last thing read
        # While a step waits for a closing tag, new text is only appended and
        # probed for that tag, so a long value is not rescanned on every delta.
        self._waiting_for: str | None = None
        self._tail = ""
        self._held: list[str] = []

    # -- driver -------------------------------------------------------------

    def _consume(self, text: str) -> None:
        if self._waiting_for is not None:
            probe = self._tail + text
            self._held.append(text)
            if self._waiting_for not in probe:
                self._tail = probe[-(len(self._waiting_for) - 1) :]
                return
            self._sync()
        else:
            self._buf += text
        steps = {_TEXT: self._step_text, _NAME: self._step_name, _ARGS: self._step_args, _VALUE: self._step_value}
        while steps[self._state]():
            pass

    def _wait_for(self, tag: str, body: str) -> bool:
        """Keep ``body`` and skip work until ``tag`` can have arrived."""
        self._buf = body
        self._waiting_for = tag
        self._tail = body[-(len(tag) - 1) :]
        return False

    def _sync(self) -> None:
        self._buf = "".join([self._buf, *self._held])
        self._held = []
        self._waiting_for = None

    def _flush(self) -> None:
        self._sync()
        buf, self._buf = self._buf, ""
        if self._state == _TEXT:
            self._text(buf)
        elif self._state == _NAME:
            self._text(TOOL_START + buf)
        elif self._state == _ARGS:
            self.left_open = True
            self._close_arguments()
            self._call_text(buf if self._in_text else buf.lstrip())
            self._end_call()
        else:  # _VALUE: a string value being streamed
            self.left_open = True
            self._args(_escape(buf) + '"')
            self._close_arguments()
            self._end_call()
        self._state = _TEXT

    # -- states ---------------------------------------------------------------

    def _step_text(self) -> bool:
        buf = self._buf
        start = buf.find(TOOL_START)
        if start < 0:
            keep = partial_tag_overlap(buf, TOOL_START)
            self._text(buf[: len(buf) - keep])
            self._buf = buf[len(buf) - keep :]
            return False
        self._text(buf[:start])
        self._buf = buf[start + len(TOOL_START) :]
        self._state = _NAME
        return True

    def _step_name(self) -> bool:
        body = self._buf.lstrip()
        cuts = [i for i in (body.find("\n"), body.find("<")) if i >= 0]
        if not cuts:
            partial = body.rstrip()
            if len(body) > _MAX_NAME or (partial and not self.could_be_allowed(partial)):
                return self._degrade_name()
            return False
        name = body[: min(cuts)].strip()
        if not self.is_allowed(name):
            return self._degrade_name()
        self._tool_name = name
        self._pairs = 0
        self._in_text = False
        self._start_call(name)
        self._buf = body[min(cuts) :]
        self._state = _ARGS
        return True

    def _degrade_name(self) -> bool:
        """Not a call after all: the tag is text; rescan the rest as text."""
        self._text(TOOL_START)
        self._state = _TEXT
        return True

    def _step_args(self) -> bool:
        buf = self._buf
        body = buf.lstrip()
        if body.startswith(TOOL_END):
            self._in_text = False
            self._close_arguments()
            self._end_call()
            self._buf = body[len(TOOL_END) :]
            self._state = _TEXT
            return True
        if body.startswith(KEY_START):
            self._in_text = False
            return self._step_pair(body)
        if _is_partial(body, TOOL_END) or _is_partial(body, KEY_START):
            return False  # whitespace and/or a tag's start: wait (whitespace kept, see below)
        # Stray text inside the call: text, up to the next tag. Whitespace
        # between two stray pieces is kept, whitespace next to a tag is not;
        # a trailing whitespace run waits for what follows, so the result is
        # the same however the text is split into deltas.
        nxt = body.find("<", 1)
        junk = body if nxt < 0 else body[:nxt]
        core = junk.rstrip()
        lead = buf[: len(buf) - len(body)] if self._in_text else ""
        self._call_text(lead + core)
        self._in_text = True
        self._buf = body[len(core) :]
        return bool(self._buf.strip())

    def _step_pair(self, body: str) -> bool:
        key_end = body.find(KEY_END)
        if key_end < 0:
            return self._wait_for(KEY_END, body)
        key = body[len(KEY_START) : key_end].strip()
        after_key = body[key_end + len(KEY_END) :]
        rest = after_key.lstrip()
        if _is_partial(rest, VALUE_START):
            self._buf = body
            return False
        if not rest.startswith(VALUE_START):  # a key without a value: text
            self._call_text(body[: key_end + len(KEY_END)])
            self._buf = after_key
            return True
        value_text = rest[len(VALUE_START) :]
        schema = self._property_schema(key)
        if schema_types(schema) == {"string"}:
            self._args(self._pair_prefix(key) + '"')
            self._buf = value_text
            self._state = _VALUE
            return True
        value_end = value_text.find(VALUE_END)
        if value_end < 0:
            return self._wait_for(VALUE_END, body)
        value = coerce_argument(value_text[:value_end], schema)
        self._args(self._pair_prefix(key) + json_fragment(value))
        self._buf = value_text[value_end + len(VALUE_END) :]
        return True

    def _step_value(self) -> bool:
        buf = self._buf
        end = buf.find(VALUE_END)
        if end >= 0:
            self._args(_escape(buf[:end]) + '"')
            self._buf = buf[end + len(VALUE_END) :]
            self._state = _ARGS
            return True
        keep = partial_tag_overlap(buf, VALUE_END)
        ready = buf[: len(buf) - keep]
        if ready:
            self._args(_escape(ready))
            self._buf = buf[len(ready) :]
        return False

    # -- helpers ------------------------------------------------------------

    def _property_schema(self, key: str) -> dict[str, Any] | None:
        props = self.schemas.get(self._tool_name, {}).get("properties")
        if isinstance(props, dict):
            sub = props.get(key)
            return sub if isinstance(sub, dict) else None
        return None

    def _pair_prefix(self, key: str) -> str:
        opener = "{" if self._pairs == 0 else ", "
        self._pairs += 1
        return f"{opener}{json_fragment(key)}: "

    def _close_arguments(self) -> None:
        self._args("}" if self._pairs else "{}")

    def _call_text(self, text: str) -> None:
        """Text found inside a call; dropped with the call when it is suppressed."""
        if not self._suppressed:
            self._text(text)


class Glm47ToolParser(Glm45ToolParser):
    """GLM-4.7: the same tags without newlines (the shared state machine reads both)."""

    name = "glm47"

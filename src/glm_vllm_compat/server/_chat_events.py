"""The chat pipeline's stream as plain Python values, for the other wire APIs.

``/v1/messages`` (Anthropic) and ``/v1/responses`` (OpenAI Responses) are
translated into a :class:`~.protocol.ChatCompletionRequest`, prepared by
:func:`._chat.prepare_chat` and run by :func:`._chat.chat_stream`: the same
template, parsers, sampling, aborts and errors as ``/v1/chat/completions``.
This module reads that stream back (its wire format is the stable OpenAI chunk
contract) as :class:`ChatDelta` values, so each API only shapes events. Both
streamed and non-streamed answers of those APIs are built from these deltas,
so the two can never disagree.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

from ._chat import PreparedChat, open_chat_stream
from ._errors import APIError
from ._state import ServerState

__all__ = ["ChatDelta", "ChatFinish", "ChatStreamError", "open_chat_deltas", "read_chat_stream"]

# OpenAI error ``type`` -> HTTP status, for an error reported inside the chat stream.
_STATUS = {
    "authentication_error": 401,
    "not_found_error": 404,
    "internal_server_error": 500,
    "service_unavailable": 503,
}


class ChatStreamError(APIError):
    """An error the chat stream reported in-band (after it started)."""


@dataclasses.dataclass(frozen=True)
class ToolCallDelta:
    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclasses.dataclass(frozen=True)
class ChatDelta:
    """One step of the answer: reasoning text, answer text and tool-call pieces, in that order."""

    reasoning: str = ""
    content: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()


@dataclasses.dataclass(frozen=True)
class ChatFinish:
    """The end of the answer."""

    finish_reason: str
    """OpenAI's: ``stop``, ``length`` or ``tool_calls``."""
    stop_reason: int | str | None
    """The engine's: the stop string or token id that ended generation, if any."""
    prompt_tokens: int
    completion_tokens: int


def _payloads(event: str) -> list[str]:
    return [line[len("data: ") :] for line in event.split("\n") if line.startswith("data: ")]


def _delta(delta: dict[str, Any]) -> ChatDelta:
    calls = tuple(
        ToolCallDelta(
            index=int(call["index"]),
            id=call.get("id"),
            name=(call.get("function") or {}).get("name"),
            arguments=(call.get("function") or {}).get("arguments") or "",
        )
        for call in delta.get("tool_calls") or ()
    )
    reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
    return ChatDelta(reasoning=reasoning, content=delta.get("content") or "", tool_calls=calls)


def _error(body: dict[str, Any]) -> ChatStreamError:
    error = body.get("error") or {}
    status = _STATUS.get(str(error.get("type")), 400)
    return ChatStreamError(status, str(error.get("message", "the chat stream failed")), param=error.get("param"), code=error.get("code"))


async def open_chat_deltas(state: ServerState, prep: PreparedChat) -> AsyncIterator[ChatDelta | ChatFinish]:
    """The chat stream of ``prep`` as :func:`read_chat_stream` deltas.

    The one place that starts the chat code's stream; awaited before a
    response is sent, so that a chat code that checks the engine's acceptance
    up front reports a rejection as an HTTP error, not in-band.
    """
    return read_chat_stream(await open_chat_stream(state, prep))


async def read_chat_stream(stream: AsyncIterator[str]) -> AsyncIterator[ChatDelta | ChatFinish]:
    """The deltas of one choice of a chat SSE stream, then one :class:`ChatFinish`.

    The request must be a streamed one with usage
    (``stream_options.include_usage``). An in-band error is raised as
    :class:`ChatStreamError`. Closing this generator early closes the chat
    stream, which aborts the engine request.
    """
    finish: tuple[str, int | str | None] | None = None
    usage: dict[str, Any] | None = None
    try:
        async for event in stream:
            for payload in _payloads(event):
                if payload == "[DONE]":
                    continue
                chunk = json.loads(payload)
                if "error" in chunk:
                    raise _error(chunk)
                for choice in chunk.get("choices") or ():
                    delta = _delta(choice.get("delta") or {})
                    if delta.reasoning or delta.content or delta.tool_calls:
                        yield delta
                    if choice.get("finish_reason") is not None:
                        finish = (choice["finish_reason"], choice.get("stop_reason"))
                usage = chunk.get("usage") or usage
    finally:
        aclose = getattr(stream, "aclose", None)  # a consumer that stops early aborts the engine request
        if aclose is not None:
            await aclose()
    if finish is None or usage is None:
        raise ChatStreamError(500, "the chat stream ended without a finish reason and usage", code="internal_error")
    yield ChatFinish(finish[0], finish[1], int(usage["prompt_tokens"]), int(usage["completion_tokens"]))

"""``/v1/messages``: the Anthropic Messages API on the chat pipeline.

A :class:`~.protocol_anthropic.MessagesRequest` is translated into a
:class:`~.protocol.ChatCompletionRequest` (system -> system message,
``tool_result`` blocks -> tool messages, ``tool_use`` blocks -> assistant
tool calls, ``thinking`` blocks -> ``reasoning_content``, ``thinking`` ->
``chat_template_kwargs.enable_thinking``, ``tool_choice`` any/tool/none ->
required/named/none), prepared and run by the chat code, and its deltas
(:mod:`._chat_events`) are shaped into Anthropic's events. A non-streamed
message is those same events applied to an empty message, so the two agree.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import JSONResponse

from ._chat import PreparedChat, prepare_chat, thinking_budget_available
from ._chat_events import ChatDelta, ChatFinish, open_chat_deltas
from ._errors import APIError, from_exception
from ._reasoning import get_reasoning_parser
from ._sse import sse_event
from ._state import ServerState
from .protocol import ChatCompletionRequest, InvalidRequest, parse_request
from .protocol_anthropic import (
    CountTokensRequest,
    MessagesRequest,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    error_body,
)

__all__ = ["PreparedMessage", "anthropic_error_response", "count_tokens", "message_events", "message_response", "prepare_messages"]

Event = tuple[str, dict[str, Any]]


# -- errors -------------------------------------------------------------------


def _api_error(exc: BaseException) -> APIError:
    if isinstance(exc, InvalidRequest):
        return APIError(400, exc.message, param=exc.param)
    return from_exception(exc)


def anthropic_error_response(exc: BaseException) -> JSONResponse:
    """Anthropic's error object has no ``param``: the field, where known, leads the message."""
    error = _api_error(exc)
    message = error.message if not error.param or error.param in error.message else f"{error.param}: {error.message}"
    return JSONResponse(error_body(error.status, message), status_code=error.status)


# -- request translation --------------------------------------------------------


def _user_messages(blocks: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    texts: list[str] = []
    for block in blocks:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ToolResultBlock):
            if texts:
                out.append({"role": "user", "content": "\n".join(texts)})
                texts = []
            text = block.text()
            if block.is_error:  # GLM observations have no error flag: say it in the text
                text = f"Error: {text}"
            out.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": text})
    if texts or not out:
        out.append({"role": "user", "content": "\n".join(texts)})
    return out


def _assistant_message(blocks: list[Any]) -> dict[str, Any]:
    texts = [b.text for b in blocks if isinstance(b, TextBlock)]
    thinking = [b.thinking for b in blocks if isinstance(b, ThinkingBlock)]
    calls = [
        {"id": b.id, "type": "function", "function": {"name": b.name, "arguments": b.input}}
        for b in blocks
        if isinstance(b, ToolUseBlock)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts)}
    if thinking:
        message["reasoning_content"] = "\n".join(thinking)
    if calls:
        message["tool_calls"] = calls
    return message


def _chat_messages(req: CountTokensRequest) -> list[dict[str, Any]]:
    system = req.system_text()
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system is not None else []
    for message in req.messages:
        blocks = message.blocks()
        if message.role == "user":
            messages.extend(_user_messages(blocks))
        else:
            messages.append(_assistant_message(blocks))
    return messages


def _tool_choice(req: CountTokensRequest) -> tuple[Any, bool | None]:
    choice = req.tool_choice
    if choice is None:
        return None, None
    parallel = False if choice.disable_parallel_tool_use else None
    if choice.type == "tool":
        return {"type": "function", "function": {"name": choice.name}}, parallel
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type], parallel


# Anthropic's thinking budget (>= 1024 tokens) read as an effort level for families with
# reasoning_effort: up to 4k low, up to 16k medium, up to 32k high, more: max (docs/apis.md).
_BUDGET_LEVELS = ((4096, "low"), (16384, "medium"), (32768, "high"))


def _budget_level(budget: int) -> str:
    return next((level for limit, level in _BUDGET_LEVELS if budget <= limit), "max")


def _thinking_kwargs(state: ServerState, req: CountTokensRequest) -> dict[str, Any]:
    """``thinking`` -> the family's switch (absent: the model's default, as Anthropic leaves it to
    the model); ``output_config.effort``, else ``budget_tokens``, -> the family's ``reasoning_effort``."""
    kwargs: dict[str, Any] = {}
    thinking = req.thinking
    if thinking is not None:
        if thinking.type == "enabled" and not get_reasoning_parser(state.reasoning_parser).splits_thinking:
            raise InvalidRequest(
                f"thinking: this model has no reasoning mode (reasoning parser {state.reasoning_parser!r}); "
                'use "disabled" or "adaptive", or leave thinking out',
                "thinking.type",
            )
        kwargs["enable_thinking"] = thinking.type != "disabled"
    effort = req.output_config.effort if req.output_config is not None else None
    if effort is not None:
        mapped = state.family.effort_for(effort)
        if mapped is None:
            raise InvalidRequest(
                f"output_config.effort is not a control of {state.family.title} (reasoning_effort arrived with GLM-5.2); "
                "use thinking to switch reasoning on or off",
                "output_config.effort",
            )
        kwargs["reasoning_effort"] = mapped
    elif thinking is not None and thinking.budget_tokens is not None and (mapped := state.family.effort_for(_budget_level(thinking.budget_tokens))):
        kwargs["reasoning_effort"] = mapped
    return kwargs


def _thinking_budget(state: ServerState, req: CountTokensRequest) -> int | None:
    """``budget_tokens`` as the engine's ``thinking_token_budget`` where the engine enforces one."""
    thinking = req.thinking
    if thinking is None or thinking.budget_tokens is None or not thinking_budget_available(state):
        return None
    return thinking.budget_tokens


def to_chat_request(state: ServerState, req: CountTokensRequest) -> ChatCompletionRequest:
    """The chat request that renders the same conversation with the same controls."""
    data: dict[str, Any] = {"model": req.model, "messages": _chat_messages(req), "stream": True, "stream_options": {"include_usage": True}}
    if req.tools:
        data["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}
            for t in req.tools
        ]
    choice, parallel = _tool_choice(req)
    if choice is not None and req.tools:
        data["tool_choice"] = choice
    if parallel is not None:
        data["parallel_tool_calls"] = parallel
    kwargs = _thinking_kwargs(state, req)
    if kwargs:
        data["chat_template_kwargs"] = kwargs
    budget = _thinking_budget(state, req)
    if budget is not None:
        data["thinking_token_budget"] = budget
    if req.output_config is not None and req.output_config.format is not None:
        data["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": req.output_config.format.schema_}}
    if isinstance(req, MessagesRequest):
        data["max_tokens"] = req.max_tokens
        fields = (("stop", req.stop_sequences), ("temperature", req.temperature), ("top_p", req.top_p), ("top_k", req.top_k), ("structured_outputs", req.structured_outputs))
        for ours, theirs in fields:
            if theirs is not None:
                data[ours] = theirs
    return parse_request(ChatCompletionRequest, data)


@dataclasses.dataclass
class PreparedMessage:
    chat: PreparedChat
    clamped: bool
    """``max_tokens`` exceeded the room left by the prompt: generation runs up to the window."""
    deltas: AsyncIterator[ChatDelta | ChatFinish]


async def prepare_messages(state: ServerState, req: MessagesRequest) -> PreparedMessage:
    """Validate, prepare (render, tokenize, sampling) and start, before any byte is sent.

    As in Anthropic's API, ``max_tokens`` is a cap that may exceed what the
    context window leaves: then generation runs up to the window and a stop
    there is ``model_context_window_exceeded``.
    """
    chat = to_chat_request(state, req)
    clamped = False
    try:
        prep = await prepare_chat(state, chat)
    except APIError as exc:
        if exc.param != "max_tokens":
            raise
        prep, clamped = await prepare_chat(state, chat.model_copy(update={"max_tokens": None})), True
    prep.request_id = f"msg_{uuid.uuid4().hex}"
    return PreparedMessage(prep, clamped, await open_chat_deltas(state, prep))


async def count_tokens(state: ServerState, req: CountTokensRequest) -> dict[str, Any]:
    prep = await prepare_chat(state, to_chat_request(state, req))
    return {"input_tokens": len(prep.prompt_ids)}


# -- response shaping -------------------------------------------------------------


def _stop(req: MessagesRequest, finish: ChatFinish, clamped: bool) -> tuple[str, str | None]:
    if finish.finish_reason == "tool_calls":
        return "tool_use", None
    if finish.finish_reason == "length":
        return ("model_context_window_exceeded" if clamped else "max_tokens"), None
    if isinstance(finish.stop_reason, str) and finish.stop_reason in (req.stop_sequences or ()):
        return "stop_sequence", finish.stop_reason
    return "end_turn", None


def _tool_input(raw: str) -> dict[str, Any]:
    """A call's arguments as an object; a call cut off by max_tokens has no complete JSON: ``{}``."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class _Shaper:
    """Chat deltas -> Anthropic stream events; applies them to ``self.message`` as the SDKs do."""

    def __init__(self, req: MessagesRequest, prep: PreparedChat, clamped: bool) -> None:
        self.req = req
        self.clamped = clamped
        self.show_thinking = req.thinking is None or req.thinking.display != "omitted"
        usage = {"input_tokens": len(prep.prompt_ids), "output_tokens": 0}
        self.message: dict[str, Any] = {
            "id": prep.request_id,
            "type": "message",
            "role": "assistant",
            "model": prep.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        self.open: tuple[str, int | None] | None = None  # (block type, tool-call index)
        self.json: dict[int, list[str]] = {}

    def start(self) -> list[Event]:
        return [("message_start", {"type": "message_start", "message": json.loads(json.dumps(self.message))}), ("ping", {"type": "ping"})]

    def _close(self) -> list[Event]:
        if self.open is None:
            return []
        index = len(self.message["content"]) - 1
        block = self.message["content"][index]
        if block["type"] == "tool_use":
            block["input"] = _tool_input("".join(self.json.pop(index, [])))
        self.open = None
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _block(self, kind: str, call: int | None, block: dict[str, Any]) -> list[Event]:
        if self.open == (kind, call):
            return []
        events = self._close()
        self.message["content"].append(block)
        self.open = (kind, call)
        index = len(self.message["content"]) - 1
        return [*events, ("content_block_start", {"type": "content_block_start", "index": index, "content_block": dict(block)})]

    def _delta(self, delta: dict[str, Any]) -> Event:
        index = len(self.message["content"]) - 1
        block = self.message["content"][index]
        if delta["type"] == "text_delta":
            block["text"] += delta["text"]
        elif delta["type"] == "thinking_delta":
            block["thinking"] += delta["thinking"]
        else:
            self.json.setdefault(index, []).append(delta["partial_json"])
        return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def feed(self, delta: ChatDelta) -> list[Event]:
        events: list[Event] = []
        if delta.reasoning:
            events += self._block("thinking", None, {"type": "thinking", "thinking": "", "signature": ""})
            if self.show_thinking:
                events.append(self._delta({"type": "thinking_delta", "thinking": delta.reasoning}))
        if delta.content:
            events += self._block("text", None, {"type": "text", "text": ""})
            events.append(self._delta({"type": "text_delta", "text": delta.content}))
        for call in delta.tool_calls:
            if call.id is not None:
                events += self._block("tool_use", call.index, {"type": "tool_use", "id": call.id, "name": call.name or "", "input": {}})
            if call.arguments and self.open == ("tool_use", call.index):
                events.append(self._delta({"type": "input_json_delta", "partial_json": call.arguments}))
        return events

    def finish(self, finish: ChatFinish) -> list[Event]:
        events = self._close()
        stop_reason, stop_sequence = _stop(self.req, finish, self.clamped)
        self.message.update(stop_reason=stop_reason, stop_sequence=stop_sequence)
        self.message["usage"]["output_tokens"] = finish.completion_tokens
        delta = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence}, "usage": {"output_tokens": finish.completion_tokens}}
        return [*events, ("message_delta", delta), ("message_stop", {"type": "message_stop"})]


async def _events(prepared: PreparedMessage, shaper: _Shaper) -> AsyncIterator[Event]:
    for event in shaper.start():
        yield event
    async for item in prepared.deltas:
        for event in shaper.finish(item) if isinstance(item, ChatFinish) else shaper.feed(item):
            yield event


async def message_events(req: MessagesRequest, prepared: PreparedMessage) -> AsyncIterator[str]:
    """The SSE stream; an error after it started is sent as an ``error`` event."""
    try:
        async for name, data in _events(prepared, _Shaper(req, prepared.chat, prepared.clamped)):
            yield sse_event(name, data)
    except Exception as exc:  # noqa: BLE001 - the stream has started: report in-band
        error = _api_error(exc)
        yield sse_event("error", error_body(error.status, error.message))


async def message_response(req: MessagesRequest, prepared: PreparedMessage) -> dict[str, Any]:
    """The non-streamed message: the stream's events applied to an empty message."""
    shaper = _Shaper(req, prepared.chat, prepared.clamped)
    async for _ in _events(prepared, shaper):
        pass
    return shaper.message

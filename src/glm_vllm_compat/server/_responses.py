"""``/v1/responses``: the OpenAI Responses API on the chat pipeline.

A :class:`~.protocol_responses.ResponsesRequest` is translated into a
:class:`~.protocol.ChatCompletionRequest` (``instructions`` -> system
message, ``reasoning`` items -> ``reasoning_content``, ``function_call`` items
-> assistant tool calls, ``function_call_output`` items -> tool messages,
``reasoning.effort`` -> the family's thinking switch and ``reasoning_effort``), prepared and
run by the chat code, and its deltas (:mod:`._chat_events`) are shaped into
Responses output items and events. A non-streamed response is the same events'
final state, so the two agree.

``previous_response_id`` is served from a bounded in-memory store (responses
created with ``store`` not false); an unknown or evicted id is a 400.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from ._chat import PreparedChat, prepare_chat
from ._chat_events import ChatDelta, ChatFinish, open_chat_deltas
from ._errors import APIError, from_exception
from ._sse import sse_event
from ._state import ServerState
from .families import GlmFamily
from .protocol import ChatCompletionRequest, InvalidRequest, parse_request
from .protocol_responses import FunctionCallItem, FunctionCallOutputItem, MessageItem, ReasoningItem, ResponsesRequest

__all__ = ["PreparedResponse", "ResponseStore", "prepare_response", "response_events", "response_object"]

Event = tuple[str, dict[str, Any]]
STORE_SIZE = 1024


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# -- previous_response_id ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Turn:
    previous: str | None
    items: list[dict[str, Any]]
    """This turn's input items and output items, as input items."""


class ResponseStore:
    """The last :data:`STORE_SIZE` stored turns, each linked to its previous one."""

    def __init__(self, size: int = STORE_SIZE) -> None:
        self.size = size
        self._turns: collections.OrderedDict[str, _Turn] = collections.OrderedDict()
        self._lock = threading.Lock()

    def put(self, response_id: str, turn: _Turn) -> None:
        with self._lock:
            self._turns[response_id] = turn
            while len(self._turns) > self.size:
                self._turns.popitem(last=False)

    def history(self, response_id: str) -> list[dict[str, Any]]:
        """All items up to and including ``response_id``'s output; 400 if any link is unknown."""
        chain: list[_Turn] = []
        current: str | None = response_id
        with self._lock:
            while current is not None:
                turn = self._turns.get(current)
                if turn is None:
                    raise APIError(
                        400,
                        f"Previous response with id {current!r} not found: this server keeps the last {self.size} "
                        "responses created with store not false, in memory",
                        param="previous_response_id",
                        code="previous_response_not_found",
                    )
                self._turns.move_to_end(current)
                chain.append(turn)
                current = turn.previous
        return [item for turn in reversed(chain) for item in turn.items]


def _store(state: ServerState) -> ResponseStore:
    store = state.extra.get("responses_store")
    if not isinstance(store, ResponseStore):
        store = state.extra["responses_store"] = ResponseStore()
    return store


# -- request translation --------------------------------------------------------------


class _Messages:
    """Items -> chat messages; one assistant message per turn (reasoning, text, calls)."""

    def __init__(self) -> None:
        self.out: list[dict[str, Any]] = []
        self.assistant: dict[str, Any] | None = None

    def _turn(self, fresh: bool = False) -> dict[str, Any]:
        if self.assistant is None or fresh:
            self.assistant = {"role": "assistant", "content": ""}
            self.out.append(self.assistant)
        return self.assistant

    def add(self, item: MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem) -> None:
        if isinstance(item, ReasoningItem):
            turn = self.assistant
            self._turn(fresh=turn is None or bool(turn["content"] or turn.get("tool_calls") or "reasoning_content" in turn))
            assert self.assistant is not None
            self.assistant["reasoning_content"] = item.text()
        elif isinstance(item, FunctionCallItem):
            call = {"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": item.arguments}}
            self._turn().setdefault("tool_calls", []).append(call)
        elif isinstance(item, MessageItem) and item.role == "assistant":
            turn = self.assistant
            fresh = turn is not None and bool(turn.get("tool_calls"))
            target = self._turn(fresh=fresh)
            target["content"] = "\n".join(t for t in (target["content"], item.text()) if t)
        else:
            self.assistant = None
            if isinstance(item, FunctionCallOutputItem):
                self.out.append({"role": "tool", "tool_call_id": item.call_id, "content": item.text()})
            else:
                self.out.append({"role": item.role, "content": item.text()})


def _chat_messages(req: ResponsesRequest, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    messages = _Messages()
    if req.instructions:
        messages.out.append({"role": "system", "content": req.instructions})
    previous = parse_request(ResponsesRequest, {"input": history}).items() if history else []
    for item in [*previous, *req.items()]:
        messages.add(item)
    if not messages.out:
        raise InvalidRequest("input must not be empty", "input")
    return messages.out


def _text_format(req: ResponsesRequest) -> dict[str, Any] | None:
    fmt = req.text.format if req.text is not None else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": fmt.name or "output", "schema": fmt.schema_, "strict": fmt.strict}}


def _reasoning_controls(family: GlmFamily, effort: str) -> dict[str, Any]:
    """``reasoning.effort`` -> the family's controls: ``none`` turns thinking off; a level is
    the family's nearest ``reasoning_effort`` where it has one (GLM-5.2+), else thinking on."""
    if effort == "none":
        return {"chat_template_kwargs": {"enable_thinking": False}}
    mapped = family.effort_for(effort)
    return {"chat_template_kwargs": {"enable_thinking": True}, **({"reasoning_effort": mapped} if mapped else {})}


def to_chat_request(req: ResponsesRequest, history: list[dict[str, Any]], family: GlmFamily) -> ChatCompletionRequest:
    data: dict[str, Any] = {"model": req.model, "messages": _chat_messages(req, history), "stream": True, "stream_options": {"include_usage": True}}
    if req.tools:
        data["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}} for t in req.tools
        ]
        choice = req.tool_choice
        data["tool_choice"] = {"type": "function", "function": {"name": choice.name}} if choice is not None and not isinstance(choice, str) else choice
    if req.parallel_tool_calls is not None:
        data["parallel_tool_calls"] = req.parallel_tool_calls
    if req.reasoning is not None and req.reasoning.effort is not None:
        data.update(_reasoning_controls(family, req.reasoning.effort))
    fields = (
        ("max_tokens", req.max_output_tokens),
        ("temperature", req.temperature),
        ("top_p", req.top_p),
        ("response_format", _text_format(req)),
        ("structured_outputs", req.structured_outputs),
    )
    for ours, theirs in fields:
        if theirs is not None:
            data[ours] = theirs
    return parse_request(ChatCompletionRequest, data)


@dataclasses.dataclass
class PreparedResponse:
    chat: PreparedChat
    request: ResponsesRequest
    id: str
    deltas: AsyncIterator[ChatDelta | ChatFinish]


async def prepare_response(state: ServerState, req: ResponsesRequest) -> PreparedResponse:
    """Validate, prepare (history, render, tokenize, sampling) and start, before any byte is sent."""
    history = _store(state).history(req.previous_response_id) if req.previous_response_id is not None else []
    prep = await prepare_chat(state, to_chat_request(req, history, state.family))
    response_id = _id("resp")
    prep.request_id = response_id
    return PreparedResponse(prep, req, response_id, await open_chat_deltas(state, prep))


# -- response shaping ------------------------------------------------------------------


class _Shaper:
    """Chat deltas -> Responses events; keeps the response object they describe."""

    def __init__(self, state: ServerState, prepared: PreparedResponse) -> None:
        self.state = state
        self.prepared = prepared
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self.open: tuple[str, int | None] | None = None
        self.response = _skeleton(prepared, self.output)

    def _event(self, kind: str, **data: Any) -> Event:
        event = (kind, {"type": kind, "sequence_number": self.sequence, **data})
        self.sequence += 1
        return event

    def start(self) -> list[Event]:
        snapshot = json.loads(json.dumps(self.response))
        return [self._event("response.created", response=snapshot), self._event("response.in_progress", response=snapshot)]

    def _where(self) -> dict[str, Any]:
        return {"item_id": self.output[-1]["id"], "output_index": len(self.output) - 1}

    def _close(self) -> list[Event]:
        if self.open is None:
            return []
        item = self.output[-1]
        self.open = None
        item["status"] = "completed"
        events: list[Event] = []
        if item["type"] == "function_call":
            events.append(self._event("response.function_call_arguments.done", **self._where(), arguments=item["arguments"], name=item["name"]))
        else:
            part = item["content"][0]
            done = "response.output_text.done" if item["type"] == "message" else "response.reasoning_text.done"
            extra: dict[str, Any] = {"logprobs": []} if item["type"] == "message" else {}
            events.append(self._event(done, **self._where(), content_index=0, text=part["text"], **extra))
            events.append(self._event("response.content_part.done", **self._where(), content_index=0, part=dict(part)))
        events.append(self._event("response.output_item.done", output_index=len(self.output) - 1, item=json.loads(json.dumps(item))))
        return events

    def _item(self, kind: str, call: int | None, item: dict[str, Any], part: dict[str, Any] | None) -> list[Event]:
        if self.open == (kind, call):
            return []
        events = self._close()
        self.output.append(item)
        self.open = (kind, call)
        events.append(self._event("response.output_item.added", output_index=len(self.output) - 1, item=json.loads(json.dumps(item))))
        if part is not None:
            item["content"].append(part)
            events.append(self._event("response.content_part.added", **self._where(), content_index=0, part=dict(part)))
        return events

    def feed(self, delta: ChatDelta) -> list[Event]:
        events: list[Event] = []
        if delta.reasoning:
            item = {"id": _id("rs"), "type": "reasoning", "summary": [], "content": [], "status": "in_progress"}
            events += self._item("reasoning", None, item, {"type": "reasoning_text", "text": ""})
            self.output[-1]["content"][0]["text"] += delta.reasoning
            events.append(self._event("response.reasoning_text.delta", **self._where(), content_index=0, delta=delta.reasoning))
        if delta.content:
            item = {"id": _id("msg"), "type": "message", "role": "assistant", "status": "in_progress", "content": []}
            events += self._item("message", None, item, {"type": "output_text", "text": "", "annotations": [], "logprobs": []})
            self.output[-1]["content"][0]["text"] += delta.content
            events.append(self._event("response.output_text.delta", **self._where(), content_index=0, delta=delta.content, logprobs=[]))
        for call in delta.tool_calls:
            if call.id is not None:
                item = {"id": _id("fc"), "type": "function_call", "call_id": call.id, "name": call.name or "", "arguments": "", "status": "in_progress"}
                events += self._item("function_call", call.index, item, None)
            if call.arguments and self.open == ("function_call", call.index):
                self.output[-1]["arguments"] += call.arguments
                events.append(self._event("response.function_call_arguments.delta", **self._where(), delta=call.arguments))
        return events

    def finish(self, finish: ChatFinish) -> list[Event]:
        events = self._close()
        incomplete = finish.finish_reason == "length"
        reasoning = "".join(p["text"] for item in self.output if item["type"] == "reasoning" for p in item["content"])
        self.response.update(
            status="incomplete" if incomplete else "completed",
            incomplete_details={"reason": "max_output_tokens"} if incomplete else None,
            completed_at=None if incomplete else int(time.time()),
            usage={
                "input_tokens": finish.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": finish.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": len(self.state.engine.encode(reasoning)) if reasoning else 0},
                "total_tokens": finish.prompt_tokens + finish.completion_tokens,
            },
        )
        self._remember()
        kind = "response.incomplete" if incomplete else "response.completed"
        return [*events, self._event(kind, response=json.loads(json.dumps(self.response)))]

    def fail(self, error: APIError) -> list[Event]:
        self.response.update(status="failed", error={"code": error.code or "server_error", "message": error.message})
        return [
            self._event("error", code=error.code, message=error.message, param=error.param),
            self._event("response.failed", response=json.loads(json.dumps(self.response))),
        ]

    def _remember(self) -> None:
        req = self.prepared.request
        if req.store is False:
            return
        inputs = [item.model_dump(exclude_none=True) for item in req.items()]
        outputs = [_as_input(item) for item in self.output]
        _store(self.state).put(self.prepared.id, _Turn(req.previous_response_id, [*inputs, *outputs]))


def _as_input(item: dict[str, Any]) -> dict[str, Any]:
    if item["type"] == "message":
        return {"type": "message", "role": "assistant", "content": item["content"][0]["text"] if item["content"] else ""}
    if item["type"] == "reasoning":
        return {"type": "reasoning", "summary": [], "content": [dict(p) for p in item["content"]]}
    return {"type": "function_call", "call_id": item["call_id"], "name": item["name"], "arguments": item["arguments"]}


def _skeleton(prepared: PreparedResponse, output: list[dict[str, Any]]) -> dict[str, Any]:
    req, chat = prepared.request, prepared.chat.request
    reasoning = req.reasoning.model_dump() if req.reasoning is not None else {"effort": None, "summary": None}
    return {
        "id": prepared.id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "background": False,
        "model": prepared.chat.model,
        "output": output,
        "error": None,
        "incomplete_details": None,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "metadata": req.metadata or {},
        "parallel_tool_calls": bool(chat.parallel_tool_calls),
        "previous_response_id": req.previous_response_id,
        "reasoning": reasoning,
        "store": req.store is not False,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "text": req.text.model_dump(exclude_none=True, by_alias=True) if req.text is not None else {"format": {"type": "text"}},
        "tool_choice": req.tool_choice.model_dump() if req.tool_choice is not None and not isinstance(req.tool_choice, str) else (req.tool_choice or "auto"),
        "tools": [t.model_dump(exclude_none=True) for t in req.tools or []],
        "truncation": "disabled",
        "usage": None,
        "user": req.user,
    }


async def _events(prepared: PreparedResponse, shaper: _Shaper) -> AsyncIterator[Event]:
    for event in shaper.start():
        yield event
    async for item in prepared.deltas:
        for event in shaper.finish(item) if isinstance(item, ChatFinish) else shaper.feed(item):
            yield event


def _api_error(exc: BaseException) -> APIError:
    if isinstance(exc, InvalidRequest):
        return APIError(400, exc.message, param=exc.param, code="invalid_value")
    return from_exception(exc)


async def response_events(state: ServerState, prepared: PreparedResponse) -> AsyncIterator[str]:
    """The SSE stream; an error after it started is sent as ``error`` + ``response.failed``."""
    shaper = _Shaper(state, prepared)
    try:
        async for name, data in _events(prepared, shaper):
            yield sse_event(name, data)
    except Exception as exc:  # noqa: BLE001 - the stream has started: report in-band
        for name, data in shaper.fail(_api_error(exc)):
            yield sse_event(name, data)


async def response_object(state: ServerState, prepared: PreparedResponse) -> dict[str, Any]:
    """The non-streamed response: the final state of the stream's events."""
    shaper = _Shaper(state, prepared)
    async for _ in _events(prepared, shaper):
        pass
    return shaper.response

"""The HTTP routes. Each parses, delegates, and returns; errors become OpenAI error objects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from .._version import __version__
from . import _anthropic, _responses
from ._body import decode_json, read_body
from ._chat import chat_completion, open_chat_stream, prepare_chat
from ._completions import completion, open_completion_stream, prepare_completion
from ._engine import OFF_LOOP_CHARS
from ._errors import APIError, from_exception
from ._sampling import check_in_vocab
from ._state import ServerState
from ._template import ChatTemplateError, render_chat
from .protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    DetokenizeRequest,
    InvalidRequest,
    ModelCard,
    ModelList,
    TokenizeRequest,
    TokenizeResponse,
    parse_request,
)
from .protocol_anthropic import CountTokensRequest, MessagesRequest
from .protocol_responses import ResponsesRequest

__all__ = ["ROUTES"]

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.glm
    return state


def error_response(exc: BaseException) -> JSONResponse:
    if isinstance(exc, InvalidRequest):
        exc = APIError(400, exc.message, param=exc.param, code="invalid_value")
    error = from_exception(exc)
    return JSONResponse(error.body(), status_code=error.status)


class ClientGone(Exception):
    """The client disconnected before the response was ready."""


async def _parse(request: Request, model: type[M]) -> M:
    state = _state(request)
    body = await read_body(request, state.max_request_body_bytes)
    data = await decode_json(body)
    parsed = parse_request(model, data)
    unknown = parsed.unknown_fields() if hasattr(parsed, "unknown_fields") else {}
    if unknown:
        state.warn_unknown_fields(unknown)
    return parsed


T = TypeVar("T")


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """``await work``, cancelled (so its engine request is aborted) if the client hangs up first."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise ClientGone
        return task.result()
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()


def guarded(handler: Handler, respond: Callable[[BaseException], Response] = error_response) -> Handler:
    """``handler`` with every failure answered by ``respond`` (an error object of the route's API)."""

    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except (ClientGone, ClientDisconnect):
            return Response(status_code=499)  # never sent: nobody is listening
        except Exception as exc:
            return respond(exc)

    wrapper.__name__ = handler.__name__
    return wrapper


def anthropic_guarded(handler: Handler) -> Handler:
    return guarded(handler, _anthropic.anthropic_error_response)


def _sse_response(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@guarded
async def chat_completions(request: Request) -> Response:
    state = _state(request)
    req = await _parse(request, ChatCompletionRequest)
    prep = await prepare_chat(state, req)
    if req.stream:
        return _sse_response(await until_disconnect(request, open_chat_stream(state, prep)))
    return JSONResponse(await until_disconnect(request, chat_completion(state, prep)))


@guarded
async def completions(request: Request) -> Response:
    state = _state(request)
    req = await _parse(request, CompletionRequest)
    prep = await prepare_completion(state, req)
    if req.stream:
        return _sse_response(await until_disconnect(request, open_completion_stream(state, prep)))
    return JSONResponse(await until_disconnect(request, completion(state, prep)))


@guarded
async def models(request: Request) -> Response:
    engine = _state(request).engine
    cards = [ModelCard(id=name, root=engine.model_path, max_model_len=engine.max_model_len) for name in engine.served_names]
    cards += [
        ModelCard(id=name, root=adapter.module.path, parent=adapter.module.base_model_name or engine.served_names[0], max_model_len=engine.max_model_len)
        for name, adapter in engine.loras.items()
    ]
    return JSONResponse(ModelList(data=cards).model_dump())


def _tokenize_messages(state: ServerState, req: TokenizeRequest) -> list[int]:
    chat = ChatCompletionRequest.model_validate(
        {
            "messages": [m.model_dump(exclude_none=True) for m in req.messages or []],
            "tools": [t.model_dump(exclude_none=True) for t in req.tools] if req.tools else None,
            "chat_template_kwargs": req.chat_template_kwargs,
        }
    )
    kwargs = state.family.template_kwargs(chat, state.default_chat_template_kwargs)
    tools = kwargs.pop("tools", None)
    messages = state.family.template_messages(chat.messages, tools=tools)
    template = state.engine.chat_template
    if template is None:
        raise APIError(400, "this model has no chat template", code="no_chat_template")
    try:
        text = render_chat(template, messages, tools=tools, add_generation_prompt=req.add_generation_prompt, special_tokens=state.engine.special_tokens(), template_kwargs=kwargs)
    except ChatTemplateError as exc:
        raise APIError(400, str(exc), param="messages", code="chat_template_error") from exc
    return state.engine.encode(text) if not req.add_special_tokens else list(state.engine.tokenizer.encode(text))


def _tokenize(state: ServerState, req: TokenizeRequest) -> tuple[list[int], list[str] | None]:
    if req.messages is not None:
        tokens = _tokenize_messages(state, req)
    else:
        add = True if req.add_special_tokens is None else req.add_special_tokens
        tokens = list(state.engine.tokenizer.encode(req.prompt or "", add_special_tokens=add))
    return tokens, (state.engine.tokenizer.convert_ids_to_tokens(tokens) if req.return_token_strs else None)


def _tokenize_chars(req: TokenizeRequest) -> int:
    if req.messages is None:
        return len(req.prompt or "")
    return sum(len(str(m.content or "")) for m in req.messages)


@guarded
async def tokenize(request: Request) -> Response:
    state = _state(request)
    req = await _parse(request, TokenizeRequest)
    state.check_model(req.model)
    if _tokenize_chars(req) > OFF_LOOP_CHARS:
        tokens, strs = await asyncio.to_thread(_tokenize, state, req)
    else:
        tokens, strs = _tokenize(state, req)
    body = TokenizeResponse(count=len(tokens), max_model_len=state.engine.max_model_len, tokens=tokens, token_strs=strs)
    return JSONResponse(body.model_dump(exclude_none=True))


@guarded
async def detokenize(request: Request) -> Response:
    state = _state(request)
    req = await _parse(request, DetokenizeRequest)
    state.check_model(req.model)
    check_in_vocab(state, req.tokens, "tokens")
    return JSONResponse({"prompt": await state.engine.decode_async(req.tokens)})


async def health(request: Request) -> Response:
    if _state(request).engine.healthy:
        return Response(status_code=200)
    return JSONResponse(APIError(503, "the engine is not healthy").body(), status_code=503)


async def version(request: Request) -> Response:
    info = _state(request).vllm
    vllm: dict[str, Any] = {"distribution": info.distribution, "version": info.raw_version} if info else {}
    return JSONResponse({"version": __version__, "glm_vllm_compat": __version__, "vllm": vllm})


_GAUGES = (
    ("unfinished_requests", "Requests the engine still holds (the API server's view)."),
    ("num_requests_running", "Requests the engine is running (engine-side scheduler)."),
    ("num_requests_waiting", "Requests waiting in the engine's queue (engine-side scheduler)."),
)


async def metrics(request: Request) -> Response:
    counts = _state(request).engine.request_counts()
    lines = []
    for name, help_text in _GAUGES:
        full = f"glm_vllm_compat_{name}"
        lines += [f"# HELP {full} {help_text}", f"# TYPE {full} gauge", f"{full} {counts.get(name, -1)}"]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


@anthropic_guarded
async def messages(request: Request) -> Response:
    state = _state(request)
    req = await _parse(request, MessagesRequest)
    prepared = await until_disconnect(request, _anthropic.prepare_messages(state, req))
    if req.stream:
        return _sse_response(_anthropic.message_events(req, prepared))
    return JSONResponse(await until_disconnect(request, _anthropic.message_response(req, prepared)))


@anthropic_guarded
async def count_tokens(request: Request) -> Response:
    state = _state(request)
    return JSONResponse(await _anthropic.count_tokens(state, await _parse(request, CountTokensRequest)))


@guarded
async def responses(request: Request) -> Response:
    state = _state(request)
    req = await _parse(request, ResponsesRequest)
    prepared = await until_disconnect(request, _responses.prepare_response(state, req))
    if req.stream:
        return _sse_response(_responses.response_events(state, prepared))
    return JSONResponse(await until_disconnect(request, _responses.response_object(state, prepared)))


ROUTES: list[tuple[str, Handler, list[str]]] = [
    ("/v1/chat/completions", chat_completions, ["POST"]),
    ("/v1/messages", messages, ["POST"]),
    ("/v1/messages/count_tokens", count_tokens, ["POST"]),
    ("/v1/responses", responses, ["POST"]),
    ("/v1/completions", completions, ["POST"]),
    ("/v1/models", models, ["GET"]),
    ("/tokenize", tokenize, ["POST"]),
    ("/detokenize", detokenize, ["POST"]),
    ("/health", health, ["GET"]),
    ("/version", version, ["GET"]),
    ("/metrics", metrics, ["GET"]),
]

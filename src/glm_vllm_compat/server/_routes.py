"""The HTTP routes. Each parses, delegates, and returns; errors become OpenAI error objects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from .. import _engine
from .._version import __version__
from ._chat import chat_completion, chat_stream, prepare_chat
from ._completions import completion, completion_stream, prepare_completion
from ._errors import APIError, from_exception
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


async def _parse(request: Request, model: type[M]) -> M:
    body = await request.body()
    try:
        data = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from exc
    return parse_request(model, data)


def guarded(handler: Handler) -> Handler:
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            return error_response(exc)

    wrapper.__name__ = handler.__name__
    return wrapper


def _sse_response(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@guarded
async def chat_completions(request: Request) -> Response:
    state = _state(request)
    req = await _parse(request, ChatCompletionRequest)
    prep = await prepare_chat(state, req)
    if req.stream:
        return _sse_response(chat_stream(state, prep))
    return JSONResponse(await chat_completion(state, prep))


@guarded
async def completions(request: Request) -> Response:
    state = _state(request)
    req = await _parse(request, CompletionRequest)
    prep = prepare_completion(state, req)
    if req.stream:
        return _sse_response(completion_stream(state, prep))
    return JSONResponse(await completion(state, prep))


@guarded
async def models(request: Request) -> Response:
    engine = _state(request).engine
    cards = [ModelCard(id=name, root=engine.model_path, max_model_len=engine.max_model_len) for name in engine.served_names]
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


@guarded
async def tokenize(request: Request) -> Response:
    state = _state(request)
    req = await _parse(request, TokenizeRequest)
    state.check_model(req.model)
    if req.messages is not None:
        tokens = _tokenize_messages(state, req)
    else:
        add = True if req.add_special_tokens is None else req.add_special_tokens
        tokens = list(state.engine.tokenizer.encode(req.prompt or "", add_special_tokens=add))
    strs = state.engine.tokenizer.convert_ids_to_tokens(tokens) if req.return_token_strs else None
    body = TokenizeResponse(count=len(tokens), max_model_len=state.engine.max_model_len, tokens=tokens, token_strs=strs)
    return JSONResponse(body.model_dump(exclude_none=True))


@guarded
async def detokenize(request: Request) -> Response:
    state = _state(request)
    req = await _parse(request, DetokenizeRequest)
    state.check_model(req.model)
    return JSONResponse({"prompt": state.engine.decode(req.tokens)})


async def health(request: Request) -> Response:
    if _state(request).engine.healthy:
        return Response(status_code=200)
    return JSONResponse(APIError(503, "the engine is not healthy").body(), status_code=503)


async def version(request: Request) -> Response:
    info = _state(request).vllm
    vllm: dict[str, Any] = {"distribution": info.distribution, "version": info.raw_version} if info else {}
    return JSONResponse({"version": __version__, "glm_vllm_compat": __version__, "vllm": vllm})


async def metrics(request: Request) -> Response:
    engine = _state(request).engine
    try:
        unfinished = _engine.num_unfinished_requests(engine.engine)
    except TypeError:
        unfinished = -1
    text = (
        "# HELP glm_vllm_compat_unfinished_requests Requests the engine still holds.\n"
        "# TYPE glm_vllm_compat_unfinished_requests gauge\n"
        f"glm_vllm_compat_unfinished_requests {unfinished}\n"
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


ROUTES: list[tuple[str, Handler, list[str]]] = [
    ("/v1/chat/completions", chat_completions, ["POST"]),
    ("/v1/completions", completions, ["POST"]),
    ("/v1/models", models, ["GET"]),
    ("/tokenize", tokenize, ["POST"]),
    ("/detokenize", detokenize, ["POST"]),
    ("/health", health, ["GET"]),
    ("/version", version, ["GET"]),
    ("/metrics", metrics, ["GET"]),
]

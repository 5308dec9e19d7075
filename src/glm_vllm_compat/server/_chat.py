"""``/v1/chat/completions``: prompt preparation, then one pipeline per choice.

Streaming and non-streaming share every step (decode delta → reasoning →
tool parsing → message), so the two cannot disagree.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from .._capabilities import FLAGS, flag_range
from .._errors import UnsupportedFeature
from .._live import live
from ._engine import OFF_LOOP_CHARS
from ._errors import APIError, from_exception
from ._logprobs import chat_logprobs
from ._pipeline import ChatOutputPipeline
from ._reasoning import prompt_opens_thinking
from ._sampling import build_sampling_async
from ._sse import sse
from ._state import ServerState
from ._template import ChatTemplateError, render_chat
from .protocol import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatCompletionResponseChoice,
    ChatCompletionStreamChoice,
    DeltaMessage,
    InvalidRequest,
    Usage,
    message_text,
    new_id,
)

__all__ = ["PreparedChat", "chat_completion", "chat_stream", "open_chat_stream", "prepare_chat", "thinking_budget_available"]


@dataclasses.dataclass
class PreparedChat:
    request: ChatCompletionRequest
    model: str
    prompt: str
    prompt_ids: list[int]
    sampling: Any
    prefix: str
    """Text already forced into the answer (a named tool call's opening)."""
    opened_thinking: bool
    thinking: bool = True
    """The family's verdict: does the answer start with reasoning."""
    request_id: str = dataclasses.field(default_factory=lambda: new_id("chatcmpl"))
    lora: Any = None
    """vLLM's ``LoRARequest`` when ``model`` names a served adapter."""

    def pipelines(self, state: ServerState) -> list[ChatOutputPipeline]:
        return [
            ChatOutputPipeline.for_request(
                self.request,
                tool_parser=state.tool_parser if self.request.tools_enabled else None,
                reasoning_parser=state.reasoning_parser,
                prompt_opened_thinking=self.opened_thinking,
                enable_thinking=self.thinking,
            )
            for _ in range(self.request.num_choices)
        ]


def _render(state: ServerState, req: ChatCompletionRequest, kwargs: dict[str, Any]) -> str:
    template = state.engine.chat_template
    if template is None:
        raise APIError(400, "this model has no chat template; pass --chat-template or use /v1/completions", code="no_chat_template")
    tools = kwargs.pop("tools", None)
    messages = state.family.template_messages(req.messages, tools=tools)
    try:
        return render_chat(template, messages, tools=tools, special_tokens=state.engine.special_tokens(), template_kwargs=kwargs)
    except ChatTemplateError as exc:
        raise APIError(400, str(exc), param="messages", code="chat_template_error") from exc


def _tool_choice_controls(state: ServerState, req: ChatCompletionRequest, opened: bool) -> tuple[str, dict[str, Any]]:
    """(forced answer prefix, extra sampling fields) for named / required tool_choice."""
    if req.named_tool is not None:
        return ("</think>" if opened else "") + state.family.call_opening(req.named_tool), {}
    if req.tool_choice == "required" and req.tools_enabled:
        if not (live().caps.structured_outputs or live().caps.guided_decoding):
            raise UnsupportedFeature(
                "tool_choice=required",
                live().info.raw_version,
                f">={FLAGS['guided_decoding'].since} (it needs structured outputs)",
            )
        names = [t.function.name for t in req.tools or []]
        return "", {"structured_outputs": {"regex": state.family.required_regex(names, opened)}}
    return "", {}


def _request_chars(req: ChatCompletionRequest) -> int:
    return sum(len(message_text(m.content)) for m in req.messages)


def _prompt(state: ServerState, req: ChatCompletionRequest, kwargs: dict[str, Any]) -> tuple[str, bool, str, dict[str, Any], list[int]]:
    prompt = _render(state, req, kwargs)
    opened = prompt_opens_thinking(prompt)
    prefix, extra = _tool_choice_controls(state, req, opened)
    return prompt, opened, prefix, extra, state.engine.encode(prompt + prefix)


def thinking_budget_available(state: ServerState) -> bool:
    """The installed vLLM has ``thinking_token_budget`` and this engine's reasoning config enforces it."""
    return bool(live().caps.thinking_token_budget and state.engine.thinking_budget_ready)


def _thinking_budget(state: ServerState, req: ChatCompletionRequest) -> dict[str, Any]:
    """``thinking_token_budget`` where the installed vLLM and the engine support it, else a 400."""
    if req.thinking_token_budget is None or req.thinking_token_budget == -1:
        return {}
    if not state.family.thinking.has_reasoning:
        raise InvalidRequest(f"thinking_token_budget: {state.family.title} has no thinking to bound", "thinking_token_budget")
    if not live().caps.thinking_token_budget:
        raise UnsupportedFeature("thinking_token_budget", live().info.raw_version, flag_range("thinking_token_budget"))
    if not thinking_budget_available(state):
        raise APIError(
            400,
            "thinking_token_budget needs the vLLM engine's reasoning config (vLLM's --reasoning-config / "
            "--reasoning-parser engine settings), which this server's engine was not started with",
            param="thinking_token_budget",
            code="unsupported_feature",
        )
    return {"thinking_token_budget": req.thinking_token_budget}


async def prepare_chat(state: ServerState, req: ChatCompletionRequest) -> PreparedChat:
    """Everything up to the engine call; template rendering and tokenizing of
    large conversations run in a worker thread (the event loop keeps serving)."""
    model = state.check_model(req.model)
    kwargs = state.family.template_kwargs(req, state.default_chat_template_kwargs)
    thinking = state.family.thinking_on(kwargs)
    if _request_chars(req) > OFF_LOOP_CHARS:
        prompt, opened, prefix, extra, ids = await asyncio.to_thread(_prompt, state, req, kwargs)
    else:
        prompt, opened, prefix, extra, ids = _prompt(state, req, kwargs)
    overrides: dict[str, Any] = {**extra, **_thinking_budget(state, req)}
    if state.family.tool_tags_special and req.tools_enabled:
        overrides["skip_special_tokens"] = False  # keep <tool_call> tags for the parser
    sampling = await build_sampling_async(state, req, len(ids), **overrides)
    # A forced "</think>" prefix closes the opened thinking: the pipeline reads it as the (empty) reasoning's end.
    return PreparedChat(req, model, prompt, ids, sampling, prefix, opened, thinking, lora=state.engine.lora_for(model))


@dataclasses.dataclass
class _Choice:
    """Running state of one choice while outputs arrive."""

    pipeline: ChatOutputPipeline
    text: str = ""
    text_len: int = 0
    tokens: int = 0
    finish_reason: str | None = None
    stop_reason: Any = None

    def step(self, output: Any) -> tuple[str, list[int], Any]:
        """New text, new token ids and their logprobs since the last step."""
        text = output.text[self.text_len :]
        ids = list(output.token_ids)[self.tokens :]
        logprobs = output.logprobs[self.tokens :] if output.logprobs is not None else None
        self.text, self.text_len, self.tokens = output.text, len(output.text), len(output.token_ids)
        if output.finish_reason is not None:
            self.finish_reason, self.stop_reason = output.finish_reason, getattr(output, "stop_reason", None)
        return text, ids, logprobs


def _usage(prep: PreparedChat, choices: list[_Choice]) -> Usage:
    completion = sum(c.tokens for c in choices)
    return Usage(prompt_tokens=len(prep.prompt_ids), completion_tokens=completion, total_tokens=len(prep.prompt_ids) + completion)


async def chat_completion(state: ServerState, prep: PreparedChat) -> dict[str, Any]:
    """The non-streamed response."""
    choices = [_Choice(p) for p in prep.pipelines(state)]
    logprobs: list[list[Any]] = [[] for _ in choices]
    top = prep.request.top_logprobs or 0
    async for output in state.engine.stream(prep.prompt_ids, prep.sampling, prep.request_id, prep.lora):
        for completion in output.outputs:
            _, ids, lps = choices[completion.index].step(completion)
            if prep.request.logprobs:
                logprobs[completion.index].append(chat_logprobs(ids, lps, _decoder(state), top))
    result = []
    for index, choice in enumerate(choices):
        choice.pipeline.feed(prep.prefix + choice.text)
        choice.pipeline.finish()
        result.append(
            ChatCompletionResponseChoice(
                index=index,
                message=choice.pipeline.final_message(),
                logprobs=_merge_logprobs(logprobs[index]) if prep.request.logprobs else None,
                finish_reason=choice.pipeline.finish_reason(choice.finish_reason),
                stop_reason=choice.stop_reason,
            )
        )
    response = ChatCompletionResponse(id=prep.request_id, model=prep.model, choices=result, usage=_usage(prep, choices))
    return response.model_dump(exclude_none=False)


def _decoder(state: ServerState) -> Callable[[int], str]:
    return lambda tid: state.engine.decode([tid])


def _merge_logprobs(parts: list[Any]) -> dict[str, Any] | None:
    content = [item for part in parts if part for item in part["content"]]
    return {"content": content}


def _chunk(prep: PreparedChat, index: int, delta: DeltaMessage, finish: str | None = None, **extra: Any) -> str:
    choice = ChatCompletionStreamChoice(index=index, delta=delta, finish_reason=finish, **extra)
    return sse(ChatCompletionChunk(id=prep.request_id, model=prep.model, choices=[choice]).to_wire())


async def open_chat_stream(state: ServerState, prep: PreparedChat) -> AsyncIterator[str]:
    """The SSE events, once the engine has accepted the request (its rejections raise here, before any byte)."""
    outputs = await state.engine.open_stream(prep.prompt_ids, prep.sampling, prep.request_id, prep.lora)
    return chat_stream(state, prep, outputs)


async def chat_stream(state: ServerState, prep: PreparedChat, outputs: AsyncGenerator[Any, None]) -> AsyncIterator[str]:
    """SSE events; an error after the stream started is sent as an error event, then ``[DONE]``."""
    choices = [_Choice(p) for p in prep.pipelines(state)]
    try:
        for index in range(len(choices)):
            yield _chunk(prep, index, DeltaMessage(role="assistant", content=""))
        if prep.prefix:
            for index, choice in enumerate(choices):
                delta = choice.pipeline.feed(prep.prefix)
                if delta is not None:
                    yield _chunk(prep, index, delta)
        async for output in outputs:
            for completion in output.outputs:
                for event in _stream_step(state, prep, choices, completion):
                    yield event
        for index, choice in enumerate(choices):
            last = choice.pipeline.finish() or DeltaMessage()
            yield _chunk(prep, index, last, choice.pipeline.finish_reason(choice.finish_reason), stop_reason=choice.stop_reason)
        if prep.request.include_usage_in_stream:
            usage = ChatCompletionChunk(id=prep.request_id, model=prep.model, choices=[], usage=_usage(prep, choices))
            yield sse(usage.model_dump(exclude_none=True))
    except Exception as exc:  # the stream has started: report in-band
        yield sse(from_exception(exc).body())
    finally:
        await outputs.aclose()
    yield sse("[DONE]")


def _stream_step(state: ServerState, prep: PreparedChat, choices: list[_Choice], completion: Any) -> list[str]:
    choice = choices[completion.index]
    text, ids, lps = choice.step(completion)
    delta = choice.pipeline.feed(text) if text else None
    logprobs = None
    if prep.request.logprobs and ids:
        logprobs = chat_logprobs(ids, lps, _decoder(state), prep.request.top_logprobs or 0)
    if delta is None and logprobs is None:
        return []
    return [_chunk(prep, completion.index, delta or DeltaMessage(), logprobs=logprobs)]

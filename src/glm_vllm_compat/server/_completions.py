"""``/v1/completions``: raw continuation of each prompt, no chat template."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from ._errors import from_exception
from ._logprobs import completion_logprobs
from ._sampling import build_sampling_async, check_in_vocab
from ._sse import sse
from ._state import ServerState
from .protocol import CompletionChoice, CompletionRequest, CompletionResponse, CompletionStreamResponse, Usage, new_id

__all__ = ["PreparedCompletion", "completion", "completion_stream", "open_completion_stream", "prepare_completion"]


@dataclasses.dataclass
class _Prompt:
    text: str
    ids: list[int]
    sampling: Any
    request_id: str


@dataclasses.dataclass
class PreparedCompletion:
    request: CompletionRequest
    model: str
    prompts: list[_Prompt]
    id: str = dataclasses.field(default_factory=lambda: new_id("cmpl"))
    lora: Any = None
    """vLLM's ``LoRARequest`` when ``model`` names a served adapter."""


async def prepare_completion(state: ServerState, req: CompletionRequest) -> PreparedCompletion:
    """Tokenized prompts and their sampling parameters (long texts tokenized off the event loop)."""
    model = state.check_model(req.model)
    prompts = []
    for item in req.prompts():
        if isinstance(item, str):
            ids, text = await state.engine.encode_async(item, add_special_tokens=True), item
        else:
            check_in_vocab(state, item, "prompt")
            ids, text = list(item), await state.engine.decode_async(item)
        prompts.append(_Prompt(text, ids, await build_sampling_async(state, req, len(ids)), new_id("cmpl")))
    return PreparedCompletion(req, model, prompts, lora=state.engine.lora_for(model))


def _choice(
    state: ServerState, prep: PreparedCompletion, p: _Prompt, index: int, out: Any, start: tuple[int, int] = (0, 0)
) -> CompletionChoice:
    """The choice for ``out`` from character/token offset ``start`` on (streaming deltas)."""
    chars, toks = start
    text = out.text[chars:]
    echo = p.text if prep.request.echo and start == (0, 0) else ""
    logprobs = None
    if prep.request.logprobs is not None:
        positions = out.logprobs[toks:] if out.logprobs is not None else None
        decode = lambda t: state.engine.decode([t])  # noqa: E731
        logprobs = completion_logprobs(list(out.token_ids)[toks:], positions, decode, prep.request.logprobs, len(echo) + chars)
    return CompletionChoice(index=index, text=echo + text, logprobs=logprobs, finish_reason=out.finish_reason, stop_reason=getattr(out, "stop_reason", None))


async def _final(state: ServerState, p: _Prompt, lora: Any) -> Any:
    last = None
    async for output in state.engine.stream(p.ids, p.sampling, p.request_id, lora):
        last = output
    return last


async def _all_finals(state: ServerState, prep: PreparedCompletion) -> list[Any]:
    """Every prompt's last output; one failure (or cancellation) stops the others too."""
    tasks = [asyncio.ensure_future(_final(state, p, prep.lora)) for p in prep.prompts]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def completion(state: ServerState, prep: PreparedCompletion) -> dict[str, Any]:
    finals = await _all_finals(state, prep)
    n = prep.request.num_choices
    choices, produced = [], 0
    for pi, (p, final) in enumerate(zip(prep.prompts, finals)):
        for out in final.outputs:
            choices.append(_choice(state, prep, p, pi * n + out.index, out))
            produced += len(out.token_ids)
    prompt_tokens = sum(len(p.ids) for p in prep.prompts)
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=produced, total_tokens=prompt_tokens + produced)
    return CompletionResponse(id=prep.id, model=prep.model, choices=choices, usage=usage).model_dump()


async def _feed(outputs: AsyncGenerator[Any, None], pi: int, queue: asyncio.Queue[Any]) -> None:
    try:
        async for output in outputs:
            await queue.put((pi, output))
    except Exception as exc:
        await queue.put((pi, exc))
    finally:
        await queue.put((pi, None))


async def open_completion_stream(state: ServerState, prep: PreparedCompletion) -> AsyncIterator[str]:
    """The SSE events, once the engine accepted every prompt (its rejections raise here, before any byte)."""
    opened: list[AsyncGenerator[Any, None]] = []
    try:
        for p in prep.prompts:
            opened.append(await state.engine.open_stream(p.ids, p.sampling, p.request_id, prep.lora))
    except BaseException:
        for outputs in opened:
            await outputs.aclose()
        raise
    return completion_stream(state, prep, opened)


async def completion_stream(state: ServerState, prep: PreparedCompletion, opened: list[AsyncGenerator[Any, None]]) -> AsyncIterator[str]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    tasks = [asyncio.create_task(_feed(outputs, i, queue)) for i, outputs in enumerate(opened)]
    seen: dict[tuple[int, int], tuple[int, int]] = {}
    open_prompts, n = len(tasks), prep.request.num_choices
    try:
        while open_prompts:
            pi, item = await queue.get()
            if item is None:
                open_prompts -= 1
                continue
            if isinstance(item, Exception):
                raise item
            for out in item.outputs:
                chars, toks = seen.get((pi, out.index), (0, 0))
                if len(out.text) == chars and out.finish_reason is None:
                    continue
                choice = _choice(state, prep, prep.prompts[pi], pi * n + out.index, out, (chars, toks))
                seen[(pi, out.index)] = (len(out.text), len(out.token_ids))
                yield sse(CompletionStreamResponse(id=prep.id, model=prep.model, choices=[choice]).model_dump(exclude_none=True))
        if prep.request.include_usage_in_stream:
            produced = sum(t for _, t in seen.values())
            prompt_tokens = sum(len(p.ids) for p in prep.prompts)
            usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=produced, total_tokens=prompt_tokens + produced)
            yield sse(CompletionStreamResponse(id=prep.id, model=prep.model, choices=[], usage=usage).model_dump(exclude_none=True))
    except Exception as exc:
        yield sse(from_exception(exc).body())
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for outputs in opened:
            await outputs.aclose()
    yield sse("[DONE]")


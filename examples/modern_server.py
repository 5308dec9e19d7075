"""A tiny OpenAI-style GLM chat server written the modern (vLLM 0.6.3+) way.

Only the import line differs from the original script:

    -from vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams, TokensPrompt
    +from glm_vllm_compat.vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams, TokensPrompt

so it also runs on releases older than the forms it uses:
``engine.generate(prompt=TokensPrompt(...), sampling_params=..., request_id=...)``,
``AsyncEngineArgs(enable_log_requests=False, ...)`` and the synchronous
``engine.get_tokenizer()`` of vLLM 0.15+ (a coroutine on older releases: the
drop-in handle works both ways).

    python examples/modern_server.py --model /path/to/glm --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Optional

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from glm_vllm_compat.vllm import (
    AsyncEngineArgs,
    AsyncLLMEngine,
    SamplingParams,
    TokensPrompt,
)


class ChatMessage(BaseModel):
    role: str
    content: str


class ChatCompletionRequest(BaseModel):
    model: str
    messages: list[ChatMessage]
    temperature: float = 0.8
    top_p: float = 0.8
    max_tokens: int = 256
    min_tokens: int = 0
    stream: bool = False
    stream_options: Optional[dict[str, Any]] = None  # noqa: UP045 - pydantic evaluates it (Python 3.9)


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def usage_of(final: Any) -> dict[str, int]:
    prompt_tokens, completion_tokens = len(final.prompt_token_ids), len(final.outputs[0].token_ids)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def chunk(model: str, request_id: str, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "choices": [choice]}


def completion(model: str, request_id: str, final: Any) -> dict[str, Any]:
    out = final.outputs[0]
    choice = {"index": 0, "message": {"role": "assistant", "content": out.text}, "finish_reason": out.finish_reason}
    return {"id": request_id, "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [choice], "usage": usage_of(final)}


async def stream(engine: AsyncLLMEngine, model: str, request_id: str, results: Any,
                 include_usage: bool, raw: Request) -> AsyncIterator[str]:
    sent, final = "", None
    yield sse(chunk(model, request_id, {"role": "assistant", "content": ""}, None))
    async for output in results:
        final = output
        text = output.outputs[0].text
        if len(text) > len(sent):
            yield sse(chunk(model, request_id, {"content": text[len(sent):]}, None))
            sent = text
        if await raw.is_disconnected():
            await engine.abort(request_id)
            return
    assert final is not None
    yield sse(chunk(model, request_id, {}, final.outputs[0].finish_reason))
    if include_usage:
        yield sse({**chunk(model, request_id, {}, None), "choices": [], "usage": usage_of(final)})
    yield "data: [DONE]\n\n"


def build_app(engine: AsyncLLMEngine, model: str) -> FastAPI:
    app = FastAPI()
    tokenizer = engine.get_tokenizer()

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        card = {"id": model, "object": "model", "created": int(time.time()), "owned_by": "glm"}
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: ChatCompletionRequest, raw: Request) -> Any:
        messages = [m.model_dump() for m in request.messages]
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prompt_token_ids = tokenizer.encode(prompt, add_special_tokens=False)
        stop_ids = [i for i in tokenizer.convert_tokens_to_ids(["<|user|>", "<|observation|>"]) if isinstance(i, int)]
        sampling_params = SamplingParams(
            temperature=request.temperature, top_p=request.top_p,
            max_tokens=request.max_tokens, min_tokens=request.min_tokens, stop_token_ids=stop_ids,
        )
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        results = engine.generate(
            prompt=TokensPrompt(prompt_token_ids=prompt_token_ids),
            sampling_params=sampling_params,
            request_id=request_id,
        )
        if request.stream:
            include_usage = bool((request.stream_options or {}).get("include_usage"))
            events = stream(engine, model, request_id, results, include_usage, raw)
            return StreamingResponse(events, media_type="text/event-stream")
        final = None
        async for output in results:
            final = output
        return JSONResponse(completion(model, request_id, final))

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="A tiny GLM chat server (vLLM 0.6.3+ style).")
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--trust-remote-code", action="store_true")  # as `vllm serve`: GLM-4-9B-chat's own layout
    args = parser.parse_args()
    engine_args = AsyncEngineArgs(
        model=args.model,
        trust_remote_code=args.trust_remote_code,
        tokenizer=args.model,
        dtype="float32",
        max_model_len=1024,
        enforce_eager=True,
        enable_log_requests=False,
    )
    engine = AsyncLLMEngine.from_engine_args(engine_args)
    uvicorn.run(build_app(engine, args.model), host=args.host, port=args.port)


if __name__ == "__main__":
    main()

"""An OpenAI-style GLM-4 chat server in the shape of the GLM-4-9B-chat era (vLLM 0.4.3 - 0.6.2).

Written for glm-vllm-compat as an example of that shape (no third-party code
is used). Only the import line differs from a server written for vLLM 0.4/0.5:

    -from vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams
    +from glm_vllm_compat.vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams

Such servers pass every sampling field, historic defaults included, *in the form
the old code accepted*: ``length_penalty=1`` (an int; vLLM 0.4 - 0.6.2 compared it
with 1.0 numerically), ``use_beam_search=False``, ``early_stopping=False``,
``best_of=1``, ``top_k=-1``, ``repetition_penalty=1.0``, ``logprobs=None``. Other
historic forms: ``engine.generate(inputs=text, sampling_params=..., request_id=...)``
(the 0.4.3 - 0.6.2 keyword), a tokenizer of its own (``AutoTokenizer``) for the chat
template, ``AsyncEngineArgs(..., worker_use_ray=False, engine_use_ray=False,
disable_log_requests=True)``.

    python examples/legacy_glm4_openai_server.py --model /path/to/glm-4-9b-chat --port 8000
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
from transformers import AutoTokenizer

from glm_vllm_compat.vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams

END_OF_TURN = ["<|user|>", "<|observation|>", "<|endoftext|>"]


class ChatMessage(BaseModel):
    role: str
    content: str


class ChatCompletionRequest(BaseModel):
    model: str
    messages: list[ChatMessage]
    temperature: float = 0.8
    top_p: float = 0.8
    max_tokens: int = 1024
    min_tokens: int = 0
    repetition_penalty: float = 1.0
    stream: bool = False
    stream_options: Optional[dict[str, Any]] = None  # noqa: UP045 - pydantic evaluates it (Python 3.9)


def glm4_sampling_params(request: ChatCompletionRequest, stop_token_ids: list[int]) -> Any:
    """The sampling parameters as GLM-4-era servers wrote them: every field, old forms."""
    return SamplingParams(
        n=1,
        best_of=1,
        presence_penalty=0.0,
        frequency_penalty=0.0,
        repetition_penalty=request.repetition_penalty,
        temperature=request.temperature,
        top_p=request.top_p,
        top_k=-1,
        use_beam_search=False,
        length_penalty=1,
        early_stopping=False,
        ignore_eos=False,
        max_tokens=request.max_tokens,
        min_tokens=request.min_tokens,
        logprobs=None,
        prompt_logprobs=None,
        skip_special_tokens=True,
        stop_token_ids=stop_token_ids,
    )


async def generate_glm4(engine: AsyncLLMEngine, tokenizer: Any, request: ChatCompletionRequest,
                        request_id: str) -> AsyncIterator[dict[str, Any]]:
    messages = [m.model_dump() for m in request.messages]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    stop_ids = [i for i in tokenizer.convert_tokens_to_ids(END_OF_TURN) if isinstance(i, int) and i >= 0]
    params = glm4_sampling_params(request, stop_ids)
    async for output in engine.generate(inputs=inputs, sampling_params=params, request_id=request_id):
        completion = output.outputs[0]
        yield {
            "text": completion.text,
            "usage": {
                "prompt_tokens": len(output.prompt_token_ids),
                "completion_tokens": len(completion.token_ids),
                "total_tokens": len(output.prompt_token_ids) + len(completion.token_ids),
            },
            "finish_reason": completion.finish_reason,
        }


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def chunk(model: str, request_id: str, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"id": request_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


async def predict_stream(engine: AsyncLLMEngine, tokenizer: Any, request: ChatCompletionRequest,
                         request_id: str, raw: Request) -> AsyncIterator[str]:
    sent, last = "", None
    yield sse(chunk(request.model, request_id, {"role": "assistant", "content": ""}, None))
    async for piece in generate_glm4(engine, tokenizer, request, request_id):
        last = piece
        if len(piece["text"]) > len(sent):
            yield sse(chunk(request.model, request_id, {"content": piece["text"][len(sent):]}, None))
            sent = piece["text"]
        if await raw.is_disconnected():
            await engine.abort(request_id)
            return
    assert last is not None
    yield sse(chunk(request.model, request_id, {}, last["finish_reason"]))
    if (request.stream_options or {}).get("include_usage"):
        yield sse({**chunk(request.model, request_id, {}, None), "choices": [], "usage": last["usage"]})
    yield "data: [DONE]\n\n"


def build_app(engine: AsyncLLMEngine, tokenizer: Any, model: str) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "glm"}]}

    @app.post("/v1/chat/completions")
    async def create_chat_completion(request: ChatCompletionRequest, raw: Request) -> Any:
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        if request.stream:
            return StreamingResponse(predict_stream(engine, tokenizer, request, request_id, raw),
                                     media_type="text/event-stream")
        last = None
        async for piece in generate_glm4(engine, tokenizer, request, request_id):
            last = piece
        assert last is not None
        message = {"role": "assistant", "content": last["text"]}
        return JSONResponse({
            "id": request_id, "object": "chat.completion", "created": int(time.time()), "model": request.model,
            "choices": [{"index": 0, "message": message, "finish_reason": last["finish_reason"]}],
            "usage": last["usage"],
        })

    return app


def engine_args_for(model: str, dtype: str = "bfloat16", max_model_len: int = 8192) -> Any:
    return AsyncEngineArgs(
        model=model,
        tokenizer=model,
        tensor_parallel_size=1,
        dtype=dtype,
        trust_remote_code=True,
        enforce_eager=True,
        max_model_len=max_model_len,
        worker_use_ray=False,
        engine_use_ray=False,
        disable_log_requests=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="A GLM-4-9B-chat-era OpenAI-style server.")
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--max-model-len", type=int, default=8192)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.model, trust_remote_code=True)
    engine = AsyncLLMEngine.from_engine_args(engine_args_for(args.model, args.dtype, args.max_model_len))
    uvicorn.run(build_app(engine, tokenizer, args.model), host=args.host, port=args.port)


if __name__ == "__main__":
    main()

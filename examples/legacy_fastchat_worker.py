"""A model worker in the shape of FastChat's ``vllm_worker`` (the vLLM 0.2 - 0.6 era).

Written for glm-vllm-compat as an example of that widely deployed shape (no
FastChat code is used). Only the import line differs from a worker written for
an old vLLM:

    -from vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams
    +from glm_vllm_compat.vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams

The historic forms it uses:

* ``engine.generate(context, sampling_params, request_id)``: three positional
  arguments, a text prompt;
* ``SamplingParams(n=1, temperature=..., top_p=..., top_k=-1, use_beam_search=...,
  best_of=..., stop=..., stop_token_ids=..., max_tokens=..., presence_penalty=...,
  frequency_penalty=...)``: every field passed, beam search off by default;
* ``AsyncEngineArgs(..., worker_use_ray=False, engine_use_ray=False,
  disable_log_requests=True, swap_space=4)``;
* ``await engine.get_tokenizer()`` (the tokenizer for ``/count_token``), ``await engine.abort(id)``
  when the client goes away.

Endpoints (all POST, JSON in, as a controller calls them): ``/worker_generate_stream``
(NUL-delimited JSON chunks, each with the text so far), ``/worker_generate``,
``/worker_get_status``, ``/count_token``, ``/model_details``. Errors are returned the
worker way: ``{"text": <message>, "error_code": <code>}``, never a 500.

    python examples/legacy_fastchat_worker.py --model /path/to/glm --host 127.0.0.1 --port 21002
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from glm_vllm_compat.vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams

ERROR_BAD_PARAMETER = 50002
ERROR_ENGINE = 50001


def sampling_params_from(params: dict[str, Any], stop_token_ids: list[int]) -> Any:
    """SamplingParams exactly as an old worker built them from the controller's request."""
    temperature = float(params.get("temperature", 1.0))
    top_p = float(params.get("top_p", 1.0))
    top_k = params.get("top_k", -1)
    stop = params.get("stop")
    stop = [stop] if isinstance(stop, str) else list(stop or [])
    use_beam_search = params.get("use_beam_search", False)
    best_of = params.get("best_of", None)
    return SamplingParams(
        n=1,
        temperature=temperature,
        top_p=top_p if temperature > 1e-5 else 1.0,
        top_k=top_k,
        use_beam_search=use_beam_search,
        best_of=best_of,
        stop=stop,
        stop_token_ids=list(params.get("stop_token_ids") or []) + stop_token_ids,
        max_tokens=int(params.get("max_new_tokens", 256)),
        presence_penalty=float(params.get("presence_penalty", 0.0)),
        frequency_penalty=float(params.get("frequency_penalty", 0.0)),
    )


class Worker:
    def __init__(self, engine: AsyncLLMEngine, model_name: str, context_len: int) -> None:
        self.engine, self.model_name, self.context_len = engine, model_name, context_len
        self.queue_length = 0

    async def generate_stream(self, params: dict[str, Any], request_id: str) -> AsyncIterator[bytes]:
        context = str(params["prompt"])
        sampling_params = sampling_params_from(params, [])
        results = self.engine.generate(context, sampling_params, request_id)
        async for output in results:
            prompt = output.prompt if params.get("echo", False) and output.prompt else ""
            text = prompt + output.outputs[0].text
            ret = {
                "text": text,
                "error_code": 0,
                "usage": {
                    "prompt_tokens": len(output.prompt_token_ids),
                    "completion_tokens": len(output.outputs[0].token_ids),
                    "total_tokens": len(output.prompt_token_ids) + len(output.outputs[0].token_ids),
                },
                "finish_reason": output.outputs[0].finish_reason,
            }
            yield json.dumps(ret).encode() + b"\0"

    async def generate(self, params: dict[str, Any], request_id: str) -> dict[str, Any]:
        last: bytes = b""
        async for piece in self.generate_stream(params, request_id):
            last = piece
        result: dict[str, Any] = json.loads(last[:-1].decode())
        return result


def error(exc: Exception) -> dict[str, Any]:
    code = ERROR_BAD_PARAMETER if isinstance(exc, (ValueError, TypeError)) else ERROR_ENGINE
    return {"text": f"{type(exc).__name__}: {exc}", "error_code": code}


def build_app(worker: Worker) -> FastAPI:
    app = FastAPI()

    @app.post("/worker_generate_stream")
    async def api_generate_stream(request: Request) -> Any:
        params = await request.json()
        request_id = f"worker-{uuid.uuid4().hex}"
        try:
            chunks = worker.generate_stream(params, request_id)
            first = await chunks.__anext__()
        except Exception as exc:  # noqa: BLE001 - the worker protocol reports errors in the body
            return JSONResponse(error(exc))

        async def body() -> AsyncIterator[bytes]:
            worker.queue_length += 1
            try:
                yield first
                async for piece in chunks:
                    if await request.is_disconnected():
                        await worker.engine.abort(request_id)
                        return
                    yield piece
            finally:
                worker.queue_length -= 1

        return StreamingResponse(body())

    @app.post("/worker_generate")
    async def api_generate(request: Request) -> Any:
        params = await request.json()
        try:
            return JSONResponse(await worker.generate(params, f"worker-{uuid.uuid4().hex}"))
        except Exception as exc:  # noqa: BLE001 - the worker protocol reports errors in the body
            return JSONResponse(error(exc))

    @app.post("/worker_get_status")
    async def api_get_status(request: Request) -> dict[str, Any]:
        return {"model_names": [worker.model_name], "speed": 1, "queue_length": worker.queue_length}

    @app.post("/count_token")
    async def api_count_token(request: Request) -> dict[str, Any]:
        params = await request.json()
        tokenizer = await worker.engine.get_tokenizer()
        return {"count": len(tokenizer(params["prompt"])["input_ids"]), "error_code": 0}

    @app.post("/model_details")
    async def api_model_details(request: Request) -> dict[str, Any]:
        return {"context_length": worker.context_len}

    return app


def engine_args_for(model: str, dtype: str = "float32", max_model_len: int = 1024) -> Any:
    return AsyncEngineArgs(
        model=model,
        tokenizer=model,
        dtype=dtype,
        max_model_len=max_model_len,
        enforce_eager=True,
        trust_remote_code=True,
        worker_use_ray=False,
        engine_use_ray=False,
        disable_log_requests=True,
        swap_space=4,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="A FastChat-style vLLM model worker.")
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=21002)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--max-model-len", type=int, default=1024)
    args = parser.parse_args()
    engine = AsyncLLMEngine.from_engine_args(engine_args_for(args.model, args.dtype, args.max_model_len))
    uvicorn.run(build_app(Worker(engine, args.model, args.max_model_len)), host=args.host, port=args.port)


if __name__ == "__main__":
    main()

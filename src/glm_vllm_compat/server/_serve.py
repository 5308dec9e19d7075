"""Start-up: build the engine through the adapter, choose parsers, run uvicorn."""

from __future__ import annotations

import argparse
import gc
import logging
import time
from typing import Any

from .. import _detect
from ._app import create_app
from ._engine import ServerEngine
from ._reasoning import default_reasoning_parser, get_reasoning_parser
from ._shutdown import BoundedServer
from ._state import ServerState
from .tool_parsers import auto_tool_parser, get_tool_parser

__all__ = ["choose_parsers", "serve"]

logger = logging.getLogger("glm_vllm_compat.server")


def choose_parsers(tool: str, reasoning: str, architectures: list[str], template: str | None) -> tuple[str, str]:
    """(tool parser = family, reasoning parser) from the flags and the model."""
    family = auto_tool_parser(architectures, template) if tool == "auto" else tool
    get_tool_parser(family)  # KeyError listing the valid names
    chosen = default_reasoning_parser(family) if reasoning == "auto" else reasoning
    get_reasoning_parser(chosen)
    return family, chosen


def _say(message: str) -> None:
    print(f"serve: {message}", flush=True)


async def build_state(model: str, args: argparse.Namespace, template: str | None, engine_args: dict[str, Any]) -> ServerState:
    info = _detect.detect()
    _say(f"vLLM {info.distribution} {info.raw_version} ({info.generation} engine); loading {model} ...")
    started = time.monotonic()
    names = args.served_model_name or [model]
    engine = await ServerEngine.create(model, names, template, engine_args)
    _say(f"engine ready in {time.monotonic() - started:.1f}s (max_model_len {engine.max_model_len})")
    family, reasoning = choose_parsers(args.tool_call_parser, args.reasoning_parser, list(engine.architectures), engine.chat_template)
    _say(f"tool-call parser {family}, reasoning parser {reasoning}; serving as {', '.join(engine.served_names)}")
    state = ServerState(engine, family, family, reasoning, api_key=args.api_key, vllm=info)
    state.max_request_body_bytes = int(getattr(args, "max_request_body_bytes", state.max_request_body_bytes))
    state.shutdown_timeout = float(getattr(args, "shutdown_timeout", None) or 0)
    return state


async def serve(model: str, args: argparse.Namespace, template: str | None, engine_args: dict[str, Any]) -> int:
    import uvicorn

    try:
        state = await build_state(model, args, template, engine_args)
    except KeyError as exc:
        _say(f"error: {exc.args[0]}")
        return 2
    gc.collect()
    gc.freeze()  # start-up objects (vLLM, torch) never need collecting: shorter GC pauses while serving
    config = uvicorn.Config(create_app(state), host=args.host, port=args.port, log_level=args.log_level, access_log=args.log_level == "debug")
    server = BoundedServer(config, state)
    _say(f"listening on http://{args.host}:{args.port}/v1 (Ctrl+C to stop)")
    try:
        await server.serve()
    finally:
        state.engine.shutdown()  # idempotent; the app's lifespan normally did it already
    return 0

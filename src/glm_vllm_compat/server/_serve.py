"""Start-up: build the engine through the adapter, choose parsers, run uvicorn."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import time
from typing import Any

from .. import _detect
from ._app import create_app
from ._engine import ServerEngine
from ._reasoning import get_reasoning_parser
from ._state import ServerState
from .families import GlmFamily, detect_family, get_family
from .tool_parsers import get_tool_parser

__all__ = ["choose_family", "choose_parsers", "serve"]

logger = logging.getLogger("glm_vllm_compat.server")


def choose_family(name: str, architectures: list[str], template: str | None) -> GlmFamily:
    """The GLM family: ``--glm-family`` when given, else detected from the model."""
    return detect_family(architectures, template) if name == "auto" else get_family(name)


def choose_parsers(tool: str, reasoning: str, family: GlmFamily) -> tuple[str, str]:
    """(tool parser, reasoning parser): the family's unless a flag names one."""
    tool_name = family.tool_parser if tool == "auto" else tool
    reasoning_name = family.reasoning_parser if reasoning == "auto" else reasoning
    get_tool_parser(tool_name)  # KeyError listing the valid names
    get_reasoning_parser(reasoning_name)
    return tool_name, reasoning_name


def _say(message: str) -> None:
    print(f"serve: {message}", flush=True)


def _default_template_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    value = getattr(args, "default_chat_template_kwargs", None)
    if value is None:
        return {}
    decoded = json.loads(value) if isinstance(value, str) else value
    if not isinstance(decoded, dict):
        raise KeyError("--default-chat-template-kwargs must be a JSON object")
    return dict(decoded)


async def build_state(model: str, args: argparse.Namespace, template: str | None, engine_args: dict[str, Any]) -> ServerState:
    info = _detect.detect()
    _say(f"vLLM {info.distribution} {info.raw_version} ({info.generation} engine); loading {model} ...")
    started = time.monotonic()
    names = args.served_model_name or [model]
    engine = await ServerEngine.create(model, names, template, engine_args)
    _say(f"engine ready in {time.monotonic() - started:.1f}s (max_model_len {engine.max_model_len})")
    family = choose_family(getattr(args, "glm_family", "auto"), list(engine.architectures), engine.chat_template)
    engine.stop_token_ids = family.stop_token_ids(engine.tokenizer)
    tool, reasoning = choose_parsers(args.tool_call_parser, args.reasoning_parser, family)
    _say(f"GLM family {family.describe()}: tool-call parser {tool}, reasoning parser {reasoning}; serving as {', '.join(engine.served_names)}")
    return ServerState(
        engine, family, tool, reasoning, api_key=args.api_key, vllm=info,
        default_chat_template_kwargs=_default_template_kwargs(args),
    )


async def serve(model: str, args: argparse.Namespace, template: str | None, engine_args: dict[str, Any]) -> int:
    import uvicorn

    try:
        state = await build_state(model, args, template, engine_args)
    except (KeyError, ValueError) as exc:
        _say(f"error: {exc.args[0] if exc.args else exc}")
        return 2
    gc.collect()
    gc.freeze()  # start-up objects (vLLM, torch) never need collecting: shorter GC pauses while serving
    config = uvicorn.Config(create_app(state), host=args.host, port=args.port, log_level=args.log_level, access_log=args.log_level == "debug")
    server = uvicorn.Server(config)
    _say(f"listening on http://{args.host}:{args.port}/v1 (Ctrl+C to stop)")
    try:
        await server.serve()
    finally:
        state.engine.shutdown()  # idempotent; the app's lifespan normally did it already
    return 0

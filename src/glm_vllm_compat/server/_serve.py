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
from ._lora import load_adapters
from ._reasoning import get_reasoning_parser
from ._shutdown import BoundedServer, reap_children
from ._state import ServerState
from .families import GlmFamily, detect_family, get_family
from .tool_parsers import get_tool_parser

__all__ = ["ANY_HOST", "choose_family", "choose_parsers", "engine_failure", "serve", "uvicorn_config", "with_cors"]

#: Where ``serve`` listens without ``--host``: every interface, as ``vllm serve`` does.
ANY_HOST = "0.0.0.0"

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


def engine_failure(exc: BaseException) -> str:
    """The innermost cause of an engine-build failure, in one line."""
    seen: list[BaseException] = [exc]
    while (nxt := seen[-1].__cause__ or seen[-1].__context__) is not None and nxt not in seen:
        seen.append(nxt)
    root = seen[-1]
    text = " ".join(str(root).split()) or type(root).__name__
    head = "vLLM could not build the engine"
    return f"{head}: {type(root).__name__}: {text}" if root is not exc else f"{head}: {text}"


def uvicorn_config(app: Any, args: argparse.Namespace) -> Any:
    """uvicorn settings from vLLM's server flags."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=args.host or ANY_HOST,
        port=args.port,
        uds=args.uds,
        root_path=args.root_path or "",
        log_level=args.uvicorn_log_level,
        access_log=not args.disable_uvicorn_access_log,
        ssl_keyfile=args.ssl_keyfile,
        ssl_certfile=args.ssl_certfile,
        ssl_ca_certs=args.ssl_ca_certs,
        ssl_cert_reqs=args.ssl_cert_reqs,
        ssl_ciphers=args.ssl_ciphers or "TLSv1",
        h11_max_incomplete_event_size=args.h11_max_incomplete_event_size,
    )


def with_cors(app: Any, args: argparse.Namespace) -> Any:
    """CORS headers as ``vllm serve`` sends them, when ``--allowed-origins`` names any origin."""
    if not args.allowed_origins:
        return app
    from starlette.middleware.cors import CORSMiddleware

    return CORSMiddleware(
        app,
        allow_origins=args.allowed_origins,
        allow_methods=args.allowed_methods,
        allow_headers=args.allowed_headers,
        allow_credentials=args.allow_credentials,
    )


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
    try:
        family = choose_family(getattr(args, "glm_family", "auto"), list(engine.architectures), engine.chat_template)
        tool, reasoning = choose_parsers(args.tool_call_parser, args.reasoning_parser, family)
        engine.loras = await load_adapters(engine.engine, getattr(args, "lora_modules", None) or [])
    except (KeyError, ValueError):
        engine.shutdown()  # no engine left for garbage collection at exit
        raise
    if engine.loras:
        _say(f"LoRA adapters: {', '.join(f'{name} ({a.module.path})' for name, a in engine.loras.items())}")
    engine.stop_token_ids = family.stop_token_ids(engine.tokenizer)
    _say(f"GLM family {family.describe()}: tool-call parser {tool}, reasoning parser {reasoning}; serving as {', '.join(engine.served_names)}")
    state = ServerState(
        engine, family, tool, reasoning, api_key=args.api_key, vllm=info,
        generation_defaults=dict(getattr(args, "generation_defaults", None) or {}),
        default_chat_template_kwargs=_default_template_kwargs(args),
    )
    state.max_request_body_bytes = int(getattr(args, "max_request_body_bytes", state.max_request_body_bytes))
    state.shutdown_timeout = float(getattr(args, "shutdown_timeout", None) or 0)
    return state


async def serve(model: str, args: argparse.Namespace, template: str | None, engine_args: dict[str, Any]) -> int:

    try:
        state = await build_state(model, args, template, engine_args)
    except (KeyError, ValueError) as exc:
        _say(f"error: {exc.args[0] if exc.args else exc}")
        return 2
    except Exception as exc:  # the engine could not be built: its root cause, not three tracebacks
        _say(f"error: {engine_failure(exc)}")
        logger.debug("engine build failed", exc_info=True)
        if args.log_level != "debug":
            _say("(--log-level debug shows the full traceback)")
        reap_children()
        return 1
    gc.collect()
    gc.freeze()  # start-up objects (vLLM, torch) never need collecting: shorter GC pauses while serving
    config = uvicorn_config(with_cors(create_app(state), args), args)
    server = BoundedServer(config, state)
    where = f"unix:{args.uds}" if args.uds else f"{'https' if args.ssl_certfile else 'http'}://{config.host}:{args.port}{args.root_path or ''}/v1"
    _say(f"listening on {where} (Ctrl+C to stop)")
    try:
        await server.serve()
    finally:
        state.engine.shutdown()  # idempotent; the app's lifespan normally did it already
    return 0

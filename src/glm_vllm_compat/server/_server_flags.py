"""The server's own flags: every front-end flag of ``vllm serve``, declared in one table.

This is THE place to declare a server-side flag. Each row says what the server
does with it:

* ``used``: the server implements it (``--host``, ``--ssl-keyfile``, ...);
* ``noop``: accepted, nothing to do here (the server already behaves that
  way); setting it prints a one-line notice saying why;
* ``refused``: a deliberate exception (documented in docs/serve.md): giving
  it a value other than vLLM's default stops start-up with the reason.

Rows marked ``engine=True`` are also handed to the engine when the installed
release has that engine argument (e.g. ``--served-model-name``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from ._body import DEFAULT_MAX_BODY_BYTES

__all__ = ["SERVER_FLAGS", "ServerFlag", "add_server_flags", "check_server_flags", "server_dest"]

USED, NOOP, REFUSED = "used", "noop", "refused"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@dataclasses.dataclass(frozen=True)
class ServerFlag:
    names: tuple[str, ...]
    kind: str
    """``bool`` (with ``--no-``), ``flag`` (store_true only), ``str``, ``int``, ``float``, ``json``, ``list``,
    ``level`` (a log level, any case)."""
    default: Any
    use: str = USED
    reason: str = ""
    help: str = ""
    choices: tuple[str, ...] | None = None
    engine: bool = False

    @property
    def field(self) -> str:
        return self.names[0].lstrip("-").replace("-", "_")


def _f(names: str, kind: str, default: Any = None, use: str = USED, reason: str = "", **kw: Any) -> ServerFlag:
    return ServerFlag(tuple(names.split()), kind, default, use, reason, **kw)


_NOT_HERE = "the GLM server has no such feature; use `vllm serve` for it"
SERVER_FLAGS: tuple[ServerFlag, ...] = (
    _f("--model", "str", help="model directory (same as the positional MODEL)"),
    _f("--host", "str", help="address to bind (default: every interface, as vLLM; 127.0.0.1 keeps it local)"),
    _f("--port", "int", 8000),
    _f("--uds", "str", help="serve on this Unix domain socket instead of host:port"),
    _f("--uvicorn-log-level", "str", "info", choices=LOG_LEVELS),
    _f("--disable-uvicorn-access-log", "bool", False),
    _f("--root-path", "str", help="FastAPI/Starlette root_path behind a path-based proxy"),
    _f("--ssl-keyfile", "str"),
    _f("--ssl-certfile", "str"),
    _f("--ssl-ca-certs", "str"),
    _f("--ssl-cert-reqs", "int", 0),
    _f("--ssl-ciphers", "str"),
    _f("--h11-max-incomplete-event-size", "int", 4194304),
    _f("--allowed-origins", "json", []),
    _f("--allowed-methods", "json", ["*"]),
    _f("--allowed-headers", "json", ["*"]),
    _f("--allow-credentials", "bool", False),
    _f("--api-key", "list", help="require this Bearer key (also $GLM_VLLM_COMPAT_API_KEY or $VLLM_API_KEY)"),
    _f("--served-model-name", "list", engine=True, help="name(s) clients use for the model"),
    _f("--chat-template", "str", help="a Jinja chat template file, or the template text itself"),
    _f("--chat-template-content-format", "str", "auto", choices=("auto", "string", "openai")),
    _f("--default-chat-template-kwargs", "json", help='JSON object, e.g. \'{"enable_thinking": false}\''),
    _f("--tool-call-parser", "str", "auto", help="glm4, glm45, glm47, vLLM's glm4_moe, or auto (from the model)"),
    _f("--reasoning-parser", "str", "auto", help="glm45, glm47, none, vLLM's glm4_moe, or auto (from the model)"),
    _f("--glm-family", "str", "auto",
       help="GLM format family (glm4, glm45, glm47, glm47_flash, glm5, glm52, glm53) or auto (from the model)"),
    _f("--generation-config", "str", "auto", engine=True, help="auto (the model's generation_config.json), vllm (none) or a folder"),
    _f("--override-generation-config", "json", engine=True, help="JSON object overriding generation-config values"),
    # vLLM 0.4.0 - 0.4.3 list --lora-dtype, but their EngineArgs.lora_dtype is an unannotated class attribute,
    # not a dataclass field, so their own from_cli_args drops it; from 0.5.0 it is a field and is handed on.
    _f("--lora-dtype", "str", "auto", engine=True, help="dtype of LoRA weights (auto: the model's)"),
    _f("--log-level", "level", "info", choices=("critical", "error", "warning", "info", "debug", "notset")),
    _f("--max-request-body-bytes", "int", DEFAULT_MAX_BODY_BYTES,
       help=f"larger request bodies are refused with 413 (default {DEFAULT_MAX_BODY_BYTES}; 0: no limit)"),
    _f("--shutdown-timeout", "float", 0.0, engine=True,
       help="seconds in-flight requests may run on after SIGTERM/Ctrl+C before they are aborted "
       "(default 0: abort at once, as vllm serve)"),
    _f("--tiny-arch", "str", "auto", help="architecture of the built-in tiny model when no MODEL is given"),
    _f("--config", "str", help="a YAML file of flags (keys are flag names), as in vLLM"),
    _f("--enable-auto-tool-choice", "bool", False, help="tool_choice auto (always on with the GLM tool parsers)"),
    _f("--enable-reasoning", "flag", False, NOOP, "historic (vLLM 0.8-0.9): reasoning is on whenever a reasoning parser is chosen"),
    _f("--max-log-len", "int", None, NOOP, "the server logs no prompts"),
    _f("--disable-fastapi-docs", "bool", False, NOOP, "the server has no docs pages"),
    _f("--enable-offline-docs", "bool", False, NOOP, "the server has no docs pages"),
    _f("--disable-frontend-multiprocessing", "flag", False, NOOP, "the server talks to the engine in-process"),
    _f("--enable-log-deltas", "bool", True, NOOP, "the server logs no outputs"),
    _f("--response-role", "str", "assistant", REFUSED, "GLM answers always have the assistant role"),
    _f("--api-server-count -asc", "int", 1, REFUSED, "one API server process per engine here"),
    _f("--headless", "flag", False, REFUSED, "headless nodes serve no HTTP: start them with `vllm serve --headless` itself"),
    _f("--grpc", "flag", False, REFUSED, "HTTP only"),
    _f("--grpc-port", "int", None, REFUSED, "HTTP only"),
    _f("--lora-modules", "list", None,
       help='LoRA adapters served by name (needs --enable-lora): NAME=PATH or \'{"name": ..., "path": ..., "base_model_name": ...}\''),
    _f("--prompt-adapters", "list", None, REFUSED, "prompt adapters are not served"),
    _f("--middleware", "list", None, REFUSED, "no custom ASGI middleware"),
    _f("--tool-parser-plugin", "str", "", REFUSED, "tool parsers come from the model's GLM family"),
    _f("--tool-strict-level", "str", "auto", REFUSED, _NOT_HERE),
    _f("--tool-server", "str", None, REFUSED, _NOT_HERE),
    _f("--trust-request-chat-template", "bool", False, REFUSED, "requests cannot replace the chat template"),
    _f("--trust-request-mm-kwargs", "bool", False, REFUSED, "GLM chat models here are text-only"),
    _f("--return-tokens-as-token-ids", "bool", False, REFUSED, _NOT_HERE),
    _f("--exclude-tools-when-tool-choice-none", "bool", False, REFUSED, _NOT_HERE),
    _f("--enable-prompt-tokens-details", "bool", False, REFUSED, _NOT_HERE),
    _f("--enable-per-request-metrics", "bool", False, REFUSED, _NOT_HERE),
    _f("--enable-server-load-tracking", "bool", False, REFUSED, _NOT_HERE),
    _f("--enable-force-include-usage", "bool", False, REFUSED, _NOT_HERE),
    _f("--enable-tokenizer-info-endpoint", "bool", False, REFUSED, _NOT_HERE),
    _f("--enable-request-id-headers", "bool", False, REFUSED, _NOT_HERE),
    _f("--enable-log-outputs", "bool", False, REFUSED, "the server logs no outputs"),
    _f("--log-error-stack", "bool", False, REFUSED, "use --log-level debug"),
    _f("--tokens-only", "bool", False, REFUSED, _NOT_HERE),
    _f("--enable-scale-out", "bool", False, REFUSED, _NOT_HERE),
    _f("--enable-ssl-refresh", "bool", False, REFUSED, _NOT_HERE),
    _f("--enable-flash-late-interaction", "bool", True, REFUSED, "pooling models are not served"),
    _f("--sse-keep-alive-interval", "int", 0, REFUSED, _NOT_HERE),
    _f("--h11-max-header-count", "int", 256, REFUSED, "uvicorn's h11 limit is not configurable here"),
    _f("--disable-access-log-for-endpoints", "str", None, REFUSED, "use --disable-uvicorn-access-log"),
    _f("--fingerprint-mode", "str", "full", REFUSED, _NOT_HERE),
    _f("--fingerprint-value", "str", None, REFUSED, _NOT_HERE),
    _f("--cohere-is-reasoning-model", "bool", True, REFUSED, "no Cohere API"),
    _f("--cohere-format", "str", "cmd4", REFUSED, "no Cohere API"),
    _f("--anthropic-disabled-thinking-effort", "str", "auto", REFUSED, "/v1/messages maps Anthropic thinking to the GLM family's own controls"),
    _f("--data-parallel-supervisor-port", "int", 9256, REFUSED, "no DP supervisor: vLLM's engine-side data parallelism is used"),
    _f("--dp-supervisor-probe-interval-s", "float", 5.0, REFUSED, "no DP supervisor"),
    _f("--dp-supervisor-probe-timeout-s", "float", 5.0, REFUSED, "no DP supervisor"),
    _f("--dp-supervisor-probe-failure-threshold", "int", 3, REFUSED, "no DP supervisor"),
)


def server_dest(flag: ServerFlag) -> str:
    return flag.field


def _json(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"invalid JSON {value!r}: {exc}") from None


_TYPES: dict[str, Callable[[str], Any]] = {"str": str, "int": int, "float": float, "json": _json, "list": str, "level": str.lower}


def add_server_flags(parser: argparse.ArgumentParser, taken: set[str]) -> None:
    group = parser.add_argument_group("server (vLLM's front-end flags)")
    for flag in SERVER_FLAGS:
        names = list(flag.names)
        kwargs: dict[str, Any] = {"dest": server_dest(flag), "default": argparse.SUPPRESS}
        kwargs["help"] = flag.help or (f"{flag.use}: {flag.reason}" if flag.reason else None)
        if flag.kind == "bool":
            names.insert(1, "--no-" + names[0][2:])
            group.add_argument(*names, action=argparse.BooleanOptionalAction, **kwargs)
        elif flag.kind == "flag":
            group.add_argument(*names, action="store_true", **kwargs)
        else:
            if flag.kind == "list":
                kwargs["nargs"] = "+"
            group.add_argument(*names, type=_TYPES[flag.kind], choices=flag.choices, **kwargs)
        taken.update(names)


def check_server_flags(given: dict[str, Any], notice: Callable[[str], None]) -> None:
    """Refused flags set to a non-default value stop here (``ValueError``); no-op ones print a notice."""
    for flag in SERVER_FLAGS:
        dest = server_dest(flag)
        if dest not in given or flag.use == USED or given[dest] == flag.default:
            continue
        if flag.use == REFUSED:
            raise ValueError(f"{flag.names[0]} is not supported by glm-vllm-compat serve: {flag.reason}")
        notice(f"{flag.names[0]} has no effect here: {flag.reason}")


def resolved(args: argparse.Namespace) -> dict[str, Any]:
    """Every server flag's value (vLLM's default where unset)."""
    return {server_dest(f): getattr(args, server_dest(f), f.default) for f in SERVER_FLAGS}

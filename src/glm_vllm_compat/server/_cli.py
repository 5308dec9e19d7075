"""``glm-vllm-compat serve [MODEL] [flags]``: the flags of ``vllm serve``.

Server flags are declared in ``_server_flags``; engine flags are derived from
the installed release's engine-argument fields (``_flags``). Everything is
checked here, before vLLM is imported or any weights load.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .. import _detect, _history
from .._detect import VllmInfo
from .._errors import CompatError
from . import _cpu_defaults, _preflight
from ._engine_fields import EngineField, installed_fields
from ._flags import add_engine_flags, engine_kwargs, flag_name
from ._generation_defaults import GenerationConfigError, generation_defaults
from ._lora import LoraModuleError, parse_lora_modules
from ._server_flags import SERVER_FLAGS, add_server_flags, check_server_flags, resolved, server_dest

__all__ = ["StartupError", "build_parser", "main", "prepare"]

API_KEY_ENV = ("GLM_VLLM_COMPAT_API_KEY", "VLLM_API_KEY")
# Served names of the built-in tiny models (random weights: for trying the API, not for answers).
# ChatGLMModel (glm-4-9b-chat's own layout) last: the only GLM that vLLM 0.4 - 0.6 register.
TINY_PREFERENCE = ("Glm4MoeForCausalLM", "Glm4ForCausalLM", "GlmForCausalLM", "ChatGLMModel")
TINY_FALLBACK = "GlmForCausalLM"
TINY_NAMES = {"GlmForCausalLM": "glm-4-tiny", "Glm4ForCausalLM": "glm-4-0414-tiny", "Glm4MoeForCausalLM": "glm-4.5-tiny",
              "ChatGLMModel": "glm-4-9b-chat-tiny"}


class StartupError(ValueError):
    """A command-line mistake found before anything loads (one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no 300-flag usage dump
        raise StartupError(message)


def build_parser(fields: Sequence[EngineField]) -> argparse.ArgumentParser:
    """``serve``'s parser: the server table's flags, then one flag per engine field not owned by the server."""
    parser = _Parser(
        prog="glm-vllm-compat serve",
        description="Serve a GLM model over an OpenAI-compatible API on any vLLM release (the flags of `vllm serve`).",
        allow_abbrev=False,
    )
    parser.add_argument("model_tag", nargs="?", help="model directory (default: the tiny GLM model, built locally)")
    taken: set[str] = {"-h", "--help"}
    add_server_flags(parser, taken)
    add_engine_flags(parser, fields, {server_dest(f) for f in SERVER_FLAGS}, taken)
    return parser


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """``--max_model_len=1k`` -> ``--max-model-len=1k`` (vLLM takes both); ``--config FILE`` expanded."""
    out = []
    for token in argv:
        if token.startswith("--") and "_" in token.split("=", 1)[0]:
            name, eq, value = token.partition("=")
            token = name.replace("_", "-") + eq + value
        out.append(token)
    return _expand_config(out)


def _expand_config(argv: list[str]) -> list[str]:
    if "--config" not in argv:
        return argv
    at = argv.index("--config")
    if at + 1 >= len(argv):
        raise StartupError("--config needs a YAML file")
    import yaml  # type: ignore[import-untyped]

    try:
        with open(argv[at + 1], encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise StartupError(f"--config {argv[at + 1]!r}: {exc}") from None
    if not isinstance(data, dict):
        raise StartupError(f"--config {argv[at + 1]!r} is not a mapping of flag: value")
    extra: list[str] = []
    for key, value in data.items():
        flag = flag_name(str(key))
        if value is True:
            extra.append(flag)
        elif value is False:
            extra.append("--no-" + flag[2:])
        elif isinstance(value, list):
            extra += [flag, *map(str, value)]
        else:
            extra += [flag, value if isinstance(value, str) else json.dumps(value)]
    return extra + argv[:at] + argv[at + 2 :]  # the command line wins over the file


def _unknown(token: str, parser: argparse.ArgumentParser, info: VllmInfo) -> StartupError:
    if not token.startswith("-"):
        return StartupError(f"unexpected argument {token!r} (only one MODEL may be given)")
    name = token.split("=", 1)[0]
    field = name.lstrip("-").replace("-", "_")
    field = field[3:] if field.startswith("no_") and not _history_span(field) else field
    known = [o for a in parser._actions for o in a.option_strings]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.75)
    span = _history_span(field)
    where = f"{info.distribution} {info.raw_version}"
    text = f"{name} is not a flag of vLLM {where}" + (f"; releases that have it: {span}" if span else "")
    return StartupError(text + (f"; close names: {', '.join(close)}" if close else ""))


def _history_span(field: str) -> str | None:
    for table in (_history.ENGINE_ARGS, _history.ASYNC_ENGINE_ARGS):
        if field in table:
            return _history.supported_range(table, field)
    return None


def _say(message: str) -> None:
    print(f"serve: {message}", flush=True)


def prepare(
    argv: Sequence[str], info: VllmInfo | None = None, fields: Sequence[EngineField] | None = None
) -> tuple[argparse.Namespace, dict[str, Any]]:
    """Parse and check everything: (server options, engine arguments). Raises ``StartupError``.

    ``fields`` defaults to the installed release's engine-argument fields.
    """
    info = info or _detect.detect()
    fields = fields if fields is not None else installed_fields(info)[0]
    parser = build_parser(fields)
    args, rest = parser.parse_known_args(normalize_argv(argv))
    if rest:
        raise _unknown(rest[0], parser, info)
    given = dict(vars(args))
    try:
        check_server_flags(given, _say)
        engine = engine_kwargs(args, fields, info.raw_version, _say)
    except (ValueError, CompatError) as exc:
        raise StartupError(str(exc)) from None
    options = argparse.Namespace(model_tag=getattr(args, "model_tag", None), **resolved(args))
    _pass_to_engine(given, {f.name for f in fields}, engine)
    _check_options(options)
    try:
        served = options.served_model_name or [options.model or ""]
        options.lora_modules = parse_lora_modules(options.lora_modules, served, bool(engine.get("enable_lora")))
    except LoraModuleError as exc:
        raise StartupError(str(exc)) from None
    return options, engine


def _pass_to_engine(given: dict[str, Any], installed: set[str], engine: dict[str, Any]) -> None:
    for flag in SERVER_FLAGS:
        dest = server_dest(flag)
        if flag.engine and dest in given and dest in installed:
            engine[dest] = given[dest]


def _check_options(options: argparse.Namespace) -> None:
    options.generation_defaults = {}
    if options.model and options.model_tag and options.model != options.model_tag:
        raise StartupError(f"two models given: {options.model_tag!r} and --model {options.model!r}")
    options.model = options.model or options.model_tag
    if options.api_key and len(options.api_key) > 1:
        raise StartupError(
            f"--api-key takes one key here, got {len(options.api_key)} values "
            "(if the last one is the model, put MODEL first or use --model)"
        )
    options.api_key = (options.api_key or [None])[0] or next((os.environ[k] for k in API_KEY_ENV if os.environ.get(k)), None)
    if options.chat_template_content_format == "openai":
        raise StartupError("--chat-template-content-format openai is not supported: GLM templates take string content")
    if options.default_chat_template_kwargs is not None and not isinstance(options.default_chat_template_kwargs, dict):
        raise StartupError("--default-chat-template-kwargs must be a JSON object")
    try:
        options.tool_call_parser = _preflight.tool_parser_name(options.tool_call_parser)
        options.reasoning_parser = _preflight.reasoning_parser_name(options.reasoning_parser)
        options.chat_template = _preflight.read_chat_template(options.chat_template)
        if options.glm_family != "auto":
            _preflight.check_family(options.glm_family)
        if options.model:
            options.model = _preflight.check_model(options.model)
            options.generation_defaults = generation_defaults(options.model, options.generation_config, options.override_generation_config)
    except (_preflight.PreflightError, GenerationConfigError) as exc:
        raise StartupError(str(exc)) from None


def local_ranks(engine: dict[str, Any]) -> int:
    """Engine ranks on this node: local data-parallel ranks x pipeline x tensor parallel size.

    vLLM's CPU backend takes one ``VLLM_CPU_OMP_THREADS_BIND`` list per rank, data-parallel ranks included.
    """
    local_dp = int(engine.get("data_parallel_size_local") or engine.get("data_parallel_size") or 1)
    return local_dp * int(engine.get("pipeline_parallel_size") or 1) * int(engine.get("tensor_parallel_size") or 1)


def apply_cpu_defaults(info: VllmInfo, engine: dict[str, Any]) -> None:
    """On the CPU platform, set what the user left unset (printed), or stop on an impossible layout."""
    if not _cpu_defaults.is_cpu_platform(info, os.environ):
        return
    ranks = local_ranks(engine)
    try:
        chosen = _cpu_defaults.cpu_defaults(os.environ, ranks, _cpu_defaults.allowed_cores(), _cpu_defaults.available_memory())
    except _cpu_defaults.CpuDefaultsError as exc:
        raise StartupError(str(exc)) from None
    os.environ.update(chosen)
    if chosen:
        _say("CPU platform defaults: " + ", ".join(f"{k}={v}" for k, v in chosen.items()) + " (set them to override)")


def _resolve_model(options: argparse.Namespace, engine: dict[str, Any]) -> str:
    if options.model:
        return str(options.model)
    from ..testing._tiny_model import build_tiny_model

    if options.tiny_arch == "auto":
        options.tiny_arch = _newest_supported_arch()
    _say(f"no MODEL given, using the tiny random-weight {options.tiny_arch} built locally")
    path = build_tiny_model(options.tiny_arch, progress=_say)
    engine.setdefault("enforce_eager", True)
    if engine.get("dtype", "auto") == "auto":  # random float32 weights; auto would pick bf16 on CPU
        engine["dtype"] = "float32"
    if options.tiny_arch == "ChatGLMModel":  # its config class is remote code: the project's own, written with it
        engine["trust_remote_code"] = True
    options.served_model_name = options.served_model_name or [TINY_NAMES.get(options.tiny_arch, "glm-tiny")]
    options.generation_defaults = generation_defaults(str(path), options.generation_config, options.override_generation_config)
    return str(path)


def enable_thinking_budget(options: argparse.Namespace, engine: dict[str, Any], model: str) -> None:
    """vLLM's reasoning config for a thinking family, unless ``--reasoning-config`` set one.

    The engine enforces ``thinking_token_budget`` only with it; ``vllm serve`` sets it
    from ``--reasoning-parser``, this server (whose parsers are its own) from the family.
    """
    if engine.get("reasoning_config") is not None:
        return
    family = _preflight.model_family(model, options.glm_family, options.chat_template)
    if family is None or not family.thinking.has_reasoning:
        return
    from .._engine import reasoning_config

    config = reasoning_config(*family.thinking.delimiters)
    if config is not None:
        engine["reasoning_config"] = config
        _say(f"reasoning config: {' ... '.join(family.thinking.delimiters)} ({family.title}; thinking_token_budget is honoured)")


def _newest_supported_arch() -> str:
    from .._engine import supported_architectures

    supported = supported_architectures()
    return next((a for a in TINY_PREFERENCE if a in supported), TINY_FALLBACK)


def _fail(message: str) -> int:
    print(f"glm-vllm-compat serve: error: {message}", file=sys.stderr, flush=True)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        build_parser(installed_fields(_detect.detect())[0]).print_help()
        return 0
    try:
        info = _detect.detect()
        options, engine = prepare(argv, info)
        apply_cpu_defaults(info, engine)
    except (StartupError, CompatError) as exc:
        return _fail(str(exc))
    logging.basicConfig(level=options.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    model = _resolve_model(options, engine)
    enable_thinking_budget(options, engine, model)
    if options.generation_defaults:
        _say(f"default sampling from the generation config: {options.generation_defaults} (--generation-config vllm: none)")
    from ._quiet import filter_shutdown_noise
    from ._serve import serve
    from ._shutdown import interrupt_on_sigterm, reap_children

    interrupt_on_sigterm()  # start-up included: SIGTERM stops like Ctrl+C (uvicorn takes over while serving)
    if options.log_level.lower() != "debug":
        filter_shutdown_noise()
    try:
        return asyncio.run(serve(model, options, options.chat_template, engine))
    except KeyboardInterrupt:
        print("serve: interrupted", flush=True)
        return 130
    finally:
        reap_children()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``glm-vllm-compat serve [MODEL]``: flags follow ``vllm serve``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

API_KEY_ENV = ("GLM_VLLM_COMPAT_API_KEY", "VLLM_API_KEY")
# Served names of the built-in tiny models (random weights: for trying the API, not for answers).
TINY_PREFERENCE = ("Glm4MoeForCausalLM", "Glm4ForCausalLM", "GlmForCausalLM")
TINY_NAMES = {"GlmForCausalLM": "glm-4-tiny", "Glm4ForCausalLM": "glm-4-0414-tiny", "Glm4MoeForCausalLM": "glm-4.5-tiny"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="glm-vllm-compat serve",
        description="Serve a GLM model over an OpenAI-compatible API on any vLLM release.",
        allow_abbrev=False,
    )
    p.add_argument("model", nargs="?", help="local model directory (default: the tiny GLM model, built locally)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", nargs="+", default=None, help="name(s) clients use for the model")
    p.add_argument("--max-model-len", type=int, default=None)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--enforce-eager", action="store_true", help="disable CUDA graphs / compilation")
    p.add_argument("--gpu-memory-utilization", type=float, default=None)
    p.add_argument("--max-num-seqs", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--chat-template", default=None, help="a Jinja chat template file, or the template text itself")
    p.add_argument("--tool-call-parser", default="auto", help="glm4, glm45, glm47 or auto (from the model)")
    p.add_argument("--reasoning-parser", default="auto", help="glm45, glm47, none or auto (from the model)")
    p.add_argument("--glm-family", default="auto", help="GLM format family (glm4, glm45, glm47, glm47_flash, glm5, glm52, glm53) or auto (from the model)")
    p.add_argument("--default-chat-template-kwargs", default=None, help='JSON object of chat-template variables used when a request does not set them, e.g. \'{"enable_thinking": false}\'')
    p.add_argument("--enable-auto-tool-choice", action="store_true", help="accepted for vllm serve compatibility; auto tool choice always works")
    p.add_argument("--api-key", default=None, help=f"require this Bearer key (also from ${API_KEY_ENV[0]} or ${API_KEY_ENV[1]})")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument(
        "--tiny-arch",
        default="auto",
        help="architecture of the built-in tiny model when no MODEL is given "
        "(auto: the newest GLM architecture the installed vLLM supports)",
    )
    return p


def _read_template(value: str | None) -> str | None:
    if value is None:
        return None
    path = Path(value)
    if "{" not in value and path.is_file():
        return path.read_text(encoding="utf-8")
    if "{" not in value:
        raise SystemExit(f"error: --chat-template {value!r} is neither a file nor a template")
    return value


def engine_args(args: argparse.Namespace) -> dict[str, Any]:
    """The engine arguments the flags ask for (only those actually set)."""
    out: dict[str, Any] = {"dtype": args.dtype, "tensor_parallel_size": args.tensor_parallel_size}
    optional = {
        "max_model_len": args.max_model_len,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "max_num_seqs": args.max_num_seqs,
        "seed": args.seed,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    if args.trust_remote_code:
        out["trust_remote_code"] = True
    if args.enforce_eager:
        out["enforce_eager"] = True
    return out


def _resolve_model(args: argparse.Namespace) -> str:
    if args.model:
        if not Path(args.model).exists():
            raise SystemExit(f"error: model directory {args.model!r} does not exist (models load from a local path)")
        return str(args.model)
    from ..testing._tiny_model import build_tiny_model

    if args.tiny_arch == "auto":
        args.tiny_arch = _newest_supported_arch()
    print(f"serve: no MODEL given, using the tiny random-weight {args.tiny_arch} built locally", flush=True)
    path = build_tiny_model(args.tiny_arch, progress=lambda m: print(f"serve: {m}", flush=True))
    args.enforce_eager = True
    if args.dtype == "auto":  # random float32 weights; auto would pick bf16 on CPU
        args.dtype = "float32"
    args.served_model_name = args.served_model_name or [TINY_NAMES.get(args.tiny_arch, "glm-tiny")]
    return str(path)


def _newest_supported_arch() -> str:
    from .._engine import supported_architectures

    supported = supported_architectures()
    return next((a for a in TINY_PREFERENCE if a in supported), TINY_PREFERENCE[-1])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    args.api_key = args.api_key or next((os.environ[k] for k in API_KEY_ENV if os.environ.get(k)), None)
    model = _resolve_model(args)
    template = _read_template(args.chat_template)
    from ._serve import serve

    return asyncio.run(serve(model, args, template, engine_args(args)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

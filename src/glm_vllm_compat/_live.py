"""The imported vLLM: its classes, their fields, and the confirmed capabilities.

Importing vLLM is slow (seconds), so nothing here runs before an engine or a
native object is actually needed. The capability flags implied by the version
number are confirmed against what the live code exposes; where they disagree
(forks, backports, dev builds) a :class:`CapabilityMismatchWarning` says so and
the live answer wins.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

from packaging.version import Version

from . import _capabilities, _detect, _history
from ._capabilities import Capabilities
from ._detect import VllmInfo
from ._errors import CapabilityMismatchWarning, VllmNotInstalled

__all__ = ["Live", "constructor_fields", "fields_of", "live", "on_reset", "param_names", "recorded_fields", "reset"]


def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def param_names(func: Any) -> list[str]:
    """Parameter names of a function or method, ``self``/``cls`` excluded."""
    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return []
    return params[1:] if params and params[0] in ("self", "cls") else params


def _init_params(klass: type) -> list[inspect.Parameter] | None:
    """The parameters of ``klass``'s own ``__init__`` (``self`` excluded), or None if it has none."""
    init = klass.__dict__.get("__init__")
    if init is None:
        return None
    try:
        return list(inspect.signature(init).parameters.values())[1:]
    except (TypeError, ValueError):
        return None


def _declared_fields(klass: type) -> list[str] | None:
    """Constructor fields a msgspec Struct or a dataclass declares (bases included), else None."""
    struct_fields = getattr(klass, "__struct_fields__", None)
    if struct_fields is not None:
        return list(struct_fields)
    if "__dataclass_fields__" in klass.__dict__:  # the dataclass itself, not a subclass of one
        return [f.name for f in dataclasses.fields(klass) if f.init]
    return None


def constructor_fields(cls: type) -> tuple[frozenset[str], bool]:
    """(named constructor fields, whether ``**kwargs`` is still open) of ``cls``.

    Walks the MRO while the ``__init__`` met so far forwards ``**kwargs``: a fork or a
    subclass whose ``__init__(self, **kwargs)`` hands everything to its base has the base's
    fields (dataclass fields, struct fields or the base ``__init__``'s parameters)."""
    names: list[str] = []
    for klass in cls.__mro__:
        if klass is object:
            break
        declared = _declared_fields(klass)
        if declared is not None:
            return frozenset(names + declared), False
        params = _init_params(klass)
        if params is None:
            continue
        names += [p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return frozenset(names), False
    return frozenset(names), True


def fields_of(cls: type | None, recorded: Iterable[str] = ()) -> frozenset[str]:
    """Public constructor fields of a vLLM params/args class.

    Found through the class hierarchy (:func:`constructor_fields`); ``recorded`` (the
    fields matrix/ recorded for the installed release) is added where a ``**kwargs``
    stays open to the end of the hierarchy, so that such a class never looks fieldless."""
    if cls is None:
        return frozenset()
    names, still_open = constructor_fields(cls)
    if still_open:
        names = names | frozenset(recorded)
    return frozenset(n for n in names if not n.startswith("_"))


def recorded_fields(table: Mapping[str, tuple[str, str | None]], version: Version) -> frozenset[str]:
    """The names of a ``_history`` table that the release ``version`` has, per matrix/."""
    return frozenset(
        name for name, (first, until) in table.items() if _capabilities.version_in_range(version, first, until)
    )


@dataclasses.dataclass(frozen=True)
class Live:
    """The parts of the imported vLLM the adapter talks to."""

    info: VllmInfo
    vllm: ModuleType
    llm_cls: type | None
    async_engine_cls: type | None
    async_llm_cls: type | None
    sampling_cls: type
    sampling_fields: frozenset[str]
    structured_cls: type | None
    guided_cls: type | None
    beam_search_cls: type | None
    engine_args_cls: type | None
    async_engine_args_cls: type | None
    engine_arg_fields: frozenset[str]
    async_engine_arg_fields: frozenset[str]
    caps: Capabilities

    @property
    def default_async_cls(self) -> type | None:
        """The class ``AsyncLLMEngine.from_engine_args`` returns now."""
        if self.async_llm_cls is not None and _capabilities.engine_generation(self.caps) == "v1":
            return self.async_llm_cls
        return self.async_engine_cls


def _attr(module: ModuleType | None, name: str) -> Any:
    return getattr(module, name, None) if module is not None else None


def _load_modules() -> dict[str, ModuleType | None]:
    names = {
        "vllm": "vllm",
        "sampling": "vllm.sampling_params",
        "arg_utils": "vllm.engine.arg_utils",
        "async_v0": "vllm.engine.async_llm_engine",
        "async_v1": "vllm.v1.engine.async_llm",
        "inputs": "vllm.inputs",
    }
    return {key: _import(mod) for key, mod in names.items()}


@functools.lru_cache(maxsize=1)
def live() -> Live:
    """Import vLLM once and describe it. Raises :class:`VllmNotInstalled`."""
    info = _detect.detect()
    _capabilities.check_supported(info.version, info.raw_version)
    mods = _load_modules()
    vllm = mods["vllm"]
    if vllm is None:
        raise VllmNotInstalled(f"{info.distribution} {info.raw_version} is installed but `import vllm` failed.")
    sampling_cls = _attr(mods["sampling"], "SamplingParams") or vllm.SamplingParams
    engine_args = _attr(mods["arg_utils"], "EngineArgs")
    async_args = _attr(mods["arg_utils"], "AsyncEngineArgs")
    parts: dict[str, Any] = dict(
        info=info,
        vllm=vllm,
        llm_cls=getattr(vllm, "LLM", None),
        async_engine_cls=_attr(mods["async_v0"], "AsyncLLMEngine") or getattr(vllm, "AsyncLLMEngine", None),
        async_llm_cls=_attr(mods["async_v1"], "AsyncLLM"),
        sampling_cls=sampling_cls,
        sampling_fields=fields_of(sampling_cls, recorded_fields(_history.SAMPLING_FIELDS, info.version)),
        structured_cls=_attr(mods["sampling"], "StructuredOutputsParams"),
        guided_cls=_attr(mods["sampling"], "GuidedDecodingParams"),
        beam_search_cls=_attr(mods["sampling"], "BeamSearchParams"),
        engine_args_cls=engine_args,
        async_engine_args_cls=async_args,
        engine_arg_fields=fields_of(engine_args, _recorded_engine_args(info.version, False)),
        async_engine_arg_fields=fields_of(async_args, _recorded_engine_args(info.version, True)),
        caps=info.capabilities,
    )
    parts["caps"] = _confirm(info.capabilities, _probes(parts, mods["inputs"]))
    return Live(**{**parts, **_with_recorded(parts, info.version)})


def _with_recorded(parts: dict[str, Any], version: Version) -> dict[str, frozenset[str]]:
    """The field sets the adapter translates against: what the classes show plus what matrix/
    recorded for the release, so no refusal ever names a range that contains the installed
    release (a field the code hides is passed on, and vLLM itself says if it disagrees). The
    capability probes see the classes alone."""
    return {
        "sampling_fields": parts["sampling_fields"] | recorded_fields(_history.SAMPLING_FIELDS, version),
        "engine_arg_fields": parts["engine_arg_fields"] | _recorded_engine_args(version, False),
        "async_engine_arg_fields": parts["async_engine_arg_fields"] | _recorded_engine_args(version, True),
    }


def _recorded_engine_args(version: Version, is_async: bool) -> frozenset[str]:
    names = recorded_fields(_history.ENGINE_ARGS, version)
    return names | recorded_fields(_history.ASYNC_ENGINE_ARGS, version) if is_async else names


def _first_param(func: Any) -> str | None:
    names = param_names(func)
    return names[0] if names else None


def _kind_after(func: Any, name: str) -> bool | None:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    names = [p.name for p in params]
    if name not in names or names.index(name) + 1 >= len(params):
        return None
    return params[names.index(name) + 1].kind is inspect.Parameter.KEYWORD_ONLY


Probe = Callable[[], "bool | None"]


def _probes(p: dict[str, Any], inputs: ModuleType | None) -> dict[str, Probe]:
    """Live observations, one per flag that the imported code can show."""
    llm, sampling, fields = p["llm_cls"], p["sampling_cls"], p["sampling_fields"]
    v0, v1 = p["async_engine_cls"], p["async_llm_cls"]
    eng = p["engine_arg_fields"] | p["async_engine_arg_fields"]
    agen = getattr(v0, "generate", None)
    llm_gen = getattr(llm, "generate", None)
    return {
        "async_generate_legacy_kwargs": lambda: "prompt_token_ids" in param_names(agen) if agen else None,
        "async_generate_inputs_keyword": lambda: _first_param(agen) == "inputs" if agen else None,
        "async_generate_prompt_keyword": lambda: _first_param(agen) == "prompt" and "prompt_token_ids" not in param_names(agen) if agen else None,
        "async_generate_priority": lambda: "priority" in param_names(agen) if agen else None,
        "async_generate_keyword_only_tail": lambda: _kind_after(agen, "request_id") if agen else None,
        "prompt_dicts": lambda: _attr(inputs, "TokensPrompt") is not None,
        "llm_prompt_token_ids_kwarg": lambda: "prompt_token_ids" in param_names(llm_gen) if llm_gen else None,
        "llm_generate_priority": lambda: "priority" in param_names(llm_gen) if llm_gen else None,
        "llm_keyword_only_init": lambda: _kind_after(llm.__init__, "model") if llm else None,
        "llm_chat": lambda: hasattr(llm, "chat") if llm else None,
        "llm_beam_search": lambda: hasattr(llm, "beam_search") if llm else None,
        "sampling_use_beam_search": lambda: "use_beam_search" in fields,
        "sampling_best_of": lambda: "best_of" in fields,
        "guided_decoding": lambda: "guided_decoding" in fields,
        "structured_outputs": lambda: "structured_outputs" in fields,
        "sampling_msgspec": lambda: hasattr(sampling, "__struct_fields__"),
        "sampling_output_kind": lambda: "output_kind" in fields,
        "v1_engine_available": lambda: v1 is not None,
        "v0_removed": lambda: v1 is not None and v0 is v1,
        "sync_async_engine_get_tokenizer": lambda: (
            not inspect.iscoroutinefunction(v1.get_tokenizer) if v1 is not None and hasattr(v1, "get_tokenizer") else None
        ),
        "distributed_executor_backend": lambda: "distributed_executor_backend" in eng if eng else None,
        "worker_use_ray": lambda: "worker_use_ray" in eng if eng else None,
        "enable_log_requests": lambda: "enable_log_requests" in eng if eng else None,
        "runner_convert": lambda: "runner" in eng if eng else None,
        "engine_task": lambda: "task" in eng if eng else None,
    }


def _confirm(caps: Capabilities, probes: dict[str, Probe]) -> Capabilities:
    changes: dict[str, bool] = {}
    for name, probe in probes.items():
        observed = probe()
        if observed is None or observed == caps.flags[name]:
            continue
        changes[name] = observed
        warnings.warn(
            f"vLLM {caps.version}: capability {name!r} ({_capabilities.FLAGS[name].doc}) is "
            f"{observed} in the installed code but {caps.flags[name]} for that version number; "
            "using what the installed code does.",
            CapabilityMismatchWarning,
            stacklevel=3,
        )
    return caps.replace(**changes) if changes else caps


_RESET_HOOKS: list[Callable[[], None]] = []


def on_reset(hook: Callable[[], None]) -> Callable[[], None]:
    """Register a cache-clearing hook run by :func:`reset`."""
    _RESET_HOOKS.append(hook)
    return hook


def reset() -> None:
    """Forget the detected and imported vLLM and every plan derived from it."""
    _detect.reset()
    live.cache_clear()
    for hook in _RESET_HOOKS:
        hook()

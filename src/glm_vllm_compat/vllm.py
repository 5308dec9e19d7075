"""Drop-in ``vllm`` names for servers written against any vLLM release.

Change only the import line::

    -from vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams
    +from glm_vllm_compat.vllm import AsyncEngineArgs, AsyncLLMEngine, SamplingParams

and a script written for one vLLM release (0.4.0 .. newest) runs on the one
installed. Each name accepts the union of the historic call forms and routes
them through the adapter (:func:`glm_vllm_compat.generate`,
:func:`glm_vllm_compat.sampling_params`, the engine-argument translation):

* :class:`SamplingParams`, :class:`EngineArgs`, :class:`AsyncEngineArgs`,
  :class:`GuidedDecodingParams` / :class:`StructuredOutputsParams` return the
  *native* vLLM objects, so ``isinstance(sp, vllm.SamplingParams)`` still holds;
* :class:`AsyncLLMEngine` and :class:`LLM` are thin wrappers around the native
  engine; every attribute they do not define is the native one, and
  ``isinstance(x, AsyncLLMEngine)`` is true for the wrapper, for a V0
  ``AsyncLLMEngine`` and for a V1 ``AsyncLLM`` alike.

A historic call form that the installed release does not take is translated
when its meaning is kept exactly, with one :class:`~glm_vllm_compat.LegacyCallWarning`
per form naming the modern form; otherwise :class:`~glm_vllm_compat.UnsupportedFeature`
names the field, the installed version and the releases that support it.

Importing this module imports neither vLLM nor torch: vLLM is imported the
first time a name is used. Names not mirrored here (``LLMEngine``,
``BeamSearchParams``, ...) are looked up in the installed ``vllm`` package on
first access. See docs/dropin.md.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import os
import sys
import warnings
from collections.abc import Coroutine, Generator, Iterable, Mapping
from typing import Any, Callable

from . import _capabilities, _history, _live
from ._capabilities import flag_range
from ._engine import abort as _abort
from ._engine import build_llm, llm_fields
from ._engine import get_tokenizer as _get_tokenizer
from ._engine_args import translate_engine_args
from ._errors import (
    CompatError,
    EngineError,
    InvalidParameter,
    LegacyCallWarning,
    UnsupportedFeature,
)
from ._generate import generate as _generate
from ._live import Live
from ._prompts import TextPrompt, TokensPrompt, is_token_list
from ._sampling import sampling_params as _sampling_params
from ._sampling import structured_outputs_params

__all__ = [
    "LLM",
    "AsyncEngineArgs",
    "AsyncLLMEngine",
    "CompletionOutput",
    "EngineArgs",
    "GuidedDecodingParams",
    "RequestOutput",
    "SamplingParams",
    "StructuredOutputsParams",
    "TextPrompt",
    "TokenizerHandle",
    "TokensPrompt",
]

_MISSING: Any = object()

# ---------------------------------------------------------------------------
# One LegacyCallWarning per call form
# ---------------------------------------------------------------------------

_WARNED: set[str] = set()
_live.on_reset(_WARNED.clear)


def _user_stacklevel() -> int:
    """``stacklevel`` for ``warnings.warn`` pointing at the first frame outside this package."""
    frame = sys._getframe(2)  # the caller of the function that calls warnings.warn
    level = 2
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "glm_vllm_compat":
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _warn_legacy(form: str, modern: str) -> None:
    """Warn once per ``form`` (until :func:`glm_vllm_compat.reset`)."""
    if form in _WARNED:
        return
    _WARNED.add(form)
    installed = _live.live().info.raw_version
    warnings.warn(
        f"{form} is a historic vLLM call form that vLLM {installed} does not accept as written; "
        f"glm_vllm_compat translated it. Modern form: {modern}.",
        LegacyCallWarning,
        stacklevel=_user_stacklevel(),
    )


# ---------------------------------------------------------------------------
# Mirrors: isinstance/issubclass against the native classes, lazy resolution
# ---------------------------------------------------------------------------


def _loaded_live() -> Live | None:
    """The live vLLM if it is (or may cheaply be) loaded; never triggers the first import."""
    if not (_live.live.cache_info().currsize or "vllm" in sys.modules):
        return None
    try:
        return _live.live()
    except CompatError:
        return None


class _NativeMeta(type):
    """Metaclass of the mirrors.

    ``isinstance(obj, Mirror)`` is true for instances of the mirror itself and of
    the native class(es) it stands for; class attributes the mirror lacks
    (``AsyncEngineArgs.add_cli_args``, ``SamplingParams.from_optional``) are the
    native class's. Nothing imports vLLM before it is needed: an isinstance
    check while vLLM is not imported is simply false for native objects.
    """

    def _vllm_types(cls, load: bool = False) -> tuple[type, ...]:
        lv = _live.live() if load else _loaded_live()
        if lv is None:
            return ()
        natives: Callable[[Live], tuple[Any, ...]] = cls.__dict__.get("_natives") or _no_natives
        if isinstance(natives, staticmethod):
            natives = natives.__func__
        return tuple(t for t in natives(lv) if isinstance(t, type))

    def __instancecheck__(cls, obj: object) -> bool:
        return type.__instancecheck__(cls, obj) or isinstance(obj, cls._vllm_types())

    def __subclasscheck__(cls, sub: type) -> bool:
        if type.__subclasscheck__(cls, sub):
            return True
        return isinstance(sub, type) and issubclass(sub, cls._vllm_types())

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        for native in cls._vllm_types(load=True):
            if hasattr(native, name):
                return getattr(native, name)
        raise AttributeError(f"{cls.__name__} (and the native vLLM class) has no attribute {name!r}")


def _no_natives(lv: Live) -> tuple[Any, ...]:
    return ()


def _vllm_attr(module: str, name: str) -> Any:
    """``vllm.<module>.<name>``, or ``vllm.<name>``; ``None`` when neither exists."""
    lv = _live.live()
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError:
        found = None
    return found if found is not None else getattr(lv.vllm, name, None)


# ---------------------------------------------------------------------------
# SamplingParams
# ---------------------------------------------------------------------------


def _installed(lv: Live) -> str:
    return lv.info.raw_version


def _runs_v1(lv: Live) -> bool:
    return _capabilities.engine_generation(lv.caps) == "v1"


def _beam_hint() -> str:
    return (
        "Beam search moved to LLM.beam_search(prompts, BeamSearchParams(beam_width=..., max_tokens=...)) "
        f"(vLLM {flag_range('llm_beam_search')}); use that instead."
    )


# ---------------------------------------------------------------------------
# Historic values compared by meaning
# ---------------------------------------------------------------------------


def _literals(sources: Iterable[str]) -> tuple[Any, ...]:
    out = []
    for source in sources:
        try:
            out.append(ast.literal_eval(source))
        except (ValueError, SyntaxError):  # pragma: no cover - the table keeps literals only
            continue
    return tuple(out)


def _sampling_neutrals(name: str) -> tuple[Any, ...]:
    """Every default SamplingParams.<name> had in a recorded release (from matrix/surfaces/)."""
    return _literals(_history.SAMPLING_HISTORIC_DEFAULTS.get(name, ()))


def _engine_neutrals(name: str) -> tuple[Any, ...]:
    """The literal defaults of a removed engine argument that all meant the same: every one when
    the releases agree (by meaning), else only the last release's (``use_v2_block_manager`` was
    ``False`` and then ``True``; ``guided_decoding_backend`` ``'outlines'`` then ``'xgrammar'``:
    asking for the older default is asking for something else)."""
    values = _literals(_history.ENGINE_HISTORIC_DEFAULTS.get(name, ()))
    if all(_same_meaning(v, values[0]) for v in values[1:]):
        return values
    return values[-1:]


def _same_meaning(value: Any, neutral: Any) -> bool:
    """Whether old vLLM code treated ``value`` as ``neutral``: equal numbers of any numeric form
    (``1`` and ``1.0``; ``0`` and ``False`` for a bool default, which the old code only tested for
    truth or compared with ``==``), else the same type and value. ``True`` is not a number here
    unless the default is a bool."""
    numeric = (bool, int, float)
    if isinstance(neutral, numeric) and isinstance(value, numeric):
        if isinstance(value, bool) and not isinstance(neutral, bool):
            return False
        return bool(value == neutral)
    return type(value) is type(neutral) and bool(value == neutral)


def _is_neutral(value: Any, neutrals: Iterable[Any]) -> bool:
    return any(_same_meaning(value, neutral) for neutral in neutrals)


def _warn_dropped(form: str, why: str, modern: str) -> None:
    """One warning per ``form`` for a historic no-op value left out."""
    if form in _WARNED:
        return
    _WARNED.add(form)
    installed = _live.live().info.raw_version
    warnings.warn(
        f"{form} is a historic vLLM call form that vLLM {installed} does not accept as written; "
        f"glm_vllm_compat dropped it because {why}. Modern form: {modern}.",
        LegacyCallWarning,
        stacklevel=_user_stacklevel(),
    )


def _span(name: str) -> str:
    return _history.supported_range(_history.SAMPLING_FIELDS, name)


def _beam_only(name: str) -> Callable[[dict[str, Any], Live], None]:
    """use_beam_search / length_penalty / early_stopping where SamplingParams has no beam search:
    a historic default (any form the old code took) is dropped with a warning, any other refused."""
    neutrals = _sampling_neutrals(name)

    def handle(fields: dict[str, Any], lv: Live) -> None:
        if name in lv.sampling_fields:
            return
        value = fields.pop(name)
        if value is None or _is_neutral(value, neutrals):
            shown = " / ".join(repr(n) for n in neutrals)
            _warn_dropped(
                f"SamplingParams({name}={value!r})",
                f"{value!r} is the default of SamplingParams.{name} in vLLM {_span(name)} ({shown}), "
                f"which has no effect without beam search, and vLLM {_installed(lv)} has no {name} field",
                f"leave {name} out",
            )
            return
        raise _needs_beam_search(name, value, lv)

    return handle


def _needs_beam_search(name: str, value: Any, lv: Live) -> UnsupportedFeature:
    if name == "use_beam_search":
        what = f"use_beam_search={value!r} asks for beam search, which SamplingParams no longer does."
    else:
        default = " / ".join(repr(n) for n in _sampling_neutrals(name))
        what = (
            f"{name}={value!r} only has an effect with beam search (use_beam_search=True): vLLM {_span(name)} "
            f"refused any value but its default ({default}) without it, and SamplingParams no longer does beam search."
        )
    return UnsupportedFeature(name, _installed(lv), _span(name), hint=f"{what} {_beam_hint()}")


def _best_of(fields: dict[str, Any], lv: Live) -> None:
    """best_of == n means "n samples, return n": left out, with a warning, where the field is gone or
    V1 refuses it. best_of > n there is refused by sampling_params() (the V0 engine only)."""
    value, n = fields["best_of"], fields.get("n") or 1
    if isinstance(value, float) and _same_meaning(value, n):
        _warn_legacy(f"SamplingParams(best_of={value!r})", f"best_of={int(value)} (an int), or leave it out")
        value = fields["best_of"] = int(value)
    if value is None or ("best_of" in lv.sampling_fields and (value == 1 or not _runs_v1(lv))):
        return  # the release takes it as it is (V1 refuses only best_of > 1)
    if _same_meaning(value, n):
        del fields["best_of"]
        _warn_legacy("SamplingParams(best_of=n)", "leave best_of out (best_of == n is the default)")
    elif isinstance(value, int) and value < n:
        raise InvalidParameter(f"SamplingParams: best_of ({value}) must be at least n ({n})")


def _logits_processors(fields: dict[str, Any], lv: Live) -> None:
    """None / [] where the field is gone: left out, with a warning. A non-empty list where the V1
    engine runs or the field is gone is refused by sampling_params() (the V0 engine only)."""
    if not fields["logits_processors"] and "logits_processors" not in lv.sampling_fields:
        del fields["logits_processors"]
        _warn_legacy("SamplingParams(logits_processors=None)", "leave logits_processors out")


def _guided_decoding(fields: dict[str, Any], lv: Live) -> None:
    value = fields.pop("guided_decoding")
    if value is None:
        return
    field, native = structured_outputs_params(value, lv)
    if field in fields:
        raise TypeError("SamplingParams() got both guided_decoding and structured_outputs")
    if field != "guided_decoding":
        _warn_legacy(
            "SamplingParams(guided_decoding=...)",
            f"structured_outputs=StructuredOutputsParams(...) (vLLM {flag_range('structured_outputs')})",
        )
    fields[field] = native


def _top_k(fields: dict[str, Any], lv: Live) -> None:
    """-1 (the default to 0.8.x) and 0 (from 0.9.0) both mean "disabled": either, as an int or a
    float, becomes the installed release's own int form (vLLM 0.2x refuses a float top_k)."""
    value = fields["top_k"]
    if not _is_neutral(value, _sampling_neutrals("top_k")):
        return
    fields["top_k"] = int(value)
    modern = f"top_k=0 to disable top-k (vLLM {flag_range('top_k_zero_disables')})"
    if value == -1 and lv.caps.top_k_zero_disables:
        _warn_legacy(f"SamplingParams(top_k={value!r})", modern)
    elif isinstance(value, float):
        _warn_legacy(f"SamplingParams(top_k={value!r})", f"top_k={int(value)} (an int; {modern})")


_SAMPLING_LEGACY: dict[str, Callable[[dict[str, Any], Live], None]] = {
    "use_beam_search": _beam_only("use_beam_search"),
    "length_penalty": _beam_only("length_penalty"),
    "early_stopping": _beam_only("early_stopping"),
    "best_of": _best_of,
    "logits_processors": _logits_processors,
    "guided_decoding": _guided_decoding,
    "top_k": _top_k,
}


def _build_sampling(fields: Mapping[str, Any]) -> Any:
    lv = _live.live()
    stable = dict(fields)
    for name, handle in _SAMPLING_LEGACY.items():
        if name in stable:
            handle(stable, lv)
    return _sampling_params(**stable)


class SamplingParams(metaclass=_NativeMeta):
    """``vllm.SamplingParams`` taking the fields of every release (keywords only).

    Returns the installed release's native ``SamplingParams``, so
    ``isinstance(sp, vllm.SamplingParams)`` holds; ``isinstance(sp, SamplingParams)``
    holds too. Historic fields are translated where their meaning is kept
    exactly (``use_beam_search=False``, ``best_of == n``, ``length_penalty=1.0``,
    ``early_stopping=False``, ``guided_decoding=...``, ``top_k=-1``,
    ``logits_processors=None``) and refused otherwise.
    """

    _natives = staticmethod(lambda lv: (lv.sampling_cls,))

    def __new__(cls, *args: Any, **fields: Any) -> Any:
        if args:
            raise TypeError(
                "glm_vllm_compat.vllm.SamplingParams() takes keyword arguments only "
                "(the field order changed between vLLM releases)"
            )
        return _build_sampling(fields)


class StructuredOutputsParams(metaclass=_NativeMeta):
    """The native ``StructuredOutputsParams`` (``GuidedDecodingParams`` on 0.6.3 .. 0.10.x)."""

    _natives = staticmethod(lambda lv: (lv.structured_cls, lv.guided_cls))

    def __new__(cls, **fields: Any) -> Any:
        return structured_outputs_params(fields)[1]


class GuidedDecodingParams(StructuredOutputsParams):
    """``GuidedDecodingParams(...)``: the native one where it exists, else a ``StructuredOutputsParams``."""

    _natives = staticmethod(lambda lv: (lv.guided_cls, lv.structured_cls))

    def __new__(cls, **fields: Any) -> Any:
        lv = _live.live()
        native = structured_outputs_params(fields, lv)[1]
        if lv.guided_cls is None or not isinstance(native, lv.guided_cls):
            _warn_legacy(
                "GuidedDecodingParams(...)",
                f"StructuredOutputsParams(...) (vLLM {flag_range('structured_outputs')})",
            )
        return native


class RequestOutput(metaclass=_NativeMeta):
    """The native ``vllm.outputs.RequestOutput`` (a mirror for isinstance checks)."""

    _natives = staticmethod(lambda lv: (_vllm_attr("vllm.outputs", "RequestOutput"),))

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _vllm_attr("vllm.outputs", "RequestOutput")(*args, **kwargs)


class CompletionOutput(metaclass=_NativeMeta):
    """The native ``vllm.outputs.CompletionOutput`` (a mirror for isinstance checks)."""

    _natives = staticmethod(lambda lv: (_vllm_attr("vllm.outputs", "CompletionOutput"),))

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _vllm_attr("vllm.outputs", "CompletionOutput")(*args, **kwargs)


# ---------------------------------------------------------------------------
# EngineArgs / AsyncEngineArgs
# ---------------------------------------------------------------------------

_MODERN_ENGINE_ARGS: dict[str, str] = {
    "worker_use_ray": "distributed_executor_backend='ray' (leave it out for the default backend)",
    "engine_use_ray": "leave engine_use_ray out (the option was removed)",
    "disable_log_requests": "enable_log_requests=<the opposite value>",
    "max_context_len_to_capture": "max_seq_len_to_capture (later removed with the V0 engine)",
    "task": "runner=... / convert=...",
    "enable_reasoning": "reasoning_parser=... alone",
}


def _historic_engine_arg(name: str) -> bool:
    span = _history.ENGINE_ARGS.get(name) or _history.ASYNC_ENGINE_ARGS.get(name)
    return span is None or span[1] is not None


def _sent_as(name: str, value: Any, fields: frozenset[str], lv: Live, where: str) -> str:
    try:
        sent = translate_engine_args({name: value}, fields, _installed(lv), where)
    except CompatError:
        return "a translation that depends on the other arguments"
    return ", ".join(f"{k}={v!r}" for k, v in sent.items()) or "nothing (the value is the default)"


def _warn_engine_args(where: str, kwargs: Mapping[str, Any], fields: frozenset[str], lv: Live) -> None:
    for name, value in kwargs.items():
        if name in fields or not _historic_engine_arg(name):
            continue
        modern = _MODERN_ENGINE_ARGS.get(name, "the argument's current name")
        sent = _sent_as(name, value, fields, lv, f"{where}()")
        _warn_legacy(f"{where}({name}=...)", f"{modern}; sent to vLLM {_installed(lv)} as {sent}")


def _untranslatable(name: str, value: Any, kwargs: Mapping[str, Any], fields: frozenset[str], lv: Live) -> bool:
    context = {k: v for k, v in kwargs.items() if k in fields}
    try:
        translate_engine_args({**context, name: value}, fields, _installed(lv), "")
    except CompatError:
        return True
    return False


def _drop_engine_defaults(where: str, kwargs: dict[str, Any], fields: frozenset[str], lv: Live) -> dict[str, Any]:
    """Removed engine arguments the release cannot take in any form, at a default some release
    had (``max_context_len_to_capture=8192``, ``device='auto'``...): dropped with a warning."""
    out = dict(kwargs)
    for name, value in kwargs.items():
        if name in fields or not _historic_engine_arg(name):
            continue
        neutrals = _engine_neutrals(name)
        if not _is_neutral(value, neutrals) or not _untranslatable(name, value, kwargs, fields, lv):
            continue
        del out[name]
        span = _history.supported_range(
            _history.ENGINE_ARGS if name in _history.ENGINE_ARGS else _history.ASYNC_ENGINE_ARGS, name
        )
        shown = " / ".join(repr(n) for n in neutrals)
        _warn_dropped(
            f"{where}({name}={value!r})",
            f"{value!r} is the default of {name} in vLLM {span} ({shown}), so it asks for nothing, "
            f"and vLLM {_installed(lv)} has neither {name} nor a replacement for it",
            f"leave {name} out",
        )
    return out


def _with_model(where: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    if len(args) > 1:
        raise TypeError(f"{where}() takes the model positionally and every other argument by keyword")
    if args:
        if "model" in kwargs:
            raise TypeError(f"{where}() got multiple values for argument 'model'")
        return {"model": args[0], **kwargs}
    return kwargs


def _build_engine_args(where: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    lv = _live.live()
    is_async = where == "AsyncEngineArgs"
    cls = lv.async_engine_args_cls if is_async else lv.engine_args_cls
    fields = lv.async_engine_arg_fields if is_async else lv.engine_arg_fields
    if cls is None:  # pragma: no cover - every supported release has both
        raise EngineError(f"vLLM {_installed(lv)} has no {where}")
    given = _drop_engine_defaults(where, _with_model(where, args, kwargs), fields, lv)
    translated = translate_engine_args(given, fields, _installed(lv), f"{where}()")
    _warn_engine_args(where, given, fields, lv)
    try:
        return cls(**translated)
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(f"vLLM {_installed(lv)} rejected {where}({translated!r}): {exc}") from exc


class EngineArgs(metaclass=_NativeMeta):
    """``vllm.EngineArgs`` taking the argument names of every release; returns the native object."""

    _natives = staticmethod(lambda lv: (lv.engine_args_cls,))

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _build_engine_args("EngineArgs", args, kwargs)


class AsyncEngineArgs(EngineArgs):
    """``vllm.AsyncEngineArgs`` taking the argument names of every release
    (``worker_use_ray``, ``engine_use_ray``, ``disable_log_requests``,
    ``max_context_len_to_capture``, ``task``, ...); returns the native object."""

    _natives = staticmethod(lambda lv: (lv.async_engine_args_cls,))

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _build_engine_args("AsyncEngineArgs", args, kwargs)


# ---------------------------------------------------------------------------
# Calls whose form changed: shared helpers
# ---------------------------------------------------------------------------

# Releases of the optional native parameters the adapter does not route itself
# (text for error messages only; nothing here is compared).
_PARAM_SPANS: dict[str, str] = {
    "multi_modal_data": "0.4.0 .. 0.4.2 (a prompt dict key from 0.4.3)",
    "trace_headers": ">=0.5.1",
    "prompt_adapter_request": "0.5.2 .. 0.9.2",
    "guided_options_request": "0.5.4 .. 0.10.0",
    "data_parallel_rank": ">=0.9.1",
    "engine_config": "0.6.2 .. 0.7.3",
    "stat_loggers": ">=0.5.3 (V1 engine: 0.6.4 .. 0.6.6.post1 and >=0.8.5)",
}

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _params_of(func: Any) -> list[inspect.Parameter]:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return []
    return params[1:] if params and params[0].name in ("self", "cls") else params


def _accepts_keyword(func: Any, name: str) -> bool:
    return any(
        (p.name == name and p.kind is not inspect.Parameter.POSITIONAL_ONLY) or p.kind is inspect.Parameter.VAR_KEYWORD
        for p in _params_of(func)
    )


def _accepts_positional(func: Any, index: int, name: str) -> bool:
    params = _params_of(func)
    return index < len(params) and params[index].name == name and params[index].kind in _POSITIONAL


def _native_kwargs(func: Any, kwargs: Mapping[str, Any], where: str, lv: Live) -> dict[str, Any]:
    """The keyword arguments ``func`` takes; unset (None) others dropped, set others refused."""
    out: dict[str, Any] = {}
    for name, value in kwargs.items():
        if _accepts_keyword(func, name):
            out[name] = value
        elif value is not None:
            span = _PARAM_SPANS.get(name, f"releases whose {where} takes {name!r}")
            raise UnsupportedFeature(name, _installed(lv), span)
    return out


def _bind(where: str, args: tuple[Any, ...], names: Iterable[str], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    named = dict(kwargs)
    for name, value in zip(names, args):
        if name in named:
            raise TypeError(f"{where}() got multiple values for argument {name!r}")
        named[name] = value
    return named


def _tokens_prompt_takes_text(lv: Live) -> bool:
    """Whether a TokensPrompt may carry the prompt text next to the ids on this release."""
    if not lv.caps.prompt_dicts:
        return True  # the adapter passes text and ids as the release's two arguments
    tokens_prompt = _vllm_attr("vllm.inputs", "TokensPrompt")
    keys = getattr(tokens_prompt, "__required_keys__", frozenset()) | getattr(
        tokens_prompt, "__optional_keys__", frozenset()
    )
    return "prompt" in keys


def _tokens_prompt(ids: Any, text: Any, lv: Live) -> dict[str, Any]:
    prompt: dict[str, Any] = {"prompt_token_ids": list(ids)}
    if isinstance(text, str) and _tokens_prompt_takes_text(lv):
        prompt["prompt"] = text
    return prompt


@dataclasses.dataclass
class _Call:
    """One generate() call, normalized for the adapter."""

    prompts: Any
    sampling: Any = None
    request_id: Any = None
    lora: Any = None
    priority: Any = None
    native: dict[str, Any] = dataclasses.field(default_factory=dict)


def _dispatch(target: Any, call: _Call) -> Any:
    """Run ``call`` through the adapter's ``generate``."""
    return _generate(
        target, call.prompts, call.sampling, request_id=call.request_id,
        lora_request=call.lora, priority=call.priority, native_kwargs=call.native,
    )


# ---------------------------------------------------------------------------
# AsyncLLMEngine.generate(...)
# ---------------------------------------------------------------------------


def _async_positional_names(args: tuple[Any, ...]) -> tuple[str, ...]:
    """Names of positional arguments: (prompt, sampling_params, request_id) then
    (prompt_token_ids, lora_request) in 0.4.0 .. 0.4.2 or (lora_request, trace_headers) after."""
    head = ("prompt", "sampling_params", "request_id")
    if len(args) <= 3:
        return head[: len(args)]
    fourth = args[3]
    old = is_token_list(fourth) or (fourth is None and len(args) == 5 and not isinstance(args[4], Mapping))
    tail = ("prompt_token_ids", "lora_request") if old else ("lora_request", "trace_headers")
    return head + tail[: len(args) - 3]


def _warn_async_positionals(func: Any, names: tuple[str, ...]) -> None:
    for index, name in enumerate(names[3:], start=3):
        if _accepts_positional(func, index, name):
            continue
        modern = (
            "prompt=TokensPrompt(prompt_token_ids=...)" if name == "prompt_token_ids" else f"{name}=... by keyword"
        )
        _warn_legacy(f"AsyncLLMEngine.generate(prompt, sampling_params, request_id, ..., {name}) positional", modern)


def _async_prompt(func: Any, named: dict[str, Any], positional: tuple[str, ...], lv: Live) -> Any:
    """The one prompt of an async generate() call, from prompt=/inputs=/prompt_token_ids=."""
    inputs = named.pop("inputs", _MISSING)
    if inputs is not _MISSING:
        if "prompt" in named:
            raise TypeError("generate() got both prompt= and inputs=")
        if not _accepts_keyword(func, "inputs"):
            _warn_legacy("AsyncLLMEngine.generate(inputs=...)", f"prompt=... (vLLM {flag_range('async_generate_prompt_keyword')})")
        named["prompt"] = inputs
    prompt, ids = named.pop("prompt", None), named.pop("prompt_token_ids", None)
    if ids is not None:
        if "prompt_token_ids" not in positional and not _accepts_keyword(func, "prompt_token_ids"):
            _warn_legacy("AsyncLLMEngine.generate(prompt_token_ids=...)", "prompt=TokensPrompt(prompt_token_ids=...)")
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError("generate() got prompt_token_ids= together with a non-text prompt")
        prompt = _tokens_prompt(ids, prompt, lv)
    if prompt is None:
        raise TypeError("generate() needs a prompt (prompt=, inputs= or prompt_token_ids=)")
    return _fold_multi_modal(func, prompt, named)


def _fold_multi_modal(func: Any, prompt: Any, named: dict[str, Any]) -> Any:
    """0.4.0 .. 0.4.2 ``multi_modal_data=`` → a key of the prompt dict (0.4.3+)."""
    data = named.get("multi_modal_data")
    if data is None or _accepts_keyword(func, "multi_modal_data"):
        return prompt
    del named["multi_modal_data"]
    _warn_legacy("AsyncLLMEngine.generate(multi_modal_data=...)", "prompt={'prompt': ..., 'multi_modal_data': ...}")
    as_dict = {"prompt": prompt} if isinstance(prompt, str) else dict(prompt)
    return {**as_dict, "multi_modal_data": data}


def _parse_async_generate(engine: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> _Call:
    if len(args) > 5:
        raise TypeError("AsyncLLMEngine.generate() takes at most 5 positional arguments; pass the rest by keyword")
    lv = _live.live()
    func = type(engine).generate
    names = _async_positional_names(args)
    _warn_async_positionals(func, names)
    named = _bind("generate", args, names, kwargs)
    prompt = _async_prompt(func, named, names, lv)
    call = _Call(
        prompt,
        named.pop("sampling_params", None),
        named.pop("request_id", None),
        named.pop("lora_request", None),
        named.pop("priority", None),
    )
    call.native = _native_kwargs(func, named, "AsyncLLMEngine.generate()", lv)
    return call


# ---------------------------------------------------------------------------
# LLM.generate(...)
# ---------------------------------------------------------------------------

_LLM_POSITIONAL = ("prompts", "sampling_params", "prompt_token_ids", "use_tqdm", "lora_request")


def _llm_prompts(prompts: Any, ids: Any, lv: Live) -> Any:
    """``prompts`` plus the historic ``prompt_token_ids`` → one list of prompts."""
    if ids is None:
        if prompts is None:
            raise TypeError("LLM.generate() needs prompts (or prompt_token_ids)")
        return prompts
    batches = [list(ids)] if is_token_list(ids) else [list(item) for item in ids]
    if prompts is None:
        return [{"prompt_token_ids": batch} for batch in batches]
    texts = [prompts] if isinstance(prompts, str) else list(prompts)
    if len(texts) != len(batches):
        raise ValueError("LLM.generate(): prompts and prompt_token_ids must have the same length")
    return [_tokens_prompt(batch, text, lv) for text, batch in zip(texts, batches)]


def _parse_llm_generate(llm: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> _Call:
    if len(args) > len(_LLM_POSITIONAL):
        raise TypeError("LLM.generate() takes at most 5 positional arguments; pass the rest by keyword")
    lv = _live.live()
    func = type(llm).generate
    for index, name in enumerate(_LLM_POSITIONAL[2 : len(args)], start=2):
        if not _accepts_positional(func, index, name):
            _warn_legacy(f"LLM.generate(prompts, sampling_params, ..., {name}) positional", f"{name}=... by keyword")
    named = _bind("LLM.generate", args, _LLM_POSITIONAL, kwargs)
    inputs = named.pop("inputs", _MISSING)
    if inputs is not _MISSING:
        if named.get("prompts") is not None:
            raise TypeError("LLM.generate() got both prompts and inputs=")
        _warn_legacy("LLM.generate(inputs=...)", "LLM.generate(prompts, sampling_params)")
        named["prompts"] = inputs
    ids = named.pop("prompt_token_ids", None)
    if ids is not None and not _accepts_keyword(func, "prompt_token_ids"):
        _warn_legacy("LLM.generate(prompt_token_ids=...)", "LLM.generate([TokensPrompt(prompt_token_ids=ids), ...])")
    call = _Call(_llm_prompts(named.pop("prompts", None), ids, lv), named.pop("sampling_params", None))
    call.lora, call.priority = named.pop("lora_request", None), named.pop("priority", None)
    if named.get("use_tqdm", True) is True:
        named.pop("use_tqdm", None)  # the default on every release
    call.native = _native_kwargs(func, named, "LLM.generate()", lv)
    return call


# ---------------------------------------------------------------------------
# get_tokenizer(): awaitable and usable as the tokenizer
# ---------------------------------------------------------------------------


def _drive(awaitable: Any) -> Any:
    """Run an awaitable that finishes without suspending (``async def`` returning a value)."""
    steps = awaitable.__await__()
    try:
        steps.send(None)
    except StopIteration as done:
        return done.value
    steps.close()
    raise TypeError(
        "this engine's get_tokenizer() has to wait for the engine; use `await engine.get_tokenizer()`"
    )


class TokenizerHandle:
    """What :meth:`AsyncLLMEngine.get_tokenizer` returns: both forms of every release.

    ``await engine.get_tokenizer()`` gives the native tokenizer (the V0 / early-V1
    async form); ``engine.get_tokenizer()`` used directly behaves as the
    tokenizer (the V1 >= 0.15 sync form): attribute access, calls and ``len()``
    go to the native tokenizer, fetched on first use. ``handle.__wrapped__`` is
    the native tokenizer itself (for ``isinstance`` checks).
    """

    __slots__ = ("_engine", "_lora_request", "_tokenizer")

    def __init__(self, engine: Any, lora_request: Any = None) -> None:
        self._engine, self._lora_request, self._tokenizer = engine, lora_request, _MISSING

    def __await__(self) -> Generator[Any, None, Any]:
        return self._resolve_async().__await__()

    async def _resolve_async(self) -> Any:
        if self._tokenizer is _MISSING:
            self._tokenizer = await _get_tokenizer(self._engine, self._lora_request)
        return self._tokenizer

    def _resolve(self) -> Any:
        if self._tokenizer is _MISSING:
            self._tokenizer = _drive(self._resolve_async())
        return self._tokenizer

    @property
    def __wrapped__(self) -> Any:
        return self._resolve()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in TokenizerHandle.__slots__:
            raise AttributeError(name)
        return getattr(self._resolve(), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._resolve()(*args, **kwargs)

    def __len__(self) -> int:
        return len(self._resolve())

    def __repr__(self) -> str:
        state = "not fetched yet" if self._tokenizer is _MISSING else repr(self._tokenizer)
        return f"<TokenizerHandle of {type(self._engine).__name__}: {state}>"


# ---------------------------------------------------------------------------
# The engines
# ---------------------------------------------------------------------------


async def _abort_all(engine: Any, request_id: str | Iterable[str]) -> None:
    if isinstance(request_id, str) or _live.live().caps.abort_many:
        await _abort(engine, request_id)  # type: ignore[arg-type]
        return
    for one in request_id:
        await _abort(engine, one)


class _Wrapper(metaclass=_NativeMeta):
    """A native engine behind the historic call forms; all else is the native engine's."""

    _native_attr = "_native"

    def __init__(self, native: Any) -> None:
        if type.__instancecheck__(type(self), native):
            native = native.native
        if not isinstance(native, type(self)._vllm_types(load=True)):
            raise TypeError(self._not_native_message(native))
        object.__setattr__(self, "_native", native)

    def _not_native_message(self, native: Any) -> str:
        return f"{type(self).__name__}(...) wraps a native vLLM object, not {type(native).__name__}"

    @property
    def native(self) -> Any:
        """The native vLLM object."""
        return object.__getattribute__(self, "_native")

    def __getattr__(self, name: str) -> Any:
        if name == "_native":
            raise AttributeError(name)
        return getattr(self.native, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.native, name, value)

    def __repr__(self) -> str:
        return f"<glm_vllm_compat.vllm.{type(self).__name__} wrapping {self.native!r}>"


class AsyncLLMEngine(_Wrapper):
    """``vllm.AsyncLLMEngine`` with the call forms of every release.

    Build it with ``AsyncLLMEngine.from_engine_args(AsyncEngineArgs(...))``
    (or wrap a native engine: ``AsyncLLMEngine(native)``). ``isinstance(x,
    AsyncLLMEngine)`` is true for this wrapper and for native V0
    ``AsyncLLMEngine`` / V1 ``AsyncLLM`` objects.
    """

    _natives = staticmethod(lambda lv: (lv.async_engine_cls, lv.async_llm_cls))

    def _not_native_message(self, native: Any) -> str:
        return (
            f"AsyncLLMEngine(...) wraps a native vLLM async engine, not {type(native).__name__}; "
            "build one with AsyncLLMEngine.from_engine_args(AsyncEngineArgs(model=...))"
        )

    @classmethod
    def from_engine_args(cls, engine_args: Any, *args: Any, **kwargs: Any) -> AsyncLLMEngine:
        """The release's ``from_engine_args`` (V0 or V1 engine), wrapped. Options by keyword;
        unset (``None``) options the release lacks are left out."""
        if args:
            raise TypeError("pass from_engine_args() options by keyword (their positions changed between releases)")
        lv = _live.live()
        engine_cls: Any = lv.async_engine_cls or lv.async_llm_cls
        if engine_cls is None:  # pragma: no cover
            raise EngineError(f"vLLM {_installed(lv)} has no async engine")
        options = _native_kwargs(engine_cls.from_engine_args, kwargs, "AsyncLLMEngine.from_engine_args()", lv)
        try:
            native = engine_cls.from_engine_args(engine_args, **options)
        except CompatError:
            raise
        except Exception as exc:
            raise EngineError(f"vLLM {_installed(lv)} could not build the async engine: {exc}") from exc
        return cls(native)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """An async iterator of ``RequestOutput``. Accepts ``(prompt, sampling_params,
        request_id)`` positionally or by keyword, ``inputs=``, ``prompt_token_ids=``
        (with ``prompt=None`` or the prompt text), ``TokensPrompt``/``TextPrompt``,
        ``lora_request`` positional or keyword, ``priority=``."""
        return _dispatch(self.native, _parse_async_generate(self.native, args, kwargs))

    def get_tokenizer(self, lora_request: Any = None) -> TokenizerHandle:
        """Works awaited (``await engine.get_tokenizer()``) and not; see :class:`TokenizerHandle`."""
        return TokenizerHandle(self.native, lora_request)

    def abort(self, request_id: str | Iterable[str]) -> Coroutine[Any, Any, None]:
        """``await engine.abort(request_id)``; several ids work on every release."""
        return _abort_all(self.native, request_id)


class LLM(_Wrapper):
    """``vllm.LLM`` with the call forms of every release.

    ``LLM(model=..., **engine_args)`` takes historic engine-argument names;
    ``generate()`` takes ``prompt_token_ids=`` (removed from vLLM in 0.10.2),
    ``prompts=None``, positional ``use_tqdm``/``lora_request`` and ``inputs=``.
    ``LLM(native_llm)`` wraps an existing native ``vllm.LLM``.
    """

    _natives = staticmethod(lambda lv: (lv.llm_cls,))

    def __init__(self, model: Any = None, *args: Any, **kwargs: Any) -> None:
        if args:
            raise TypeError("LLM() takes the model positionally and every other argument by keyword")
        if model is None:
            raise TypeError("LLM() needs a model")
        lv = _live.live()
        if not isinstance(model, (str, os.PathLike)):
            super().__init__(model)  # wrap a native LLM
            return
        fields = llm_fields(lv)
        kwargs = _drop_engine_defaults("LLM", kwargs, fields, lv)
        translate_engine_args(kwargs, fields, _installed(lv), "LLM()")  # refuse before the slow build
        _warn_engine_args("LLM", kwargs, fields, lv)
        super().__init__(build_llm(os.fspath(model), **kwargs))

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """``list[RequestOutput]``, whatever historic form the call has."""
        return _dispatch(self.native, _parse_llm_generate(self.native, args, kwargs))


# ---------------------------------------------------------------------------
# Anything else: the installed vllm package's own name
# ---------------------------------------------------------------------------


def __getattr__(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        lv = _live.live()
    except CompatError as exc:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r} ({exc})") from exc
    try:
        return getattr(lv.vllm, name)
    except AttributeError:
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r}, nor has vllm {_installed(lv)}"
        ) from None

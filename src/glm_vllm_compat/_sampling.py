"""``sampling_params(**fields)``: a native SamplingParams from stable field names.

The stable names are those of the newest vLLM release. A field is

* passed through when the installed release has it,
* translated when the installed release has the same meaning under another
  name or form (``structured_outputs`` ⇄ ``guided_decoding``, ``top_k`` 0 ⇄ -1),
* left out when its value is the newest release's default (a no-op),
* otherwise refused with :class:`UnsupportedFeature` (name, installed version,
  supporting releases), or :class:`UnknownParameter` (closest names) when no
  release knows it. That includes the fields a release still has but its V1
  engine refuses at request time (``best_of`` > n, per-request
  ``logits_processors``, vLLM 0.8-0.11): they are refused here, naming the
  releases and engine where they work.

Nothing is dropped silently.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from . import _capabilities, _history, _live, _outlines
from ._capabilities import FLAGS, flag_range
from ._errors import InvalidParameter, UnknownParameter, UnsupportedFeature
from ._live import Live

__all__ = ["needs_tokenizer", "sampling_params", "structured_outputs_params", "translate_sampling_fields", "v0_engine_span"]

logger = logging.getLogger("glm_vllm_compat")

_MISSING = object()


@functools.lru_cache(maxsize=None)
def _newest_default(name: str) -> Any:
    source = _history.SAMPLING_DEFAULTS.get(name)
    if source is None:
        return _MISSING
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return _MISSING


def _is_newest_default(name: str, value: Any) -> bool:
    default = _newest_default(name)
    return default is not _MISSING and type(value) is type(default) and value == default


def _structured_fields(cls: type) -> frozenset[str]:
    return _live.fields_of(cls)


def _as_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: getattr(value, f.name)
            for f in dataclasses.fields(value)
            if f.init and getattr(value, f.name) != f.default
        }
    raise TypeError(
        "structured_outputs must be a dict (json / regex / choice / grammar / json_object ...) "
        f"or a StructuredOutputsParams/GuidedDecodingParams; got {type(value).__name__}"
    )


def _structured_kwargs(value: Any, cls: type, lv: Live) -> dict[str, Any]:
    allowed = _structured_fields(cls)
    out: dict[str, Any] = {}
    for key, item in _as_mapping(value).items():
        if key in allowed:
            out[key] = item
        elif item is None or item is False:
            continue
        elif key in _history.STRUCTURED_OUTPUTS_FIELDS:
            raise UnsupportedFeature(
                f"structured_outputs.{key}",
                lv.info.raw_version,
                _history.supported_range(_history.STRUCTURED_OUTPUTS_FIELDS, key),
            )
        else:
            raise UnknownParameter(key, "structured_outputs", difflib.get_close_matches(key, sorted(allowed), n=3))
    return out


def structured_outputs_params(value: Any, lv: Live | None = None) -> tuple[str, Any]:
    """(SamplingParams field name, native params object) for a structured-outputs spec."""
    lv = lv or _live.live()
    if lv.caps.structured_outputs and lv.structured_cls is not None:
        field, cls = "structured_outputs", lv.structured_cls
    elif lv.caps.guided_decoding and lv.guided_cls is not None:
        field, cls = "guided_decoding", lv.guided_cls
    else:
        raise UnsupportedFeature(
            "structured_outputs",
            lv.info.raw_version,
            f"{flag_range('structured_outputs')} (as guided_decoding in {flag_range('guided_decoding')})",
        )
    if isinstance(value, cls):
        return field, value
    return field, cls(**_structured_kwargs(value, cls, lv))


def _translate_structured(value: Any, lv: Live) -> dict[str, Any]:
    if value is None:
        return {}
    field, native = structured_outputs_params(value, lv)
    return {field: native}


_STRUCTURED_NAMES = ("structured_outputs", "guided_decoding")


def _native_structured(lv: Live) -> bool:
    return bool((lv.caps.structured_outputs and lv.structured_cls is not None) or (lv.caps.guided_decoding and lv.guided_cls is not None))


def needs_tokenizer(fields: Mapping[str, Any], lv: Live | None = None) -> bool:
    """Whether these fields need the model's tokenizer: structured outputs on a release without
    a SamplingParams field for them (vLLM < 0.6.3: outlines logits processors)."""
    lv = lv or _live.live()
    return any(fields.get(name) is not None for name in _STRUCTURED_NAMES) and not _native_structured(lv)


def _outlines_processor(value: Any, lv: Live, tokenizer: Any) -> Any:
    """``structured_outputs`` as an outlines logits processor (vLLM < 0.6.3), or the refusal."""
    classes = _outlines.processor_classes()
    supported = f"{flag_range('structured_outputs')} (as guided_decoding in {flag_range('guided_decoding')})"
    if classes is None:
        raise UnsupportedFeature("structured_outputs", lv.info.raw_version, supported)
    if tokenizer is None:
        raise UnsupportedFeature(
            "structured_outputs", lv.info.raw_version, supported,
            hint="Here it runs as an outlines logits processor, which needs the model's tokenizer: "
            "pass sampling_params(..., tokenizer=...) or give the spec to generate(), which passes the target's.",
        )
    return _outlines.logits_processor(_as_mapping(value), tokenizer, classes)


def _translate_top_k(value: Any, lv: Live) -> dict[str, Any]:
    if value is None:
        return {}
    if value == 0 and not lv.caps.top_k_zero_disables:
        return {"top_k": -1}
    if value == -1 and lv.caps.top_k_zero_disables:
        return {"top_k": 0}
    return {"top_k": value}


_TRANSLATIONS: dict[str, Callable[[Any, Live], dict[str, Any]]] = {
    "structured_outputs": _translate_structured,
    "guided_decoding": _translate_structured,
    "top_k": _translate_top_k,
}


def _known_names(lv: Live) -> list[str]:
    return sorted(set(_history.SAMPLING_FIELDS) | set(lv.sampling_fields))


def v0_engine_span() -> str:
    """Releases and setting where the V0 engine runs (what best_of > n and logits_processors need)."""
    span = _capabilities.span_text(None, FLAGS["v0_removed"].since)
    return f"{span} with the V0 engine (the default before {FLAGS['v1_default'].since}, VLLM_USE_V1=0 after)"


# Fields only the V0 engine honours per request (V1 refuses them, later releases drop them).
_V0_ONLY_HINTS = {
    "best_of": "The V1 engine returns the n samples it generates; ask for n samples and rank them yourself.",
    "logits_processors": "The V1 engine takes logits processors when it is built (the logits_processors engine argument).",
}


def _v0_only(name: str, lv: Live) -> UnsupportedFeature:
    """The error for a field only the V0 engine honours per request (``best_of`` > n, ``logits_processors``)."""
    return UnsupportedFeature(name, lv.info.raw_version, v0_engine_span(), hint=_V0_ONLY_HINTS[name])


def _refused_by_v1(out: dict[str, Any], lv: Live) -> None:
    """Fields the release still has but its V1 engine refuses when the request arrives."""
    if _capabilities.engine_generation(lv.caps) != "v1":
        return
    best_of, n = out.get("best_of"), out.get("n") or 1
    if isinstance(best_of, (int, float)) and best_of > 1:
        if best_of != n:
            raise _v0_only("best_of", lv)
        logger.debug("sampling field best_of=%r left out: equal to n, what the V1 engine does anyway", best_of)
        del out["best_of"]
    if out.get("logits_processors"):
        raise _v0_only("logits_processors", lv)


def translate_sampling_fields(fields: Mapping[str, Any], lv: Live | None = None, tokenizer: Any = None) -> dict[str, Any]:
    """Stable field names and values → keyword arguments for the native class.

    ``tokenizer``: the model's, needed only for structured outputs before vLLM 0.6.3
    (see :func:`needs_tokenizer`).
    """
    lv = lv or _live.live()
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name in _STRUCTURED_NAMES and value is not None and not _native_structured(lv):
            processors = list(fields.get("logits_processors") or ())
            out["logits_processors"] = [*processors, _outlines_processor(value, lv, tokenizer)]
            continue
        if name == "logits_processors" and "logits_processors" in out:
            continue  # merged with the structured-outputs processor above
        translate = _TRANSLATIONS.get(name)
        if translate is not None:
            translated = translate(value, lv)
            if translated != {name: value}:
                logger.debug("sampling field %s=%r sent as %r", name, value, translated)
            out.update(translated)
        elif name in lv.sampling_fields:
            out[name] = value
        elif name in _history.SAMPLING_FIELDS and not name.startswith("_"):
            if name in _V0_ONLY_HINTS and value:
                raise _v0_only(name, lv)
            if not _is_newest_default(name, value) and value is not None:
                raise UnsupportedFeature(
                    name, lv.info.raw_version, _history.supported_range(_history.SAMPLING_FIELDS, name)
                )
        else:
            close = difflib.get_close_matches(name, _known_names(lv), n=3)
            raise UnknownParameter(name, "sampling_params()", close)
    _refused_by_v1(out, lv)
    return out


def sampling_params(*, tokenizer: Any = None, **fields: Any) -> Any:
    """A native ``vllm.SamplingParams`` built from stable field names.

    >>> sp = sampling_params(max_tokens=32, temperature=0.0, structured_outputs={"regex": "a+"})

    ``tokenizer`` (the model's) is needed only for ``structured_outputs`` on vLLM
    0.4.0 - 0.6.2, where they run as outlines logits processors.
    """
    lv = _live.live()
    kwargs = translate_sampling_fields(fields, lv, tokenizer)
    try:
        return lv.sampling_cls(**kwargs)
    except Exception as exc:  # ValueError, or vLLM's own VLLMValidationError (0.2x+)
        raise InvalidParameter(f"vLLM {lv.info.raw_version} rejected the sampling parameters: {exc}") from exc

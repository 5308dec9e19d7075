"""Engine arguments across renames, in both directions.

A user may pass the old or the new name of a renamed argument; whichever the
installed release lacks is translated into the one it has (and logged at
debug level). Arguments the release cannot take at all raise
:class:`UnsupportedFeature` with the releases that have them, or
:class:`UnknownParameter` with the closest names when no release knows them.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from . import _history
from ._errors import UnknownParameter, UnsupportedFeature

__all__ = ["renamed_args", "translate_engine_args"]

logger = logging.getLogger("glm_vllm_compat")

Translator = Callable[[Any, frozenset[str], Mapping[str, Any]], "dict[str, Any] | None"]

# task -> (runner, convert), after vLLM's own mapping in 0.10.1+.
_TASK_TO_RUNNER: dict[str, tuple[str, str]] = {
    "auto": ("auto", "auto"),
    "generate": ("generate", "auto"),
    "embed": ("pooling", "embed"),
    "embedding": ("pooling", "embed"),
    "classify": ("pooling", "classify"),
    "score": ("pooling", "classify"),
    "reward": ("pooling", "reward"),
}
_RUNNER_TO_TASK = {v: k for k, v in reversed(list(_TASK_TO_RUNNER.items()))}


def _worker_use_ray(value: Any, fields: frozenset[str], args: Mapping[str, Any]) -> dict[str, Any] | None:
    if not value:
        return {}
    if "distributed_executor_backend" in fields:
        return {"distributed_executor_backend": "ray"}
    return None


def _executor_backend(value: Any, fields: frozenset[str], args: Mapping[str, Any]) -> dict[str, Any] | None:
    if value is None:
        return {}
    if value == "ray" and "worker_use_ray" in fields:
        return {"worker_use_ray": True}
    return None


def _negate(target: str) -> Translator:
    def translate(value: Any, fields: frozenset[str], args: Mapping[str, Any]) -> dict[str, Any] | None:
        return {target: not value} if target in fields else None

    return translate


def _rename(target: str) -> Translator:
    def translate(value: Any, fields: frozenset[str], args: Mapping[str, Any]) -> dict[str, Any] | None:
        return {target: value} if target in fields else None

    return translate


def _task(value: Any, fields: frozenset[str], args: Mapping[str, Any]) -> dict[str, Any] | None:
    if "runner" not in fields or value not in _TASK_TO_RUNNER:
        return None
    runner, convert = _TASK_TO_RUNNER[value]
    return {"runner": runner, "convert": convert} if "convert" in fields else {"runner": runner}


def _runner(value: Any, fields: frozenset[str], args: Mapping[str, Any]) -> dict[str, Any] | None:
    if "task" not in fields:
        return None
    key = (value, args.get("convert", "auto"))
    task = _RUNNER_TO_TASK.get(key) or _RUNNER_TO_TASK.get((value, "auto"))
    return {"task": task} if task else None


def _convert(value: Any, fields: frozenset[str], args: Mapping[str, Any]) -> dict[str, Any] | None:
    # Folded into `runner`'s translation; alone it only makes sense with a runner.
    if "runner" in args:
        return {}
    return _runner("pooling", fields, {"convert": value}) if value not in (None, "auto", "none") else {}


def _off_by_default(value: Any, fields: frozenset[str], args: Mapping[str, Any]) -> dict[str, Any] | None:
    return {} if not value else None


def _enable_reasoning(value: Any, fields: frozenset[str], args: Mapping[str, Any]) -> dict[str, Any] | None:
    # From 0.10.0 a reasoning parser alone enables reasoning.
    if not value or args.get("reasoning_parser"):
        return {}
    return None


_TRANSLATORS: dict[str, Translator] = {
    "worker_use_ray": _worker_use_ray,
    "distributed_executor_backend": _executor_backend,
    "disable_log_requests": _negate("enable_log_requests"),
    "enable_log_requests": _negate("disable_log_requests"),
    "max_context_len_to_capture": _rename("max_seq_len_to_capture"),
    "max_seq_len_to_capture": _rename("max_context_len_to_capture"),
    "task": _task,
    "runner": _runner,
    "convert": _convert,
    "engine_use_ray": _off_by_default,
    "enable_reasoning": _enable_reasoning,
}


def renamed_args() -> frozenset[str]:
    """Names :func:`translate_engine_args` can translate when the installed release lacks them."""
    return frozenset(_TRANSLATORS)


def _history_range(name: str) -> str | None:
    for table in (_history.ENGINE_ARGS, _history.ASYNC_ENGINE_ARGS):
        if name in table:
            return _history.supported_range(table, name)
    return None


def _refuse(name: str, fields: frozenset[str], installed: str, where: str) -> Exception:
    span = _history_range(name)
    if span is not None or name in _TRANSLATORS:
        return UnsupportedFeature(name, installed, span or "none that can translate this value")
    close = difflib.get_close_matches(name, sorted(fields), n=3)
    return UnknownParameter(name, where, close)


def translate_engine_args(
    args: Mapping[str, Any], fields: frozenset[str], installed: str, where: str
) -> dict[str, Any]:
    """Rename ``args`` into what an engine-args class with ``fields`` accepts."""
    out: dict[str, Any] = {}
    for name, value in args.items():
        if name in fields:
            out[name] = value
            continue
        translator = _TRANSLATORS.get(name)
        translated = translator(value, fields, args) if translator else None
        if translated is None:
            raise _refuse(name, fields, installed, where)
        logger.debug("engine argument %s=%r sent to vLLM %s as %r", name, value, installed, translated)
        for key, item in translated.items():
            out.setdefault(key, item)
    return out

"""Structured outputs before vLLM 0.6.3: outlines logits processors built by the adapter.

vLLM 0.4.0 - 0.6.2 have no ``SamplingParams`` field for structured outputs:
their OpenAI server turns ``guided_json`` / ``guided_regex`` / ``guided_choice``
/ ``guided_grammar`` into outlines logits processors (vLLM's own classes, in
``vllm.model_executor.guided_decoding.outlines_logits_processors``;
``vllm.model_executor.guided_logits_processors`` in 0.4.0) and passes them as
``SamplingParams.logits_processors``. The adapter does the same for
``structured_outputs``, so the one stable spec works on every line. A processor
needs the model's tokenizer (``generate()`` passes the target's; callers of
``sampling_params()`` pass ``tokenizer=``). Compiled processors are cached per
(constraint, tokenizer), as vLLM's server caches them, and each request gets a
fresh copy with its own state.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, NamedTuple

from ._errors import InvalidParameter

__all__ = ["CONSTRAINTS", "ProcessorClasses", "logits_processor", "processor_classes"]

#: The constraint keys a processor can enforce (exactly one per request).
CONSTRAINTS = ("json", "regex", "choice", "grammar", "json_object")
# Keys of the spec that tune a constraint rather than being one.
_TUNING = ("whitespace_pattern", "backend")
_MODULES = ("vllm.model_executor.guided_decoding.outlines_logits_processors", "vllm.model_executor.guided_logits_processors")
_GRAMMAR_MODULES = ("vllm.model_executor.guided_decoding.outlines_decoding", "vllm.model_executor.guided_decoding")


class ProcessorClasses(NamedTuple):
    regex: Any
    json: Any
    cfg: Any
    json_grammar: str | None
    """vLLM's JSON grammar for ``json_object`` (``None`` where the release has none)."""


def processor_classes() -> ProcessorClasses | None:
    """vLLM's outlines logits-processor classes, or ``None`` where the release (or its outlines) has none."""
    for name in _MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # not this release's layout, or outlines missing
            continue
        regex, schema, cfg = (getattr(module, cls, None) for cls in ("RegexLogitsProcessor", "JSONLogitsProcessor", "CFGLogitsProcessor"))
        if regex is not None and schema is not None and cfg is not None:
            return ProcessorClasses(regex, schema, cfg, _json_grammar())
    return None


def _json_grammar() -> str | None:
    for name in _GRAMMAR_MODULES:
        try:
            grammar = getattr(importlib.import_module(name), "JSON_GRAMMAR", None)
        except ImportError:
            continue
        if isinstance(grammar, str):
            return grammar
    return None


def _constraint(spec: Mapping[str, Any]) -> tuple[str, Any]:
    given = [(key, spec[key]) for key in CONSTRAINTS if spec.get(key) not in (None, False)]
    unknown = sorted(set(spec) - set(CONSTRAINTS) - set(_TUNING))
    if unknown:
        raise InvalidParameter(f"structured_outputs.{unknown[0]} cannot be enforced by outlines logits processors (vLLM < 0.6.3)")
    if len(given) != 1:
        raise InvalidParameter(f"structured_outputs needs exactly one of {', '.join(CONSTRAINTS)}; got {len(given)}")
    return given[0]


def _build(classes: ProcessorClasses, kind: str, value: Any, whitespace: str | None, tokenizer: Any) -> Any:
    if kind == "regex":
        return classes.regex(str(value), tokenizer)
    if kind == "choice":
        return classes.regex("(" + "|".join(re.escape(str(choice)) for choice in value) + ")", tokenizer)
    if kind == "grammar":
        return classes.cfg(str(value), tokenizer)
    if kind == "json_object":
        if classes.json_grammar is None:
            raise InvalidParameter("structured_outputs.json_object: this vLLM release ships no JSON grammar; give a json schema")
        return classes.cfg(classes.json_grammar, tokenizer)
    schema = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    takes_whitespace = len(inspect.signature(classes.json).parameters) >= 3
    return classes.json(schema, tokenizer, whitespace) if takes_whitespace else classes.json(schema, tokenizer)


_CACHE: OrderedDict[tuple[str, str, str | None, int], tuple[Any, Any]] = OrderedDict()
_CACHE_SIZE = 32
_lock = threading.Lock()


def logits_processor(spec: Mapping[str, Any], tokenizer: Any, classes: ProcessorClasses) -> Any:
    """A fresh logits processor enforcing ``spec`` (one of :data:`CONSTRAINTS`) for ``tokenizer``."""
    kind, value = _constraint(spec)
    whitespace = spec.get("whitespace_pattern")
    key = (kind, value if isinstance(value, str) else json.dumps(value, sort_keys=True), whitespace, id(tokenizer))
    with _lock:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
    if cached is None:
        try:
            built = _build(classes, kind, value, whitespace, tokenizer)
        except InvalidParameter:
            raise
        except Exception as exc:  # outlines' own errors for a bad regex/schema/grammar
            raise InvalidParameter(f"structured_outputs.{kind} cannot be compiled: {exc}") from exc
        cached = (tokenizer, built)  # the tokenizer is kept so its id is not reused while cached
        with _lock:
            _CACHE[key] = cached
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    processor = copy.copy(cached[1])
    if hasattr(processor, "init_state"):
        processor.init_state()  # its own FSM state (CFG processors copy their FSM here)
    return processor

"""Engine-argument flags derived from the installed release's fields, in vLLM's syntax.

One flag per ``AsyncEngineArgs`` field (``--max-model-len`` for
``max_model_len``), typed from the field's annotation the way ``vllm serve``
parses it: ``32k``/``32K`` integers, JSON objects for dict and config fields,
lists as several values, booleans with their ``--no-`` form, ``None`` for
optional values. Unset flags stay unset (vLLM's own defaults apply). Historic
spellings that the adapter can translate (``--disable-log-requests``,
``--worker-use-ray``, ``--task`` ...) are flags too; the translation happens in
:func:`engine_kwargs` through ``_engine_args``.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .. import _history
from .._engine_args import renamed_args, translate_engine_args
from ._engine_fields import EngineField

__all__ = [
    "ENGINE_DEST_PREFIX",
    "add_engine_flags",
    "engine_kwargs",
    "flag_name",
    "human_int",
    "json_or_str",
    "kind_of",
]

ENGINE_DEST_PREFIX = "engine__"
# vLLM's short and extra spellings of some engine flags (its add_cli_args adds them by hand).
ALIASES: dict[str, tuple[str, ...]] = {
    "tensor_parallel_size": ("-tp",),
    "pipeline_parallel_size": ("-pp",),
    "data_parallel_size": ("-dp",),
    "data_parallel_rank": ("-dpn",),
    "data_parallel_start_rank": ("-dpr",),
    "data_parallel_size_local": ("-dpl",),
    "data_parallel_address": ("-dpa",),
    "data_parallel_rpc_port": ("-dpp",),
    "data_parallel_backend": ("-dpb",),
    "data_parallel_hybrid_lb": ("-dph",),
    "data_parallel_external_lb": ("-dpe",),
    "data_parallel_multi_port_external_lb": ("-dpm",),
    "decode_context_parallel_size": ("-dcp",),
    "prefill_context_parallel_size": ("-pcp",),
    "enable_expert_parallel": ("-ep",),
    "nnodes": ("-n",),
    "node_rank": ("-r",),
    "quantization": ("-q",),
    "speculative_config": ("-sc",),
    "compilation_config": ("-cc", "-O"),
    "attention_config": ("-ac",),
    "diffusion_config": ("-dc",),
    "gpu_memory_utilization": ("--device-memory-utilization",),
    "speculative_draft_tensor_parallel_size": ("-spec-draft-tp",),  # vLLM 0.5.x - 0.7.x
}
# List fields vLLM takes as one comma-separated value (``--device-ids 2,3``).
COMMA_LISTS = frozenset({"device_ids"})
# Integer fields where vLLM also takes ``auto`` (= -1).
AUTO_INTS = frozenset({"max_model_len"})
# Types of historic spellings no longer among the installed fields (translated by _engine_args).
HISTORIC_KINDS = {
    "worker_use_ray": "bool",
    "engine_use_ray": "bool",
    "disable_log_requests": "bool",
    "enable_log_requests": "bool",
    "max_context_len_to_capture": "int",
    "max_seq_len_to_capture": "int",
}
_DICTISH = re.compile(r"^(dict|Dict|Mapping|Any|\w*Config|\w*Overrides|\w*Kwargs|\w*Args)\b")


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def human_int(value: str, auto: bool = False) -> int:
    """``123``, ``32k`` (×1000), ``32K`` (×1024), ``1.5m``; ``auto``/``-1`` where ``auto`` is allowed."""
    text = value.strip()
    if auto and text.lower() in ("auto", "-1"):
        return -1
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgGtT])", text)
    if not match:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid integer {value!r} (examples: 2048, 32k, 32K)") from None
    number, suffix = match.groups()
    if suffix.islower():
        return int(float(number) * 10.0 ** (3 * ("kmgt".index(suffix) + 1)))
    if "." in number:
        raise argparse.ArgumentTypeError(f"{value!r}: no decimals with binary suffixes; did you mean {number}{suffix.lower()}?")
    return int(number) << (10 * ("KMGT".index(suffix) + 1))


def json_or_str(value: str) -> Any:
    """A JSON object/array when the value looks like one (errors if it is broken JSON), else the text."""
    if re.match(r"(?s)^\s*[\[{]", value):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"invalid JSON {value!r}: {exc}") from None
    return value


def _strip_optional(text: str) -> tuple[str, bool]:
    text = re.sub(r"\s+", " ", text.replace("typing.", "").strip())
    match = re.fullmatch(r"Optional\[(.*)\]", text)
    if match:
        return match.group(1), True
    parts = _split_union(text)
    rest = [p for p in parts if p not in ("None", "NoneType")]
    return (" | ".join(rest) if len(rest) != len(parts) else text), len(rest) != len(parts)


def _split_union(text: str) -> list[str]:
    match = re.fullmatch(r"Union\[(.*)\]", text)
    body, sep = (match.group(1), ",") if match else (text, "|")
    parts, depth, current = [], 0, ""
    for ch in body:
        depth += ch in "[(" and 1 or 0
        depth -= ch in "])" and 1 or 0
        if ch == sep and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    return [*parts, current.strip()]


def kind_of(annotation: str) -> tuple[str, bool, tuple[Any, ...] | None]:
    """``(kind, optional, choices)``; kind: bool, int, float, list:<kind>, json or str."""
    text, optional = _strip_optional(annotation)
    parts = _split_union(text)
    if len(parts) > 1:
        listed = [p for p in parts if re.match(r"(list|List|Sequence|tuple)\[", p)]
        if listed:
            return kind_of(listed[0])[0], optional, None
        if any(_DICTISH.match(p) for p in parts):
            return "json", optional, None
        return ("float" if set(parts) <= {"int", "float"} else "str"), optional, None
    if text == "bool":
        return "bool", optional, None
    if text in ("int", "float"):
        return text, optional, None
    match = re.fullmatch(r"(?:list|List|Sequence|tuple|set)\[(.*)\]", text)
    if match:
        inner = kind_of(match.group(1).split(",")[0])
        return f"list:{inner[0] if inner[0] in ('int', 'float') else 'str'}", optional, inner[2]
    literal = re.fullmatch(r"Literal\[(.*)\]", text)
    if literal:
        try:
            values = ast.literal_eval(f"({literal.group(1)},)")
        except (ValueError, SyntaxError):
            return "str", optional, None
        return ("int" if all(isinstance(v, int) for v in values) else "str"), optional, tuple(values)
    return ("json" if _DICTISH.match(text) else "str"), optional, None


def _scalar(kind: str, name: str, optional: bool) -> Callable[[str], Any]:
    parsers: dict[str, Callable[[str], Any]] = {
        "int": lambda v: human_int(v, auto=name in AUTO_INTS),
        "float": float,
        "json": json_or_str,
    }
    base = parsers.get(kind, str)

    def parse(value: str) -> Any:
        if optional and value in ("None", ""):
            return None
        try:
            return base(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind} value {value!r}") from None

    parse.__name__ = kind  # argparse names the type in its messages
    return parse


def _comma_list(value: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in (p.strip() for p in value.split(","))]


class _BoolWithOptionalValue(argparse.BooleanOptionalAction):
    """``--flag`` / ``--no-flag``, and ``--flag True|False`` as vLLM 0.5.x - 0.7.x's ``StoreBoolean`` flags take it."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.nargs = "?"

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        negative = bool(option_string and option_string.startswith("--no-"))
        if values is None:
            setattr(namespace, self.dest, not negative)
            return
        if negative or str(values).lower() not in ("true", "false"):
            raise argparse.ArgumentError(self, f"expected no value or True/False, got {values!r}")
        setattr(namespace, self.dest, str(values).lower() == "true")


def _add_one(group: Any, field: EngineField, dest: str, taken: set[str], hidden: bool = False) -> None:
    kind, optional, choices = kind_of(field.annotation) if field.annotation else (HISTORIC_KINDS.get(field.name, "str"), True, None)
    names = [n for n in (flag_name(field.name), *ALIASES.get(field.name, ())) if n not in taken]
    if not names:
        return
    taken.update(names)
    kwargs: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS}
    kwargs["help"] = argparse.SUPPRESS if hidden else f"engine argument {field.name} ({field.annotation or kind})"
    if kind == "bool":
        negative = "--no-" + names[0][2:]
        if negative not in taken:
            names.insert(1, negative)
            taken.add(negative)
        action = _BoolWithOptionalValue if field.optional_value else argparse.BooleanOptionalAction
        group.add_argument(*names, action=action, **kwargs)
        return
    if kind.startswith("list:") and field.name in COMMA_LISTS:
        group.add_argument(*names, type=_comma_list, **kwargs)
        return
    if kind.startswith("list:"):
        kwargs["nargs"] = "+"
        kind = kind[5:]
    if choices and all(isinstance(c, str) for c in choices):
        kwargs["choices"] = [*choices, *(["None"] if optional else [])]
    group.add_argument(*names, type=_scalar(kind, field.name, optional), **kwargs)


def add_engine_flags(
    parser: argparse.ArgumentParser, fields: Sequence[EngineField], skip: Iterable[str], taken: set[str]
) -> list[str]:
    """Add one flag per field not in ``skip`` (names the server owns), plus the historic spellings.

    Returns the historic names added. ``taken`` holds option strings already in use.
    """
    group = parser.add_argument_group("engine arguments (the installed vLLM's own)")
    skipped, installed = set(skip), {f.name for f in fields}
    for field in fields:
        if field.name not in skipped and field.name != "model":
            _add_one(group, field, ENGINE_DEST_PREFIX + field.name, taken)
    historic = sorted(n for n in renamed_args() if n not in installed and n not in skipped and _known(n))
    for name in historic:
        _add_one(group, EngineField(name, ""), ENGINE_DEST_PREFIX + name, taken, hidden=True)
    return historic


def _known(name: str) -> bool:
    return name in _history.ENGINE_ARGS or name in _history.ASYNC_ENGINE_ARGS


def engine_kwargs(
    args: argparse.Namespace, fields: Sequence[EngineField], version: str, notice: Callable[[str], None]
) -> dict[str, Any]:
    """The engine arguments set on the command line, historic spellings translated for ``version``.

    Raises ``UnsupportedFeature`` when a historic spelling cannot be expressed on ``version``.
    """
    given = {k[len(ENGINE_DEST_PREFIX):]: v for k, v in vars(args).items() if k.startswith(ENGINE_DEST_PREFIX)}
    installed = frozenset(f.name for f in fields)
    out = translate_engine_args(given, installed, version, "serve")
    for name in sorted(set(given) - installed):
        single = translate_engine_args({name: given[name]}, installed, version, "serve")
        target = ", ".join(f"{k}={v!r}" for k, v in single.items()) or "nothing (its value is the default)"
        notice(f"{flag_name(name)} is the {_span(name)} spelling; vLLM {version} gets {target}")
    return out


def _span(name: str) -> str:
    for table in (_history.ENGINE_ARGS, _history.ASYNC_ENGINE_ARGS):
        if name in table:
            return "vLLM " + _history.supported_range(table, name)
    return "older vLLM"


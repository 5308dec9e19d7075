"""Checks run before anything loads: parser names, the chat template, the model directory.

Each raises :class:`PreflightError` with one line saying what is wrong, so a
mistake costs seconds instead of an engine start.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ._reasoning import get_reasoning_parser, reasoning_parser_names
from ._template import ChatTemplateError, compile_template
from .families import GlmFamily, detect_family, get_family
from .tool_parsers import get_tool_parser, tool_parser_names

__all__ = [
    "PreflightError",
    "REASONING_ALIASES",
    "TOOL_ALIASES",
    "check_family",
    "check_model",
    "model_family",
    "read_chat_template",
    "reasoning_parser_name",
    "tool_parser_name",
]

# GLM parser names vLLM used, mapped to this server's registry names (``auto`` is decided from the model).
TOOL_ALIASES = {"glm4_moe": "glm45"}
REASONING_ALIASES = {"glm4_moe": "glm45", "glm4": "none", "": "auto"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class PreflightError(ValueError):
    """A start-up mistake found before loading anything (the message is one line)."""


def tool_parser_name(name: str) -> str:
    """The registry name for ``--tool-call-parser`` (``auto`` stays ``auto``)."""
    chosen = TOOL_ALIASES.get(name, name)
    if chosen == "auto":
        return chosen
    try:
        get_tool_parser(chosen)
    except KeyError:
        valid = sorted({*tool_parser_names(), *TOOL_ALIASES, "auto"})
        raise PreflightError(f"unknown --tool-call-parser {name!r}; valid names: {', '.join(valid)}") from None
    return chosen


def reasoning_parser_name(name: str) -> str:
    """The registry name for ``--reasoning-parser`` (``auto`` stays ``auto``)."""
    chosen = REASONING_ALIASES.get(name, name)
    if chosen == "auto":
        return chosen
    try:
        get_reasoning_parser(chosen)
    except KeyError:
        valid = sorted({*reasoning_parser_names(), *(a for a in REASONING_ALIASES if a), "auto"})
        raise PreflightError(f"unknown --reasoning-parser {name!r}; valid names: {', '.join(valid)}") from None
    return chosen


def read_chat_template(value: str | None) -> str | None:
    """The template text of ``--chat-template`` (a file or the text itself), syntax-checked."""
    if value is None:
        return None
    path = Path(value)
    if "{" not in value:
        if not path.is_file():
            raise PreflightError(f"--chat-template {value!r} is neither a readable file nor a template")
        try:
            value = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PreflightError(f"--chat-template {str(path)!r} cannot be read: {exc}") from None
    try:
        compile_template(value)
    except ChatTemplateError as exc:
        raise PreflightError(f"--chat-template: {exc}") from None
    return value


def check_model(model: str) -> str:
    """A local model directory with a ``config.json``, or a hub id left for vLLM to fetch."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise PreflightError(f"model directory {model!r} has no config.json (not a Hugging Face model folder)")
        return str(path)
    if path.exists():
        raise PreflightError(f"model {model!r} is a file; give the model's directory")
    if _HUB_ID.match(model) and not model.startswith((".", "/", "~")):
        if _offline() and not _cached(model):
            raise PreflightError(f"model {model!r} is neither a local directory nor in the Hugging Face cache (HF_HUB_OFFLINE is set)")
        return model  # a hub id: vLLM resolves it
    raise PreflightError(f"model directory {model!r} does not exist")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def check_family(name: str) -> GlmFamily:
    """The family named by ``--glm-family``, or a one-line error listing the valid names."""
    try:
        return get_family(name)
    except KeyError as exc:
        raise PreflightError(f"--glm-family: {exc}") from None


def model_family(model: str, family: str, template: str | None) -> GlmFamily | None:
    """The GLM family of a local model folder before the engine loads (``--glm-family``
    when given), from ``config.json``'s architectures and the chat template; ``None``
    where the folder does not tell (a hub id, unreadable files, no GLM markers)."""
    if family != "auto":
        return get_family(family)
    path = Path(model)
    try:
        architectures = list(json.loads((path / "config.json").read_text(encoding="utf-8")).get("architectures") or [])
        return detect_family(architectures, template or _folder_template(path))
    except (OSError, ValueError, AttributeError):
        return None


def _folder_template(path: Path) -> str | None:
    """The chat template a model folder ships: ``chat_template.jinja`` or ``tokenizer_config.json``'s."""
    jinja = path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    config: Any = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    return template if isinstance(template, str) else None

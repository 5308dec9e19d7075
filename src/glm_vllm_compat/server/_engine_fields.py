"""The installed vLLM's engine-argument fields, as ``(name, annotation text)``.

``serve`` turns these into flags, so each release gets exactly its own. They
come, in order, from:

* ``source``: the installed ``vllm/engine/arg_utils.py``, read with :mod:`ast`
  (importing vLLM takes 8-40 s on a small machine, and flag mistakes must be
  reported within seconds, before anything loads);
* ``live``: the imported ``AsyncEngineArgs`` dataclass, when the source cannot
  be read (a compiled or zipped install) or vLLM is imported already;
* ``recorded``: ``matrix/surfaces/<version>.json`` of a source checkout, when
  vLLM cannot be read either way.

The engine build later checks every argument against the live dataclass
again (``_engine_args.translate_engine_args``), so a source/live difference
can never reach the engine unnoticed.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import sys
import typing
from pathlib import Path
from typing import Any

from .._detect import VllmInfo

__all__ = ["EngineField", "installed_fields", "live_fields", "recorded_fields", "source_fields"]

@dataclasses.dataclass(frozen=True)
class EngineField:
    name: str
    annotation: str
    """The annotation as text (``"int | None"``, ``"Optional[Dict[str, Any]]"``, ...)."""
    optional_value: bool = False
    """A boolean flag that also takes ``True``/``False`` (vLLM 0.5.x - 0.7.x's ``StoreBoolean`` flags)."""


def _class_fields(cls: ast.ClassDef) -> list[EngineField]:
    out = []
    for stmt in cls.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            name, annotation = stmt.target.id, ast.unparse(stmt.annotation)
            if not name.startswith("_") and not annotation.startswith(("ClassVar", "typing.ClassVar")):
                out.append(EngineField(name, annotation.strip("'\"")))
    return out


def source_fields(arg_utils: Path) -> list[EngineField] | None:
    """``AsyncEngineArgs`` fields (``EngineArgs``' included) from the source file; ``None`` if unreadable."""
    try:
        tree = ast.parse(arg_utils.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    base, sub = classes.get("EngineArgs"), classes.get("AsyncEngineArgs")
    if base is None or sub is None or base.bases:  # defined elsewhere / through mixins: ask the live class
        return None
    fields = {f.name: f for f in _class_fields(base)}
    fields.update({f.name: f for f in _class_fields(sub)})
    aliases = _literal_aliases(arg_utils, tree, {f.annotation for f in fields.values() if f.annotation.isidentifier()})
    return [dataclasses.replace(f, annotation=aliases.get(f.annotation, f.annotation)) for f in fields.values()]


def _module_file(root: Path, module: str) -> Path | None:
    """The source file of ``module`` (``vllm.x.y``) under ``root`` (the folder holding ``vllm/``)."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _alias_in(path: Path, name: str, root: Path, depth: int = 3) -> str | None:
    """``Literal[...]`` text that ``name`` is bound to in ``path`` (following re-exports)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for stmt in tree.body:
        target, value = None, None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            target, value = stmt.targets[0].id, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            target, value = stmt.target.id, stmt.value
        if target == name and value is not None:
            text = ast.unparse(value)
            return text.replace("typing.", "") if text.startswith(("Literal[", "typing.Literal[")) else None
    if depth > 0:
        package = ".".join(path.relative_to(root).with_suffix("").parts[:-1] if path.name != "__init__.py" else path.relative_to(root).parts[:-1])
        for stmt in tree.body:
            if isinstance(stmt, ast.ImportFrom) and any(a.name == name and a.asname is None for a in stmt.names):
                module = stmt.module or ""
                if stmt.level:
                    module = ".".join(package.split(".")[: len(package.split(".")) - stmt.level + 1] + ([module] if module else []))
                found = _module_file(root, module) if module.startswith("vllm") else None
                if found is not None:
                    return _alias_in(found, name, root, depth - 1)
    return None


def _literal_aliases(arg_utils: Path, tree: ast.Module, names: set[str]) -> dict[str, str]:
    """Annotations that are names of ``Literal`` aliases (``MaxLoRARanks``), as the ``Literal`` text:
    their values' type (int for ``--max-lora-rank``) and choices then reach the flag."""
    root = arg_utils.parents[2]
    out: dict[str, str] = {}
    for stmt in tree.body:
        if not isinstance(stmt, ast.ImportFrom) or not (stmt.module or "").startswith("vllm"):
            continue
        for alias in stmt.names:
            if alias.name in names and alias.asname is None and alias.name not in out:
                found = _module_file(root, stmt.module or "")
                text = _alias_in(found, alias.name, root) if found is not None else None
                if text is not None:
                    out[alias.name] = text
    return out


def _type_text(tp: Any) -> str:
    if isinstance(tp, str):
        return tp
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def live_fields() -> list[EngineField] | None:
    """``AsyncEngineArgs`` fields of the imported vLLM (type aliases resolved); ``None`` when it does not import."""
    from .. import _live
    from .._errors import VllmNotInstalled

    try:
        cls = _live.live().async_engine_args_cls
    except (VllmNotInstalled, ImportError):
        return None
    if cls is None or not dataclasses.is_dataclass(cls):
        return None
    try:
        hints: dict[str, Any] = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - any annotation that does not evaluate: the text as written
        hints = {}
    return [
        EngineField(f.name, _type_text(hints.get(f.name, f.type)))
        for f in dataclasses.fields(cls)
        if f.init and not f.name.startswith("_")
    ]


def recorded_fields(version: str, surfaces: Path | None = None) -> list[EngineField] | None:
    """Fields recorded for ``version`` in ``matrix/surfaces`` (of a source checkout, or ``$GLM_VLLM_COMPAT_MATRIX``);
    ``None`` if absent."""
    if surfaces is None:
        from ..testing.fake_vllm import surfaces_dir  # stdlib only; the one place that finds matrix/surfaces

        try:
            surfaces = surfaces_dir()
        except FileNotFoundError:
            return None
    path = surfaces / f"{version}.json"
    if not path.is_file():
        return None
    cls = json.loads(path.read_text(encoding="utf-8"))["engine_args"]["AsyncEngineArgs"]
    return [EngineField(f["name"], f["annotation"] or "") for f in cls["fields"] if not f["name"].startswith("_")]


def _imported() -> bool:
    """vLLM's engine arguments are imported already (asking the live class then costs nothing)."""
    return "vllm.engine.arg_utils" in sys.modules


def store_boolean_flags(arg_utils: Path) -> frozenset[str]:
    """Field names whose flag ``arg_utils.py`` declares with ``action=StoreBoolean`` (vLLM 0.5.x - 0.7.x:
    ``--enable-chunked-prefill [True|False]``, ``nargs="?"``); empty when the source is unreadable."""
    try:
        tree = ast.parse(arg_utils.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return frozenset()
    out = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"):
            continue
        action = next((k.value for k in node.keywords if k.arg == "action"), None)
        if not (isinstance(action, ast.Name) and action.id == "StoreBoolean"):
            continue
        names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("--")]
        if names:
            out.add(names[0][2:].replace("-", "_"))
    return frozenset(out)


def installed_fields(info: VllmInfo) -> tuple[list[EngineField], str]:
    """The installed release's fields and where they came from (``source``/``live``/``recorded``)."""
    fields, origin = _installed_fields(info)
    optional = store_boolean_flags(Path(info.location) / "engine" / "arg_utils.py") if info.location else frozenset()
    return [dataclasses.replace(f, optional_value=True) if f.name in optional else f for f in fields], origin


def _installed_fields(info: VllmInfo) -> tuple[list[EngineField], str]:
    if not _imported() and info.location:
        found = source_fields(Path(info.location) / "engine" / "arg_utils.py")
        if found:
            return found, "source"
    found = live_fields()
    if found:
        return found, "live"
    found = recorded_fields(info.raw_version)
    if found:
        return found, "recorded"
    raise RuntimeError(f"cannot read the engine arguments of {info.distribution} {info.raw_version}")

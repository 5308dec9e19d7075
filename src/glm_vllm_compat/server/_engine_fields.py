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
from pathlib import Path
from typing import Any

from .._detect import VllmInfo

__all__ = ["EngineField", "installed_fields", "live_fields", "recorded_fields", "source_fields"]

@dataclasses.dataclass(frozen=True)
class EngineField:
    name: str
    annotation: str
    """The annotation as text (``"int | None"``, ``"Optional[Dict[str, Any]]"``, ...)."""


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
    return list(fields.values())


def _type_text(tp: Any) -> str:
    if isinstance(tp, str):
        return tp
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def live_fields() -> list[EngineField] | None:
    """``AsyncEngineArgs`` fields of the imported vLLM; ``None`` when it does not import."""
    from .. import _live
    from .._errors import VllmNotInstalled

    try:
        cls = _live.live().async_engine_args_cls
    except (VllmNotInstalled, ImportError):
        return None
    if cls is None or not dataclasses.is_dataclass(cls):
        return None
    return [EngineField(f.name, _type_text(f.type)) for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]


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


def installed_fields(info: VllmInfo) -> tuple[list[EngineField], str]:
    """The installed release's fields and where they came from (``source``/``live``/``recorded``)."""
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

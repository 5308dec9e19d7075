"""``glm-vllm-compat matrix diff A B``: what changed between two recorded vLLM releases.

Only the parts the adapter, the drop-in and the server depend on are compared,
all read from ``matrix/surfaces/<version>.json`` (see matrix/README.md):

* the signatures of the wrapped calls (``LLM``, ``AsyncLLMEngine``, ``AsyncLLM``),
* the fields of SamplingParams, BeamSearchParams, the structured-output params,
  EngineArgs / AsyncEngineArgs and the output classes: added, removed, re-defaulted,
* the prompt types, the tool / reasoning parser names, the GLM architectures,
  ``VLLM_USE_V1`` and the names ``vllm`` exports,
* the capability flags that would change: each release's flags from its version
  number, confirmed against a fake vLLM built from its recorded surface (what
  :mod:`._live` would observe), plus the flags the recorded code contradicts.

Nothing here imports vLLM. ``--new`` first records the releases the package index
has and ``matrix/`` lacks (``matrix/record.py --new``, network).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

__all__ = ["Change", "diff_releases", "diff_surfaces", "flag_changes", "main", "observed_flags", "render"]

Surface = dict[str, Any]

WRAPPED = (("llm", "LLM"), ("async_llm_engine", "AsyncLLMEngine"), ("async_llm", "AsyncLLM"))
FIELD_CLASSES = (
    ("params", "SamplingParams"),
    ("params", "BeamSearchParams"),
    ("params", "GuidedDecodingParams"),
    ("params", "StructuredOutputsParams"),
    ("engine_args", "EngineArgs"),
    ("engine_args", "AsyncEngineArgs"),
    ("outputs", "RequestOutput"),
    ("outputs", "CompletionOutput"),
)
SECTIONS = (
    "wrapped calls", "fields", "prompt types", "parsers", "GLM architectures", "environment", "exports",
    "capability flags",
)


@dataclasses.dataclass(frozen=True)
class Change:
    """One difference: ``section``, the thing that changed, how, and the detail."""

    section: str
    subject: str
    kind: str  # added | removed | changed | re-defaulted | flag
    detail: str = ""

    def line(self) -> str:
        text = f"{self.subject}: {self.kind}"
        return f"{text} {self.detail}" if self.detail else text


# ---------------------------------------------------------------------------
# Surfaces
# ---------------------------------------------------------------------------


def _params(record: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    if not record:
        return {}
    return {p["name"]: p for p in record["params"] if p["name"] not in ("self", "cls")}


def _param_text(p: dict[str, Any]) -> str:
    default = "" if p["default"] is None else f", default {p['default']}"
    return f"({p['kind']}{default})"


def _signature_changes(owner: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> Iterator[Change]:
    section = "wrapped calls"
    if old is None or new is None:
        if old is not new:
            yield Change(section, owner, "added" if old is None else "removed")
        return
    a, b = _params(old), _params(new)
    for name in [n for n in b if n not in a]:
        yield Change(section, f"{owner}({name})", "added", _param_text(b[name]))
    for name in [n for n in a if n not in b]:
        yield Change(section, f"{owner}({name})", "removed", _param_text(a[name]))
    for name in [n for n in a if n in b]:
        yield from _param_changes(f"{owner}({name})", a[name], b[name])
    if list(a) != list(b) and set(a) == set(b):
        yield Change(section, owner, "changed", f"parameter order {list(a)} -> {list(b)}")
    for key in ("is_async", "is_async_generator", "method_kind", "returns"):
        if old.get(key) != new.get(key):
            yield Change(section, owner, "changed", f"{key} {old.get(key)} -> {new.get(key)}")


def _param_changes(subject: str, a: dict[str, Any], b: dict[str, Any]) -> Iterator[Change]:
    if a["default"] != b["default"]:
        yield Change("wrapped calls", subject, "re-defaulted", f"{_default(a)} -> {_default(b)}")
    if a["kind"] != b["kind"]:
        yield Change("wrapped calls", subject, "changed", f"kind {a['kind']} -> {b['kind']}")
    if a["annotation"] != b["annotation"]:
        yield Change("wrapped calls", subject, "changed", f"annotation {a['annotation']} -> {b['annotation']}")


def _default(p: dict[str, Any]) -> str:
    return "(no default)" if p["default"] is None else str(p["default"])


def _wrapped(a: Surface, b: Surface) -> Iterator[Change]:
    for key, name in WRAPPED:
        old, new = a.get(key) or {}, b.get(key) or {}
        if bool(old) != bool(new):
            yield Change("wrapped calls", name, "added" if new else "removed")
            continue
        if old.get("alias_of") != new.get("alias_of"):
            yield Change("wrapped calls", name, "changed", f"alias of {old.get('alias_of')} -> {new.get('alias_of')}")
        if old.get("conditional_alias") != new.get("conditional_alias"):
            yield Change("wrapped calls", name, "changed",
                         f"conditional alias {old.get('conditional_alias')} -> {new.get('conditional_alias')}")
        methods_a, methods_b = old.get("methods") or {}, new.get("methods") or {}
        for method in sorted(set(methods_a) | set(methods_b)):
            yield from _signature_changes(f"{name}.{method}", methods_a.get(method), methods_b.get(method))


def _field_map(entry: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    if not entry:
        return {}
    return {f["name"]: f for f in entry["fields"] if not f["name"].startswith("_")}


def _fields(a: Surface, b: Surface) -> Iterator[Change]:
    for group, name in FIELD_CLASSES:
        old, new = (a.get(group) or {}).get(name), (b.get(group) or {}).get(name)
        if bool(old) != bool(new):
            yield Change("fields", name, "added" if new else "removed")
            continue
        if old and new and old["kind"] != new["kind"]:
            yield Change("fields", name, "changed", f"class kind {old['kind']} -> {new['kind']}")
        fa, fb = _field_map(old), _field_map(new)
        for field in [f for f in fb if f not in fa]:
            yield Change("fields", f"{name}.{field}", "added", f"(default {fb[field]['default']})")
        for field in [f for f in fa if f not in fb]:
            yield Change("fields", f"{name}.{field}", "removed", f"(default was {fa[field]['default']})")
        for field in [f for f in fa if f in fb and fa[f]["default"] != fb[f]["default"]]:
            yield Change("fields", f"{name}.{field}", "re-defaulted", f"{_default(fa[field])} -> {_default(fb[field])}")


def _prompts(a: Surface, b: Surface) -> Iterator[Change]:
    pa, pb = a.get("prompts") or {}, b.get("prompts") or {}
    for name in sorted(set(pa) | set(pb)):
        old, new = pa.get(name), pb.get(name)
        if bool(old) != bool(new):
            yield Change("prompt types", name, "added" if new else "removed")
            continue
        if not old or not new:
            continue
        for key in ("module", "importable_from_vllm", "importable_from_vllm_inputs"):
            if old.get(key) != new.get(key):
                yield Change("prompt types", name, "changed", f"{key} {old.get(key)} -> {new.get(key)}")
        ka = {k["name"]: k for k in old.get("keys") or []}
        kb = {k["name"]: k for k in new.get("keys") or []}
        for key in [k for k in kb if k not in ka]:
            yield Change("prompt types", f"{name}[{key!r}]", "added", "(required)" if kb[key]["required"] else "")
        for key in [k for k in ka if k not in kb]:
            yield Change("prompt types", f"{name}[{key!r}]", "removed")


def _named_set_changes(section: str, label: str, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    for name in sorted(set(new) - set(old)):
        yield Change(section, f"{label} {name!r}", "added", _glm_mark(name))
    for name in sorted(set(old) - set(new)):
        yield Change(section, f"{label} {name!r}", "removed", _glm_mark(name))
    for name in sorted(n for n in set(old) & set(new) if old[n] != new[n]):
        yield Change(section, f"{label} {name!r}", "changed", f"{_brief(old[name])} -> {_brief(new[name])}")


def _glm_mark(name: str) -> str:
    return "(GLM)" if "glm" in name.lower() else ""


def _brief(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"class", "module"}:
        return f"{value['module']}:{value['class']}"
    if isinstance(value, dict) and "entries" in value:
        return ", ".join(f"{e['dict']}: {e['module']}.{e['class']}" for e in value["entries"])
    return str(value)


def _parsers(a: Surface, b: Surface) -> Iterator[Change]:
    for key, label in (("tool_parsers", "tool parser"), ("reasoning_parsers", "reasoning parser")):
        old = (a.get(key) or {}).get("parsers") or {}
        new = (b.get(key) or {}).get("parsers") or {}
        yield from _named_set_changes("parsers", label, old, new)


def _models(a: Surface, b: Surface) -> Iterator[Change]:
    yield from _named_set_changes("GLM architectures", "architecture", a.get("models") or {}, b.get("models") or {})


def _environment(a: Surface, b: Surface) -> Iterator[Change]:
    old, new = (a.get("envs") or {}).get("VLLM_USE_V1"), (b.get("envs") or {}).get("VLLM_USE_V1")
    if old != new:
        yield Change("environment", "VLLM_USE_V1 default", "changed", f"{old} -> {new}")
    kinds_a, kinds_b = a.get("request_output_kind") or {}, b.get("request_output_kind") or {}
    if kinds_a.get("members") != kinds_b.get("members"):
        yield Change("environment", "RequestOutputKind", "changed", f"{kinds_a.get('members')} -> {kinds_b.get('members')}")


def _exports(a: Surface, b: Surface) -> Iterator[Change]:
    old = (a.get("exports") or {}).get("names") or {}
    new = (b.get("exports") or {}).get("names") or {}
    yield from _named_set_changes("exports", "vllm export", old, new)


SURFACE_DIFFS: tuple[Callable[[Surface, Surface], Iterator[Change]], ...] = (
    _wrapped, _fields, _prompts, _parsers, _models, _environment, _exports,
)


def diff_surfaces(a: Surface, b: Surface) -> list[Change]:
    """Every recorded difference between two surfaces (capability flags excluded)."""
    return [change for diff in SURFACE_DIFFS for change in diff(a, b)]


# ---------------------------------------------------------------------------
# Capability flags
# ---------------------------------------------------------------------------


def _surface_observations(surface: Surface) -> dict[str, bool]:
    """Flags the live probes cannot see but the recorded surface shows."""
    tools = (surface.get("tool_parsers") or {}).get("parsers") or {}
    reasoning = (surface.get("reasoning_parsers") or {}).get("parsers") or {}
    top_k = _field_map((surface.get("params") or {}).get("SamplingParams")).get("top_k") or {}
    return {
        "vllm_glm45_parsers": "glm45" in tools and "glm45" in reasoning,
        "vllm_glm47_tool_parser": "glm47" in tools,
        "top_k_zero_disables": top_k.get("default") == "0",
    }


@contextlib.contextmanager
def _quiet_live(surface: Surface) -> Iterator[Any]:
    from . import _live
    from .testing import fake_vllm

    with tempfile.TemporaryDirectory() as tmp, fake_vllm.installed(surface, tmp):
        _live.reset()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield _live.live()
        finally:
            _live.reset()


def observed_flags(surface: Surface) -> tuple[dict[str, bool], dict[str, bool]]:
    """(flags the recorded code shows, flags from the version number) of one release.

    The first are what :func:`glm_vllm_compat._live.live` computes on a fake vLLM built
    from the surface (the version-number flags, corrected by every live probe),
    corrected again by :func:`_surface_observations`.
    """
    with _quiet_live(surface) as lv:
        observed, by_version = dict(lv.caps.flags), dict(lv.info.capabilities.flags)
    observed.update(_surface_observations(surface))
    return observed, by_version


def flag_changes(a: Surface, b: Surface) -> list[Change]:
    """Flags whose value differs between the two releases, and flags a release's code contradicts."""
    from ._capabilities import FLAGS

    (obs_a, ver_a), (obs_b, ver_b) = observed_flags(a), observed_flags(b)
    out = [
        Change("capability flags", name, "flag", f"{obs_a[name]} -> {obs_b[name]} ({FLAGS[name].doc})")
        for name in FLAGS
        if obs_a[name] != obs_b[name]
    ]
    for surface, observed, by_version in ((a, obs_a, ver_a), (b, obs_b, ver_b)):
        for name in (n for n in FLAGS if observed[n] != by_version[n]):
            out.append(Change(
                "capability flags", name, "changed",
                f"the recorded code of {surface['version']} shows {observed[name]}, the version number "
                f"gives {by_version[name]}: update FLAGS[{name!r}] in _capabilities.py",
            ))
    return out


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def _unchanged_calls(a: Surface, b: Surface, changes: list[Change]) -> list[str]:
    touched = {c.subject.split("(")[0] for c in changes if c.section == "wrapped calls"}
    names = []
    for key, owner in WRAPPED:
        methods = ((a.get(key) or {}).get("methods") or {}).keys() & ((b.get(key) or {}).get("methods") or {}).keys()
        names += [f"{owner}.{m}" for m in sorted(methods) if f"{owner}.{m}" not in touched and owner not in touched]
    return names


def diff_releases(a: Surface, b: Surface, *, flags: bool = True) -> list[Change]:
    return diff_surfaces(a, b) + (flag_changes(a, b) if flags else [])


def render(a: Surface, b: Surface, changes: list[Change], *, flags: bool = True) -> str:
    """The report ``matrix diff`` prints."""
    lines = [f"vLLM {a['version']} -> {b['version']} (matrix/surfaces/)", ""]
    for section in SECTIONS:
        if section == "capability flags" and not flags:
            continue
        found = [c for c in changes if c.section == section]
        lines.append(f"{section}: {len(found) or 'no'} change{'' if len(found) == 1 else 's'}")
        lines += [f"  {c.line()}" for c in found]
        if section == "wrapped calls":
            unchanged = _unchanged_calls(a, b, changes)
            if unchanged:
                lines.append("  unchanged: " + ", ".join(unchanged))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _recorder() -> ModuleType:
    from .testing import fake_vllm

    path = fake_vllm.surfaces_dir().parent / "record.py"
    loaded = sys.modules.get("_glm_matrix_record")
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    spec = importlib.util.spec_from_file_location("_glm_matrix_record", path)
    if spec is None or spec.loader is None:  # pragma: no cover
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _pair(versions: Sequence[str], before: list[str]) -> tuple[str, str] | None:
    from .testing import fake_vllm

    if len(versions) == 2:
        return versions[0], versions[1]
    now = fake_vllm.known_versions()
    new = [v for v in now if v not in before]
    if not new:
        return None
    older = [v for v in before if v in now]
    return (older[-1] if older else now[0]), new[-1]


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="glm-vllm-compat matrix diff",
        description="What changed between two recorded vLLM releases, in the parts glm-vllm-compat depends on.",
    )
    parser.add_argument("versions", nargs="*", metavar="VERSION", help="two recorded releases, e.g. 0.33.0 0.34.0")
    parser.add_argument("--new", action="store_true",
                        help="first record the releases the package index has and matrix/ lacks (network); "
                        "without VERSIONs, diff the newest release before and after")
    parser.add_argument("--no-flags", action="store_true", help="skip the capability flags (no fake vLLM is built)")
    args = parser.parse_args(list(argv))
    if len(args.versions) not in ((0, 2) if args.new else (2,)):
        parser.error("give two releases (or --new alone)")
    from .testing import fake_vllm

    before = fake_vllm.known_versions()
    if args.new and _recorder().cmd_new() != 0:
        return 1
    pair = _pair(args.versions, before)
    if pair is None:
        print(f"nothing new on the package index; the newest recorded release is {before[-1]}")
        return 0
    try:
        a, b = (fake_vllm.load_surface(v) for v in pair)
    except LookupError as exc:
        parser.error(f"{exc}; recorded releases: {', '.join(fake_vllm.known_versions())}")
    changes = diff_releases(a, b, flags=not args.no_flags)
    print(render(a, b, changes, flags=not args.no_flags), end="")
    return 0
